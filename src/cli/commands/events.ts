import type { Command } from 'commander';
import { CliError, request } from '../admin-client.js';
import { output, printJson, printTable } from '../output.js';
import { enc, target, withTarget, type CommonOpts } from './common.js';

interface FilterOpts {
  status?: string;
  type?: string;
  user?: string;
  since?: string;
}

function filterQuery(opts: FilterOpts & { limit?: string; cursor?: string }): string {
  const q = new URLSearchParams();
  if (opts.status) q.set('status', opts.status);
  if (opts.type) q.set('type', opts.type);
  if (opts.user) q.set('user_id', opts.user);
  if (opts.since) q.set('since', opts.since);
  if (opts.limit) q.set('limit', opts.limit);
  if (opts.cursor) q.set('cursor', opts.cursor);
  const s = q.toString();
  return s ? `?${s}` : '';
}

function withFilters(cmd: Command, statuses = 'accepted, queued, processing, processed or failed'): Command {
  return cmd
    .option('--status <status>', statuses)
    .option('--type <type>', 'event type')
    .option('--user <user_id>', 'owner')
    .option('--since <iso>', 'created at or after');
}

export function registerEvents(program: Command): void {
  const events = program.command('events').description('inspect and retry events');

  withTarget(withFilters(events.command('list').description('list events, newest first')))
    .option('--limit <n>', 'page size', '50')
    .option('--cursor <cursor>', 'continue from a previous page')
    .action(async (opts: CommonOpts & FilterOpts & { limit?: string; cursor?: string }) => {
      const res = await request<{ data: Record<string, unknown>[]; next_cursor: string | null }>(target(opts), 'GET', `/api/events${filterQuery(opts)}`);
      output(opts.json, res.body, () => {
        // The last error, cut short, says at a glance why a failed event failed (`show` has it whole).
        const rows = res.body.data.map((e) => ({ ...e, last_error: shorten(e.last_error, 60) }));
        printTable(rows, ['id', 'type', 'status', 'user_id', 'attempts', 'created_at', 'last_error']);
        if (res.body.next_cursor) process.stdout.write(`next: --cursor ${res.body.next_cursor}\n`);
      });
    });

  withTarget(events.command('show <id>').description('an event with its status history')).action(async (id: string, opts: CommonOpts) => {
    const res = await request<Record<string, unknown> & { history?: Record<string, unknown>[] }>(target(opts), 'GET', `/api/events/${enc(id)}`);
    output(opts.json, res.body, () => {
      const { history, payload, ...rest } = res.body;
      printTable([rest], ['id', 'type', 'status', 'user_id', 'producer_id', 'attempts', 'last_error']);
      process.stdout.write('\npayload:\n');
      printJson(payload);
      process.stdout.write('\nhistory:\n');
      printTable(history ?? [], ['at', 'status', 'attempt', 'error']);
    });
  });

  withTarget(withFilters(events.command('retry [id]').description('requeue a failed event, or every failed event matching the filters with --all'), 'failed (the only status that can be retried)'))
    .option('--all', 'retry every failed event matching the filters')
    .option('--page <n>', 'with --all: events requeued per request, each its own transaction (1–10000)', '1000')
    .action(async (id: string | undefined, opts: CommonOpts & FilterOpts & { all?: boolean; page: string }) => {
      if (id) {
        // One event, or a bulk retry by filter: both at once would silently drop the filters.
        if (opts.all || opts.type || opts.user || opts.since || opts.status) throw new CliError('give an event id or --all with filters, not both', 2);
        const res = await request(target(opts), 'POST', `/api/events/${enc(id)}/retry`);
        output(opts.json, res.body, () => process.stdout.write(`requeued ${id}\n`));
        return;
      }
      if (!opts.all) throw new CliError('give an event id, or --all (with optional --type/--user/--since) to retry failed events in bulk', 2);
      // Only failed events can be retried: another --status would silently mean "failed".
      if (opts.status !== undefined && opts.status !== 'failed') throw new CliError(`only failed events can be retried (got --status ${opts.status})`, 2);
      const page = Number(opts.page);
      if (!Number.isInteger(page) || page < 1 || page > 10_000) throw new CliError(`--page must be a whole number from 1 to 10000 (got ${opts.page})`, 2);
      const body: Record<string, unknown> = { status: 'failed', limit: page };
      if (opts.type) body.type = opts.type;
      if (opts.user) body.user_id = opts.user;
      if (opts.since) body.since = opts.since;
      // Page by page (the server requeues a bounded number per request), oldest first.
      const retried: string[] = [];
      for (let cursor: string | null = null; ; ) {
        const res: { body: RetryPage } = await request<RetryPage>(target(opts), 'POST', '/api/events/retry', cursor === null ? body : { ...body, cursor });
        retried.push(...res.body.retried);
        cursor = res.body.has_more ? res.body.next_cursor : null;
        if (cursor === null) break;
      }
      output(opts.json, { retried, count: retried.length }, () => process.stdout.write(`requeued ${retried.length} event(s)\n`));
    });
}

/** One answer of POST /api/events/retry. */
interface RetryPage {
  retried: string[];
  count: number;
  has_more: boolean;
  next_cursor: string | null;
}

function shorten(value: unknown, max: number): unknown {
  if (typeof value !== 'string') return value;
  const line = value.replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
