import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { HbftError } from '@hbft/common/errors.ts';
import { addBridgeArgs } from './bridge.ts';

/*
 * Where clients reach the guest (issue 11 §7): two node "hosts", a client and a chaos proxy in
 * network namespaces on this machine, wired like real hosts. The one module that builds and tears
 * down the topology: `hbft demo`, scripts/two-hosts.sh (through `hbft topology up|down`) and the
 * tests use it, so the layout is written down once.
 *
 *   PREFIX-sw        the switches: bridge `front` (the client LAN) and bridge `repl` (replication)
 *   PREFIX-primary   bridge front0 = host address 10.77.0.1/24, its ports: uplink0 (a veth to the
 *                    LAN switch) and hbft0, a persistent TAP for the guest's NIC; repl0 10.77.1.1/24
 *   PREFIX-backup    the same with 10.77.0.2 and 10.77.1.2
 *   PREFIX-client    front0 10.77.0.3/24 on the LAN
 *   PREFIX-chaos     repl0 10.77.1.3/24 on the replication network
 *   the guest        10.77.0.10/24 on the LAN, through whichever node's TAP runs it
 *
 * The TAP is persistent and made here, on its node's bridge, so a node process that dies and is
 * started again attaches to the same bridge port (a TAP a process creates goes away with it, and
 * with it its place on the bridge). Each node's bridge has a MAC set, so no port coming or going
 * changes it. Cutting a node's repl0 cuts the replication link and nothing else.
 */

export const TOPOLOGY_NODES = ['primary', 'backup', 'client', 'chaos'] as const;
export type TopologyNode = (typeof TOPOLOGY_NODES)[number];
export type GuestNode = 'primary' | 'backup';

/** The LAN (front) addresses: hosts, and the guest's own address that moves with the primary. */
export const FRONT_ADDRESS: Record<'primary' | 'backup' | 'client', string> = {
  primary: '10.77.0.1',
  backup: '10.77.0.2',
  client: '10.77.0.3',
};
export const GUEST_ADDRESS = '10.77.0.10';
export const FRONT_PREFIX_LENGTH = 24;
export const REPL_ADDRESS: Record<'primary' | 'backup' | 'chaos', string> = {
  primary: '10.77.1.1',
  backup: '10.77.1.2',
  chaos: '10.77.1.3',
};
/** The guest's TAP on each node's bridge (the daemons' `--tap`). */
export const GUEST_TAP = 'hbft0';
/** The node's bridge, which holds its host address (the name of the client's plain link too). */
export const FRONT_LINK = 'front0';
export const REPL_LINK = 'repl0';
const UPLINK = 'uplink0';
const SWITCH_BRIDGES = ['front', 'repl'] as const;

/** Namespace names are interface-name-like and short, so that `PREFIX-primary` stays readable. */
const PREFIX_PATTERN = /^[a-z][a-z0-9-]{0,30}$/;
/** How long processes left in a namespace get after SIGTERM before SIGKILL. */
const END_PROCESSES_MS = 3_000;
/** One `ip` command: they take milliseconds; a hung one is a broken system, not a slow one. */
const IP_COMMAND_MS = 10_000;

export class TopologyError extends HbftError {
  constructor(message: string) {
    super('E_TOPOLOGY', message);
  }
}

interface Ran {
  ok: boolean;
  output: string;
}

function runQuiet(command: string, args: string[]): Ran {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: IP_COMMAND_MS });
  if (result.error) return { ok: false, output: result.error.message };
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
}

function ip(args: string[]): void {
  const result = runQuiet('ip', args);
  if (!result.ok) throw new TopologyError(`ip ${args.join(' ')}: ${result.output || 'failed'}`);
}

/**
 * What building the topology needs besides root (nothing: it can be tried): the ip command and a
 * TUN device. Inside `hbft demo`'s user namespace this process is root too (netns/privilege.ts
 * chooses between the two routes and explains what either lacks).
 */
export function rootPrerequisitesMissing(): string[] {
  const missing: string[] = [];
  if (!runQuiet('ip', ['-V']).ok) missing.push('the ip command (iproute2) is missing: run scripts/install-system-deps.sh');
  if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun does not exist: this kernel has no TUN/TAP support loaded (modprobe tun)');
  return missing;
}

