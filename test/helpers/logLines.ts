import { setTimeout as sleep } from 'node:timers/promises';

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
