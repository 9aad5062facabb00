#!/usr/bin/env node
import { existsSync } from 'node:fs';

// A server role holds SIGTERM/SIGINT/SIGHUP from its very first moment: loading the code takes a few
// hundred milliseconds, and a signal then would otherwise kill it with exit 143 before the role's
// own handling (holdSignalsDuringStartup in src/app/lifecycle.ts) is in place, which takes
// over what arrived here.
const SERVER_ROLES = new Set(['start', 'api', 'worker', 'gateway']);
if (SERVER_ROLES.has(process.argv.slice(2).find((arg) => !arg.startsWith('-')) ?? '')) {
  const held = [];
  const hold = (signal) => held.push(signal);
  // As STOP_SIGNALS in src/app/lifecycle.ts.
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const signal of signals) process.on(signal, hold);
  globalThis[Symbol.for('tem.startupSignals')] = () => {
    for (const signal of signals) process.off(signal, hold);
    return held;
  };
}

const built = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  // A checkout not built yet (`npm run build`; `npm ci` and `npm start` build): run the sources.
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    console.error('tem: not built and no dev dependencies to run the sources; run `npm run build`');
    process.exit(1);
  }
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
