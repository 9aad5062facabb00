import { afterEach, describe, expect, it } from 'vitest';
import { ClientState, TemClient } from '../../src/client/index.js';
import { Heartbeat } from '../../src/client/heartbeat.js';
import { FakeSocket, ManualTimers, flush } from './client-fakes.js';

function setup(interval = 1_000, grace = 300) {
  const timers = new ManualTimers();
  const pings: number[] = [];
  const dead: number[] = [];
  const hb = new Heartbeat(timers, { interval, grace, sendPing: () => pings.push(timers.now()), onDead: (ms) => dead.push(ms) });
  return { timers, pings, dead, hb };
}

describe('Heartbeat (elapsed-time dead connection detection)', () => {
  it('pings every interval while frames keep arriving', () => {
    const { timers, pings, dead, hb } = setup();
    hb.start();
    for (let i = 0; i < 5; i++) {
      timers.advance(1_000);
      hb.received(); // the PONG
    }
    expect(pings).toHaveLength(5);
    expect(dead).toEqual([]);
  });

  it('declares the connection dead only after an unanswered probe and its grace period', () => {
    const { timers, pings, dead, hb } = setup();
    hb.start();
    timers.advance(1_000); // ping 1, no answer
    expect(dead).toEqual([]);
    // Woken when the silence reaches interval + grace (1300), not at the next ping (2000): probe.
    timers.advance(299);
    expect(pings).toHaveLength(1);
    timers.advance(1);
    expect(pings).toHaveLength(2);
    expect(dead).toEqual([]);
    timers.advance(299);
    expect(dead).toEqual([]);
    timers.advance(1);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toBe(1_600);
    timers.advance(10_000);
    expect(pings).toHaveLength(2); // stopped
  });

  it('does not false-disconnect when its timer was throttled for a long time (background tab)', () => {
    const { timers, pings, dead, hb } = setup();
    hb.start();
    timers.jump(60_000); // no timer ran for a minute; nothing was pinged, so nothing came back
    timers.advance(0); // the late timer fires now: silence 60 s, but it only probes
    expect(dead).toEqual([]);
    expect(pings).toHaveLength(1);
    hb.received(); // the socket answers the probe
    timers.advance(300);
    expect(dead).toEqual([]);
    for (let i = 0; i < 5; i++) {
      timers.advance(1_000);
      hb.received();
    }
    expect(dead).toEqual([]);
    expect(pings.length).toBeGreaterThan(5);
  });

  it('a late grace timer does not turn an answered probe into a disconnect', () => {
    const { timers, dead, hb } = setup();
    hb.start();
    timers.jump(60_000);
    timers.advance(0); // probe sent
    timers.jump(30_000); // the grace timer is throttled too
    hb.received(); // meanwhile the PONG arrived
    timers.advance(0);
    expect(dead).toEqual([]);
  });

  it('a dead socket is still found after throttling: the probe gets no answer', () => {
    const { timers, dead, hb } = setup();
    hb.start();
    timers.jump(60_000);
    timers.advance(0);
    timers.advance(300);
    expect(dead).toHaveLength(1);
  });
});

describe('TemClient heartbeat', () => {
  afterEach(() => FakeSocket.reset());

  it('uses heartbeat_interval from HELLO_ACK and reconnects when the server goes silent', async () => {
    const timers = new ManualTimers();
    const client = new TemClient('ws://x/ws', { websocket: FakeSocket, timers, token: 'k', pingGrace: 500, random: () => 0 });
    const disconnects: { code: number; reason: string }[] = [];
    client.on('disconnected', (d) => disconnects.push(d));
    client.connect();
    await flush();
    const sock = FakeSocket.last();
    sock.handshake({ heartbeat_interval: 2_000 });
    expect(client.state).toBe(ClientState.Connected);
    timers.advance(2_000);
    expect(sock.frames('PING')).toHaveLength(1);
    sock.push('PONG', { timestamp: 1 });
    timers.advance(2_000);
    expect(sock.frames('PING')).toHaveLength(2);
    // no PONG from here on: 2,500 ms after the last one (at 2,000), a probe
    timers.advance(499);
    expect(sock.frames('PING')).toHaveLength(2);
    timers.advance(1);
    expect(sock.frames('PING')).toHaveLength(3);
    expect(client.state).toBe(ClientState.Connected);
    timers.advance(500);
    expect(client.state).toBe(ClientState.Disconnected);
    expect(disconnects[0]).toMatchObject({ code: 1006 });
    expect(sock.closedByClient).toBeDefined();
    client.disconnect();
  });
});
