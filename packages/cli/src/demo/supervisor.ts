import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { HbftError, assert } from '@hbft/common/errors.ts';
import { listenOn, type ListenError } from '@hbft/common/transport/listen.ts';
import {
  FRONT_ADDRESS,
  FRONT_PREFIX_LENGTH,
  GUEST_ADDRESS,
  GUEST_TAP,
  REPL_ADDRESS,
  type TopologyNode,
  prefixForProcess,
} from '../netns/topology.ts';
import { forwardTcpToUnix } from '../netns/forward.ts';
import { TopologyHolder } from '../netns/holder.ts';
import type { NamespaceRoute } from '../netns/privilege.ts';

const CLI = fileURLToPath(new URL('../../bin/hbft.js', import.meta.url));

export interface DemoOptions {
  dir: string;
  memory: string;
  guest: string;
  basePort: number;
  clients: number;
  host: string;
  /**
   * How the namespace topology (netns/topology.ts) is built: as root, or in a user namespace of
   * this user (netns/holder.ts). Either way the guest is on the client LAN at its own address
   * through the primary's TAP, reached from `host` through forwarders.
   */
  route: NamespaceRoute;
  /** The topology's namespaces are `<prefix>-*`. */
  prefix: string;
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
  /** Always `netns`: the nodes run in network namespaces, `serve` and `http` are forwarded from this machine. */
  network: 'netns';
  /**
   * How the namespaces were built (`root`: the machine's own; `user`: in a user namespace of the
   * user who runs the demo, held by process `holder`), and `exec`: the command prefix that runs a
   * command in the client's namespace (e.g. `<exec> redis-cli -h 10.77.0.10`).
   */
  namespaces: { route: NamespaceRoute; holder: number; exec: string };
  /** `netns`: the namespace a slot's node runs in (as root the scripts find its pid there; else `pid`). */
  primary: { site: string; pid: number | null; serve: string; http: string; replication: string; netns: string };
  backup: { site: string; pid: number | null; serve: string; http: string; listen: string; netns: string };
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

/** Where the sockets between the demo and its namespaces go: `<tmp>/<prefix>-XXXXXX`. */
function socketBase(): string {
  // On the user route the namespaces may see an empty /run of their own (netns/topology.ts,
  // mountPrivateNetnsDir), so a socket under /run would be one the forwarder inside cannot make.
  const base = tmpdir();
  return base === '/run' || base.startsWith('/run/') ? '/tmp' : base;
}

/**
 * Removes the socket directories of demos that are gone (`<prefix of a dead pid>-*`): a demo that
 * was killed outright could not remove its own.
 */
export function sweepStaleSocketDirs(tag: string): string[] {
  const pattern = new RegExp(`^${tag}-([0-9a-z]+)-[A-Za-z0-9]{6}$`);
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(socketBase());
  } catch {
    return removed;
  }
  for (const name of names) {
    const match = pattern.exec(name);
    if (match?.[1] === undefined) continue;
    const pid = Number.parseInt(match[1], 36);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (error) {
      alive = (error as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (alive) continue;
    try {
      rmSync(join(socketBase(), name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // another user's, or gone already
    }
  }
  return removed;
}

/**
 * The local demo without Docker: the namespace topology (as root, or in a user namespace of this
 * user), a chaos proxy, two sites that take turns as primary and backup, a load generator, and the
 * forwarders from this machine's 127.0.0.1 into the namespaces. Every process is a real `hbft`
 * child with its log in `<dir>/logs/`.
 *
 * Processes, on the user route (as root the same without the user namespace):
 *
 *   hbft demo (this process; this machine's network: 127.0.0.1:6379, :9100, :9101, the chaos API)
 *   ├─ unshare --user --net --mount … hbft topology hold    the topology; tears it down when its
 *   │                                                       input (held here) ends
 *   ├─ nsenter -t HOLDER … ip netns exec P-client hbft topology forward   Unix sockets → the LAN
 *   ├─ … P-chaos: hbft topology forward (the chaos API), hbft chaos proxy
 *   ├─ … P-primary / P-backup: hbft primary / hbft backup (site a / site b)
 *   └─ … P-client: hbft load
 */
export class DemoSupervisor {
  private readonly options: DemoOptions;
  private readonly sites: Record<'a' | 'b', Site>;
  private readonly children = new Set<ChildProcess>();
  private holder: TopologyHolder | null = null;
  private chaos: ChildProcess | null = null;
  private load: ChildProcess | null = null;
  private stopping = false;
  /** Closes each forward from this machine, with its connections. */
  private hostForwards: (() => void)[] = [];
  private socketDir: string | null = null;
  /** Absolute: children joining the user namespace start in its root directory. */
  private readonly dir: string;
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
    this.dir = resolve(options.dir);
    mkdirSync(this.dir, { recursive: true });
    this.logDir = join(this.dir, 'logs');
    mkdirSync(this.logDir, { recursive: true });
    this.keyFile = join(this.dir, 'replication.key');
    if (!existsSync(this.keyFile)) writeFileSync(this.keyFile, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
    this.statePath = join(this.dir, 'demo.json');
  }

  private other(site: Site): Site {
    return site.name === 'a' ? this.sites.b : this.sites.a;
  }

  private get topology(): TopologyHolder {
    assert(this.holder !== null, 'the topology is up before any process starts in it');
    return this.holder;
  }

  private logStream(name: string) {
    const log = createWriteStream(join(this.logDir, `${name}.log`), { flags: 'a' });
    log.on('error', (error) => process.stderr.write(`demo: the log of ${name} cannot be written: ${error.message}\n`));
    return log;
  }

  /** `hbft ARGS` in NODE's namespace, its output in `<dir>/logs/NAME.log`. */
  private spawnHbft(name: string, args: string[], node: TopologyNode): ChildProcess {
    const [command, ...commandArgs] = this.topology.execArgv(node, [process.execPath, CLI, ...args]);
    assert(command !== undefined, 'an argv has a command');
    const log = this.logStream(name);
    // Each child in its own process group: Ctrl-C in the terminal signals the whole foreground
    // group, and it must reach only the supervisor, which stops the load first (its final read
    // needs the nodes up) and the nodes after it. The 'exit' hook below kills what is left.
    const child = spawn(command, commandArgs, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HBFT_LOG_LEVEL: 'info', TMPDIR: socketBase() },
      detached: true,
    });
    assert(child.stdout !== null && child.stderr !== null, 'sites are spawned with stdout and stderr piped');
    // Two sources share one file: neither may end it (the first to close would, and the other's
    // next line would be a write after end, an 'error' that took the supervisor down at Ctrl-C);
    // it ends when the child has closed both. A log that cannot be written costs the log, not the demo.
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.on('close', () => log.end());
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** The node's flags common to both roles: the guest (kvnet) on the node's TAP, at its own address on the LAN. */
  private siteArgs(site: Site): string[] {
    const host = FRONT_ADDRESS[site.node];
    const other = this.other(site);
    return [
      '--tap',
      GUEST_TAP,
      '--guest-ip',
      `${GUEST_ADDRESS}/${FRONT_PREFIX_LENGTH}`,
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
      '--http',
      `${host}:${site.http}`,
      '--peer-http',
      `${FRONT_ADDRESS[other.node]}:${other.http}`,
    ];
  }

  private startBackup(site: Site): void {
    site.role = 'backup';
    // A node that takes over protects itself again through the proxy in front of the other site.
    // The backup needs the guest's name for its MAC on the TAP.
    site.process = this.spawnHbft(
      `site-${site.name}-backup-${site.restarts}`,
      [
        'backup',
        '--listen',
        `${REPL_ADDRESS[site.node]}:${site.listen}`,
        '--reprotect',
        `${REPL_ADDRESS.chaos}:${this.other(site).proxied}`,
        '--guest',
        this.options.guest,
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
      ['primary', '--backup', `${REPL_ADDRESS.chaos}:${this.other(site).proxied}`, '--guest', this.options.guest, ...this.siteArgs(site)],
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
   * demo.json or socket is left behind for the scripts to act on. (Killed outright, it cannot run
   * this: the holder sees its input end and removes the namespaces with everything in them.)
   */
  private readonly onProcessExit = (): void => {
    rmSync(this.statePath, { force: true });
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    this.closeHostForwards();
    this.holder?.stopNow();
  };

  private closeHostForwards(): void {
    for (const close of this.hostForwards) close();
    this.hostForwards = [];
    if (this.socketDir !== null) rmSync(this.socketDir, { recursive: true, force: true });
    this.socketDir = null;
  }

  /**
   * The namespaces, and the forwarders that carry connections from this machine into them: the
   * guest at serve (site a's client port), each site's status server at its http port and the
   * chaos API at its port, each through a Unix socket to a forwarder inside the client's (or the
   * chaos) namespace. Neither end of a forwarder is a node, so killing a node ends no connection.
   */
  private async startTopology(): Promise<void> {
    this.holder = await TopologyHolder.start(this.options.route, this.options.prefix, this.logStream('topology'));
    this.holder.onExit((reason) => {
      if (!this.stopping) this.options.onFatal?.(`the holder of the namespaces exited (${reason}); see ${this.logDir}/topology.log`);
    });
    this.socketDir = mkdtempSync(join(socketBase(), `${this.options.prefix}-`));
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
    const { a, b } = this.sites;
    // Only the forwarded ports are this machine's; the others are inside the namespaces.
    for (const port of [a.serve, a.http, b.http, Number(this.chaosApi.split(':')[1])]) await assertPortFree(this.options.host, port);
    await this.startTopology();
    this.chaos = this.spawnHbft(
      'chaos',
      [
        'chaos',
        'proxy',
        '--api',
        `127.0.0.1:${this.chaosApi.split(':')[1]}`,
        '--proxy',
        `to-b=${REPL_ADDRESS.chaos}:${b.proxied}>${REPL_ADDRESS[b.node]}:${b.listen}`,
        '--proxy',
        `to-a=${REPL_ADDRESS.chaos}:${a.proxied}>${REPL_ADDRESS[a.node]}:${a.listen}`,
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

  /** The load runs on the client's host and speaks plain RESP to the guest's own address. */
  startLoad(): void {
    if (this.stopping) return;
    const history = this.historyPath();
    const load = this.spawnHbft(
      'load',
      [
        'load',
        '--servers',
        `${GUEST_ADDRESS}:6379`,
        '--clients',
        String(this.options.clients),
        '--duration-s',
        String(7 * 24 * 3600),
        '--history',
        history,
      ],
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

  historyPath(): string {
    return join(this.dir, 'load-history.jsonl');
  }

  /** Where clients on this machine reach the guest: the forward to it. */
  guestServe(): string {
    return `${this.options.host}:${this.sites.a.serve}`;
  }

  /** The command prefix that runs a command in the client's namespace (for people). */
  clientExecPrefix(): string {
    return this.topology.execPrefix('client');
  }

  namespaceNames(): string {
    return `${this.options.prefix}-{primary,backup,client,chaos,sw}`;
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
    while (performance.now() < deadline && !this.stopping) {
      try {
        const response = await fetch(`http://${this.options.host}:${port}${path}`, { signal: AbortSignal.timeout(STATUS_REQUEST_MS) });
        if (response.ok) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (this.stopping) return;
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
    const serve = this.guestServe();
    const topology = this.topology;
    return {
      mode: 'local',
      network: 'netns',
      namespaces: { route: topology.route, holder: topology.pid, exec: topology.execPrefix('client') },
      pid: process.pid,
      dir: this.dir,
      keyFile: this.keyFile,
      primary: {
        site: primary.name,
        pid: primary.process?.pid ?? null,
        serve,
        http: `${host}:${primary.http}`,
        replication: `${REPL_ADDRESS.chaos}:${backup.proxied}`,
        netns: topology.namespace(primary.node),
      },
      backup: {
        site: backup.name,
        pid: backup.process?.pid ?? null,
        serve,
        http: `${host}:${backup.http}`,
        listen: `${REPL_ADDRESS[backup.node]}:${backup.listen}`,
        netns: topology.namespace(backup.node),
      },
      // Both, whoever is primary now: a change made to one of them alone would follow the roles,
      // and a takeover would leave it behind on the proxy the link no longer uses.
      chaos: { api: this.chaosApi, proxies: ['to-a', 'to-b'], pid: this.chaos?.pid ?? null },
      load: this.load ? { pid: running(this.load), history: this.historyPath() } : null,
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
   * other child (SIGTERM, then SIGKILL after a while), the forwards, and last the topology.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    rmSync(this.statePath, { force: true });
    if (this.load) await stopChild(this.load, LOAD_STOP_MS);
    await Promise.all([...this.children].map((child) => stopChild(child, CHILD_STOP_MS)));
    this.closeHostForwards();
    await this.holder?.stop();
    process.off('exit', this.onProcessExit);
  }
}

/** The topology prefix of this demo process: `hbft-demo-<pid in base 36>`. */
export const DEMO_TOPOLOGY_TAG = 'hbft-demo';
export function demoPrefix(pid = process.pid): string {
  return prefixForProcess(DEMO_TOPOLOGY_TAG, pid);
}
