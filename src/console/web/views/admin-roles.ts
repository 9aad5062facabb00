/**
 * #/admin/roles/{name} — view and edit a role's permission policy as JSON
 * (GET/PUT /api/admin/roles/{name}). The list comes from GET /api/admin/roles when the server
 * offers it, else from the built-in roles plus those the principals use.
 */
import { describeError, enc, listOf } from '../lib/api.js';
import { button, errorBox, field, h, render } from '../lib/dom.js';
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
  // Disabled until the role is read: saving what did not load would replace its permissions.
  const save = h('button', { type: 'submit', disabled: true }, 'Save');
  const reload = button('Reload', () => void read(), { class: 'secondary', hidden: true });
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
      h('div', { class: 'actions' }, save, reload),
      status,
    ),
  );

  async function read() {
    save.disabled = true;
    reload.hidden = true;
    err.show(null);
    status.textContent = 'Loading…';
    try {
      const r = await ctx.api.get<{ permissions?: string[]; builtin?: boolean }>(`/api/admin/roles/${enc(current)}`);
      text.value = json(r.permissions ?? []);
      status.textContent = r.builtin ? 'A built-in role: it may be edited.' : '';
    } catch (e) {
      if ((e as { status?: number }).status !== 404) {
        // Not known to be empty: only a role that does not exist starts from [].
        status.textContent = '';
        err.show(`Could not read role ${current}: ${describeError(e)}. Saving is off until it is read.`);
        reload.hidden = false;
        return;
      }
      text.value = '[]';
      status.textContent = 'A new role: save to create it.';
    }
    save.disabled = false;
  }
  void read();
};
