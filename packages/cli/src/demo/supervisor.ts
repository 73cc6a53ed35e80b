import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { HbftError, assert } from '@hbft/common/errors.ts';
import { listenOn, type ListenError } from '@hbft/common/transport/listen.ts';
import { FRONT_ADDRESS, FRONT_PREFIX_LENGTH, GUEST_ADDRESS, GUEST_TAP, type NetnsTopology, REPL_ADDRESS } from '../netns/topology.ts';
import { forwardTcpToUnix } from '../netns/forward.ts';

const CLI = fileURLToPath(new URL('../../bin/hbft.js', import.meta.url));

export interface DemoOptions {
  dir: string;
  memory: string;
  guest: string;
  basePort: number;
  clients: number;
  host: string;
  /**
   * Where the nodes run. `loopback`: on this machine's loopback, each node serving clients at its
   * own port. `netns`: on the namespace topology (netns/topology.ts), the guest on the client LAN
   * at its own address through the primary's TAP, reached from `host` through forwarders.
   */
  network: { kind: 'loopback' } | { kind: 'netns'; topology: NetnsTopology };
  /** A child the demo cannot run without has died: the caller should stop the demo. */
  onFatal?: (reason: string) => void;
}

/** One side of the demo: it runs a primary or a backup, and comes back as a backup if it dies. */
interface Site {
  name: 'a' | 'b';
  /** Its host in the namespace topology (site a starts as primary, on the primary host). */
  node: 'primary' | 'backup';
  listen: number;
  serve: number;
  http: number;
  /** The proxy port through which the other site reaches this site's backup. */
  proxied: number;
  process: ChildProcess | null;
  role: 'primary' | 'backup';
  restarts: number;
}

export interface DemoState {
  mode: 'local';
  /** The supervisor (`hbft demo`): the scripts check that it still runs before they trust the file. */
  pid: number;
  dir: string;
  keyFile: string;
  /** `netns`: the nodes run in network namespaces, `serve` and `http` are forwarded from this machine. */
  network: 'loopback' | 'netns';
  /** `netns`: the namespace a slot's node runs in (the scripts find its pid there). */
  primary: { site: string; pid: number | null; serve: string; http: string; replication: string; netns?: string };
  backup: { site: string; pid: number | null; serve: string; http: string; listen: string; netns?: string };
  /** `proxies`: every proxy of the replication link, one per direction a takeover can send it. */
  chaos: { api: string; proxies: string[]; pid: number | null };
  load: { pid: number | null; history: string } | null;
  dashboard: string;
}

const DEMO_HEARTBEAT_MS = 30;
const DEMO_FAILOVER_TIMEOUT_MS = 300;
/** How long the load may take to drain and make its final read when the demo stops. */
const LOAD_STOP_MS = 25_000;
/**
 * How long one status request may take. Without a bound a request could wait for ever: Node's
 * fetch never settles when a forwarder accepts its connection and then closes it (the node behind
 * it not listening yet), which is what the namespace demo's forwarders do while a node starts.
 */
const STATUS_REQUEST_MS = 2_000;
/** How long a daemon may take to stop after SIGTERM before it gets SIGKILL. */
const CHILD_STOP_MS = 5_000;

async function assertPortFree(host: string, port: number): Promise<void> {
  const server = createServer();
  await listenOn(server, host, port, 'the demo').catch((error: ListenError) => {
    throw new HbftError('E_PORT_IN_USE', `${error.message}; stop whatever holds it or pass --base-port`);
  });
  await new Promise((resolveClose) => server.close(resolveClose));
}

/** SIGTERM to a child, SIGKILL if it has not exited after `graceMs`; resolves once it has exited. */
function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise<void>((resolveChild) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolveChild();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveChild();
    });
    child.kill('SIGTERM');
  });
}

/**
 * The local demo without Docker: a chaos proxy, two sites that take turns as primary and backup,
 * and a load generator. Every process is a real `hbft` child with its log in `<dir>/logs/`.
 */
