import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Argv } from 'yargs';
import { UsageError } from '@hbft/common/errors.ts';
import {
  CHECKPOINTS_IN_FLIGHT_MAX_DEFAULT,
  DELTA_CACHE_PAGES_DEFAULT,
  EPOCH_MS_DEFAULT,
  FAILOVER_TIMEOUT_MS_DEFAULT,
  HEARTBEAT_MS_DEFAULT,
  BACKUP_LOSS_POLICIES,
  validateTiming,
  type BackupLossPolicy,
  type TimingConfig,
} from '@hbft/common/constants.ts';
import type { AuthConfig } from '@hbft/common/protocol/auth.ts';
import { authKeyBytesMin } from '@hbft/common/protocol/limits.ts';
import { createMapper, MAPPERS, MAP_SLOTS_DEFAULT, type MapperOptions } from '@hbft/common/tracking/mapper.ts';
import { createTracker } from '@hbft/common/tracking/strategies.ts';
import { TRACKING_STRATEGIES } from '@hbft/common/tracking/tracker.ts';
import { HISTASE_ALPHA_DEFAULT } from '@hbft/common/tracking/wfp.ts';
import { parseHostPort } from '@hbft/common/units.ts';
import { integerFlag, memoryBytesFrom, withMemory } from './options.ts';
import { guestNetworkFrom, type GuestNetworkConfig } from '@hbft/common/net/guestTap.ts';

/** Flags every daemon takes: timing, authentication, HTTP. */
export function withDaemonFlags<T>(yargs: Argv<T>, httpDefault: string) {
  return withMemory(yargs)
    .option('epoch-ms', { type: 'number', default: EPOCH_MS_DEFAULT, describe: 'checkpoint epoch length' })
    .option('heartbeat-ms', {
      type: 'number',
      default: HEARTBEAT_MS_DEFAULT,
      describe:
        "heartbeat interval, both ways; a backup takes over 3 heartbeats after every connection of its primary closed from the primary's side (a crashed process)",
    })
    .option('failover-timeout-ms', {
      type: 'number',
      default: FAILOVER_TIMEOUT_MS_DEFAULT,
      describe: 'silence after which the peer is declared dead (at least 3 × --heartbeat-ms); what a partition or a dead host costs',
    })
    .option('key-file', { type: 'string', describe: 'file holding the pre-shared replication key (or set HBFT_KEY)' })
    .option('key', { type: 'string', hidden: true, describe: 'the key itself; prefer HBFT_KEY or --key-file' })
    .option('insecure', {
      type: 'boolean',
      default: false,
      describe:
        'FOR TESTS ONLY: run the replication link without authentication or encryption (anyone on the path can read guest memory and client data and forge checkpoints and acks)',
    })
    .option('http', { type: 'string', default: httpDefault, describe: 'HOST:PORT for /healthz, /readyz, /metrics and the dashboard' })
    .option('peer-http', { type: 'string', describe: "HOST:PORT of the other node's --http, so the dashboard shows both nodes" })
    .option('dry-run', { type: 'boolean', default: false, describe: 'check every flag, print the resulting configuration and exit' });
}

/** Flags of whatever runs the guest as a primary (the primary, and a backup once promoted). */
export function withGuestFlags<T>(yargs: Argv<T>) {
  return yargs
    .option('tracking', { type: 'string', default: 'wfp', choices: [...TRACKING_STRATEGIES], describe: 'dirty-page tracking strategy' })
    .option('histase-alpha', { type: 'number', default: HISTASE_ALPHA_DEFAULT, describe: 'Histase history weight α in [0, 1)' })
    .option('exit-cost-ns', { type: 'number', default: 0, describe: 'modelled cost of one tracking VM exit' })
    .option('mapper', { type: 'string', default: 'superpage', choices: [...MAPPERS], describe: 'how the copier reaches guest pages' })
    .option('map-slots', { type: 'number', default: MAP_SLOTS_DEFAULT, describe: 'software superpage slots (2 MiB each)' })
    .option('map-cost-ns', { type: 'number', default: 0, describe: 'modelled cost of one map operation' })
    .option('checkpoints-in-flight', {
      type: 'number',
      default: CHECKPOINTS_IN_FLIGHT_MAX_DEFAULT,
      describe: 'unacknowledged checkpoints before the guest stalls at an epoch boundary',
    })
    .option('on-backup-loss', {
      type: 'string',
      default: 'hold',
      describe:
        'after a backup has received a checkpoint and is then lost: "hold" all output until a backup is synchronised ' +
        'again (safe), or "continue-unsafe": release it without a backup. continue-unsafe is split brain under a ' +
        'partition: the backup takes over too, both nodes answer clients, and the writes this node acknowledges are lost',
    })
    .option('delta-cache-pages', {
      type: 'number',
      default: DELTA_CACHE_PAGES_DEFAULT,
      describe: 'pages remembered for XOR-RLE page deltas',
    });
}

