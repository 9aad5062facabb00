/**
 * Fuzz: thousands of random and malformed frames (bad JSON, wrong types, unknown types, binary,
 * oversized, HELLO out of order) from several clients. The server answers each with an error or a
 * proper reply, never crashes, and a well-behaved client on the same node is unaffected.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_FRAME_TYPES } from '../../src/protocol/index.js';
import type { TestPrincipal } from '../helpers/api.js';
import { isPublication, startGatewayHarness, WsTestClient, type GatewayHarness } from '../helpers/ws.js';

const MAX_FRAME = 4096;

/** Deterministic PRNG (mulberry32), so a failing run can be replayed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Gen = ReturnType<typeof rng>;
const pick = <T>(r: Gen, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

function randomValue(r: Gen, depth = 0): unknown {
  const k = Math.floor(r() * (depth > 2 ? 6 : 8));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return Math.floor(r() * 2e9) - 1e9;
    case 3:
      return r() * 1e308;
    case 4:
      return pick(r, ['', 'live:1:chat', 'user:fuzz', 'user:*', 'x', '::', 'a:*', '\u0000', 'é:ü', 'server:1:*', 'live:1:chat'.repeat(30)]);
    case 5:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: Math.floor(r() * 4) }, () => [pick(r, ['channels', 'channel', 'token', 'since', 'status', 'type', 'payload', 'event', 'session_id', '__proto__', 'constructor', 'x']), randomValue(r, depth + 1)]),
      );
  }
}

interface Sent {
  data: string | Buffer;
  binary: boolean;
  /** A ref-less ERROR must come back (not JSON, not an object, binary). */
  bareError: boolean;
  /** An ERROR with this ref must come back (unknown type). */
  errorRef?: string;
}

function randomFrame(r: Gen, i: number): Sent {
  const id = `f${i}`;
  const k = Math.floor(r() * 9);
  switch (k) {
    case 0: {
      const text = Array.from({ length: 1 + Math.floor(r() * 40) }, () => String.fromCharCode(32 + Math.floor(r() * 90))).join('');
      const bad = `{${text}`;
      return { data: bad, binary: false, bareError: true };
    }
    case 1:
      return { data: Buffer.from(Array.from({ length: 1 + Math.floor(r() * 64) }, () => Math.floor(r() * 256))), binary: true, bareError: true };
    case 2:
      return { data: JSON.stringify(pick(r, [1, 'str', null, [1, 2], true])), binary: false, bareError: true };
    case 3: {
      const type = pick(r, ['NOPE', 'hello', 'subscribe', 'EVENT', 'ERROR', 'PONG', '']);
      return { data: JSON.stringify({ type, id, payload: randomValue(r) }), binary: false, bareError: false, errorRef: type === '' ? undefined : id };
    }
    case 4:
      return { data: JSON.stringify({ type: pick(r, CLIENT_FRAME_TYPES), id, payload: randomValue(r) }), binary: false, bareError: false };
    case 5:
      return { data: JSON.stringify({ type: pick(r, CLIENT_FRAME_TYPES), id: randomValue(r), payload: randomValue(r) }), binary: false, bareError: false };
    case 6:
      return { data: JSON.stringify({ type: 'HELLO', id, payload: { token: pick(r, ['tem_bad', 'a.b.c', 'x'.repeat(100)]), session_id: pick(r, ['sess_x', undefined]) } }), binary: false, bareError: false };
    case 7:
      return { data: JSON.stringify({ type: pick(r, CLIENT_FRAME_TYPES), id, payload: randomValue(r), extra: randomValue(r) }), binary: false, bareError: false, errorRef: id };
    default:
      return { data: JSON.stringify(randomValue(r)).slice(0, Math.floor(r() * 200)), binary: false, bareError: false };
  }
}

let h: GatewayHarness;
let fuzzer: TestPrincipal;
let bystander: TestPrincipal;

beforeAll(async () => {
  h = await startGatewayHarness({ config: { wsMessageRate: 0, wsMaxFrameBytes: MAX_FRAME } });
  fuzzer = await h.api.createPrincipal({ id: 'fuzz' });
  bystander = await h.api.createPrincipal({ id: 'bystander' });
  await h.api.store.addChannelMember('live:1:chat', 'fuzz');
  await h.api.store.addChannelMember('live:1:chat', 'bystander');
});

