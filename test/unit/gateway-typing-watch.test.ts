import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TypingWatch } from '../../src/gateway/typing.js';

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
