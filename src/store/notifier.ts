/**
 * Wake-up notifications, sent after commit and coalesced.
 *
 * Why not NOTIFY inside the transaction: PostgreSQL serialises every committing transaction that
 * has queued a NOTIFY behind one cluster-wide lock held across its WAL flush, so NOTIFY in
 * transactions that commit concurrently (the completions of many workers) makes them run one at
 * a time. These
 * notifications only wake workers and the relay (which also poll as a backstop), so they are sent
 * once the transaction has committed, from a separate statement that writes nothing — and while
 * one is on the wire, further channels are collected and sent together with the next.
 * The exception is ingest (ops/ingest.ts): each API process runs at most a couple of ingest
 * commits at once (TEM_INGEST_COMMITS_IN_FLIGHT), so its NOTIFY rides in the statement and saves
 * a round trip per batch.
 */
export class CoalescingNotifier {
  private readonly pending = new Set<string>();
  private running = false;

  constructor(
    private readonly send: (channels: string[]) => Promise<unknown>,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  notify(channels: Iterable<string>): void {
    for (const c of channels) this.pending.add(c);
    if (!this.running && this.pending.size > 0) void this.flush();
  }

  private async flush(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.size > 0) {
        const batch = [...this.pending];
        this.pending.clear();
        try {
          await this.send(batch);
        } catch (err) {
          // The database is away: listeners re-listen and poll when it is back.
          this.onError(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

/**
 * A NOTIFY-only transaction still commits (the queue entries carry its transaction id) and holds
 * the cluster-wide notify lock until its commit is flushed. It writes nothing worth keeping, so
 * it commits without waiting for the flush (`synchronous_commit` off for this transaction only):
 * the lock is held for microseconds instead of an fsync, and the ingest and completion commits
 * that queue behind it stop waiting for a disk flush that protects nothing.
 */
export const NOTIFY_CHANNELS_SQL = `SELECT set_config('synchronous_commit', 'off', true), pg_notify(c, '') FROM jsonb_array_elements_text($1::jsonb) AS c`;
