import type { Command } from 'commander';
import { request } from '../admin-client.js';
import { output, printTable } from '../output.js';
import { enc, target, withTarget, type CommonOpts } from './common.js';

export function registerChannels(program: Command): void {
  const members = program.command('channels').description('channel membership').command('members').description('who may subscribe to a channel');

  withTarget(members.command('add <channel> <user_id>').description('let a user subscribe to a channel')).action(
    async (channel: string, userId: string, opts: CommonOpts) => {
      const res = await request(target(opts), 'PUT', `/api/channels/${enc(channel)}/members/${enc(userId)}`);
      output(opts.json, res.body ?? { channel, user_id: userId, member: true }, () => process.stdout.write(`${userId} may subscribe to ${channel}\n`));
    },
  );

  withTarget(members.command('remove <channel> <user_id>').description("remove a user's membership")).action(
    async (channel: string, userId: string, opts: CommonOpts) => {
      const res = await request(target(opts), 'DELETE', `/api/channels/${enc(channel)}/members/${enc(userId)}`);
      output(opts.json, res.body ?? { channel, user_id: userId, member: false }, () => process.stdout.write(`removed ${userId} from ${channel} (if it was a member)\n`));
    },
  );

  withTarget(members.command('list <channel>').description('list members')).action(async (channel: string, opts: CommonOpts) => {
    const res = await request<{ members?: string[]; data?: string[] }>(target(opts), 'GET', `/api/channels/${enc(channel)}/members`);
    const users = res.body.members ?? res.body.data ?? [];
    output(opts.json, res.body, () => printTable(users.map((u) => ({ user_id: u })), ['user_id']));
  });
}
