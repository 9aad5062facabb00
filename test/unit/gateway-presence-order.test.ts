import { describe, expect, it } from 'vitest';
import { PresenceOrder } from '../../src/gateway/presence-order.js';

describe('PresenceOrder (presence notices from several nodes, in the order of their changes)', () => {
  it("drops a notice older than the last one passed on for that user and channel, and hands clients the payload without the version", () => {
    const order = new PresenceOrder();
    // Node B's join (version 20) arrives before node A's earlier leave (version 10).
    expect(order.admit('room:1', { user_id: 'u1', status: 'online', version: 20 })).toEqual({ pass: true, payload: { user_id: 'u1', status: 'online' } });
    expect(order.admit('room:1', { user_id: 'u1', status: 'offline', version: 10 }).pass).toBe(false);
    // Other users and channels keep their own order.
    expect(order.admit('room:1', { user_id: 'u2', status: 'offline', version: 10 }).pass).toBe(true);
    expect(order.admit('room:2', { user_id: 'u1', status: 'offline', version: 10 }).pass).toBe(true);
    expect(order.admit('room:1', { user_id: 'u1', status: 'dnd', version: 21 }).pass).toBe(true);
    // A notice without a version passes as it is.
    expect(order.admit('room:1', { user_id: 'u1', status: 'idle' })).toEqual({ pass: true, payload: { user_id: 'u1', status: 'idle' } });
  });

  it('forgets the least recently updated users first, past its bound', () => {
    const order = new PresenceOrder();
    order.admit('room:1', { user_id: 'first', status: 'online', version: 5 });
    for (let i = 0; i < 100_000; i++) order.admit('room:1', { user_id: `u${i}`, status: 'online', version: 1 });
    // Forgotten: an older notice for it passes again (ordering is kept for the recent ones).
    expect(order.admit('room:1', { user_id: 'first', status: 'offline', version: 1 }).pass).toBe(true);
    expect(order.admit('room:1', { user_id: 'u99999', status: 'offline', version: 0 }).pass).toBe(false);
  });

  it('forgets a user once no notice came for them for a while, so users who left do not stay in memory', () => {
    let now = 1_000_000;
    const order = new PresenceOrder(() => now, 60_000);
    for (let i = 0; i < 1000; i++) order.admit(`room:${i}`, { user_id: `u${i}`, status: 'online', version: 10 });
    expect(order.size).toBe(1000);
    now += 30_000;
    order.admit('room:kept', { user_id: 'u', status: 'online', version: 20 });
    // Within the window the order still holds: an older notice crossing the newer one is dropped.
    expect(order.admit('room:0', { user_id: 'u0', status: 'offline', version: 5 }).pass).toBe(false);
    now += 31_000;
    order.prune();
    // Only the one updated within the last minute is left (a dropped notice updates nothing).
    expect(order.size).toBe(1);
    expect(order.admit('room:kept', { user_id: 'u', status: 'offline', version: 19 }).pass).toBe(false);
    now += 61_000;
    order.prune();
    expect(order.size).toBe(0);
  });
});
