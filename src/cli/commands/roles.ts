import type { Command } from 'commander';
import { request } from '../admin-client.js';
import { output, printTable } from '../output.js';
import { enc, target, withTarget, type CommonOpts } from './common.js';

interface RoleJson {
  name: string;
  permissions: string[];
  builtin?: boolean;
}

export function registerRoles(program: Command): void {
  const roles = program.command('roles').description('manage roles and their permission policies');

  withTarget(roles.command('show [name]').description('show one role, or list all')).action(async (name: string | undefined, opts: CommonOpts) => {
    if (name) {
      const res = await request<RoleJson>(target(opts), 'GET', `/api/admin/roles/${enc(name)}`);
      output(opts.json, res.body, () => printTable([res.body as unknown as Record<string, unknown>], ['name', 'permissions']));
    } else {
      const res = await request<{ data: RoleJson[] }>(target(opts), 'GET', '/api/admin/roles');
      output(opts.json, res.body, () => printTable(res.body.data as unknown as Record<string, unknown>[], ['name', 'permissions', 'builtin']));
    }
  });

  withTarget(
    roles.command('set <name> <permissions...>').description('create or replace a role, e.g. `tem roles set auditor events.get.*`'),
  ).action(async (name: string, permissions: string[], opts: CommonOpts) => {
    const res = await request<RoleJson>(target(opts), 'PUT', `/api/admin/roles/${enc(name)}`, { permissions });
    output(opts.json, res.body, () => printTable([res.body as unknown as Record<string, unknown>], ['name', 'permissions']));
  });
}
