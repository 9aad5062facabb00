/**
 * Small adapters composition roots use to connect components that must not import each other.
 */
import type { Authenticator } from '../auth/authenticator.js';
import type { Bus, ControlMessage } from '../bus/types.js';
import type { Logger } from '../observability/logger.js';

/**
 * Key, principal and role changes reach gateway nodes as bus control messages, so revoked keys'
 * sockets close on every node (gateways in distributed mode hold no database connection).
 */
export function forwardAuthChanges(authenticator: Authenticator, bus: Bus, logger: Logger): () => void {
  return authenticator.onRevoked((change) => {
    // An empty change (a reconnect of the database listener) says nothing new to gateways.
    const messages: ControlMessage[] = [
      ...(change.keyId ? [{ kind: 'revoke_key' as const, keyId: change.keyId }] : []),
      ...(change.principalId ? [{ kind: 'revoke_principal' as const, principalId: change.principalId }] : []),
      ...(change.roles ? [{ kind: 'roles_changed' as const }] : []),
    ];
    for (const message of messages) void forward(bus, message, logger);
  });
}

/** Retries over about a minute, by when every gateway's periodic re-check has caught up anyway. */
const FORWARD_RETRY_MS = [250, 500, 1000, 2000, 4000, 8000, 15_000, 30_000];

/**
 * Publishes one auth change, retrying while the bus is down: a revocation must reach gateways
 * within seconds of Redis coming back, not at their next periodic re-check.
 */
async function forward(bus: Bus, message: ControlMessage, logger: Logger): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await bus.publishControl(message);
      if (attempt > 0) logger.info({ message, attempts: attempt + 1 }, 'auth change forwarded to gateways');
      return;
    } catch (err) {
      const delay = FORWARD_RETRY_MS[attempt];
      if (attempt === 0 || delay === undefined) logger.warn({ err, message, retrying: delay !== undefined }, 'could not forward an auth change to gateways');
      if (delay === undefined) return;
      await new Promise<void>((resolve) => setTimeout(resolve, delay).unref?.());
    }
  }
}
