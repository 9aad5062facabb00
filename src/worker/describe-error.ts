/** Errors become `last_error` text here, so a processor's stack trace never reaches an API client. */
const MAX_ERROR_LENGTH = 2000;

/** The message stored as `last_error`: the error's own message, never its stack. */
export function describeError(err: unknown): string {
  let message: string;
  if (err instanceof Error) message = err.message || err.name;
  else if (typeof err === 'string') message = err;
  else {
    try {
      message = JSON.stringify(err) ?? String(err);
    } catch {
      message = String(err);
    }
  }
  // PostgreSQL text cannot hold a NUL character: it would make the failure itself unstorable.
  message = message.replaceAll('\u0000', '\uFFFD');
  return message.length > MAX_ERROR_LENGTH ? `${message.slice(0, MAX_ERROR_LENGTH)}…` : message;
}

/** An escaped NUL (`\u0000`) in JSON text: after an even number of backslashes. */
const JSON_NUL = /(?<!\\)(?:\\\\)*\\u0000/;
/** A lone UTF-16 surrogate, which JSON.stringify escapes (`\ud800`) and jsonb refuses. */
const JSON_LONE_SURROGATE = /(?<!\\)(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/i;

/**
 * A processor's result as the JSON text the effects log (a JSON column) stores — undefined for a
 * function or symbol, stored as SQL NULL as JSON.stringify drops it — or why it cannot be stored.
 * Serialized once, before the completion is written, so such a result fails the attempt with this
 * reason instead of failing the write, over and over, until the lease runs out.
 */
export function resultJson(result: unknown): { ok: true; json: string | undefined } | { ok: false; reason: string } {
  let text: string | undefined;
  try {
    text = JSON.stringify(result ?? null);
  } catch (err) {
    return { ok: false, reason: `it is not JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  if (text !== undefined && JSON_NUL.test(text)) return { ok: false, reason: 'it holds a NUL character (\\u0000), which a JSON column cannot store' };
  if (text !== undefined && JSON_LONE_SURROGATE.test(text)) return { ok: false, reason: 'it holds a lone UTF-16 surrogate, which a JSON column cannot store' };
  return { ok: true, json: text };
}