export class DemoSupervisor {
  private readonly options: DemoOptions;
  private readonly sites: Record<'a' | 'b', Site>;
  private readonly children = new Set<ChildProcess>();
  private chaos: ChildProcess | null = null;
  private load: ChildProcess | null = null;
  private stopping = false;
  /** Closes each forward from this machine, with its connections. */
  private hostForwards: (() => void)[] = [];
  private socketDir: string | null = null;
  private readonly keyFile: string;
  private readonly statePath: string;
  private readonly logDir: string;
  readonly chaosApi: string;

  constructor(options: DemoOptions) {
    this.options = options;
    const base = options.basePort;
    this.sites = {
      a: {
        name: 'a',
        node: 'primary',
        listen: base + 1,
        serve: 6379,
        http: 9100,
        proxied: base + 10,
        process: null,
        role: 'primary',
        restarts: 0,
      },
      b: {
        name: 'b',
        node: 'backup',
        listen: base + 2,
        serve: 6380,
        http: 9101,
        proxied: base + 20,
        process: null,
        role: 'backup',
        restarts: 0,
      },
    };
    if (base !== 7000) {
      this.sites.a.serve = base + 379;
      this.sites.b.serve = base + 380;
      this.sites.a.http = base + 100;
      this.sites.b.http = base + 101;
    }
    this.chaosApi = `${options.host}:${base + 1474}`;
    mkdirSync(options.dir, { recursive: true });
    this.logDir = join(options.dir, 'logs');
    mkdirSync(this.logDir, { recursive: true });
    this.keyFile = join(options.dir, 'replication.key');
    if (!existsSync(this.keyFile)) writeFileSync(this.keyFile, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
    this.statePath = join(options.dir, 'demo.json');
  }

  private other(site: Site): Site {
    return site.name === 'a' ? this.sites.b : this.sites.a;
  }

  /** The namespace topology when the demo runs on one. */
  private get topology(): NetnsTopology | null {
    return this.options.network.kind === 'netns' ? this.options.network.topology : null;
  }

  private spawnHbft(name: string, args: string[], node?: 'primary' | 'backup' | 'client' | 'chaos'): ChildProcess {
    const topology = this.topology;
    const argv = [process.execPath, CLI, ...args];
    const [command, ...commandArgs] = topology !== null && node !== undefined ? topology.execArgv(node, argv) : argv;
    assert(command !== undefined, 'an argv has a command');
    const log = createWriteStream(join(this.logDir, `${name}.log`), { flags: 'a' });
    // Each child in its own process group: Ctrl-C in the terminal signals the whole foreground
    // group, and it must reach only the supervisor, which stops the load first (its final read
    // needs the nodes up) and the nodes after it. The 'exit' hook below kills what is left.
    const child = spawn(command, commandArgs, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HBFT_LOG_LEVEL: 'info' },
      detached: true,
    });
    assert(child.stdout !== null && child.stderr !== null, 'sites are spawned with stdout and stderr piped');
    // Two sources share one file: neither may end it (the first to close would, and the other's
    // next line would be a write after end, an 'error' that took the supervisor down at Ctrl-C);
    // it ends when the child has closed both. A log that cannot be written costs the log, not the demo.
    log.on('error', (error) => process.stderr.write(`demo: the log of ${name} cannot be written: ${error.message}\n`));
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.on('close', () => log.end());
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** The address a site's node serves and reports at: its host's own in the namespaces. */
  private frontHost(site: Site): string {
    return this.topology !== null ? FRONT_ADDRESS[site.node] : this.options.host;
  }

  /** The address a site's node replicates at (the replication network in the namespaces). */
  private replicationHost(site: Site): string {
    return this.topology !== null ? REPL_ADDRESS[site.node] : this.options.host;
  }

  /** Where the chaos proxy's ports are. */
  private chaosHost(): string {
    return this.topology !== null ? REPL_ADDRESS.chaos : this.options.host;
  }

