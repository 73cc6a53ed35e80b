import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';

/** A logger at `level` whose JSON lines are pushed onto `lines`, for a test to read. */
export function linesLogger(lines: string[], level: pino.Level): Logger {
  return pino(
    { level },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    }),
  );
}

/** The first of `lines` (a daemon's log, still growing) that matches `pattern`, or undefined after `timeoutMs`. */
export async function waitForLine(lines: readonly string[], pattern: RegExp, timeoutMs: number): Promise<string | undefined> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const line = lines.find((l) => pattern.test(l));
    if (line !== undefined) return line;
    await sleep(10);
  }
  return undefined;
}
