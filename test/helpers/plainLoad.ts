import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { checkHistory, type Verdict } from '@hbft/common/session/checker.ts';
import { parseHistory, type History, type Operation } from '@hbft/common/session/history.ts';
import { percentile } from '@hbft/common/stats.ts';
import { CLI } from '../deploy/runScript.ts';
import type { Lan } from './lan.ts';

export interface PlainLoadOptions {
  seed: number;
  /** Keys are `PREFIX:c:N` and `PREFIX:r:N`: a fresh prefix per run keeps runs apart. */
  keyPrefix: string;
  clients?: number;
  keys?: number;
}

export interface PlainLoadResult {
  /** hbft load's exit status: 0 when its own checker found nothing wrong and no error ended it. */
  code: number | null;
  history: History;
  /** The checker's verdict on the history the load wrote (not hbft load's word for it). */
  verdict: Verdict;
  /** The load's standard output and error, for failure messages. */
  output: string;
}

/**
 * `hbft load` with plain RESP clients, run in a Lan's namespace against the guest's own address
 * (Jepsen style: a request whose reply never came is indeterminate, not lost). It runs until
 * `finish()`: SIGTERM ends it, in-flight operations drain, and it makes its final read. Its history
 * goes to a file line by line, which this process follows while it runs (so that a test waits for
 * operations served rather than for fixed times), and `finish()` runs the checker on that file.
 * `mark()` marks an instant (SIGUSR2) whose client-visible stall the verdict measures.
 */
export class PlainLoad {
  private outputText = '';
  private readonly exit: Promise<number | null>;
  private historyFd: number | null = null;
  private historyOffset = 0;
  private partialLine = '';
  private acknowledgedCount = 0;

  private constructor(
    readonly process: ChildProcess,
    readonly historyFile: string,
  ) {
    const keep = (chunk: Buffer) => {
      this.outputText += chunk;
      if (this.outputText.length > 200_000) this.outputText = this.outputText.slice(-100_000);
    };
    process.stdout?.on('data', keep);
    process.stderr?.on('data', keep);
    this.exit = new Promise((resolve) => process.once('exit', (code) => resolve(code)));
  }

