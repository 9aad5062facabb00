/**
 * CLI usage errors found before any request: they exit 2 with a message saying what to give,
 * and need no server.
 */
import { describe, expect, it } from 'vitest';
import { runTem } from '../helpers/processes.js';

// Nothing listens here: a command that sent a request would fail with "cannot reach" instead.
const env = { TEM_URL: 'http://127.0.0.1:9', TEM_API_KEY: `tem_${'a'.repeat(40)}`, TEM_ADMIN_KEY: undefined };

describe('tem principals update', () => {
  it('without anything to change is a usage error', async () => {
    const r = await runTem(['principals', 'update', 'u_1'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('tem: nothing to change: give --role, --extra, --revoked, --disable or --enable\n');
    const json = await runTem(['principals', 'update', 'u_1', '--json'], env);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stderr)).toEqual({ error: { message: 'nothing to change: give --role, --extra, --revoked, --disable or --enable' } });
  });
});
