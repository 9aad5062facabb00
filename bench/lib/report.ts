/**
 * Output of a run: a table on stdout and bench/results/<name>.json with the absolute figures of
 * both sides, the ratio, the target and whether it was met.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, machineInfo } from './env.js';

type Cell = string | number | boolean | null | undefined;

function fmt(v: Cell): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 2 });
  }
  return String(v);
}

export function printTable(title: string, header: string[], rows: Cell[][]): void {
  const cells = [header, ...rows.map((r) => r.map(fmt))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells.slice(1)) console.log(line(r));
  console.log('');
}

export interface Target {
  description: string;
  met: boolean;
}

export interface BenchResult {
  name: string;
  params: Record<string, unknown>;
  tem: Record<string, unknown>;
  baseline: Record<string, unknown> | Record<string, Record<string, unknown>>;
  /** tem / baseline on the headline figure (see `ratio_of`). */
  ratio: number;
  ratio_of: string;
  target: Target;
  notes?: string[];
  extra?: Record<string, unknown>;
}

const startInfo = machineInfo();

export function writeResult(result: BenchResult): string {
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  // BENCH_RESULT_SUFFIX keeps a variant run (other rate, other size) next to the standard one.
  const suffix = process.env.BENCH_RESULT_SUFFIX ? `-${process.env.BENCH_RESULT_SUFFIX}` : '';
  const path = join(dir, `${result.name}${suffix}.json`);
  const body = {
    ...result,
    target_met: result.target.met,
    measured_at: new Date().toISOString(),
    machine: { ...startInfo, loadavg_at_end: loadavg().map((v) => Math.round(v * 100) / 100) },
  };
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`);
  console.log(`target: ${result.target.description} → ${result.target.met ? 'MET' : 'NOT MET'} (ratio ${result.ratio}, ${result.ratio_of})`);
  console.log(`results written to ${path}`);
  return path;
}
