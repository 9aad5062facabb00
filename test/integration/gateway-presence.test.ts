/**
 * Typing and presence (contract §4): typing notices reach everyone on the channel but the typist
 * and stop by themselves; presence shows members with their best status, announces joins,
 * updates and leaves, and turns a user offline only once its last connection is gone and the TTL
 * ran out — also when the node holding the connection goes away.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotice, isPublication, startGatewayHarness, WsTestClient, type GatewayHarness } from '../helpers/ws.js';
import type { TestPrincipal } from '../helpers/api.js';

const TTL = 600;

let h: GatewayHarness;
let alice: TestPrincipal;
let bob: TestPrincipal;
let carol: TestPrincipal;

beforeAll(async () => {
  h = await startGatewayHarness({
    config: { presenceTtlMs: TTL, namespaces: { '*': { joinLeave: true }, quiet: { joinLeave: false }, nopresence: { presence: false } } },
    tuning: { typingTimeoutMs: 300, presenceRefreshMs: 100 },
  });
  alice = await h.api.createPrincipal({ id: 'alice' });
  bob = await h.api.createPrincipal({ id: 'bob' });
  carol = await h.api.createPrincipal({ id: 'carol' });
  for (const ch of ['live:1:chat', 'live:2:chat', 'live:3:chat', 'live:4:chat', 'live:5:chat', 'quiet:1', 'nopresence:1']) {
    for (const u of ['alice', 'bob']) await h.api.store.addChannelMember(ch, u);
  }
});

afterAll(async () => {
  await h?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function on(token: string, channel: string, url = h.wsUrl({ token })): Promise<WsTestClient> {
  const c = await WsTestClient.ready(url);
  const sub = await c.request('SUBSCRIBE', { channels: [channel] });
  expect(sub.type).toBe('SUBSCRIBED');
  return c;
}

async function members(c: WsTestClient, channel: string) {
  const state = await c.request('PRESENCE', { channel });
  expect(state.type).toBe('PRESENCE_STATE');
  return state.payload.members as { user_id: string; status: string }[];
}

describe('typing', () => {
  it('others on the channel hear it, the typist does not; TYPING_STOP ends it', async () => {
    const a = await on(alice.key, 'live:1:chat');
    const a2 = await on(alice.key, 'live:1:chat');
    const b = await on(bob.key, 'live:1:chat');
    const started = b.next((f) => isNotice(f, 'live:1:chat') && f.payload.event === 'typing');
    a.send('TYPING_START', { channel: 'live:1:chat' });
    expect((await started).payload).toMatchObject({ channel: 'live:1:chat', event: 'typing', payload: { user_id: 'alice', is_typing: true } });
    const stopped = b.next((f) => isNotice(f, 'live:1:chat') && f.payload.event === 'typing');
    a.send('TYPING_STOP', { channel: 'live:1:chat' });
    expect((await stopped).payload.payload).toEqual({ user_id: 'alice', is_typing: false });
    await sleep(100);
    expect(a.notices('live:1:chat', 'typing')).toEqual([]);
    expect(a2.notices('live:1:chat', 'typing')).toEqual([]);
    await Promise.all([a.close(), a2.close(), b.close()]);
  });

  it('a notice carries the position the receiving connection is at, never an empty one', async () => {
    // History from before this node had a subscriber: no publication was fanned out here yet.
    await h.bus.publish('live:5:chat', 'm', { n: 1 });
    await h.bus.publish('live:5:chat', 'm', { n: 2 });
    const b = await WsTestClient.ready(h.wsUrl({ token: bob.key }));
    const subscribed = await b.request('SUBSCRIBE', { channels: ['live:5:chat'] });
    expect(subscribed.payload).toMatchObject({ offset: 2 });
    const a = await on(alice.key, 'live:5:chat');
    const typing = b.next((f) => isNotice(f, 'live:5:chat') && f.payload.event === 'typing');
    a.send('TYPING_START', { channel: 'live:5:chat' });
    expect((await typing).payload).toMatchObject({ offset: 2, epoch: subscribed.payload.epoch });
    // Resuming from that position loses nothing and repeats nothing.
    await h.bus.publish('live:5:chat', 'm', { n: 3 });
    const c = await WsTestClient.ready(h.wsUrl({ token: bob.key }));
    const resumed = await c.request('SUBSCRIBE', { channels: ['live:5:chat'], since: { 'live:5:chat': { offset: 2, epoch: subscribed.payload.epoch } } });
    expect(resumed.payload).toMatchObject({ recovered: true, offset: 3 });
    expect((await c.waitFor((f) => isPublication(f, 'live:5:chat'))).payload).toMatchObject({ offset: 3, payload: { n: 3 } });
    a.send('TYPING_STOP', { channel: 'live:5:chat' });
  });

  it('stops by itself after the timeout; repeated starts are announced once', async () => {
    const a = await on(alice.key, 'live:2:chat');
    const b = await on(bob.key, 'live:2:chat');
    a.send('TYPING_START', { channel: 'live:2:chat' });
    a.send('TYPING_START', { channel: 'live:2:chat' });
    const stopped = await b.waitFor((f) => isNotice(f, 'live:2:chat') && f.payload.event === 'typing' && (f.payload.payload as { is_typing: boolean }).is_typing === false, 3000);
    expect(stopped.payload.payload).toEqual({ user_id: 'alice', is_typing: false });
    expect(b.notices('live:2:chat', 'typing').map((f) => (f.payload.payload as { is_typing: boolean }).is_typing)).toEqual([true, false]);
    await Promise.all([a.close(), b.close()]);
  });

  it('keeps typing alive while starts keep coming, announced once, then stops once', async () => {
    const a = await on(alice.key, 'live:4:chat');
    const b = await on(bob.key, 'live:4:chat');
    // Starts every 100 ms for three timeouts: the typist's node passes keep-alives on, every
    // node passes the start on once.
    for (let i = 0; i < 9; i++) {
      a.send('TYPING_START', { channel: 'live:4:chat' });
      await sleep(100);
    }
    const typingOf = () => b.notices('live:4:chat', 'typing').map((f) => (f.payload.payload as { is_typing: boolean }).is_typing);
    expect(typingOf()).toEqual([true]);
    await b.waitFor((f) => isNotice(f, 'live:4:chat') && f.payload.event === 'typing' && (f.payload.payload as { is_typing: boolean }).is_typing === false, 3000);
    await sleep(700); // past the watch's own deadline: no second stop
    expect(typingOf()).toEqual([true, false]);
    await Promise.all([a.close(), b.close()]);
  });

  it('a user typing on two devices stops only when both have stopped', async () => {
    const phone = await on(alice.key, 'live:5:chat');
    const laptop = await on(alice.key, 'live:5:chat');
    const b = await on(bob.key, 'live:5:chat');
    phone.send('TYPING_START', { channel: 'live:5:chat' });
    laptop.send('TYPING_START', { channel: 'live:5:chat' });
    await b.waitFor((f) => isNotice(f, 'live:5:chat') && f.payload.event === 'typing');
    phone.send('TYPING_STOP', { channel: 'live:5:chat' });
    await sleep(100);
    const typingOf = () => b.notices('live:5:chat', 'typing').map((f) => (f.payload.payload as { is_typing: boolean }).is_typing);
    expect(typingOf()).toEqual([true]);
    laptop.send('TYPING_STOP', { channel: 'live:5:chat' });
    await b.waitFor((f) => isNotice(f, 'live:5:chat') && f.payload.event === 'typing' && (f.payload.payload as { is_typing: boolean }).is_typing === false);
    expect(typingOf()).toEqual([true, false]);
    await Promise.all([phone.close(), laptop.close(), b.close()]);
  });

  it("ends a typist's start that no stop or keep-alive follows, as when the typist's node died", async () => {
    const b = await on(bob.key, 'live:4:chat');
    // The start a node sent just before it was killed: its stop never comes.
    await h.bus.publishControl({ kind: 'ephemeral', channel: 'live:4:chat', event: 'typing', payload: { user_id: 'ghost', is_typing: true } });
    const stopped = await b.waitFor((f) => isNotice(f, 'live:4:chat') && f.payload.event === 'typing' && (f.payload.payload as { is_typing: boolean }).is_typing === false, 3000);
    expect(stopped.payload.payload).toEqual({ user_id: 'ghost', is_typing: false });
    expect(b.notices('live:4:chat', 'typing').map((f) => f.payload.payload)).toEqual([
      { user_id: 'ghost', is_typing: true },
      { user_id: 'ghost', is_typing: false },
    ]);
    await b.close();
  });

  it('typing on a channel one is not subscribed to is a BAD_REQUEST', async () => {
    const a = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    expect(await a.request('TYPING_START', { channel: 'live:9:chat' })).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST' } });
    await a.close();
  });
});

describe('presence', () => {
  it('PRESENCE lists members with their best status; joins and updates are announced', async () => {
    const b = await on(bob.key, 'live:3:chat');
    const joined = b.next((f) => isNotice(f, 'live:3:chat') && f.payload.event === 'presence.join');
    const a = await on(alice.key, 'live:3:chat');
    expect((await joined).payload.payload).toEqual({ user_id: 'alice', status: 'online' });
    expect(await members(b, 'live:3:chat')).toEqual(
      expect.arrayContaining([
        { user_id: 'alice', status: 'online' },
        { user_id: 'bob', status: 'online' },
      ]),
    );
    const updated = b.next((f) => isNotice(f, 'live:3:chat') && f.payload.event === 'presence.update');
    a.send('SET_PRESENCE', { status: 'dnd' });
    expect((await updated).payload.payload).toEqual({ user_id: 'alice', status: 'dnd' });
    expect((await members(b, 'live:3:chat')).find((m) => m.user_id === 'alice')).toEqual({ user_id: 'alice', status: 'dnd' });
    // A second connection that is online makes the user online (the best status wins).
    const a2 = await on(alice.key, 'live:3:chat');
    expect((await members(b, 'live:3:chat')).find((m) => m.user_id === 'alice')?.status).toBe('online');
    await Promise.all([a.close(), a2.close(), b.close()]);
  });

  it('PRESENCE on a channel one may not see is FORBIDDEN', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: carol.key }));
    expect(await c.request('PRESENCE', { channel: 'live:3:chat' })).toMatchObject({ type: 'ERROR', payload: { code: 'FORBIDDEN' } });
    await c.close();
  });

  it('a closed connection stays online until the TTL runs out, then offline with presence.leave', async () => {
    const b = await on(bob.key, 'live:4:chat');
    const a = await on(alice.key, 'live:4:chat');
    await b.waitFor((f) => isNotice(f, 'live:4:chat') && f.payload.event === 'presence.join' && (f.payload.payload as { user_id: string }).user_id === 'alice');
    await a.close();
    const closedAt = Date.now();
    const left = b.next((f) => isNotice(f, 'live:4:chat') && f.payload.event === 'presence.leave', TTL * 6);
    // Within the TTL a reconnecting user would not flicker.
    expect((await members(b, 'live:4:chat')).map((m) => m.user_id)).toContain('alice');
    const leave = await left;
    expect(leave.payload.payload).toEqual({ user_id: 'alice', status: 'offline' });
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(TTL - 50);
    // A registered member who is gone is listed offline, as GET /api/presence lists her.
    expect((await members(b, 'live:4:chat')).find((m) => m.user_id === 'alice')).toEqual({ user_id: 'alice', status: 'offline' });
    await b.close();
  });

  it('UNSUBSCRIBE leaves at once', async () => {
    const b = await on(bob.key, 'live:4:chat');
    const a = await on(alice.key, 'live:4:chat');
    const left = b.next((f) => isNotice(f, 'live:4:chat') && f.payload.event === 'presence.leave');
    await a.request('UNSUBSCRIBE', { channels: ['live:4:chat'] });
    expect((await left).payload.payload).toEqual({ user_id: 'alice', status: 'offline' });
    await Promise.all([a.close(), b.close()]);
  });

  it('users on a node that goes away turn offline once their TTL runs out', async () => {
    const other = await h.addNode();
    const b = await on(bob.key, 'live:1:chat');
    const a = await on(alice.key, 'live:1:chat', other.wsUrl({ token: alice.key }));
    await b.waitFor((f) => isNotice(f, 'live:1:chat') && f.payload.event === 'presence.join' && (f.payload.payload as { user_id: string }).user_id === 'alice');
    const left = b.next((f) => isNotice(f, 'live:1:chat') && f.payload.event === 'presence.leave', TTL * 6);
    await other.close();
    await a.closed;
    expect((await left).payload.payload).toEqual({ user_id: 'alice', status: 'offline' });
    await b.close();
  });

  it('a status set with SET_PRESENCE comes back with a resume of the session, on another node too', async () => {
    const other = await h.addNode();
    for (const u of ['alice', 'bob']) await h.api.store.addChannelMember('live:status:1', u);
    const b = await on(bob.key, 'live:status:1');
    const a = await on(alice.key, 'live:status:1');
    const sessionId = a.frames[0]!.payload.session_id as string;
    const updated = b.next((f) => isNotice(f, 'live:status:1') && f.payload.event === 'presence.update');
    a.send('SET_PRESENCE', { status: 'dnd' });
    await updated;
    await a.close();
    await sleep(50); // the session write on close
    const resumed = await WsTestClient.connect(other.wsUrl());
    expect((await resumed.request('HELLO', { token: alice.key, session_id: sessionId })).payload).toMatchObject({ resumed: true });
    expect((await members(b, 'live:status:1')).find((m) => m.user_id === 'alice')).toEqual({ user_id: 'alice', status: 'dnd' });
    // The resumed connection is dnd on channels it joins later too.
    await h.api.store.addChannelMember('live:status:2', 'alice');
    expect((await resumed.request('SUBSCRIBE', { channels: ['live:status:2'] })).type).toBe('SUBSCRIBED');
    expect(await members(resumed, 'live:status:2')).toEqual([{ user_id: 'alice', status: 'dnd' }]);
    await Promise.all([resumed.close(), b.close()]);
    await other.close();
  });

  it('namespaces without joinLeave keep presence but announce nothing; without presence keep none', async () => {
    const b = await on(bob.key, 'quiet:1');
    const a = await on(alice.key, 'quiet:1');
    expect((await members(b, 'quiet:1')).map((m) => m.user_id).sort()).toEqual(['alice', 'bob']);
    const bn = await on(bob.key, 'nopresence:1');
    expect(await members(bn, 'nopresence:1')).toEqual([]);
    await sleep(100);
    expect(b.notices('quiet:1')).toEqual([]);
    await Promise.all([a.close(), b.close(), bn.close()]);
  });
});

/**
 * Timing that the short timers above would hide: entries refreshed far apart, typing that never
 * stops by itself within a test. What is seen here can only come from the close or the leave.
 */
