import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '@hbft/common/errors.ts';
import { DemoSupervisor, type DemoOptions } from '../demo/supervisor.ts';
import { integerFlag, memoryBytesFrom } from './options.ts';
import { GUEST_ADDRESS, NetnsTopology, prefixForProcess, sweepStaleTopologies, topologyPrivilege } from '../netns/topology.ts';

/** Namespaces of demos are `hbft-demo-<pid>-*`: a demo that was killed leaves them to the next. */
const DEMO_TOPOLOGY_TAG = 'hbft-demo';

/**
 * The demo's network: the namespaces when asked for or (auto) when this process may build them,
 * else loopback, saying why; --network netns without the means is an error naming what is missing.
 */
function chooseNetwork(wanted: DemoArgs['network']): DemoOptions['network'] {
  if (wanted === 'loopback') return { kind: 'loopback' };
  const privilege = topologyPrivilege();
  if (!privilege.ok) {
    if (wanted === 'netns') throw new UsageError(`--network netns: ${privilege.missing}`);
    process.stdout.write(`demo: on loopback, not in network namespaces: ${privilege.missing}\n`);
    return { kind: 'loopback' };
  }
  const swept = sweepStaleTopologies(DEMO_TOPOLOGY_TAG);
  if (swept.length > 0) process.stdout.write(`demo: removed the namespaces of demos that are gone: ${swept.join(', ')}\n`);
  return { kind: 'netns', topology: new NetnsTopology(prefixForProcess(DEMO_TOPOLOGY_TAG)) };
}

interface DemoArgs {
  dir: string;
  memory: string;
  guest?: string;
  network: 'auto' | 'netns' | 'loopback';
  'base-port': number;
  clients: number;
  load: boolean;
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'run the local two-node demo: backup, primary, chaos proxy and a load generator (npm start)',
  builder: (yargs) =>
    yargs
      .option('dir', { type: 'string', default: '.hbft', describe: 'where the demo keeps its key, logs and demo.json' })
      .option('memory', { type: 'string', default: '64MiB', describe: 'guest RAM' })
      .option('guest', { type: 'string', describe: 'guest image (default: kvnet in the namespaces, kv on loopback)' })
      .option('network', {
        choices: ['auto', 'netns', 'loopback'],
        default: 'auto',
        describe:
          "netns: the nodes in network namespaces, the guest at its own address on a client LAN and 127.0.0.1:6379 forwarded to it, so a client's connection survives a takeover (needs root); " +
          'loopback: each node serves clients at its own port on 127.0.0.1; auto: netns when this process may build it',
      })
      .option('base-port', {
        type: 'number',
        default: 7000,
        describe: 'replication ports start here (7000: clients on 6379/6380, dashboards on 9100/9101)',
      })
      .option('clients', { type: 'number', default: 4, describe: 'session clients of the load generator' })
      .option('load', {
        type: 'boolean',
        default: true,
        describe: 'run the load generator (--no-load to leave the guest idle)',
      }) as unknown as Argv<DemoArgs>,
  handler: async (argv) => {
    memoryBytesFrom(argv.memory);
    const network = chooseNetwork(argv.network);
    const guest = argv.guest ?? (network.kind === 'netns' ? 'kvnet' : 'kv');
    const basePort = integerFlag(argv['base-port'], '--base-port', 1024);
    if (basePort > 64_000) throw new UsageError("--base-port: must leave room for the demo's ports (at most 64000)");
    let stopping: Promise<void> | null = null;
    const stop = () => {
      stopping ??= (async () => {
        process.stdout.write('\ndemo: stopping (the load first: it finishes its operations and makes its final read)…\n');
        await demo.stop();
        process.stdout.write('demo: stopped; every process has exited and the ports are free\n');
      })();
      return stopping;
    };
    const demo = new DemoSupervisor({
      dir: argv.dir,
      memory: argv.memory,
      guest,
      basePort,
      network,
      clients: integerFlag(argv.clients, '--clients', 1),
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
      process.stdout.write('demo: starting the chaos proxy, the backup and the primary…\n');
      await demo.start();
      await demo.waitProtected((line) => process.stdout.write(`demo: ${line}\n`));
      if (argv.load) demo.startLoad();
    } catch (error) {
      await stop();
      throw error;
    }
    const [primary, backup] = demo.servers();
    const clients =
      network.kind === 'netns'
        ? [
            `  clients     redis-cli -p ${primary.split(':')[1]}   (the guest at ${GUEST_ADDRESS}:6379 on the client LAN, forwarded: the connection survives a takeover)`,
            `  namespaces  ${network.topology.prefix}-{primary,backup,client,chaos,sw}   (ip netns exec ${network.topology.namespace('client')} redis-cli -h ${GUEST_ADDRESS})`,
          ]
        : [
            `  clients     redis-cli -p ${primary.split(':')[1]}   (the primary; after a takeover: -p ${backup.split(':')[1]})`,
            `              npx hbft client --servers ${primary},${backup} INCR visits`,
          ];
    const history = `${argv.dir}/load-history.jsonl`;
    if (!stopping)
      process.stdout.write(
        [
          '',
          `hbft demo is running: the ${guest} guest is protected.`,
          `  dashboard   ${demo.dashboardUrl()}`,
          ...clients,
          argv.load
            ? `  load        ${argv.clients} ${network.kind === 'netns' ? 'plain RESP' : 'session'} clients, history in ${history}`
            : '  load        off (--no-load)',
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
