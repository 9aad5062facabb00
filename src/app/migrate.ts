/** `tem migrate`: apply pending migrations to DATABASE_URL, or to the embedded database. */
import { createRuntime, startStore } from './runtime.js';

export async function runMigrate(): Promise<void> {
  const rt = createRuntime('migrate');
  const store = await startStore(rt, { poolMax: 1 });
  await store.migrate();
  rt.logger.info({ database: store.kind }, 'migrations applied');
  await rt.lifecycle.close();
}
