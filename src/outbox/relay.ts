/**
 * The outbox relay: moves committed notifications (outbox rows) to the Bus, in id order, and
 * deletes them only once the Bus took them (store.relayOutbox, under the single relay lock — any
 * number of relays may run, one is active). Woken by store.onOutbox, with a backstop poll for a
 * missed notification.
 *
 * When the Bus fails, the rows stay: the relay holds its position, retries with bounded
 * backoff, logs once per outage and once on recovery. Nothing is lost; delivery resumes in order.
 *
 * A client must never see an event's status go backwards. A batch goes out as one atomic
 * publishMany in id order (each channel's messages keep that order): one round trip per batch
 * instead of one per message.
 * If a batch went out but its transaction then failed (the rows are still there), the ids this
 * relay published are remembered and skipped on the retry, so those updates are not sent a
 * second time behind newer ones. The same holds when the Bus's connection dropped between the
 * append and its reply, and when a relay died between its publish and its commit and another
 * (or the same one, restarted) takes over: every publish names its rows in the relays' receipt
 * slot on the Bus, and rows the last publish already sent are not appended again
 * (PublishOptions.receipt), also when a row with a lower id committed since and pushed the last
 * of them into the round after the retry. Updates also carry the event's `version`, a second line of defence.
 *
 * A row that names no channel the Bus can publish to (written before ingest checked what it
 * checks now: an owner channel built from a JWT `sub` such as `auth0|1`) would fail every batch
 * it is in, for ever, and stop every notification behind it. Such a row is logged, counted
 * (tem_relay_dropped_total) and deleted with its batch instead.
 */
import type { Bus } from '../bus/types.js';
import type { Clock } from '../core/clock.js';
import type { OutboxMessage } from '../core/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Store, Unlisten } from '../store/types.js';
import { isChannelName } from '../protocol/frames.js';

/** Bus failures are counted by the bus itself (tem_bus_publish_failures_total, runtime.startBus). */
export type RelayMetrics = Pick<Metrics, 'relayLag' | 'relayPublished' | 'relayDropped'>;

export interface OutboxRelayOptions {
  store: Pick<Store, 'relayOutbox' | 'onOutbox'>;
  bus: Pick<Bus, 'publishMany'>;
  logger: Logger;
  metrics: RelayMetrics;
  clock: Clock;
  /** Rows per relay transaction (default 256). */
  batchSize?: number;
  /** Backstop poll when no notification arrives (default 1000 ms). */
  pollIntervalMs?: number;
  /** First retry delay after a failure, doubled up to maxBackoffMs (defaults 100 / 5000 ms). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** The relays' receipt slot on the Bus: one relay publishes at a time (the relay lock). */
export const RELAY_RECEIPT_SLOT = 'relay';

/** Most published-but-unconfirmed ids remembered; beyond it the oldest are forgotten. */
const MAX_UNCONFIRMED = 100_000;

export class OutboxRelay {
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private running = false;
  private loop: Promise<void> | null = null;
  private unlisten: Unlisten | null = null;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private failingSince: number | null = null;
  /** Not subscribed to notifications (listen failed): retried every round. */
  private deaf = false;
  private failures = 0;
  /** Published in a batch whose rows were not deleted (the transaction failed after). */
  private readonly unconfirmed = new Set<number>();

  constructor(private readonly o: OutboxRelayOptions) {
    this.batchSize = o.batchSize ?? 256;
    this.pollMs = o.pollIntervalMs ?? 1000;
    this.minBackoff = o.minBackoffMs ?? 100;
    this.maxBackoff = o.maxBackoffMs ?? 5000;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.listen();
    this.loop = this.run();
  }

