/**
 * #/events/{id} — one event: its fields, payload, status history with times, attempts and the
 * last error, and Retry when it failed. Reloads when a live update for it arrives.
 */
import { describeError, enc } from '../lib/api.js';
import { button, errorBox, h, render, statusBadge } from '../lib/dom.js';
import { dateTime, json } from '../lib/format.js';
import { href } from '../lib/router.js';
import type { View } from './context.js';

type Raw = Record<string, unknown>;
const s = (v: unknown) => (v === null || v === undefined || v === '' ? '—' : String(v));

export const detailView: View = (ctx, root, params) => {
  const id = params[0] ?? '';
  const err = errorBox();
  const body = h('div', { class: 'detail', 'aria-busy': 'true' }, 'Loading…');
  const heading = h('h1', {}, 'Event ', h('span', { class: 'mono' }, id));
  root.append(h('p', {}, h('a', { href: href('events') }, '← Events')), heading, err.el, body);

  let alive = true;
  async function load() {
    try {
      const ev = await ctx.api.get<Raw>(`/api/events/${enc(id)}`);
      if (!alive) return;
      err.show(null);
      ctx.store.upsert(ev);
      show(ev);
    } catch (e) {
      if (!alive) return;
      body.setAttribute('aria-busy', 'false');
      render(body);
      err.show(describeError(e));
    }
  }

  function show(ev: Raw) {
    body.setAttribute('aria-busy', 'false');
    const status = String(ev.status ?? '');
    const retry =
      status === 'failed'
        ? button('Retry', async () => {
            retry!.disabled = true;
            try {
              await ctx.api.post(`/api/events/${enc(id)}/retry`);
              ctx.say(`Event ${id} requeued`);
              await load();
            } catch (e) {
              err.show(describeError(e));
              retry!.disabled = false;
            }
          })
        : null;
    const history = Array.isArray(ev.history) ? (ev.history as Raw[]) : [];
    const attempts = ev.max_attempts !== undefined ? `${s(ev.attempts)} of ${s(ev.max_attempts)}` : s(ev.attempts);
    render(
      body,
      h(
        'dl',
        { class: 'facts' },
        ...pair('Status', h('span', {}, statusBadge(status), ' ', retry)),
        ...pair('Type', s(ev.type)),
        ...pair('User', s(ev.user_id)),
        ...pair('Producer', s(ev.producer_id)),
        ...pair('Channel', s(ev.channel)),
        ...pair('Attempts', attempts),
        ...pair('Idempotency key', s(ev.idempotency_key)),
        ...pair('Occurred', dateTime(ev.occurred_at as string)),
        ...pair('Created', dateTime(ev.created_at as string)),
        ...pair('Updated', dateTime(ev.updated_at as string)),
        ...pair('Processed', dateTime(ev.processed_at as string)),
      ),
      ev.last_error ? h('section', { class: 'last-error' }, h('h2', {}, 'Last error'), h('pre', {}, String(ev.last_error))) : null,
      h('section', {}, h('h2', {}, 'Payload'), h('pre', { class: 'payload', tabindex: 0, 'aria-label': 'Payload JSON' }, json(ev.payload))),
      h(
        'section',
        {},
        h('h2', {}, 'Status history'),
        h(
          'table',
          { class: 'history' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'At'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col', class: 'num' }, 'Attempt'), h('th', { scope: 'col' }, 'Error'))),
          h(
            'tbody',
            {},
            ...(history.length
              ? history.map((e) =>
                  h('tr', {}, h('td', {}, dateTime(e.at as string)), h('td', {}, statusBadge(String(e.status))), h('td', { class: 'num' }, s(e.attempt)), h('td', { class: 'err' }, e.error ? String(e.error) : '')),
                )
              : [h('tr', {}, h('td', { colspan: 4 }, 'No history recorded.'))]),
          ),
        ),
      ),
    );
  }

  let debounce: ReturnType<typeof setTimeout> | undefined;
  const off = ctx.store.on((row) => {
    if (row.id !== id) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => void load(), 250);
  });
  void load();
  return () => {
    alive = false;
    off();
    clearTimeout(debounce);
  };
};

function pair(term: string, value: Node | string): HTMLElement[] {
  return [h('dt', {}, term), h('dd', {}, value)];
}
