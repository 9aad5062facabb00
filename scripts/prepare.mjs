/**
 * `npm ci` / `npm install` build the CLI (dist/), so `tem` runs right after installing. An install
 * without dev dependencies (`npm ci --omit=dev`) has no compiler: the build is skipped, not failed.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
try {
  require.resolve('typescript');
} catch {
  console.log('prepare: no dev dependencies installed; build skipped');
  process.exit(0);
}
const run = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
process.exit(run.status ?? 1);
