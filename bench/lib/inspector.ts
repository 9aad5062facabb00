/**
 * Full GC and memory figures of a child process through the V8 inspector (started with
 * `--inspect=127.0.0.1:0`), so RSS can be read after a collection without the process having to
 * expose anything itself.
 */
import WebSocket from 'ws';
import { sleep } from './env.js';
import type { Child } from './proc.js';

export interface Inspector {
  gc(): Promise<void>;
  memoryUsage(): Promise<NodeJS.MemoryUsage>;
  close(): void;
}

export async function attachInspector(child: Child): Promise<Inspector> {
  const line = await child.waitForLine(/Debugger listening on ws:\/\//, 30_000);
  const url = /(ws:\/\/\S+)/.exec(line)![1]!;
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map<number, (answer: { result?: unknown; error?: unknown }) => void>();
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: unknown };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg);
    if (msg.id !== undefined) pending.delete(msg.id);
  });
  const call = (method: string, params: object = {}): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, (answer) => (answer.error ? reject(new Error(`${method}: ${JSON.stringify(answer.error)}`)) : resolve(answer.result)));
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    async gc() {
      await call('HeapProfiler.collectGarbage');
      await call('HeapProfiler.collectGarbage');
    },
    async memoryUsage() {
      // A busy process has been seen to answer an evaluation without a value: ask again.
      let last: unknown;
      for (let attempt = 0; attempt < 5; attempt++) {
        const r = (await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as {
          result?: { value?: unknown };
          exceptionDetails?: unknown;
        };
        if (typeof r.result?.value === 'string') return JSON.parse(r.result.value) as NodeJS.MemoryUsage;
        last = r;
        await sleep(500);
      }
      throw new Error(`memoryUsage: no value from the inspector: ${JSON.stringify(last)}`);
    },
    close() {
      ws.close();
    },
  };
}
