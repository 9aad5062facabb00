/**
 * Loads processors named by TEM_PROCESSORS: comma-separated module paths, resolved from the
 * current directory (or package names resolvable from it). Each module's default export is a
 * Processor or an array of them. Any problem stops start-up with an error naming the module,
 * because a worker silently running the default processor would mark events processed that
 * were never really handled.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../../config/index.js';
import { validateProcessor } from './registry.js';
import type { Processor } from './types.js';

const SETTING = 'TEM_PROCESSORS';

function looksLikePath(spec: string): boolean {
  return spec.startsWith('.') || isAbsolute(spec) || spec.includes('/') || spec.includes('\\');
}

function locate(spec: string, cwd: string): string {
  const asPath = resolve(cwd, spec);
  if (existsSync(asPath)) return pathToFileURL(asPath).href;
  if (!looksLikePath(spec) || spec.startsWith('@')) {
    try {
      return pathToFileURL(createRequire(join(cwd, 'noop.js')).resolve(spec)).href;
    } catch {
      /* reported below */
    }
  }
  throw new ConfigError(SETTING, `processor module "${spec}" not found (looked for ${asPath})`);
}

export async function loadProcessorModule(spec: string, cwd: string = process.cwd()): Promise<Processor[]> {
  const url = locate(spec, cwd);
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    throw new ConfigError(SETTING, `processor module "${spec}" failed to load: ${(err as Error).message ?? String(err)}`);
  }
  const exported = mod.default;
  if (exported === undefined) throw new ConfigError(SETTING, `processor module "${spec}" has no default export (expected a processor or an array of processors)`);
  const list = Array.isArray(exported) ? exported : [exported];
  if (list.length === 0) throw new ConfigError(SETTING, `processor module "${spec}" exports an empty array`);
  for (const p of list) {
    try {
      validateProcessor(p);
    } catch (err) {
      throw new ConfigError(SETTING, `processor module "${spec}": ${(err as Error).message}`);
    }
  }
  return list as Processor[];
}

/** All processors of a TEM_PROCESSORS value, in the order given; `undefined`/empty → none. */
export async function loadProcessors(spec: string | undefined, cwd: string = process.cwd()): Promise<Processor[]> {
  if (!spec) return [];
  const out: Processor[] = [];
  for (const part of spec.split(',')) {
    const path = part.trim();
    if (path) out.push(...(await loadProcessorModule(path, cwd)));
  }
  return out;
}
