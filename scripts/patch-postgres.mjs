#!/usr/bin/env node
// Applies the fix of porsager/postgres PR #1209 (issues #1066, #1154, #1208) to postgres@3.4.9:
// a write scheduled for a connection whose socket has just closed dereferences a null socket
// from a setImmediate callback, an uncatchable TypeError that kills the process whenever
// PostgreSQL drops connections (restart, failover, a proxy cut). The guard settles the pending
// queries with CONNECTION_CLOSED instead, and teardown forgets the stale write timer and buffer
// so a reconnected connection can flush again. Also: a connection ended while it reads the array
// types no longer leaves an unhandled rejection, and a failed connection attempt fails every call
// queued for a connection, not just one. See docs/decisions/0006-postgres-driver-patch.md.
// Runs on `npm install`/`npm ci` (postinstall); idempotent; refuses to touch an unknown version.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
let root;
try {
  // The package's exports hide package.json; its CommonJS entry is cjs/src/index.js.
  root = join(dirname(require.resolve('postgres')), '..', '..');
} catch {
  process.exit(0); // not installed (e.g. a production install without it): nothing to patch
}
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const MARK = '/* tem: guarded nextWrite */';

const replacements = [
  [
    'function nextWrite(fn) {\n    const x = socket.write(chunk, fn)',
    `function nextWrite(fn) {\n    ${MARK}\n    if (!socket) {\n      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n      chunk = nextWriteTimer = null\n      error(Errors.connection('CONNECTION_CLOSED', options))\n      return false\n    }\n    const x = socket.write(chunk, fn)`,
  ],
  [
    '    clearImmediate(nextWriteTimer)\n    socket.removeListener(\'data\', data)\n    socket.removeListener(\'connect\', connected)\n    idleTimer.cancel()',
    '    clearImmediate(nextWriteTimer)\n    nextWriteTimer = null\n    chunk = null\n    socket.removeListener(\'data\', data)\n    socket.removeListener(\'connect\', connected)\n    idleTimer.cancel()',
  ],
  // terminate() has the same stale timer: a connection ended mid-write could never flush again.
  [
    '    clearImmediate(nextWriteTimer)\n    if (socket) {',
    '    clearImmediate(nextWriteTimer)\n    nextWriteTimer = null\n    chunk = null\n    if (socket) {',
  ],
  // A new connection first reads the array types; its promise is returned from a message handler
  // that nobody awaits. A connection ended during that read (a terminated backend, a restart)
  // rejected it unhandled, which ends a Node process. The end of the connection still fails the
  // queries waiting on it, and a failure with the connection alive still lets them run.
  [
    '        return fetchArrayTypes()\n',
    '        return fetchArrayTypes().catch(() => { /* tem: the connection reports its own end */ })\n',
  ],
];

// A connection attempt that fails (the server is down or refuses) answered only the call it was
// opened for; every other queued call waited for an attempt of its own, one per reconnect delay,
// so a burst during an outage queued for seconds. When no connection is alive to serve them, a
// failed attempt now fails them all at once: the server is unreachable for them too.
const poolReplacements = [
  [
    '  function onclose(c, e) {\n    move(c, closed)',
    '  function onclose(c, e) {\n    /* tem: a failed connect fails the queue */\n    const failedConnect = c.queue === connecting\n    move(c, closed)',
  ],
  [
    '    options.onclose && options.onclose(c.id)\n    queries.length && connect(c, queries.shift())',
    '    options.onclose && options.onclose(c.id)\n    if (failedConnect && e && open.length + busy.length + full.length + reserved.length === 0) {\n      while (queries.length)\n        queries.shift().reject(e)\n    }\n    queries.length && connect(c, queries.shift())',
  ],
];

function patch(file, probe, list) {
  const path = join(root, file);
  if (!existsSync(path)) return;
  let text = readFileSync(path, 'utf8');
  if (!text.includes(probe)) return; // upstream changed: fixed there
  if (version !== '3.4.9') {
    console.error(`patch-postgres: postgres ${version} is not the version this patch was written for (3.4.9); check the upstream fix and update scripts/patch-postgres.mjs`);
    process.exit(1);
  }
  let changed = false;
  for (const [from, to] of list) {
    if (text.includes(to)) continue; // applied before
    if (!text.includes(from)) {
      console.error(`patch-postgres: ${file} does not contain the expected code; not patched`);
      process.exit(1);
    }
    text = text.replace(from, to);
    changed = true;
  }
  if (changed) writeFileSync(path, text);
}

for (const dir of ['src', 'cjs/src']) {
  patch(`${dir}/connection.js`, 'const x = socket.write(chunk, fn)', replacements);
  patch(`${dir}/index.js`, '  function onclose(c, e) {\n    move(c, closed)', poolReplacements);
}
