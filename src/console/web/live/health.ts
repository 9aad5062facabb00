/**
 * Health of the system as the console shows it: GET /api/v1/health (database, Redis, version)
 * and the worker gauges from GET /metrics. Polls every 5 s while some view is watching.
 */
import type { Api } from '../lib/api.js';
import { metric, parseProm } from '../lib/prom.js';

export interface HealthSnapshot {
  at: number;
  /** `ok` / `degraded` / `down`, or `unreachable` when the API did not answer. */
  status: string;
  database: string;
  redis: string;
  version: string | null;
  /** null when /metrics is not served on this listener. */
  queueDepth: number | null;
  oldestAgeSec: number | null;
  leased: number | null;
  eventsByStatus: Record<string, number>;
  metricsAvailable: boolean;
}

const POLL_MS = 5000;

export class HealthPoller {
  last: HealthSnapshot | null = null;
  private readonly listeners = new Set<(h: HealthSnapshot) => void>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;

  constructor(private readonly api: Api) {}

  watch(fn: (h: HealthSnapshot) => void): () => void {
    this.listeners.add(fn);
    if (this.last) fn(this.last);
    if (!this.running) {
      this.running = true;
      void this.tick();
    }
    return () => {
      this.listeners.delete(fn);
      if (this.listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  async refresh(): Promise<HealthSnapshot> {
    const [health, metricsText] = await Promise.all([
      this.api
        .request<Record<string, unknown>>('GET', '/api/v1/health', { allow: [503] })
        .then((r) => r.body)
        .catch(() => null),
      this.api.metricsText(),
    ]);
    const samples = metricsText ? parseProm(metricsText) : [];
    const eventsByStatus: Record<string, number> = {};
    for (const s of samples) if (s.name === 'tem_events' && s.labels.status) eventsByStatus[s.labels.status] = s.value;
    // A server that did not answer cannot vouch for its database or Redis either.
    const snap: HealthSnapshot = {
      at: Date.now(),
      status: health ? String(health.status ?? 'unknown') : 'unreachable',
      database: health ? String(health.database ?? 'unknown') : 'unreachable',
      redis: health ? String(health.redis ?? 'unknown') : 'unreachable',
      version: health && health.version !== undefined ? String(health.version) : null,
      queueDepth: metric(samples, 'tem_queue_depth'),
      oldestAgeSec: metric(samples, 'tem_queue_oldest_age_seconds'),
      leased: metric(samples, 'tem_jobs_leased'),
      eventsByStatus,
      metricsAvailable: metricsText !== null,
    };
    this.last = snap;
    for (const fn of this.listeners) fn(snap);
    return snap;
  }

  private async tick(): Promise<void> {
    if (!this.running) return;
    await this.refresh();
    if (this.running) this.timer = setTimeout(() => void this.tick(), POLL_MS);
  }
}