  /** Starts the load and resolves once its clients have been answered (from then on `mark()` marks). */
  static async start(lan: Lan, options: PlainLoadOptions, timeoutMs = 30_000): Promise<PlainLoad> {
    const historyFile = join(mkdtempSync(join(tmpdir(), 'hbft-plain-load-')), 'history.jsonl');
    const child = lan.spawn(
      process.execPath,
      [
        CLI,
        'load',
        ...['--servers', `${lan.guestIp}:6379`],
        ...['--clients', String(options.clients ?? 4), '--keys', String(options.keys ?? 8)],
        ...['--seed', String(options.seed), '--key-prefix', options.keyPrefix],
        ...['--duration-s', '3600', '--history', historyFile],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const load = new PlainLoad(child, historyFile);
    const deadline = performance.now() + timeoutMs;
    while (load.acknowledged() === 0) {
      if (!load.running || performance.now() > deadline) {
        load.kill();
        assert.fail(`the plain load was not served within ${timeoutMs} ms:\n${load.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return load;
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  get output(): string {
    return this.outputText.slice(-3_000);
  }

  /** Operations acknowledged so far (read from the history file as it grows). */
  acknowledged(): number {
    if (this.historyFd === null) {
      try {
        this.historyFd = openSync(this.historyFile, 'r');
      } catch {
        return 0; // not created yet
      }
    }
    const buffer = Buffer.alloc(1 << 16);
    for (;;) {
      const bytes = readSync(this.historyFd, buffer, 0, buffer.length, this.historyOffset);
      if (bytes === 0) break;
      this.historyOffset += bytes;
      const lines = (this.partialLine + buffer.subarray(0, bytes).toString()).split('\n');
      this.partialLine = lines.pop() ?? '';
      for (const line of lines) if (line.includes('"result":"ok"')) this.acknowledgedCount++;
    }
    return this.acknowledgedCount;
  }

  /**
   * A condition for `Pair.waitUntil`: `count` more operations acknowledged than now. It fails at
   * once, with the load's output, if the load has ended.
   */
  served(count: number): () => boolean {
    const target = this.acknowledged() + count;
    return () => {
      assert.ok(this.running, `the plain load ended early (exit ${this.process.exitCode}):\n${this.output}`);
      return this.acknowledged() >= target;
    };
  }

  /** Marks this instant in the history (a kill, say); the verdict measures the stall across it. */
  mark(): void {
    this.process.kill('SIGUSR2');
  }

  /** Ends the load (in-flight operations drain, then the final read) and checks its history. */
  async finish(timeoutMs = 60_000): Promise<PlainLoadResult> {
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), timeoutMs);
    const code = await this.exit;
    clearTimeout(timer);
    this.closeHistory();
    let text: string;
    try {
      text = readFileSync(this.historyFile, 'utf8');
    } catch (error) {
      assert.fail(`the plain load (exit ${code}) wrote no history: ${(error as Error).message}\n${this.output}`);
    }
    const history = parseHistory(text, this.historyFile);
    assert.ok(history.final, `the plain load made its final read (exit ${code}):\n${this.output}`);
    const verdict = checkHistory({
      operations: history.operations,
      final: history.final.values,
      reconnects: history.reconnects,
      marks: history.marks,
      ...(history.header === undefined ? {} : { seed: history.header.seed }),
    });
    return { code, history, verdict, output: this.output };
  }

  kill(): void {
    if (this.running) this.process.kill('SIGKILL');
    this.closeHistory();
  }

  private closeHistory(): void {
    if (this.historyFd !== null) closeSync(this.historyFd);
    this.historyFd = null;
  }
}

/** One line per marked instant: how long clients waited for a reply across it. */
export function describeMarkStalls(verdict: Verdict): string[] {
  return verdict.stalls.marks.map(
    (mark) =>
      `stall across "${mark.label}" at ${mark.at.toFixed(0)} ms: gap spanning it p50 ${mark.gapMsP50.toFixed(0)} ms, max ${mark.gapMsMax.toFixed(0)} ms; ` +
      `first reply after it p50 ${mark.afterMarkMsP50.toFixed(0)} ms, max ${mark.afterMarkMsMax.toFixed(0)} ms ` +
      `(${mark.clients} clients${mark.clientsWithoutReply > 0 ? `, ${mark.clientsWithoutReply} without a reply after it` : ''})`,
  );
}

/**
 * What clients saw of a window of the run (history times, ms from the load's start): per client,
 * the longest time without a reply that overlaps the window (the gaps between consecutive
 * replies, `unknown` results being no reply), and the replies inside it; p50 and max over clients.
 */
export function stallsWithin(
  operations: readonly Operation[],
  fromMs: number,
  toMs: number,
): { clients: number; gapMsP50: number; gapMsMax: number; repliesWithin: number } {
  const byClient = new Map<number, number[]>();
  for (const operation of operations) {
    if (operation.result === 'unknown') continue;
    const replies = byClient.get(operation.client) ?? [];
    replies.push(operation.end);
    byClient.set(operation.client, replies);
  }
  const longest: number[] = [];
  let repliesWithin = 0;
  for (const replies of byClient.values()) {
    replies.sort((x, y) => x - y);
    let gapMax = 0;
    for (let i = 1; i < replies.length; i++) {
      const previous = replies[i - 1] ?? 0;
      const next = replies[i] ?? 0;
      if (next >= fromMs && previous <= toMs) gapMax = Math.max(gapMax, next - previous);
    }
    repliesWithin += replies.filter((time) => time >= fromMs && time <= toMs).length;
    longest.push(gapMax);
  }
  return {
    clients: longest.length,
    gapMsP50: percentile(longest, 0.5) || 0,
    gapMsMax: Math.max(0, ...longest),
    repliesWithin,
  };
}

/** A wall-clock instant (ms since the epoch, as in the daemons' logs) in the history's time. */
export function historyMsAt(history: History, wallMs: number): number {
  assert.ok(history.header, 'the history has its header');
  return wallMs - Date.parse(history.header.startedAt);
}

/** Until a stream that refused a write drains, or closes (its reader gave up). */
function drainedOrClosed(stream: Writable | null): Promise<void> {
  return new Promise((resolve) => {
    if (stream === null) return resolve();
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/**
 * Fills the guest with `count` values of `valueBytes` bytes (keys `fill:N`) through `redis-cli
 * --pipe` in the LAN's namespace, so that its memory holds that much more to synchronise. Several
 * connections at once: a protected guest's TCP acknowledgements wait for its epoch to commit, so
 * one connection moves one window per commit.
 */
export async function fillGuest(lan: Lan, count: number, valueBytes: number, connections = 8, timeoutMs = 120_000): Promise<void> {
  const value = 'v'.repeat(valueBytes);
  await Promise.all(
    Array.from({ length: connections }, async (_, connection) => {
      const keys = Array.from({ length: count }, (_, i) => `fill:${i}`).filter((_, i) => i % connections === connection);
      const pipe = lan.spawn('redis-cli', ['-h', lan.guestIp, '--pipe'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      pipe.stdout?.on('data', (chunk: Buffer) => (output += chunk));
      pipe.stderr?.on('data', (chunk: Buffer) => (output += chunk));
      const exit = new Promise<number | null>((resolve) => pipe.once('exit', (code) => resolve(code)));
      const timer = setTimeout(() => pipe.kill('SIGKILL'), timeoutMs);
      // redis-cli that gives up stops reading: its exit status and output say why, not EPIPE.
      let stdinError: Error | null = null;
      pipe.stdin?.on('error', (error) => (stdinError = error));
      for (const key of keys) {
        if (stdinError !== null || pipe.exitCode !== null) break;
        const command = `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`;
        if (!pipe.stdin?.write(command)) await drainedOrClosed(pipe.stdin);
      }
      pipe.stdin?.end();
      const code = await exit;
      clearTimeout(timer);
      assert.equal(code, 0, `redis-cli --pipe filled the guest (stdin: ${stdinError ?? 'ok'}):\n${output}`);
      assert.match(output, new RegExp(`errors: 0, replies: ${keys.length}\\b`), `every SET of the filler succeeded:\n${output}`);
    }),
  );
}
