/**
 * The internal executor every SQL operation is written against. Two transports implement it
 * (PGlite and postgres.js) so the SQL in ops/ is written once. Callers outside src/store never
 * see it: the Store owns its connections.
 */
export type Notify = (payload: string) => void;

export interface ExecOptions {
  isolated?: { timeoutMs: number };
}

export interface Db {
  readonly kind: 'pglite' | 'postgres';
  /** One statement with $n parameters; rows come back with int8 as number and timestamps as Date. */
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /**
   * A script of several statements without parameters (migrations), or one that must run outside
   * a transaction (VACUUM). `isolated` (PostgreSQL): on a connection no other statement shares,
   * so nothing queues behind a long one, and cancelled by the server after `timeoutMs`. PGlite
   * has one connection and runs it like any other script.
   */
  exec(script: string, options?: ExecOptions): Promise<void>;
  /**
   * Runs `fn` in a transaction; commits when it resolves, rolls back when it throws. Inside,
   * always use the handle passed to `fn`: PGlite has one connection, so touching the outer
   * handle from inside a transaction would wait for the transaction itself.
   */
  tx<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /**
   * Wakes listeners on these channels once the current transaction (if any) has committed;
   * nothing is sent for a transaction that rolls back. Coalesced, never awaited (src/store/notifier.ts).
   */
  notify(channels: string[]): void;
  /** LISTEN on `channel`; resolves once listening, returns the function that stops it. */
  listen(channel: string, cb: Notify): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
