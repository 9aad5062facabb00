/**
 * Where the client stands in each channel's stream: the last {offset, epoch} it delivered.
 * Offsets increase by one per publication within an epoch, and the server replays missed
 * publications exactly once; the offset check here is a safety net that drops anything at or
 * below what was already delivered (a replay overlapping a live message across a reconnect).
 * A different epoch means the channel's history was reset: the new position is taken as is.
 */
import type { StreamPosition } from '../protocol/index.js';
import { matchesPattern } from '../protocol/index.js';

export class Positions {
  private readonly map = new Map<string, StreamPosition>();

  get(channel: string): StreamPosition | undefined {
    const p = this.map.get(channel);
    return p && { ...p };
  }

  set(channel: string, position: StreamPosition): void {
    this.map.set(channel, { offset: position.offset, epoch: position.epoch });
  }

  delete(channel: string): void {
    this.map.delete(channel);
  }

  /**
   * Decides on a publication: true (deliver, position advanced) or false (a duplicate).
   */
  accept(channel: string, offset: number, epoch: string): boolean {
    const cur = this.map.get(channel);
    if (cur && cur.epoch === epoch && offset <= cur.offset) return false;
    this.map.set(channel, { offset, epoch });
    return true;
  }

  /**
   * Takes the position a SUBSCRIBED or resume reported. When the server recovered the stream,
   * the missed publications are (or were just) replayed and advance the position themselves;
   * otherwise the reported position is the new starting point. `from` is the `since` that was
   * sent: recovered from it with no position of the client's own (a subscribe with an initial
   * `since`), the stream stands there — at the head the replays would all count as duplicates.
   */
  onSubscribed(channel: string, position: StreamPosition, recovered: boolean, from?: StreamPosition): void {
    const cur = this.map.get(channel);
    if (cur && cur.epoch === position.epoch) {
      if (!recovered && position.offset > cur.offset) this.map.set(channel, { offset: position.offset, epoch: position.epoch });
      return;
    }
    if (cur && recovered) return;
    if (recovered && from && from.epoch === position.epoch && from.offset <= position.offset) {
      this.map.set(channel, { offset: from.offset, epoch: from.epoch });
      return;
    }
    this.map.set(channel, { offset: position.offset, epoch: position.epoch });
  }

  /** Known positions for channels a subscription (exact or pattern) covers. */
  covered(channelOrPattern: string): Record<string, StreamPosition> {
    const out: Record<string, StreamPosition> = {};
    for (const [ch, p] of this.map) if (matchesPattern(channelOrPattern, ch)) out[ch] = { ...p };
    return out;
  }

  entries(): [string, StreamPosition][] {
    return [...this.map].map(([ch, p]) => [ch, { ...p }]);
  }
}
