import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHistory, type Verdict } from '@hbft/common/session/checker.ts';
import { parseHistory, type History } from '@hbft/common/session/history.ts';
import { CLI } from '../deploy/runScript.ts';
import { Lan } from './lan.ts';
import { Pair, type PairOptions } from './pair.ts';

/**
 * The kvnet guest protected by a Pair whose daemons run in a Lan's namespace, each on its own TAP,
 * with the replication link through the Pair's chaos proxies in this process (reached over the
 * Lan's link to the host). Clients reach the guest at `lan.guestIp:6379` from inside the namespace.
 * `subnet` is the third octet that keeps this file's addresses apart from other files'
 * (10.77.SUBNET.0/24 for the LAN, 10.78.SUBNET.0/30 for the link to the host).
 */
export async function startKvnetPair(
  name: string,
  subnet: number,
  options: Omit<PairOptions, 'guest' | 'siteArgs' | 'daemonHost' | 'proxyHost' | 'launch'> = {},
): Promise<{ lan: Lan; pair: Pair }> {
  const lan = await Lan.create(name, `10.77.${subnet}`, ['a', 'b']);
  try {
    const link = await lan.linkToHost(`10.78.${subnet}`);
    const pair = await Pair.start({
      memory: '64MiB',
      ...options,
      guest: 'kvnet',
      siteArgs: (site) => ['--tap', Lan.tapOf(site), '--guest-ip', lan.guestAddress],
      daemonHost: link.namespaceIp,
      proxyHost: link.hostIp,
      launch: (argv, spawnOptions) => lan.spawn(process.execPath, argv, spawnOptions),
    });
    return { lan, pair };
  } catch (error) {
    await lan.destroy();
    throw error;
  }
}

/**
 * `hbft load` with plain RESP clients, run in a Lan's namespace against the guest's own address
 * (Jepsen style: a request whose reply never came is indeterminate, not lost). It runs until
 * `finish()`: SIGTERM ends it, in-flight operations drain, and it makes its final read; the checker
 * then judges the history it wrote. (The same shape as branch failtests' test/helpers/plainLoad.ts,
 * written at the same time: once both are in, one of the two goes.)
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

  /** Starts the load and resolves once its clients have been answered. */
  static async start(
    lan: Lan,
    options: { seed: number; keyPrefix: string; clients?: number; keys?: number },
    timeoutMs = 30_000,
  ): Promise<PlainLoad> {
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

  /** Ends the load (in-flight operations drain, then the final read) and checks its history. */
  async finish(timeoutMs = 60_000): Promise<{ code: number | null; history: History; verdict: Verdict; output: string }> {
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
