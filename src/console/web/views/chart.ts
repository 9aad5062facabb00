/**
 * The throughput chart: events per second by status over the last minutes, drawn as inline SVG
 * lines (no chart library). Redrawn once a second while mounted. The figure caption repeats the
 * current rates as text, for screen readers and for anyone who cannot tell the colours apart.
 */
import { h, render, svg } from '../lib/dom.js';
import { rate } from '../lib/format.js';
import type { Throughput } from '../live/throughput.js';

const W = 640;
const PAD = { left: 36, right: 8, top: 8, bottom: 20 };

export function throughputChart(tp: Throughput, opts: { height?: number; title?: string } = {}): { el: HTMLElement; stop(): void } {
  const H = opts.height ?? 180;
  const chart = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart',
    role: 'img',
  });
  const legend = h('ul', { class: 'legend' });
  const caption = h('figcaption', {}, h('span', { class: 'fig-title' }, opts.title ?? 'Throughput (events/s, last 5 min)'), legend);
  const el = h('figure', { class: 'throughput' }, caption, chart);

  const draw = () => {
    const { series, step } = tp.series(5);
    const max = niceMax(Math.max(0.2, ...series.flatMap((s) => s.points)));
    const n = series[0]?.points.length ?? 1;
    const x = (i: number) => PAD.left + (i / Math.max(1, n - 1)) * (W - PAD.left - PAD.right);
    const y = (v: number) => PAD.top + (1 - v / max) * (H - PAD.top - PAD.bottom);
    const nodes: SVGElement[] = [];
    for (const f of [0, 0.5, 1]) {
      const yy = y(max * f);
      nodes.push(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: yy, y2: yy, class: 'grid' }));
      nodes.push(svg('text', { x: PAD.left - 4, y: yy + 4, class: 'axis', 'text-anchor': 'end' }, rate(max * f)));
    }
    const span = (n * step) / 60;
    nodes.push(svg('text', { x: PAD.left, y: H - 4, class: 'axis' }, `−${span} min`));
    nodes.push(svg('text', { x: W - PAD.right, y: H - 4, class: 'axis', 'text-anchor': 'end' }, 'now'));
    for (const s of series) {
      const pts = s.points.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      nodes.push(svg('polyline', { points: pts, class: `line st-${s.status}`, fill: 'none' }));
    }
    render(chart, ...nodes);
    const now = series.map((s) => ({ status: s.status, r: tp.recent(s.status, 10) }));
    chart.setAttribute('aria-label', `Events per second over the last 10 s: ${now.map((s) => `${s.status} ${rate(s.r)}`).join(', ')}`);
    render(
      legend,
      ...now.map((s) =>
        h('li', { 'data-status': s.status }, h('span', { class: `swatch st-${s.status}`, 'aria-hidden': 'true' }), `${s.status} `, h('b', {}, rate(s.r)), '/s'),
      ),
    );
  };
  draw();
  const timer = setInterval(draw, 1000);
  return { el, stop: () => clearInterval(timer) };
}

function niceMax(v: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
