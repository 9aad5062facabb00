import { Option, type Command } from 'commander';
import { CliError, request } from '../admin-client.js';
import { output, printTable } from '../output.js';
import { enc, list, target, withTarget, type CommonOpts } from './common.js';

interface PrincipalJson {
  id: string;
  kind: string;
  role: string;
  extra_permissions: string[];
  revoked_permissions: string[];
  disabled: boolean;
}

const COLUMNS = ['id', 'kind', 'role', 'extra_permissions', 'revoked_permissions', 'disabled'];

export function registerPrincipals(program: Command): void {
  const principals = program.command('principals').description('manage principals (services and users)');

  withTarget(
    principals
      .command('create [id]')
      .description('create a principal (the id is generated when not given)')
      // No default: the kind picks the role too, and a forgotten `--kind user` must not make a
      // service (events.*, channels.*) — the API requires `kind` for the same reason.
      .addOption(new Option('--kind <kind>', 'service or user').choices(['service', 'user']).makeOptionMandatory())
      .option('--role <role>', 'role name (default: the kind)')
      .option('--extra <perms>', 'extra permissions, comma-separated', list)
      .option('--revoked <perms>', 'revoked permissions, comma-separated', list),
  ).action(async (id: string | undefined, opts: CommonOpts & { kind: string; role?: string; extra?: string[]; revoked?: string[] }) => {
    const body = {
      ...(id ? { id } : {}),
      kind: opts.kind,
      // Without --role the API gives the role named like the kind.
      ...(opts.role ? { role: opts.role } : {}),
      ...(opts.extra ? { extra_permissions: opts.extra } : {}),
      ...(opts.revoked ? { revoked_permissions: opts.revoked } : {}),
    };
    const res = await request<PrincipalJson>(target(opts), 'POST', '/api/admin/principals', body);
    output(opts.json, res.body, () => printTable([res.body as unknown as Record<string, unknown>], COLUMNS));
  });

  withTarget(principals.command('list').description('list principals in id order'))
    .option('--kind <kind>', 'service or user')
    .option('--role <role>', 'role name')
    .option('--limit <n>', 'page size (1–1000)', '100')
    .option('--cursor <cursor>', 'continue from a previous page')
    .action(async (opts: CommonOpts & { kind?: string; role?: string; limit?: string; cursor?: string }) => {
      const q = new URLSearchParams();
      for (const name of ['kind', 'role', 'limit', 'cursor'] as const) if (opts[name]) q.set(name, opts[name]);
      const res = await request<{ data: PrincipalJson[]; next_cursor: string | null }>(target(opts), 'GET', `/api/admin/principals?${q}`);
      output(opts.json, res.body, () => {
        printTable(res.body.data as unknown as Record<string, unknown>[], COLUMNS);
        if (res.body.next_cursor) process.stdout.write(`next: --cursor ${res.body.next_cursor}\n`);
      });
    });

  withTarget(
    principals
      .command('update <id>')
      .description("change a principal's role or permissions, or disable it")
      .option('--role <role>', 'role name')
      .option('--extra <perms>', 'extra permissions, comma-separated (replaces)', list)
      .option('--revoked <perms>', 'revoked permissions, comma-separated (replaces)', list)
      .addOption(new Option('--disable', 'disable the principal (its keys stop working)').conflicts('enable'))
      .option('--enable', 'enable the principal'),
  ).action(async (id: string, opts: CommonOpts & { role?: string; extra?: string[]; revoked?: string[]; disable?: boolean; enable?: boolean }) => {
    const body: Record<string, unknown> = {};
    if (opts.role) body.role = opts.role;
    if (opts.extra) body.extra_permissions = opts.extra;
    if (opts.revoked) body.revoked_permissions = opts.revoked;
    if (opts.disable) body.disabled = true;
    if (opts.enable) body.disabled = false;
    // A usage error, sending nothing: the server would refuse an empty change in its own words.
    if (Object.keys(body).length === 0) throw new CliError('nothing to change: give --role, --extra, --revoked, --disable or --enable', 2);
    const res = await request<PrincipalJson>(target(opts), 'PATCH', `/api/admin/principals/${enc(id)}`, body);
    output(opts.json, res.body, () => printTable([res.body as unknown as Record<string, unknown>], COLUMNS));
  });
}
