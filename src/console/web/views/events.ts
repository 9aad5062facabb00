/**
 * #/events — the live event stream: health strip, throughput chart, filters and a table whose
 * rows change status in place. "Pause" stops new rows from being inserted (existing rows keep
 * updating) so a busy stream can be read.
 */
import { describeError } from '../lib/api.js';
import { button, errorBox, field, h } from '../lib/dom.js';
import { STATUSES } from '../live/events.js';
import { HeldRows } from '../live/held-rows.js';
import { throughputChart } from './chart.js';
import { matches, type View } from './context.js';
import { EventTable } from './event-table.js';
import { summaryStrip } from './summary.js';

/** Rows one click on Load older adds. */
const OLDER_PAGE = 100;

export const eventsView: View = (ctx, root) => {
  const f = ctx.filters;
  const err = errorBox();
  const typeIn = h('input', { type: 'text', name: 'type', value: f.type, placeholder: 'any', autocomplete: 'off', spellcheck: 'false', list: 'seen-types' });
  const userIn = h('input', { type: 'text', name: 'user', value: f.user, placeholder: 'any', autocomplete: 'off', spellcheck: 'false' });
  const statusIn = h('select', { name: 'status' }, h('option', { value: '' }, 'any'), ...STATUSES.map((s) => h('option', { value: s }, s)));
  statusIn.value = f.status;
  const types = h('datalist', { id: 'seen-types' });

  const onChange = () => {
    // A row pushed out at the bottom can be brought back with Load older.
    if (table.truncated) more.hidden = false;
    showCount();
  };
  const table = new EventTable({ caption: 'Events, newest first', emptyText: 'No events match these filters yet.', onChange }, (r) => matches(ctx.filters, r));
  let paused = false;
  let pending = 0;
  const pauseBtn = button('Pause', () => {
    paused = !paused;
    if (!paused) {
      pending = 0;
      table.setRows(ctx.store.list());
    }
    pauseLabel();
  }, { 'aria-pressed': 'false', class: 'secondary' });
  const pauseLabel = () => {
    pauseBtn.textContent = paused ? `Resume${pending ? ` (${pending} new)` : ''}` : 'Pause';
    pauseBtn.setAttribute('aria-pressed', String(paused));
  };
  const count = h('span', { class: 'count', 'aria-live': 'off' });
  const showCount = () => (count.textContent = `${table.size} shown`);

  let cursor: string | null = null;
  /** Rows the user paged in: newer events must not push them out of the store again. */
  const older = new HeldRows(ctx.store);
  const more = button('Load older', () => void load(true), { class: 'secondary', hidden: true });
  let seq = 0;
  async function load(paging = false) {
    const mine = ++seq;
    err.show(null);
    // New filters start over: what was paged in for the old ones may go.
    if (!paging) older.clear();
    try {
      const q = { status: f.status || undefined, type: f.type || undefined, user_id: f.user || undefined };
      const next = paging ? await ctx.feed.load(q, cursor ?? undefined, older) : await ctx.feed.load(q);
      if (mine !== seq) return;
      cursor = next;
      // Only filters the server took: a refused one would fail every poll from then on. Not by
      // status: a row leaving the filtered status must still be seen to leave it.
      ctx.feed.pollQuery = { type: q.type, user_id: q.user_id };
    } catch (e) {
      err.show(`Could not load events: ${describeError(e)}`);
    }
    if (paging) table.showMore(OLDER_PAGE);
    table.setRows(ctx.store.list());
    // More on the server, or more already here than the table shows (a burst came in by polling).
    more.hidden = !cursor && !table.truncated;
    refreshTypes();
    showCount();
  }

  const refreshTypes = () => {
    const seen = new Set(ctx.store.list().map((r) => r.type));
    types.replaceChildren(...[...seen].sort().map((t) => h('option', { value: t })));
  };

  let debounce: ReturnType<typeof setTimeout> | undefined;
  const onFilter = () => {
    f.type = typeIn.value.trim();
    f.user = userIn.value.trim();
    f.status = statusIn.value;
    table.setRows(ctx.store.list());
    showCount();
    clearTimeout(debounce);
    debounce = setTimeout(() => void load(), 300);
  };
  for (const el of [typeIn, userIn]) el.addEventListener('input', onFilter);
  statusIn.addEventListener('change', onFilter);

  const strip = summaryStrip(ctx);
  const chart = throughputChart(ctx.throughput, { height: 150 });
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter events', onsubmit: ((e: Event) => e.preventDefault()) as EventListener },
    field('Type', typeIn),
    field('Status', statusIn),
    field('User', userIn),
    h('div', { class: 'actions' }, pauseBtn, count),
    types,
  );
  root.append(
    h('h1', {}, 'Events'),
    h('div', { class: 'overview-row' }, strip.el, chart.el),
    form,
    err.el,
    h('div', { class: 'table-wrap' }, table.el),
    h('div', { class: 'below' }, more),
  );

  table.setRows(ctx.store.list());
  showCount();
  void load();

  const off = ctx.store.on((row, kind) => {
    if (paused && !table.has(row.id)) {
      if (kind === 'new' && matches(f, row)) {
        pending++;
        pauseLabel();
      }
      return;
    }
    table.update(row, kind === 'new');
  });

  return () => {
    off();
    table.close();
    older.close();
    ctx.feed.pollQuery = {};
    strip.stop();
    chart.stop();
    clearTimeout(debounce);
  };
};
