/**
 * The Store: everything TEM keeps in PostgreSQL, behind one interface with two implementations
 * (PGlite embedded, postgres.js distributed). Callers say what they want done; they never see a
 * connection or a transaction. Every method that changes an event's status writes, in the same
 * transaction, the history entry and the outbox notification.
 *
 * Times: methods that depend on "now" take it as an argument (from an injectable Clock) so lease
 * and backoff behaviour is testable without sleeping.
 *
 * Errors: implementations throw TemError — STORE_UNAVAILABLE when the database cannot be
 * reached, CONFLICT / NOT_FOUND / BAD_REQUEST for constraint violations — identically on both.
 */
import type {
  ApiKeyRecord,
  EventStatus,
  OutboxMessage,
  Principal,
  PrincipalKind,
  Role,
  TemEvent,
  TemEventWithHistory,
} from '../core/types.js';
import type { TemError } from '../core/errors.js';

export interface NewPrincipal {
  id: string;
  kind: PrincipalKind;
  role: string;
  extraPermissions?: string[];
  revokedPermissions?: string[];
}

export interface PrincipalPatch {
  role?: string;
  extraPermissions?: string[];
  revokedPermissions?: string[];
  disabled?: boolean;
}

export interface NewApiKey {
  id: string;
  principalId: string;
  hash: string;
  prefix: string;
  expiresAt: Date | null;
}

/** A job whose lease ran out, as the sweep left it: back to `queued`, or `failed` with no attempt left. */
export interface SweptLease {
  eventId: string;
  status: 'queued' | 'failed';
  attempts: number;
}

/** What an API key resolves to: the key, its principal and the principal's role permissions. */
export interface KeyLookup {
  key: ApiKeyRecord;
  /** The stored hash, which the caller compares with its own in constant time. */
  storedHash: string;
  principal: Principal;
  rolePermissions: string[];
}

export interface IngestItem {
  id: string;
  type: string;
  payload: Record<string, unknown>;
  producerId: string;
  userId: string;
  channel: string | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  occurredAt: Date;
  maxAttempts: number;
}

export type IngestOutcome =
  | { outcome: 'created'; event: TemEvent }
  /** Same producer + idempotency key + same request: the original event. */
  | { outcome: 'replayed'; event: TemEvent }
  /** Same producer + idempotency key, different request. */
  | { outcome: 'conflict'; event: TemEvent }
  /**
   * This item's key was taken by another event that could not be read back (the database failed
   * after the batch committed, or the key was pruned in between): this item alone fails, the
   * batch's created events stand. Nothing of this item was written: a retry is safe.
   */
  | { outcome: 'failed'; error: TemError };

export interface EventFilter {
  status?: EventStatus;
  type?: string;
  userId?: string;
  producerId?: string;
  /** created_at ≥ since */
  since?: Date;
  /** Only events this principal may see: owned by or produced by it. Omit for admins. */
  visibleTo?: string;
  /** Only these events (lower-case UUIDs). */
  ids?: string[];
}

/** The relay's publish step: may answer the channels none of whose messages went out (their rows stay). */
export type RelayPublish = (messages: OutboxMessage[]) => Promise<ReadonlySet<string> | void>;

/** One page of a bulk retry: oldest first, after the last id of the page before. */
export interface RetryPage {
  limit: number;
  after?: string;
}

export interface RetryResult {
  /** The events requeued, in id (creation) order. */
  ids: string[];
  /** Paged: whether failed events matching the filter remain after this page's last id. */
  hasMore: boolean;
}

export interface ListEventsQuery extends EventFilter {
  /** Return events with id < cursor (newest first). */
  cursor?: string;
  limit: number;
}

export interface ListPrincipalsQuery {
  kind?: PrincipalKind;
  role?: string;
  cursor?: string;
  limit: number;
}

export interface PrincipalPage {
  principals: Principal[];
  /** The last id of this page when more follow, else null. */
  nextCursor: string | null;
}

export interface EventPage {
  events: TemEvent[];
  /** Pass back as `cursor` for the next page; null when there is none. */
  nextCursor: string | null;
}

