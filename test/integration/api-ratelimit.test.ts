/** Per-key rate limits: RateLimit-* headers on every limited response, 429 with Retry-After. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../helpers/api.js';
import { redisRealtime } from '../helpers/redis-realtime.js';
import { services } from '../helpers/services.js';

const kind = services.postgres ? 'postgres' : 'pglite';

describe(`rate limits (${kind})`, () => {
  let api: TestApi;
  let unlimited: TestApi;

  beforeAll(async () => {
    api = await createTestApi({ kind, config: { rateLimitPoints: 3, rateLimitWindowS: 60 } });
    unlimited = await createTestApi({ store: api.store, config: { rateLimitPoints: 0 } });
  });
  afterAll(async () => {
    await unlimited?.close();
    await api?.close();
  });

  it('counts requests per key and answers 429 with Retry-After past the limit', async () => {
    // Created through the unlimited server, so the admin key does not use up its budget here.
    const a = await unlimited.createPrincipal({ kind: 'user' });
    const b = await unlimited.createPrincipal({ kind: 'user' });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await api.request('GET', '/api/events', { key: a.key });
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit-limit']).toBe('3');
      expect(Number(res.headers['ratelimit-reset'])).toBeGreaterThan(0);
      remaining.push(String(res.headers['ratelimit-remaining']));
    }
    expect(remaining).toEqual(['2', '1', '0']);

    const limited = await api.request('POST', '/api/events', { key: a.key, body: { type: 'x', payload: {} } });
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.body).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.headers['ratelimit-limit']).toBe('3');
    expect(limited.headers['ratelimit-remaining']).toBe('0');
    expect(Number(limited.headers['ratelimit-reset'])).toBeGreaterThan(0);

    // Another key has its own budget; public routes are not limited.
    expect((await api.request('GET', '/api/events', { key: b.key })).status).toBe(200);
    expect((await api.request('GET', '/healthz')).headers['ratelimit-limit']).toBeUndefined();
  });

  it('limits nothing with rateLimitPoints 0', async () => {
    const c = await unlimited.createPrincipal({ kind: 'user' });
    for (let i = 0; i < 6; i++) {
      const res = await unlimited.request('GET', '/api/events', { key: c.key });
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit-limit']).toBeUndefined();
    }
  });
});

describe.skipIf(!services.redis)(`rate limits across API processes on Redis (${kind})`, () => {
  it('gives a key its budget once, whichever process answers', async () => {
    const redis = redisRealtime('api-ratelimit');
    const config = { rateLimitPoints: 4, rateLimitWindowS: 60 };
    const buses = [redis.bus(), redis.bus()];
    // Connected first: a process whose Redis connection is not up yet counts on its own.
    expect(await Promise.all(buses.map((b) => b.health()))).toEqual(['ok', 'ok']);
    const one = await createTestApi({ kind, config, bus: buses[0] });
    const two = await createTestApi({ store: one.store, config, bus: buses[1] });
    const admin = await createTestApi({ store: one.store, config: { rateLimitPoints: 0 } });
    try {
      const p = await admin.createPrincipal({ kind: 'user' });
      const statuses: number[] = [];
      const remaining: string[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await (i % 2 === 0 ? one : two).request('GET', '/api/events', { key: p.key });
        statuses.push(res.status);
        remaining.push(String(res.headers['ratelimit-remaining']));
      }
      expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
      expect(remaining).toEqual(['3', '2', '1', '0', '0', '0']);
    } finally {
      await admin.close();
      await two.close();
      await one.close();
      await redis.close();
    }
  });
});
