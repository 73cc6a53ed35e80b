import type { Argv, CommandModule } from 'yargs';
import { ReplicationMetrics } from '@hbft/common/http/metrics.ts';
import { daemonGuestArgs, resolveGuestImage } from '@hbft/common/guest/images.ts';
import { readImage } from '@hbft/common/guest/run.ts';
import { parseElf } from '@hbft/common/guest/elf.ts';
import { PrimaryRuntime } from '@hbft/primary/runtime.ts';
import {
  authFrom,
  daemonConfigFrom,
  guestNetworkConfigFrom,
  withGuestNetworkFlags,
  type GuestNetworkArgs,
  hostPort,
  printConfiguration,
  sha256,
  withDaemonFlags,
  withGuestFlags,
  type DaemonArgs,
  type GuestArgs,
  RETIRED_SERVE,
  warnRetiredServe,
} from './daemonOptions.ts';
import { drawSyncProgress, runDaemon } from './daemonLifecycle.ts';
import { GuestTap, guestArgsWithAddress } from '@hbft/common/net/guestTap.ts';
import { formatMac } from '@hbft/common/net/mac.ts';

/** Exit status of a primary that learned its backup took over. */
export const EXIT_DEPOSED = 3;

type PrimaryArgs = DaemonArgs & GuestArgs & GuestNetworkArgs & { backup?: string; serve?: string; guest: string; args?: string };

export const primaryCommand: CommandModule<object, PrimaryArgs> = {
  command: 'primary',
  describe: 'run a guest and protect it by replicating it to a backup',
  builder: (yargs) =>
    withGuestNetworkFlags(withGuestFlags(withDaemonFlags(yargs, '127.0.0.1:9100')))
      .option('backup', { type: 'string', describe: 'HOST:PORT of the backup (without it the guest runs unprotected)' })
      .option('serve', { type: 'string', hidden: true, describe: RETIRED_SERVE })
      .option('guest', { type: 'string', default: 'kv', describe: 'guest image: a shipped guest (kv, cfp, …) or an ELF path' })
      .option('args', {
        type: 'string',
        describe: 'argument string for the guest (default: none, but kv runs until stopped: rounds=0, its store a quarter of --memory)',
      })
      .example('$0 primary --backup 10.0.0.2:7000 --guest kv --key-file key', 'protect the kv guest (a workload that needs no network)')
      .example(
        '$0 primary --backup 10.0.0.2:7000 --guest kvnet --tap hbft0 --guest-ip 10.0.0.10/24 --key-file key',
        'protect kvnet on TAP hbft0: clients use 10.0.0.10 and keep their connections through a takeover',
      ) as unknown as Argv<PrimaryArgs>,
  handler: async (argv) => {
    const { memoryBytes, timing, guest, http, peerHttp } = daemonConfigFrom(argv);
    // A key given without --backup is still checked: a typo in --key-file must not pass unnoticed.
    const keyGiven = argv['key-file'] !== undefined || argv.key !== undefined;
    const auth = argv.backup !== undefined || keyGiven ? authFrom(argv) : undefined;
    const backup = argv.backup === undefined || auth === undefined ? undefined : { ...hostPort(argv.backup, '--backup'), auth };
    warnRetiredServe(argv.serve);
    const network = guestNetworkConfigFrom(argv, argv.guest);
    const guestArgs = argv.args ?? daemonGuestArgs(argv.guest, memoryBytes);
    const imagePath = resolveGuestImage(argv.guest);
    const image = readImage(imagePath);
    parseElf(image, memoryBytes, argv.guest);
    if (argv['dry-run']) {
      printConfiguration('primary', {
        memoryBytes,
        timing,
        ...guest,
        backup,
        http,
        guest: imagePath,
        args: guestArgsWithAddress(guestArgs, network),
        network: network && { tap: network.tapName, guestIp: network.address, mac: formatMac(network.mac) },
      });
      return;
    }
    const metrics = new ReplicationMetrics('primary', 1);
    await runDaemon({
      role: 'primary',
      logLevel: argv['log-level'],
      http,
      peerHttp,
      metrics,
      start: async (logger, shutdown) => {
        const guestTap = network === undefined ? undefined : await GuestTap.open(network, logger);
        const runtime = await PrimaryRuntime.start({
          generation: 1,
          boot: { kind: 'image', image, imageName: argv.guest, args: guestArgsWithAddress(guestArgs, network) },
          guestTap,
          memoryBytes,
          guestImageHash: sha256(image),
          backup,
          timing,
          ...guest,
          logger,
          metrics,
          onDeposed: (reason) => shutdown(`deposed: ${reason}`, EXIT_DEPOSED),
          onConsole: (text) => process.stderr.write(text),
          onFullSyncProgress: drawSyncProgress,
        });
        return { readiness: () => runtime.readiness(), stop: (reason) => runtime.stop(reason), feed: runtime.feed };
      },
    });
  },
};
