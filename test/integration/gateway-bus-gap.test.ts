/**
 * A gateway whose own Redis connection drops while publications go on elsewhere: they reach
 * history but not the node. Once it is back, its connected clients — which never disconnected —
 * get what they missed from history, in order and once, before what comes next; when history no
 * longer has it, they are told to subscribe again (and then resync).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBus } from '../../src/bus/index.js';
import { namespaceResolver } from '../../src/bus/namespaces.js';
import { loadConfig } from '../../src/config/index.js';
import { randomBase62 } from '../../src/core/ids.js';
import { deleteRedisKeys } from '../helpers/redis-realtime.js';
import type { TestPrincipal } from '../helpers/api.js';
import { REDIS_URL, services } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { isPublication, startGatewayHarness, WsTestClient, type GatewayHarness } from '../helpers/ws.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!services.redis)('gateway bus connection lost and back', () => {
  const prefix = `temtest:gap:${randomBase62(6)}:`;
  // `tiny` keeps two messages: a longer outage outruns its history.
  const namespaces = namespaceResolver(loadConfig({ configFile: '/nonexistent/tem.config.json', namespaces: { tiny: { historySize: 2 } } }, {}));
  let proxy: TcpProxy;
  let gatewayBus: RedisBus;
  let publisher: RedisBus;
  let h: GatewayHarness;
  let alice: TestPrincipal;

  beforeAll(async () => {
    proxy = TcpProxy.forUrl(REDIS_URL, 6379);
    await proxy.start();
    gatewayBus = new RedisBus({ url: proxy.url(REDIS_URL), prefix, namespaces, commandTimeoutMs: 300, connectTimeoutMs: 500, heartbeatMs: 200 });
    publisher = new RedisBus({ url: REDIS_URL, prefix, namespaces });
    // `tiny` has presence on the gateway's side; a short TTL lets an abandoned entry run out.
    h = await startGatewayHarness({ bus: gatewayBus, config: { presenceTtlMs: 1500, namespaces: { tiny: { presence: true } } } });
    alice = await h.api.createPrincipal({ id: 'alice', kind: 'service' });
  });

  afterAll(async () => {
    await h?.close();
    await gatewayBus?.close();
    await publisher?.close();
    await proxy?.stop();
    await deleteRedisKeys(prefix);
  });

  const offsets = (c: WsTestClient, channel: string) => c.frames.filter((f) => isPublication(f) && f.payload.channel === channel).map((f) => f.payload.offset as number);

  async function until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(20);
    }
  }

  it('sends a connected client what was published while the node was away, then the rest', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    expect((await c.request('SUBSCRIBE', { channels: ['live:gap:a'] })).type).toBe('SUBSCRIBED');
    for (let i = 1; i <= 2; i++) await publisher.publish('live:gap:a', 'm', { i });
    await until(() => offsets(c, 'live:gap:a').length === 2, 'the first two');

    proxy.cut();
    for (let i = 3; i <= 5; i++) await publisher.publish('live:gap:a', 'm', { i });
    await sleep(400);
    expect(offsets(c, 'live:gap:a')).toEqual([1, 2]);
    proxy.restore();
    // Nothing else is published: the node itself must notice what it missed.
    await until(() => offsets(c, 'live:gap:a').length === 5, 'the missed three, from history');
    await publisher.publish('live:gap:a', 'm', { i: 6 });
    await until(() => offsets(c, 'live:gap:a').length === 6, 'the next one');
    expect(offsets(c, 'live:gap:a')).toEqual([1, 2, 3, 4, 5, 6]);
    // Never disconnected.
    expect(c.ws.readyState).toBe(1);
    await c.close();
  }, 30_000);

  it('tells subscribers to subscribe again when what they missed is gone from history', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const sub = await c.request('SUBSCRIBE', { channels: ['tiny:gap:c'] });
    expect(sub.type).toBe('SUBSCRIBED');
    await publisher.publish('tiny:gap:c', 'm', { i: 1 });
    await until(() => offsets(c, 'tiny:gap:c').length === 1, 'the first');
    proxy.cut();
    for (let i = 2; i <= 6; i++) await publisher.publish('tiny:gap:c', 'm', { i });
    await sleep(400);
    proxy.restore();
    const error = await c.waitFor((f) => f.type === 'ERROR' && f.payload.channel === 'tiny:gap:c', 10_000);
    expect(error.payload.message).toMatch(/subscribe again with since/);
    // Subscribing again from its position, the client learns the gap cannot be recovered.
    const again = await c.request('SUBSCRIBE', { channels: ['tiny:gap:c'], since: { 'tiny:gap:c': { offset: 1, epoch: String(offsetsEpoch(c, 'tiny:gap:c')) } } });
    expect(again.payload).toMatchObject({ channel: 'tiny:gap:c', recovered: false, offset: 6 });
    await c.close();
  }, 30_000);

  it('a subscription that fell behind stops keeping its user present: not refreshed, it runs out', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    expect((await c.request('SUBSCRIBE', { channels: ['tiny:gap:p'] })).type).toBe('SUBSCRIBED');
    await publisher.publish('tiny:gap:p', 'm', { i: 1 });
    await until(() => offsets(c, 'tiny:gap:p').length === 1, 'the first');
    const members = async () => ((await c.request('PRESENCE', { channel: 'tiny:gap:p' })).payload.members as { user_id: string }[]).map((m) => m.user_id);
    expect(await members()).toEqual(['alice']);
    proxy.cut();
    for (let i = 2; i <= 6; i++) await publisher.publish('tiny:gap:p', 'm', { i });
    await sleep(400);
    proxy.restore();
    await c.waitFor((f) => f.type === 'ERROR' && f.payload.channel === 'tiny:gap:p', 10_000);
    // The client does not subscribe again: past the TTL its user is no longer shown, although
    // the connection is still open (it was refreshed for as long as the connection lived).
    await sleep(2500);
    expect(await members()).toEqual([]);
    expect(c.ws.readyState).toBe(1);
    await c.close();
  }, 30_000);

  it('tells pattern subscribers to subscribe again: what their channels missed cannot be known', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    expect((await c.request('SUBSCRIBE', { channels: ['live:pat:*'] })).type).toBe('SUBSCRIBED');
    await publisher.publish('live:pat:1', 'm', { i: 1 });
    await until(() => offsets(c, 'live:pat:1').length === 1, 'the first');
    proxy.cut();
    // A channel the node has never seen under the pattern.
    await publisher.publish('live:pat:2', 'm', { i: 2 });
    await sleep(400);
    proxy.restore();
    const error = await c.waitFor((f) => f.type === 'ERROR' && f.payload.channel === 'live:pat:*', 10_000);
    expect(error.payload.message).toMatch(/subscribe again and resync/);
    // The subscription was ended: subscribing again works and goes on live.
    expect((await c.request('SUBSCRIBE', { channels: ['live:pat:*'] })).payload).toMatchObject({ channel: 'live:pat:*', recovered: false });
    await publisher.publish('live:pat:3', 'm', { i: 3 });
    await until(() => offsets(c, 'live:pat:3').length === 1, 'the next one');
    expect(c.ws.readyState).toBe(1);
    await c.close();
  }, 30_000);
});

function offsetsEpoch(c: WsTestClient, channel: string): string {
  const f = c.frames.find((x) => isPublication(x) && x.payload.channel === channel);
  return String(f?.payload.epoch ?? '');
}
