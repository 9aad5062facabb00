/**
 * The Bus moves publications between processes: per-channel history with offsets and an epoch,
 * fan-out to every gateway node subscribed to a channel, and control messages (key revocation,
 * disconnects, membership removal). Implementations differ only in transport: memory (one
 * process, many in-process nodes for tests) and Redis.
 *
 * Offsets increase by one per publication within an epoch. The epoch changes when history is
 * lost (Redis restarted without persistence, memory bus recreated), so a client holding an old
 * (offset, epoch) learns it cannot recover and resyncs.
 */
import type { NamespaceOptions } from '../config/index.js';
import type { StreamPosition } from '../protocol/frames.js';

export interface Publication {
  channel: string;
  offset: number;
  epoch: string;
  event: string;
  payload: unknown;
  /** The TEM event this publication delivers, when it comes from the outbox. */
  eventId?: string;
  /**
   * A notice that is not part of the channel's stream (typing, presence join/leave), carried by
   * an `ephemeral` control message: no history entry, no offset of its own.
   */
  ephemeral?: boolean;
}

export interface HistoryResult {
  /** Publications after `since`, oldest first (empty when not recovered). */
  publications: Publication[];
  /** The channel's current position. */
  position: StreamPosition;
  /** True when every publication after `since` was still in history. */
  recovered: boolean;
}

export type ControlMessage =
  | { kind: 'revoke_key'; keyId: string }
  | { kind: 'revoke_principal'; principalId: string }
  /** Roles were edited: every cached credential answer is stale, every connection's permissions too. */
  | { kind: 'roles_changed' }
  | { kind: 'disconnect_user'; userId: string; code: number; reason: string }
  /** A channel membership was deleted: the user's live subscriptions to `channel` are checked again. */
  | { kind: 'membership_removed'; channel: string; userId: string }
  /** A channel membership was granted: a cached "not a member" answer for it is dropped. */
  | { kind: 'membership_added'; channel: string; userId: string }
  /** For the current subscribers of `channel` on every node; never kept in history (typing, presence). */
  | { kind: 'ephemeral'; channel: string; event: string; payload: unknown };

export type Unsubscribe = () => Promise<void>;

/** One message for publishMany. */
export interface BusMessage {
  channel: string;
  event: string;
  payload: unknown;
  /** The TEM event it delivers, when it comes from the outbox. */
  eventId?: string;
  /**
   * Names the message for a receipt slot (PublishOptions.receipt): the outbox row's id, a
   * decimal integer (ids are compared as numbers: see PublishOptions.receipt).
   */
  receiptId?: string;
  /** The caller knows it went out already: recorded in the receipt slot, never appended again. */
  alreadySent?: boolean;
}

export interface PublishOptions {
  /**
   * A receipt slot: the `receiptId`s of this call's messages are recorded there in the same
   * atomic step as the append, replacing what the last call to the slot recorded, and a message
   * whose id that last call recorded is not appended again. A caller that retries a publish
   * whose reply it never got (or a publisher that takes over from one that died after publishing)
   * thereby sends each message once. One publisher at a time per slot.
   * Ids the last call recorded above this call's highest one stay recorded: a message with a
   * lower id that turned up since (an outbox row committed after the rows above it were read)
   * can push the tail of a retried batch into the next call, which must still leave it out.
   */
  receipt?: string;
}

/** How long a receipt slot outlives its last write: far longer than any retry of the same batch. */
export const RECEIPT_TTL_MS = 86_400_000;

/** A transport's unit of append: one channel's bodies (see BaseBus.append). */
export interface AppendGroup {
  channel: string;
  bodies: string[];
  /** With a receipt slot: each body's receipt id ('' for none) and whether it went out already. */
  ids?: string[];
  sent?: boolean[];
  ns: NamespaceOptions;
}

/** Where an append landed: the epoch and the offset of its first message. */
export interface AppendResult {
  epoch: string;
  /** The offset of the group's first appended message; the others follow it. */
  firstOffset: number;
  /** With a receipt slot: which bodies were already appended and were left out. */
  skipped?: boolean[];
}

/** A group that failed on its own while the others of its call went out (a Redis Cluster node). */
export interface AppendFailure {
  error: unknown;
}

/** A budget of `points` per `windowS` seconds per key, counted under `name`. */
export interface SharedLimiterOptions {
  name: string;
  points: number;
  windowS: number;
}

export interface LimitVerdict {
  allowed: boolean;
  /** What is left of the key's budget in this window. */
  remaining: number;
  /** Until the window ends and the budget is whole again. */
  msBeforeNext: number;
}

/** Counts one use per call for a key; see limits.ts. */
export interface SharedLimiter {
  readonly points: number;
  consume(key: string): Promise<LimitVerdict>;
}

/** One node's view of the bus. Several nodes may share one bus (memory) or one Redis. */
export interface Bus {
  readonly kind: 'memory' | 'redis';
  /** Appends to the channel's history (per namespace options) and fans out to subscribed nodes. */
  publish(channel: string, event: string, payload: unknown, options?: { eventId?: string }): Promise<Publication>;
  /**
   * Publishes several messages, on one or more channels, as one atomic append: the messages of
   * each channel get consecutive offsets in the order given, all or none go out, in one round
   * trip (the outbox relay sends each batch this way). Publications in input order, leaving out
   * the messages a receipt slot said were already appended.
   * On a Redis Cluster each channel is atomic on its own: when some channels' nodes fail, the
   * others' messages still go out and PartialPublishError (errors.ts) says which did not.
   */
  publishMany(messages: BusMessage[], options?: PublishOptions): Promise<Publication[]>;
  /**
   * Receives publications on a channel or a `prefix:*` pattern on this node. The implementation
   * subscribes in Redis only while this node has a handler for it.
   */
  subscribe(channelOrPattern: string, handler: (pub: Publication) => void): Promise<Unsubscribe>;
  /** Publications after `since` (exactly once, in order), or recovered=false when they are gone. */
  history(channel: string, since?: StreamPosition): Promise<HistoryResult>;
  position(channel: string): Promise<StreamPosition>;
  publishControl(message: ControlMessage): Promise<void>;
  onControl(handler: (message: ControlMessage) => void): Promise<Unsubscribe>;
  /**
   * Called each time the node's subscriptions were restored after its connection to the
   * transport was lost (Redis): publications made meanwhile reached history but not this node,
   * so whoever fans out must look for gaps. Never called by the memory bus.
   */
  onResubscribed(handler: () => void): Unsubscribe;
  /**
   * A per-key counter shared by every node of this bus (every node of a memory hub, every process
   * on the same Redis and prefix): per-key limits hold cluster-wide. The same options give the
   * same counter.
   */
  limiter(options: SharedLimiterOptions): SharedLimiter;
  /** `ok` or `down` (Redis unreachable). Memory is always `ok`. */
  health(): Promise<'ok' | 'down'>;
  /**
   * Which of these channels can be published to now: on a Redis Cluster, those whose node takes
   * a write (one per node); on one Redis, all or none; in memory, all. The relay asks
   * before it tries again a channel whose node failed, so a node that hangs does not hold up a
   * whole relay round each time.
   */
  reachable(channels: readonly string[]): Promise<ReadonlySet<string>>;
  close(): Promise<void>;
}

export type NamespaceResolver = (channel: string) => NamespaceOptions;