  private siteArgs(site: Site): string[] {
    const host = this.frontHost(site);
    // In the namespaces the guest is kvnet on the node's TAP, at its own address on the LAN.
    const network = this.topology !== null ? ['--tap', GUEST_TAP, '--guest-ip', `${GUEST_ADDRESS}/${FRONT_PREFIX_LENGTH}`] : [];
    return [
      ...network,
      '--memory',
      this.options.memory,
      // As in docker-compose.yml and two-hosts.sh: the chaos scripts the demo points to (latency
      // 100 ms each way, say) must not look like a dead primary; 100 ms would take over at once.
      '--heartbeat-ms',
      String(DEMO_HEARTBEAT_MS),
      '--failover-timeout-ms',
      String(DEMO_FAILOVER_TIMEOUT_MS),
      '--key-file',
      this.keyFile,
      '--serve',
      `${host}:${site.serve}`,
      '--http',
      `${host}:${site.http}`,
      '--peer-http',
      `${this.frontHost(this.other(site))}:${this.other(site).http}`,
    ];
  }

  private startBackup(site: Site): void {
    site.role = 'backup';
    // A node that takes over protects itself again through the proxy in front of the other site.
    site.process = this.spawnHbft(
      `site-${site.name}-backup-${site.restarts}`,
      [
        'backup',
        '--listen',
        `${this.replicationHost(site)}:${site.listen}`,
        '--reprotect',
        `${this.chaosHost()}:${this.other(site).proxied}`,
        // The backup needs the guest's name for its MAC on the TAP.
        ...(this.topology !== null ? ['--guest', this.options.guest] : []),
        ...this.siteArgs(site),
      ],
      site.node,
    );
    this.watch(site, site.process);
  }

  private startPrimary(site: Site): void {
    site.role = 'primary';
    site.process = this.spawnHbft(
      `site-${site.name}-primary`,
      ['primary', '--backup', `${this.chaosHost()}:${this.other(site).proxied}`, '--guest', this.options.guest, ...this.siteArgs(site)],
      site.node,
    );
    this.watch(site, site.process);
  }

  /** A site whose process dies is started again as the backup: the survivor re-protects to it. */
  private watch(site: Site, child: ChildProcess): void {
    child.on('exit', (code, signal) => {
      if (this.stopping || site.process !== child) return;
      site.process = null;
      process.stdout.write(
        `demo: site ${site.name} (${site.role}) exited (${signal ?? `code ${code}`}); restarting it as the backup in 1 s\n`,
      );
      if (site.role === 'primary') this.other(site).role = 'primary';
      setTimeout(() => {
        if (this.stopping) return;
        site.restarts++;
        this.startBackup(site);
        this.writeState();
      }, 1000);
      this.writeState();
    });
  }

  /**
   * However this process ends (an error, an unexpected exit), no child outlives it and no
   * demo.json is left behind for the scripts to act on.
   */
  private readonly onProcessExit = (): void => {
    rmSync(this.statePath, { force: true });
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    this.removeTopology();
  };

  /** Ends whatever still runs in the namespaces and deletes them, with the forwarders' sockets. */
  private removeTopology(): void {
    for (const close of this.hostForwards) close();
    this.hostForwards = [];
    try {
      this.topology?.down();
    } catch (error) {
      process.stderr.write(`demo: ${(error as Error).message}\n`);
    }
    if (this.socketDir !== null) rmSync(this.socketDir, { recursive: true, force: true });
  }

  /**
   * The namespaces, and the forwarders that carry connections from this machine into them: the
   * guest at serve (site a's client port), each site's status server at its http port and the
   * chaos API at its port, each through a Unix socket to a forwarder inside the client's (or the
   * chaos) namespace. Neither end of a forwarder is a node, so killing a node ends no connection.
   */
  private async startTopology(topology: NetnsTopology): Promise<void> {
    topology.up();
    this.socketDir = mkdtempSync(join(tmpdir(), 'hbft-demo-'));
    const socket = (name: string) => join(this.socketDir ?? '', `${name}.sock`);
    const { a, b } = this.sites;
    const client = [
      { socket: socket('guest'), to: `${GUEST_ADDRESS}:6379`, port: a.serve, what: 'the guest (redis-cli -p)' },
      { socket: socket('site-a'), to: `${FRONT_ADDRESS[a.node]}:${a.http}`, port: a.http, what: "site a's status server" },
      { socket: socket('site-b'), to: `${FRONT_ADDRESS[b.node]}:${b.http}`, port: b.http, what: "site b's status server" },
    ];
    const chaosPort = Number(this.chaosApi.split(':')[1]);
    const chaos = [{ socket: socket('chaos'), to: `127.0.0.1:${chaosPort}`, port: chaosPort, what: 'the chaos API' }];
    const pairs = (forwards: typeof client) => forwards.flatMap((forward) => ['--unix', forward.socket, '--to', forward.to]);
    this.spawnHbft('forward-client', ['topology', 'forward', ...pairs(client)], 'client');
    this.spawnHbft('forward-chaos', ['topology', 'forward', ...pairs(chaos)], 'chaos');
    for (const forward of [...client, ...chaos]) {
      const { close } = await forwardTcpToUnix(this.options.host, forward.port, forward.socket, `the demo's forward to ${forward.what}`);
      this.hostForwards.push(close);
    }
  }

