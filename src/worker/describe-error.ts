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
  return message.length > MAX_ERROR_LENGTH ? `${message.slice(0, MAX_ERROR_LENGTH)}…` : message;
}