  /**
   * Subscribes to outbox notifications. When that fails (the database blipped), polling still
   * delivers, only later; each relay round tries again, so notifications wake it once the
   * database answers, and the warning is logged once per failure streak.
   */
  private async listen(): Promise<void> {
    try {
      this.unlisten = await this.o.store.onOutbox(() => this.wake());
      if (this.deaf) this.o.logger.info('outbox relay listening for notifications again');
      this.deaf = false;
    } catch (err) {
      if (!this.deaf) this.o.logger.warn({ err }, 'outbox relay cannot listen for notifications; polling until it can');
      this.deaf = true;
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wakeUp?.();
    await this.loop;
    this.loop = null;
    const unlisten = this.unlisten;
    this.unlisten = null;
    await unlisten?.().catch(() => undefined);
  }

  /** Runs relay rounds until nothing is pending (tests, and a final drain). Returns how many went out. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.o.store.relayOutbox(this.batchSize, (m) => this.publish(m));
      this.unconfirmed.clear();
      total += n;
      if (n < this.batchSize) break;
    }
    return total;
  }

  private wake(): void {
    this.woken = true;
    // During an outage new rows wait for the backoff: they would only fail the same way.
    // Nor is the relay woken the moment Redis answers again: the gateways re-subscribe on their
    // own schedule, and a backlog published before they are back reaches them only through
    // history, which for a busy channel may no longer hold it all (its clients would resync).
    if (this.failingSince === null) this.wakeUp?.();
  }

  private async run(): Promise<void> {
    while (this.running) {
      let delay = this.pollMs;
      try {
        if (!this.unlisten) await this.listen();
        this.woken = false;
        const n = await this.o.store.relayOutbox(this.batchSize, (m) => this.publish(m));
        // The transaction committed: what it published is deleted.
        this.unconfirmed.clear();
        this.recovered();
        if (n === 0) this.o.metrics.relayLag.set(0);
        if (n >= this.batchSize) continue;
      } catch (err) {
        delay = this.failed(err);
      }
      if (this.running && (this.failingSince !== null || !this.woken)) await this.sleep(delay);
    }
  }

  private async publish(batch: OutboxMessage[]): Promise<void> {
    const messages = batch.filter((m) => this.publishable(m));
    if (messages.length === 0) return;
    const oldest = messages[0]!.createdAt.getTime();
    this.o.metrics.relayLag.set(Math.max(0, this.o.clock.nowMs() - oldest) / 1000);
    // Every row goes to the Bus named by its id, those this relay knows it sent marked so: the
    // receipt slot then covers the whole batch for whichever relay runs the next round.
    const sent = messages.map((m) => this.unconfirmed.has(m.id));
    if (sent.every(Boolean)) return;
    const pubs = await this.o.bus.publishMany(
      messages.map((m, i) => ({
        channel: m.channel,
        event: m.event,
        payload: m.payload,
        eventId: m.eventId,
        receiptId: String(m.id),
        alreadySent: sent[i],
      })),
      { receipt: RELAY_RECEIPT_SLOT },
    );
    this.confirm(messages.map((m) => m.id));
    this.o.metrics.relayPublished.inc(pubs.length);
  }

  private publishable(m: OutboxMessage): boolean {
    if (isChannelName(m.channel)) return true;
    this.o.logger.error({ outbox_id: m.id, event_id: m.eventId, channel: m.channel, event: m.event }, 'outbox message names no channel it can be published to; dropped');
    this.o.metrics.relayDropped.inc();
    return false;
  }

  /** These ids went out: skipped if their rows come round again before they are deleted. */
  private confirm(ids: number[]): void {
    for (const id of ids) {
      if (this.unconfirmed.size >= MAX_UNCONFIRMED) this.unconfirmed.delete(this.unconfirmed.values().next().value!);
      this.unconfirmed.add(id);
    }
  }

  private failed(err: unknown): number {
    this.failures++;
    if (this.failingSince === null) {
      this.failingSince = this.o.clock.nowMs();
      this.o.logger.error({ err }, 'outbox relay failing; notifications are kept and retried');
    }
    return Math.min(this.maxBackoff, this.minBackoff * 2 ** Math.min(this.failures - 1, 16));
  }

  private recovered(): void {
    if (this.failingSince === null) return;
    this.o.logger.info({ down_ms: this.o.clock.nowMs() - this.failingSince, attempts: this.failures }, 'outbox relay recovered');
    this.failingSince = null;
    this.failures = 0;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = null;
        done();
      };
    });
  }
}
