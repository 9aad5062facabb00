/**
 * The HTTP API client of the console (contract §3). Every call carries `X-API-Key`; the key is
 * never put in a URL. Errors arrive as application/problem+json and become ApiError.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined | null>;
  /** Accept a non-2xx status as a normal answer (e.g. health's 503). */
  allow?: number[];
  signal?: AbortSignal;
}

export class Api {
  /** Called on any 401 so the shell can sign out (revoked or expired key). */
  onUnauthorized: (() => void) | null = null;

  constructor(
    private readonly key: string,
    private readonly base = '',
  ) {}

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<{ status: number; body: T }> {
    const url = this.base + path + queryString(opts.query);
    const headers: Record<string, string> = { 'x-api-key': this.key, accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: opts.signal,
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ApiError(0, 'NETWORK', `cannot reach the server (${(err as Error).message})`);
    }
    const text = await res.text();
    let body: unknown = text;
    if (text && (res.headers.get('content-type') ?? '').includes('json')) {
      try {
        body = JSON.parse(text);
      } catch {
        /* keep the text */
      }
    }
    if (res.ok || opts.allow?.includes(res.status)) return { status: res.status, body: body as T };
    if (res.status === 401) this.onUnauthorized?.();
    const p = (typeof body === 'object' && body !== null ? body : {}) as { code?: string; detail?: string; title?: string; field?: string };
    throw new ApiError(res.status, p.code ?? String(res.status), p.detail ?? p.title ?? (text || res.statusText), p.field);
  }

  get<T>(path: string, opts?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, opts).then((r) => r.body);
  }
  post<T>(path: string, body?: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, { ...opts, body: body ?? {} }).then((r) => r.body);
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body }).then((r) => r.body);
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body }).then((r) => r.body);
  }
  del<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path).then((r) => r.body);
  }

  /** GET /metrics is unauthenticated Prometheus text. */
  async metricsText(): Promise<string | null> {
    const res = await fetch(`${this.base}/metrics`, { cache: 'no-store', credentials: 'omit' }).catch(() => null);
    if (!res || !res.ok) return null;
    return res.text();
  }
}

export function queryString(q?: Record<string, string | number | undefined | null>): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;

/** List endpoints answer `{data: [...]}`; tolerate a bare array too. */
export function listOf<T>(body: unknown): T[] {
  if (Array.isArray(body)) return body as T[];
  const b = body as { data?: unknown; items?: unknown; events?: unknown } | null;
  const arr = b?.data ?? b?.items ?? b?.events;
  return Array.isArray(arr) ? (arr as T[]) : [];
}

export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 403) return `Not allowed: ${err.message}`;
    return err.field ? `${err.message} (${err.field})` : err.message;
  }
  return (err as Error)?.message ?? String(err);
}
