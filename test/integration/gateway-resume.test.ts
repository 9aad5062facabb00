/**
 * History and resume (contract §4 "Delivery"): a SUBSCRIBE with `since`, or a HELLO resuming a
 * session, replays every missed publication exactly once, in order, before live ones — also
 * while publications keep arriving during the subscribe, and on another node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublication, startGatewayHarness, WsTestClient, type Frame, type GatewayHarness, type GatewayNode } from '../helpers/ws.js';
import type { TestPrincipal } from '../helpers/api.js';
import { namespaceResolver } from '../../src/bus/namespaces.js';
import type { Bus } from '../../src/bus/types.js';
import type { StreamPosition } from '../../src/protocol/frames.js';

let h: GatewayHarness;
let nodeB: GatewayNode;
let alice: TestPrincipal;
let bob: TestPrincipal;
/** Buses the tests create themselves, closed after the harness. */
const ownBuses: Bus[] = [];

beforeAll(async () => {
  h = await startGatewayHarness({ config: { namespaces: { live: { historySize: 20 }, user: { historySize: 20 } } } });
  nodeB = await h.addNode();
  alice = await h.api.createPrincipal({ id: 'alice' });
  bob = await h.api.createPrincipal({ id: 'bob' });
  for (const ch of ['live:1:chat', 'live:2:chat', 'live:3:chat', 'live:4:chat']) await h.api.store.addChannelMember(ch, 'alice');
});

afterAll(async () => {
  await h?.close();
  for (const b of ownBuses) await b.close();
});

const offsets = (frames: Frame[]) => frames.map((f) => f.payload.offset as number);

async function publishN(channel: string, n: number, tag = 'm'): Promise<{ offset: number; epoch: string }[]> {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await h.bus.publish(channel, tag, { i }));
  return out;
}

