import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { assert } from '@hbft/common/errors.ts';
import { type NamespaceRoute, USER_NAMESPACE_FLAGS } from './privilege.ts';
import { NetnsTopology, TopologyError, type TopologyNode } from './topology.ts';

const CLI = fileURLToPath(new URL('../../bin/hbft.js', import.meta.url));
/** Building the topology takes about a second; more than this is a broken system. */
const HOLDER_UP_MS = 60_000;
/** Tearing it down ends the processes in it (3 s grace) and deletes the namespaces. */
const HOLDER_DOWN_MS = 15_000;
/** The holder's line once the topology is up (commands/topology.ts, `hold`). */
export const HOLDER_READY_LINE = 'topology-hold: up';

/*
 * The process that holds a topology for the demo: `hbft topology hold`, which builds it, keeps it
 * while its standard input stays open and tears it down (every process in it ended, every
 * namespace deleted) when that input ends or it is signalled. The demo keeps the other end of that
 * input, so however the demo ends, even by SIGKILL, the topology goes with it.
 *
 *   root  the holder runs as root on the machine; the namespaces are the machine's (`ip netns`).
 *   user  the holder runs under `unshare --user --map-root-user --net --mount`: root in a user
 *         namespace of this user, with a mount namespace whose /run/netns is a tmpfs of its own.
 *         Processes join a node's namespace through the holder: `nsenter` into its user and mount
 *         namespaces (keeping this user's identity, which is root in there), then `ip netns exec`.
 *         The demo itself stays outside, in the machine's network namespace, where the user's
 *         127.0.0.1 is: a Unix socket (a file, seen from both sides) carries each forwarded
 *         connection in.
 */
export class TopologyHolder {
  readonly route: NamespaceRoute;
  readonly topology: NetnsTopology;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;

  private constructor(route: NamespaceRoute, topology: NetnsTopology, child: ChildProcess) {
    this.route = route;
    this.topology = topology;
    this.child = child;
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
  }

  /**
   * Starts the holder and resolves once the topology is up; `log` receives the holder's output.
   * Rejects with a TopologyError carrying the holder's own words when it could not build it.
   */
  static async start(route: NamespaceRoute, prefix: string, log: Writable): Promise<TopologyHolder> {
    const topology = new NetnsTopology(prefix);
    const hold = [process.execPath, CLI, 'topology', 'hold', '--prefix', prefix];
    const [command, ...args] = route === 'root' ? hold : ['unshare', ...USER_NAMESPACE_FLAGS, '--', ...hold, '--private-netns-dir'];
    assert(command !== undefined, 'an argv has a command');
    // Its own process group: a terminal's Ctrl-C reaches the demo, which stops the topology last.
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const holder = new TopologyHolder(route, topology, child);
    assert(child.stdout !== null && child.stderr !== null, 'the holder is spawned with its output piped');
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk;
      log.write(chunk);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const up = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), HOLDER_UP_MS);
      const check = () => {
        if (output.includes(HOLDER_READY_LINE)) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      child.stdout?.on('data', check);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(output.includes(HOLDER_READY_LINE));
      });
    });
    if (!up) {
      await holder.stop();
      const said = output
        .trim()
        .split('\n')
        .filter((line) => !line.startsWith('(run with --help'))
        .map((line) => line.replace(/^hbft: /, ''))
        .join('; ');
      throw new TopologyError(
        `the namespaces (${route === 'root' ? 'as root' : 'in a user namespace'}) could not be built: ${said || 'no reason given'}`,
      );
    }
    return holder;
  }

  /** Calls `listener` once the holder has exited (and with it, on the user route, the namespaces' anchor). */
  onExit(listener: (reason: string) => void): void {
    this.child.once('exit', (code, signal) => listener(signal ?? `code ${code}`));
  }

  get pid(): number {
    assert(this.child.pid !== undefined, 'the holder was spawned');
    return this.child.pid;
  }

  namespace(node: TopologyNode | 'sw'): string {
    return this.topology.namespace(node);
  }

  /** argv that runs `argv` inside NODE's network namespace (through the holder's user namespace on the user route). */
  execArgv(node: TopologyNode, argv: string[]): string[] {
    const inNamespace = this.topology.execArgv(node, argv);
    if (this.route === 'root') return inNamespace;
    return ['nsenter', '--target', String(this.pid), '--user', '--mount', '--preserve-credentials', '--', ...inNamespace];
  }

  /** The same as a shell prefix, for people: `<prefix> redis-cli -h …`. */
  execPrefix(node: TopologyNode): string {
    return this.execArgv(node, []).join(' ');
  }

  /** Ends the holder's input: it tears the topology down and exits; SIGKILL if it takes too long. */
  async stop(): Promise<void> {
    this.child.stdin?.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), HOLDER_DOWN_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** For process exit, where nothing can wait: the holder tears down on its own once told. */
  stopNow(): void {
    this.child.stdin?.destroy();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
  }
}
