import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** `primary`, `backup`, `client`, `chaos`, ... */
  role: string;
  level?: string;
  /** Where lines go; standard error by default so that standard output stays for results. */
  destination?: NodeJS.WritableStream;
}

/**
 * A structured logger. Daemons log one JSON line per event with `role`, and child loggers add
 * `generation` and `epoch`. Nothing is logged per instruction or per page.
 */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.HBFT_LOG_LEVEL ?? 'info';
  return pino({ level, base: { role: options.role } }, options.destination ?? pino.destination(2));
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