afterAll(async () => {
  await h?.close();
});

describe('fuzz', () => {
  it('random and malformed frames get errors, the server stays up, others are unaffected', async () => {
    const watcher = await WsTestClient.ready(h.wsUrl({ token: bystander.key }));
    await watcher.request('SUBSCRIBE', { channels: ['live:1:chat'] });
    const r = rng(20240611);
    let frames = 0;
    let published = 0;
    for (let round = 0; round < 12; round++) {
      const c = await WsTestClient.ready(h.wsUrl({ token: fuzzer.key }));
      const sent: Sent[] = [];
      for (let i = 0; i < 250; i++) {
        const f = randomFrame(r, i);
        sent.push(f);
        c.sendRaw(f.data, f.binary);
        frames++;
        if (i % 50 === 0) {
          await h.bus.publish('live:1:chat', 'tick', { n: published++ });
        }
      }
      // A frame that goes through the same queue as the others: once answered, all were handled.
      const done = await c.request('UNSUBSCRIBE', { channels: ['live:404:none'] }, 15_000);
      expect(done.type).toBe('UNSUBSCRIBED');
      expect(c.ws.readyState).toBe(WebSocket.OPEN);
      const bare = c.frames.filter((f) => f.type === 'ERROR' && f.ref === undefined).length;
      expect(bare).toBeGreaterThanOrEqual(sent.filter((s) => s.bareError).length);
      for (const s of sent.filter((x) => x.errorRef)) {
        expect(c.frames.some((f) => f.type === 'ERROR' && f.ref === s.errorRef), String(s.data).slice(0, 80)).toBe(true);
      }
      expect(c.frames.every((f) => typeof f.type === 'string')).toBe(true);
      await c.close();
    }
    expect(frames).toBeGreaterThanOrEqual(3000);
    await watcher.waitCount((f) => isPublication(f, 'live:1:chat') && f.payload.event === 'tick', published, 10_000);
    const ticks = watcher.events('live:1:chat', 'tick').map((f) => (f.payload.payload as { n: number }).n);
    expect(ticks).toEqual(Array.from({ length: published }, (_, i) => i));
    expect((await watcher.request('PING', {})).type).toBe('PONG');
    await watcher.close();
  });

  it('oversized frames close 1009, before and after authentication; new connections still work', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 10; i++) {
      const c = await WsTestClient.connect(h.wsUrl(i % 2 === 0 ? { token: fuzzer.key } : {}));
      c.sendRaw('{"type":"PING","payload":{"x":"' + 'y'.repeat(MAX_FRAME + i * 1000) + '"}}', i % 3 === 0);
      codes.push((await c.closed).code);
    }
    expect(codes).toEqual(Array(10).fill(1009));
    const ok = await WsTestClient.ready(h.wsUrl({ token: fuzzer.key }));
    expect((await ok.request('PING', {})).type).toBe('PONG');
    await ok.close();
  });

  it('frames before HELLO get errors without closing; garbage HELLOs close 4001; a real one still works', async () => {
    const r = rng(7);
    for (let round = 0; round < 5; round++) {
      const c = await WsTestClient.connect(h.wsUrl());
      for (let i = 0; i < 40; i++) {
        const f = randomFrame(r, i);
        if (String(f.data).includes('"HELLO"')) continue;
        c.sendRaw(f.data, f.binary);
      }
      const ack = await c.request('HELLO', { token: fuzzer.key });
      expect(ack.type).toBe('HELLO_ACK');
      expect(c.frames.filter((f) => f.type === 'ERROR').every((f) => ['UNAUTHORIZED', 'BAD_REQUEST', 'UNKNOWN_TYPE'].includes(f.payload.code as string))).toBe(true);
      await c.close();
    }
    const bad = await WsTestClient.connect(h.wsUrl());
    bad.send('HELLO', { token: { not: 'a string' } });
    const err = await bad.next((f) => f.type === 'ERROR');
    expect(err.payload.code).toBe('BAD_REQUEST');
    bad.send('HELLO', { token: 'tem_garbage' });
    expect((await bad.closed).code).toBe(4001);
  });
});
