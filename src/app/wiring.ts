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
    for (const message of messages) {
      bus.publishControl(message).catch((err: unknown) => logger.warn({ err, message }, 'could not forward an auth change to gateways'));
    }
  });
}
