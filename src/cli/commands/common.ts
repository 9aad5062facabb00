import type { Command } from 'commander';
import { DEFAULT_TIMEOUT_S, resolveTarget } from '../admin-client.js';

export interface CommonOpts {
  url?: string;
  key?: string;
  json?: boolean;
  timeout?: string;
}

/** Options every admin command takes. */
export function withTarget(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'server URL (env TEM_URL; default the local embedded server)')
    .option('--key <key>', 'API key (env TEM_API_KEY; default $TEM_DATA_DIR/admin.key)')
    .option('--json', 'print JSON for scripts')
    .option('--timeout <seconds>', 'give up on a server that does not answer within this many seconds', String(DEFAULT_TIMEOUT_S));
}

export function target(opts: CommonOpts) {
  return resolveTarget({ url: opts.url, key: opts.key, timeout: opts.timeout });
}

export function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export const enc = encodeURIComponent;