  async start(): Promise<void> {
    process.on('exit', this.onProcessExit);
    const host = this.options.host;
    const ports = [
      ...Object.values(this.sites).flatMap((s) => [s.listen, s.serve, s.http, s.proxied]),
      Number(this.chaosApi.split(':')[1]),
    ];
    const topology = this.topology;
    // In the namespaces only the forwarded ports are this machine's.
    const hostPorts =
      topology !== null ? [this.sites.a.serve, this.sites.a.http, this.sites.b.http, Number(this.chaosApi.split(':')[1])] : ports;
    for (const port of hostPorts) await assertPortFree(host, port);
    if (topology !== null) await this.startTopology(topology);
    const { a, b } = this.sites;
    const chaosHost = this.chaosHost();
    this.chaos = this.spawnHbft(
      'chaos',
      [
        'chaos',
        'proxy',
        '--api',
        topology !== null ? `127.0.0.1:${this.chaosApi.split(':')[1]}` : this.chaosApi,
        '--proxy',
        `to-b=${chaosHost}:${b.proxied}>${this.replicationHost(b)}:${b.listen}`,
        '--proxy',
        `to-a=${chaosHost}:${a.proxied}>${this.replicationHost(a)}:${a.listen}`,
      ],
      'chaos',
    );
    const chaos = this.chaos;
    chaos.on('exit', (code, signal) => {
      if (!this.stopping)
        this.options.onFatal?.(
          `the chaos proxy exited (${signal ?? `code ${code}`}); the replication link is gone (see ${this.logDir}/chaos.log)`,
        );
    });
    this.startBackup(b);
    await this.waitHttp(b.http, '/healthz', 30_000);
    this.startPrimary(a);
    await this.waitHttp(a.http, '/healthz', 30_000);
    this.writeState();
  }

