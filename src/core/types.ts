/**
 * Glossary
 * - principal: who calls. A `service` produces events; a `user` receives their status updates
 *   (and may produce too). Ids are operator-chosen strings (`payments`, `u_42`).
 * - event: one business fact sent to TEM (`payment.success`), owned by `user_id`, produced by
 *   `producer_id`, moving through EVENT_STATUSES.
 * - job: the unit of work that processes one event. It holds the lease; the event holds the status.
 * - lease / fencing token: a claim on a job that runs out at `leaseExpiresAt`. Every claim gets a
 *   new token; completing or failing needs the current token, so a worker whose lease was swept
 *   (a zombie) cannot commit.
 * - outbox: rows written in the same transaction as each status change; the relay reads them and
 *   publishes to the bus, so a notification is never sent for an uncommitted state nor lost.
 * - effect: a processor's recorded result, unique per (event, processor): exactly-once effects.
 * - channel: `namespace:part(:part)*`, the unit of real-time delivery; `user:{id}` is a user's own.
 */

export const EVENT_STATUSES = ['accepted', 'queued', 'processing', 'processed', 'failed'] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

/** Order used to drop stale updates: a client never sees a status go backwards within one attempt. */
export const TERMINAL_STATUSES: readonly EventStatus[] = ['processed', 'failed'];

export type PrincipalKind = 'service' | 'user';

export interface Principal {
  id: string;
  kind: PrincipalKind;
  role: string;
  extraPermissions: string[];
  revokedPermissions: string[];
  disabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface Role {
  name: string;
  permissions: string[];
  builtin: boolean;
  updatedAt: Date;
}

export interface ApiKeyRecord {
  id: string;
  principalId: string;
  /** First characters of the key, safe to show (`tem_AbC1…`). */
  prefix: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export interface TemEvent {
  id: string;
  type: string;
  payload: Record<string, unknown>;
  producerId: string;
  userId: string;
  channel: string | null;
  idempotencyKey: string | null;
  occurredAt: Date;
  status: EventStatus;
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  runAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  processedAt: Date | null;
  /** Monotonic per event: bumped on every status change; carried in notifications for ordering. */
  version: number;
}

export interface HistoryEntry {
  status: EventStatus;
  attempt: number;
  error: string | null;
  at: Date;
  version: number;
}

export interface TemEventWithHistory extends TemEvent {
  history: HistoryEntry[];
}

/** The notification written to the outbox for each committed status change or delivery. */
export interface OutboxMessage {
  id: number;
  eventId: string;
  /** `user:{id}` for status updates, the event's `channel` for processed deliveries. */
  channel: string;
  /** `event.update` or, for channel deliveries, the event's type. */
  event: string;
  payload: Record<string, unknown>;
  createdAt: Date;
}

/** Payload of an `event.update` notification (contract §4). */
export interface EventUpdatePayload {
  event_id: string;
  status: EventStatus;
  user_id: string;
  type: string;
  attempts: number;
  updated_at: string;
  version: number;
  last_error?: string | null;
}
