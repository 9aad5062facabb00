/**
 * The distributed gateway's membership cache (httpChannelAccess): answers are reused for
 * `cacheMs`, and those past it do not pile up — every (channel, user) a node ever checked used to
 * stay in memory until a 50,000-entry bound, also once every client had left.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { httpChannelAccess } from '../../src/gateway/access.js';
import { authContext } from '../helpers/auth-context.js';

const user = (userId: string) => authContext({ principalId: userId, userId });

function access(cacheMs: number) {
  const clock = new ManualClock();
  const asked: string[] = [];
  const fetch = (async (_url: string, init?: RequestInit) => {
    const { channel } = JSON.parse(String(init?.body)) as { channel: string };
    asked.push(channel);
    return new Response(JSON.stringify({ member: !channel.endsWith(':no') }), { status: 200, headers: { 'content-type': 'application/json' } });
  }) as typeof globalThis.fetch;
  return { clock, asked, access: httpChannelAccess({ baseUrl: 'http://127.0.0.1:1', clock, cacheMs, fetch }) };
}

describe('gateway membership cache', () => {
  it('reuses an answer within cacheMs and asks again after it', async () => {
    const { clock, asked, access: a } = access(2000);
    expect(await a.canSubscribe(user('u1'), 'room:1')).toBe(true);
    expect(await a.canSubscribe(user('u1'), 'room:1:no')).toBe(false);
    clock.advance(1999);
    expect(await a.canSubscribe(user('u1'), 'room:1')).toBe(true);
    expect(asked).toEqual(['room:1', 'room:1:no']);
    clock.advance(1);
    expect(await a.canSubscribe(user('u1'), 'room:1')).toBe(true);
    expect(asked).toEqual(['room:1', 'room:1:no', 'room:1']);
  });

  it('does not keep answers past cacheMs: checks of ever new channels and users stay bounded', async () => {
    const { clock, access: a } = access(2000);
    for (let i = 0; i < 5000; i++) {
      await a.canSubscribe(user(`u${i % 300}`), `room:${i}`);
      clock.advance(10);
    }
    // 5000 answers over 50 s: only those of the last 2 s can still be used.
    expect(a.cachedAnswers()).toBeLessThanOrEqual(201);
    clock.advance(2000);
    await a.canSubscribe(user('late'), 'room:late');
    expect(a.cachedAnswers()).toBe(1);
  });
});