export interface ClaimOptions {
  queue: string;
  workerId: string;
  limit: number;
  leaseMs: number;
  now: Date;
}

/** A leased job with its event. `leaseToken` must be presented to complete or fail it. */
export interface ClaimedJob {
  event: TemEvent;
  leaseToken: string;
  /** Attempt number of this run (1 for the first). */
  attempt: number;
  maxAttempts: number;
  leaseExpiresAt: Date;
  /**
   * Processors whose effect for this event was already recorded when it was claimed (lets the
   * worker skip a hasEffect round trip per job; while the lease is held nobody else can add one).
   * Absent: ask hasEffect.
   */
  recordedEffects?: string[];
}

export interface JobRef {
  eventId: string;
  leaseToken: string;
}

export interface CompleteInput {
  processor: string;
  result: unknown;
  /** `result` already serialized (the worker checks it is storable that way): not done twice. */
  resultJson?: string;
}

export interface CompleteItem {
  job: JobRef;
  input: CompleteInput;
}

export interface FailInput {
  error: string;
  /** When to run again; null fails the event for good (attempts exhausted or non-retryable). */
  retryAt: Date | null;
}

export interface EventStats {
  byStatus: Record<EventStatus, number>;
  /** Jobs ready to run (not leased, run_at ≤ now). */
  queueDepth: number;
  /** Age of the oldest ready job in ms (0 when none). */
  oldestQueuedAgeMs: number;
  /** Jobs currently leased. */
  leased: number;
}

export interface MaintenanceTaskClaim {
  name: string;
}

export type Unlisten = () => Promise<void>;

export interface Store {
  readonly kind: 'pglite' | 'postgres';

  /** Apply pending migrations; safe when several processes call it at once. */
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Throws STORE_UNAVAILABLE when the database does not answer. */
  ping(): Promise<void>;

  // ── principals, roles, keys ─────────────────────────────────────────────
  createPrincipal(input: NewPrincipal): Promise<Principal>;
  getPrincipal(id: string): Promise<Principal | null>;
  /** One page in id order: those after `cursor` (an id), up to `limit`, optionally of one kind or role. */
  listPrincipals(query: ListPrincipalsQuery): Promise<PrincipalPage>;
  updatePrincipal(id: string, patch: PrincipalPatch): Promise<Principal | null>;
  getRole(name: string): Promise<Role | null>;
  listRoles(): Promise<Role[]>;
  putRole(name: string, permissions: string[]): Promise<{ role: Role; created: boolean }>;
  createApiKey(input: NewApiKey): Promise<ApiKeyRecord>;
  /** The key with this hash, whatever its state (caller checks expiry/revocation). */
  findApiKeyByHash(hash: string): Promise<KeyLookup | null>;
  listApiKeys(principalId: string): Promise<ApiKeyRecord[]>;
  /** Sets revoked_at (idempotent); null when there is no such key. */
  revokeApiKey(keyId: string, now: Date): Promise<ApiKeyRecord | null>;
  /** Records that these keys were used at `at` (last_used_at only ever moves forward). */
  touchApiKeys(keyIds: string[], at: Date): Promise<void>;
  /** Tell every process that keys, principals or roles changed (cache invalidation). */
  notifyAuthChanged(detail: { principalId?: string; keyId?: string; roles?: boolean }): Promise<void>;
  onAuthChanged(handler: (detail: { principalId?: string; keyId?: string; roles?: boolean }) => void): Promise<Unlisten>;

  // ── channel membership ──────────────────────────────────────────────────
  addChannelMember(channel: string, userId: string): Promise<boolean>;
  removeChannelMember(channel: string, userId: string): Promise<boolean>;
  isChannelMember(channel: string, userId: string): Promise<boolean>;
  listChannelMembers(channel: string): Promise<string[]>;

