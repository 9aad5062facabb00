/**
 * The Store over a Db: the same SQL for PGlite and PostgreSQL. Every public method maps driver
 * errors to TemError the same way (src/store/errors.ts), so callers never see a driver error.
 */
import type { Db } from './db.js';
import type {
  ClaimOptions,
  ClaimedJob,
  CompleteInput,
  CompleteItem,
  EventFilter,
  EventPage,
  EventStats,
  FailInput,
  IngestItem,
  IngestOutcome,
  JobRef,
  KeyLookup,
  ListEventsQuery,
  RelayPublish,
  RetryPage,
  RetryResult,
  ListPrincipalsQuery,
  MaintenanceTaskClaim,
  NewApiKey,
  NewPrincipal,
  PrincipalPage,
  PrincipalPatch,
  Store,
  SweptLease,
  Unlisten,
} from './types.js';
import type { ApiKeyRecord, OutboxMessage, Principal, Role, TemEventWithHistory } from '../core/types.js';
import { createError } from '../core/errors.js';
import { isLostSession, mapped, type MapHints } from './errors.js';
import { migrate } from './migrate.js';
import { OUTBOX_CHANNEL, jobsChannel } from './ops/changes.js';
import * as principals from './ops/principals.js';
import * as roles from './ops/roles.js';
import * as keys from './ops/api-keys.js';
import * as members from './ops/channel-members.js';
import { ingest } from './ops/ingest.js';
import { getEvent } from './ops/get-event.js';
import { listEvents } from './ops/list-events.js';
import { retryEvents } from './ops/retry-events.js';
import { EventTotals, stats } from './ops/stats.js';
import { claim } from './ops/claim.js';
import { complete } from './ops/complete.js';
import { completeMany } from './ops/complete-many.js';
import { fail } from './ops/fail.js';
import { extendLeases, releaseJobs } from './ops/leases.js';
import { hasEffect, nextRunAt } from './ops/queue.js';
import { sweepExpiredLeases } from './ops/sweep.js';
import { pruneIdempotencyKeys } from './ops/prune.js';
import { vacuumQueues } from './ops/vacuum.js';
import * as maintenance from './ops/maintenance.js';
import { peekOutbox, relayOutbox } from './ops/outbox.js';

const AUTH_CHANNEL = 'tem_auth';
/** Tries of a read whose connection the server ended (read()). */
const READ_ATTEMPTS = 3;

type AuthDetail = { principalId?: string; keyId?: string; roles?: boolean };

export class SqlStore implements Store {
  readonly kind: 'pglite' | 'postgres';
  private closed = false;
  /** The events counted so far, so stats() need not count them all again (ops/stats.ts). */
  private readonly totals = new EventTotals();

  constructor(private readonly db: Db) {
    this.kind = db.kind;
  }

  async migrate(): Promise<void> {
    await this.run(() => migrate(this.db));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }

  async ping(): Promise<void> {
    await this.run(() => this.db.query('SELECT 1 AS ok'));
  }

  // ── principals, roles, keys ─────────────────────────────────────────────
  createPrincipal(input: NewPrincipal): Promise<Principal> {
    return this.run(() => principals.createPrincipal(this.db, input));
  }
  getPrincipal(id: string): Promise<Principal | null> {
    return this.read(() => principals.getPrincipal(this.db, id));
  }
  listPrincipals(query: ListPrincipalsQuery): Promise<PrincipalPage> {
    return this.read(() => principals.listPrincipals(this.db, query));
  }
  updatePrincipal(id: string, patch: PrincipalPatch): Promise<Principal | null> {
    return this.run(() => principals.updatePrincipal(this.db, id, patch));
  }
  getRole(name: string): Promise<Role | null> {
    return this.read(() => roles.getRole(this.db, name));
  }
  listRoles(): Promise<Role[]> {
    return this.read(() => roles.listRoles(this.db));
  }
  putRole(name: string, permissions: string[]): Promise<{ role: Role; created: boolean }> {
    return this.run(() => roles.putRole(this.db, name, permissions));
  }
  createApiKey(input: NewApiKey): Promise<ApiKeyRecord> {
    return this.run(() => keys.createApiKey(this.db, input));
  }
  findApiKeyByHash(hash: string): Promise<KeyLookup | null> {
    return this.read(() => keys.findApiKeyByHash(this.db, hash));
  }
  listApiKeys(principalId: string): Promise<ApiKeyRecord[]> {
    return this.read(() => keys.listApiKeys(this.db, principalId));
  }
  revokeApiKey(keyId: string, now: Date): Promise<ApiKeyRecord | null> {
    return this.run(() => keys.revokeApiKey(this.db, keyId, now));
  }
  touchApiKeys(keyIds: string[], at: Date): Promise<void> {
    return this.run(() => keys.touchApiKeys(this.db, keyIds, at));
  }
  async notifyAuthChanged(detail: AuthDetail): Promise<void> {
    await this.run(() => this.db.query(`SELECT pg_notify($1, $2)`, [AUTH_CHANNEL, JSON.stringify(detail)]));
  }
  onAuthChanged(handler: (detail: AuthDetail) => void): Promise<Unlisten> {
    return this.listen(AUTH_CHANNEL, (payload) => {
      let detail: AuthDetail = {};
      try {
        detail = payload ? (JSON.parse(payload) as AuthDetail) : {};
      } catch {
        /* a foreign payload still means "something changed" */
      }
      handler(detail);
    });
  }

