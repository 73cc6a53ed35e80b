/**
 * What the benches that reach the guest over the network share: a throwaway network namespace with
 * a bridge (so fixed addresses and ports collide with nothing outside it), the kvnet guest on TAP
 * devices on that bridge — alone (`hbft run kvnet`, unprotected) or as a primary and a backup that
 * replicate over the namespace's loopback (protected: every frame the guest sends waits for the
 * backup's ack) — and clients run inside the namespace (`redis-benchmark`, `hbft load`, probes).
 * Clients speak plain RESP to the guest's IP, as unmodified clients do (issue 11 §6).
 *
 * Needs root (namespace, bridge, TAP devices). It binds no port outside its namespace, but it loads
 * the machine: on a shared machine run it under the cluster lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '@hbft/common/errors.ts';
import { addBridgeArgs } from '../netns/bridge.ts';

/** Limits: how long one step may take before the bench gives up with a message saying which. */
const READY_TIMEOUT_MS = 90_000;
const LOG_BYTES_MAX = 64 * 1024;

/** The bridge holds .1 of the namespace's /24; guests take the addresses below. */
const PREFIX = 24;
const KV_PORT = 6379;
const REPLICATION_PORT = 7000;
/** Each node's --http inside the namespace (the benches read /metrics through `curl` run there). */
export const PRIMARY_HTTP_PORT = 9181;
export const BACKUP_HTTP_PORT = 9182;

const CLI = new URL('../../bin/hbft.js', import.meta.url).pathname;

/** A child process whose output is kept (bounded) for error messages. */
export interface Child {
  process: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

export function startChild(command: string, args: string[]): Child {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString()).slice(-LOG_BYTES_MAX);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (error) => {
      log += `\n${error.message}`;
      resolve(null);
    });
    child.once('exit', (code) => resolve(code));
  });
  return { process: child, log: () => log, exited };
}

export function running(child: Child): boolean {
  return child.process.exitCode === null && child.process.signalCode === null;
}

