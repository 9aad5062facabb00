/**
 * Publications held back on a channel whose subscription by name waits for its SUBSCRIBED.
 *
 * A pattern covering the channel goes on delivering it until the server takes the SUBSCRIBE,
 * and those copies come from after the position the SUBSCRIBE asks to replay from (`since`).
 * Delivered at once, they would move the channel's position past the replay, whose
 * publications would then be dropped as duplicates: lost, and out of order for the
 * subscription. Held in offset order instead, each goes out once it is next in line — as the
 * replay fills the gap before it — or at once when the reply says nothing will be replayed.
 */
import type { ServerFrameMap, StreamPosition } from '../protocol/index.js';
import type { TimerHandle } from './timers.js';

export type EventPayload = ServerFrameMap['EVENT'];

/** Past this many, a channel's held publications go out as they are (order is given up, not memory). */
export const MAX_HELD = 1_000;

export interface Held {
  /** Sorted by offset within an epoch; another epoch's come after, in arrival order. */
  readonly events: EventPayload[];
  /** Set by the SUBSCRIBED reply: the head the replay runs up to. */
  until?: StreamPosition;
  /** Gives up waiting for a replay that does not come (a reply that promised more than it sent). */
  timer?: TimerHandle;
}

export function insertByOffset(events: EventPayload[], p: EventPayload): void {
  let i = events.length;
  while (i > 0 && events[i - 1]!.epoch === p.epoch && events[i - 1]!.offset > p.offset) i--;
  events.splice(i, 0, p);
}

/** Next in line after `position` (or one it has passed, which routing drops as a duplicate). */
export function nextInLine(p: EventPayload, position: StreamPosition | undefined): boolean {
  return position !== undefined && position.epoch === p.epoch && p.offset <= position.offset + 1;
}

/**
 * Once subscribed, whether the replay is over, so nothing more will fill the gaps before the
 * held publications: the newest held is of another epoch than the position, or past the head
 * the reply named (only a live publication can be, and the server sends those after the whole
 * replay).
 */
export function replayOver(held: Held, position: StreamPosition | undefined): boolean {
  const last = held.events.at(-1);
  if (!last || !position || position.epoch !== last.epoch) return true;
  return held.until !== undefined && (held.until.epoch !== last.epoch || last.offset > held.until.offset);
}
