/**
 * Revocation and other control messages. A revoked key's sockets close 4001 at once, on every
 * node (the control message reaches all of them). A changed principal (disabled, role or
 * permissions edited) has its connections' tokens checked again: those no longer valid close
 * 4001, the others pick up their new permissions; an edited role does the same for every
 * connection. A removed channel membership ends the user's
 * subscriptions to that channel where nothing else grants it (AccessRecheck). A periodic re-check
 * of every connection is the backstop for a control message lost while a node was cut off from
 * the bus.
 */
import type { AuthContext, TokenAuthenticator } from '../auth/types.js';
import type { ControlMessage } from '../bus/types.js';
import { isTemError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import { CLOSE_CODES } from '../protocol/codes.js';
import type { Connection } from './connection.js';
import { isRevocationAware } from './introspect-client.js';

/** Which connections a revocation or re-check concerns; empty means all. */
export interface ConnectionFilter {
  keyId?: string;
  principalId?: string;
  userId?: string;
}

/** Revocations must bite within 5 s (contract §1); the second check runs well within that. */
const RECHECK_DELAY_MS = 2000;

/** An authenticator that can announce invalidations (src/auth/authenticator.ts). */
interface InvalidationSource {
  onRevoked(listener: (change: { principalId?: string; keyId?: string }) => void): () => void;
}

function isInvalidationSource(x: unknown): x is InvalidationSource {
  return typeof (x as Partial<InvalidationSource> | null)?.onRevoked === 'function';
}

export function matches(conn: Connection, filter: ConnectionFilter | undefined): boolean {
  const auth = conn.auth;
  if (!auth) return false;
  if (!filter) return true;
  if (filter.keyId !== undefined && auth.keyId !== filter.keyId) return false;
  if (filter.principalId !== undefined && auth.principalId !== filter.principalId) return false;
  if (filter.userId !== undefined && auth.userId !== filter.userId) return false;
  return true;
}

export interface RevocationDeps {
  connections: ReadonlySet<Connection>;
  auth: TokenAuthenticator;
  logger: Logger;
  /** Where `ephemeral` control messages (typing, presence notices) go. */
  deliverNotice: (channel: string, event: string, payload: unknown) => void;
  /** Where `membership_removed` control messages go (AccessRecheck). */
  membershipRemoved: (channel: string, userId: string) => void;
  /**
   * Called once the connections matching `filter` hold their refreshed permissions after a role
   * edit or a principal change: their subscriptions are checked against them (AccessRecheck).
   */
  permissionsChanged?: (filter: ConnectionFilter) => void;
  /** Where `membership_added` control messages go (the membership cache forgets its answer). */
  membershipAdded: (channel: string, userId: string) => void;
}

export class Revocation {
  constructor(private readonly deps: RevocationDeps) {}

  closeMatching(filter: ConnectionFilter, code: number, reason: string): number {
    let n = 0;
    for (const conn of [...this.deps.connections]) {
      if (matches(conn, filter)) {
        conn.close(code, reason);
        n++;
      }
    }
    return n;
  }

  /** Re-authenticates matching connections (one check per distinct token); returns how many closed. */
  async revalidate(filter?: ConnectionFilter): Promise<number> {
    const targets = [...this.deps.connections].filter((c) => matches(c, filter) && c.token);
    const checks = new Map<string, Promise<AuthContext | 'invalid' | 'unknown'>>();
    let closed = 0;
    await Promise.all(
      targets.map(async (conn) => {
        const token = conn.token!;
        let check = checks.get(token);
        if (!check) {
          check = this.deps.auth.authenticate(token).then(
            (a) => a,
            // Only a definite "no" closes: an unreachable auth service must not drop everyone.
            (err: unknown) => (isTemError(err) && err.code === 'UNAUTHORIZED' ? 'invalid' : 'unknown'),
          );
          checks.set(token, check);
        }
        const result = await check;
        if (result === 'invalid') {
          conn.close(CLOSE_CODES.UNAUTHORIZED, 'credential revoked or no longer valid');
          closed++;
        } else if (result !== 'unknown' && conn.token === token && result.userId === conn.userId) {
          conn.auth = result; // permissions may have changed
        }
      }),
    );
    return closed;
  }

  /** Checks now, and once more a little later for an API process whose cache had not yet heard. */
  recheck(filter: ConnectionFilter): void {
    const run = () =>
      void this.revalidate(filter).then(
        () => this.deps.permissionsChanged?.(filter),
        (err: unknown) => this.deps.logger.warn({ err }, 'revalidation failed'),
      );
    run();
    const t = setTimeout(run, RECHECK_DELAY_MS);
    t.unref?.();
  }

  /**
   * Every API process forwards a role edit it hears about, so one edit arrives several times.
   * Those that arrive while a re-check of every connection runs make one more run after it (a
   * second edit in between must not be skipped), and the later pass is pushed back to the last.
   */
  private rolesRun: Promise<void> | null = null;
  private rolesAgain = false;
  private rolesLater: NodeJS.Timeout | null = null;
  private rolesChanged(): void {
    if (this.rolesLater) clearTimeout(this.rolesLater);
    this.rolesLater = setTimeout(() => {
      this.rolesLater = null;
      this.checkAllRoles();
    }, RECHECK_DELAY_MS);
    this.rolesLater.unref?.();
    this.checkAllRoles();
  }

  private checkAllRoles(): void {
    if (this.rolesRun) {
      this.rolesAgain = true;
      return;
    }
    this.rolesRun = this.revalidate({})
      .then(
        () => this.deps.permissionsChanged?.({}),
        (err: unknown) => this.deps.logger.warn({ err }, 'revalidation failed'),
      )
      .finally(() => {
        this.rolesRun = null;
        if (!this.rolesAgain) return;
        this.rolesAgain = false;
        this.checkAllRoles();
      });
  }

  onControl(message: ControlMessage): void {
    if (isRevocationAware(this.deps.auth)) this.deps.auth.handleControl(message);
    switch (message.kind) {
      case 'revoke_key':
        this.closeMatching({ keyId: message.keyId }, CLOSE_CODES.UNAUTHORIZED, 'credential revoked');
        break;
      case 'revoke_principal':
        this.recheck({ principalId: message.principalId });
        break;
      case 'roles_changed':
        this.rolesChanged();
        break;
      case 'disconnect_user':
        this.closeMatching({ userId: message.userId }, message.code, message.reason);
        break;
      case 'membership_removed':
        if (typeof message.channel === 'string' && typeof message.userId === 'string') this.deps.membershipRemoved(message.channel, message.userId);
        break;
      case 'membership_added':
        if (typeof message.channel === 'string' && typeof message.userId === 'string') this.deps.membershipAdded(message.channel, message.userId);
        break;
      case 'ephemeral':
        if (typeof message.channel === 'string' && typeof message.event === 'string') this.deps.deliverNotice(message.channel, message.event, message.payload);
        break;
    }
  }

  /**
   * In a process holding the Authenticator (embedded), its invalidations arrive directly, before
   * any bus message. Returns a function that stops listening.
   */
  listenToAuthenticator(): () => void {
    const auth = this.deps.auth;
    if (!isInvalidationSource(auth)) return () => undefined;
    return auth.onRevoked((change) => {
      if (change.keyId) this.closeMatching({ keyId: change.keyId }, CLOSE_CODES.UNAUTHORIZED, 'credential revoked');
      // The cache is already dropped, so checking again is exact.
      this.recheck(change.principalId ? { principalId: change.principalId } : {});
    });
  }
}