  // ── channel membership ──────────────────────────────────────────────────
  addChannelMember(channel: string, userId: string): Promise<boolean> {
    return this.run(() => members.addChannelMember(this.db, channel, userId));
  }
  removeChannelMember(channel: string, userId: string): Promise<boolean> {
    return this.run(() => members.removeChannelMember(this.db, channel, userId));
  }
  isChannelMember(channel: string, userId: string): Promise<boolean> {
    return this.read(() => members.isChannelMember(this.db, channel, userId));
  }
  listChannelMembers(channel: string): Promise<string[]> {
    return this.read(() => members.listChannelMembers(this.db, channel));
  }

  // ── events ──────────────────────────────────────────────────────────────
  ingest(items: IngestItem[], now: Date): Promise<IngestOutcome[]> {
    return this.run(() => ingest(this.db, items, now), { unique: 'An event with this id already exists' });
  }
  getEvent(id: string): Promise<TemEventWithHistory | null> {
    return this.read(() => getEvent(this.db, id));
  }
  listEvents(query: ListEventsQuery): Promise<EventPage> {
    return this.read(() => listEvents(this.db, query));
  }
  retryEvents(filter: EventFilter, now: Date, maxAttemptsFor?: (type: string) => number, page?: RetryPage): Promise<RetryResult> {
    return this.run(() => retryEvents(this.db, filter, now, maxAttemptsFor, page));
  }
  stats(now: Date): Promise<EventStats> {
    return this.read(() => stats(this.db, now, this.totals));
  }

  // ── processing queue ────────────────────────────────────────────────────
  claim(options: ClaimOptions): Promise<ClaimedJob[]> {
    return this.run(() => claim(this.db, options));
  }
  complete(job: JobRef, input: CompleteInput, now: Date): Promise<boolean> {
    return this.run(() => complete(this.db, job, input, now));
  }
  completeMany(items: CompleteItem[], now: Date): Promise<boolean[]> {
    return this.run(() => completeMany(this.db, items, now));
  }
  fail(job: JobRef, input: FailInput, now: Date): Promise<boolean> {
    return this.run(() => fail(this.db, job, input, now));
  }
  extendLeases(jobs: JobRef[], leaseMs: number, now: Date): Promise<JobRef[]> {
    return this.run(() => extendLeases(this.db, jobs, leaseMs, now));
  }
  releaseJobs(jobs: JobRef[], now: Date): Promise<number> {
    return this.run(() => releaseJobs(this.db, jobs, now));
  }
  hasEffect(eventId: string, processor: string): Promise<boolean> {
    return this.read(() => hasEffect(this.db, eventId, processor));
  }
  nextRunAt(queue: string): Promise<Date | null> {
    return this.read(() => nextRunAt(this.db, queue));
  }
  onJobsAvailable(queue: string, handler: () => void): Promise<Unlisten> {
    return this.listen(jobsChannel(queue), () => handler());
  }

  // ── maintenance queue ───────────────────────────────────────────────────
  sweepExpiredLeases(now: Date): Promise<SweptLease[]> {
    return this.run(() => sweepExpiredLeases(this.db, now));
  }
  pruneIdempotencyKeys(olderThan: Date): Promise<number> {
    return this.run(() => pruneIdempotencyKeys(this.db, olderThan));
  }
  vacuumQueues(): Promise<void> {
    return this.run(() => vacuumQueues(this.db));
  }
  ensureMaintenanceTasks(names: string[], now: Date): Promise<void> {
    return this.run(() => maintenance.ensureMaintenanceTasks(this.db, names, now));
  }
  claimMaintenanceTask(workerId: string, now: Date, lockMs: number): Promise<MaintenanceTaskClaim | null> {
    return this.run(() => maintenance.claimMaintenanceTask(this.db, workerId, now, lockMs));
  }
  finishMaintenanceTask(name: string, nextRunAt: Date, error: string | null, now: Date): Promise<void> {
    return this.run(() => maintenance.finishMaintenanceTask(this.db, name, nextRunAt, error, now));
  }

  // ── outbox ──────────────────────────────────────────────────────────────
  relayOutbox(limit: number, publish: RelayPublish, skip?: readonly string[], onParked?: (rows: number) => void): Promise<number> {
    // A publish failure is the caller's error, rethrown as is; only database errors are mapped.
    let publishError: { err: unknown } | undefined;
    const guarded: RelayPublish = async (messages) => {
      try {
        return await publish(messages);
      } catch (err) {
        publishError = { err };
        throw err;
      }
    };
    return this.run(() => relayOutbox(this.db, limit, guarded, skip, onParked)).catch((err: unknown) => {
      throw publishError ? publishError.err : err;
    });
  }
  peekOutbox(limit: number): Promise<OutboxMessage[]> {
    return this.read(() => peekOutbox(this.db, limit));
  }
  onOutbox(handler: () => void): Promise<Unlisten> {
    return this.listen(OUTBOX_CHANNEL, () => handler());
  }

  /** Every call: closed → STORE_UNAVAILABLE (like a database that went away), driver errors mapped. */
  private run<T>(fn: () => Promise<T>, hints?: MapHints): Promise<T> {
    if (this.closed) return Promise.reject(createError('STORE_UNAVAILABLE', 'The store is closed'));
    return mapped(fn, hints);
  }

  /**
   * A read, tried again on another connection when the server ended the one it ran on (an
   * operator's pg_terminate_backend, a restarted server, a proxy dropping idle connections): the
   * pool hands out such a dead connection once, and a read can simply run again. A database that
   * refuses or does not answer is not tried again here (that is an outage: 503).
   */
  private async read<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.run(fn);
      } catch (err) {
        if (attempt >= READ_ATTEMPTS || this.closed || !isLostSession(err)) throw err;
      }
    }
  }

  private listen(channel: string, cb: (payload: string) => void): Promise<Unlisten> {
    return this.run(async () => {
      const stop = await this.db.listen(channel, cb);
      return () => mapped(stop).catch(() => undefined);
    });
  }
}
