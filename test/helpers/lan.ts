import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { addBridgeArgs } from '@hbft/cli/netns/bridge.ts';
import { CLI, REPO, runCommand, type ScriptResult } from '../deploy/runScript.ts';
import type { PairOptions } from './pair.ts';

/**
 * A client network in one network namespace, built with plain `ip` commands the way an operator
 * would: a bridge carrying the client's address, and one persistent TAP device per node, already
 * a port of the bridge, so that a node that dies and comes back finds its TAP where it was. The
 * nodes run in the same namespace and replicate over its loopback (its ports are its own, so
 * fixed ports collide with nothing outside it).
 */
export class Lan {
  readonly namespace: string;
  /** The client's address on the bridge, e.g. 10.77.12.1. */
  readonly clientIp: string;
  /** The guest's address with its prefix, e.g. 10.77.12.10/24. */
  readonly guestAddress: string;
  readonly guestIp: string;
  /** The host ends of the links to the host (linkToHost), deleted with the LAN. */
  private readonly hostLinks: string[] = [];

  private constructor(namespace: string, subnet: string) {
    this.namespace = namespace;
    this.clientIp = `${subnet}.1`;
    this.guestIp = `${subnet}.10`;
    this.guestAddress = `${this.guestIp}/24`;
  }

  /**
   * Builds the namespace, its bridge and a persistent TAP per node of `nodes` (named `tap-<node>`);
   * a node left out makes its own (see bridgeDaemonTap).
   */
  static async create(name: string, subnet: string, nodes: string[]): Promise<Lan> {
    assert.equal(process.getuid?.(), 0, 'this test needs root: it makes a network namespace, a bridge and TAP devices (CI runs as root)');
    const lan = new Lan(`hbft-t${process.pid.toString(36)}-${name}`, subnet);
    await runCommand('ip', ['netns', 'del', lan.namespace]);
    await mustRun('ip', ['netns', 'add', lan.namespace]);
    const ns = ['-n', lan.namespace];
    await mustRun('ip', [...ns, 'link', 'set', 'lo', 'up']);
    // A MAC of its own, so that no port coming or going changes it (netns/bridge.ts).
    await mustRun('ip', [...ns, ...addBridgeArgs('br0')]);
    await mustRun('ip', [...ns, 'addr', 'add', `${lan.clientIp}/24`, 'dev', 'br0']);
    await mustRun('ip', [...ns, 'link', 'set', 'br0', 'up']);
    for (const node of nodes) {
      await mustRun('ip', [...ns, 'tuntap', 'add', 'dev', Lan.tapOf(node), 'mode', 'tap']);
      await mustRun('ip', [...ns, 'link', 'set', Lan.tapOf(node), 'master', 'br0', 'up']);
    }
    return lan;
  }

  /**
   * A veth pair from this process's namespace into the LAN's, on its own /30 (`SUBNET.1` here,
   * `SUBNET.2` there), so that this process reaches what listens in the namespace (the daemons'
   * HTTP and replication ports) and what listens here is reachable from it (chaos proxies run by
   * the test). Deleting the namespace deletes the pair.
   */
  async linkToHost(subnet: string): Promise<{ hostIp: string; namespaceIp: string }> {
    const hostSide = `hv${process.pid.toString(36)}${subnet.split('.').at(-1) ?? ''}`.slice(0, 15);
    const hostIp = `${subnet}.1`;
    const namespaceIp = `${subnet}.2`;
    await runCommand('ip', ['link', 'del', hostSide]);
    // A run that was killed leaves its veth behind, and a namespace's own end of one outlives
    // `ip netns del` for a while: either way another host interface may still hold this address,
    // and the daemons' ports would then be unreachable from here. Such an interface goes first.
    const holders = await runCommand('ip', ['-j', 'addr', 'show', 'to', `${hostIp}/32`]);
    for (const { ifname } of JSON.parse(holders.stdout || '[]') as { ifname: string }[]) {
      if (ifname.startsWith('hv')) await runCommand('ip', ['link', 'del', ifname]);
    }
    this.hostLinks.push(hostSide);
    await mustRun('ip', ['link', 'add', hostSide, 'type', 'veth', 'peer', 'name', 'host0', 'netns', this.namespace]);
    await mustRun('ip', ['addr', 'add', `${hostIp}/30`, 'dev', hostSide]);
    await mustRun('ip', ['link', 'set', hostSide, 'up']);
    await mustRun('ip', ['-n', this.namespace, 'addr', 'add', `${namespaceIp}/30`, 'dev', 'host0']);
    await mustRun('ip', ['-n', this.namespace, 'link', 'set', 'host0', 'up']);
    return { hostIp, namespaceIp };
  }

  /**
   * Puts on the bridge the TAP that `node`'s daemon made (its `--tap` named a device that did not
   * exist), once it appears, as a deployment's hook would; `mac` first gives it that address (a
   * test choosing which port the kernel would otherwise pick the bridge's MAC from).
   */
  async bridgeDaemonTap(tap: string, node: LanNode, mac?: string, timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while ((await runCommand('ip', ['-n', this.namespace, 'link', 'show', tap])).code !== 0) {
      if (!node.running) assert.fail(`${node.name} exited before its TAP ${tap} appeared:\n${node.tail()}`);
      if (performance.now() > deadline) assert.fail(`${node.name}: no TAP ${tap} within ${timeoutMs} ms:\n${node.tail()}`);
      await sleep(20);
    }
    if (mac !== undefined) await mustRun('ip', ['-n', this.namespace, 'link', 'set', tap, 'address', mac]);
    await mustRun('ip', ['-n', this.namespace, 'link', 'set', tap, 'master', 'br0', 'up']);
  }

