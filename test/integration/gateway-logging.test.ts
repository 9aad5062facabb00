/**
 * Per-connection logs (one JSON line per state, with connection_id, user_id and the node), the
 * ingest transition an INGEST frame makes, at the default level, and the gateway's metrics.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, WsTestClient, type GatewayHarness } from '../helpers/ws.js';

describe('gateway logs and metrics', () => {
  let h: GatewayHarness;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>));
        done();
      },
    });
    // As createLogger makes it: the process's role and node on every line.
    h = await startGatewayHarness({ logger: pino({ level: 'info', base: { role: 'gateway', node: 'node-a' } }, sink) });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('logs connecting → authenticated → closed with its code, and an INGEST frame as accepted', async () => {
    const alice = await h.api.createPrincipal({ id: 'alice' });
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const ingested = await c.request('INGEST', { type: 'log.ws', payload: { n: 1 } });
    expect(ingested.type).toBe('INGESTED');
    const eventId = (ingested.payload as { event_id: string }).event_id;
    await c.close(1000);
    const until = Date.now() + 5000;
    while (!lines.some((l) => l.msg === 'ws closed') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));

    const connection = lines.find((l) => l.msg === 'ws connecting')?.connection_id;
    expect(connection).toEqual(expect.any(String));
    const mine = lines.filter((l) => l.connection_id === connection);
    expect(mine.map((l) => l.msg)).toEqual(['ws connecting', 'ws authenticated', 'event accepted', 'ws closed']);
    for (const l of mine) expect(l).toMatchObject({ level: 30, node: 'node-a', role: 'gateway' });
    expect(mine.slice(1).every((l) => l.user_id === 'alice')).toBe(true);
    expect(mine[0]).toMatchObject({ state: 'connecting' });
    expect(mine[1]).toMatchObject({ state: 'authenticated', principal_id: 'alice', via: 'key' });
    expect(mine[2]).toMatchObject({ event_id: eventId, type: 'log.ws', principal: 'alice', status: 'queued' });
    expect(mine[3]).toMatchObject({ state: 'closed', close_code: 1000 });
    // The key never reaches a log line.
    expect(JSON.stringify(lines)).not.toContain(alice.key);
  });

  it('counts connections and frames in and out', async () => {
    const value = async (name: keyof typeof h.node.metrics) => {
      const metric = h.node.metrics[name] as unknown as { get(): Promise<{ values: { value: number }[] }> };
      return (await metric.get()).values[0]?.value ?? 0;
    };
    const bob = await h.api.createPrincipal({ id: 'bob' });
    const before = { in: await value('wsMessagesIn'), out: await value('wsMessagesOut'), conns: await value('wsConnections') };
    const c = await WsTestClient.ready(h.wsUrl({ token: bob.key }));
    expect(await value('wsConnections')).toBe(before.conns + 1);
    for (let i = 0; i < 3; i++) expect((await c.request('PING', {})).type).toBe('PONG');
    expect(await value('wsMessagesIn')).toBe(before.in + 3);
    // HELLO_ACK and three PONGs.
    expect(await value('wsMessagesOut')).toBe(before.out + 4);
    await c.close(1000);
    const until = Date.now() + 5000;
    while ((await value('wsConnections')) !== before.conns && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(await value('wsConnections')).toBe(before.conns);
  });
});
