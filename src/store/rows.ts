/**
 * Row shapes as both drivers return them (snake_case, int8 as number, timestamps as Date, jsonb
 * parsed) and their mapping to the camelCase types of src/core/types.ts.
 */
import type {
  ApiKeyRecord,
  EventStatus,
  EventUpdatePayload,
  HistoryEntry,
  OutboxMessage,
  Principal,
  PrincipalKind,
  Role,
  TemEvent,
} from '../core/types.js';

/** Columns selected for an event: `events e LEFT JOIN jobs j ON j.event_id = e.id`. */
export const EVENT_COLUMNS = `e.id::text AS id, e.type, e.payload, e.producer_id, e.user_id, e.channel,
  e.idempotency_key, e.request_hash, e.occurred_at, e.status, e.attempts, e.max_attempts, e.last_error,
  e.version, e.created_at, e.updated_at, e.processed_at, j.run_at`;

export interface EventRow {
  id: string;
  type: string;
  payload: Record<string, unknown>;
  producer_id: string;
  user_id: string;
  channel: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  occurred_at: Date;
  status: EventStatus;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
  processed_at: Date | null;
  run_at: Date | null;
}

export function toEvent(r: EventRow): TemEvent {
  return {
    id: r.id,
    type: r.type,
    payload: r.payload,
    producerId: r.producer_id,
    userId: r.user_id,
    channel: r.channel,
    idempotencyKey: r.idempotency_key,
    occurredAt: r.occurred_at,
    status: r.status,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    lastError: r.last_error,
    runAt: r.run_at ?? null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    processedAt: r.processed_at,
    version: r.version,
  };
}

export interface HistoryRow {
  status: EventStatus;
  attempt: number;
  error: string | null;
  at: Date;
  version: number;
}

export function toHistory(r: HistoryRow): HistoryEntry {
  return { status: r.status, attempt: r.attempt, error: r.error, at: r.at, version: r.version };
}

export interface PrincipalRow {
  id: string;
  kind: PrincipalKind;
  role: string;
  extra_permissions: string[];
  revoked_permissions: string[];
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
}

export function toPrincipal(r: PrincipalRow): Principal {
  return {
    id: r.id,
    kind: r.kind,
    role: r.role,
    extraPermissions: r.extra_permissions,
    revokedPermissions: r.revoked_permissions,
    disabled: r.disabled,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface RoleRow {
  name: string;
  permissions: string[];
  builtin: boolean;
  updated_at: Date;
}

export function toRole(r: RoleRow): Role {
  return { name: r.name, permissions: r.permissions, builtin: r.builtin, updatedAt: r.updated_at };
}

export interface ApiKeyRow {
  id: string;
  principal_id: string;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export function toApiKey(r: ApiKeyRow): ApiKeyRecord {
  return {
    id: r.id,
    principalId: r.principal_id,
    prefix: r.prefix,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  };
}

export interface OutboxRow {
  id: number;
  event_id: string;
  channel: string;
  event: string;
  /** A delivery's payload; null for an `event.update`, whose state is in the columns below. */
  payload: Record<string, unknown> | null;
  user_id: string | null;
  type: string | null;
  status: EventStatus | null;
  attempts: number | null;
  version: number | null;
  updated_at: Date | null;
  last_error: string | null;
  created_at: Date;
  /** An `event.update` that also stands for the `accepted` state before it (migration 000007). */
  with_accepted: boolean;
}

/** The outbox columns the relay reads, by name: OUTBOX_COLUMNS selects each of them. */
export const OUTBOX_COLUMN_NAMES = 'id, event_id, channel, event, payload, user_id, type, status, attempts, version, updated_at, last_error, created_at, with_accepted';

/** Qualified, so a statement joining the outbox to something else (the relay's take) can use them. */
export const OUTBOX_COLUMNS = `outbox.id, outbox.event_id::text AS event_id, outbox.channel, outbox.event, outbox.payload,
  outbox.user_id, outbox.type, outbox.status, outbox.attempts, outbox.version, outbox.updated_at, outbox.last_error,
  outbox.created_at, outbox.with_accepted`;

/**
 * The messages of one outbox row, in the order they go out: one, or for a row written
 * `with_accepted` the `accepted` update (the version before, same instant) and then its own.
 */
export function toOutbox(r: OutboxRow): OutboxMessage[] {
  const message = { id: r.id, eventId: r.event_id, channel: r.channel, event: r.event, payload: r.payload ?? updatePayload(r), createdAt: r.created_at };
  if (!r.with_accepted) return [message];
  return [{ ...message, payload: updatePayload({ ...r, status: 'accepted', version: r.version! - 1 }) }, message];
}

/** The EventUpdatePayload (src/core/types.ts) of an `event.update` row. */
function updatePayload(r: OutboxRow): EventUpdatePayload & Record<string, unknown> {
  return {
    event_id: r.event_id,
    status: r.status!,
    user_id: r.user_id!,
    type: r.type!,
    attempts: r.attempts!,
    updated_at: r.updated_at!.toISOString(),
    version: r.version!,
    last_error: r.last_error,
  };
}