/** Stops a child (SIGINT, then SIGKILL after a grace period) and waits for it. */
export async function stopChild(child: Child): Promise<void> {
  if (!running(child)) return;
  child.process.kill('SIGINT');
  const stopped = await Promise.race([child.exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!stopped) {
    child.process.kill('SIGKILL');
    await child.exited;
  }
}

export interface Finished {
  code: number | null;
  output: string;
}

export async function run(command: string, args: string[], timeoutMs: number): Promise<Finished> {
  const child = startChild(command, args);
  const timer = setTimeout(() => child.process.kill('SIGKILL'), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, output: child.log() };
}

async function mustRun(command: string, args: string[]): Promise<void> {
  const result = await run(command, args, 30_000);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.output.trim()}`);
}

async function hasCommand(name: string): Promise<boolean> {
  return (await run('sh', ['-c', `command -v ${name}`], 10_000)).code === 0;
}

/** Throws a UsageError naming what is missing: root, or one of `tools` (command and its Debian package). */
export async function requireNetworkBench(bench: string, tools: readonly (readonly [string, string])[]): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new UsageError(`${bench} needs root: it makes a network namespace, a bridge and TAP devices`);
  }
  for (const [tool, pkg] of [['ip', 'iproute2'], ...tools] as const) {
    if (!(await hasCommand(tool))) throw new UsageError(`${tool} is missing: apt-get install ${pkg} (scripts/install-system-deps.sh)`);
  }
}

/** A guest on the namespace's bridge: where clients reach it and the processes that run it. */
export interface KvnetGuest {
  host: string;
  port: number;
  /** The processes to stop afterwards, in that order (a protected pair: the primary first). */
  children: Child[];
  /** The protected pair's daemons (absent when unprotected). */
  primary?: Child;
  backup?: Child;
}

/**
 * Who makes the guest's TAP devices: `persistent` ones are made before the daemons and stay ports
 * of the bridge when a daemon dies (as an operator, the demo's topology and the tests make them);
 * `daemon` lets each daemon's `--tap` create its own, which the bench then puts on the bridge, and
 * which goes away, with its bridge port, when the daemon dies.
 */
export const TAP_MODES = ['persistent', 'daemon'] as const;
export type TapMode = (typeof TAP_MODES)[number];

export interface KvnetGuestOptions {
  protected: boolean;
  /** Who makes the TAP devices (default persistent). */
  taps?: TapMode;
  /** The last byte of the guest's address on the bridge's /24 (2–254, one per guest alive at a time). */
  hostByte: number;
  memory: string;
  /** Protected only. */
  epochMs?: number;
  /** Extra flags for both daemons (protected only). */
  daemonArgs?: readonly string[];
}

/** The namespace, its bridge and what runs in it. */
export class BenchNamespace {
  readonly name: string;
  /** The first three bytes of the bridge's /24, e.g. 10.97.0. */
  private readonly subnet: string;

  /** `tag` names the namespace (hbft-TAG-PID); `subnet` is the /24 inside it, e.g. 10.97.0. */
  constructor(tag: string, subnet: string) {
    this.name = `hbft-${tag}-${process.pid.toString(36)}`;
    this.subnet = subnet;
  }

  /** The bridge's own address: a server run on the host side of the LAN (redis-server) listens here. */
  get bridgeIp(): string {
    return `${this.subnet}.1`;
  }

  async create(): Promise<void> {
    await run('ip', ['netns', 'del', this.name], 10_000);
    await mustRun('ip', ['netns', 'add', this.name]);
    await mustRun('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
    // A MAC of its own, so that no port coming or going changes it (netns/bridge.ts).
    await mustRun('ip', ['-n', this.name, ...addBridgeArgs('br0')]);
    await mustRun('ip', ['-n', this.name, 'addr', 'add', `${this.bridgeIp}/${PREFIX}`, 'dev', 'br0']);
    await mustRun('ip', ['-n', this.name, 'link', 'set', 'br0', 'up']);
  }

  async destroy(): Promise<void> {
    await run('ip', ['netns', 'del', this.name], 10_000);
  }

  /** Starts a process in the namespace (`ip netns exec` execs it: its pid is the process's own, for signals). */
  start(command: string, args: string[]): Child {
    return startChild('ip', ['netns', 'exec', this.name, command, ...args]);
  }

  run(command: string, args: string[], timeoutMs: number): Promise<Finished> {
    return run('ip', ['netns', 'exec', this.name, command, ...args], timeoutMs);
  }

  /** Runs `hbft ARGS…` in the namespace. */
  startHbft(args: string[]): Child {
    return this.start(process.execPath, [CLI, ...args]);
  }

  /** A TypeScript file of this package run in the namespace (a probe that must reach the guest's IP). */
  startScript(url: URL, args: string[]): Child {
    return this.start(process.execPath, ['--import', 'tsx', url.pathname, ...args]);
  }

  /** GETs a daemon's HTTP endpoint inside the namespace; null when it does not answer. */
  async httpGet(port: number, path: string): Promise<string | null> {
    const result = await this.run('curl', ['-sf', '--max-time', '2', `http://127.0.0.1:${port}${path}`], 5_000);
    return result.code === 0 ? result.output : null;
  }

  /**
   * A persistent TAP device, a port of the bridge, made before its daemon starts (as an operator
   * makes it, and as the demo's topology does): a node that dies leaves its port on the bridge, like
   * a host whose cable stays plugged in, rather than the port vanishing with the process.
   */
  async ensureTap(tap: string): Promise<void> {
    if ((await run('ip', ['-n', this.name, 'link', 'show', tap], 10_000)).code !== 0)
      await mustRun('ip', ['-n', this.name, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await mustRun('ip', ['-n', this.name, 'link', 'set', tap, 'master', 'br0', 'up']);
  }

  /**
   * Puts a TAP device its daemon created (`--tap` of a device that did not exist) on the bridge,
   * once it has appeared, as a deployment's hook would (udev, networkd): its port goes with the daemon.
   */
  async bridgeDaemonTap(tap: string, owner: Child): Promise<void> {
    const deadline = performance.now() + READY_TIMEOUT_MS;
    while ((await run('ip', ['-n', this.name, 'link', 'show', tap], 10_000)).code !== 0) {
      if (!running(owner) || performance.now() > deadline)
        throw new Error(`TAP ${tap} never appeared; the daemon's output:\n${owner.log()}`);
      await sleep(50);
    }
    await mustRun('ip', ['-n', this.name, 'link', 'set', tap, 'master', 'br0', 'up']);
  }

  /** Waits until a server answers PING (for a protected guest: once the backup holds its state). */
  async waitForPing(host: string, port: number, owners: Child[]): Promise<void> {
    const deadline = performance.now() + READY_TIMEOUT_MS;
    for (;;) {
      const ping = await this.run('redis-cli', ['-h', host, '-p', String(port), 'PING'], 10_000);
      if (ping.output.trim() === 'PONG') return;
      const dead = owners.find((owner) => !running(owner));
      if (dead !== undefined || performance.now() > deadline)
        throw new Error(`${host}:${port} never answered PING; the server's output:\n${owners.map((o) => o.log()).join('\n---\n')}`);
      await sleep(250);
    }
  }

  /**
   * Starts kvnet on TAPs of the bridge (persistent, unless its daemons are to make them),
   * unprotected or as a protected pair, and waits until it answers PING at its address. TAP names
   * carry the host byte, so that a guest and the next one (a fresh pair after a kill) never share a
   * device; a later guest with the same host byte reuses its persistent TAPs.
   */
  async startKvnet(options: KvnetGuestOptions): Promise<KvnetGuest> {
    const host = `${this.subnet}.${options.hostByte}`;
    const guestIp = `${host}/${PREFIX}`;
    if (!options.protected) {
      const tap = `hbu${options.hostByte}`;
      if (options.taps !== 'daemon') await this.ensureTap(tap);
      const guest = this.startHbft(['run', 'kvnet', '--tap', tap, '--guest-ip', guestIp, '--memory', options.memory]);
      try {
        if (options.taps === 'daemon') await this.bridgeDaemonTap(tap, guest);
        await this.waitForPing(host, KV_PORT, [guest]);
      } catch (error) {
        await stopChild(guest);
        throw error;
      }
      return { host, port: KV_PORT, children: [guest] };
    }
    const common = ['--guest', 'kvnet', '--guest-ip', guestIp, '--memory', options.memory, '--insecure', ...(options.daemonArgs ?? [])];
    const epoch = options.epochMs === undefined ? [] : ['--epoch-ms', String(options.epochMs)];
    const [backupTap, primaryTap] = [`hbb${options.hostByte}`, `hbp${options.hostByte}`];
    const daemonTaps = options.taps === 'daemon';
    if (!daemonTaps) {
      await this.ensureTap(backupTap);
      await this.ensureTap(primaryTap);
    }
    const backup = this.startHbft([
      'backup',
      ...['--listen', `127.0.0.1:${REPLICATION_PORT}`, '--http', `127.0.0.1:${BACKUP_HTTP_PORT}`, '--tap', backupTap],
      ...epoch,
      ...common,
    ]);
    const primary = this.startHbft([
      'primary',
      ...['--backup', `127.0.0.1:${REPLICATION_PORT}`, '--http', `127.0.0.1:${PRIMARY_HTTP_PORT}`, '--tap', primaryTap],
      ...epoch,
      ...common,
    ]);
    // The primary lists before the backup, so that it is stopped first and the backup does not
    // take over while the bench ends.
    const children = [primary, backup];
    try {
      if (daemonTaps) {
        await this.bridgeDaemonTap(backupTap, backup);
        await this.bridgeDaemonTap(primaryTap, primary);
      }
      await this.waitForPing(host, KV_PORT, children);
    } catch (error) {
      for (const child of children) await stopChild(child);
      throw error;
    }
    return { host, port: KV_PORT, children, primary, backup };
  }
}
