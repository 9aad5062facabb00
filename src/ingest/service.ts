/**
 * Ingest of one event, shared by POST /api/events, /api/events/batch and the gateway's INGEST
 * frame: validation (contract §2), the on-behalf rule, idempotency, and the group-committed
 * write. `accept` validates (and checks the channel an event names), throwing TemError naming
 * the field; `submit` resolves only after the event is durably committed.
 */
import type { AuthContext } from '../auth/types.js';
import { can } from '../auth/policy.js';
import { retryPolicy, type TemConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import { createError } from '../core/errors.js';
import { uuidv7 } from '../core/ids.js';
import type { TemEvent } from '../core/types.js';
import type { Metrics } from '../observability/metrics.js';
import { storeChannelAccess, type ChannelAccess } from '../gateway/access.js';
import { isChannelName, RESERVED_EVENT_NAMES } from '../protocol/frames.js';
import type { IngestItem, IngestOutcome, Store } from '../store/types.js';
import { check } from './ajv.js';
import { GroupCommitter } from './batcher.js';
import { requestHash } from './canonical.js';
import { IDEMPOTENCY_KEY_PATTERN, validateEventInput } from './event-input.js';
import { checkPayload } from '../core/payload-check.js';
import { parseDateTime } from './payload-check.js';

/** Most a JSON text grows when parsed and serialized again (see prepare). */
const MAX_JSON_GROWTH = 6;

export const ON_BEHALF_PERMISSION = 'events.post.event_ingest_on_behalf';
/** What publishing to a channel from outside takes (POST /api/publish). */
export const CHANNEL_PUBLISH_PERMISSION = 'channels.post.channel_publish';

/**
 * Who may have an event delivered to a channel once processed (decision 0017), the part that
 * needs no lookup: a `user:{id}` channel is private to its user, so an event may name only its
 * owner's own (an event on behalf of a user may go to that user); and an event may not carry a
 * type the gateway's own notices use. A shared channel is checked by `checkDelivery`.
 */
function checkDeliveryChannel(channel: string, type: string, ownerId: string, where: string): void {
  const [namespace, target] = channel.split(':');
  if (namespace === 'user' && target !== ownerId) {
    throw createError('FORBIDDEN', `${where}.channel may name only the owner's own user:${ownerId} channels`, { field: `${where}.channel` });
  }
  if (RESERVED_EVENT_NAMES.test(type)) {
    throw createError('VALIDATION_FAILED', `${where}.type ${type} is reserved for notices and cannot be delivered to a channel`, { field: `${where}.type` });
  }
}
const IDEMPOTENCY_KEY_RE = new RegExp(IDEMPOTENCY_KEY_PATTERN);

const OPTIONAL_FIELDS = ['channel', 'user_id', 'occurred_at', 'idempotency_key'] as const;

/** An optional field sent as `null` is a field not sent, as most JSON APIs read it. */
function withoutNullOptionals(input: unknown): unknown {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return input;
  const fields = input as Record<string, unknown>;
  if (!OPTIONAL_FIELDS.some((k) => fields[k] === null)) return input;
  const copy = { ...fields };
  for (const k of OPTIONAL_FIELDS) if (copy[k] === null) delete copy[k];
  return copy;
}

export interface IngestServiceDeps {
  store: Store;
  config: TemConfig;
  clock: Clock;
  metrics?: Metrics;
}

export interface IngestOptions {
  /** Prefix of field names in errors: `body` (HTTP), `body.events.3` (batch), `payload` (WS). */
  field?: string;
  /**
   * Size in bytes of the raw request the input came from. When even its largest growth on
   * re-serializing stays within the payload limit, measuring the payload is skipped.
   */
  sizeHint?: number;
}

export interface IngestResult {
  outcome: 'created' | 'replayed';
  event: TemEvent;
}

export class IngestService {
  private readonly committer: GroupCommitter<IngestItem, IngestOutcome>;

  private readonly access: Pick<ChannelAccess, 'canSubscribe'>;

  constructor(private readonly deps: IngestServiceDeps) {
    this.access = storeChannelAccess(deps.store);
    this.committer = new GroupCommitter({
      maxBatch: deps.config.ingestBatchMax,
      maxInFlight: deps.config.ingestCommitsInFlight,
      commit: (items) => deps.store.ingest(items, deps.clock.now()),
    });
  }

  /** Validates and ingests one event; rejects with IDEMPOTENCY_CONFLICT on a conflicting key. */
  async ingest(ctx: AuthContext, input: unknown, idempotencyKeyHeader?: string, options: IngestOptions = {}): Promise<IngestResult> {
    return this.submit(await this.accept(ctx, input, idempotencyKeyHeader, options));
  }

  /**
   * Everything that decides whether an event may be ingested, before it is committed: the input
   * (`prepare`, throws TemError naming the field) and the channel it names (`checkDelivery`).
   */
  async accept(ctx: AuthContext, input: unknown, idempotencyKeyHeader?: string, options: IngestOptions = {}): Promise<IngestItem> {
    const item = this.prepare(ctx, input, idempotencyKeyHeader, options);
    await this.checkDelivery(ctx, item, options.field ?? 'body');
    return item;
  }

  /**
   * A prepared event naming a shared channel: the producer must be on that channel (a member, a
   * JWT claim, `channels.subscribe.<namespace>`), or hold the permission POST /api/publish takes
   * (services have it). Otherwise anyone could put messages into channels they cannot even see.
   */
  private async checkDelivery(ctx: AuthContext, item: IngestItem, where: string): Promise<void> {
    const channel = item.channel;
    if (channel === null || channel.startsWith('user:') || can(ctx, CHANNEL_PUBLISH_PERMISSION)) return;
    if (await this.access.canSubscribe(ctx, channel)) return;
    throw createError('FORBIDDEN', `Delivering to ${channel} needs access to it (membership) or ${CHANNEL_PUBLISH_PERMISSION}`, { field: `${where}.channel` });
  }

  /** Validates one event and builds the row to insert; throws TemError naming the field. */
  private prepare(ctx: AuthContext, raw: unknown, idempotencyKeyHeader?: string, options: IngestOptions = {}): IngestItem {
    const where = options.field ?? 'body';
    const input = withoutNullOptionals(raw);
    check(validateEventInput, input, where);
    const { config } = this.deps;

    if (input.channel !== undefined && !isChannelName(input.channel)) {
      throw createError('VALIDATION_FAILED', `${where}.channel must be a channel name (namespace:part, no pattern)`, { field: `${where}.channel` });
    }
    // Before anything serializes it: a payload thousands of levels deep would throw (a 500).
    checkPayload(input.payload, `${where}.payload`);
    // Measured unless the body was so small its payload cannot be over the limit. Re-serialized,
    // only numbers grow (`1e20` is 21 digits: 5.25×); strings and whitespace never do.
    if (options.sizeHint === undefined || options.sizeHint * MAX_JSON_GROWTH > config.maxPayloadBytes) {
      const size = Buffer.byteLength(JSON.stringify(input.payload), 'utf8');
      if (size > config.maxPayloadBytes) {
        throw createError('TOO_LARGE', `${where}.payload is ${size} bytes; the limit is ${config.maxPayloadBytes}`, { field: `${where}.payload` });
      }
    }
    const userId = input.user_id ?? ctx.userId;
    if (userId !== ctx.userId && !can(ctx, ON_BEHALF_PERMISSION)) {
      throw createError('FORBIDDEN', `Setting ${where}.user_id to another user needs ${ON_BEHALF_PERMISSION}`, { field: `${where}.user_id` });
    }
    if (input.channel !== undefined) checkDeliveryChannel(input.channel, input.type, userId, where);
    const idempotencyKey = resolveIdempotencyKey(idempotencyKeyHeader, input.idempotency_key, where);
    const occurredAt = input.occurred_at === undefined ? this.deps.clock.now() : parseDateTime(input.occurred_at, `${where}.occurred_at`);
    const channel = input.channel ?? null;
    return {
      id: uuidv7(this.deps.clock.nowMs()),
      type: input.type,
      payload: input.payload,
      producerId: ctx.principalId,
      userId,
      channel,
      idempotencyKey,
      // Only what the client chose: a default occurred_at (now) must not make replays differ.
      requestHash:
        idempotencyKey === null
          ? null
          : requestHash({
              type: input.type,
              payload: input.payload,
              channel,
              user_id: userId,
              occurred_at: input.occurred_at === undefined ? null : occurredAt.toISOString(),
            }),
      occurredAt,
      maxAttempts: retryPolicy(config, input.type).maxAttempts,
    };
  }

  /** Commits a prepared event (group-committed with concurrent ones). */
  async submit(item: IngestItem): Promise<IngestResult> {
    return this.settle(item, await this.committer.submit(item));
  }

  /** Commits several prepared events; one promise per item, in order. */
  submitMany(items: IngestItem[]): Promise<IngestResult>[] {
    return this.committer.submitMany(items).map((p, i) => p.then((outcome) => this.settle(items[i]!, outcome)));
  }

  /** Stops taking events and waits for queued ones to commit. */
  close(): Promise<void> {
    return this.committer.close();
  }

  private settle(item: IngestItem, result: IngestOutcome): IngestResult {
    if (result.outcome === 'failed') throw result.error;
    if (result.outcome === 'conflict') {
      throw createError('IDEMPOTENCY_CONFLICT', `Idempotency key ${JSON.stringify(item.idempotencyKey)} was already used with a different request`, {
        extra: { event_id: result.event.id },
      });
    }
    if (result.outcome === 'created') this.deps.metrics?.eventsIngested.inc();
    return { outcome: result.outcome, event: result.event };
  }
}

function resolveIdempotencyKey(header: string | undefined, field: string | undefined, where: string): string | null {
  if (header !== undefined && !IDEMPOTENCY_KEY_RE.test(header)) {
    throw createError('VALIDATION_FAILED', 'headers.idempotency-key must be 1-255 printable ASCII characters', { field: 'headers.idempotency-key' });
  }
  if (header !== undefined && field !== undefined && header !== field) {
    throw createError('VALIDATION_FAILED', `Idempotency-Key header and ${where}.idempotency_key differ`, { field: `${where}.idempotency_key` });
  }
  return header ?? field ?? null;
}