/** The uid map of the initial user namespace: a private /run/netns is never mounted there. */
const INITIAL_UID_MAP = '0 0 4294967295';

/**
 * Gives this process's own mount namespace a /run/netns of its own (a tmpfs), so that `ip netns`
 * works for the root of a user namespace, who may not write the machine's /run. Where /run/netns
 * does not exist (no one has made a named namespace since boot), the tmpfs goes on /run itself and
 * /run/netns is made in it: processes of the topology then see an empty /run, which they do not use.
 * Refuses in the initial user namespace, where it would hide the machine's own namespaces.
 */
export function mountPrivateNetnsDir(): string {
  const uidMap = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/).join(' ');
  if (uidMap === INITIAL_UID_MAP) {
    throw new TopologyError(
      'a private /run/netns is only mounted in a user namespace of its own (hbft demo starts it so), not on the machine itself',
    );
  }
  const target = (() => {
    try {
      return statSync('/run/netns').isDirectory() ? '/run/netns' : '/run';
    } catch {
      return '/run';
    }
  })();
  const mounted = runQuiet('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'hbft-netns', target]);
  if (!mounted.ok) throw new TopologyError(`mount -t tmpfs on ${target} in the user namespace: ${mounted.output || 'failed'}`);
  if (target === '/run') mkdirSync('/run/netns');
  return target;
}

