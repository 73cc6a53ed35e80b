import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ProxyRegistry } from '@hbft/common/chaos/registry.ts';
import { freePorts } from './cluster.ts';

const CLI = new URL('../../packages/cli/bin/hbft.js', import.meta.url).pathname;

/** As the demo: chaos on the link must not look like a dead primary at the 100 ms default. */
export const PAIR_HEARTBEAT_MS = 30;
export const PAIR_FAILOVER_TIMEOUT_MS = 300;

export interface Site {
  name: 'a' | 'b';
  listen: number;
  http: number;
  /** The chaos proxy in front of this site's replication port (what the other site dials). */
  proxied: number;
  process: ChildProcess | null;
  role: 'primary' | 'backup';
  /** Every process this site ran, with its log lines. */
  runs: SiteRun[];
  restarts: number;
}

/** One process a site ran. */
export interface SiteRun {
  role: string;
  log: string[];
  exit: Promise<number | null>;
  child: ChildProcess;
  /** When `Pair.kill` sent it SIGKILL (ms since the epoch). */
  killedAtMs?: number;
  /** When its exit was seen (ms since the epoch). */
  exitedAtMs?: number;
}

export interface PairOptions {
  memory?: string;
  /** Both daemons with --insecure instead of a key (for tests that need the link in plaintext). */
  insecure?: boolean;
  /** Extra flags for every daemon. */
  args?: string[];
  /** Flags for node itself in every daemon (`--cpu-prof`, say). */
  nodeArgs?: string[];
  /** The guest image the primary boots and both roles name (default kv, named to the primary only). */
  guest?: string;
  /** The daemons' --heartbeat-ms and --failover-timeout-ms (default PAIR_HEARTBEAT_MS, PAIR_FAILOVER_TIMEOUT_MS). */
  heartbeatMs?: number;
  failoverTimeoutMs?: number;
  /** Extra flags for one site's daemons (its TAP, say). */
  siteArgs?: (site: 'a' | 'b') => string[];
  /**
   * What the chaos proxy in front of a site forwards to: by default the site's replication port
   * itself; a test can put something of its own in between there (a man in the middle that records
   * the link, say) and return where it listens.
   */
  upstreamVia?: (site: 'a' | 'b', upstream: { host: string; port: number }) => Promise<{ host: string; port: number }>;
  /**
   * Where things listen: the daemons' replication and HTTP ports on `daemonHost`, the chaos
   * proxies (in this process) on `proxyHost`. Both 127.0.0.1 unless the daemons run in a network
   * namespace that this process reaches through a link of its own (Lan.linkToHost).
   */
  daemonHost?: string;
  proxyHost?: string;
  /** Starts a daemon's process: node with these arguments (default: here; Lan: in its namespace). */
  launch?: (nodeArgv: string[], options: SpawnOptions) => ChildProcess;
}

/**
 * Two sites run the way the demo runs them (packages/cli/src/demo/supervisor.ts), as real
 * processes: each replicates to the other through a chaos proxy in this process, a node that took
 * over re-protects to the other site, and a site whose process exits is started again as the
 * backup. `partition` and `heal` act on both proxies of the link.
 */
export class Pair {
  readonly sites: { a: Site; b: Site };
  readonly registry = new ProxyRegistry({ logger: pino({ level: 'silent' }) });
  private readonly keyFile: string;
  private stopping = false;

  private constructor(
    ports: number[],
    private readonly options: PairOptions,
  ) {
    const [aListen, aHttp, aProxied, bListen, bHttp, bProxied] = ports as [number, number, number, number, number, number];
    const site = (name: 'a' | 'b', listen: number, http: number, proxied: number): Site => ({
      name,
      listen,
      http,
      proxied,
      process: null,
      role: 'backup',
      runs: [],
      restarts: 0,
    });
    this.sites = { a: site('a', aListen, aHttp, aProxied), b: site('b', bListen, bHttp, bProxied) };
    const dir = mkdtempSync(join(tmpdir(), 'hbft-pair-'));
    this.keyFile = join(dir, 'key');
    writeFileSync(this.keyFile, 'test-key-0123456789-abcdef\n');
  }

  /** Site b as the backup, site a as the primary, and waits until a checkpoint protects the guest. */
  static async start(options: PairOptions = {}): Promise<Pair> {
    const pair = new Pair(await freePorts(6), options);
    try {
      for (const site of [pair.sites.a, pair.sites.b]) {
        const upstream = { host: pair.daemonHost, port: site.listen };
        await pair.registry.create({
          name: `to-${site.name}`,
          listen: { host: pair.proxyHost, port: site.proxied },
          upstream: (await options.upstreamVia?.(site.name, upstream)) ?? upstream,
          enabled: true,
          partition: 'cut',
        });
      }
      pair.startBackup(pair.sites.b);
      await pair.waitReady(pair.sites.b.http, () => true, 20_000);
      pair.startPrimary(pair.sites.a);
      await pair.waitProtected(pair.sites.b);
    } catch (error) {
      // The caller gets no pair to stop: stop it here, or its processes outlive the test.
      await pair.stop();
      throw error;
    }
    return pair;
  }

  get daemonHost(): string {
    return this.options.daemonHost ?? '127.0.0.1';
  }

  get proxyHost(): string {
    return this.options.proxyHost ?? '127.0.0.1';
  }

  other(site: Site): Site {
    return site.name === 'a' ? this.sites.b : this.sites.a;
  }

