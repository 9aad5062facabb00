/**
 * #/admin/principals — list principals, create one, edit its role, extra and revoked
 * permissions, or disable it (POST/GET/PATCH /api/admin/principals).
 */
import { describeError, enc, listOf } from '../lib/api.js';
import { button, errorBox, field, h, render } from '../lib/dom.js';
import { splitList } from '../lib/format.js';
import { href } from '../lib/router.js';
import { loadRoleNames } from './admin-roles.js';
import type { Ctx, View } from './context.js';

export interface PrincipalJson {
  id: string;
  kind: string;
  role: string;
  extra_permissions?: string[];
  revoked_permissions?: string[];
  disabled?: boolean;
}

export const principalsView: View = (ctx, root) => {
  const err = errorBox();
  const body = h('tbody');
  const editor = h('section', { class: 'card', hidden: true, 'aria-label': 'Edit principal' });
  const roles = h('datalist', { id: 'role-names' });
  root.append(h('h1', {}, 'Principals'), err.el, createForm(ctx, err, () => void load()), roles, editor, h('div', { class: 'table-wrap' }, h('table', { class: 'admin' }, h('caption', { class: 'sr-only' }, 'Principals'), h('thead', {}, h('tr', {}, ...['Id', 'Kind', 'Role', 'Extra permissions', 'Revoked permissions', 'State', ''].map((t) => h('th', { scope: 'col' }, t)))), body)));

  // A page at a time in id order; "Load more" appends the next one.
  let cursor: string | null = null;
  const more = button('Load more', () => void load(true), { class: 'secondary', hidden: true });
  root.append(h('div', { class: 'below' }, more));

  const row = (p: PrincipalJson) =>
    h(
      'tr',
      { 'data-id': p.id },
      h('td', { class: 'mono' }, p.id),
      h('td', {}, p.kind),
      h('td', {}, p.role),
      h('td', { class: 'mono wrap' }, (p.extra_permissions ?? []).join(', ')),
      h('td', { class: 'mono wrap' }, (p.revoked_permissions ?? []).join(', ')),
      h('td', {}, p.disabled ? 'disabled' : 'active'),
      h('td', { class: 'row-actions' }, button('Edit', () => edit(p), { class: 'small secondary', 'aria-label': `Edit ${p.id}` }), h('a', { href: href('admin', 'keys', p.id), class: 'small' }, 'Keys')),
    );

  async function load(next = false) {
    try {
      const page = await ctx.api.get<{ next_cursor?: string | null }>('/api/admin/principals', { query: { cursor: next ? cursor : undefined } });
      const list = listOf<PrincipalJson>(page);
      if (next) body.append(...list.map(row));
      else render(body, ...list.map(row));
      cursor = page?.next_cursor ?? null;
      more.hidden = !cursor;
      if (!next && !list.length) body.append(h('tr', {}, h('td', { colspan: 7 }, 'No principals.')));
    } catch (e) {
      err.show(describeError(e));
    }
  }

  function edit(p: PrincipalJson) {
    const role = h('input', { type: 'text', value: p.role, list: 'role-names', required: true, autocomplete: 'off' });
    const extra = h('textarea', { rows: 2, spellcheck: 'false' }, (p.extra_permissions ?? []).join('\n'));
    const revoked = h('textarea', { rows: 2, spellcheck: 'false' }, (p.revoked_permissions ?? []).join('\n'));
    const disabled = h('input', { type: 'checkbox', checked: !!p.disabled });
    const form = h(
      'form',
      {
        class: 'stack',
        onsubmit: (async (e: Event) => {
          e.preventDefault();
          try {
            await ctx.api.patch(`/api/admin/principals/${enc(p.id)}`, { role: role.value.trim(), extra_permissions: splitList(extra.value), revoked_permissions: splitList(revoked.value), disabled: disabled.checked });
            ctx.say(`Principal ${p.id} saved`);
            editor.hidden = true;
            await load();
          } catch (ex) {
            err.show(describeError(ex));
          }
        }) as EventListener,
      },
      field('Role', role),
      field('Extra permissions', extra, 'One per line, e.g. events.post.event_ingest_on_behalf'),
      field('Revoked permissions', revoked, 'Revoked always wins over the role and extra permissions'),
      h('div', { class: 'check' }, disabled, h('label', { for: (disabled.id = `dis-${p.id}`) }, 'Disabled (its keys stop working)')),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save'), button('Cancel', () => (editor.hidden = true), { class: 'secondary' })),
    );
    render(editor, h('h2', {}, 'Edit ', h('span', { class: 'mono' }, p.id)), form);
    editor.hidden = false;
    role.focus();
  }

  void loadRoleNames(ctx).then((names) => roles.replaceChildren(...names.map((n) => h('option', { value: n }))));
  void load();
};

function createForm(ctx: Ctx, err: { show(m: string | null): void }, done: () => void): HTMLElement {
  const id = h('input', { type: 'text', name: 'id', placeholder: 'payments or u_42', required: true, autocomplete: 'off', spellcheck: 'false' });
  const kind = h('select', { name: 'kind' }, h('option', { value: 'service' }, 'service'), h('option', { value: 'user' }, 'user'));
  const role = h('input', { type: 'text', name: 'role', placeholder: 'same as kind', list: 'role-names', autocomplete: 'off' });
  const extra = h('input', { type: 'text', name: 'extra', placeholder: 'comma-separated', autocomplete: 'off', spellcheck: 'false' });
  return h(
    'details',
    { class: 'card' },
    h('summary', {}, 'Create a principal'),
    h(
      'form',
      {
        class: 'filters',
        onsubmit: (async (e: Event) => {
          e.preventDefault();
          err.show(null);
          try {
            const extraList = splitList(extra.value);
            await ctx.api.post('/api/admin/principals', { id: id.value.trim(), kind: kind.value, role: role.value.trim() || kind.value, ...(extraList.length ? { extra_permissions: extraList } : {}) });
            ctx.say(`Principal ${id.value.trim()} created`);
            id.value = '';
            extra.value = '';
            done();
          } catch (ex) {
            err.show(describeError(ex));
          }
        }) as EventListener,
      },
      field('Id', id),
      field('Kind', kind),
      field('Role', role),
      field('Extra permissions', extra),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create')),
    ),
  );
}