describe('presence and typing, counted from what the client did', () => {
  let slow: GatewayHarness;
  let ann: TestPrincipal;
  let ben: TestPrincipal;
  let dan: TestPrincipal;

  beforeAll(async () => {
    slow = await startGatewayHarness({
      config: { presenceTtlMs: TTL, namespaces: { '*': { joinLeave: true } } },
      tuning: { typingTimeoutMs: 60_000, presenceRefreshMs: 100_000, presenceSweepMs: 50, maxSubscriptions: 8 },
    });
    ann = await slow.api.createPrincipal({ id: 'ann' });
    ben = await slow.api.createPrincipal({ id: 'ben' });
    dan = await slow.api.createPrincipal({ id: 'dan', extra_permissions: ['channels.subscribe.live'] });
    for (const u of ['ann', 'ben']) await slow.api.store.addChannelMember('live:1:chat', u);
  });

  afterAll(async () => {
    await slow?.close();
  });

  async function join(token: string, channel: string): Promise<WsTestClient> {
    const c = await WsTestClient.ready(slow.wsUrl({ token }));
    expect((await c.request('SUBSCRIBE', { channels: [channel] })).type).toBe('SUBSCRIBED');
    return c;
  }

  it('the TTL of a closed connection counts from the close, not from its last refresh', async () => {
    const b = await join(ben.key, 'live:1:chat');
    const a = await join(ann.key, 'live:1:chat');
    await b.waitFor((f) => isNotice(f, 'live:1:chat') && f.payload.event === 'presence.join' && (f.payload.payload as { user_id: string }).user_id === 'ann');
    // Ann's entry was written at her join and not refreshed since; she closes half a TTL later.
    await sleep(TTL / 2);
    // (Ben's own entry is not refreshed either and may expire meanwhile: only Ann's leave counts.)
    const left = b.next((f) => isNotice(f, 'live:1:chat') && f.payload.event === 'presence.leave' && (f.payload.payload as { user_id: string }).user_id === 'ann', TTL * 6);
    await a.close();
    const closedAt = Date.now();
    expect((await left).payload.payload).toEqual({ user_id: 'ann', status: 'offline' });
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(TTL - 50);
    await b.close();
  });

  it('an entry that expired while the connection lived (no refresh got through) is not revived by its close', async () => {
    const b = await join(ben.key, 'live:1:chat');
    const a = await join(ann.key, 'live:1:chat');
    const isAnn = (event: string) => (f: { type: string; payload: Record<string, unknown> }) =>
      isNotice(f as never, 'live:1:chat') && f.payload.event === event && (f.payload.payload as { user_id: string }).user_id === 'ann';
    await b.waitFor(isAnn('presence.join'));
    // No refresh within the TTL (as when the node cannot reach Redis): Ann is swept, her leave announced.
    await b.waitFor(isAnn('presence.leave'), TTL * 6);
    const joinsBefore = b.frames.filter(isAnn('presence.join')).length;
    await a.close();
    await sleep(TTL * 2);
    expect(b.frames.filter(isAnn('presence.join')).length).toBe(joinsBefore);
    expect(b.frames.filter(isAnn('presence.leave')).length).toBe(1);
    const listed = (await b.request('PRESENCE', { channel: 'live:1:chat' })).payload.members as { user_id: string; status: string }[];
    expect(listed.find((m) => m.user_id === 'ann')).toEqual({ user_id: 'ann', status: 'offline' });
    await b.close();
  });

  it('a notice reaching a pattern subscriber carries the channel\'s last position fanned out, not an empty one', async () => {
    // Dan's node has no exact subscriber of the channel: only the pattern saw its publications.
    const other = await slow.addNode();
    const d = await WsTestClient.ready(other.wsUrl({ token: dan.key }));
    expect((await d.request('SUBSCRIBE', { channels: ['live:*'] })).type).toBe('SUBSCRIBED');
    const b = await join(ben.key, 'live:1:chat');
    const published = await slow.bus.publish('live:1:chat', 'm', {});
    await d.waitFor((f) => isPublication(f, 'live:1:chat') && f.payload.offset === published.offset);
    const typing = d.next((f) => isNotice(f, 'live:1:chat') && f.payload.event === 'typing');
    b.send('TYPING_START', { channel: 'live:1:chat' });
    expect((await typing).payload).toMatchObject({ offset: published.offset, epoch: published.epoch });
    b.send('TYPING_STOP', { channel: 'live:1:chat' });
    await Promise.all([d.close(), b.close()]);
  });

  it('a pattern covering the channel is enough to type there; leaving it stops the typing', async () => {
    const d = await join(dan.key, 'live:*');
    const b = await join(ben.key, 'live:1:chat');
    const started = b.next((f) => isNotice(f, 'live:1:chat') && f.payload.event === 'typing');
    d.send('TYPING_START', { channel: 'live:1:chat' });
    expect((await started).payload.payload).toEqual({ user_id: 'dan', is_typing: true });
    expect(await d.request('TYPING_START', { channel: 'live:*' })).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST' } });
    // As many channels as subscriptions at most, however many the pattern covers.
    for (let i = 2; i <= 8; i++) d.send('TYPING_START', { channel: `live:${i}:chat` });
    expect(await d.request('TYPING_START', { channel: 'live:9:chat' })).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST' } });
    const stopped = b.next((f) => isNotice(f, 'live:1:chat') && f.payload.event === 'typing');
    expect((await d.request('UNSUBSCRIBE', { channels: ['live:*'] })).type).toBe('UNSUBSCRIBED');
    expect((await stopped).payload.payload).toEqual({ user_id: 'dan', is_typing: false });
    await Promise.all([d.close(), b.close()]);
  });
});

