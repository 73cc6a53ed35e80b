import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert } from '@hbft/common/errors.ts';

const CLI = new URL('../bin/hbft.js', import.meta.url).pathname;

/** Ports nobody listens on right now (bound to 0 and released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const server = createServer();
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

export interface ClusterOptions {
  /** Start a backup (default); without one the primary runs unprotected. */
  withBackup?: boolean;
  memory?: string;
  /** The backup's --memory when it should differ from the primary's (a refused handshake). */
  backupMemory?: string;
  guest?: string;
  primaryArgs?: string[];
  backupArgs?: string[];
  /** Both nodes with --insecure instead of a key (for tests that need the link in plaintext). */
  insecure?: boolean;
  /** Extra environment of both daemons. */
  env?: Record<string, string>;
  /** Where the backup's replication port is reached from the primary (a chaos proxy, say). */
  replicationVia?: (replicationPort: number) => Promise<number>;
}

export interface Node {
  process: ChildProcess;
  log: string[];
  exited: Promise<number | null>;
}

/**
 * A primary and a backup as real processes on loopback, for end-to-end tests of replication and
 * takeover with a guest that needs no network (a compute workload): started with fresh ports and
 * key, stopped (or killed) afterwards. Logs are kept for the failure message. Clients reach a
 * guest only at its own address, on a TAP in network namespaces (test/helpers/lan.ts).
 */
export class Cluster {
  readonly ports: { replication: number; primaryHttp: number; backupHttp: number };
  primary!: Node;
  backup!: Node;
  private readonly keyFile: string;

  private constructor(
    ports: number[],
    private readonly options: ClusterOptions,
  ) {
    const [replication, primaryHttp, backupHttp] = ports as [number, number, number];
    this.ports = { replication, primaryHttp, backupHttp };
    const dir = mkdtempSync(join(tmpdir(), 'hbft-cluster-'));
    this.keyFile = join(dir, 'key');
    writeFileSync(this.keyFile, 'test-key-0123456789-abcdef\n');
  }

  private get keyArgs(): string[] {
    return this.options.insecure === true ? ['--insecure'] : ['--key-file', this.keyFile];
  }

  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const cluster = new Cluster(await freePorts(3), options);
    if (options.withBackup !== false) await cluster.startBackup();
    await cluster.startPrimary();
    return cluster;
  }

  private spawnNode(args: string[]): Node {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HBFT_LOG_LEVEL: 'info', ...this.options.env },
    });
    const log: string[] = [];
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line) log.push(line);
      if (log.length > 2000) log.splice(0, log.length - 2000);
    };
    assert(child.stdout !== null && child.stderr !== null, 'daemons are spawned with stdout and stderr piped');
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { process: child, log, exited };
  }

  async startBackup(extra: string[] = []): Promise<void> {
    const { replication, backupHttp } = this.ports;
    this.backup = this.spawnNode([
      'backup',
      '--listen',
      `127.0.0.1:${replication}`,
      '--http',
      `127.0.0.1:${backupHttp}`,
      ...this.keyArgs,
      '--memory',
      this.options.backupMemory ?? this.options.memory ?? '32MiB',
      ...(this.options.backupArgs ?? []),
      ...extra,
    ]);
    await this.waitFor(this.ports.backupHttp, '/healthz', (status) => status === 200, 20_000, this.backup);
  }

  async startPrimary(): Promise<void> {
    const { replication, primaryHttp } = this.ports;
    const target = this.options.replicationVia ? await this.options.replicationVia(replication) : replication;
    this.primary = this.spawnNode([
      'primary',
      ...(this.options.withBackup === false ? [] : ['--backup', `127.0.0.1:${target}`]),
      '--http',
      `127.0.0.1:${primaryHttp}`,
      ...this.keyArgs,
      '--memory',
      this.options.memory ?? '32MiB',
      '--guest',
      this.options.guest ?? 'kv',
      ...(this.options.primaryArgs ?? []),
    ]);
  }

  /** Polls an HTTP endpoint of a node until `accept(status, body)`. */
  async waitFor(
    port: number,
    path: string,
    accept: (status: number, body: string) => boolean,
    timeoutMs: number,
    node?: Node,
  ): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    let last = '';
    while (performance.now() < deadline) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}${path}`);
        last = await response.text();
        if (accept(response.status, last)) return last;
      } catch {
        // not up yet
      }
      if (node && node.process.exitCode !== null)
        throw new Error(`node exited while waiting for ${path}:\n${node.log.slice(-20).join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`timed out waiting for ${path} on port ${port} (last answer: ${last})\n${this.logs()}`);
  }

  /** Until the backup holds a checkpoint it could take over from (without a backup: until the primary serves). */
  async waitProtected(timeoutMs = 30_000): Promise<void> {
    if (this.options.withBackup === false) {
      await this.waitFor(this.ports.primaryHttp, '/readyz', (status) => status === 200, timeoutMs, this.primary);
      return;
    }
    await this.waitFor(this.ports.backupHttp, '/readyz', (status) => status === 200, timeoutMs, this.backup);
  }

  /** A counter from the primary's /metrics. */
  async metric(name: string, port = this.ports.primaryHttp): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? NaN : Number(line.split(' ').at(-1));
  }

  async readiness(port: number): Promise<Record<string, unknown>> {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`);
    return (await response.json()) as Record<string, unknown>;
  }

  killPrimary(): void {
    this.primary.process.kill('SIGKILL');
  }

  logs(): string {
    return [`--- primary ---`, ...(this.primary?.log.slice(-30) ?? []), `--- backup ---`, ...(this.backup?.log.slice(-30) ?? [])].join(
      '\n',
    );
  }

  /** Stops both nodes (SIGTERM, then SIGKILL after 5 s). */
  async stop(): Promise<void> {
    await Promise.all(
      [this.primary, this.backup]
        .filter((node) => node !== undefined)
        .map(async (node) => {
          if (node.process.exitCode !== null || node.process.signalCode !== null) return;
          node.process.kill('SIGTERM');
          const timer = setTimeout(() => node.process.kill('SIGKILL'), 5_000);
          await node.exited;
          clearTimeout(timer);
        }),
    );
  }
}
