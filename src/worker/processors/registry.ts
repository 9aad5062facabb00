/**
 * Which processor handles an event type: an exact match wins over the longest `prefix.*`, which
 * wins over `*`; with no match the built-in default processor runs. Resolution is computed once
 * per type and cached, since a worker asks for the same few types again and again. The cache is
 * bounded: event types are the producers' to choose (a type per customer or per order is valid),
 * and a worker runs for months, so an unbounded map would keep every type it ever saw.
 */
import { defaultProcessor } from './default.js';
import type { Processor } from './types.js';

const TYPE_PATTERN = /^(\*|[a-z0-9][a-z0-9_.-]*\.\*|[a-z0-9][a-z0-9_.-]{0,127})$/;

/** Resolved types kept; past it the oldest is forgotten (resolving again is a lookup or two). */
export const MAX_CACHED_TYPES = 4096;

export class ProcessorRegistry {
  private readonly exact = new Map<string, Processor>();
  /** `prefix.*` patterns as their prefix including the dot (`payment.`), longest first. */
  private readonly prefixes: { prefix: string; processor: Processor }[] = [];
  private wildcard: Processor | undefined;
  private readonly cache = new Map<string, Processor>();
  private readonly all: Processor[] = [];

  constructor(processors: Processor[] = [], private readonly fallback: Processor = defaultProcessor) {
    for (const p of processors) this.register(p);
  }

  /** Adds a processor; two processors claiming the same pattern is a configuration error. */
  register(processor: Processor): this {
    validateProcessor(processor);
    for (const pattern of processor.types) {
      const owner = this.ownerOf(pattern);
      if (owner) throw new Error(`processors "${owner.name}" and "${processor.name}" both handle "${pattern}"`);
    }
    for (const pattern of processor.types) {
      if (pattern === '*') this.wildcard = processor;
      else if (pattern.endsWith('.*')) this.prefixes.push({ prefix: pattern.slice(0, -1), processor });
      else this.exact.set(pattern, processor);
    }
    this.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
    this.all.push(processor);
    this.cache.clear();
    return this;
  }

  resolve(type: string): Processor {
    const cached = this.cache.get(type);
    if (cached) return cached;
    const found =
      this.exact.get(type) ??
      this.prefixes.find((p) => type.startsWith(p.prefix))?.processor ??
      this.wildcard ??
      this.fallback;
    if (this.cache.size >= MAX_CACHED_TYPES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(type, found);
    return found;
  }

  list(): readonly Processor[] {
    return this.all;
  }

  private ownerOf(pattern: string): Processor | undefined {
    if (pattern === '*') return this.wildcard;
    if (pattern.endsWith('.*')) return this.prefixes.find((p) => p.prefix === pattern.slice(0, -1))?.processor;
    return this.exact.get(pattern);
  }
}

export function validateProcessor(value: unknown): asserts value is Processor {
  const p = value as Partial<Processor> | null;
  if (!p || typeof p !== 'object') throw new Error('a processor must be an object');
  if (typeof p.name !== 'string' || p.name.trim() === '') throw new Error('a processor needs a non-empty string `name`');
  if (typeof p.process !== 'function') throw new Error(`processor "${p.name}" needs a \`process(event, ctx)\` function`);
  if (!Array.isArray(p.types) || p.types.length === 0) throw new Error(`processor "${p.name}" needs a non-empty \`types\` array`);
  for (const t of p.types) {
    if (typeof t !== 'string' || !TYPE_PATTERN.test(t)) {
      throw new Error(`processor "${p.name}" has an invalid type pattern ${JSON.stringify(t)} (exact type, "prefix.*" or "*")`);
    }
  }
}
