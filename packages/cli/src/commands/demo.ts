import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '@hbft/common/errors.ts';
import { DEMO_TOPOLOGY_TAG, DemoSupervisor, demoPrefix, sweepStaleSocketDirs } from '../demo/supervisor.ts';
import { integerFlag, memoryBytesFrom } from './options.ts';
import { GUEST_ADDRESS, sweepStaleTopologies } from '../netns/topology.ts';
import { type NamespaceRoute, type WantedRoute, chooseRoute } from '../netns/privilege.ts';

interface DemoArgs {
  dir: string;
  memory: string;
  guest: string;
  namespaces: WantedRoute;
  'base-port': number;
  clients: number;
  load: boolean;
}

/** Leftovers of demos that were killed outright: as root their namespaces, and their sockets. */
function sweepStale(route: NamespaceRoute): void {
  const swept = route === 'root' ? sweepStaleTopologies(DEMO_TOPOLOGY_TAG) : [];
  if (swept.length > 0) process.stdout.write(`demo: removed the namespaces of demos that are gone: ${swept.join(', ')}\n`);
  sweepStaleSocketDirs(DEMO_TOPOLOGY_TAG);
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'run the local two-node demo in network namespaces: backup, primary, chaos proxy and a load generator (npm start)',
  builder: (yargs) =>
    yargs
      .option('dir', { type: 'string', default: '.hbft', describe: 'where the demo keeps its key, logs and demo.json' })
      .option('memory', { type: 'string', default: '64MiB', describe: 'guest RAM' })
      .option('guest', { type: 'string', default: 'kvnet', describe: 'guest image: a guest with a packet NIC on the LAN (kvnet)' })
      .option('namespaces', {
        choices: ['auto', 'root', 'user'],
        default: 'auto',
        describe:
          "how to build the network namespaces (the guest at its own address on a client LAN, 127.0.0.1:6379 forwarded to it, so a client's connection survives a takeover): " +
          "root: the machine's own (needs root); user: inside an unprivileged user namespace of this user (needs unprivileged user namespaces and a /dev/net/tun this user may open); auto: root as root, else user",
      })
      .option('base-port', {
        type: 'number',
        default: 7000,
        describe: 'replication ports start here (7000: the guest on 127.0.0.1:6379, dashboards on 9100/9101)',
      })
      .option('clients', { type: 'number', default: 4, describe: 'plain RESP clients of the load generator' })
      .option('load', {
        type: 'boolean',
        default: true,
        describe: 'run the load generator (--no-load to leave the guest idle)',
      }) as unknown as Argv<DemoArgs>,
  handler: async (argv) => {
    memoryBytesFrom(argv.memory);
    const basePort = integerFlag(argv['base-port'], '--base-port', 1024);
    if (basePort > 64_000) throw new UsageError("--base-port: must leave room for the demo's ports (at most 64000)");
    const clients = integerFlag(argv.clients, '--clients', 1);
    const route = chooseRoute(argv.namespaces);
    sweepStale(route);
    let stopping: Promise<void> | null = null;
    const stop = () => {
      stopping ??= (async () => {
        process.stdout.write('\ndemo: stopping (the load first: it finishes its operations and makes its final read)…\n');
        await demo.stop();
        process.stdout.write('demo: stopped; every process has exited, the namespaces are gone and the ports are free\n');
      })();
      return stopping;
    };
    const demo = new DemoSupervisor({
      dir: argv.dir,
      memory: argv.memory,
      guest: argv.guest,
      basePort,
      route,
      prefix: demoPrefix(),
      clients,
      host: '127.0.0.1',
      onFatal: (reason) => {
        process.stdout.write(`demo: ${reason}; stopping\n`);
        process.exitCode = 1;
        void stop();
      },
    });
    // Every signal, not just the first: `npm start` passes Ctrl-C on to a process that has had it
    // from the terminal already, and a second SIGINT without a handler would kill the supervisor
    // in the middle of its stop.
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping !== null) process.stdout.write(`demo: ${signal}: already stopping\n`);
      void stop();
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
    try {
      const how = route === 'root' ? 'as root' : 'in a user namespace of this user';
      process.stdout.write(`demo: building the network namespaces (${how}), then the chaos proxy, the backup and the primary…\n`);
      await demo.start();
      await demo.waitProtected((line) => process.stdout.write(`demo: ${line}\n`));
      if (argv.load) demo.startLoad();
    } catch (error) {
      await stop();
      throw error;
    }
    const port = demo.guestServe().split(':')[1];
    const history = demo.historyPath();
    if (!stopping)
      process.stdout.write(
        [
          '',
          `hbft demo is running: the ${argv.guest} guest is protected.`,
          `  dashboard   ${demo.dashboardUrl()}`,
          `  clients     redis-cli -p ${port}   (the guest at ${GUEST_ADDRESS}:6379 on the client LAN, forwarded: the connection survives a takeover)`,
          `  namespaces  ${demo.namespaceNames()}, ${route === 'root' ? "this machine's" : 'in a user namespace of this user'}`,
          `              (${demo.clientExecPrefix()} redis-cli -h ${GUEST_ADDRESS})`,
          argv.load ? `  load        ${clients} plain RESP clients, history in ${history}` : '  load        off (--no-load)',
          ...(argv.load ? [`              (after Ctrl-C: npx hbft load --check ${history})`] : []),
          `  failover    scripts/kill-primary.sh        (kills the primary under load, checks nothing was lost)`,
          `  network     scripts/chaos.sh latency 100   (then: scripts/chaos.sh clear)`,
          `  logs        ${argv.dir}/logs/`,
          '  Ctrl-C stops everything.',
          '',
        ].join('\n'),
      );
    await new Promise<void>((resolve) => {
      const wait = setInterval(() => {
        if (stopping !== null) {
          clearInterval(wait);
          void stopping.then(resolve);
        }
      }, 200);
    });
  },
};
