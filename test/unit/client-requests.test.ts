import { afterEach, describe, expect, it } from 'vitest';
import { TemClient, TemClientError, type TemClientOptions } from '../../src/client/index.js';
import { RequestTracker } from '../../src/client/requests.js';
import type { ServerFrame } from '../../src/protocol/index.js';
import { FakeSocket, ManualTimers, flush } from './client-fakes.js';

afterEach(() => FakeSocket.reset());

async function connected(options: TemClientOptions = {}) {
  const timers = new ManualTimers();
  const client = new TemClient('ws://x/ws', { websocket: FakeSocket, timers, token: 'k', timeout: 1_000, random: () => 0, ...options });
  client.connect();
  await flush();
  const sock = FakeSocket.last();
  sock.handshake();
  return { client, timers, sock };
}

describe('RequestTracker', () => {
  it('correlates replies by ref, whatever order they come in', () => {
    const timers = new ManualTimers();
    const tracker = new RequestTracker(timers);
    const got: string[] = [];
    const a = tracker.create('PUBLISH', { channel: 'a:1', event: 'e', payload: {} }, 1_000, { resolve: (f) => got.push(`a:${f.type}`), reject: (e) => got.push(`a!${e.code}`) });
    const b = tracker.create('PRESENCE', { channel: 'a:1' }, 1_000, { resolve: (f) => got.push(`b:${f.type}`), reject: (e) => got.push(`b!${e.code}`) });
    expect(a.id).not.toBe(b.id);
    expect(tracker.settle({ type: 'PRESENCE_STATE', ref: b.id, payload: { channel: 'a:1', members: [] } } as ServerFrame)).toBe(true);
    expect(tracker.settle({ type: 'ERROR', ref: a.id, payload: { code: 'FORBIDDEN', message: 'no' } } as ServerFrame)).toBe(true);
    expect(tracker.settle({ type: 'PUBLISHED', ref: a.id, payload: { offset: 1, epoch: 'e' } } as ServerFrame)).toBe(false);
    expect(tracker.settle({ type: 'PONG', ref: 999, payload: { timestamp: 0 } } as ServerFrame)).toBe(false);
    expect(got).toEqual(['b:PRESENCE_STATE', 'a!FORBIDDEN']);
    expect(tracker.size).toBe(0);
    expect(timers.pending).toBe(0);
  });

  it('times out requests without a reply, once', () => {
    const timers = new ManualTimers();
    const tracker = new RequestTracker(timers);
    const got: string[] = [];
    const f = tracker.create('INGEST', { type: 't', payload: {} }, 500, { resolve: () => got.push('ok'), reject: (e) => got.push(e.code) });
    timers.advance(499);
    expect(got).toEqual([]);
    timers.advance(1);
    expect(got).toEqual(['TIMEOUT']);
    // Never written to a socket (no markSent): it cannot have run, and the error says so.
    const unsent: string[] = [];
    tracker.create('INGEST', { type: 't', payload: {} }, 500, { resolve: () => undefined, reject: (e) => unsent.push(e.message) });
    timers.advance(500);
    expect(unsent).toEqual([expect.stringMatching(/never sent$/)]);
    expect(tracker.settle({ type: 'INGESTED', ref: f.id, payload: { event_id: 'x', status: 'accepted' } } as ServerFrame)).toBe(false);
    expect(got).toEqual(['TIMEOUT']);
  });

  it('on a lost connection rejects what was sent and keeps what still waits', () => {
    const timers = new ManualTimers();
    const tracker = new RequestTracker(timers);
    const got: string[] = [];
    const sent = tracker.create('PUBLISH', { channel: 'a:1', event: 'e', payload: 1 }, 1_000, { resolve: () => got.push('sent-ok'), reject: (e) => got.push(`sent:${e.code}`) });
    tracker.create('PUBLISH', { channel: 'a:1', event: 'e', payload: 2 }, 1_000, { resolve: () => got.push('queued-ok'), reject: (e) => got.push(`queued:${e.code}`) });
    tracker.markSent(sent.id as number);
    tracker.rejectSent(new TemClientError('DISCONNECTED', 'lost'));
    expect(got).toEqual(['sent:DISCONNECTED']);
    expect(tracker.unsent().map((f) => (f.payload as { payload: number }).payload)).toEqual([2]);
  });
});

