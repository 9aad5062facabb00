/**
 * #/failed — the dead-letter set: failed events, filterable by type and user, with Retry for
 * one (POST /api/events/{id}/retry) or for all that match (POST /api/events/retry). Retried rows
 * stay in the table, showing their new status live, until the next refresh.
 */
import { describeError, enc, listOf } from '../lib/api.js';
import { button, errorBox, field, h } from '../lib/dom.js';
import type { EventRow } from '../live/events.js';
import { HeldRows } from '../live/held-rows.js';
import type { View } from './context.js';
import { EventTable } from './event-table.js';

/** Most failed events the view lists at once. */
const MAX_LISTED = 2000;

export const failedView: View = (ctx, root) => {
  const err = errorBox();
  const typeIn = h('input', { type: 'text', name: 'type', placeholder: 'any', autocomplete: 'off', spellcheck: 'false' });
  const userIn = h('input', { type: 'text', name: 'user', placeholder: 'any', autocomplete: 'off', spellcheck: 'false' });
  const crit = () => ({ type: typeIn.value.trim(), user: userIn.value.trim() });
  /**
   * Ids listed by the last load, plus events that failed since: the table's membership, kept in
   * the store however many newer events it sees, and no more than the table lists.
   */
  const members = new HeldRows(ctx.store, MAX_LISTED);
  const inSet = (r: EventRow) => {
    const c = crit();
    return members.has(r.id) && (!c.type || r.type === c.type) && (!c.user || r.user_id === c.user);
  };

  const retryOne = async (row: EventRow, btn: HTMLButtonElement) => {
    btn.disabled = true;
    err.show(null);
    try {
      const res = await ctx.api.post<Record<string, unknown>>(`/api/events/${enc(row.id)}/retry`);
      // Without a version the answer could be older than a live update already applied.
      const versioned = res && (res.version !== undefined || res.updated_at !== undefined);
      if (versioned) ctx.store.upsert({ ...res, id: row.id });
      else if (ctx.store.get(row.id)?.status === 'failed') ctx.store.upsert({ id: row.id, status: (res?.status as string) ?? 'queued' });
      ctx.say(`Event ${row.id} requeued`);
    } catch (e) {
      btn.disabled = false;
      err.show(`Retry failed: ${describeError(e)}`);
    }
  };
  const table = new EventTable({ caption: 'Failed events', onRetry: (r, b) => void retryOne(r, b), keepOnMismatch: true, emptyText: 'No failed events. ', limit: MAX_LISTED }, inSet);

  const summary = h('p', { class: 'muted', 'aria-live': 'polite' });
  async function load() {
    err.show(null);
    const c = crit();
    let more = false;
    try {
      members.clear();
      // Page through the set (up to MAX_LISTED): a bigger set is said to be bigger, not cut silently.
      let cursor: string | undefined;
      do {
        const body = await ctx.api.get<{ next_cursor?: string | null }>('/api/events', { query: { status: 'failed', type: c.type || undefined, user_id: c.user || undefined, limit: 1000, cursor } });
        for (const e of listOf<Record<string, unknown>>(body)) {
          // Held first: merged into a full store, an older row would be evicted at once.
          members.add(e);
          ctx.store.upsert(e);
        }
        cursor = (body && typeof body === 'object' ? body.next_cursor : null) ?? undefined;
      } while (cursor && members.size < MAX_LISTED);
      more = cursor !== undefined;
    } catch (e) {
      err.show(`Could not load failed events: ${describeError(e)}`);
    }
    table.setRows(ctx.store.list());
    summary.textContent = more
      ? `The first ${table.size} failed events are listed; there are more: narrow the filters to see them (Retry all matching covers them all).`
      : `${table.size} failed event${table.size === 1 ? '' : 's'} listed.`;
  }

  const confirmBox = h('div', { class: 'confirm', hidden: true, role: 'group', 'aria-label': 'Confirm retry of all matching' });
  const retryAll = button('Retry all matching…', () => {
    const c = crit();
    const what = [c.type && `type ${c.type}`, c.user && `user ${c.user}`].filter(Boolean).join(', ') || 'every failed event';
    confirmBox.replaceChildren(
      h('span', {}, `Requeue ${what}?`),
      // What the prompt names, not what the filters say by the time it is answered.
      button('Yes, retry', () => void doRetryAll(c), { class: 'danger' }),
      button('Cancel', () => {
        confirmBox.hidden = true;
        retryAll.focus();
      }, { class: 'secondary' }),
    );
    confirmBox.hidden = false;
    (confirmBox.querySelector('button') as HTMLButtonElement).focus();
  });
  async function doRetryAll(c: ReturnType<typeof crit>) {
    confirmBox.hidden = true;
    err.show(null);
    try {
      const body = { status: 'failed', ...(c.type ? { type: c.type } : {}), ...(c.user ? { user_id: c.user } : {}) };
      // The API answers a page at a time: {retried: [ids], count, has_more, next_cursor}.
      let n = 0;
      for (let cursor: unknown = null; ; ) {
        const res = await ctx.api.post<Record<string, unknown>>('/api/events/retry', cursor === null ? body : { ...body, cursor });
        n += typeof res?.count === 'number' ? res.count : 0;
        cursor = res?.has_more === true && typeof res.next_cursor === 'string' ? res.next_cursor : null;
        if (cursor === null) break;
      }
      ctx.say(`${String(n)} events requeued`);
      summary.textContent = `${String(n)} events requeued.`;
    } catch (e) {
      err.show(`Retry failed: ${describeError(e)}`);
    }
    retryAll.focus();
  }

  let debounce: ReturnType<typeof setTimeout> | undefined;
  const onFilter = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void load(), 300);
  };
  typeIn.addEventListener('input', onFilter);
  userIn.addEventListener('input', onFilter);

  root.append(
    h('h1', {}, 'Failed events'),
    h('p', { class: 'muted' }, 'Events whose attempts ran out or that failed without retry. Retrying moves them back to queued.'),
    h(
      'form',
      { class: 'filters', role: 'search', 'aria-label': 'Filter failed events', onsubmit: ((e: Event) => (e.preventDefault(), void load())) as EventListener },
      field('Type', typeIn),
      field('User', userIn),
      h('div', { class: 'actions' }, button('Refresh', () => void load(), { class: 'secondary' }), retryAll),
    ),
    confirmBox,
    err.el,
    summary,
    h('div', { class: 'table-wrap' }, table.el),
  );

  // Newly failed events join the set live; retried ones stay, showing their new status.
  const off = ctx.store.on((row) => {
    if (row.status === 'failed') members.add(row);
    table.update(row, false);
  });
  void load();
  return () => {
    off();
    table.close();
    members.close();
    clearTimeout(debounce);
  };
};
