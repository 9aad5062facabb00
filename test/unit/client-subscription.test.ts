import { afterEach, describe, expect, it } from 'vitest';
import { TemClient, type Publication, type TemClientOptions } from '../../src/client/index.js';
import { FakeSocket, ManualTimers, flush } from './client-fakes.js';
import type { ServerFrameMap } from '../../src/protocol/index.js';

afterEach(() => FakeSocket.reset());

async function connected(options: TemClientOptions = {}, ack: Partial<ServerFrameMap['HELLO_ACK']> = {}) {
  const timers = new ManualTimers();
  const client = new TemClient('ws://x/ws', { websocket: FakeSocket, timers, token: 'k', timeout: 1_000, random: () => 0, ...options });
  client.connect();
  await flush();
  FakeSocket.last().handshake({ session_id: 'sess-1', user_id: 'u_1', ...ack });
  return { client, timers };
}

function ev(sock: FakeSocket, channel: string, offset: number, epoch = 'ep1', event = 'msg', payload: unknown = { n: offset }) {
  sock.push('EVENT', { channel, offset, epoch, event, payload });
}

/** The server's SUBSCRIBED for the last SUBSCRIBE sent: at `offset` in epoch ep1, not recovered. */
function ackSubscribe(sock: FakeSocket, channel: string, offset: number): void {
  sock.push('SUBSCRIBED', { channel, offset, epoch: 'ep1', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
}

async function reconnect(timers: ManualTimers, whileOffline?: () => void): Promise<FakeSocket> {
  FakeSocket.last().serverClose(1012, 'restart');
  whileOffline?.();
  timers.advance(60_000);
  await flush();
  const sock = FakeSocket.last();
  sock.open();
  return sock;
}

describe('Subscription', () => {
  it('subscribes, reaches `subscribed`, and receives its publications', async () => {
    const { client } = await connected();
    const sub = client.subscribe('live:1:chat');
    const sock = FakeSocket.last();
    const req = sock.lastOf('SUBSCRIBE');
    expect(req.payload).toEqual({ channels: ['live:1:chat'] });
    expect(sub.state).toBe('subscribing');
    const states: string[] = [];
    sub.on('state', (s) => states.push(s.newState));
    sock.push('SUBSCRIBED', { channel: 'live:1:chat', offset: 4, epoch: 'ep1', recovered: false }, req.id as number);
    expect(sub.state).toBe('subscribed');
    expect(sub.position).toEqual({ offset: 4, epoch: 'ep1' });
    const pubs: Publication[] = [];
    const all: Publication[] = [];
    sub.on('publication', (p) => pubs.push(p));
    client.on('publication', (p) => all.push(p));
    ev(sock, 'live:1:chat', 5);
    ev(sock, 'live:2:chat', 1); // a channel nothing here subscribes to (one left while offline): no event
    ev(sock, 'user:u_1', 1, 'epU', 'event.update'); // the user's own channel, subscribed by the server
    expect(pubs.map((p) => p.offset)).toEqual([5]);
    expect(all.map((p) => p.channel)).toEqual(['live:1:chat', 'user:u_1']);
    expect(states).toEqual(['subscribed']);
    await expect(sub.ready()).resolves.toBeUndefined();
    client.disconnect();
  });

  it('drops publications at or below the last delivered offset (dedupe safety net)', async () => {
    const { client } = await connected();
    const sub = client.subscribe('live:1:chat');
    const sock = FakeSocket.last();
    ackSubscribe(sock, 'live:1:chat', 0);
    const got: number[] = [];
    sub.on('publication', (p) => got.push(p.offset));
    for (const o of [1, 2, 2, 1, 3, 3, 4]) ev(sock, 'live:1:chat', o);
    ev(sock, 'live:1:chat', 1, 'ep2'); // a new epoch starts over
    ev(sock, 'live:1:chat', 1, 'ep2');
    expect(got).toEqual([1, 2, 3, 4, 1]);
    client.disconnect();
  });

  it('drops an event\'s status update no newer than one it delivered, at any offset or epoch (a repeat after a failover)', async () => {
    const { client } = await connected();
    const sock = FakeSocket.last();
    const seen: string[] = [];
    client.on('publication', (p) => {
      const u = p.payload as { event_id: string; version: number };
      seen.push(`${u.event_id}@${u.version}`);
    });
    const update = (offset: number, epoch: string, eventId: string, version: number) =>
      ev(sock, 'user:u_1', offset, epoch, 'event.update', { event_id: eventId, version, status: 'x' });
    update(1, 'epU', 'e1', 1);
    update(2, 'epU', 'e1', 2);
    update(3, 'epU', 'e1', 3);
    // A new epoch after a failover, in which the relay sent e1's updates again from the start.
    update(1, 'epV', 'e1', 1);
    update(2, 'epV', 'e1', 2);
    update(3, 'epV', 'e2', 1);
    update(4, 'epV', 'e1', 3);
    update(5, 'epV', 'e1', 4);
    expect(seen).toEqual(['e1@1', 'e1@2', 'e1@3', 'e2@1', 'e1@4']);
    client.disconnect();
  });

  it('counts a dropped repeat as read: a resume asks for what follows it', async () => {
    const { client, timers } = await connected();
    const sock = FakeSocket.last();
    ev(sock, 'user:u_1', 1, 'epU', 'event.update', { event_id: 'e1', version: 2 });
    ev(sock, 'user:u_1', 1, 'epV', 'event.update', { event_id: 'e1', version: 2 });
    const again = await reconnect(timers);
    expect(again.lastOf('HELLO').payload).toMatchObject({ since: { 'user:u_1': { offset: 1, epoch: 'epV' } } });
    client.disconnect();
  });

  it('re-subscribes with `since` after a reconnect that did not resume; replays arrive once, in order', async () => {
    const { client, timers } = await connected();
    const sub = client.subscribe('live:1:chat');
    let sock = FakeSocket.last();
    ackSubscribe(sock, 'live:1:chat', 10);
    const got: number[] = [];
    sub.on('publication', (p) => got.push(p.offset));
    ev(sock, 'live:1:chat', 11);
    ev(sock, 'live:1:chat', 12);

    sock = await reconnect(timers);
    expect(sub.state).toBe('subscribing');
    const hello = sock.lastOf('HELLO');
    expect(hello.payload).toEqual({ token: 'k', session_id: 'sess-1', since: { 'live:1:chat': { offset: 12, epoch: 'ep1' } } });
    sock.handshake({ session_id: 'sess-2', resumed: false });
    const req = sock.lastOf('SUBSCRIBE');
    expect(req.payload).toEqual({ channels: ['live:1:chat'], since: { 'live:1:chat': { offset: 12, epoch: 'ep1' } } });
    const resyncs: unknown[] = [];
    sub.on('resync', (r) => resyncs.push(r));
    sock.push('SUBSCRIBED', { channel: 'live:1:chat', offset: 15, epoch: 'ep1', recovered: true }, req.id as number);
    for (const o of [12, 13, 14, 15, 15, 16]) ev(sock, 'live:1:chat', o); // overlap + a live one
    expect(got).toEqual([11, 12, 13, 14, 15, 16]);
    expect(resyncs).toEqual([]);
    client.disconnect();
  });

  it('emits `resync` when the server cannot recover the channel', async () => {
    const { client, timers } = await connected();
    const sub = client.subscribe('live:1:chat');
    let sock = FakeSocket.last();
    ackSubscribe(sock, 'live:1:chat', 3);
    const resyncs: unknown[] = [];
    sub.on('resync', (r) => resyncs.push(r));
    expect(resyncs).toEqual([]); // a first subscribe without `since` is not a gap

    sock = await reconnect(timers);
    sock.handshake({ resumed: false });
    ackSubscribe(sock, 'live:1:chat', 500);
    expect(resyncs).toEqual([{ channel: 'live:1:chat', lost: { offset: 3, epoch: 'ep1' } }]);
    expect(sub.position).toEqual({ offset: 500, epoch: 'ep1' });
    const got: number[] = [];
    sub.on('publication', (p) => got.push(p.offset));
    ev(sock, 'live:1:chat', 500);
    ev(sock, 'live:1:chat', 501);
    expect(got).toEqual([501]);
    client.disconnect();
  });

  it('takes back subscriptions a resumed session restored, without re-subscribing', async () => {
    const { client, timers } = await connected();
    const a = client.subscribe('live:1:chat');
    const b = client.subscribe('live:2:chat');
    let sock = FakeSocket.last();
    for (const f of sock.frames('SUBSCRIBE')) {
      const ch = (f.payload as { channels: string[] }).channels[0]!;
      sock.push('SUBSCRIBED', { channel: ch, offset: 1, epoch: 'ep1', recovered: false }, f.id as number);
    }
    ev(sock, 'user:u_1', 7, 'epU', 'event.update', { event_id: 'e1', status: 'queued' });
    sock = await reconnect(timers);
    expect(sock.lastOf('HELLO').payload).toMatchObject({
      session_id: 'sess-1',
      since: { 'live:1:chat': { offset: 1, epoch: 'ep1' }, 'live:2:chat': { offset: 1, epoch: 'ep1' }, 'user:u_1': { offset: 7, epoch: 'epU' } },
    });
    const bResync: unknown[] = [];
    b.on('resync', (r) => bResync.push(r));
    const clientResync: unknown[] = [];
    client.on('resync', (r) => clientResync.push(r));
    sock.handshake({
      session_id: 'sess-1',
      resumed: true,
      recovered: false,
      channels: {
        'live:1:chat': { offset: 3, epoch: 'ep1', recovered: true },
        'live:2:chat': { offset: 90, epoch: 'ep1', recovered: false },
        'user:u_1': { offset: 7, epoch: 'epU', recovered: true },
      },
    });
    expect(a.state).toBe('subscribed');
    expect(b.state).toBe('subscribed');
    expect(sock.frames('SUBSCRIBE')).toHaveLength(0);
    expect(bResync).toEqual([{ channel: 'live:2:chat', lost: { offset: 1, epoch: 'ep1' } }]);
    expect(clientResync).toEqual([]);
    client.disconnect();
  });

  it('resyncs a channel the resumed session restored when its SUBSCRIBED reply was lost in the drop', async () => {
    const { client, timers } = await connected();
    const sub = client.subscribe('live:1:chat'); // the server subscribes it; the reply never arrives
    const resyncs: unknown[] = [];
    sub.on('resync', (r) => resyncs.push(r));
    const sock = await reconnect(timers);
    // No position to send for it: only the server's saved one, which it cannot vouch for.
    expect((sock.lastOf('HELLO').payload as { since?: object }).since).toBeUndefined();
    sock.handshake({ session_id: 'sess-1', resumed: true, recovered: false, channels: { 'live:1:chat': { offset: 24, epoch: 'ep1', recovered: false } } });
    expect(sub.state).toBe('subscribed');
    expect(resyncs).toEqual([{ channel: 'live:1:chat', lost: undefined }]);
    client.disconnect();
  });

  it('emits nothing for a channel left while offline that the resumed session brought back', async () => {
    const { client, timers } = await connected();
    const sub = client.subscribe('live:9:x');
    let sock = FakeSocket.last();
    ackSubscribe(sock, 'live:9:x', 1);
    sock = await reconnect(timers, () => client.removeSubscription(sub));
    const all: Publication[] = [];
    client.on('publication', (p) => all.push(p));
    sock.handshake({ session_id: 'sess-1', resumed: true, recovered: true, channels: { 'live:9:x': { offset: 2, epoch: 'ep1', recovered: true } } });
    expect(sock.lastOf('UNSUBSCRIBE').payload).toEqual({ channels: ['live:9:x'] });
    ev(sock, 'live:9:x', 2); // replayed before the UNSUBSCRIBE took effect
    expect(all).toEqual([]);
    client.disconnect();
  });

  it('a channel left between HELLO and its reply gets no position back and no resync', async () => {
    const { client, timers } = await connected();
    const sub = client.subscribe('live:1:chat');
    let sock = FakeSocket.last();
    ackSubscribe(sock, 'live:1:chat', 10);
    for (const [resumed, recovered] of [[true, true], [false, false]] as const) {
      sock = await reconnect(timers);
      expect((sock.lastOf('HELLO').payload as { since: Record<string, unknown> }).since['live:1:chat']).toEqual({ offset: 10, epoch: 'ep1' });
      sub.unsubscribe();
      const resyncs: unknown[] = [];
      client.on('resync', (r) => resyncs.push(r));
      const channels: ServerFrameMap['HELLO_ACK']['channels'] = resumed ? { 'live:1:chat': { offset: 50, epoch: 'ep1', recovered: true } } : {};
      sock.handshake({ session_id: 'sess-1', resumed, recovered, channels });
      expect(resyncs).toEqual([]);
      // Subscribed again later, it starts afresh: not from the head it never received.
      sub.subscribe();
      expect(sock.lastOf('SUBSCRIBE').payload).toEqual({ channels: ['live:1:chat'] });
      ackSubscribe(sock, 'live:1:chat', 10);
    }
    client.disconnect();
  });

  it('after a reconnect that did not resume, subscribes exact channels before patterns', async () => {
    const { client, timers } = await connected();
    client.subscribe('live:*');
    client.subscribe('live:1:chat');
    let sock = FakeSocket.last();
    const [first, second] = sock.frames('SUBSCRIBE');
    sock.push('SUBSCRIBED', { channel: 'live:*', offset: 0, epoch: '', recovered: false }, first!.id as number);
    sock.push('SUBSCRIBED', { channel: 'live:1:chat', offset: 10, epoch: 'ep1', recovered: false }, second!.id as number);
    sock = await reconnect(timers);
    sock.handshake({ session_id: 'sess-2', resumed: false, recovered: false });
    expect(sock.frames('SUBSCRIBE').map((f) => (f.payload as { channels: string[] }).channels[0])).toEqual(['live:1:chat', 'live:*']);
    client.disconnect();
  });

  it('tells the app to resync its own user channel when a fresh session could not recover it', async () => {
    const { client, timers } = await connected();
    ev(FakeSocket.last(), 'user:u_1', 7, 'epU', 'event.update', {});
    const sock = await reconnect(timers);
    const resyncs: unknown[] = [];
    client.on('resync', (r) => resyncs.push(r));
    sock.handshake({ session_id: 'sess-9', resumed: false, recovered: false });
    expect(resyncs).toEqual([{ channel: 'user:u_1', lost: { offset: 7, epoch: 'epU' } }]);
    client.disconnect();
  });

  it('starts its own channel from HELLO_ACK, so a resume asks for what was published while away', async () => {
    const { client, timers } = await connected({}, { channels: { 'user:u_1': { offset: 4, epoch: 'epU', recovered: false } } });
    // Nothing arrived on user:u_1; the session then cannot be resumed (it expired meanwhile).
    const sock = await reconnect(timers);
    expect(sock.lastOf('HELLO').payload).toMatchObject({ since: { 'user:u_1': { offset: 4, epoch: 'epU' } } });
    const resyncs: unknown[] = [];
    client.on('resync', (r) => resyncs.push(r));
    const got: number[] = [];
    client.on('publication', (p) => got.push(p.offset));
    // Not resumed, but the own channel was recovered from its `since`: the replay follows, no resync.
    sock.handshake({ session_id: 'sess-2', resumed: false, recovered: false, channels: { 'user:u_1': { offset: 6, epoch: 'epU', recovered: true } } });
    ev(sock, 'user:u_1', 5, 'epU', 'event.update', {});
    ev(sock, 'user:u_1', 6, 'epU', 'event.update', {});
    expect(got).toEqual([5, 6]);
    expect(resyncs).toEqual([]);
    client.disconnect();
  });

  it('subscribes its own channel again, from its position, when the server drops it', async () => {
    const { client, timers } = await connected();
    const sock = FakeSocket.last();
    ev(sock, 'user:u_1', 7, 'epU', 'event.update', {});
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    sock.push('ERROR', { code: 'INTERNAL', message: 'fell behind: subscribe again with since', channel: 'user:u_1' });
    expect(errors).toEqual(['INTERNAL']);
    const again = sock.lastOf('SUBSCRIBE');
    expect(again.payload).toEqual({ channels: ['user:u_1'], since: { 'user:u_1': { offset: 7, epoch: 'epU' } } });
    const resyncs: unknown[] = [];
    client.on('resync', (r) => resyncs.push(r));
    sock.push('SUBSCRIBED', { channel: 'user:u_1', offset: 9, epoch: 'epU', recovered: false }, again.id as number);
    expect(resyncs).toEqual([{ channel: 'user:u_1', lost: { offset: 7, epoch: 'epU' } }]);
    // Resynced at the head: the next resume asks for what comes after it.
    const next = await reconnect(timers);
    expect((next.lastOf('HELLO').payload as { since?: Record<string, unknown> }).since?.['user:u_1']).toEqual({ offset: 9, epoch: 'epU' });
    client.disconnect();
  });

  it('tries its own channel again, with backoff, when the server refuses the subscribe that follows a drop', async () => {
    const { client, timers } = await connected();
    const sock = FakeSocket.last();
    ev(sock, 'user:u_1', 3, 'epU', 'event.update', {});
    client.on('error', () => undefined);
    sock.push('ERROR', { code: 'INTERNAL', message: 'fell behind', channel: 'user:u_1' });
    const first = sock.lastOf('SUBSCRIBE');
    sock.push('ERROR', { code: 'INTERNAL', message: 'could not subscribe' }, first.id as number);
    // A healthy connection meanwhile (its heartbeats answered).
    const healthy = (ms: number, until: () => boolean = () => false) => {
      for (let t = 0; t < ms && !until(); t += 100) {
        timers.advance(100);
        if (t % 2_000 === 0) sock.push('PONG', { timestamp: 0 });
      }
    };
    healthy(30_000, () => sock.frames('SUBSCRIBE').length > 1);
    const second = sock.lastOf('SUBSCRIBE');
    expect(second.id).not.toBe(first.id);
    expect(second.payload).toEqual({ channels: ['user:u_1'], since: { 'user:u_1': { offset: 3, epoch: 'epU' } } });
    sock.push('SUBSCRIBED', { channel: 'user:u_1', offset: 5, epoch: 'epU', recovered: true }, second.id as number);
    const got: number[] = [];
    client.on('publication', (p) => got.push(p.offset));
    for (const o of [4, 5, 6]) ev(sock, 'user:u_1', o, 'epU', 'event.update', {});
    expect(got).toEqual([4, 5, 6]);
    healthy(120_000);
    expect(sock.frames('SUBSCRIBE')).toHaveLength(2);
    client.disconnect();
  });

  it('`prefix:*` receives every channel under the prefix; after a reconnect it says what it may have missed', async () => {
    const { client, timers } = await connected();
    const sub = client.subscribe('server:1:*');
    let sock = FakeSocket.last();
    sock.push('SUBSCRIBED', { channel: 'server:1:*', offset: 0, epoch: '', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
    const got: string[] = [];
    const resyncs: unknown[] = [];
    sub.on('publication', (p) => got.push(`${p.channel}#${p.offset}`));
    sub.on('resync', (r) => resyncs.push(r));
    // Many channels under the prefix: a pattern keeps no position per channel, so the HELLO
    // and SUBSCRIBE of a long-lived client stay small (the server recovers no pattern anyway).
    for (let i = 0; i < 2000; i++) ev(sock, `server:1:channel:${i}`, 1);
    ev(sock, 'server:2:channel:a', 1);
    expect(got).toHaveLength(2000);
    expect(got[0]).toBe('server:1:channel:0#1');
    expect(sub.position).toBeUndefined();
    sock = await reconnect(timers);
    sock.handshake({ resumed: false });
    expect(sock.lastOf('HELLO').payload).not.toHaveProperty('since');
    expect(sock.lastOf('SUBSCRIBE').payload).toEqual({ channels: ['server:1:*'] });
    sock.push('SUBSCRIBED', { channel: 'server:1:*', offset: 0, epoch: '', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
    // What the pattern delivered meanwhile is not replayed: the application refetches.
    expect(resyncs).toEqual([{ channel: 'server:1:*', lost: undefined }]);
    client.disconnect();
  });

  it('goes to `unsubscribed` with an error on FORBIDDEN; retries with backoff on a timeout', async () => {
    const { client, timers } = await connected();
    const sock = FakeSocket.last();
    const denied = client.subscribe('dm:secret');
    const errors: string[] = [];
    denied.on('error', (e) => errors.push(e.code));
    const ready = denied.ready();
    sock.push('ERROR', { code: 'FORBIDDEN', message: 'not a member' }, sock.lastOf('SUBSCRIBE').id as number);
    expect(denied.state).toBe('unsubscribed');
    expect(errors).toEqual(['FORBIDDEN']);
    await expect(ready).rejects.toMatchObject({ code: 'CLOSED' });

    const slow = client.subscribe('live:9:chat');
    timers.advance(1_000); // request timeout
    expect(slow.state).toBe('subscribing');
    expect(sock.frames('SUBSCRIBE')).toHaveLength(2);
    timers.advance(500); // the retry, after backoff (minDelay with random()=0)
    const again = sock.frames('SUBSCRIBE');
    expect(again).toHaveLength(3);
    sock.push('SUBSCRIBED', { channel: 'live:9:chat', offset: 0, epoch: 'e', recovered: false }, again.at(-1)!.id as number);
    expect(slow.state).toBe('subscribed');
    client.disconnect();
  });

  it('a SUBSCRIBED that comes after its timeout still reports a gap it could not recover', async () => {
    const { client, timers } = await connected();
    const sock = FakeSocket.last();
    const sub = client.subscribe('live:9:chat', { since: { offset: 4, epoch: 'e' } });
    const first = sock.lastOf('SUBSCRIBE');
    expect(first.payload).toEqual({ channels: ['live:9:chat'], since: { 'live:9:chat': { offset: 4, epoch: 'e' } } });
    const resyncs: unknown[] = [];
    sub.on('resync', (r) => resyncs.push(r));
    timers.advance(1_000); // the SUBSCRIBE times out; its retry waits for the backoff
    sock.push('SUBSCRIBED', { channel: 'live:9:chat', offset: 90, epoch: 'e', recovered: false }, first.id as number);
    expect(sub.state).toBe('subscribed');
    expect(resyncs).toEqual([{ channel: 'live:9:chat', lost: { offset: 4, epoch: 'e' } }]);
    client.disconnect();
  });

  it('a late SUBSCRIBED cancels the retry its timeout scheduled', async () => {
    const { client, timers } = await connected();
    const sock = FakeSocket.last();
    const sub = client.subscribe('live:9:chat');
    const first = sock.lastOf('SUBSCRIBE');
    timers.advance(1_000); // times out: a retry is scheduled after the backoff
    sock.push('SUBSCRIBED', { channel: 'live:9:chat', offset: 1, epoch: 'e', recovered: false }, first.id as number);
    expect(sub.state).toBe('subscribed');
    timers.advance(60_000);
    expect(sock.frames('SUBSCRIBE')).toHaveLength(1);
    client.disconnect();
  });

  it('disconnect() ends a ready() waiting and any retry timer; the subscription comes back on connect()', async () => {
    const { client, timers } = await connected();
    const sock = FakeSocket.last();
    const sub = client.subscribe('live:9:chat');
    const waiting = sub.ready();
    timers.advance(1_000); // times out: a retry timer is pending
    client.disconnect();
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    // Nothing left running that would keep a process alive.
    expect(timers.pending).toBe(0);
    expect(sock.frames('SUBSCRIBE')).toHaveLength(1);
    expect(sub.state).toBe('subscribing');
    // Asked after the close, ready() does not wait for a connect() that may never come.
    await expect(sub.ready()).rejects.toMatchObject({ code: 'CLOSED' });
    client.disconnect();
  });

  it('an ERROR answering a frame of ours (a timed-out PUBLISH, a typing notice) does not end the subscription to its channel', async () => {
    const { client, timers } = await connected();
    const sock = FakeSocket.last();
    const sub = client.subscribe('chat:x');
    sock.push('SUBSCRIBED', { channel: 'chat:x', offset: 1, epoch: 'e', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
    const clientErrors: string[] = [];
    client.on('error', (e) => clientErrors.push(e.code));
    const published = sub.publish('m', {});
    const publishId = sock.lastOf('PUBLISH').id as number;
    timers.advance(1_000);
    await expect(published).rejects.toMatchObject({ code: 'TIMEOUT' });
    sock.push('ERROR', { code: 'FORBIDDEN', message: 'publishing is off in this namespace', channel: 'chat:x' } as never, publishId);
    sub.startTyping();
    const typing = sock.lastOf('TYPING_START');
    expect(typing.id).toEqual(expect.any(Number));
    sock.push('ERROR', { code: 'BAD_REQUEST', message: 'subscribe to chat:x before typing there', channel: 'chat:x' } as never, typing.id as number);
    expect(sub.state).toBe('subscribed');
    expect(clientErrors).toEqual(['FORBIDDEN', 'BAD_REQUEST']);
    client.disconnect();
  });

  it('subscribing again to a channel a pattern still covers starts afresh, not from a stale position', async () => {
    const { client } = await connected();
    const sock = FakeSocket.last();
    const pattern = client.subscribe('live:room:*');
    sock.push('SUBSCRIBED', { channel: 'live:room:*', offset: 0, epoch: '', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
    const exact = client.subscribe('live:room:chat');
    sock.push('SUBSCRIBED', { channel: 'live:room:chat', offset: 0, epoch: 'e', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
    ev(sock, 'live:room:chat', 1, 'e');
    exact.unsubscribe();
    // Only the pattern receives these: the exact position would not move with them.
    ev(sock, 'live:room:chat', 2, 'e');
    ev(sock, 'live:room:chat', 3, 'e');
    expect(pattern.state).toBe('subscribed');
    exact.subscribe();
    expect(sock.lastOf('SUBSCRIBE').payload).toEqual({ channels: ['live:room:chat'] });
    client.disconnect();
  });

  it('a late UNSUBSCRIBED reply does not end a subscription made again since', async () => {
    const { client, timers } = await connected();
    const sock = FakeSocket.last();
    const sub = client.subscribe('live:1:chat');
    sock.push('SUBSCRIBED', { channel: 'live:1:chat', offset: 2, epoch: 'e', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
    sub.unsubscribe();
    const unsub = sock.lastOf('UNSUBSCRIBE');
    timers.advance(1_000); // the UNSUBSCRIBE times out
    const again = client.subscribe('live:1:chat');
    sock.push('SUBSCRIBED', { channel: 'live:1:chat', offset: 2, epoch: 'e', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
    expect(again.state).toBe('subscribed');
    sock.push('UNSUBSCRIBED', { channels: ['live:1:chat'] }, unsub.id as number);
    expect(again.state).toBe('subscribed');
    client.disconnect();
  });

  it('unsubscribe() sends UNSUBSCRIBE, stops delivery and forgets the position', async () => {
    const { client } = await connected();
    const sub = client.subscribe('live:1:chat');
    const sock = FakeSocket.last();
    sock.push('SUBSCRIBED', { channel: 'live:1:chat', offset: 2, epoch: 'e', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
    const got: number[] = [];
    sub.on('publication', (p) => got.push(p.offset));
    sub.unsubscribe();
    expect(sock.lastOf('UNSUBSCRIBE').payload).toEqual({ channels: ['live:1:chat'] });
    ev(sock, 'live:1:chat', 3);
    expect(got).toEqual([]);
    expect(sub.position).toBeUndefined();
    client.removeSubscription(sub);
    expect(client.getSubscription('live:1:chat')).toBeUndefined();
    expect(() => client.newSubscription('bad channel')).toThrow(/invalid channel/);
    client.disconnect();
  });

  it('an unprompted UNSUBSCRIBED ends the subscription with the server reason; it is not restored on reconnect', async () => {
    const { client, timers } = await connected();
    const sub = client.subscribe('server:1:channel:1');
    const other = client.subscribe('live:1:chat');
    const sock = FakeSocket.last();
    const [first, second] = sock.frames('SUBSCRIBE');
    sock.push('SUBSCRIBED', { channel: 'server:1:channel:1', offset: 2, epoch: 'e', recovered: false }, first!.id as number);
    sock.push('SUBSCRIBED', { channel: 'live:1:chat', offset: 0, epoch: 'e', recovered: false }, second!.id as number);
    const ended: { channel: string; reason: string }[] = [];
    sub.on('unsubscribed', (ctx) => ended.push(ctx));
    const got: number[] = [];
    sub.on('publication', (p) => got.push(p.offset));

    sock.push('UNSUBSCRIBED', { channels: ['server:1:channel:1'], reason: 'access revoked' });
    expect(sub.state).toBe('unsubscribed');
    expect(ended).toEqual([{ channel: 'server:1:channel:1', reason: 'access revoked' }]);
    expect(other.state).toBe('subscribed');
    expect(sock.frames('UNSUBSCRIBE')).toHaveLength(0); // the server already ended it
    ev(sock, 'server:1:channel:1', 3);
    expect(got).toEqual([]);
    expect(sub.position).toBeUndefined();

    const next = await reconnect(timers);
    next.handshake({ resumed: true });
    expect(next.frames('SUBSCRIBE').map((f) => (f.payload as { channels: string[] }).channels)).toEqual([['live:1:chat']]);
    client.disconnect();
  });

  it('starts from options.since when it has no position of its own', async () => {
    const { client } = await connected();
    client.subscribe('live:1:chat', { since: { offset: 40, epoch: 'ep1' } });
    expect(FakeSocket.last().lastOf('SUBSCRIBE').payload).toEqual({ channels: ['live:1:chat'], since: { 'live:1:chat': { offset: 40, epoch: 'ep1' } } });
    client.disconnect();
  });

  it('delivers what the server replays after options.since: the reply names the head, the replays follow', async () => {
    const { client } = await connected();
    const sub = client.subscribe('live:1:chat', { since: { offset: 5, epoch: 'ep1' } });
    const sock = FakeSocket.last();
    const got: number[] = [];
    sub.on('publication', (p) => got.push(p.offset));
    sock.push('SUBSCRIBED', { channel: 'live:1:chat', offset: 10, epoch: 'ep1', recovered: true }, sock.lastOf('SUBSCRIBE').id as number);
    for (let o = 6; o <= 11; o++) ev(sock, 'live:1:chat', o);
    expect(got).toEqual([6, 7, 8, 9, 10, 11]);
    client.disconnect();
  });

  it('presence and typing notices go to the subscription, not to `publication`', async () => {
    const { client } = await connected();
    const sub = client.subscribe('live:1:chat');
    const sock = FakeSocket.last();
    const seen: unknown[] = [];
    sub.on('presence', (p) => seen.push(p));
    sub.on('typing', (t) => seen.push(t));
    sub.on('publication', (p) => seen.push(p.event));
    client.on('publication', (p) => seen.push(`client:${p.event}`));
    sock.push('EVENT', { channel: 'live:1:chat', offset: 0, epoch: '', event: 'presence.join', payload: { user_id: 'u_2', status: 'online' } });
    sock.push('EVENT', { channel: 'live:1:chat', offset: 0, epoch: '', event: 'typing', payload: { user_id: 'u_2', is_typing: true } });
    sock.push('EVENT', { channel: 'live:1:chat', offset: 0, epoch: '', event: 'presence.leave', payload: { user_id: 'u_2' } });
    expect(seen).toEqual([
      { channel: 'live:1:chat', action: 'join', user_id: 'u_2', status: 'online' },
      { channel: 'live:1:chat', user_id: 'u_2', is_typing: true },
      { channel: 'live:1:chat', action: 'leave', user_id: 'u_2', status: undefined },
    ]);
    client.disconnect();
  });

  it('throttles TYPING_START and stops by itself after the typing timeout', async () => {
    const { client, timers } = await connected({ typingInterval: 3_000, typingTimeout: 5_000 });
    const sub = client.subscribe('live:1:chat');
    const sock = FakeSocket.last();
    const typing = () => sock.sent.filter((f) => f.type.startsWith('TYPING')).map((f) => f.type);
    for (let i = 0; i < 10; i++) {
      sub.startTyping(); // a keystroke every 500 ms for 5 s
      timers.advance(500);
    }
    expect(typing()).toEqual(['TYPING_START', 'TYPING_START']);
    timers.advance(5_000);
    expect(typing()).toEqual(['TYPING_START', 'TYPING_START', 'TYPING_STOP']);
    sub.startTyping();
    sub.stopTyping();
    sub.stopTyping();
    expect(typing().slice(3)).toEqual(['TYPING_START', 'TYPING_STOP']);
    expect(sock.lastOf('TYPING_STOP').payload).toEqual({ channel: 'live:1:chat' });
    client.disconnect();
  });

  it('publish() and presence() go through the subscription channel', async () => {
    const { client } = await connected();
    const sub = client.subscribe('live:1:chat');
    const sock = FakeSocket.last();
    const p = sub.publish('msg', { text: 'hi' });
    const f = sock.lastOf('PUBLISH');
    expect(f.payload).toEqual({ channel: 'live:1:chat', event: 'msg', payload: { text: 'hi' } });
    sock.push('PUBLISHED', { offset: 8, epoch: 'ep1' }, f.id as number);
    await expect(p).resolves.toEqual({ offset: 8, epoch: 'ep1' });
    await expect(client.subscribe('live:*').publish('x', {})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    client.disconnect();
  });

  it('subscribes again from its position when the server drops the channel with an ERROR naming it', async () => {
    const { client } = await connected();
    const sub = client.subscribe('live:1:chat');
    const sock = FakeSocket.last();
    ackSubscribe(sock, 'live:1:chat', 5);
    const errors: string[] = [];
    sub.on('error', (e) => errors.push(e.code));
    sock.push('ERROR', { code: 'INTERNAL', message: 'fell behind; subscribe again with since', channel: 'live:1:chat' } as never);
    expect(errors).toEqual(['INTERNAL']);
    expect(sock.frames('SUBSCRIBE')).toHaveLength(2);
    expect(sock.lastOf('SUBSCRIBE').payload).toEqual({ channels: ['live:1:chat'], since: { 'live:1:chat': { offset: 5, epoch: 'ep1' } } });
    client.disconnect();
  });

  it('a channel the server keeps dropping soon after each SUBSCRIBED is asked for again with backoff, and at once again once it stayed up', async () => {
    // No jitter (random 0): each pause is the backoff's floor, 500 ms.
    const { client, timers } = await connected({ backoff: { minDelay: 500, maxDelay: 20_000, factor: 2 } });
    const sub = client.subscribe('live:1:chat');
    sub.on('error', () => undefined);
    const sock = FakeSocket.last();
    const drop = () => sock.push('ERROR', { code: 'INTERNAL', message: 'fell behind; subscribe again with since', channel: 'live:1:chat' } as never);
    ackSubscribe(sock, 'live:1:chat', 5);
    drop(); // the first drop: at once
    expect(sock.frames('SUBSCRIBE')).toHaveLength(2);
    ackSubscribe(sock, 'live:1:chat', 5);
    drop(); // again right away: after a pause
    expect(sock.frames('SUBSCRIBE')).toHaveLength(2);
    timers.advance(498);
    expect(sock.frames('SUBSCRIBE')).toHaveLength(2);
    timers.advance(2);
    expect(sock.frames('SUBSCRIBE')).toHaveLength(3);
    ackSubscribe(sock, 'live:1:chat', 5);
    drop(); // and again: paused again
    timers.advance(498);
    expect(sock.frames('SUBSCRIBE')).toHaveLength(3);
    timers.advance(2);
    expect(sock.frames('SUBSCRIBE')).toHaveLength(4);
    ackSubscribe(sock, 'live:1:chat', 5);
    timers.advance(3_000); // up long enough: the next drop is answered at once
    drop();
    expect(sock.frames('SUBSCRIBE')).toHaveLength(5);
    client.disconnect();
  });

  it('a pattern the server drops with an ERROR naming it comes back and says `resync`, even if it had delivered nothing', async () => {
    const { client } = await connected();
    const sub = client.subscribe('room:7:*');
    const sock = FakeSocket.last();
    sock.push('SUBSCRIBED', { channel: 'room:7:*', offset: 0, epoch: '', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
    const resyncs: unknown[] = [];
    sub.on('error', () => undefined);
    sub.on('resync', (r) => resyncs.push(r));
    sock.push('ERROR', { code: 'INTERNAL', message: 'subscription to room:7:* may have missed publications…; subscribe again and resync', channel: 'room:7:*' } as never);
    expect(sock.frames('SUBSCRIBE')).toHaveLength(2);
    expect(sock.lastOf('SUBSCRIBE').payload).toEqual({ channels: ['room:7:*'] });
    sock.push('SUBSCRIBED', { channel: 'room:7:*', offset: 0, epoch: '', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
    expect(resyncs).toEqual([{ channel: 'room:7:*', lost: undefined }]);
    expect(sub.state).toBe('subscribed');
    client.disconnect();
  });

  it('leaves channels a resumed session brought back that it no longer wants', async () => {
    const { client, timers } = await connected();
    const sub = client.subscribe('live:1:chat');
    let sock = FakeSocket.last();
    ackSubscribe(sock, 'live:1:chat', 1);
    sock = await reconnect(timers);
    sub.unsubscribe(); // while offline
    sock.handshake({
      resumed: true,
      channels: { 'user:u_1': { offset: 0, epoch: 'e', recovered: true }, 'live:1:chat': { offset: 1, epoch: 'ep1', recovered: true } },
    });
    expect(sock.lastOf('UNSUBSCRIBE').payload).toEqual({ channels: ['live:1:chat'] });
    client.disconnect();
  });

  describe('a channel a pattern also covers, while its SUBSCRIBE with `since` is answered', () => {
    /** `live:room:*` live, `live:room:chat` subscribed at offset 5; each records what it gets. */
    async function patternAndExact() {
      const { client, timers } = await connected();
      const sock = FakeSocket.last();
      const pattern = client.subscribe('live:room:*');
      sock.push('SUBSCRIBED', { channel: 'live:room:*', offset: 0, epoch: '', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
      const exact = client.subscribe('live:room:chat');
      ackSubscribe(sock, 'live:room:chat', 5);
      const got = { exact: [] as number[], pattern: [] as number[], all: [] as number[] };
      exact.on('publication', (p) => got.exact.push(p.offset));
      pattern.on('publication', (p) => got.pattern.push(p.offset));
      client.on('publication', (p) => got.all.push(p.offset));
      exact.on('error', () => undefined);
      return { client, timers, sock, pattern, exact, got };
    }

    function subscribed(sock: FakeSocket, offset: number, recovered: boolean): void {
      sock.push('SUBSCRIBED', { channel: 'live:room:chat', offset, epoch: 'ep1', recovered }, sock.lastOf('SUBSCRIBE').id as number);
    }

    it('holds what the pattern delivers until the replay reaches it: everything once, in order, for everyone', async () => {
      const { client, sock, exact, got } = await patternAndExact();
      // The server dropped the channel (it fell behind); the pattern goes on delivering it until
      // the server takes the new SUBSCRIBE, which asks for everything after 5.
      sock.push('ERROR', { code: 'INTERNAL', message: 'fell behind; subscribe again with since', channel: 'live:room:chat' } as never);
      expect(sock.lastOf('SUBSCRIBE').payload).toEqual({ channels: ['live:room:chat'], since: { 'live:room:chat': { offset: 5, epoch: 'ep1' } } });
      ev(sock, 'live:room:chat', 8);
      ev(sock, 'live:room:chat', 9);
      expect(got.all).toEqual([]);
      expect(exact.position).toEqual({ offset: 5, epoch: 'ep1' });
      subscribed(sock, 9, true);
      for (const o of [6, 7, 8, 9, 10]) ev(sock, 'live:room:chat', o); // the replay, then live
      expect(got).toEqual({ exact: [6, 7, 8, 9, 10], pattern: [6, 7, 8, 9, 10], all: [6, 7, 8, 9, 10] });
      client.disconnect();
    });

    it('a first subscribe with options.since while the pattern is live replays from there', async () => {
      const { client } = await connected();
      const sock = FakeSocket.last();
      client.subscribe('live:room:*');
      sock.push('SUBSCRIBED', { channel: 'live:room:*', offset: 0, epoch: '', recovered: false }, sock.lastOf('SUBSCRIBE').id as number);
      const exact = client.subscribe('live:room:chat', { since: { offset: 2, epoch: 'ep1' } });
      const got: number[] = [];
      exact.on('publication', (p) => got.push(p.offset));
      ev(sock, 'live:room:chat', 4);
      subscribed(sock, 4, true);
      for (const o of [3, 4, 5]) ev(sock, 'live:room:chat', o);
      expect(got).toEqual([3, 4, 5]);
      client.disconnect();
    });

    it('publications already sent live and left out of the replay go out with the reply', async () => {
      const { client, sock, got } = await patternAndExact();
      sock.push('ERROR', { code: 'INTERNAL', message: 'fell behind', channel: 'live:room:chat' } as never);
      ev(sock, 'live:room:chat', 6);
      ev(sock, 'live:room:chat', 7);
      subscribed(sock, 7, true); // nothing to replay: the server had sent both
      expect(got.exact).toEqual([6, 7]);
      client.disconnect();
    });

    it('not recovered: what was held goes out first, then `resync`', async () => {
      const { client, sock, exact, got } = await patternAndExact();
      const order: string[] = [];
      exact.on('publication', (p) => order.push(`pub ${p.offset}`));
      exact.on('resync', () => order.push('resync'));
      sock.push('ERROR', { code: 'INTERNAL', message: 'fell behind', channel: 'live:room:chat' } as never);
      ev(sock, 'live:room:chat', 30);
      ev(sock, 'live:room:chat', 31);
      subscribed(sock, 31, false);
      ev(sock, 'live:room:chat', 32);
      expect(order).toEqual(['pub 30', 'pub 31', 'resync', 'pub 32']);
      expect(got.pattern).toEqual([30, 31, 32]);
      client.disconnect();
    });

    it('a refused SUBSCRIBE hands what was held to the pattern', async () => {
      const { client, sock, exact, got } = await patternAndExact();
      sock.push('ERROR', { code: 'INTERNAL', message: 'fell behind', channel: 'live:room:chat' } as never);
      ev(sock, 'live:room:chat', 7);
      sock.push('ERROR', { code: 'FORBIDDEN', message: 'no longer a member' }, sock.lastOf('SUBSCRIBE').id as number);
      expect(exact.state).toBe('unsubscribed');
      expect(got).toEqual({ exact: [], pattern: [7], all: [7] });
      client.disconnect();
    });

    it('a gap the replay never fills is given up once live publications come, or after the timeout', async () => {
      const { client, timers, sock, got } = await patternAndExact();
      sock.push('ERROR', { code: 'INTERNAL', message: 'fell behind', channel: 'live:room:chat' } as never);
      ev(sock, 'live:room:chat', 8);
      subscribed(sock, 8, true);
      ev(sock, 'live:room:chat', 6);
      expect(got.exact).toEqual([6]);
      ev(sock, 'live:room:chat', 9); // live: past the head the reply named, so 7 is not coming
      expect(got.exact).toEqual([6, 8, 9]);
      sock.push('ERROR', { code: 'INTERNAL', message: 'fell behind', channel: 'live:room:chat' } as never);
      ev(sock, 'live:room:chat', 12);
      subscribed(sock, 12, true);
      expect(got.exact).toEqual([6, 8, 9]);
      timers.advance(1_000);
      expect(got.exact).toEqual([6, 8, 9, 12]);
      client.disconnect();
    });

    it('a drop forgets what was held: the resume asks for it again', async () => {
      const { client, timers, sock, got } = await patternAndExact();
      sock.push('ERROR', { code: 'INTERNAL', message: 'fell behind', channel: 'live:room:chat' } as never);
      ev(sock, 'live:room:chat', 8);
      const next = await reconnect(timers);
      next.handshake({ resumed: false });
      expect(next.lastOf('HELLO').payload).toMatchObject({ since: { 'live:room:chat': { offset: 5, epoch: 'ep1' } } });
      expect(got.all).toEqual([]);
      client.disconnect();
    });
  });
});
