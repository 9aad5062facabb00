/**
 * Many nodes as real processes on the real PostgreSQL and Redis: `tem api`, two `tem worker`,
 * the maintenance worker (outbox relay) and two `tem gateway`. The same user on both gateways
 * receives on both; when one gateway is SIGKILLed its clients resume on the other with nothing
 * missed, and users who were only on the dead node turn offline once their presence TTL expires.
 * All of it on one Redis, and again on a three-node Redis Cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { services, REDIS_CLUSTER_URL } from '../helpers/services.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { killAll } from '../helpers/processes.js';
import { WsTestClient, closeAllClients, wsUrlFor, type Frame } from '../helpers/ws.js';

const ROOM = 'live:room:chat';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Position = { offset: number; epoch: string };

/** Positions a client holds: the last offset seen per channel. */
function positions(c: WsTestClient): Record<string, Position> {
  const out: Record<string, Position> = {};
  for (const f of c.frames) {
    const p = f.payload as { channel?: string; offset?: number; epoch?: string };
    if ((f.type === 'EVENT' || f.type === 'SUBSCRIBED') && p.channel && typeof p.offset === 'number' && p.epoch) {
      if (f.type === 'EVENT' && String(f.payload.event).startsWith('presence.')) continue;
      if (f.type === 'EVENT' && f.payload.event === 'typing') continue;
      out[p.channel] = { offset: p.offset, epoch: p.epoch };
    }
  }
  return out;
}

const processedFor = (eventId: string) => (f: Frame) =>
  f.type === 'EVENT' && f.payload.event === 'event.update' && (f.payload.payload as { event_id?: string; status?: string }).event_id === eventId &&
  (f.payload.payload as { status?: string }).status === 'processed';

