/**
 * A table of events whose rows change in place as updates arrive. Each row keeps its element;
 * an update rewrites cell text and flashes the row's background (no size change), and the table
 * uses a fixed layout with fixed row heights, so rows updating never move anything on screen.
 * Updates are applied once per animation frame, all that came since together, so a burst costs
 * one style and layout pass rather than one per row.
 */
import { button, h, render, statusBadge } from '../lib/dom.js';
import { time } from '../lib/format.js';
import { href } from '../lib/router.js';
import { newestFirstIndex, type EventRow, type SortKey } from '../live/events.js';

export interface EventTableOptions {
  caption: string;
  /** Adds a Retry button to failed rows. */
  onRetry?: (row: EventRow, btn: HTMLButtonElement) => void;
  /** Rows that stop matching stay (marked) instead of being removed. */
  keepOnMismatch?: boolean;
  limit?: number;
  emptyText?: string;
  /** Called after each batch of updates is applied (size and truncated may have changed). */
  onChange?: () => void;
}

export class EventTable {
  readonly el: HTMLTableElement;
  private readonly body: HTMLTableSectionElement;
  private readonly trs = new Map<string, HTMLTableRowElement>();
  /** Each row's place in the newest-first order. */
  private readonly keys = new WeakMap<HTMLTableRowElement, SortKey>();
  private readonly queued = new Map<string, { row: EventRow; isNew: boolean }>();
  private frame: number | null = null;
  private closed = false;
  private readonly empty: HTMLTableRowElement;
  private limit: number;
  private cut = false;

