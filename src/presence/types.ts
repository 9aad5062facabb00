/**
 * Presence: who is on a channel and their status, and resumable sessions. Entries expire by TTL
 * (refreshed by heartbeats), so a node that dies without saying goodbye still turns its users
 * `offline` once the TTL runs out. Memory for embedded mode, Redis for many nodes.
 */
import type { PresenceMember, PresenceStatus, StreamPosition } from '../protocol/frames.js';

export interface PresenceEntry {
  channel: string;
  userId: string;
  /** One per connection; a user is online while any of its connections is. */
  connectionId: string;
  status: PresenceStatus;
}

export interface PresenceChange {
  channel: string;
  userId: string;
  kind: 'join' | 'leave' | 'update';
  status: PresenceStatus | 'offline';
  /**
   * Orders the changes of one user on one channel, whichever node made them: nodes announce
   * their changes after the store answers, so two nodes' notices can cross on the way, and a
   * receiver drops one older than the last it passed on. Redis's clock (µs) in Redis; a counter
   * in memory.
   */
  version: number;
}

export interface PresenceStore {
  /** Adds or refreshes a connection's entry; returns a change when the user's visible state changed. */
  upsert(entry: PresenceEntry, ttlMs: number, nowMs: number): Promise<PresenceChange | null>;
  /**
   * The connection closed (or stopped receiving the channel): its entry is re-stamped to expire
   * `ttlMs` from now and lingers until then, counting only while the user has no open
   * connection there (status.ts). Only while it is live: an entry that expired (and whose leave
   * may have been announced already, e.g. while this node could not reach Redis) is not brought
   * back. Returns a change when the user's visible status changed (another open connection's
   * status now shows).
   */
  linger(entry: Omit<PresenceEntry, 'status'>, ttlMs: number, nowMs: number): Promise<PresenceChange | null>;
  /**
   * The connection left the channel (UNSUBSCRIBE, or its access was taken): removes its entry and
   * the user's closed connections' entries there, which linger only so a reload does not flicker
   * — once the user leaves on purpose they must not keep it online. Returns `leave` when no open
   * connection of the user is left there.
   */
  remove(channel: string, userId: string, connectionId: string, nowMs: number): Promise<PresenceChange | null>;
  /** Members with live entries, a user's best status over its connections. */
  members(channel: string, nowMs: number): Promise<PresenceMember[]>;
  /** Drops expired entries and reports the users who thereby left. */
  expire(nowMs: number): Promise<PresenceChange[]>;
  /**
   * Calls `handler` each time the store can be written again after losing its connection (Redis
   * restarted, failed over or was cut off), when entries may be gone. Returns the unsubscribe.
   * Stores that cannot lose entries this way (memory) need not implement it.
   */
  onReconnect?(handler: () => void): () => void;
  close(): Promise<void>;
}

export interface SessionState {
  sessionId: string;
  userId: string;
  /** Subscribed channels with the last position the client was sent. */
  channels: Record<string, StreamPosition>;
  /** The connection holding the session: the last one to resume it. */
  owner?: string;
  /** The status the client set with SET_PRESENCE, when not `online`: a resume keeps it. */
  status?: PresenceStatus;
}

export interface SessionStore {
  /**
   * Writes the session unless another connection has taken it over since (the stored owner is
   * not `state.owner`): an old connection still open must not overwrite what its successor
   * resumed. `takeOver` (a resume) writes regardless and makes `state.owner` the owner.
   */
  save(state: SessionState, ttlMs: number, options?: { takeOver?: boolean }): Promise<void>;
  load(sessionId: string): Promise<SessionState | null>;
  /** Forgets the session; with `owner`, only while that connection holds it. */
  delete(sessionId: string, owner?: string): Promise<void>;
  close(): Promise<void>;
}
