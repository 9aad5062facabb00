/**
 * INGEST frames go through an IngestPort, so the gateway follows exactly the rules of
 * `POST /api/events` without owning them: embedded, the port calls the ingest service in-process;
 * a distributed gateway posts to the API's internal listener on behalf of the connection's token
 * (`POST {apiInternalUrl}/internal/realtime/ingest {token, event}`), which re-authenticates it.
 */
import type { AuthContext } from '../auth/types.js';
import { createError, ERROR_TABLE, type ErrorCode } from '../core/errors.js';

export interface IngestReply {
  event_id: string;
  status: string;
  replayed: boolean;
}

export interface IngestPort {
  /**
   * Ingests one event (the INGEST frame's payload, unvalidated) for `auth`. Throws TemError with
   * the same codes the HTTP route would answer.
   */
  ingest(auth: AuthContext, token: string, input: Record<string, unknown>): Promise<IngestReply>;
}

export interface HttpIngestOptions {
  baseUrl: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export const INTERNAL_INGEST_PATH = '/internal/realtime/ingest';

export function httpIngestPort(options: HttpIngestOptions): IngestPort {
  const url = new URL(INTERNAL_INGEST_PATH, options.baseUrl).toString();
  const doFetch = options.fetch ?? fetch;
  return {
    async ingest(_auth, token, input) {
      let res: Response;
      try {
        res = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ token, event: input }),
          signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
        });
      } catch (err) {
        throw createError('STORE_UNAVAILABLE', 'ingest service unreachable', { cause: err });
      }
      let body: Record<string, unknown> = {};
      try {
        body = (await res.json()) as Record<string, unknown>;
      } catch {
        /* an empty or non-JSON answer is handled below */
      }
      if (!res.ok) {
        const code = typeof body.code === 'string' && body.code in ERROR_TABLE ? (body.code as ErrorCode) : res.status === 413 ? 'TOO_LARGE' : 'INTERNAL';
        const detail = typeof body.detail === 'string' ? body.detail : `ingest answered ${res.status}`;
        throw createError(code, detail, typeof body.field === 'string' ? { field: body.field } : undefined);
      }
      if (typeof body.event_id !== 'string') throw createError('INTERNAL', 'ingest sent a bad answer');
      return { event_id: body.event_id, status: String(body.status ?? 'accepted'), replayed: body.replayed === true };
    },
  };
}

/** What the embedded port needs of src/ingest/service.ts's IngestService. */
export interface IngestServiceLike {
  ingest(
    ctx: AuthContext,
    input: unknown,
    idempotencyKeyHeader?: string,
    options?: { field?: string },
  ): Promise<{ outcome: 'created' | 'replayed'; event: { id: string; status: string } }>;
}

/**
 * Embedded mode: INGEST frames go straight to the process's IngestService, counted against the
 * caller's request budget as POST /api/events is (`limit`: RequestLimiter.count).
 */
export function serviceIngestPort(service: IngestServiceLike, limit?: (auth: AuthContext) => Promise<void>): IngestPort {
  return {
    async ingest(auth, _token, input) {
      await limit?.(auth);
      const result = await service.ingest(auth, input, undefined, { field: 'payload' });
      // As POST /api/events answers: `accepted`, and a replay gets that original answer again.
      return { event_id: result.event.id, status: 'accepted', replayed: result.outcome === 'replayed' };
    },
  };
}