  constructor(
    private readonly opts: EventTableOptions,
    private readonly filter: (r: EventRow) => boolean,
  ) {
    this.limit = opts.limit ?? 200;
    this.body = h('tbody');
    this.empty = h('tr', { class: 'empty' }, h('td', { colspan: 7 }, opts.emptyText ?? 'No events yet.'));
    this.el = h(
      'table',
      { class: 'events' },
      h('caption', { class: 'sr-only' }, opts.caption),
      h(
        'colgroup',
        {},
        h('col', { class: 'c-time' }),
        h('col', { class: 'c-type' }),
        h('col', { class: 'c-user' }),
        h('col', { class: 'c-status' }),
        h('col', { class: 'c-attempts' }),
        h('col', { class: 'c-id' }),
        h('col', { class: 'c-actions' }),
      ),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Created'),
          h('th', { scope: 'col' }, 'Type'),
          h('th', { scope: 'col' }, 'User'),
          h('th', { scope: 'col' }, 'Status'),
          h('th', { scope: 'col', class: 'num' }, 'Attempts'),
          h('th', { scope: 'col' }, 'Event'),
          h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')),
        ),
      ),
      this.body,
    );
    this.body.append(this.empty);
  }

  get size(): number {
    return this.trs.size;
  }

  has(id: string): boolean {
    return this.trs.has(id);
  }

  /** Whether matching rows were left out (past the limit): there is more to show. */
  get truncated(): boolean {
    return this.cut;
  }

  /** Shows `n` more rows from the next setRows on (Load older). */
  showMore(n: number): void {
    this.limit += n;
  }

  setRows(rows: EventRow[]): void {
    // The rows given are current: what was queued is in them already.
    this.queued.clear();
    this.trs.clear();
    const matching = rows.filter(this.filter);
    this.cut = matching.length > this.limit;
    const shown = matching.slice(0, this.limit);
    render(this.body, ...shown.map((r) => this.rowFor(r)));
    if (shown.length === 0) this.body.append(this.empty);
  }

  /** Queues one change for the next animation frame. */
  update(row: EventRow, isNew: boolean): void {
    if (this.closed) return;
    this.queued.set(row.id, { row, isNew: isNew || !!this.queued.get(row.id)?.isNew });
    this.frame ??= requestAnimationFrame(() => {
      this.frame = null;
      const batch = [...this.queued.values()];
      this.queued.clear();
      for (const u of batch) this.apply(u.row, u.isNew);
      this.opts.onChange?.();
    });
  }

  /** Rewrites an existing row, or inserts a new matching one where it belongs, newest first. */
  private apply(row: EventRow, isNew: boolean): void {
    const tr = this.trs.get(row.id);
    const ok = this.filter(row);
    if (tr) {
      if (!ok && !this.opts.keepOnMismatch) {
        tr.remove();
        this.trs.delete(row.id);
        if (this.trs.size === 0) this.body.append(this.empty);
        return;
      }
      this.fill(tr, row);
      tr.classList.toggle('mismatch', !ok);
      flash(tr);
      return;
    }
    if (!ok) return;
    this.empty.remove();
    const fresh = this.rowFor(row);
    // A polled page comes newest first: each row goes below the one before it, not on top.
    const rows = this.body.children;
    const at = newestFirstIndex(rows.length, (i) => this.keys.get(rows[i] as HTMLTableRowElement) ?? row, row);
    this.body.insertBefore(fresh, rows[at] ?? null);
    if (isNew) flash(fresh);
    while (this.trs.size > this.limit) {
      const last = this.body.lastElementChild as HTMLTableRowElement | null;
      if (!last?.dataset.id) break;
      this.cut = true;
      this.trs.delete(last.dataset.id);
      last.remove();
    }
  }

  /** The view is gone: a change still queued for the next frame is dropped, not applied to a detached table. */
  close(): void {
    this.closed = true;
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
    this.queued.clear();
  }

  private rowFor(r: EventRow): HTMLTableRowElement {
    const tr = h('tr', { 'data-id': r.id });
    for (let i = 0; i < 7; i++) tr.append(h('td'));
    const cells = tr.children;
    cells[4]!.className = 'num';
    // Event ids are UUIDv7: the leading characters are a timestamp shared by neighbours, so
    // the random tail is what tells rows apart.
    cells[5]!.append(h('a', { href: href('events', r.id), class: 'mono', title: r.id, 'aria-label': `Event ${r.id}` }, `…${r.id.slice(-8)}`));
    this.trs.set(r.id, tr);
    this.keys.set(tr, { id: r.id, created_at: r.created_at });
    this.fill(tr, r);
    return tr;
  }

  private fill(tr: HTMLTableRowElement, r: EventRow): void {
    const c = tr.children;
    tr.dataset.status = r.status;
    setText(c[0] as HTMLElement, time(r.created_at), r.created_at ?? '');
    setText(c[1] as HTMLElement, r.type, r.type);
    setText(c[2] as HTMLElement, r.user_id, r.user_id);
    const statusCell = c[3] as HTMLElement;
    const badge = statusCell.firstElementChild as HTMLElement | null;
    if (badge?.dataset.status !== r.status) {
      render(statusCell, statusBadge(r.status));
      statusCell.title = r.last_error ? `${r.status}: ${r.last_error}` : r.status;
    }
    setText(c[4] as HTMLElement, String(r.attempts), '');
    const actions = c[6] as HTMLElement;
    const wantsRetry = !!this.opts.onRetry && r.status === 'failed';
    const hasRetry = actions.querySelector('button') !== null;
    if (wantsRetry && !hasRetry) {
      const onRetry = this.opts.onRetry!;
      const b = button('Retry', () => onRetry(r, b), { class: 'small', 'aria-label': `Retry event ${r.id}` });
      render(actions, b);
    } else if (!wantsRetry && hasRetry) {
      render(actions);
    }
  }
}

function setText(td: HTMLElement, text: string, title: string): void {
  if (td.textContent !== text) td.textContent = text;
  if (title && td.title !== title) td.title = title;
}

const flashes = new WeakMap<HTMLElement, Animation>();
let reducedMotion: MediaQueryList | undefined;

/** Fades the row's background from the flash colour; a running flash starts over. */
function flash(tr: HTMLElement): void {
  reducedMotion ??= matchMedia('(prefers-reduced-motion: reduce)');
  if (reducedMotion.matches) return;
  flashes.get(tr)?.cancel();
  // The Web Animations API restarts it without the forced layout a CSS class toggle needs.
  flashes.set(tr, tr.animate([{ backgroundColor: 'var(--flash)' }, { backgroundColor: 'transparent' }], { duration: 1200, easing: 'ease-out' }));
}
