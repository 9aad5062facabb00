import type { Command } from 'commander';
import { resolveTarget } from '../admin-client.js';

export interface CommonOpts {
  url?: string;
  key?: string;
  json?: boolean;
}

/** Options every admin command takes. */
export function withTarget(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'server URL (env TEM_URL; default the local embedded server)')
    .option('--key <key>', 'API key (env TEM_API_KEY; default $TEM_DATA_DIR/admin.key)')
    .option('--json', 'print JSON for scripts');
}

export function target(opts: CommonOpts) {
  return resolveTarget({ url: opts.url, key: opts.key });
}

export function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export const enc = encodeURIComponent;
