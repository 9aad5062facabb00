/**
 * SessionWriter: per connection one session write at a time, of its latest state, and a failed
 * write tried again with the state as it is then.
 */
import { describe, expect, it } from 'vitest';
import { SessionWriter } from '../../src/gateway/session-writer.js';
import type { Connection } from '../../src/gateway/connection.js';

/** A connection whose session state is `channels`, as the write reads it when it runs. */
function conn(id: string, channels: string[]): Connection & { channels: string[] } {
  return { id, channels } as unknown as Connection & { channels: string[] };
}

interface Call {
  conn: string;
  channels: string[];
  takeOver: boolean;
  finish: (err?: Error) => void;
}

/** A store whose writes finish only when the test says so, recording what each one wrote. */
function controlledStore() {
  const calls: Call[] = [];
  let inFlight = 0;
  let most = 0;
  const write = (c: Connection, takeOver: boolean) =>
    new Promise<void>((resolve, reject) => {
      inFlight++;
      most = Math.max(most, inFlight);
      calls.push({
        conn: c.id,
        channels: [...(c as Connection & { channels: string[] }).channels],
        takeOver,
        finish: (err) => {
          inFlight--;
          if (err) reject(err);
          else resolve();
        },
      });
    });
  return { calls, write, most: () => most };
}

const tick = () => new Promise((r) => setImmediate(r));
const quiet = { warn: () => undefined };

describe('SessionWriter', () => {
  it('writes one at a time per connection, folding what was asked meanwhile into one write of the latest state', async () => {
    const store = controlledStore();
    const writer = new SessionWriter({ write: store.write, logger: quiet, retryMs: [] });
    const a = conn('a', ['user:a']);
    writer.request(a);
    a.channels.push('live:1');
    writer.request(a);
    a.channels.push('live:2');
    writer.request(a);
    await tick();
    expect(store.calls.map((c) => c.channels)).toEqual([['user:a']]);
    store.calls[0]!.finish();
    await tick();
    // The two asked while the first ran: one write, with everything subscribed by then.
    expect(store.calls.map((c) => c.channels)).toEqual([['user:a'], ['user:a', 'live:1', 'live:2']]);
    store.calls[1]!.finish();
    await writer.drain();
    expect(store.calls).toHaveLength(2);
    expect(store.most()).toBe(1);
  });

  it('keeps connections apart: each has its own write in flight', async () => {
    const store = controlledStore();
    const writer = new SessionWriter({ write: store.write, logger: quiet, retryMs: [] });
    writer.request(conn('a', ['user:a']));
    writer.request(conn('b', ['user:b']));
    await tick();
    expect(store.calls.map((c) => c.conn)).toEqual(['a', 'b']);
    for (const c of store.calls) c.finish();
    await writer.drain();
  });

  it('keeps a takeover when it is folded into a later write', async () => {
    const store = controlledStore();
    const writer = new SessionWriter({ write: store.write, logger: quiet, retryMs: [] });
    const a = conn('a', ['user:a']);
    writer.request(a);
    writer.request(a, true);
    writer.request(a);
    await tick();
    store.calls[0]!.finish();
    await tick();
    expect(store.calls.map((c) => c.takeOver)).toEqual([false, true]);
    store.calls[1]!.finish();
    await writer.drain();
  });

  it('tries a failed write again after a pause, with the state as it is then, and gives up with a warning', async () => {
    const store = controlledStore();
    const pauses: number[] = [];
    const warnings: unknown[] = [];
    const writer = new SessionWriter({
      write: store.write,
      logger: { warn: (obj: unknown) => void warnings.push(obj) },
      retryMs: [5, 7],
      sleep: async (ms) => void pauses.push(ms),
    });
    const a = conn('a', ['user:a']);
    writer.request(a);
    await tick();
    a.channels.push('live:1');
    store.calls[0]!.finish(new Error('redis went away'));
    await tick();
    await tick();
    expect(store.calls.map((c) => c.channels)).toEqual([['user:a'], ['user:a', 'live:1']]);
    store.calls[1]!.finish(new Error('still away'));
    await tick();
    await tick();
    store.calls[2]!.finish(new Error('still away'));
    await writer.drain();
    expect(pauses).toEqual([5, 7]);
    expect(store.calls).toHaveLength(3);
    expect(warnings).toHaveLength(1);
    // Later requests start afresh.
    writer.request(a);
    await tick();
    store.calls[3]!.finish();
    await writer.drain();
    expect(store.calls).toHaveLength(4);
  });
});