  /** The bridge's MAC address now. */
  async bridgeMac(): Promise<string> {
    const result = await runCommand('ip', ['-n', this.namespace, '-j', 'link', 'show', 'br0']);
    assert.equal(result.code, 0, result.output);
    return (JSON.parse(result.stdout) as [{ address: string }])[0].address;
  }

  /** Frames each TAP's node has written to it so far (the TAP's receive counter), by TAP name. */
  async tapFramesWritten(): Promise<Map<string, number>> {
    const result = await runCommand('ip', ['-n', this.namespace, '-j', '-s', 'link', 'show', 'type', 'tun']);
    assert.equal(result.code, 0, result.output);
    const links = JSON.parse(result.stdout) as { ifname: string; stats64?: { rx?: { packets?: number } } }[];
    return new Map(links.map((link) => [link.ifname, link.stats64?.rx?.packets ?? 0]));
  }

  static tapOf(node: string): string {
    return `tap-${node}`;
  }

  /**
   * The flags both roles of a kvnet node share on this LAN: its TAP, the guest's address, its own
   * ports. `serve` only while the daemons still have a client port of their own (issue 11 §6
   * removes it; clients reach the guest's address).
   */
  kvnetNodeFlags(node: string, options: { keyFile: string; memory: string; serve?: string; http: string }): string[] {
    return [
      ...['--guest', 'kvnet', '--tap', Lan.tapOf(node), '--guest-ip', this.guestAddress, '--memory', options.memory],
      ...['--key-file', options.keyFile, '--http', options.http],
      ...(options.serve === undefined ? [] : ['--serve', options.serve]),
    ];
  }

  /**
   * What a Pair (test/helpers/pair.ts) needs to run the kvnet guest on this LAN: each site on its
   * TAP, the daemons in the namespace on its end of `link` (Lan.linkToHost), the chaos proxies of
   * the replication link here on the other end.
   */
  kvnetPairOptions(link: { hostIp: string; namespaceIp: string }, memory = '64MiB'): PairOptions {
    return {
      memory,
      guest: 'kvnet',
      siteArgs: (site) => ['--tap', Lan.tapOf(site), '--guest-ip', this.guestAddress],
      daemonHost: link.namespaceIp,
      proxyHost: link.hostIp,
      launch: (argv, options) => this.spawn(process.execPath, argv, options),
    };
  }

  /** Runs a command in the namespace to its end. */
  run(command: string, args: string[], timeoutMs = 60_000): Promise<ScriptResult> {
    return runCommand('ip', ['netns', 'exec', this.namespace, command, ...args], { timeoutMs });
  }

  /** Starts a process in the namespace (`ip netns exec` execs it: its pid is the process's own). */
  spawn(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.namespace, command, ...args], { cwd: REPO, ...options });
  }

  /** Starts `hbft ARGS…` in the namespace, keeping its log. */
  startNode(name: string, args: string[]): LanNode {
    const child = this.spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HBFT_LOG_LEVEL: 'info' },
    });
    return new LanNode(name, child);
  }

  async destroy(): Promise<void> {
    // Deleting the host's end removes the pair at once; the namespace's teardown is asynchronous.
    for (const link of this.hostLinks) await runCommand('ip', ['link', 'del', link]);
    await runCommand('ip', ['netns', 'del', this.namespace]);
  }
}

/** A daemon in the LAN's namespace and the lines it logged. */
export class LanNode {
  readonly log: string[] = [];
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line) this.log.push(line);
    };
    process.stdout?.on('data', keep);
    process.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => process.once('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Lines logged so far that match. */
  count(pattern: RegExp): number {
    return this.log.filter((line) => pattern.test(line)).length;
  }

  /** Waits until `count` lines match `pattern`; fails with the log's tail if the node exits or time runs out. */
  async waitForLog(pattern: RegExp, timeoutMs: number, count = 1): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.count(pattern) < count) {
      if (!this.running) assert.fail(`${this.name} exited while waiting for ${pattern}:\n${this.tail()}`);
      if (performance.now() > deadline) assert.fail(`${this.name}: no ${pattern} within ${timeoutMs} ms:\n${this.tail()}`);
      await sleep(20);
    }
  }

  /** The time (ms since the epoch) the node logged its first line matching `pattern`, if any. */
  loggedAtMs(pattern: RegExp): number | undefined {
    return loggedAtMs(this.log, pattern);
  }

  tail(lines = 25): string {
    return this.log.slice(-lines).join('\n');
  }

  kill(): void {
    if (this.running) this.process.kill('SIGKILL');
  }

  /** SIGTERM, then SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** The time (ms since the epoch, pino's "time") of the first line of `log` matching `pattern`, if any. */
export function loggedAtMs(log: readonly string[], pattern: RegExp): number | undefined {
  const line = log.find((candidate) => pattern.test(candidate));
  const time = line === undefined ? undefined : /"time":(\d+)/.exec(line)?.[1];
  return time === undefined ? undefined : Number(time);
}

async function mustRun(command: string, args: string[]): Promise<void> {
  const result = await runCommand(command, args);
  assert.equal(result.code, 0, `${command} ${args.join(' ')}: ${result.output}`);
}
