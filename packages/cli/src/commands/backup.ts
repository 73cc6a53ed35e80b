import type { Argv, CommandModule } from 'yargs';
import { ReplicationMetrics } from '@hbft/common/http/metrics.ts';
import { BackupDaemon } from '@hbft/backup/daemon.ts';
import {
  authFrom,
  daemonConfigFrom,
  guestNetworkConfigFrom,
  withGuestNetworkFlags,
  type GuestNetworkArgs,
  hostPort,
  printConfiguration,
  withDaemonFlags,
  withGuestFlags,
  type DaemonArgs,
  type GuestArgs,
  RETIRED_SERVE,
  warnRetiredServe,
} from './daemonOptions.ts';
import { drawSyncProgress, runDaemon } from './daemonLifecycle.ts';
import { EXIT_DEPOSED } from './primary.ts';
import { formatMac } from '@hbft/common/net/mac.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { readImage } from '@hbft/common/guest/run.ts';

type BackupArgs = DaemonArgs & GuestArgs & GuestNetworkArgs & { listen: string; serve?: string; reprotect?: string; guest: string };

export const backupCommand: CommandModule<object, BackupArgs> = {
  command: 'backup',
  describe: "hold a replica of a primary's guest and take over when the primary fails",
  builder: (yargs) =>
    withGuestNetworkFlags(withGuestFlags(withDaemonFlags(yargs, '127.0.0.1:9101')))
      .option('guest', {
        type: 'string',
        default: 'kv',
        describe:
          "the guest the primary runs: the standby warms up on it, and with --tap its name and --guest-ip give the guest's MAC (the guest's state always comes from the primary)",
      })
      .option('listen', { type: 'string', demandOption: true, describe: "HOST:PORT for the primary's replication connections" })
      .option('serve', { type: 'string', hidden: true, describe: RETIRED_SERVE })
      .option('reprotect', { type: 'string', describe: 'after a takeover, replicate to a new backup at HOST:PORT as soon as one is there' })
      .epilogue('The tracking and mapper flags apply once this node has taken over and runs the guest.') as unknown as Argv<BackupArgs>,
  handler: async (argv) => {
    const { memoryBytes, timing, guest, http, peerHttp } = daemonConfigFrom(argv);
    const auth = authFrom(argv);
    const listenAt = hostPort(argv.listen, '--listen');
    warnRetiredServe(argv.serve);
    const reprotect = argv.reprotect === undefined ? undefined : hostPort(argv.reprotect, '--reprotect');
    const guestNetwork = guestNetworkConfigFrom(argv, argv.guest);
    const guestImage = readImage(resolveGuestImage(argv.guest));
    if (argv['dry-run']) {
      printConfiguration('backup', {
        memoryBytes,
        timing,
        ...guest,
        auth,
        listen: listenAt,
        http,
        reprotect,
        network: guestNetwork && { tap: guestNetwork.tapName, guestIp: guestNetwork.address, mac: formatMac(guestNetwork.mac) },
      });
      return;
    }
    const metrics = new ReplicationMetrics('backup', 0);
    await runDaemon({
      role: 'backup',
      logLevel: argv['log-level'],
      http,
      peerHttp,
      metrics,
      start: async (logger, shutdown) => {
        const daemon = await BackupDaemon.start({
          listen: listenAt,
          memoryBytes,
          auth,
          timing,
          logger,
          metrics,
          promoted: { ...guest, onConsole: (text) => process.stderr.write(text), onFullSyncProgress: drawSyncProgress },
          reprotect,
          guestNetwork,
          guestImage,
          onPromotionFailed: (reason) => shutdown(`takeover failed: ${reason}`, 1),
          onDeposed: (reason) => shutdown(`deposed: ${reason}`, EXIT_DEPOSED),
        });
        return { readiness: () => daemon.readiness(), stop: (reason) => daemon.stop(reason), feed: daemon.feed };
      },
    });
  },
};