describe('TemClient requests', () => {
  it('ingest resolves with {event_id, status} from INGESTED', async () => {
    const { client, sock } = await connected();
    const p = client.ingest({ type: 'payment.success', payload: { amount: 5 }, idempotency_key: 'k1' });
    const frame = sock.lastOf('INGEST');
    expect(frame.payload).toEqual({ type: 'payment.success', payload: { amount: 5 }, idempotency_key: 'k1' });
    sock.push('INGESTED', { event_id: 'e-1', status: 'accepted' }, frame.id as number);
    await expect(p).resolves.toEqual({ event_id: 'e-1', status: 'accepted' });
    client.disconnect();
  });

  it('ingest rejects with a TemClientError carrying the server ERROR code', async () => {
    const { client, sock } = await connected();
    const p = client.ingest({ type: 'BAD TYPE', payload: {} });
    sock.push('ERROR', { code: 'BAD_REQUEST', message: 'type: must match pattern' }, sock.lastOf('INGEST').id as number);
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemClientError);
    expect(err).toMatchObject({ code: 'BAD_REQUEST', fromServer: true, message: 'type: must match pattern' });
    client.disconnect();
  });

  it('keeps the server reason, and refuses at once a payload JSON cannot carry', async () => {
    const { client, sock } = await connected();
    const p = client.ingest({ type: 'ok.t', payload: { a: 2 }, idempotency_key: 'k' });
    sock.push('ERROR', { code: 'BAD_REQUEST', message: 'key used with another body', reason: 'IDEMPOTENCY_CONFLICT' }, sock.lastOf('INGEST').id as number);
    await expect(p).rejects.toMatchObject({ code: 'BAD_REQUEST', reason: 'IDEMPOTENCY_CONFLICT' });
    const frames = sock.sent.length;
    await expect(client.ingest({ type: 'ok.t', payload: { big: 1n } as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(sock.sent.length).toBe(frames);
    client.disconnect();
  });

  it('refuses at once, as TOO_LARGE, a request whose frame is over the frame limit, and stays connected', async () => {
    const { client, sock } = await connected({ maxFrameBytes: 1_000 });
    const frames = sock.sent.length;
    // 400 three-byte characters: 1,200 bytes once encoded, though only 400 UTF-16 units.
    await expect(client.ingest({ type: 'big.t', payload: { s: '€'.repeat(400) } })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    await expect(client.publish('live:1:chat', 'm', { s: 'x'.repeat(1_000) })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect(sock.sent.length).toBe(frames);
    expect(client.state).toBe('connected');
    // Under the limit, sent as usual.
    void client.ingest({ type: 'small.t', payload: { s: '€'.repeat(200) } }).catch(() => undefined);
    expect(sock.lastOf('INGEST')).toBeDefined();
    client.disconnect();
  });

  it('an unrelated reply or unprompted ERROR does not settle a request', async () => {
    const { client, sock, timers } = await connected();
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    const p = client.publish('live:1:chat', 'msg', { text: 'hi' });
    sock.push('ERROR', { code: 'RATE_LIMITED', message: 'slow down' });
    sock.push('PUBLISHED', { offset: 3, epoch: 'ep' }, 12345);
    timers.advance(1_000);
    // Sent and unanswered: the error says it may have run.
    await expect(p).rejects.toMatchObject({ code: 'TIMEOUT', message: expect.stringMatching(/may or may not have run/) });
    expect(errors).toEqual(['RATE_LIMITED']);
    client.disconnect();
  });

  it('requests made while disconnected wait for the connection, then go out', async () => {
    const timers = new ManualTimers();
    const client = new TemClient('ws://x/ws', { websocket: FakeSocket, timers, token: 'k', timeout: 5_000 });
    const p = client.presence('live:1:chat');
    client.connect();
    await flush();
    const sock = FakeSocket.last();
    sock.open();
    expect(sock.frames('PRESENCE')).toHaveLength(0);
    sock.handshake();
    const frame = sock.lastOf('PRESENCE');
    sock.push('PRESENCE_STATE', { channel: 'live:1:chat', members: [{ user_id: 'u_1', status: 'online' }] }, frame.id as number);
    await expect(p).resolves.toEqual([{ user_id: 'u_1', status: 'online' }]);
    client.disconnect();
  });

  it('a request in flight when the connection drops rejects with DISCONNECTED', async () => {
    const { client, sock } = await connected();
    const p = client.ingest({ type: 't', payload: {} });
    sock.serverClose(1006);
    await expect(p).rejects.toMatchObject({ code: 'DISCONNECTED' });
    client.disconnect();
  });

  it('requests on a closed client reject with CLOSED, and disconnect() rejects waiting ones', async () => {
    const timers = new ManualTimers();
    const client = new TemClient('ws://x/ws', { websocket: FakeSocket, timers, token: 'k' });
    const waiting = client.ingest({ type: 't', payload: {} });
    client.disconnect();
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(client.publish('a:1', 'e', {})).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('setStatus sends SET_PRESENCE now and again after a reconnect', async () => {
    const { client, sock, timers } = await connected();
    client.setStatus('dnd');
    expect(sock.lastOf('SET_PRESENCE').payload).toEqual({ status: 'dnd' });
    expect(() => client.setStatus('away' as never)).toThrow(TemClientError);
    // The same status again sends nothing; a change does.
    client.setStatus('dnd');
    client.setStatus('dnd');
    expect(sock.frames('SET_PRESENCE')).toHaveLength(1);
    client.setStatus('idle');
    client.setStatus('dnd');
    expect(sock.frames('SET_PRESENCE')).toHaveLength(3);
    sock.serverClose(1012);
    timers.advance(60_000);
    await flush();
    FakeSocket.last().handshake();
    expect(FakeSocket.last().lastOf('SET_PRESENCE').payload).toEqual({ status: 'dnd' });
    client.disconnect();
  });

  it('reports frames that are not JSON and stays connected', async () => {
    const { client, sock } = await connected();
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    sock.pushRaw('not json');
    sock.pushRaw(new TextEncoder().encode(JSON.stringify({ type: 'PONG', payload: { timestamp: 1 } })));
    expect(errors).toEqual(['BAD_REQUEST']);
    expect(client.state).toBe('connected');
    client.disconnect();
  });
});