  /** Prints the initial synchronisation's progress until the backup can take over. */
  async waitProtected(onProgress: (line: string) => void): Promise<void> {
    const deadline = performance.now() + 120_000;
    let lastLine = '';
    while (performance.now() < deadline && !this.stopping) {
      const primary = await this.readiness(this.sites.a.http);
      const backup = await this.readiness(this.sites.b.http);
      const sync = primary?.fullSync as { sent: number; total: number } | null | undefined;
      const line = sync
        ? `initial synchronisation: ${sync.sent}/${sync.total} non-zero pages`
        : `primary ${String(primary?.protection ?? 'starting')}, backup ${String(backup?.mode ?? 'starting')}`;
      if (line !== lastLine) onProgress(line);
      lastLine = line;
      if (backup?.ready === true) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  startLoad(): void {
    if (this.stopping) return;
    const history = join(this.options.dir, 'load-history.jsonl');
    // In the namespaces the load runs on the client's host and speaks plain RESP to the guest.
    const servers = this.topology !== null ? ['--plain', '--servers', `${GUEST_ADDRESS}:6379`] : ['--servers', this.servers().join(',')];
    const load = this.spawnHbft(
      'load',
      ['load', ...servers, '--clients', String(this.options.clients), '--duration-s', String(7 * 24 * 3600), '--history', history],
      'client',
    );
    load.on('exit', (code, signal) => {
      if (this.stopping) return;
      process.stdout.write(
        `demo: the load generator exited (${signal ?? `code ${code}`}); its history is in ${history}; the demo goes on without load\n`,
      );
      this.writeState();
    });
    this.load = load;
    this.writeState();
  }

  /** Where clients on this machine reach the guest: each site's port, or the one forward to the guest. */
  servers(): [siteA: string, siteB: string] {
    const { host } = this.options;
    if (this.topology !== null) return [`${host}:${this.sites.a.serve}`, `${host}:${this.sites.a.serve}`];
    return [`${host}:${this.sites.a.serve}`, `${host}:${this.sites.b.serve}`];
  }

  private async readiness(port: number): Promise<Record<string, unknown> | null> {
    try {
      const response = await fetch(`http://${this.options.host}:${port}/readyz`, { signal: AbortSignal.timeout(STATUS_REQUEST_MS) });
      return (await response.json()) as Record<string, unknown>;
    } catch {
      return null;
    }
  }

  private async waitHttp(port: number, path: string, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      try {
        const response = await fetch(`http://${this.options.host}:${port}${path}`, { signal: AbortSignal.timeout(STATUS_REQUEST_MS) });
        if (response.ok) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new HbftError('E_DEMO_START', `a demo node did not come up on port ${port} within ${timeoutMs / 1000} s; see ${this.logDir}`);
  }

  dashboardUrl(): string {
    const primary = this.primarySite();
    return `http://${this.options.host}:${primary.http}/?peer=${this.options.host}:${this.other(primary).http}`;
  }

  private primarySite(): Site {
    return this.sites.a.role === 'primary' ? this.sites.a : this.sites.b;
  }

  state(): DemoState {
    const host = this.options.host;
    const primary = this.primarySite();
    const backup = this.other(primary);
    const running = (child: ChildProcess | null) =>
      child !== null && child.exitCode === null && child.signalCode === null ? (child.pid ?? null) : null;
    const [serve] = this.servers();
    const netns = (site: Site) => (this.topology !== null ? { netns: this.topology.namespace(site.node) } : {});
    return {
      mode: 'local',
      network: this.options.network.kind,
      pid: process.pid,
      dir: resolve(this.options.dir),
      keyFile: resolve(this.keyFile),
      primary: {
        site: primary.name,
        pid: primary.process?.pid ?? null,
        serve: this.topology !== null ? serve : `${host}:${primary.serve}`,
        http: `${host}:${primary.http}`,
        replication: `${this.chaosHost()}:${backup.proxied}`,
        ...netns(primary),
      },
      backup: {
        site: backup.name,
        pid: backup.process?.pid ?? null,
        serve: this.topology !== null ? serve : `${host}:${backup.serve}`,
        http: `${host}:${backup.http}`,
        listen: `${this.replicationHost(backup)}:${backup.listen}`,
        ...netns(backup),
      },
      // Both, whoever is primary now: a change made to one of them alone would follow the roles,
      // and a takeover would leave it behind on the proxy the link no longer uses.
      chaos: { api: this.chaosApi, proxies: ['to-a', 'to-b'], pid: this.chaos?.pid ?? null },
      load: this.load ? { pid: running(this.load), history: resolve(join(this.options.dir, 'load-history.jsonl')) } : null,
      dashboard: this.dashboardUrl(),
    };
  }

  /** Written whole and renamed into place: a script (or test) reading it never sees half a file. */
  writeState(): void {
    if (this.stopping) return;
    writeFileSync(`${this.statePath}.tmp`, `${JSON.stringify(this.state(), null, 2)}\n`);
    renameSync(`${this.statePath}.tmp`, this.statePath);
  }

  /**
   * Removes demo.json at once (the scripts must not act on a demo that is going away), stops the
   * load first so that it drains and makes its final read while the nodes still serve, then every
   * other child (SIGTERM, then SIGKILL after a while).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    rmSync(this.statePath, { force: true });
    if (this.load) await stopChild(this.load, LOAD_STOP_MS);
    await Promise.all([...this.children].map((child) => stopChild(child, CHILD_STOP_MS)));
    this.removeTopology();
    process.off('exit', this.onProcessExit);
  }

  /** The demo's state file, for scripts. */
  static readState(dir: string): DemoState | null {
    const path = join(dir, 'demo.json');
    return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as DemoState) : null;
  }
}
