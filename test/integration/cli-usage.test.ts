/**
 * Errors the CLI reports without a server: usage errors found before any request (exit 2, saying
 * what to give), and a server role that cannot reach its database (naming the setting).
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

describe('a server role whose database cannot be reached', () => {
  it('names DATABASE_URL, without its password, and the cause', async () => {
    const r = await runTem(['migrate'], { DATABASE_URL: 'postgres://postgres:secret@127.0.0.1:1/nothing' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('tem: DATABASE_URL=postgres://postgres:***@127.0.0.1:1/nothing: the database is not reachable (connect ECONNREFUSED 127.0.0.1:1)\n');
  });
});
