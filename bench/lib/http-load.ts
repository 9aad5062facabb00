/**
 * Closed-loop HTTP load with autocannon (fixed connections, as fast as the server answers),
 * after a warm-up whose figures are discarded.
 */
import autocannon from 'autocannon';
import { cpuMs } from './proc.js';
import { round } from './stats.js';

export interface LoadFigures {
  [key: string]: number;
  req_per_s: number;
  ok: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  duration_s: number;
  /** CPU time the server process used per answered request (its own cost, without PostgreSQL's). */
  server_cpu_ms_per_request: number;
}

export async function hammer(
  url: string,
  options: { connections: number; durationS: number; warmupS: number; headers: Record<string, string>; body: string; serverPid?: number },
): Promise<LoadFigures> {
  const base = { url, method: 'POST', connections: options.connections, headers: options.headers, body: options.body, timeout: 10 };
  if (options.warmupS > 0) await autocannon({ ...base, duration: options.warmupS });
  const cpu0 = options.serverPid ? await cpuMs(options.serverPid) : 0;
  const r = await autocannon({ ...base, duration: options.durationS });
  const cpu1 = options.serverPid ? await cpuMs(options.serverPid) : 0;
  const ok = r['2xx'];
  return {
    req_per_s: round(ok / options.durationS, 1),
    ok,
    p50_ms: r.latency.p50,
    p90_ms: r.latency.p90,
    p99_ms: r.latency.p99,
    max_ms: r.latency.max,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    duration_s: options.durationS,
    server_cpu_ms_per_request: ok ? round((cpu1 - cpu0) / ok, 3) : 0,
  };
}