describe('leaving after a reload', () => {
  // A TTL far longer than the test: a closed connection's entry would outlast it.
  let h2: GatewayHarness;
  let ann: TestPrincipal;
  let ben: TestPrincipal;

  beforeAll(async () => {
    h2 = await startGatewayHarness({ config: { presenceTtlMs: 60_000, namespaces: { '*': { joinLeave: true } } } });
    ann = await h2.api.createPrincipal({ id: 'ann' });
    ben = await h2.api.createPrincipal({ id: 'ben' });
    for (const u of ['ann', 'ben']) await h2.api.store.addChannelMember('live:9:chat', u);
  });

  afterAll(async () => {
    await h2?.close();
  });

  it('UNSUBSCRIBE from the reconnected tab leaves at once: the closed tab does not keep the user online', async () => {
    const isAnn = (event: string) => (f: Parameters<typeof isNotice>[0]) =>
      isNotice(f, 'live:9:chat') && f.payload.event === event && (f.payload.payload as { user_id: string }).user_id === 'ann';
    const b = await on(ben.key, 'live:9:chat', h2.wsUrl({ token: ben.key }));
    const a = await on(ann.key, 'live:9:chat', h2.wsUrl({ token: ann.key }));
    await b.waitFor(isAnn('presence.join'));
    // A reload: the old socket closes, a new one subscribes within the TTL (no flicker).
    await a.close();
    const a2 = await on(ann.key, 'live:9:chat', h2.wsUrl({ token: ann.key }));
    const left = b.next(isAnn('presence.leave'), 5_000);
    expect((await a2.request('UNSUBSCRIBE', { channels: ['live:9:chat'] })).type).toBe('UNSUBSCRIBED');
    expect((await left).payload.payload).toEqual({ user_id: 'ann', status: 'offline' });
    expect((await members(b, 'live:9:chat')).find((m) => m.user_id === 'ann')).toEqual({ user_id: 'ann', status: 'offline' });
    // Only one leave: the closed tab's entry went with it, and nothing is left to expire later.
    expect(b.frames.filter(isAnn('presence.leave')).length).toBe(1);
    await Promise.all([a2.close(), b.close()]);
  });
});
