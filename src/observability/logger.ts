import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** JSON logs on stdout. `base` names the process role and node so multi-process logs can be merged. */
export function createLogger(options: { level: string; role: string; nodeId: string }): Logger {
  return pino({
    level: options.level,
    base: { role: options.role, node: options.nodeId },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that writes nothing (tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
