/**
 * #/overview — health of database, Redis and workers, events by status (from /metrics), and
 * the throughput chart at full size.
 */
import { h, render } from '../lib/dom.js';
import { dateTime, seconds } from '../lib/format.js';
import { STATUSES } from '../live/events.js';
import type { HealthSnapshot } from '../live/health.js';
import { throughputChart } from './chart.js';
import type { View } from './context.js';
import { renderSummary } from './summary.js';

export const overviewView: View = (ctx, root) => {
  const strip = h('section', { class: 'summary large', 'aria-label': 'System health' });
  const details = h('div', { class: 'cards' });
  const chart = throughputChart(ctx.throughput, { height: 220 });
  root.append(h('h1', {}, 'Overview'), strip, chart.el, details);

  const show = (s: HealthSnapshot) => {
    renderSummary(strip, s);
    const counts = STATUSES.map((st) => h('tr', {}, h('th', { scope: 'row' }, h('span', { class: `badge st-${st}` }, st)), h('td', { class: 'num' }, s.eventsByStatus[st] === undefined ? '—' : String(s.eventsByStatus[st]))));
    render(
      details,
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Events by status'),
        s.metricsAvailable ? h('table', { class: 'kv' }, h('tbody', {}, ...counts)) : h('p', { class: 'muted' }, metricsMissing(s)),
      ),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Workers'),
        h(
          'table',
          { class: 'kv' },
          h(
            'tbody',
            {},
            kv('Jobs ready (queue depth)', s.queueDepth === null ? '—' : String(s.queueDepth)),
            kv('Oldest ready job', seconds(s.oldestAgeSec)),
            kv('Jobs leased (running)', s.leased === null ? '—' : String(s.leased)),
          ),
        ),
      ),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Server'),
        h(
          'table',
          { class: 'kv' },
          h(
            'tbody',
            {},
            kv('Status', s.status),
            kv('Database', s.database),
            kv('Redis', s.redis),
            kv('Version', s.version ?? '—'),
            kv('Live updates', ctx.feed.mode === 'polling' ? "your own events live; others' polled every 2 s" : 'starting'),
            kv('Checked', dateTime(new Date(s.at).toISOString())),
          ),
        ),
      ),
    );
  };
  const stop = ctx.health.watch(show);
  return () => {
    stop();
    chart.stop();
  };
};

/** Why there are no counts: the server is down, or it answers but serves no /metrics here. */
function metricsMissing(s: HealthSnapshot): string {
  return s.status === 'unreachable' ? 'The server is unreachable: no figures until it answers again.' : '/metrics is not served on this listener.';
}

function kv(k: string, v: string): HTMLElement {
  return h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v));
}
