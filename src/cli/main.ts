/**
 * The `tem` command. Server roles start the composition roots in src/app; admin commands talk
 * to a running server over HTTP (src/cli/admin-client.ts).
 */
import { Command, CommanderError } from 'commander';
import { CliError, talkingToServer } from './admin-client.js';
import { registerPrincipals } from './commands/principals.js';
import { registerKeys } from './commands/keys.js';
import { registerRoles } from './commands/roles.js';
import { registerEvents } from './commands/events.js';
import { registerChannels } from './commands/channels.js';
import { registerServers } from './commands/servers.js';
import { withTarget } from './commands/common.js';
import { version } from '../core/version.js';

// A reader that stops early (`tem events list | head -1`) is no failure: stop quietly, as Unix
// tools do, instead of an EPIPE stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

// Scripts asking for --json get every failure as one JSON object on stderr, usage errors too.
const jsonErrors = process.argv.slice(2).includes('--json');
const jsonError = (message: string, extra: object = {}): string => `${JSON.stringify({ error: { message, ...extra } })}\n`;

const program = new Command('tem')
  .description('TelemetryEventMesh: durable event ingest, reliable processing, real-time delivery')
  .version(version)
  // One line per failure, the hint on it too: scripts read the first line of stderr.
  .configureOutput({
    outputError: (text, write) => {
      const message = text.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
      write(jsonErrors ? jsonError(message) : `tem: ${message} (run with --help for usage)\n`);
    },
    // A command group given without its command shows its help on stderr and exits 2; under
    // --json that too is one JSON object, naming the usage line.
    writeErr: (text) => {
      if (!jsonErrors || text.startsWith('{')) return void process.stderr.write(text);
      const usage = /^Usage: (.*)$/m.exec(text)?.[1]?.trim();
      process.stderr.write(jsonError(usage ? `a command is needed: ${usage}` : text.trim()));
    },
  })
  .exitOverride();

// The admin commands' target and output options may also come before the command
// (`tem --json principals list`); what the command itself was given wins.
withTarget(program).hook('preAction', (root, action) => {
  for (const name of ['url', 'key', 'json', 'timeout']) {
    if (root.getOptionValueSource(name) !== 'cli' || action.getOptionValueSource(name) === 'cli') continue;
    action.setOptionValue(name, root.getOptionValue(name));
  }
});

registerServers(program);
registerPrincipals(program);
registerKeys(program);
registerRoles(program);
registerEvents(program);
registerChannels(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const fail = (message: string, exitCode: number, problem?: Record<string, unknown>): never => {
    process.stderr.write(jsonErrors ? jsonError(message, problem) : `tem: ${message}\n`);
    process.exit(exitCode);
  };
  // Usage errors exit 2, as the checks of our own options do; help and --version exit 0.
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof CliError) fail(err.message, err.exitCode, err.problem);
  if (err instanceof Error && err.name === 'ConfigError') fail(err.message, 2);
  // An admin command given a JSON answer of another shape than a tem server's (another service
  // on that address). Not a server role's failure: that is ours, shown as it is below.
  if (err instanceof TypeError && talkingToServer()) fail(`the server's answer is not what a tem server sends (${err.message}): is --url a tem server?`, 1);
  // Start-up failures wrap their cause (e.g. the database could not be opened): show it.
  const cause = err instanceof Error && err.cause instanceof Error && err.cause.message ? ` (${err.cause.message})` : '';
  fail(`${err instanceof Error ? err.message : String(err)}${cause}`, 1);
});
