/**
 * Everything a run starts (child processes, databases, Redis keys) registers how to undo it.
 * The undo steps run in reverse order at the end, on an error and on Ctrl-C, so an aborted run
 * leaves no process or database behind.
 */
type Step = { name: string; run: () => Promise<unknown> | unknown };

const steps: Step[] = [];
let running: Promise<void> | null = null;

export function onCleanup(name: string, run: Step['run']): void {
  steps.push({ name, run });
}

export function cleanup(): Promise<void> {
  running ??= (async () => {
    while (steps.length) {
      const step = steps.pop()!;
      try {
        await step.run();
      } catch (err) {
        console.error(`cleanup ${step.name} failed: ${(err as Error).message}`);
      }
    }
  })();
  return running;
}

/** Runs a benchmark's main function with cleanup on success, failure and interruption. */
export function runBench(main: () => Promise<void>): void {
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error('interrupted: cleaning up');
    void cleanup().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  main().then(
    async () => {
      await cleanup();
      process.exit(0);
    },
    async (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      await cleanup();
      process.exit(1);
    },
  );
}