describe('SUBSCRIBE with since', () => {
  it('inside history: recovered, the missed publications once and in order, then live ones', async () => {
    const [first] = await publishN('live:1:chat', 4);
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const sub = await c.request('SUBSCRIBE', { channels: ['live:1:chat'], since: { 'live:1:chat': { offset: first!.offset, epoch: first!.epoch } } });
    expect(sub.payload).toMatchObject({ channel: 'live:1:chat', recovered: true, offset: first!.offset + 3, epoch: first!.epoch });
    await h.bus.publish('live:1:chat', 'm', { live: true });
    await c.waitCount((f) => isPublication(f, 'live:1:chat'), 4);
    const events = c.events('live:1:chat');
    expect(offsets(events)).toEqual([first!.offset + 1, first!.offset + 2, first!.offset + 3, first!.offset + 4]);
    expect(events.at(-1)!.payload.payload).toEqual({ live: true });
    // SUBSCRIBED comes before the replay.
    expect(c.frames.indexOf(sub)).toBeLessThan(c.frames.indexOf(events[0]!));
    await c.close();
  });

  it('to a channel a pattern already sent the connection: what the pattern sent is not replayed again', async () => {
    const svc = await h.api.createPrincipal({ kind: 'service' });
    const c = await WsTestClient.ready(h.wsUrl({ token: svc.key }));
    await c.request('SUBSCRIBE', { channels: ['live:9:*'] });
    const pubs = await publishN('live:9:chat', 6);
    await c.waitCount((f) => isPublication(f, 'live:9:chat'), 6);
    // A since older than what the pattern sent: those frames were on their way when it was sent.
    const at = pubs[2]!;
    const sub = await c.request('SUBSCRIBE', { channels: ['live:9:chat'], since: { 'live:9:chat': { offset: at.offset, epoch: at.epoch } } });
    expect(sub.payload).toMatchObject({ channel: 'live:9:chat', recovered: true, offset: pubs[5]!.offset });
    await h.bus.publish('live:9:chat', 'm', { live: true });
    await c.waitCount((f) => isPublication(f, 'live:9:chat'), 7);
    await c.request('PING', {});
    expect(offsets(c.events('live:9:chat'))).toEqual([...pubs.map((p) => p.offset), pubs[5]!.offset + 1]);
    await c.close();
  });

  it('to a channel a pattern sent only part of what was missed: the rest is replayed, nothing twice', async () => {
    const svc = await h.api.createPrincipal({ kind: 'service' });
    const before = await publishN('live:8:chat', 3);
    const c = await WsTestClient.ready(h.wsUrl({ token: svc.key }));
    await c.request('SUBSCRIBE', { channels: ['live:8:*'] });
    const via = await publishN('live:8:chat', 3);
    await c.waitCount((f) => isPublication(f, 'live:8:chat'), 3);
    const at = before[0]!;
    await c.request('SUBSCRIBE', { channels: ['live:8:chat'], since: { 'live:8:chat': { offset: at.offset, epoch: at.epoch } } });
    await c.waitCount((f) => isPublication(f, 'live:8:chat'), 5);
    await c.request('PING', {});
    // The pattern's three first, then the two from before the pattern, from history.
    expect(offsets(c.events('live:8:chat'))).toEqual([...via.map((p) => p.offset), before[1]!.offset, before[2]!.offset]);
    await c.close();
  });

  it('without since nothing is recovered, also on a channel the connection is already on', async () => {
    await publishN('live:3:chat', 2);
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    expect((await c.request('SUBSCRIBE', { channels: ['live:3:chat'] })).payload).toMatchObject({ channel: 'live:3:chat', recovered: false });
    expect((await c.request('SUBSCRIBE', { channels: ['live:3:chat'] })).payload).toMatchObject({ channel: 'live:3:chat', recovered: false });
    expect((await c.request('SUBSCRIBE', { channels: ['user:alice'] })).payload).toMatchObject({ channel: 'user:alice', recovered: false });
    await c.close();
  });

  it('outside history (too old, or another epoch): recovered false and nothing replayed', async () => {
    const [first] = await publishN('live:2:chat', 25);
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const old = await c.request('SUBSCRIBE', { channels: ['live:2:chat'], since: { 'live:2:chat': { offset: first!.offset, epoch: first!.epoch } } });
    expect(old.payload).toMatchObject({ recovered: false, offset: first!.offset + 24 });
    await c.request('UNSUBSCRIBE', { channels: ['live:2:chat'] });
    const other = await c.request('SUBSCRIBE', { channels: ['live:2:chat'], since: { 'live:2:chat': { offset: first!.offset + 20, epoch: 'another-epoch' } } });
    expect(other.payload).toMatchObject({ recovered: false });
    await new Promise((r) => setTimeout(r, 100));
    expect(c.events('live:2:chat')).toEqual([]);
    await c.close();
  });

  it('while publications keep coming: no gap, no duplicate, in order', async () => {
    const [start] = await publishN('live:3:chat', 1);
    let stop = false;
    const publisher = (async () => {
      let n = 0;
      while (!stop) {
        await h.bus.publish('live:3:chat', 'm', { n: n++ });
        if (n % 5 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    await new Promise((r) => setTimeout(r, 20));
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    // Ask from a position that is already behind: some in history, some live during the read.
    const sub = await c.request('SUBSCRIBE', { channels: ['live:3:chat'], since: { 'live:3:chat': { offset: start!.offset, epoch: start!.epoch } } });
    await new Promise((r) => setTimeout(r, 50));
    stop = true;
    await publisher;
    const last = await h.bus.position('live:3:chat');
    await c.waitFor((f) => isPublication(f, 'live:3:chat') && f.payload.offset === last.offset);
    const got = offsets(c.events('live:3:chat'));
    if (sub.payload.recovered) {
      expect(got[0]).toBe(start!.offset + 1);
    } else {
      expect(got[0]).toBeGreaterThan(sub.payload.offset as number);
    }
    for (let i = 1; i < got.length; i++) expect(got[i]).toBe(got[i - 1]! + 1);
    expect(got.at(-1)).toBe(last.offset);
    await c.close();
  });
});

describe('HELLO resume', () => {
  it('brings the session back with its channels and replays what was missed, then live ones', async () => {
    const a = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const ack = a.frames.find((f) => f.type === 'HELLO_ACK')!;
    const sessionId = ack.payload.session_id as string;
    await a.request('SUBSCRIBE', { channels: ['live:4:chat'] });
    await h.bus.publish('live:4:chat', 'm', { seen: 1 });
    await h.bus.publish('user:alice', 'event.update', { seen: 1 });
    const seenChat = await a.waitFor((f) => isPublication(f, 'live:4:chat'));
    const seenUser = await a.waitFor((f) => isPublication(f, 'user:alice'));
    await a.close();

    await publishN('live:4:chat', 3, 'missed');
    await h.bus.publish('user:alice', 'event.update', { missed: 1 });

    const b = await WsTestClient.connect(h.wsUrl());
    const since = {
      'live:4:chat': { offset: seenChat.payload.offset, epoch: seenChat.payload.epoch },
      'user:alice': { offset: seenUser.payload.offset, epoch: seenUser.payload.epoch },
    };
    const resumed = await b.request('HELLO', { token: alice.key, session_id: sessionId, since });
    expect(resumed.payload).toMatchObject({ session_id: sessionId, resumed: true, recovered: true });
    expect(resumed.payload.channels).toMatchObject({ 'live:4:chat': { recovered: true }, 'user:alice': { recovered: true } });
    await h.bus.publish('live:4:chat', 'live', {});
    await b.waitCount((f) => isPublication(f, 'live:4:chat'), 4);
    const chat = b.events('live:4:chat');
    expect(chat.map((f) => f.payload.event)).toEqual(['missed', 'missed', 'missed', 'live']);
    expect(offsets(chat)).toEqual([1, 2, 3, 4].map((i) => (seenChat.payload.offset as number) + i));
    expect(b.events('user:alice').map((f) => f.payload.payload)).toEqual([{ missed: 1 }]);
    expect(b.frames.indexOf(resumed)).toBeLessThan(b.frames.indexOf(chat[0]!));
    await b.close();
  });

  it('without since, replays from the positions saved with the session but does not claim recovered', async () => {
    await h.api.store.addChannelMember('live:5:chat', 'alice');
    const a = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const sessionId = a.frames[0]!.payload.session_id as string;
    await a.request('SUBSCRIBE', { channels: ['live:5:chat'] });
    await h.bus.publish('live:5:chat', 'm', { n: 0 });
    await a.waitFor((f) => isPublication(f, 'live:5:chat'));
    await a.close();
    await new Promise((r) => setTimeout(r, 50)); // the session write on close
    await publishN('live:5:chat', 2, 'missed');

    const b = await WsTestClient.connect(nodeB.wsUrl());
    const resumed = await b.request('HELLO', { token: alice.key, session_id: sessionId });
    // The saved position is what the server wrote to the old connection; what its client
    // received is only known from its own since: the client must resync to be sure.
    expect(resumed.payload).toMatchObject({ resumed: true, recovered: false });
    expect((resumed.payload.channels as Record<string, { recovered: boolean }>)['live:5:chat']).toMatchObject({ recovered: false });
    await b.waitCount((f) => isPublication(f, 'live:5:chat'), 2);
    expect(b.events('live:5:chat').map((f) => f.payload.event)).toEqual(['missed', 'missed']);
    await b.close();
  });

  it('takes a HELLO whose since names every channel a connection may hold, not only one frame of them', async () => {
    // A client resuming with 512 subscriptions and its own channel names them all.
    const since = Object.fromEntries(Array.from({ length: 513 }, (_, i) => [`live:many:c${i}`, { offset: 1, epoch: 'e' }]));
    const c = await WsTestClient.connect(h.wsUrl());
    expect((await c.request('HELLO', { token: alice.key, since })).type).toBe('HELLO_ACK');
    await c.close();
    const tooMany = Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`l:${i}`, { offset: 1, epoch: 'e' }]));
    const d = await WsTestClient.connect(h.wsUrl());
    expect(await d.request('HELLO', { token: alice.key, since: tooMany })).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST', message: 'payload.since holds at most 1024 channels' } });
    await d.close();
  });

  it('a connection still open after another resumed its session no longer writes it', async () => {
    for (const ch of ['live:8:chat', 'live:9:chat']) await h.api.store.addChannelMember(ch, 'alice');
    const a = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const sessionId = a.frames[0]!.payload.session_id as string;
    await a.request('SUBSCRIBE', { channels: ['live:8:chat'] });
    // The client thinks `a` is gone and resumes on a new connection; `a` is in fact still open.
    const b = await WsTestClient.connect(h.wsUrl());
    expect((await b.request('HELLO', { token: alice.key, session_id: sessionId })).payload).toMatchObject({ resumed: true });
    await b.request('SUBSCRIBE', { channels: ['live:9:chat'] });
    await b.close();
    await new Promise((r) => setTimeout(r, 100)); // the session write on close
    // Later the old connection changes its subscriptions and closes: both would save the session.
    await a.request('UNSUBSCRIBE', { channels: ['live:8:chat'] });
    await a.close();
    await new Promise((r) => setTimeout(r, 100));
    const c = await WsTestClient.connect(h.wsUrl());
    const resumed = await c.request('HELLO', { token: alice.key, session_id: sessionId });
    expect(Object.keys(resumed.payload.channels as object).sort()).toEqual(['live:8:chat', 'live:9:chat', 'user:alice']);
    await c.close();
  });

  it('a session of another user, or an unknown one, is not resumed', async () => {
    const a = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const sessionId = a.frames[0]!.payload.session_id as string;
    await a.close();
    const b = await WsTestClient.connect(h.wsUrl());
    const other = await b.request('HELLO', { token: bob.key, session_id: sessionId });
    expect(other.payload).toMatchObject({ user_id: 'bob', resumed: false });
    expect(other.payload.session_id).not.toBe(sessionId);
    expect(Object.keys(other.payload.channels as object)).toEqual(['user:bob']);
    const c = await WsTestClient.connect(h.wsUrl());
    const unknown = await c.request('HELLO', { token: bob.key, session_id: 'sess_nope' });
    expect(unknown.payload.resumed).toBe(false);
    // Positions for channels that do not come back were not recovered: the client must resync.
    const d = await WsTestClient.connect(h.wsUrl());
    const own = await d.request('HELLO', { token: bob.key });
    const pos = { offset: (own.payload.channels as Record<string, { offset: number }>)['user:bob']!.offset, epoch: (own.payload.channels as Record<string, { epoch: string }>)['user:bob']!.epoch };
    const lost = await c.request('HELLO', { token: bob.key, session_id: 'sess_gone', since: { 'user:bob': pos, 'live:9:chat': { offset: 3, epoch: 'e' } } });
    expect(lost.payload).toMatchObject({ resumed: false, recovered: false });
    const e = await WsTestClient.connect(h.wsUrl());
    expect((await e.request('HELLO', { token: bob.key, session_id: 'sess_gone', since: { 'user:bob': pos } })).payload).toMatchObject({ resumed: false, recovered: true });
    await b.close();
    await c.close();
    await d.close();
    await e.close();
  });

  it('resumes after a query-token connect: a later HELLO with session_id restores the channels', async () => {
    await h.api.store.addChannelMember('live:6:chat', 'alice');
    const a = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const sessionId = a.frames[0]!.payload.session_id as string;
    const sub = await a.request('SUBSCRIBE', { channels: ['live:6:chat'] });
    await a.close();
    await new Promise((r) => setTimeout(r, 50));
    await publishN('live:6:chat', 2, 'missed');
    const b = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const resumed = await b.request('HELLO', { session_id: sessionId, since: { 'live:6:chat': { offset: sub.payload.offset, epoch: sub.payload.epoch } } });
    expect(resumed.payload).toMatchObject({ session_id: sessionId, resumed: true, recovered: true });
    await b.waitCount((f) => isPublication(f, 'live:6:chat'), 2);
    await b.close();
  });

  it('after a query-token connect, HELLO with since replays what the own channel missed too, once and in order', async () => {
    await h.api.store.addChannelMember('live:7:chat', 'alice');
    const a = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const sessionId = a.frames[0]!.payload.session_id as string;
    await a.request('SUBSCRIBE', { channels: ['live:7:chat'] });
    await h.bus.publish('live:7:chat', 'm', { seen: 1 });
    await h.bus.publish('user:alice', 'event.update', { seen: 1 });
    const seenChat = await a.waitFor((f) => isPublication(f, 'live:7:chat'));
    const seenUser = await a.waitFor((f) => isPublication(f, 'user:alice'));
    await a.close();
    await new Promise((r) => setTimeout(r, 50)); // the session write on close

    const missedChat = await publishN('live:7:chat', 3, 'missed');
    const missedUser = await publishN('user:alice', 3, 'missed');

    // The upgrade subscribes user:alice at once, before the client says where it was.
    const b = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const since = {
      'live:7:chat': { offset: seenChat.payload.offset, epoch: seenChat.payload.epoch },
      'user:alice': { offset: seenUser.payload.offset, epoch: seenUser.payload.epoch },
    };
    const resumed = await b.request('HELLO', { session_id: sessionId, since });
    expect(resumed.payload).toMatchObject({ session_id: sessionId, resumed: true, recovered: true });
    expect(resumed.payload.channels).toMatchObject({
      'live:7:chat': { recovered: true, offset: missedChat.at(-1)!.offset },
      'user:alice': { recovered: true, offset: missedUser.at(-1)!.offset },
    });
    await h.bus.publish('user:alice', 'live', { live: true });
    await h.bus.publish('live:7:chat', 'live', { live: true });
    await b.waitCount((f) => isPublication(f, 'user:alice'), 4);
    await b.waitCount((f) => isPublication(f, 'live:7:chat'), 4);
    await new Promise((r) => setTimeout(r, 50)); // room for a duplicate to show up
    for (const [channel, missed] of [['user:alice', missedUser], ['live:7:chat', missedChat]] as const) {
      const got = b.events(channel);
      expect(got.map((f) => f.payload.event)).toEqual(['missed', 'missed', 'missed', 'live']);
      expect(offsets(got)).toEqual([...missed.map((m) => m.offset), missed.at(-1)!.offset + 1]);
      expect(b.frames.indexOf(resumed)).toBeLessThan(b.frames.indexOf(got[0]!));
    }
    await b.close();
  });

  it('after a query-token connect, HELLO with a since outside the own channel history: recovered false, nothing replayed, live goes on', async () => {
    const a = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const sessionId = a.frames[0]!.payload.session_id as string;
    await h.bus.publish('user:alice', 'event.update', { seen: 1 });
    const seen = await a.waitFor((f) => isPublication(f, 'user:alice'));
    await a.close();
    await new Promise((r) => setTimeout(r, 50));
    await publishN('user:alice', 25, 'missed'); // history keeps 20

    const b = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const old = await b.request('HELLO', { session_id: sessionId, since: { 'user:alice': { offset: seen.payload.offset, epoch: seen.payload.epoch } } });
    expect(old.payload).toMatchObject({ resumed: true, recovered: false, channels: { 'user:alice': { recovered: false } } });
    const other = await b.request('HELLO', { session_id: sessionId, since: { 'user:alice': { offset: seen.payload.offset, epoch: 'another-epoch' } } });
    expect(other.payload).toMatchObject({ recovered: false, channels: { 'user:alice': { recovered: false } } });
    const live = await h.bus.publish('user:alice', 'live', {});
    await b.waitFor((f) => isPublication(f, 'user:alice'));
    await new Promise((r) => setTimeout(r, 50));
    expect(offsets(b.events('user:alice'))).toEqual([live.offset]);
    await b.close();
  });

  it('a HELLO after a query-token connect lists the channels the connection is on, and replays those its since names', async () => {
    await h.api.store.addChannelMember('live:10:chat', 'alice');
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const sub = (await c.request('SUBSCRIBE', { channels: ['live:10:chat'] })).payload as { offset: number; epoch: string };
    const missed = await publishN('live:10:chat', 2);
    await c.waitCount((f) => isPublication(f, 'live:10:chat'), 2);
    const ack = await c.request('HELLO', { since: { 'live:10:chat': sub } });
    expect(ack.payload).toMatchObject({ resumed: false, recovered: true, channels: { 'user:alice': {}, 'live:10:chat': { offset: missed[1]!.offset, recovered: true } } });
    await new Promise((r) => setTimeout(r, 50)); // room for a duplicate to show up
    // Sent live already: not again.
    expect(offsets(c.events('live:10:chat'))).toEqual(missed.map((p) => p.offset));
    await c.close();
  });

  it('HELLO with since on an already subscribed channel: nothing sent twice, also what arrives during the history read', async () => {
    // A node whose history reads wait for the test, so publications land while one is in flight.
    const inner = h.hub.node({ namespaces: namespaceResolver(h.api.config), clock: h.api.clock });
    ownBuses.push(inner);
    let release: () => void = () => undefined;
    let gate: Promise<void> = Promise.resolve();
    let reading = false;
    const gated = new Proxy(inner, {
      get(target, key) {
        if (key === 'history') {
          return async (channel: string, since?: StreamPosition) => {
            reading = true;
            await gate;
            return target.history(channel, since);
          };
        }
        const value: unknown = Reflect.get(target, key);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const node = await h.addNode({ bus: gated });

    const before = await publishN('user:alice', 2, 'before');
    const c = await WsTestClient.ready(node.wsUrl({ token: alice.key }));
    const sessionId = c.frames[0]!.payload.session_id as string;

    gate = new Promise((r) => (release = r));
    const ack = c.request('HELLO', { session_id: sessionId, since: { 'user:alice': { offset: before[0]!.offset - 1, epoch: before[0]!.epoch } } });
    while (!reading) await new Promise((r) => setTimeout(r, 5));
    const during = await publishN('user:alice', 3, 'during');
    await new Promise((r) => setTimeout(r, 20)); // they reach the node while the read waits
    release();
    const resumed = await ack;
    expect(resumed.payload).toMatchObject({ recovered: true, channels: { 'user:alice': { recovered: true } } });
    await c.waitCount((f) => isPublication(f, 'user:alice'), 5);
    await new Promise((r) => setTimeout(r, 50)); // room for a duplicate to show up
    const got = c.events('user:alice');
    // Once each, in order, after HELLO_ACK.
    expect(offsets(got)).toEqual([...before, ...during].map((p) => p.offset));
    expect(c.frames.indexOf(resumed)).toBeLessThan(c.frames.indexOf(got[0]!));
    await c.close();
  });

  it('HELLO with since on a channel already sent something newer live: recovered false, nothing out of order', async () => {
    const before = await publishN('user:alice', 2, 'before');
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const sessionId = c.frames[0]!.payload.session_id as string;
    const [early] = await publishN('user:alice', 1, 'early');
    await c.waitFor((f) => isPublication(f, 'user:alice'));
    // `before` was missed, `early` already went out: the missed ones could only come after it.
    const resumed = await c.request('HELLO', { session_id: sessionId, since: { 'user:alice': { offset: before[0]!.offset - 1, epoch: before[0]!.epoch } } });
    expect(resumed.payload).toMatchObject({ recovered: false, channels: { 'user:alice': { recovered: false } } });
    const [after] = await publishN('user:alice', 1, 'after');
    await c.waitCount((f) => isPublication(f, 'user:alice'), 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(offsets(c.events('user:alice'))).toEqual([early!.offset, after!.offset]);
    await c.close();
  });
});
