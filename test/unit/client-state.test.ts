import { afterEach, describe, expect, it } from 'vitest';
import { ClientState, TemClient, type StateChange, type TemClientOptions, type TokenReason } from '../../src/client/index.js';
import { FakeSocket, ManualTimers, flush } from './client-fakes.js';

function make(options: TemClientOptions = {}) {
  const timers = new ManualTimers();
  const client = new TemClient('ws://example.test/ws', { websocket: FakeSocket, timers, token: 'tem_key', random: () => 0.5, ...options });
  const states: string[] = [];
  client.on('state', ({ oldState, newState }: StateChange<ClientState>) => states.push(`${oldState}>${newState}`));
  const errors: string[] = [];
  client.on('error', (e) => errors.push(e.code));
  return { client, timers, states, errors };
}

afterEach(() => FakeSocket.reset());

describe('TemClient states', () => {
  it('goes disconnected → connecting → connected, with one state event per change', async () => {
    const { client, states } = make();
    expect(client.state).toBe(ClientState.Disconnected);
    const connected: unknown[] = [];
    client.on('connected', (c) => connected.push(c));
    client.connect();
    await flush();
    expect(client.state).toBe(ClientState.Connecting);
    FakeSocket.last().handshake({ session_id: 's9', user_id: 'u_7' });
    expect(client.state).toBe(ClientState.Connected);
    expect(states).toEqual(['disconnected>connecting', 'connecting>connected']);
    expect(connected).toEqual([{ session_id: 's9', user_id: 'u_7', heartbeat_interval: 10_000, resumed: false, recovered: false }]);
    client.disconnect();
    expect(states.at(-1)).toBe('connected>closed');
  });

  it('sends the token in HELLO, not in the URL, unless tokenInQuery', async () => {
    const a = make();
    a.client.connect();
    await flush();
    const hello = FakeSocket.last().handshake();
    expect(hello.payload).toEqual({ token: 'tem_key' });
    expect(FakeSocket.last().url).toBe('ws://example.test/ws');
    a.client.disconnect();

    const b = make({ tokenInQuery: true, token: 'a b' });
    b.client.connect();
    await flush();
    let sock = FakeSocket.last();
    expect(sock.url).toBe('ws://example.test/ws?token=a%20b');
    sock.open();
    expect(sock.frames('HELLO')).toEqual([]); // authenticated at the upgrade: the server greets first
    const ack = { session_id: 's', user_id: 'u', heartbeat_interval: 1000, resumed: false, recovered: false };
    sock.push('HELLO_ACK', ack);
    expect(b.client.state).toBe(ClientState.Connected);
    // Coming back with a session to resume, the token goes in HELLO, not the URL: authenticated
    // at the upgrade, the server would send live updates on user:{self} before the HELLO that
    // replays the older ones missed meanwhile.
    sock.serverClose(1012);
    b.timers.advance(60_000);
    await flush();
    sock = FakeSocket.last();
    expect(sock.url).toBe('ws://example.test/ws');
    sock.open();
    expect(sock.lastOf('HELLO').payload).toEqual({ token: 'a b', session_id: 's' });
    sock.push('HELLO_ACK', { ...ack, resumed: true }, sock.lastOf('HELLO').id as number);
    expect(b.client.state).toBe(ClientState.Connected);
    expect(b.client.connection?.resumed).toBe(true);
    b.client.disconnect();
  });

  it('reconnects after 1012 with a backoff delay within bounds, then resumes the session', async () => {
    const { client, timers, states } = make({ backoff: { minDelay: 200, maxDelay: 1_000, factor: 2 } });
    const disc: { code: number; reconnect: boolean; delay?: number }[] = [];
    client.on('disconnected', (d) => disc.push(d));
    client.connect();
    await flush();
    FakeSocket.last().handshake({ session_id: 'sess-A' });
    FakeSocket.last().serverClose(1012, 'restart');
    expect(client.state).toBe(ClientState.Disconnected);
    expect(disc[0]).toMatchObject({ code: 1012, reconnect: true });
    expect(disc[0]!.delay).toBeGreaterThanOrEqual(200);
    expect(disc[0]!.delay).toBeLessThanOrEqual(400);
    // nothing happens before the delay is over
    timers.advance(disc[0]!.delay! - 1);
    expect(FakeSocket.instances).toHaveLength(1);
    timers.advance(1);
    await flush();
    expect(FakeSocket.instances).toHaveLength(2);
    const hello = FakeSocket.last().handshake({ session_id: 'sess-A', resumed: true, recovered: true });
    expect(hello.payload).toMatchObject({ token: 'tem_key', session_id: 'sess-A' });
    expect(states).toEqual(['disconnected>connecting', 'connecting>connected', 'connected>disconnected', 'disconnected>connecting', 'connecting>connected']);
    client.disconnect();
  });

  it('backs off further on each failed attempt (1013), never past maxDelay, and resets once a connection lasted', async () => {
    const { client, timers } = make({ random: () => 0.999999, backoff: { minDelay: 100, maxDelay: 1_000, factor: 2 } });
    const delays: number[] = [];
    client.on('disconnected', (d) => delays.push(d.delay!));
    client.connect();
    for (let i = 0; i < 7; i++) {
      await flush();
      FakeSocket.last().serverClose(1013, 'try again later');
      timers.advance(delays.at(-1)!);
    }
    expect(delays).toEqual([200, 400, 800, 1_000, 1_000, 1_000, 1_000]);
    // Greeted, connected for `ms`, then closed by the server: the delay the client picks next.
    const nextDelayAfter = async (ms: number, code: number, reason?: string): Promise<number> => {
      await flush();
      FakeSocket.last().handshake();
      if (ms > 0) timers.advance(ms);
      FakeSocket.last().serverClose(code, reason);
      return delays.at(-1)!;
    };
    // Greeted, then closed at once (an overloaded server): still backed off.
    expect(await nextDelayAfter(0, 1013, 'overloaded')).toBe(1_000);
    timers.advance(1_000);
    // One that lasted 2 s did not count (the backoff holds at its ceiling)...
    expect(await nextDelayAfter(2_000, 1011)).toBe(1_000);
    timers.advance(1_000);
    // ...one that lasted 3 s was a success: the backoff starts over.
    expect(await nextDelayAfter(3_000, 1011)).toBe(200);
    client.disconnect();
  });

  it('does not reconnect after disconnect(), even with a reconnect pending', async () => {
    const { client, timers } = make();
    client.connect();
    await flush();
    FakeSocket.last().handshake();
    FakeSocket.last().serverClose(1006);
    client.disconnect();
    expect(client.state).toBe(ClientState.Closed);
    timers.advance(60_000);
    await flush();
    expect(FakeSocket.instances).toHaveLength(1);
    expect(timers.pending).toBe(0);
  });

  it('disconnect() closes an open socket with 1000 and ignores its late events', async () => {
    const { client } = make();
    client.connect();
    await flush();
    const sock = FakeSocket.last();
    sock.handshake();
    client.disconnect();
    expect(sock.closedByClient?.code).toBe(1000);
    sock.serverClose(1006); // handlers are detached: nothing happens
    expect(client.state).toBe(ClientState.Closed);
  });

  it('gives up on a socket that never opens (connect timeout) and tries again', async () => {
    const { client, timers } = make({ connectTimeout: 3_000 });
    const disc: string[] = [];
    client.on('disconnected', (d) => disc.push(d.reason));
    client.connect();
    await flush();
    timers.advance(3_000);
    expect(disc).toEqual(['connect timeout']);
    expect(client.state).toBe(ClientState.Disconnected);
    client.disconnect();
  });

  it('can connect() again after closing, keeping its subscriptions', async () => {
    const { client } = make();
    const sub = client.subscribe('live:1:chat');
    client.connect();
    await flush();
    FakeSocket.last().handshake();
    client.disconnect();
    expect(sub.state).toBe('subscribing');
    client.connect();
    await flush();
    FakeSocket.last().handshake();
    expect(FakeSocket.last().lastOf('SUBSCRIBE').payload).toEqual({ channels: ['live:1:chat'] });
    client.disconnect();
  });

  it('ready() resolves on connect and rejects when closed', async () => {
    const { client } = make();
    client.connect();
    const ready = client.ready();
    await flush();
    FakeSocket.last().handshake();
    await expect(ready).resolves.toBeUndefined();
    client.disconnect();
    await expect(client.ready()).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('TemClient auth', () => {
  it('closes for good on 4001 with a static token', async () => {
    const { client, timers, errors } = make();
    const disc: { code: number; reconnect: boolean }[] = [];
    client.on('disconnected', (d) => disc.push(d));
    client.connect();
    await flush();
    FakeSocket.last().open();
    FakeSocket.last().serverClose(4001, 'unauthorized');
    await flush();
    expect(client.state).toBe(ClientState.Closed);
    expect(errors).toEqual(['UNAUTHORIZED']);
    expect(disc).toEqual([{ code: 4001, reason: 'unauthorized', reconnect: false }]);
    timers.advance(120_000);
    await flush();
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('calls getToken on every attempt and, after 4001, reconnects only with a new token', async () => {
    const reasons: TokenReason[] = [];
    let next = 1;
    const { client, timers } = make({ token: undefined, getToken: async ({ reason }) => (reasons.push(reason), `jwt-${next}`) });
    client.connect();
    await flush();
    expect(FakeSocket.last().handshake().payload).toEqual({ token: 'jwt-1' });
    FakeSocket.last().serverClose(1006);
    await timers.run(5_000);
    expect(FakeSocket.last().handshake().payload).toMatchObject({ token: 'jwt-1', session_id: 'sess-1' });

    next = 2; // the app's backend hands out a fresh token
    FakeSocket.last().serverClose(4001, 'token expired');
    await flush();
    expect(client.state).toBe(ClientState.Disconnected);
    await timers.run(5_000);
    expect(FakeSocket.instances).toHaveLength(3);
    expect(FakeSocket.last().handshake().payload).toMatchObject({ token: 'jwt-2' });
    expect(reasons).toEqual(['connect', 'reconnect', 'unauthorized']);

    // the same token again is refused again: no loop
    FakeSocket.last().serverClose(4001, 'revoked');
    await flush();
    expect(client.state).toBe(ClientState.Closed);
    timers.advance(60_000);
    await flush();
    expect(FakeSocket.instances).toHaveLength(3);
  });

  it('closes when getToken returns nothing', async () => {
    const { client, errors } = make({ token: undefined, getToken: () => null });
    client.connect();
    await flush();
    expect(client.state).toBe(ClientState.Closed);
    expect(errors).toEqual(['UNAUTHORIZED']);
    expect(FakeSocket.instances).toHaveLength(0);
  });

  it('retries with backoff when getToken throws', async () => {
    let fail = true;
    const { client, timers, errors } = make({ token: undefined, getToken: async () => {
      if (fail) throw new Error('auth backend down');
      return 'jwt';
    } });
    client.connect();
    await flush();
    expect(errors).toEqual(['TRANSPORT']);
    expect(client.state).toBe(ClientState.Disconnected);
    fail = false;
    await timers.run(5_000);
    FakeSocket.last().handshake();
    expect(client.state).toBe(ClientState.Connected);
    client.disconnect();
  });

  it('gives a getToken that never answers the connect timeout, then tries again', async () => {
    let hang = true;
    const { client, timers, errors } = make({ token: undefined, connectTimeout: 5_000, getToken: () => (hang ? new Promise<string>(() => undefined) : 'jwt') });
    client.connect();
    await flush();
    expect(client.state).toBe(ClientState.Connecting);
    hang = false;
    await timers.run(5_000);
    expect(errors).toEqual(['TRANSPORT']);
    expect(client.state).toBe(ClientState.Disconnected);
    await timers.run(3_000);
    FakeSocket.last().handshake();
    expect(client.state).toBe(ClientState.Connected);
    client.disconnect();
  });

  it('refreshes the token when the server says it expired, and reconnects with the new one', async () => {
    let n = 0;
    const { client } = make({ token: undefined, getToken: () => `jwt-${++n}` });
    client.connect();
    await flush();
    FakeSocket.last().handshake();
    FakeSocket.last().push('ERROR', { code: 'UNAUTHORIZED', message: 'token expired' });
    await flush();
    expect(FakeSocket.instances[0]!.closedByClient).toBeDefined();
    expect(FakeSocket.instances).toHaveLength(2);
    expect(FakeSocket.last().handshake().payload).toMatchObject({ token: 'jwt-2', session_id: 'sess-1' });
    expect(client.state).toBe(ClientState.Connected);
    client.disconnect();
  });

  it('treats an ERROR UNAUTHORIZED reply to HELLO like a 4001', async () => {
    const { client } = make();
    client.connect();
    await flush();
    const sock = FakeSocket.last();
    sock.open();
    sock.push('ERROR', { code: 'UNAUTHORIZED', message: 'bad token' }, sock.lastOf('HELLO').id as number);
    await flush();
    expect(client.state).toBe(ClientState.Closed);
  });
});
