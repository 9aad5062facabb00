/**
 * Health at a glance: database, Redis, worker queue (depth, oldest job age, leased jobs).
 * Used at the top of the events view and, larger, on the overview.
 */
import { h, render } from '../lib/dom.js';
import { seconds } from '../lib/format.js';
import type { HealthSnapshot } from '../live/health.js';
import type { Ctx } from './context.js';

/** `ok`-like values look good; `disabled` (embedded bus) is neutral; anything else is bad. */
function tone(v: string): 'good' | 'neutral' | 'bad' {
  if (v === 'ok' || v === 'up' || v === 'healthy') return 'good';
  if (v === 'disabled' || v === 'unknown' || v === '—') return 'neutral';
  return 'bad';
}

function pill(label: string, value: string, t = tone(value)): HTMLElement {
  return h('div', { class: `pill ${t}`, 'data-metric': label.toLowerCase().replace(/\s+/g, '-') }, h('span', { class: 'pill-label' }, label), h('span', { class: 'pill-value' }, value));
}

function num(v: number | null): string {
  return v === null ? '—' : String(Math.round(v));
}

export function renderSummary(el: HTMLElement, s: HealthSnapshot | null): void {
  if (!s) {
    render(el, pill('API', 'checking…', 'neutral'));
    return;
  }
  const oldest = s.oldestAgeSec;
  render(
    el,
    pill('API', s.status === 'ok' ? 'ok' : s.status),
    pill('Database', s.database),
    pill('Redis', s.redis),
    pill('Queue depth', num(s.queueDepth), s.queueDepth === null ? 'neutral' : s.queueDepth > 1000 ? 'bad' : 'good'),
    pill('Oldest job', seconds(oldest), oldest === null ? 'neutral' : oldest > 60 ? 'bad' : 'good'),
    pill('Jobs leased', num(s.leased), 'neutral'),
  );
}

export function summaryStrip(ctx: Ctx): { el: HTMLElement; stop(): void } {
  const el = h('section', { class: 'summary', 'aria-label': 'System health' });
  renderSummary(el, ctx.health.last);
  const stop = ctx.health.watch((s) => renderSummary(el, s));
  return { el, stop };
}
