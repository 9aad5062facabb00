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
 * On a Redis Cluster a batch's channels live on several nodes, and one node may fail while the
 * others answer (until its replica takes over, some 20 s with Redis's default node timeout). The
 * channels that failed are held back, each with its own bounded backoff: their rows are parked
 * out of the others' way, ids and all, and no later row of theirs is taken until the channel's
 * next try, so each channel stays in order; the other channels' notifications keep going out
 * meanwhile, however many rows the held ones pile up (store.relayOutbox). When a
 * held channel is due, its node is asked first (bus.reachable, in the background): a round
 * waits for every call it made, and a call to a node that hangs takes the command timeout.
 *
 * A row that names no channel the Bus can publish to (written before ingest checked what it
 * checks now: an owner channel built from a JWT `sub` such as `auth0|1`) would fail every batch
 * it is in, for ever, and stop every notification behind it. Such a row is logged, counted
 * (tem_relay_dropped_total) and deleted with its batch instead.
 */
import { PartialPublishError } from '../bus/errors.js';
import type { Bus, Publication } from '../bus/types.js';
import type { Clock } from '../core/clock.js';
import type { OutboxMessage } from '../core/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Store, Unlisten } from '../store/types.js';
import { isChannelName } from '../protocol/frames.js';

/** Bus failures are counted by the bus itself (tem_bus_publish_failures_total, runtime.startBus). */
export type RelayMetrics = Pick<Metrics, 'relayLag' | 'relayPublished' | 'relayDropped' | 'relayHeldChannels'>;

export interface OutboxRelayOptions {
  store: Pick<Store, 'relayOutbox' | 'onOutbox'>;
  bus: Pick<Bus, 'publishMany' | 'reachable'>;
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

/**
 * While channels are held back and a round found nothing to send, a notification wakes the relay
 * only this long after it: rows of held channels alone, arriving one by one, would otherwise each
 * cost a round that only parks them.
 */
const STARVED_WAKE_MS = 50;

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
  /** Channels held back after their node failed: when each is tried again, its failures, its oldest row's time. */
  private readonly held = new Map<string, { until: number; failures: number; oldest: number }>();
  /** Since when some channels have been held back (logged once per streak, like failingSince). */
  private heldSince: number | null = null;
  /** Held channels whose node answered: taken again by the next round. */
  private readonly cleared = new Set<string>();
  /** A bus.reachable call under way. */
  private probing = false;
  /** Rows (messages) the last round took, published or not. */
  private taken = 0;
  /** Rows of held channels the last round moved out of the way (store.relayOutbox). */
  private parked = 0;
  /** Channels whose messages the last round published, and the time of its oldest message. */
  private readonly sent = new Set<string>();
  private batchOldest = Infinity;
  /**
   * The last round published nothing while channels are held back: a notification wakes the relay
   * STARVED_WAKE_MS later (starvedWake), so a backlog of held rows is not walked for every new row.
   */
  private starved = false;
  private starvedWake: NodeJS.Timeout | null = null;

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
    if (this.starvedWake) clearTimeout(this.starvedWake);
    this.starvedWake = null;
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
      total += await this.round();
      if (!this.full()) break;
    }
    return total;
  }

  private wake(): void {
    this.woken = true;
    // During an outage new rows wait for the backoff: they would only fail the same way.
    // Nor is the relay woken the moment Redis answers again: the gateways re-subscribe on their
    // own schedule, and a backlog published before they are back reaches them only through
    // history, which for a busy channel may no longer hold it all (its clients would resync).
    if (this.failingSince !== null) return;
    if (!this.starved) this.wakeUp?.();
    else
      this.starvedWake ??= setTimeout(() => {
        this.starvedWake = null;
        this.wakeUp?.();
      }, STARVED_WAKE_MS);
  }

  private async run(): Promise<void> {
    while (this.running) {
      let delay = this.pollMs;
      try {
        if (!this.unlisten) await this.listen();
        this.woken = false;
        const published = await this.round();
        this.starved = published === 0 && this.held.size > 0;
        this.recovered();
        this.heldLag();
        if (this.taken === 0 && this.held.size === 0) this.o.metrics.relayLag.set(0);
        // A full batch, or held channels whose node answered while the round ran: at once.
        if (this.full() || this.cleared.size > 0) continue;
        delay = Math.min(delay, this.nextHeldTry());
      } catch (err) {
        delay = this.failed(err);
      }
      // A notification that came during a round that ended starved still wakes it, 50 ms on.
      if (this.starved && this.woken) this.wake();
      if (this.running && (this.failingSince !== null || this.starved || !this.woken)) await this.sleep(delay);
    }
  }

  /** One relay transaction over the rows of every channel not held back. Returns how many went out. */
  private async round(): Promise<number> {
    this.probeDue();
    const retried = [...this.cleared];
    const skip = [...this.held.keys()].filter((channel) => !this.cleared.has(channel));
    this.taken = 0;
    this.parked = 0;
    this.batchOldest = Infinity;
    this.sent.clear();
    const n = await this.o.store.relayOutbox(this.batchSize, (m) => this.publish(m), skip, (rows) => (this.parked = rows));
    // The transaction committed: what it published is deleted.
    this.unconfirmed.clear();
    // A cleared channel that went out is through, and so is one with no rows left (another relay
    // sent them); one whose rows a full batch left behind waits, cleared, for the next round.
    const full = this.taken >= this.batchSize;
    for (const channel of retried) {
      if (!this.cleared.has(channel) || (full && !this.sent.has(channel))) continue;
      this.cleared.delete(channel);
      this.held.delete(channel);
    }
    this.o.metrics.relayHeldChannels.set(this.held.size);
    return n;
  }

  /** The lag counts held-back rows too: they may be the oldest still to go out. */
  private heldLag(): void {
    let oldest = this.batchOldest;
    for (const h of this.held.values()) oldest = Math.min(oldest, h.oldest);
    if (this.held.size > 0) this.o.metrics.relayLag.set(Math.max(0, this.o.clock.nowMs() - oldest) / 1000);
  }

  /** Asks the bus about the held channels that are due; those whose node answers are cleared. */
  private probeDue(): void {
    if (this.probing) return;
    const now = this.o.clock.nowMs();
    const due = [...this.held].filter(([channel, h]) => h.until <= now && !this.cleared.has(channel)).map(([channel]) => channel);
    if (due.length === 0) return;
    this.probing = true;
    this.o.bus
      .reachable(due)
      .catch(() => new Set<string>())
      .then((ok) => {
        this.probing = false;
        const silent = new Set<string>();
        for (const channel of due) {
          if (!this.held.has(channel)) continue;
          if (ok.has(channel)) this.cleared.add(channel);
          else silent.add(channel);
        }
        this.hold(silent);
        // A round takes the cleared channels, and one more probe looks at those due meanwhile
        // (not during a whole-relay backoff, which the next round ends).
        if (this.failingSince === null) this.wakeUp?.();
      });
  }

  /**
   * The last round took or moved a batch's worth of rows: more may be waiting. Rows it parked
   * count, so a head full of held channels' rows does not leave the others behind it waiting.
   */
  private full(): boolean {
    return this.taken + this.parked >= this.batchSize;
  }

  /** Milliseconds until the next held-back channel is due again (Infinity: none is waiting). */
  private nextHeldTry(): number {
    const now = this.o.clock.nowMs();
    let first = Infinity;
    // Those already due are being asked about (probeDue), whose answer wakes the relay; due ones
    // that no probe asks about yet need a round to start one.
    for (const h of this.held.values()) {
      if (h.until > now) first = Math.min(first, h.until);
      else if (!this.probing) first = now;
    }
    return first - now;
  }

  private async publish(batch: OutboxMessage[]): Promise<ReadonlySet<string> | void> {
    this.taken = batch.length;
    const messages = batch.filter((m) => this.publishable(m));
    if (messages.length === 0) return;
    const oldest = messages[0]!.createdAt.getTime();
    this.batchOldest = oldest;
    this.o.metrics.relayLag.set(Math.max(0, this.o.clock.nowMs() - oldest) / 1000);
    // Every row goes to the Bus named by its id, those this relay knows it sent marked so: the
    // receipt slot then covers the whole batch for whichever relay runs the next round.
    const sent = messages.map((m) => this.unconfirmed.has(m.id));
    if (sent.every(Boolean)) return;
    let pubs: Publication[];
    let failed: ReadonlySet<string> | undefined;
    try {
      pubs = await this.o.bus.publishMany(
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
    } catch (err) {
      if (!(err instanceof PartialPublishError)) throw err;
      // Part of a cluster failed: the rest went out and is committed; the failed channels wait,
      // their rows parked in order. (With no node left at all the call fails as a whole instead.)
      this.hold(err.failedChannels, err.cause, messages);
      ({ published: pubs, failedChannels: failed } = err);
    }
    const out = failed ? messages.filter((m) => !failed.has(m.channel)) : messages;
    for (const m of out) this.sent.add(m.channel);
    this.confirm(out.map((m) => m.id));
    this.o.metrics.relayPublished.inc(pubs.length);
    return failed;
  }

  /** Holds back channels whose node failed, each doubling its own wait up to maxBackoffMs. */
  private hold(channels: ReadonlySet<string>, cause?: unknown, messages: OutboxMessage[] = []): void {
    if (channels.size === 0) return;
    const now = this.o.clock.nowMs();
    const oldest = new Map<string, number>();
    for (const m of messages) if (channels.has(m.channel) && !oldest.has(m.channel)) oldest.set(m.channel, m.createdAt.getTime());
    if (this.heldSince === null) {
      this.heldSince = now;
      this.o.logger.error({ err: cause, channels: [...channels].slice(0, 10), count: channels.size }, 'outbox relay failing for some channels; their notifications are kept and retried, the others go on');
    }
    for (const channel of channels) {
      const before = this.held.get(channel);
      const failures = (before?.failures ?? 0) + 1;
      this.held.set(channel, { until: now + this.backoff(failures), failures, oldest: before?.oldest ?? oldest.get(channel) ?? now });
      this.cleared.delete(channel);
    }
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
    return this.backoff(this.failures);
  }

  private backoff(failures: number): number {
    return Math.min(this.maxBackoff, this.minBackoff * 2 ** Math.min(failures - 1, 16));
  }

  /** After a round that committed: logged once for the relay, and once every held channel is through. */
  private recovered(): void {
    const now = this.o.clock.nowMs();
    if (this.failingSince !== null) {
      this.o.logger.info({ down_ms: now - this.failingSince, attempts: this.failures }, 'outbox relay recovered');
      this.failingSince = null;
      this.failures = 0;
    }
    if (this.heldSince !== null && this.held.size === 0) {
      this.o.logger.info({ down_ms: now - this.heldSince }, 'outbox relay recovered: every held channel is through');
      this.heldSince = null;
    }
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
