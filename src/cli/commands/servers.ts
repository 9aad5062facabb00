import type { Command } from 'commander';
import { CliError } from '../admin-client.js';
import { holdSignalsDuringStartup } from '../../app/lifecycle.js';

const QUEUES = ['processing', 'maintenance'] as const;

/** Server roles. Each imports its composition root lazily so admin commands start fast. */
export function registerServers(program: Command): void {
  program
    .command('start')
    .description('run API, worker, maintenance, gateway and console in one process (embedded PGlite + memory bus by default)')
    .action(async () => {
      holdSignalsDuringStartup();
      const { runEmbedded } = await import('../../app/embedded.js');
      await runEmbedded();
    });

  program
    .command('api')
    .description('run the HTTP API (distributed: needs DATABASE_URL; REDIS_URL for publish and presence)')
    .action(async () => {
      holdSignalsDuringStartup();
      const { runApi } = await import('../../app/api.js');
      await runApi();
    });

  program
    .command('worker')
    .description('run a worker on the processing queue, or the maintenance queue (sweeps, retention, outbox relay)')
    .option('--queue <queue>', 'processing or maintenance', 'processing')
    .action(async (opts: { queue: string }) => {
      if (!(QUEUES as readonly string[]).includes(opts.queue)) throw new CliError(`--queue must be one of ${QUEUES.join(', ')}, got ${opts.queue}`, 2);
      holdSignalsDuringStartup();
      const { runWorker } = await import('../../app/worker.js');
      await runWorker(opts.queue as (typeof QUEUES)[number]);
    });

  program
    .command('gateway')
    .description('run a WebSocket gateway node (distributed: needs REDIS_URL and TEM_API_INTERNAL_URL)')
    .action(async () => {
      holdSignalsDuringStartup();
      const { runGateway } = await import('../../app/gateway.js');
      await runGateway();
    });

  program
    .command('migrate')
    .description('apply database migrations (DATABASE_URL, or the embedded database in TEM_DATA_DIR)')
    .action(async () => {
      const { runMigrate } = await import('../../app/migrate.js');
      await runMigrate();
    });
}
