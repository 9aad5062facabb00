/**
 * History rules shared by every bus transport: how a publication is stored, and which stored
 * publications answer `history(channel, since)`.
 *
 * A channel's stream is (epoch, offset, history). History holds the newest publications, at most
 * `historySize`, each kept `historyTtlMs` after it was published; it is always contiguous and
 * ends at the current offset (every publication is appended). Either setting at 0 keeps no
 * history, as in Centrifugo, while offsets still increase. The position (epoch, offset) outlives
 * the history (`positionTtlMs`), so a client that missed nothing on a quiet channel still
 * recovers; when the position is lost too, the next publication starts a new epoch.
 */
import type { NamespaceOptions } from '../config/index.js';
import type { StreamPosition } from '../protocol/frames.js';
import type { HistoryResult, Publication } from './types.js';

/** A publication as kept in history: the publication plus when it was published (ms). */
export interface StoredPublication extends Publication {
  ts: number;
}

/** What a transport reads for `history`: the current position and the tail of history. */
export interface StreamRead {
  position: StreamPosition;
  /**
   * Stored publications with offset > since.offset, oldest first, when `since` names the current
   * epoch and is behind; transports may return more (the caller filters) or fewer (a gap).
   */
  entries: StoredPublication[];
}

/** How long a position outlives the channel's last publication unless configured otherwise. */
export const DEFAULT_POSITION_TTL_MS = 24 * 60 * 60 * 1000;

export function keepsHistory(ns: NamespaceOptions): boolean {
  return ns.historySize > 0 && ns.historyTtlMs > 0;
}

export function positionTtl(ns: NamespaceOptions, positionTtlMs: number): number {
  return Math.max(positionTtlMs, ns.historyTtlMs);
}

/**
 * How long a position nothing was ever published at (created by a subscribe, to hand out the
 * epoch the first publication will carry) outlives the last read of it. Short: subscribing to
 * ever new channel names must not pile up state for a day. A subscriber whose epoch was
 * forgotten meanwhile loses nothing: offset 0 has seen nothing, so history from offset 1 of
 * whatever epoch came next is all it missed (recover).
 */
export const EMPTY_POSITION_TTL_MS = 10 * 60 * 1000;

export function emptyPositionTtl(ns: NamespaceOptions, positionTtlMs: number): number {
  return Math.min(EMPTY_POSITION_TTL_MS, positionTtl(ns, positionTtlMs));
}

/** The JSON body a transport stores and fans out, minus offset/epoch/ts (known only at append). */
export function encodeBody(event: string, payload: unknown, eventId: string | undefined): string {
  return JSON.stringify(eventId === undefined ? { event, payload: payload ?? null } : { event, payload: payload ?? null, eventId });
}

/** Parses a stored or fanned-out publication (`{offset, epoch, ts, event, payload, eventId?}`). */
export function decodeStored(channel: string, json: string): StoredPublication {
  const raw = JSON.parse(json) as { offset: number; epoch: string; ts: number; event: string; payload: unknown; eventId?: string };
  const pub: StoredPublication = {
    channel,
    offset: raw.offset,
    epoch: raw.epoch,
    event: raw.event,
    payload: raw.payload,
    ts: raw.ts,
  };
  if (raw.eventId !== undefined) pub.eventId = raw.eventId;
  return pub;
}

export function toPublication(stored: StoredPublication): Publication {
  const { ts: _ts, ...pub } = stored;
  return pub;
}

function isPosition(since: StreamPosition): boolean {
  return typeof since.epoch === 'string' && Number.isSafeInteger(since.offset) && since.offset >= 0;
}

/**
 * `since` as a position in the current epoch, or undefined when it is in no position to be
 * recovered from. Offset 0 has seen nothing of any epoch: everything from offset 1 is missed.
 */
function inEpoch(position: StreamPosition, since: StreamPosition): StreamPosition | undefined {
  if (!isPosition(since)) return undefined;
  if (since.epoch === position.epoch) return since;
  return since.offset === 0 ? { offset: 0, epoch: position.epoch } : undefined;
}

/**
 * The offset after which a transport should read history entries for `since` (in the current
 * epoch; 0 for a `since` at offset 0 of another), or undefined when there is nothing to read.
 */
export function entriesAfter(position: StreamPosition, since: StreamPosition | undefined): number | undefined {
  const from = since === undefined ? undefined : inEpoch(position, since);
  return from !== undefined && from.offset < position.offset ? from.offset : undefined;
}

/**
 * Answers `history(channel, since)` from what the transport read: every publication after
 * `since` exactly once and in order, or recovered=false when any of them is gone.
 */
export function recover(read: StreamRead, asked: StreamPosition | undefined, ns: NamespaceOptions, nowMs: number): HistoryResult {
  const { position } = read;
  if (asked === undefined) return { publications: [], position, recovered: true };
  const lost: HistoryResult = { publications: [], position, recovered: false };
  const since = inEpoch(position, asked);
  if (!since || since.offset > position.offset) return lost;
  if (since.offset === position.offset) return { publications: [], position, recovered: true };
  if (!keepsHistory(ns)) return lost;
  const oldestAlive = nowMs - ns.historyTtlMs;
  const wanted = read.entries.filter((p) => p.offset > since.offset);
  const publications: Publication[] = [];
  let expect = since.offset + 1;
  for (const entry of wanted) {
    if (entry.offset !== expect || entry.ts <= oldestAlive) return lost;
    publications.push(toPublication(entry));
    expect += 1;
  }
  if (expect !== position.offset + 1) return lost;
  return { publications, position, recovered: true };
}