export function namespaceExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`) || existsSync(`/var/run/netns/${name}`);
}

/** The pids of the processes in namespace `name` (none when it does not exist). */
function pidsIn(name: string): number[] {
  if (!namespaceExists(name)) return [];
  const listed = runQuiet('ip', ['netns', 'pids', name]);
  return listed.output
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 0 && pid !== process.pid);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
}

/** Synchronous on purpose: teardown also runs from process.on('exit'), where nothing else can. */
function sleepSyncMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The namespaces of one topology, named PREFIX-NODE and PREFIX-sw. */
export class NetnsTopology {
  readonly prefix: string;

  constructor(prefix: string) {
    if (!PREFIX_PATTERN.test(prefix)) {
      throw new TopologyError(
        `namespace prefix "${prefix}": expected lower-case letters, digits and '-', starting with a letter, at most 31`,
      );
    }
    this.prefix = prefix;
  }

  namespace(node: TopologyNode | 'sw'): string {
    return `${this.prefix}-${node}`;
  }

  /** Every namespace of the topology, the switch last (deleting it first would orphan nothing, but reads worse). */
  namespaces(): string[] {
    return [...TOPOLOGY_NODES.map((node) => this.namespace(node)), this.namespace('sw')];
  }

  exists(): boolean {
    return this.namespaces().some(namespaceExists);
  }

  /** argv that runs `argv` inside NODE's namespace. */
  execArgv(node: TopologyNode, argv: string[]): string[] {
    return ['ip', 'netns', 'exec', this.namespace(node), ...argv];
  }

  /** Builds whatever is missing (idempotent: running daemons and links that exist are left alone). */
  up(): void {
    if (process.getuid?.() !== 0) {
      throw new TopologyError(
        'network namespaces, bridges and TAP devices need root: run it with sudo (hbft demo can also build them in a user namespace)',
      );
    }
    const missing = rootPrerequisitesMissing();
    if (missing.length > 0) throw new TopologyError(missing.join('; '));
    const sw = this.namespace('sw');
    try {
      this.ensureNamespace(sw);
      for (const bridge of SWITCH_BRIDGES) {
        if (!this.hasLink(sw, bridge)) ip(['-n', sw, 'link', 'add', bridge, 'type', 'bridge']);
        ip(['-n', sw, 'link', 'set', bridge, 'up']);
      }
      for (const node of TOPOLOGY_NODES) this.ensureNamespace(this.namespace(node));
      for (const node of ['primary', 'backup'] as const) this.ensureGuestHost(node);
      this.ensureLink('client', 'front', FRONT_LINK, FRONT_ADDRESS.client);
      for (const node of ['primary', 'backup', 'chaos'] as const) this.ensureLink(node, 'repl', REPL_LINK, REPL_ADDRESS[node]);
    } catch (error) {
      if (error instanceof TopologyError) throw new TopologyError(`building the topology ${this.prefix}-*: ${error.message}`);
      throw error;
    }
  }

  /**
   * Ends every process in the namespaces (SIGTERM, SIGKILL after a while) and deletes them; safe
   * after a partial `up` and when nothing exists. Synchronous, so it also runs on process exit.
   */
  down(): void {
    const namespaces = this.namespaces();
    const pids = namespaces.flatMap(pidsIn);
    signalAll(pids, 'SIGTERM');
    const deadline = performance.now() + END_PROCESSES_MS;
    while (pids.some(alive) && performance.now() < deadline) sleepSyncMs(50);
    signalAll(pids.filter(alive), 'SIGKILL');
    for (const name of namespaces) {
      for (const pid of pidsIn(name)) signalAll([pid], 'SIGKILL');
      if (namespaceExists(name)) runQuiet('ip', ['netns', 'del', name]);
    }
    const left = namespaces.filter(namespaceExists);
    if (left.length > 0) throw new TopologyError(`could not delete the namespaces ${left.join(', ')}`);
  }

  private ensureNamespace(name: string): void {
    if (!namespaceExists(name)) ip(['netns', 'add', name]);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
  }

  private hasLink(namespace: string, link: string): boolean {
    return runQuiet('ip', ['-n', namespace, 'link', 'show', link]).ok;
  }

  /** A veth from NODE's namespace (`link`) to a port NODE-NETWORK on the switch's bridge NETWORK. */
  private ensureVeth(node: TopologyNode, network: (typeof SWITCH_BRIDGES)[number], link: string): void {
    const ns = this.namespace(node);
    const sw = this.namespace('sw');
    const port = `${node}-${network}`;
    if (!this.hasLink(ns, link)) ip(['link', 'add', link, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', sw]);
    ip(['-n', sw, 'link', 'set', port, 'master', network, 'up']);
    ip(['-n', ns, 'link', 'set', link, 'up']);
  }

  private ensureLink(node: TopologyNode, network: (typeof SWITCH_BRIDGES)[number], link: string, address: string): void {
    this.ensureVeth(node, network, link);
    ip(['-n', this.namespace(node), 'addr', 'replace', `${address}/24`, 'dev', link]);
  }

  /** A node host: its bridge with its host address, the uplink to the LAN and the guest's TAP on it. */
  private ensureGuestHost(node: GuestNode): void {
    const ns = this.namespace(node);
    // The host's bridge keeps a MAC of its own (bridge.ts).
    if (!this.hasLink(ns, FRONT_LINK)) ip(['-n', ns, ...addBridgeArgs(FRONT_LINK)]);
    ip(['-n', ns, 'addr', 'replace', `${FRONT_ADDRESS[node]}/${FRONT_PREFIX_LENGTH}`, 'dev', FRONT_LINK]);
    ip(['-n', ns, 'link', 'set', FRONT_LINK, 'up']);
    this.ensureVeth(node, 'front', UPLINK);
    ip(['-n', ns, 'link', 'set', UPLINK, 'master', FRONT_LINK]);
    if (!this.hasLink(ns, GUEST_TAP)) ip(['-n', ns, 'tuntap', 'add', 'dev', GUEST_TAP, 'mode', 'tap']);
    ip(['-n', ns, 'link', 'set', GUEST_TAP, 'master', FRONT_LINK, 'up']);
  }
}

/**
 * The topology prefix of a process: `TAG-<pid in base 36>`, so that concurrent runs never collide
 * and a run that died without its teardown is recognised and removed by the next one.
 */
export function prefixForProcess(tag: string, pid = process.pid): string {
  return `${tag}-${pid.toString(36)}`;
}

/** Removes the topologies named by prefixForProcess(tag, pid) whose process is gone; returns their prefixes. */
export function sweepStaleTopologies(tag: string): string[] {
  const listed = runQuiet('ip', ['netns', 'list']);
  const pattern = new RegExp(`^(${tag}-([0-9a-z]+))-(?:${[...TOPOLOGY_NODES, 'sw'].join('|')})\\b`);
  const stale = new Set<string>();
  for (const line of listed.output.split('\n')) {
    const match = pattern.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined && !alive(Number.parseInt(match[2], 36))) stale.add(match[1]);
  }
  for (const prefix of stale) new NetnsTopology(prefix).down();
  return [...stale];
}
