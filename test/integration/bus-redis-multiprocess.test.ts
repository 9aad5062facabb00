/**
 * Real gateway-like processes on one Redis: two child processes publish concurrently and hold
 * presence; this process subscribes, sees one gap-free offset sequence, sends a control message
 * they both receive, then kills one child (SIGKILL, no goodbye) and sees only its user go offline.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomBase62 } from '../../src/core/ids.js';
import { RedisBus } from '../../src/bus/index.js';
import { RedisPresenceStore } from '../../src/presence/index.js';
import { deleteRedisKeys } from '../helpers/redis-realtime.js';
import { services, REDIS_URL } from '../helpers/services.js';

const prefix = `temtest:bus-mp:${randomBase62(6)}:`;
const T0 = Date.UTC(2030, 0, 1);
const TTL = 60_000;
const root = fileURLToPath(new URL('../../', import.meta.url));

/** A child node: publishes `count` messages, joins presence, then obeys `refresh <t>` lines. */
const CHILD = `
import { createInterface } from 'node:readline';
import { RedisBus } from './src/bus/index.ts';
import { RedisPresenceStore } from './src/presence/index.ts';
const [url, prefix, user, count, t0, ttl] = process.argv.slice(1);
const namespaces = () => ({ historySize: 1000, historyTtlMs: 300000, presence: true, joinLeave: true, clientPublish: false });
const bus = new RedisBus({ url, prefix, namespaces, name: user });
const presence = new RedisPresenceStore({ url, prefix, name: user });
await bus.onControl((m) => console.log('control ' + JSON.stringify(m)));
await presence.upsert({ channel: 'room:mp', userId: user, connectionId: user + '-c', status: 'online' }, Number(ttl), Number(t0));
console.log('joined');
createInterface({ input: process.stdin }).on('line', async (line) => {
  const [cmd, arg] = line.split(' ');
  if (cmd === 'publish') {
    await Promise.all(Array.from({ length: Number(count) }, (_, i) => bus.publish('room:mp', 'm', { user, i })));
    console.log('published');
  } else if (cmd === 'refresh') {
    await presence.upsert({ channel: 'room:mp', userId: user, connectionId: user + '-c', status: 'online' }, Number(ttl), Number(arg));
    console.log('refreshed');
  }
});
`;

interface Child {
  proc: ChildProcessWithoutNullStreams;
  lines: string[];
  waitFor(line: string): Promise<void>;
  send(line: string): void;
}

function startChild(user: string, count: number): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, REDIS_URL, prefix, user, String(count), String(T0), String(TTL)], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: { line: string; resolve: () => void }[] = [];
  createInterface({ input: proc.stdout }).on('line', (line) => {
    lines.push(line);
    for (const w of waiters.filter((w) => line.startsWith(w.line))) w.resolve();
  });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return {
    proc,
    lines,
    send: (line) => proc.stdin.write(`${line}\n`),
    waitFor: (line) =>
      new Promise<void>((resolve, reject) => {
        if (lines.some((l) => l.startsWith(line))) return resolve();
        const timer = setTimeout(() => reject(new Error(`child ${user} never printed "${line}": ${stderr}`)), 20_000);
        waiters.push({ line, resolve: () => (clearTimeout(timer), resolve()) });
      }),
  };
}

describe.skipIf(!services.redis)('Redis bus across processes', () => {
  const children: Child[] = [];
  let bus: RedisBus | undefined;
  let presence: RedisPresenceStore | undefined;

  afterAll(async () => {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    await bus?.close();
    await presence?.close();
    await deleteRedisKeys(prefix);
  });

  it('orders concurrent publishers, reaches every process, and turns a killed node offline', async () => {
    const namespaces = () => ({ historySize: 1000, historyTtlMs: 300_000, presence: true, joinLeave: true, clientPublish: false });
    bus = new RedisBus({ url: REDIS_URL, prefix, namespaces });
    presence = new RedisPresenceStore({ url: REDIS_URL, prefix });
    const seen: number[] = [];
    await bus.subscribe('room:mp', (p) => seen.push(p.offset));

    children.push(startChild('alice', 300), startChild('bob', 300));
    await Promise.all(children.map((c) => c.waitFor('joined')));
    for (const c of children) c.send('publish');
    await Promise.all(children.map((c) => c.waitFor('published')));
    const until = Date.now() + 10_000;
    while (seen.length < 600 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));

    await bus.publishControl({ kind: 'revoke_principal', principalId: 'p1' });
    await Promise.all(children.map((c) => c.waitFor('control {"kind":"revoke_principal"')));

    expect(await presence.members('room:mp', T0)).toEqual([
      { user_id: 'alice', status: 'online' },
      { user_id: 'bob', status: 'online' },
    ]);
    const [alice, bob] = children as [Child, Child];
    alice.proc.kill('SIGKILL');
    bob.send(`refresh ${T0 + TTL / 2}`);
    await bob.waitFor('refreshed');
    expect(await presence.expire(T0 + TTL)).toEqual([{ channel: 'room:mp', userId: 'alice', kind: 'leave', status: 'offline', version: expect.any(Number) }]);
    expect(await presence.members('room:mp', T0 + TTL)).toEqual([{ user_id: 'bob', status: 'online' }]);
  });
});
