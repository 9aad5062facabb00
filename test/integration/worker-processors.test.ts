import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/index.js';
import type { TemEvent } from '../../src/core/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { defaultProcessor, loadProcessors, NonRetryableError, isNonRetryableError, ProcessorRegistry, type Processor } from '../../src/worker/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', 'fixtures');

function proc(name: string, ...types: string[]): Processor {
  return { name, types, process: async () => name };
}

describe('processor registry', () => {
  const exact = proc('exact', 'payment.success');
  const payment = proc('payment', 'payment.*');
  const paymentCard = proc('payment-card', 'payment.card.*');
  const any = proc('any', '*');

  it('prefers exact over the longest prefix over * ', () => {
    const r = new ProcessorRegistry([any, payment, exact, paymentCard]);
    expect(r.resolve('payment.success').name).toBe('exact');
    expect(r.resolve('payment.failed').name).toBe('payment');
    expect(r.resolve('payment.card.declined').name).toBe('payment-card');
    expect(r.resolve('payment.card').name).toBe('payment');
    expect(r.resolve('order.created').name).toBe('any');
    // "payment.*" must not match "paymentx.y" or "payment" itself.
    expect(r.resolve('paymentx.y').name).toBe('any');
    expect(r.resolve('payment').name).toBe('any');
  });

  it('falls back to the built-in default processor, which records {ok: true}', async () => {
    const r = new ProcessorRegistry([payment]);
    const p = r.resolve('order.created');
    expect(p).toBe(defaultProcessor);
    expect(p.name).toBe('default');
    const ctx = { attempt: 1, signal: new AbortController().signal, logger: silentLogger(), idempotencyKey: 'e:default' };
    await expect(p.process({} as TemEvent, ctx)).resolves.toEqual({ ok: true });
  });

  it('keeps a bounded number of resolved types, however many distinct types a worker sees', () => {
    // Types are the producers' to choose (one per customer, per order): a long-running worker
    // must not keep every type it ever resolved.
    const r = new ProcessorRegistry([exact, payment]);
    for (let i = 0; i < 50_000; i++) r.resolve(`tenant${i}.created`);
    const cached = (r as unknown as { cache: Map<string, Processor> }).cache;
    expect(cached.size).toBeLessThanOrEqual(10_000);
    // Forgotten types resolve as before.
    expect(r.resolve('tenant0.created')).toBe(defaultProcessor);
    expect(r.resolve('payment.success').name).toBe('exact');
    expect(r.resolve('payment.x').name).toBe('payment');
  });

  it('resolution does not depend on registration order', () => {
    const a = new ProcessorRegistry([paymentCard, payment, any, exact]);
    const b = new ProcessorRegistry([exact, any, payment, paymentCard]);
    for (const t of ['payment.success', 'payment.x', 'payment.card.x', 'z']) expect(a.resolve(t).name).toBe(b.resolve(t).name);
  });

  it('rejects two processors on one pattern and malformed processors', () => {
    expect(() => new ProcessorRegistry([proc('a', 'payment.*'), proc('b', 'payment.*')])).toThrow(/"a" and "b" both handle "payment\.\*"/);
    expect(() => new ProcessorRegistry([proc('a', '*'), proc('b', '*')])).toThrow(/both handle/);
    expect(() => new ProcessorRegistry([proc('a')])).toThrow(/non-empty `types`/);
    expect(() => new ProcessorRegistry([proc('a', 'pay*')])).toThrow(/invalid type pattern/);
    expect(() => new ProcessorRegistry([{ name: '', types: ['*'], process: async () => 1 }])).toThrow(/name/);
    expect(() => new ProcessorRegistry([{ name: 'x', types: ['*'] } as unknown as Processor])).toThrow(/process/);
  });

  it('recognises NonRetryableError, also from another copy of the class', () => {
    expect(isNonRetryableError(new NonRetryableError('bad payload'))).toBe(true);
    const foreign = new Error('bad');
    foreign.name = 'NonRetryableError';
    expect(isNonRetryableError(foreign)).toBe(true);
    expect(isNonRetryableError(new Error('transient'))).toBe(false);
    expect(isNonRetryableError('NonRetryableError')).toBe(false);
  });
});

describe('loadProcessors', () => {
  it('loads nothing for an empty setting', async () => {
    expect(await loadProcessors(undefined)).toEqual([]);
    expect(await loadProcessors(' , ')).toEqual([]);
  });

  it('loads comma-separated modules relative to the working directory, arrays and single exports', async () => {
    const list = await loadProcessors(' ./processors-payments.ts , ./processors-audit.ts', fixtures);
    expect(list.map((p) => p.name)).toEqual(['payments-charge', 'payments-refund', 'audit']);
    const r = new ProcessorRegistry(list);
    expect(r.resolve('payment.refund').name).toBe('payments-refund');
    expect(r.resolve('payment.success').name).toBe('payments-charge');
    expect(r.resolve('order.created').name).toBe('audit');
  });

  it('resolves from process.cwd() by default', async () => {
    const list = await loadProcessors('test/fixtures/processors-audit.ts');
    expect(list.map((p) => p.name)).toEqual(['audit']);
  });

  it.each([
    ['./missing-processor.js', /processor module "\.\/missing-processor\.js" not found/],
    ['./processors-no-default.ts', /"\.\/processors-no-default\.ts" has no default export/],
    ['./processors-invalid.ts', /"\.\/processors-invalid\.ts": .*invalid type pattern/],
    ['./processors-throws.ts', /"\.\/processors-throws\.ts" failed to load: boom while loading/],
  ])('a bad module %s stops with an error naming it', async (spec, message) => {
    const err = await loadProcessors(`./processors-audit.ts,${spec}`, fixtures).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/TEM_PROCESSORS/);
    expect((err as Error).message).toMatch(message);
  });
});
