/**
 * Where the benchmarks find the services and the repository, and the knobs every benchmark
 * shares. Everything can be overridden from the environment so a run can be repeated elsewhere.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Seconds of the measured window; BENCH_DURATION overrides a benchmark's default. */
export function benchDuration(defaultSeconds: number): number {
  const raw = process.env.BENCH_DURATION;
  const n = raw ? Number(raw) : defaultSeconds;
  if (!Number.isFinite(n) || n <= 0) throw new Error(`BENCH_DURATION must be a positive number, got ${raw}`);
  return n;
}

export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return n;
}

/** A short unique tag for database names, Redis prefixes and principal ids of one run. */
export function runTag(name: string): string {
  return `bench_${name}_${Date.now().toString(36)}_${process.pid}`;
}

/** What the machine looked like when the run started: 2 busy cores make figures noisy. */
export function machineInfo(): Record<string, unknown> {
  const cpu = cpus();
  return {
    node: process.version,
    cpus: cpu.length,
    cpu_model: cpu[0]?.model ?? 'unknown',
    total_mem_mib: Math.round(totalmem() / 1048576),
    loadavg_at_start: loadavg().map((v) => Math.round(v * 100) / 100),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
