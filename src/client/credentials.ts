/**
 * The token the client connects with: a static API key or JWT, or whatever `getToken()` returns,
 * asked again before every connection attempt. A token the server refused (4001) is remembered,
 * so that getToken handing back the same one ends in `closed` instead of a reconnect loop.
 */
import type { GetToken, TokenReason } from './types.js';

export type TokenOutcome = { ok: true; token: string | undefined } | { ok: false; reason: string };

export class Credentials {
  private current: string | undefined;
  private refused: string | undefined;
  /** A token already fetched (after 4001 or an expiry) for the next attempt. */
  private next: string | undefined;

  constructor(
    private token: string | undefined,
    private readonly getToken: GetToken | undefined,
  ) {}

  /** The token of the current (or last) connection attempt. */
  get value(): string | undefined {
    return this.current;
  }

  get refreshable(): boolean {
    return this.getToken !== undefined;
  }

  /** Replaces the static token. */
  set(token: string): void {
    this.token = token;
    if (this.refused === token) this.refused = undefined;
  }

  /** The server accepted the token, or the application starts over (connect() after closed). */
  clearRefused(): void {
    this.refused = undefined;
  }

  /** The token for a connection attempt. Throws what getToken throws. */
  async forAttempt(reason: TokenReason): Promise<TokenOutcome> {
    let token: string | undefined;
    if (this.next !== undefined) {
      token = this.next;
      this.next = undefined;
    } else if (this.getToken) {
      token = (await this.getToken({ reason })) ?? undefined;
    } else {
      token = this.token;
    }
    if (this.getToken && !token) return { ok: false, reason: 'getToken returned no token' };
    if (token !== undefined && token === this.refused) return { ok: false, reason: 'the server rejected the token and no new one was given' };
    this.current = token;
    return { ok: true, token };
  }

  /**
   * The server refused the current token (4001). Asks getToken for another one; true when a
   * different token came back (the next attempt uses it). Throws what getToken throws.
   */
  async replaceRefused(): Promise<boolean> {
    const refused = this.current;
    this.refused = refused;
    if (!this.getToken) return false;
    const token = (await this.getToken({ reason: 'unauthorized' })) ?? undefined;
    if (!token || token === refused) return false;
    this.next = token;
    return true;
  }

  /** The server says the token expired while connected: true when getToken gave a new one. */
  async replaceExpired(): Promise<boolean> {
    if (!this.getToken) return false;
    const token = (await this.getToken({ reason: 'expired' })) ?? undefined;
    if (!token || token === this.current) return false;
    this.next = token;
    return true;
  }
}