/**
 * Where the guest's packet NIC meets a real network (a guest with TCP/IP inside, like kvnet): a
 * TAP device and the guest's address on it. The same on `hbft run`, `hbft primary` and `hbft backup`.
 */
export function withGuestNetworkFlags<T>(yargs: Argv<T>) {
  return yargs
    .option('tap', {
      type: 'string',
      describe:
        "attach the guest's packet NIC to this TAP device: an existing one (persistent, already on a bridge: " +
        '`ip tuntap add dev NAME mode tap; ip link set NAME master br0 up`) or a new one (needs CAP_NET_ADMIN; it goes with the process, and gets a MAC starting fe: so that a bridge never takes it as its own)',
    })
    .option('guest-ip', {
      type: 'string',
      describe: "with --tap: the guest's IPv4 address and prefix on that network, e.g. 10.0.0.2/24 (passed to the guest as ip=)",
    });
}

export interface GuestNetworkArgs {
  tap?: string;
  'guest-ip'?: string;
}

/** The guest's network from --tap and --guest-ip; `guest` (the image's name) and the address give its MAC. */
export function guestNetworkConfigFrom(args: GuestNetworkArgs, guest: string): GuestNetworkConfig | undefined {
  return guestNetworkFrom(args.tap, args['guest-ip'], guest);
}

export interface DaemonArgs {
  memory: string;
  'epoch-ms': number;
  'heartbeat-ms': number;
  'failover-timeout-ms': number;
  'key-file'?: string;
  key?: string;
  insecure: boolean;
  http: string;
  'log-level': string;
  'dry-run': boolean;
  'peer-http'?: string;
}

/** For --dry-run: the checked configuration, secrets left out. */
export function printConfiguration(role: string, config: Record<string, unknown>): void {
  const redacted = JSON.parse(JSON.stringify(config, (key, value) => (key === 'key' ? '(set)' : value)));
  process.stdout.write(`${JSON.stringify({ role, ...redacted }, null, 2)}\n`);
}

export interface GuestArgs {
  tracking: string;
  'histase-alpha': number;
  'exit-cost-ns': number;
  mapper: string;
  'map-slots': number;
  'map-cost-ns': number;
  'checkpoints-in-flight': number;
  'on-backup-loss': string;
  'delta-cache-pages': number;
}

export function timingFrom(args: DaemonArgs): TimingConfig {
  return validateTiming({ epochMs: args['epoch-ms'], heartbeatMs: args['heartbeat-ms'], failoverTimeoutMs: args['failover-timeout-ms'] });
}

