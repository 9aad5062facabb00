/**
 * #/admin/roles/{name} — view and edit a role's permission policy as JSON
 * (GET/PUT /api/admin/roles/{name}). The list comes from GET /api/admin/roles when the server
 * offers it, else from the built-in roles plus those the principals use.
 */
import { describeError, enc, listOf } from '../lib/api.js';
import { errorBox, field, h, render } from '../lib/dom.js';
import { json } from '../lib/format.js';
import { href, navigate } from '../lib/router.js';
import type { Ctx, View } from './context.js';

const BUILTIN = ['admin', 'service', 'user'];

export async function loadRoleNames(ctx: Ctx): Promise<string[]> {
  const names = new Set(BUILTIN);
  try {
    for (const r of listOf<{ name?: string }>(await ctx.api.get('/api/admin/roles'))) if (r.name) names.add(r.name);
  } catch {
    try {
      for (const p of listOf<{ role?: string }>(await ctx.api.get('/api/admin/principals'))) if (p.role) names.add(p.role);
    } catch {
      /* built-ins only */
    }
  }
  return [...names].sort();
}

export const rolesView: View = (ctx, root, params) => {
  const current = params[0] ?? '';
  const err = errorBox();
  const nav = h('ul', { class: 'role-list' });
  const editorEl = h('section', { class: 'card', 'aria-label': 'Role policy' });
  const newName = h('input', { type: 'text', name: 'role', placeholder: 'e.g. support', required: true, pattern: '[a-z0-9][a-z0-9_\\-]{0,63}', autocomplete: 'off' });
  root.append(
    h('h1', {}, 'Roles'),
    err.el,
    h(
      'div',
      { class: 'split' },
      h(
        'nav',
        { 'aria-label': 'Roles' },
        nav,
        h(
          'form',
          {
            class: 'stack',
            onsubmit: ((e: Event) => {
              e.preventDefault();
              if (newName.value.trim()) navigate('admin', 'roles', newName.value.trim());
            }) as EventListener,
          },
          field('New role', newName),
          h('button', { type: 'submit', class: 'secondary' }, 'Add role'),
        ),
      ),
      editorEl,
    ),
  );

  void loadRoleNames(ctx).then((names) => {
    if (current && !names.includes(current)) names.push(current);
    render(nav, ...names.map((n) => h('li', {}, h('a', { href: href('admin', 'roles', n), 'aria-current': n === current ? 'page' : undefined }, n))));
  });

  if (!current) {
    editorEl.append(h('p', { class: 'muted' }, 'Choose a role to view or edit its permissions.'));
    return;
  }

  const text = h('textarea', { rows: 14, spellcheck: 'false', class: 'mono' });
  const status = h('p', { class: 'muted', 'aria-live': 'polite' });
  render(
    editorEl,
    h('h2', {}, 'Role ', h('span', { class: 'mono' }, current)),
    h(
      'form',
      {
        class: 'stack',
        onsubmit: (async (e: Event) => {
          e.preventDefault();
          err.show(null);
          let permissions: unknown;
          try {
            permissions = JSON.parse(text.value);
          } catch (ex) {
            err.show(`Not valid JSON: ${(ex as Error).message}`);
            return;
          }
          if (!Array.isArray(permissions) || !permissions.every((p) => typeof p === 'string')) {
            err.show('The policy must be a JSON array of permission strings, e.g. ["events.*", "common.*"].');
            return;
          }
          try {
            await ctx.api.put(`/api/admin/roles/${enc(current)}`, { permissions });
            status.textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
            ctx.say(`Role ${current} saved`);
          } catch (ex) {
            err.show(describeError(ex));
          }
        }) as EventListener,
      },
      field('Permissions (JSON array)', text, 'Strings <app>.<method>.<view>; * matches one segment, or the rest at the end.'),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save')),
      status,
    ),
  );

  ctx.api
    .get<{ permissions?: string[]; builtin?: boolean }>(`/api/admin/roles/${enc(current)}`)
    .then((r) => {
      text.value = json(r.permissions ?? []);
      if (r.builtin) status.textContent = 'A built-in role: it may be edited.';
    })
    .catch((e) => {
      text.value = '[]';
      status.textContent = (e as { status?: number }).status === 404 ? 'A new role: save to create it.' : describeError(e);
    });
};
