/**
 * #/admin/keys/{principal} — a principal's API keys: list, create (the key is shown once, with
 * a copy button, and never again), revoke. The new key lives only in this view's DOM: leaving
 * the page drops it.
 */
import { describeError, enc, listOf } from '../lib/api.js';
import { button, errorBox, field, h, render } from '../lib/dom.js';
import { dateTime } from '../lib/format.js';
import { navigate } from '../lib/router.js';
import type { PrincipalJson } from './admin-principals.js';
import type { View } from './context.js';

interface KeyJson {
  key_id?: string;
  id?: string;
  prefix?: string;
  created_at?: string;
  expires_at?: string | null;
  revoked_at?: string | null;
  last_used_at?: string | null;
}

export const keysView: View = (ctx, root, params) => {
  const principal = params[0] ?? '';
  const err = errorBox();
  const pick = h('select', { name: 'principal' }, h('option', { value: '' }, 'Choose…'));
  pick.addEventListener('change', () => pick.value && navigate('admin', 'keys', pick.value));
  root.append(h('h1', {}, 'API keys'), err.el, h('form', { class: 'filters', onsubmit: ((e: Event) => e.preventDefault()) as EventListener }, field('Principal', pick)));

  void ctx.api
    // The picker offers the first thousand; any other id can be opened by its URL.
    .get('/api/admin/principals', { query: { limit: 1000 } })
    .then((b) => {
      const ids = listOf<PrincipalJson>(b).map((p) => p.id);
      if (principal && !ids.includes(principal)) ids.push(principal);
      pick.append(...ids.map((id) => h('option', { value: id }, id)));
      pick.value = principal;
    })
    .catch((e) => err.show(describeError(e)));

  if (!principal) {
    root.append(h('p', { class: 'muted' }, 'Choose a principal to list and manage its keys.'));
    return;
  }

  const reveal = h('section', { class: 'card reveal', hidden: true, 'aria-live': 'polite', 'aria-label': 'New key' });
  const body = h('tbody');
  const expires = h('input', { type: 'datetime-local', name: 'expires_at' });

  async function create() {
    err.show(null);
    try {
      const at = expires.value ? new Date(expires.value).toISOString() : undefined;
      const res = await ctx.api.post<{ key_id: string; key: string }>(`/api/admin/principals/${enc(principal)}/keys`, at ? { expires_at: at } : {});
      showKey(res.key, res.key_id);
      await load();
    } catch (e) {
      err.show(describeError(e));
    }
  }

  function showKey(key: string, keyId: string) {
    const out = h('input', { type: 'text', readonly: true, value: key, class: 'mono key-out', 'aria-label': 'New API key', spellcheck: 'false' });
    const copied = h('span', { class: 'muted', 'aria-live': 'polite' });
    const copy = button('Copy', async () => {
      try {
        await navigator.clipboard.writeText(key);
      } catch {
        // Clipboard API needs a secure context; fall back to a selection the user can copy.
        out.select();
        document.execCommand?.('copy');
      }
      copied.textContent = 'Copied.';
    });
    render(
      reveal,
      h('h2', {}, 'New key ', h('span', { class: 'mono' }, keyId)),
      h('p', {}, h('strong', {}, 'Copy it now: it is shown only once.'), ' Only its hash is stored.'),
      h('div', { class: 'copy-row' }, out, copy, copied),
      button('Done', () => {
        render(reveal);
        reveal.hidden = true;
      }, { class: 'secondary' }),
    );
    reveal.hidden = false;
    out.focus();
    out.select();
  }

  async function revoke(id: string, btn: HTMLButtonElement) {
    btn.disabled = true;
    err.show(null);
    try {
      await ctx.api.del(`/api/admin/keys/${enc(id)}`);
      ctx.say(`Key ${id} revoked`);
      await load();
    } catch (e) {
      btn.disabled = false;
      err.show(describeError(e));
    }
  }

  async function load() {
    try {
      const keys = listOf<KeyJson>(await ctx.api.get(`/api/admin/principals/${enc(principal)}/keys`));
      render(
        body,
        ...keys.map((k) => {
          const id = k.key_id ?? k.id ?? '';
          const state = k.revoked_at ? 'revoked' : k.expires_at && Date.parse(k.expires_at) < Date.now() ? 'expired' : 'active';
          const b: HTMLButtonElement | null = state === 'active' ? button('Revoke', () => void revoke(id, b!), { class: 'small danger', 'aria-label': `Revoke key ${id}` }) : null;
          return h(
            'tr',
            { 'data-id': id },
            h('td', { class: 'mono' }, id),
            h('td', { class: 'mono' }, k.prefix ? `${k.prefix}…` : '—'),
            h('td', {}, dateTime(k.created_at)),
            h('td', {}, k.expires_at ? dateTime(k.expires_at) : 'never'),
            h('td', {}, dateTime(k.last_used_at)),
            h('td', {}, state),
            h('td', {}, b),
          );
        }),
      );
      if (!keys.length) body.append(h('tr', {}, h('td', { colspan: 7 }, 'No keys.')));
    } catch (e) {
      err.show(describeError(e));
    }
  }

  root.append(
    h('h2', {}, 'Keys of ', h('span', { class: 'mono' }, principal)),
    reveal,
    h(
      'form',
      { class: 'filters', 'aria-label': 'Create a key', onsubmit: ((e: Event) => (e.preventDefault(), void create())) as EventListener },
      field('Expires (optional)', expires),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create key')),
    ),
    h(
      'div',
      { class: 'table-wrap' },
      h('table', { class: 'admin' }, h('caption', { class: 'sr-only' }, `Keys of ${principal}`), h('thead', {}, h('tr', {}, ...['Key id', 'Prefix', 'Created', 'Expires', 'Last used', 'State', ''].map((t) => h('th', { scope: 'col' }, t)))), body),
    ),
  );
  void load();
};