  private commonArgs(site: Site): string[] {
    return [
      '--memory',
      this.options.memory ?? '32MiB',
      '--heartbeat-ms',
      String(this.options.heartbeatMs ?? PAIR_HEARTBEAT_MS),
      '--failover-timeout-ms',
      String(this.options.failoverTimeoutMs ?? PAIR_FAILOVER_TIMEOUT_MS),
      ...(this.options.insecure === true ? ['--insecure'] : ['--key-file', this.keyFile]),
      '--http',
      `${this.daemonHost}:${site.http}`,
      ...(this.options.guest === undefined ? [] : ['--guest', this.options.guest]),
      ...(this.options.siteArgs?.(site.name) ?? []),
      ...(this.options.args ?? []),
    ];
  }

  private spawnSite(site: Site, role: 'primary' | 'backup', args: string[]): void {
    const launch = this.options.launch ?? ((argv: string[], options: SpawnOptions) => spawn(process.execPath, argv, options));
    const child = launch([...(this.options.nodeArgs ?? []), CLI, role, ...args, ...this.commonArgs(site)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HBFT_LOG_LEVEL: 'info' },
    });
    const log: string[] = [];
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line) log.push(line);
      if (log.length > 3000) log.splice(0, log.length - 3000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    site.process = child;
    site.role = role;
    const run: SiteRun = { role, log, exit, child };
    site.runs.push(run);
    child.on('exit', () => (run.exitedAtMs = Date.now()));
    // As the demo: a site whose process dies is started again as the backup.
    child.on('exit', () => {
      if (this.stopping || site.process !== child) return;
      site.process = null;
      if (site.role === 'primary') this.other(site).role = 'primary';
      setTimeout(() => {
        if (this.stopping || site.process !== null) return;
        site.restarts++;
        this.startBackup(site);
      }, 500);
    });
  }

  startBackup(site: Site): void {
    this.spawnSite(site, 'backup', [
      '--listen',
      `${this.daemonHost}:${site.listen}`,
      '--reprotect',
      `${this.proxyHost}:${this.other(site).proxied}`,
    ]);
  }

  startPrimary(site: Site): void {
    const guest = this.options.guest === undefined ? ['--guest', 'kv'] : [];
    this.spawnSite(site, 'primary', ['--backup', `${this.proxyHost}:${this.other(site).proxied}`, ...guest]);
  }

  kill(site: Site): void {
    const run = site.runs.find((candidate) => candidate.child === site.process);
    if (run !== undefined && run.exitedAtMs === undefined) run.killedAtMs ??= Date.now();
    site.process?.kill('SIGKILL');
  }

  /** Cuts both proxies of the link (connections closed, new ones refused). */
  async partition(mode: 'cut' | 'stall' = 'cut'): Promise<void> {
    for (const name of ['to-a', 'to-b']) await this.registry.update(name, { enabled: false, partition: mode });
  }

  /** Both proxies back, every toxic gone (`chaos clear`). */
  async heal(): Promise<void> {
    await this.registry.reset();
  }

  async readiness(site: Site): Promise<{ status: number; body: Record<string, unknown> } | null> {
    try {
      const response = await fetch(`http://${this.daemonHost}:${site.http}/readyz`, { signal: AbortSignal.timeout(2_000) });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    } catch {
      return null;
    }
  }

  private async waitReady(
    port: number,
    accept: (body: Record<string, unknown>, status: number) => boolean,
    timeoutMs: number,
  ): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      try {
        const response = await fetch(`http://${this.daemonHost}:${port}/readyz`, { signal: AbortSignal.timeout(2_000) });
        if (accept((await response.json()) as Record<string, unknown>, response.status)) return;
      } catch {
        // not up yet
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`timed out waiting for /readyz on port ${port}\n${this.logs()}`);
  }

  /** Until `site` runs as a primary of at least `generation`. */
  async waitPrimary(site: Site, generation: number, timeoutMs = 20_000): Promise<void> {
    await this.waitReady(site.http, (body) => body.role === 'primary' && Number(body.generation) >= generation, timeoutMs);
  }

  /** Until `site` is a backup holding a checkpoint it could take over from. */
  async waitProtected(site: Site, timeoutMs = 30_000): Promise<void> {
    await this.waitReady(site.http, (body, status) => body.role === 'backup' && status === 200 && body.mode === 'protecting', timeoutMs);
  }

  /** Until `condition()` holds; fails with the daemons' logs after `timeoutMs`. */
  async waitUntil(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!condition()) {
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}\n${this.logs()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * Runs a test's body and fails it with the daemons' logs if it throws or has not ended within
   * `timeoutMs`: give less than the test's own timeout, which ends a test without a word about why.
   */
  async within<T>(timeoutMs: number, body: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the test did not end within ${timeoutMs} ms\n${this.logs(80)}`)), timeoutMs);
    });
    try {
      return await Promise.race([body(), expired]);
    } catch (error) {
      const message = (error as Error).message;
      if (message.includes('--- site ')) throw error;
      throw new Error(`${message}\n${this.logs()}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  logs(lines = 40): string {
    const parts: string[] = [];
    for (const site of [this.sites.a, this.sites.b]) {
      for (const [index, run] of site.runs.entries()) {
        parts.push(
          `--- site ${site.name} run ${index + 1} (${run.role}, exit ${run.child.exitCode ?? run.child.signalCode ?? 'running'}) ---`,
          ...run.log.slice(-lines),
        );
      }
    }
    return parts.join('\n');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [this.sites.a, this.sites.b].map(async (site) => {
        const child = site.process;
        if (child === null || child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await new Promise((resolve) => child.once('exit', resolve));
        clearTimeout(timer);
      }),
    );
    await this.registry.close();
  }
}