/** The replication key from --key-file, HBFT_KEY (--key), or explicit --insecure; else an error. */
export function authFrom(args: DaemonArgs): AuthConfig {
  if (args['key-file'] !== undefined && args.key !== undefined) throw new UsageError('give the key once: --key-file or HBFT_KEY, not both');
  let key: Buffer | null = null;
  if (args['key-file'] !== undefined) {
    try {
      key = Buffer.from(readFileSync(args['key-file'], 'utf8').trim(), 'utf8');
    } catch (error) {
      throw new UsageError(
        `--key-file: cannot read ${args['key-file']} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      );
    }
  } else if (args.key !== undefined) {
    key = Buffer.from(args.key, 'utf8');
  }
  if (key !== null) {
    if (args.insecure) throw new UsageError('--insecure and a replication key contradict each other; drop one');
    if (key.length < authKeyBytesMin)
      throw new UsageError(`the replication key must be at least ${authKeyBytesMin} bytes, got ${key.length}`);
    return { mode: 'hmac', key };
  }
  if (!args.insecure) {
    throw new UsageError(
      'no replication key: give --key-file FILE or set HBFT_KEY; or pass --insecure (for tests only) to run the link without ' +
        'authentication or encryption (anyone on the path could then read the guest and overwrite the backup)',
    );
  }
  return { mode: 'insecure' };
}

export interface GuestConfig {
  tracking: string;
  trackerOptions: { histaseAlpha: number; exitCostNs: number };
  mapper: MapperOptions;
  checkpointsInFlightMax: number;
  onBackupLoss: BackupLossPolicy;
  deltaCachePages: number;
}

/** Guest flags, checked now (the worker would otherwise find the problem later, on its thread). */
export function guestConfigFrom(args: GuestArgs): GuestConfig {
  const trackerOptions = { histaseAlpha: args['histase-alpha'], exitCostNs: args['exit-cost-ns'] };
  createTracker(args.tracking, trackerOptions);
  const mapper = { mapper: args.mapper, mapSlots: integerFlag(args['map-slots'], '--map-slots', 1), mapCostNs: args['map-cost-ns'] };
  createMapper(mapper, 1);
  return {
    tracking: args.tracking,
    trackerOptions,
    mapper,
    checkpointsInFlightMax: integerFlag(args['checkpoints-in-flight'], '--checkpoints-in-flight', 1),
    onBackupLoss: backupLossPolicyFrom(args['on-backup-loss']),
    deltaCachePages: integerFlag(args['delta-cache-pages'], '--delta-cache-pages', 0),
  };
}

/** --on-backup-loss, refusing the old `continue` with what it risks. */
export function backupLossPolicyFrom(value: string): BackupLossPolicy {
  if (value === 'continue') {
    throw new UsageError(
      '--on-backup-loss continue: releasing output without a backup is split brain whenever the backup is alive ' +
        'behind a partition (it takes over, both nodes answer clients, and the writes this node acknowledged are lost); ' +
        'use hold, or name the risk with --on-backup-loss continue-unsafe',
    );
  }
  const policy = BACKUP_LOSS_POLICIES.find((candidate) => candidate === value);
  if (policy === undefined) throw new UsageError(`--on-backup-loss: expected one of ${BACKUP_LOSS_POLICIES.join(', ')}, got "${value}"`);
  return policy;
}

/** What both daemons take from their shared flags, checked before anything starts. */
export function daemonConfigFrom(args: DaemonArgs & GuestArgs) {
  const peerHttp = args['peer-http'] === undefined ? undefined : hostPort(args['peer-http'], '--peer-http');
  return {
    memoryBytes: memoryBytesFrom(args.memory),
    timing: timingFrom(args),
    guest: guestConfigFrom(args),
    http: hostPort(args.http, '--http'),
    peerHttp: peerHttp === undefined ? undefined : `${peerHttp.host}:${peerHttp.port}`,
  };
}

export function hostPort(value: string, flag: string): { host: string; port: number } {
  return parseHostPort(value, flag);
}

export { memoryBytesFrom };

export function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/**
 * `--serve` was the daemons' client port (the byte-stream NIC, removed in issue 11): clients now
 * reach the guest at its own address (--tap, --guest-ip). Still parsed, hidden, so that a script
 * that passes it is told so instead of failing to start.
 */
export const RETIRED_SERVE = 'retired: clients reach the guest at its own address (--tap, --guest-ip)';

export function warnRetiredServe(serve: string | undefined): void {
  if (serve !== undefined) process.stderr.write(`hbft: --serve ${serve} is ignored (${RETIRED_SERVE})\n`);
}
