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
    // A change naming neither key nor principal is a role edit: it may concern anyone.
    const messages: ControlMessage[] =
      change.keyId || change.principalId
        ? [
            ...(change.keyId ? [{ kind: 'revoke_key' as const, keyId: change.keyId }] : []),
            ...(change.principalId ? [{ kind: 'revoke_principal' as const, principalId: change.principalId }] : []),
          ]
        : [{ kind: 'roles_changed' }];
    for (const message of messages) {
      bus.publishControl(message).catch((err: unknown) => logger.warn({ err, message }, 'could not forward an auth change to gateways'));
    }
  });
}
