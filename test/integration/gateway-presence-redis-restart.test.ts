/**
 * Redis restarted empty while a gateway's clients stay connected: their presence entries are gone
 * with it. The node writes them again as soon as its presence connection is back, not at the next
 * periodic refresh (a third of the TTL later: 20 s by default), so connected users do not show
 * offline meanwhile.
 *
 * The restart is played on the shared Redis without touching anyone else's data: the gateway
 * reaches Redis through a TcpProxy that is cut (every connection drops, as at a restart), the
 * keys under this test's own prefix are deleted meanwhile (the data a restart without persistence
 * loses), and the proxy is restored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBus } from '../../src/bus/index.js';
import { namespaceResolver } from '../../src/bus/namespaces.js';
import { loadConfig } from '../../src/config/index.js';
import { randomBase62 } from '../../src/core/ids.js';
import { RedisPresenceStore, RedisSessionStore } from '../../src/presence/index.js';
import { deleteRedisKeys } from '../helpers/redis-realtime.js';
import type { TestPrincipal } from '../helpers/api.js';
import { REDIS_URL, services } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { startGatewayHarness, WsTestClient, type GatewayHarness } from '../helpers/ws.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!services.redis)('gateway presence after Redis restarted empty', () => {
  const prefix = `temtest:prrestart:${randomBase62(6)}:`;
  // A TTL long enough that the periodic refresh (every third of it) cannot be what brings the
  // entry back within the test's wait.
  const config = { presenceTtlMs: 600_000 };
  const namespaces = namespaceResolver(loadConfig({ configFile: '/nonexistent/tem.config.json', ...config }, {}));
  let proxy: TcpProxy;
  let bus: RedisBus;
  let presence: RedisPresenceStore;
  let sessions: RedisSessionStore;
  let reader: RedisPresenceStore;
  let h: GatewayHarness;
  let alice: TestPrincipal;

  beforeAll(async () => {
    proxy = TcpProxy.forUrl(REDIS_URL, 6379);
    await proxy.start();
    const url = proxy.url(REDIS_URL);
    const fast = { commandTimeoutMs: 300, connectTimeoutMs: 500 };
    bus = new RedisBus({ url, prefix, namespaces, heartbeatMs: 200, ...fast });
    presence = new RedisPresenceStore({ url, prefix, ...fast });
    sessions = new RedisSessionStore({ url, prefix, ...fast });
    // What GET /api/presence on another process reads, straight from Redis.
    reader = new RedisPresenceStore({ url: REDIS_URL, prefix });
    h = await startGatewayHarness({ bus, presence, sessions, config });
    alice = await h.api.createPrincipal({ id: 'alice', kind: 'service' });
  });

  afterAll(async () => {
    await h?.close();
    await bus?.close();
    await presence?.close();
    await sessions?.close();
    await reader?.close();
    await proxy?.stop();
    await deleteRedisKeys(prefix);
  });

  const online = async (channel: string) => (await reader.members(channel, Date.now())).filter((m) => m.status !== 'offline').map((m) => m.user_id);

  it('shows a user who stayed connected online again within seconds of Redis coming back', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    expect((await c.request('SUBSCRIBE', { channels: ['live:pr:1'] })).type).toBe('SUBSCRIBED');
    const end0 = Date.now() + 5000;
    while ((await online('live:pr:1')).length === 0 && Date.now() < end0) await sleep(50);
    expect(await online('live:pr:1')).toEqual(['alice']);

    proxy.cut();
    await deleteRedisKeys(prefix);
    await sleep(300);
    expect(await online('live:pr:1')).toEqual([]);
    proxy.restore();

    const end = Date.now() + 5000;
    while ((await online('live:pr:1')).length === 0 && Date.now() < end) await sleep(50);
    expect(await online('live:pr:1')).toEqual(['alice']);
    // The client never noticed.
    expect(c.ws.readyState).toBe(1);
    await c.close();
  }, 30_000);
});
