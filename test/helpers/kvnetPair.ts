import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
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

/** What `hbft load --json` prints (the fields these tests read). */
export interface LoadReport {
  seed: number;
  verdict: {
    ok: boolean;
    stats: { operations: number; ok: number; unknown: number; latencyMsP50: number; latencyMsP99: number };
    checked: { writes: number; increments: number };
  };
}

/**
 * `hbft load --plain` against the guest's address, run in the Lan's namespace (Jepsen style: a
 * request whose reply never came is indeterminate). It runs for `durationS`, or until `stop()`
 * (SIGTERM: in-flight operations finish, then the final read and the verdict).
 */
export class PlainLoad {
  private output = '';
  private errors = '';
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;

  constructor(lan: Lan, options: { clients: number; keys: number; seed: number; keyPrefix: string; durationS: number; extra?: string[] }) {
    this.child = lan.spawn(
      process.execPath,
      [
        CLI,
        'load',
        '--plain',
        '--json',
        ...['--servers', `${lan.guestIp}:6379`, '--clients', String(options.clients), '--keys', String(options.keys)],
        ...['--seed', String(options.seed), '--key-prefix', options.keyPrefix, '--duration-s', String(options.durationS)],
        ...(options.extra ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk));
    this.child.stderr?.on('data', (chunk: Buffer) => (this.errors += chunk));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Operations answered so far, from the load's last progress line (0 before the first). */
  get answered(): number {
    const lines = this.errors.match(/ ok (\d+) /g);
    return lines === null ? 0 : Number(/\d+/.exec(lines.at(-1)!)![0]);
  }

  get log(): string {
    return `${this.errors.slice(-3_000)}\n${this.output.slice(-3_000)}`;
  }

  /** Until at least `count` operations have been answered; fails if the load exits first. */
  async waitAnswered(count: number, timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.answered < count) {
      assert.ok(this.child.exitCode === null, `the load exited before ${count} answers:\n${this.log}`);
      assert.ok(performance.now() < deadline, `the load got fewer than ${count} answers within ${timeoutMs} ms:\n${this.log}`);
      await sleep(50);
    }
  }

  /** SIGTERM now (or let it end on its own with `stop(false)`), then its exit code and report. */
  async finish(stop = true): Promise<{ code: number | null; report: LoadReport }> {
    if (stop) this.child.kill('SIGTERM');
    const code = await this.exited;
    let report: LoadReport;
    try {
      report = JSON.parse(this.output) as LoadReport;
    } catch {
      assert.fail(`hbft load (exit ${code}) printed no JSON report:\n${this.log}`);
    }
    return { code, report };
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