  // ── events ──────────────────────────────────────────────────────────────
  /**
   * Inserts the events in one transaction: each new event with its `accepted` and `queued`
   * history entries, its job and its outbox notifications. Idempotent per (producer, key);
   * concurrent duplicates resolve to one event. Results are in input order.
   */
  ingest(items: IngestItem[], now: Date): Promise<IngestOutcome[]>;
  getEvent(id: string): Promise<TemEventWithHistory | null>;
  listEvents(query: ListEventsQuery): Promise<EventPage>;
  /**
   * failed → queued for matching events (attempts reset); returns the ids requeued, in id
   * (creation) order. `maxAttemptsFor` sets each event's attempt budget again from its type's
   * current policy. `page` takes at most `limit` of them, those with ids after `after`, and
   * tells whether more remain.
   */
  retryEvents(filter: EventFilter, now: Date, maxAttemptsFor?: (type: string) => number, page?: RetryPage): Promise<RetryResult>;
  stats(now: Date): Promise<EventStats>;

  // ── processing queue ────────────────────────────────────────────────────
  /** Leases up to `limit` ready jobs (FOR UPDATE SKIP LOCKED) and marks their events processing. */
  claim(options: ClaimOptions): Promise<ClaimedJob[]>;
  /** processing → processed with the effect recorded; false when the lease is no longer held. */
  complete(job: JobRef, input: CompleteInput, now: Date): Promise<boolean>;
  /**
   * complete() of many jobs in one statement (one commit): each item fenced on its own; results
   * in input order. What a worker's group commit calls.
   */
  completeMany(items: CompleteItem[], now: Date): Promise<boolean[]>;
  /** processing → queued (retryAt) or failed; false when the lease is no longer held. */
  fail(job: JobRef, input: FailInput, now: Date): Promise<boolean>;
  /** Extends held leases to now + leaseMs; returns the refs still held. */
  extendLeases(jobs: JobRef[], leaseMs: number, now: Date): Promise<JobRef[]>;
  /** Releases held leases without counting the attempt (graceful shutdown). */
  releaseJobs(jobs: JobRef[], now: Date): Promise<number>;
  /** Whether a processor's effect for this event is already recorded. */
  hasEffect(eventId: string, processor: string): Promise<boolean>;
  /** When the next not-leased job becomes ready (null when none) — to sleep until then. */
  nextRunAt(queue: string): Promise<Date | null>;
  /** Called when new jobs become ready on `queue` (LISTEN/NOTIFY). */
  onJobsAvailable(queue: string, handler: () => void): Promise<Unlisten>;

  // ── maintenance queue ───────────────────────────────────────────────────
  /** Requeues (or fails, when attempts are exhausted) jobs whose lease ran out; returns them. */
  sweepExpiredLeases(now: Date): Promise<SweptLease[]>;
  /** Clears idempotency keys of events created before `olderThan`; returns how many. */
  pruneIdempotencyKeys(olderThan: Date): Promise<number>;
  /** Vacuums and analyzes the queue tables (jobs, outbox, outbox_held): they churn faster than autovacuum visits. */
  vacuumQueues(): Promise<void>;
  /** Creates the named maintenance task rows if missing (due at `now`). */
  ensureMaintenanceTasks(names: string[], now: Date): Promise<void>;
  /** Claims one due maintenance task, locking it until now + lockMs. */
  claimMaintenanceTask(workerId: string, now: Date, lockMs: number): Promise<MaintenanceTaskClaim | null>;
  finishMaintenanceTask(name: string, nextRunAt: Date, error: string | null, now: Date): Promise<void>;

  // ── outbox ──────────────────────────────────────────────────────────────
  /**
   * Runs `publish` over the oldest unpublished outbox messages (id order, at most `limit` rows,
   * none of the channels in `skip`) while holding the single relay lock; deletes them only when
   * `publish` resolves, except the rows of the channels it answers with. Those, and the rows of
   * skipped channels, are parked: each channel's rows still go out in id order once it is no
   * longer skipped. `onParked` hears how many rows the round moved out of the outbox's head.
   * Returns how many were published; 0 when another relay holds the lock or nothing is pending.
   */
  relayOutbox(limit: number, publish: RelayPublish, skip?: readonly string[], onParked?: (rows: number) => void): Promise<number>;
  /** Messages not yet relayed, oldest first (inspection and tests). */
  peekOutbox(limit: number): Promise<OutboxMessage[]>;
  onOutbox(handler: () => void): Promise<Unlisten>;
}
