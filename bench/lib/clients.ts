/**
 * A fleet of WebSocket clients spread over child processes (bench/fixtures/ws-clients.ts),
 * so no process holds more sockets than its open-file limit allows.
 */
import type { ClientSpec } from '../fixtures/ws-clients.js';
import { LOCAL_ADDRESSES } from './ports.js';
import { spawnNode, type Child } from './proc.js';

export interface Fleet {
  children: Child[];
  connected: number;
  failed: number;
  errors: string[];
  connectMs: number;
  /** Messages received and sockets closed so far, summed over children. */
  count(): Promise<{ received: number; closed: number }>;
  close(): Promise<void>;
}

/** Sends a command to a client child process and resolves with its first reply of `type`. */
export function request<T extends { type: string }>(child: Child, msg: object, type: T['type']): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: T): void => {
      if (m?.type !== type) return;
      child.proc.off('message', on);
      resolve(m);
    };
    child.proc.on('message', on);
    child.proc.send!(msg);
  });
}

export async function startFleet(
  name: string,
  spec: Omit<ClientSpec, 'n' | 'first' | 'localAddresses'>,
  total: number,
  perChild = 5000,
): Promise<Fleet> {
  const nChildren = Math.ceil(total / perChild);
  const children: Child[] = [];
  for (let c = 0; c < nChildren; c++) {
    const child = spawnNode(`${name}-clients-${c}`, 'bench/fixtures/ws-clients.ts', [], { ipc: true, nodeArgs: ['--max-old-space-size=2048'] });
    await child.waitForLog((l) => l.msg === 'listening');
    children.push(child);
  }
  const start = performance.now();
  // Children connect one after another: a server's accept queue overflows if 10k SYNs arrive at once.
  const results: { ok: number; failed: number; errors: string[] }[] = [];
  for (let c = 0; c < nChildren; c++) {
    const first = c * perChild;
    const n = Math.min(perChild, total - first);
    results.push(
      await request<{ type: 'connected'; ok: number; failed: number; errors: string[] }>(
        children[c]!,
        { cmd: 'connect', spec: { ...spec, n, first, localAddresses: LOCAL_ADDRESSES } satisfies ClientSpec },
        'connected',
      ),
    );
  }
  const fleet: Fleet = {
    children,
    connected: results.reduce((a, r) => a + r.ok, 0),
    failed: results.reduce((a, r) => a + r.failed, 0),
    errors: results.flatMap((r) => r.errors).slice(0, 5),
    connectMs: Math.round(performance.now() - start),
    async count() {
      const counts = await Promise.all(children.map((ch) => request<{ type: 'count'; received: number; closed: number }>(ch, { cmd: 'count' }, 'count')));
      return { received: counts.reduce((a, c) => a + c.received, 0), closed: counts.reduce((a, c) => a + c.closed, 0) };
    },
    async close() {
      for (const ch of children) {
        if (ch.proc.connected) ch.proc.send!({ cmd: 'close' });
      }
      await Promise.all(children.map((ch) => Promise.race([ch.exited, new Promise((r) => setTimeout(r, 5000))])));
      await Promise.all(children.map((ch) => ch.stop()));
    },
  };
  return fleet;
}