async function ingest(cluster: Cluster, key: string, type: string, payload: Record<string, unknown> = {}, channel?: string): Promise<string> {
  const res = await fetch(`${cluster.apiUrl}/api/events`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify({ type, payload, ...(channel ? { channel } : {}) }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { event_id: string }).event_id;
}

const redisSetups: { name: string; available: boolean; env: Record<string, string> }[] = [
  { name: 'one Redis', available: services.redis, env: {} },
  { name: 'a Redis Cluster', available: services.redisCluster, env: { REDIS_URL: REDIS_CLUSTER_URL, TEM_REDIS_CLUSTER: 'true' } },
];

for (const { name, available, env: redisEnv } of redisSetups) describe.skipIf(!services.postgres || !available)(`distributed: api, workers, maintenance and two gateways on ${name}`, () => {
  let cluster: Cluster;
  let aliceKey: string;
  let bobKey: string;

  beforeAll(async () => {
    cluster = await startCluster({
      workers: 2,
      gateways: 2,
      env: { TEM_PRESENCE_TTL_MS: '3000', TEM_HEARTBEAT_INTERVAL_MS: '1000', TEM_INTROSPECT_CACHE_MS: '1000', ...redisEnv },
    });
    aliceKey = await cluster.createUser('alice');
    bobKey = await cluster.createUser('bob');
    for (const user of ['alice', 'bob']) {
      const res = await cluster.admin('PUT', `/api/channels/${encodeURIComponent(ROOM)}/members/${user}`);
      expect(res.status).toBeLessThan(300);
    }
  }, 240_000);

  afterAll(async () => {
    await closeAllClients();
    await cluster?.stop();
    killAll();
  });

  it('delivers a user’s updates to its devices on both nodes, and processed channel events to members', async () => {
    const [urlA, urlB] = cluster.gatewayUrls as [string, string];
    // A gateway answers HTTP it does not serve as the API does: problem+json.
    const unknown = await fetch(`${urlA}/nope`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await unknown.json()) as { code: string }).code).toBe('NOT_FOUND');
    // The WebSocket path without an upgrade: 426 saying how to connect.
    const plain = await fetch(`${urlA}/ws`);
    expect(plain.status).toBe(426);
    expect(plain.headers.get('upgrade')).toBe('websocket');
    expect(((await plain.json()) as { code: string }).code).toBe('UPGRADE_REQUIRED');
    const onA = await WsTestClient.ready(wsUrlFor(urlA, { token: aliceKey }));
    const onB = await WsTestClient.ready(wsUrlFor(urlB, { token: aliceKey }));
    const bobOnB = await WsTestClient.ready(wsUrlFor(urlB, { token: bobKey }));
    for (const c of [onA, bobOnB]) expect((await c.request('SUBSCRIBE', { channels: [ROOM] })).type).toBe('SUBSCRIBED');

    const id = await ingest(cluster, aliceKey, 'order.created', { n: 1 }, ROOM);
    for (const c of [onA, onB]) {
      await c.waitFor(processedFor(id), 20_000);
      const statuses = c
        .events('user:alice', 'event.update')
        .filter((f) => (f.payload.payload as { event_id: string }).event_id === id)
        .map((f) => (f.payload.payload as { status: string }).status);
      expect(statuses).toEqual(['accepted', 'queued', 'processing', 'processed']);
    }
    // The processed event reaches the channel's members on either node, with its payload.
    for (const c of [onA, bobOnB]) {
      const delivered = await c.waitFor((f) => f.type === 'EVENT' && f.payload.channel === ROOM && f.payload.event === 'order.created', 10_000);
      expect(delivered.payload.payload).toEqual({ n: 1 });
    }
    // Bob never sees Alice's own channel.
    expect(bobOnB.frames.some((f) => f.payload.channel === 'user:alice')).toBe(false);
    await closeAllClients();

    // Workers have no other listener: their counters are scraped on TEM_METRICS_PORT. The relay
    // (maintenance) published the updates and the channel delivery; a worker completed the job.
    const scrape = async (p: { waitForLog(msg: string): Promise<Record<string, unknown>> }) => {
      const res = await fetch(String((await p.waitForLog('listening')).metrics));
      expect(res.status).toBe(200);
      return res.text();
    };
    const counter = (text: string, name: string) =>
      text.split('\n').filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    const maintenanceText = await scrape(cluster.maintenance);
    expect(counter(maintenanceText, 'tem_relay_published_total')).toBeGreaterThanOrEqual(5);
    // Which process it is, to join on; and no database gauge it does not read (a 0 there would
    // look like an outage to an alert on tem_database_up).
    expect(maintenanceText).toMatch(/^tem_info\{node="[^"]+",role="maintenance",version="[^"]+"\} 1$/m);
    expect(maintenanceText).not.toMatch(/^tem_database_up/m);
    const completed = await Promise.all(cluster.workers.map(async (w) => counter(await scrape(w), 'tem_jobs_completed_total{outcome="processed"}')));
    expect(completed.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('resumes on the surviving node after a gateway is SIGKILLed, missing nothing, and expires presence', async () => {
    const [urlA, urlB] = cluster.gatewayUrls as [string, string];
    const alice = await WsTestClient.ready(wsUrlFor(urlA, { token: aliceKey }));
    const ack = alice.frames.find((f) => f.type === 'HELLO_ACK')!;
    const sessionId = String(ack.payload.session_id);
    expect((await alice.request('SUBSCRIBE', { channels: [ROOM] })).type).toBe('SUBSCRIBED');
    const bob = await WsTestClient.ready(wsUrlFor(urlA, { token: bobKey }));
    expect((await bob.request('SUBSCRIBE', { channels: [ROOM] })).type).toBe('SUBSCRIBED');
    const watcher = await WsTestClient.ready(wsUrlFor(urlB, { token: aliceKey }));

    const before = await ingest(cluster, aliceKey, 'before.kill', {}, ROOM);
    await alice.waitFor(processedFor(before), 20_000);
    await watcher.waitFor(processedFor(before), 20_000);
    // Channel members with their presence: members without a live connection are `offline`.
    const presence = async () =>
      Object.fromEntries(
        ((await cluster.admin<{ members: { user_id: string; status: string }[] }>('GET', `/api/presence/${encodeURIComponent(ROOM)}`)).body.members ?? []).map(
          (m) => [m.user_id, m.status],
        ),
      );
    expect(await presence()).toMatchObject({ alice: 'online', bob: 'online' });

    const held = positions(alice);
    cluster.gateways[0]!.proc.kill('SIGKILL');
    await alice.closed;

    // While Alice is away: three more events, each with a channel delivery.
    const missed: string[] = [];
    for (let i = 0; i < 3; i++) missed.push(await ingest(cluster, aliceKey, 'while.away', { i }, ROOM));
    await watcher.waitFor(processedFor(missed[2]!), 20_000);

    const back = await WsTestClient.connect(wsUrlFor(urlB));
    back.send('HELLO', { token: aliceKey, session_id: sessionId, since: held }, 'h1');
    const helloAck = await back.waitFor((f) => f.type === 'HELLO_ACK', 10_000);
    // On failure, what each channel answered and any ERROR frame say which one was not recovered, and why.
    if (helloAck.payload.recovered !== true) await sleep(500); // ERROR frames follow the HELLO_ACK
    // And what the killed node warned about (a session write that failed, say).
    const warnings = cluster.gateways[0]!.output().split('\n').filter((l) => /"level":(40|50)/.test(l)).slice(-10);
    const why = JSON.stringify({ held, ack: helloAck.payload, errors: back.frames.filter((f) => f.type === 'ERROR'), warnings });
    expect(helloAck.payload, why).toMatchObject({ session_id: sessionId, user_id: 'alice', resumed: true, recovered: true });

    // Every missed update and channel delivery, once each, in order, before anything live.
    for (const id of missed) await back.waitFor(processedFor(id), 10_000);
    const own = back.events('user:alice', 'event.update');
    const offsets = own.map((f) => Number(f.payload.offset));
    expect(offsets).toEqual([...new Set(offsets)].sort((a, b) => a - b));
    expect(offsets[0]).toBe(held['user:alice']!.offset + 1);
    // Two workers process the three events in any order; each delivery arrives once, in offset order.
    const room = back.events(ROOM);
    expect(room.map((f) => (f.payload.payload as { i?: number }).i).sort()).toEqual([0, 1, 2]);
    const roomOffsets = room.map((f) => Number(f.payload.offset));
    expect(roomOffsets).toEqual([...roomOffsets].sort((a, b) => a - b));
    expect(roomOffsets[0]).toBe(held[ROOM]!.offset + 1);

    // Bob was only on the dead node: offline once the TTL (3 s) has run out, without a goodbye.
    const deadline = Date.now() + 15_000;
    let members = await presence();
    while (members.bob !== 'offline' && Date.now() < deadline) {
      await sleep(250);
      members = await presence();
    }
    expect(members).toMatchObject({ alice: 'online', bob: 'offline' });
  }, 90_000);
});
