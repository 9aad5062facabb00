/**
 * bench:all — runs every benchmark one after another (each in its own process, so one failing
 * does not stop the others) and prints a summary of bench/results/*.json.
 * BENCH_ONLY=ingest,drain picks some.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './lib/env.js';
import { printTable } from './lib/report.js';

const ALL = ['ingest', 'drain', 'fanout', 'e2e', 'connections', 'jitter'];
const names = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : ALL;
const outcome = new Map<string, number | null>();
for (const name of names) {
  console.log(`\n=== bench:${name} ===`);
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join('bench', `${name}.ts`)], { cwd: REPO_ROOT, stdio: 'inherit' });
  outcome.set(name, r.status);
  console.log(`=== bench:${name} exited ${r.status} after ${Math.round((Date.now() - started) / 1000)} s ===`);
}

const rows = names.map((name) => {
  const path = join(REPO_ROOT, 'bench', 'results', `${name}.json`);
  if (outcome.get(name) !== 0 || !existsSync(path)) return [name, 'failed', '-', '-', '-', '-'];
  const r = JSON.parse(readFileSync(path, 'utf8')) as { ratio: number; ratio_of: string; target: { description: string }; target_met: boolean; machine: { loadavg_at_start: number[] } };
  return [name, r.ratio, r.ratio_of, r.target_met ? 'met' : 'NOT met', r.target.description, r.machine.loadavg_at_start[0]];
});
printTable('summary', ['benchmark', 'ratio', 'ratio of', 'target', 'target is', 'load at start'], rows);
process.exit([...outcome.values()].every((s) => s === 0) ? 0 : 1);
