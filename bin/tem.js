#!/usr/bin/env node
import { existsSync } from 'node:fs';

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
