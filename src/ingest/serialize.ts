/** The JSON (snake_case) representations the API returns. */
import type { ApiKeyRecord, HistoryEntry, Principal, Role, TemEvent, TemEventWithHistory } from '../core/types.js';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function eventJson(e: TemEvent): Record<string, unknown> {
  return {
    id: e.id,
    type: e.type,
    payload: e.payload,
    producer_id: e.producerId,
    user_id: e.userId,
    channel: e.channel,
    idempotency_key: e.idempotencyKey,
    occurred_at: iso(e.occurredAt),
    status: e.status,
    attempts: e.attempts,
    max_attempts: e.maxAttempts,
    last_error: e.lastError,
    run_at: iso(e.runAt),
    created_at: iso(e.createdAt),
    updated_at: iso(e.updatedAt),
    processed_at: iso(e.processedAt),
    version: e.version,
  };
}

export function historyJson(h: HistoryEntry): Record<string, unknown> {
  return { status: h.status, attempt: h.attempt, error: h.error, at: iso(h.at), version: h.version };
}

export function eventDetailJson(e: TemEventWithHistory): Record<string, unknown> {
  return { ...eventJson(e), history: e.history.map(historyJson) };
}

export function principalJson(p: Principal): Record<string, unknown> {
  return {
    id: p.id,
    kind: p.kind,
    role: p.role,
    extra_permissions: p.extraPermissions,
    revoked_permissions: p.revokedPermissions,
    disabled: p.disabled,
    created_at: iso(p.createdAt),
    updated_at: iso(p.updatedAt),
  };
}

/** A key's metadata; the key itself and its hash never appear. */
export function keyJson(k: ApiKeyRecord): Record<string, unknown> {
  return {
    key_id: k.id,
    id: k.id,
    principal_id: k.principalId,
    prefix: k.prefix,
    created_at: iso(k.createdAt),
    expires_at: iso(k.expiresAt),
    revoked_at: iso(k.revokedAt),
    last_used_at: iso(k.lastUsedAt),
  };
}

export function roleJson(r: Role): Record<string, unknown> {
  return { name: r.name, permissions: r.permissions, builtin: r.builtin, updated_at: iso(r.updatedAt) };
}
