import type { Command } from 'commander';
import { request } from '../admin-client.js';
import { output, printTable } from '../output.js';
import { enc, target, withTarget, type CommonOpts } from './common.js';

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage API keys');

  withTarget(
    keys
      .command('create <principal>')
      .description('create an API key for a principal; the key is shown only once')
      .option('--expires-at <date-time>', 'expiry time, an RFC 3339 date-time such as 2027-01-31T00:00:00Z'),
  ).action(async (principal: string, opts: CommonOpts & { expiresAt?: string }) => {
    const body = opts.expiresAt ? { expires_at: opts.expiresAt } : {};
    const res = await request<{ key_id: string; key: string; expires_at?: string | null }>(
      target(opts),
      'POST',
      `/api/admin/principals/${enc(principal)}/keys`,
      body,
    );
    output(opts.json, res.body, () => {
      process.stdout.write(`key_id: ${res.body.key_id}\nkey:    ${res.body.key}\n`);
      process.stderr.write('Store this key now: it cannot be shown again.\n');
    });
  });

  withTarget(keys.command('list <principal>').description("list a principal's keys (never the keys themselves)")).action(
    async (principal: string, opts: CommonOpts) => {
      const res = await request<{ data: Record<string, unknown>[] }>(target(opts), 'GET', `/api/admin/principals/${enc(principal)}/keys`);
      output(opts.json, res.body, () => printTable(res.body.data, ['id', 'prefix', 'created_at', 'expires_at', 'revoked_at', 'last_used_at']));
    },
  );

  withTarget(keys.command('revoke <key_id>').description('revoke a key (effective on the next request; its sockets close)')).action(
    async (keyId: string, opts: CommonOpts) => {
      const res = await request<Record<string, unknown>>(target(opts), 'DELETE', `/api/admin/keys/${enc(keyId)}`);
      output(opts.json, res.body ?? { key_id: keyId, revoked: true }, () => process.stdout.write(`revoked ${keyId}\n`));
    },
  );
}
