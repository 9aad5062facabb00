/**
 * Presence and sessions in process memory (embedded mode, one gateway). Same rules as Redis
 * (status.ts); every operation is synchronous, hence atomic.
 */
import { systemClock, type Clock } from '../core/clock.js';
import type { PresenceMember, PresenceStatus } from '../protocol/frames.js';
import { assertStatus, assertTtl, bestStatus, changeOf, LINGERING, sortMembers } from './status.js';
import type { PresenceChange, PresenceEntry, PresenceStore, SessionState, SessionStore } from './types.js';

interface Conn {
  status: PresenceStatus;
  expiresAt: number;
  /** A closed connection's entry, left to expire (status.ts). */
  lingering?: boolean;
}

/** channel → user → connection → entry */
type Channels = Map<string, Map<string, Map<string, Conn>>>;

const stored = (c: Conn): string => (c.lingering ? LINGERING + c.status : c.status);
const best = (conns: Map<string, Conn>): PresenceStatus | null => bestStatus([...conns.values()].map(stored));

function purgeExpired(conns: Map<string, Conn>, nowMs: number): void {
  for (const [id, conn] of conns) if (conn.expiresAt <= nowMs) conns.delete(id);
}

function hasExpired(conns: Map<string, Conn>, nowMs: number): boolean {
  for (const conn of conns.values()) if (conn.expiresAt <= nowMs) return true;
  return false;
}

export class MemoryPresenceStore implements PresenceStore {
  private readonly channels: Channels = new Map();
  /** PresenceChange.version: one process, so one counter orders every change. */
  private version = 0;

  async upsert(entry: PresenceEntry, ttlMs: number, nowMs: number): Promise<PresenceChange | null> {
    assertStatus(entry.status);
    assertTtl(ttlMs);
    let users = this.channels.get(entry.channel);
    if (!users) this.channels.set(entry.channel, (users = new Map()));
    let conns = users.get(entry.userId);
    if (!conns) users.set(entry.userId, (conns = new Map()));
    const before = best(conns);
    purgeExpired(conns, nowMs);
    conns.set(entry.connectionId, { status: entry.status, expiresAt: nowMs + ttlMs });
    return changeOf(entry.channel, entry.userId, before, best(conns), ++this.version);
  }

  async linger(entry: Omit<PresenceEntry, 'status'>, ttlMs: number, nowMs: number): Promise<PresenceChange | null> {
    assertTtl(ttlMs);
    const conns = this.channels.get(entry.channel)?.get(entry.userId);
    const conn = conns?.get(entry.connectionId);
    if (!conns || !conn || conn.expiresAt <= nowMs) return null;
    const before = best(conns);
    conn.expiresAt = nowMs + ttlMs;
    conn.lingering = true;
    return changeOf(entry.channel, entry.userId, before, best(conns), ++this.version);
  }

  async remove(channel: string, userId: string, connectionId: string, nowMs: number): Promise<PresenceChange | null> {
    const users = this.channels.get(channel);
    const conns = users?.get(userId);
    if (!users || !conns) return null;
    const before = best(conns);
    conns.delete(connectionId);
    for (const [id, conn] of conns) if (conn.lingering) conns.delete(id);
    purgeExpired(conns, nowMs);
    const after = best(conns);
    if (conns.size === 0) users.delete(userId);
    if (users.size === 0) this.channels.delete(channel);
    return changeOf(channel, userId, before, after, ++this.version);
  }

  async members(channel: string, nowMs: number): Promise<PresenceMember[]> {
    const out: PresenceMember[] = [];
    for (const [userId, conns] of this.channels.get(channel) ?? []) {
      const status = bestStatus([...conns.values()].filter((c) => c.expiresAt > nowMs).map(stored));
      if (status) out.push({ user_id: userId, status });
    }
    return sortMembers(out);
  }

  async expire(nowMs: number): Promise<PresenceChange[]> {
    const changes: PresenceChange[] = [];
    for (const [channel, users] of this.channels) {
      for (const [userId, conns] of users) {
        // Most users have nothing expired: skip them without building their status.
        if (!hasExpired(conns, nowMs)) continue;
        const before = best(conns);
        purgeExpired(conns, nowMs);
        const change = changeOf(channel, userId, before, best(conns), ++this.version);
        if (change) changes.push(change);
        if (conns.size === 0) users.delete(userId);
      }
      if (users.size === 0) this.channels.delete(channel);
    }
    return changes;
  }

  async close(): Promise<void> {
    this.channels.clear();
  }
}

const SESSION_SWEEP_EVERY = 256;
/** Expired sessions are also forgotten on this timer, so a server that went quiet gives them back. */
const SESSION_SWEEP_MS = 60_000;

export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, { json: string; expiresAt: number; owner?: string }>();
  private readonly clock: Clock;
  private saves = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: { clock?: Clock } = {}) {
    this.clock = options.clock ?? systemClock;
    this.sweeper = setInterval(() => this.sweep(), SESSION_SWEEP_MS);
    this.sweeper.unref();
  }

  /** Forgets expired sessions. */
  sweep(now = this.clock.nowMs()): void {
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }

  /** How many sessions are held, expired ones not yet swept included (tests, diagnostics). */
  get size(): number {
    return this.sessions.size;
  }

  async save(state: SessionState, ttlMs: number, options: { takeOver?: boolean } = {}): Promise<void> {
    const now = this.clock.nowMs();
    if (!options.takeOver && !this.heldBy(state.sessionId, state.owner, now)) return;
    // Stored as JSON, as in Redis: a caller mutating its object later does not change the session.
    this.sessions.set(state.sessionId, { json: JSON.stringify(state), expiresAt: now + ttlMs, owner: state.owner });
    if (++this.saves % SESSION_SWEEP_EVERY === 0) this.sweep(now);
  }

  async load(sessionId: string): Promise<SessionState | null> {
    const s = this.sessions.get(sessionId);
    if (!s) return null;
    if (s.expiresAt <= this.clock.nowMs()) {
      this.sessions.delete(sessionId);
      return null;
    }
    return JSON.parse(s.json) as SessionState;
  }

  async delete(sessionId: string, owner?: string): Promise<void> {
    if (owner === undefined || this.heldBy(sessionId, owner, this.clock.nowMs())) this.sessions.delete(sessionId);
  }

  /** No live session, one without an owner, or one `owner` holds. */
  private heldBy(sessionId: string, owner: string | undefined, now: number): boolean {
    const s = this.sessions.get(sessionId);
    return !s || s.expiresAt <= now || s.owner === undefined || s.owner === owner;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.sessions.clear();
  }
}
