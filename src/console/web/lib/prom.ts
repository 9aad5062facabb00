/**
 * A small parser for the Prometheus text exposition format: enough to read the gauges the
 * console shows (tem_queue_depth, tem_queue_oldest_age_seconds, tem_jobs_leased, tem_events).
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const v = m[3]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** The value of a metric (summed over label sets), or null when absent or unknown (NaN). */
export function metric(samples: Sample[], name: string, where: Record<string, string> = {}): number | null {
  let found = false;
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name || Number.isNaN(s.value)) continue;
    if (!Object.entries(where).every(([k, v]) => s.labels[k] === v)) continue;
    found = true;
    sum += s.value;
  }
  return found ? sum : null;
}
