import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Connection } from '../../src/gateway/connection.js';
import type { GatewayContext } from '../../src/gateway/context.js';
import { TypingTracker, TypingWatch, watchDeadlineMs } from '../../src/gateway/typing.js';

describe('TypingWatch (the receiving side of typing notices, on every node)', () => {
  let delivered: string[];
  let watch: TypingWatch;
  const notice = (node: string | undefined, isTyping: boolean, user = 'u1') => watch.notice('room:1', { user_id: user, is_typing: isTyping, ...(node === undefined ? {} : { node }) });

  beforeEach(() => {
    vi.useFakeTimers();
    delivered = [];
    watch = new TypingWatch((channel, p) => delivered.push(`${channel} ${p.user_id} ${p.is_typing ? 'start' : 'stop'}`), 10_000);
  });
  afterEach(() => {
    watch.close();
    vi.useRealTimers();
  });

  it('a user typing through two nodes has stopped only once both say so', () => {
    notice('node1', true); // the phone
    notice('node2', true); // the desktop
    expect(delivered).toEqual(['room:1 u1 start']);
    notice('node1', false);
    expect(delivered).toEqual(['room:1 u1 start']);
    notice('node2', true); // a keep-alive from the desktop: no news
    notice('node2', false);
    expect(delivered).toEqual(['room:1 u1 start', 'room:1 u1 stop']);
  });

  it('ends a node\'s typing itself when that node goes quiet, and the user\'s once none is left', () => {
    notice('node1', true);
    notice('node2', true);
    notice('node1', false);
    vi.advanceTimersByTime(9_999);
    expect(delivered).toEqual(['room:1 u1 start']);
    vi.advanceTimersByTime(1);
    expect(delivered).toEqual(['room:1 u1 start', 'room:1 u1 stop']);
    // A late stop from the node that went quiet is no news.
    notice('node2', false);
    expect(delivered).toHaveLength(2);
  });

  it('keeps one typist per node apart from other users, and takes notices that name no node', () => {
    notice(undefined, true);
    notice(undefined, true, 'u2');
    notice(undefined, false);
    expect(delivered).toEqual(['room:1 u1 start', 'room:1 u2 start', 'room:1 u1 stop']);
  });
});

describe('typing across nodes: the typist node keeps it alive, the others end it if that node dies', () => {
  const TIMEOUT = 10_000;
  let delivered: { at: number; typing: boolean }[];
  let watch: TypingWatch;
  let tracker: TypingTracker;
  /** Whether the typist's node still reaches the others (false: it died, its stop with it). */
  let alive: boolean;
  let published: number;
  const typist = { userId: 'u1' } as Connection;

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    delivered = [];
    alive = true;
    published = 0;
    watch = new TypingWatch((_channel, p) => delivered.push({ at: Date.now(), typing: p.is_typing }), watchDeadlineMs(TIMEOUT));
    const ctx = {
      tuning: { typingTimeoutMs: TIMEOUT },
      clock: { nowMs: () => Date.now() },
      nodeId: 'node1',
      logger: { warn: () => undefined },
      bus: {
        publishControl: async (m: { channel: string; payload: unknown }) => {
          published++;
          if (alive) watch.notice(m.channel, m.payload);
        },
      },
    } as unknown as GatewayContext;
    tracker = new TypingTracker(ctx);
  });
  afterEach(() => {
    watch.close();
    vi.useRealTimers();
  });

  /** TYPING_START every second for `seconds` from time 0; returns when the last start was sent. */
  async function type(seconds: number): Promise<number> {
    for (let s = 0; s <= seconds; s++) {
      tracker.start(typist, 'room:1');
      if (s < seconds) await vi.advanceTimersByTimeAsync(1000);
    }
    return Date.now();
  }

  it('ends once, with the typist node\'s own stop, a timeout after the last start', async () => {
    const last = await type(7);
    // Starts every second, passed on at most every quarter timeout: 7 s of typing is 3 notices.
    expect(published).toBe(3);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(delivered).toEqual([
      { at: 0, typing: true },
      { at: last + TIMEOUT, typing: false },
    ]);
  });

  it('ends it within 11–13.5 s of the last start when the typist\'s node dies', async () => {
    const last = await type(7);
    alive = false;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(delivered).toHaveLength(2);
    const stop = delivered[1]!;
    expect(stop.typing).toBe(false);
    expect(stop.at - last).toBeGreaterThan(TIMEOUT);
    expect(stop.at - last).toBeLessThanOrEqual(watchDeadlineMs(TIMEOUT));
    expect(watchDeadlineMs(TIMEOUT)).toBe(13_500);
  });
});
