/**
 * `hbft topology`: the network-namespace topology where clients reach the guest (see
 * netns/topology.ts), for scripts/two-hosts.sh and for people: `up` and `down` build and remove it,
 * `hold` keeps one for as long as its input stays open (the demo's namespaces, netns/holder.ts),
 * `forward` is the forwarder that runs inside the client's namespace and carries connections from
 * a Unix socket to the guest's address (the host side of it is in `hbft demo`).
 */
import type { CommandModule } from 'yargs';
import { UsageError, assert } from '@hbft/common/errors.ts';
import { formatEndpoint, parseHostPort } from '@hbft/common/units.ts';
import { FRONT_ADDRESS, GUEST_ADDRESS, NetnsTopology, REPL_ADDRESS, mountPrivateNetnsDir } from '../netns/topology.ts';
import { HOLDER_READY_LINE } from '../netns/holder.ts';
import { forwardUnixToTcp } from '../netns/forward.ts';

interface PrefixArgs {
  prefix: string;
}

const prefixOption = {
  type: 'string',
  default: 'hbft',
  describe: 'namespace names are PREFIX-primary, PREFIX-backup, PREFIX-client, PREFIX-chaos, PREFIX-sw',
} as const;

const upCommand: CommandModule<object, PrefixArgs> = {
  command: 'up',
  describe: 'make the namespaces, bridges, links and TAP devices that are missing (root)',
  builder: (yargs) => yargs.option('prefix', prefixOption),
  handler: (args) => {
    new NetnsTopology(args.prefix).up();
    process.stdout.write(
      `topology ${args.prefix}: LAN 10.77.0.0/24 (primary ${FRONT_ADDRESS.primary}, backup ${FRONT_ADDRESS.backup}, ` +
        `client ${FRONT_ADDRESS.client}, guest ${GUEST_ADDRESS}), replication 10.77.1.0/24 (primary ${REPL_ADDRESS.primary}, ` +
        `backup ${REPL_ADDRESS.backup}, chaos ${REPL_ADDRESS.chaos})\n`,
    );
  },
};

const downCommand: CommandModule<object, PrefixArgs> = {
  command: 'down',
  describe: 'end every process in the namespaces and delete them (root)',
  builder: (yargs) => yargs.option('prefix', prefixOption),
  handler: (args) => {
    new NetnsTopology(args.prefix).down();
    process.stdout.write(`topology ${args.prefix}: removed\n`);
  },
};

interface HoldArgs extends PrefixArgs {
  'private-netns-dir': boolean;
}

const holdCommand: CommandModule<object, HoldArgs> = {
  command: 'hold',
  describe: 'build the topology, keep it while standard input stays open, then end every process in it and remove it',
  builder: (yargs) =>
    yargs.option('prefix', prefixOption).option('private-netns-dir', {
      type: 'boolean',
      default: false,
      describe: 'first mount a /run/netns of its own (in a user namespace of its own only: hbft demo runs it so as an ordinary user)',
    }) as never,
  handler: async (args) => {
    if (args['private-netns-dir']) mountPrivateNetnsDir();
    const topology = new NetnsTopology(args.prefix);
    let down = false;
    const tearDown = () => {
      if (down) return;
      down = true;
      try {
        topology.down();
      } catch (error) {
        process.stderr.write(`topology-hold: ${(error as Error).message}\n`);
        process.exitCode = 1;
      }
    };
    // Whatever happens from here on, the namespaces go when this process does.
    process.on('exit', tearDown);
    try {
      topology.up();
    } catch (error) {
      tearDown();
      throw error;
    }
    process.stdout.write(`${HOLDER_READY_LINE}: ${args.prefix}-*\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, stop);
      process.stdin.once('end', stop);
      process.stdin.once('close', stop);
      process.stdin.resume();
    });
    tearDown();
    process.stdin.destroy();
  },
};

interface ForwardArgs {
  unix: string[];
  to: string[];
}

const forwardCommand: CommandModule<object, ForwardArgs> = {
  command: 'forward',
  describe: 'listen on Unix sockets and connect each connection to its HOST:PORT (run it where HOST is reachable)',
  builder: (yargs) =>
    yargs
      .option('unix', { type: 'string', array: true, demandOption: true, describe: 'a Unix socket to listen on (repeat, one per --to)' })
      .option('to', { type: 'string', array: true, demandOption: true, describe: "HOST:PORT to connect to, e.g. the guest's address" }),
  handler: async (args) => {
    if (args.unix.length !== args.to.length) {
      throw new UsageError(`--unix and --to come in pairs: got ${args.unix.length} --unix and ${args.to.length} --to`);
    }
    const targets = args.to.map((to) => parseHostPort(to, '--to'));
    const closes: (() => void)[] = [];
    for (const [index, target] of targets.entries()) {
      const path = args.unix[index];
      assert(path !== undefined, '--unix and --to were checked to pair up');
      closes.push((await forwardUnixToTcp(path, target.host, target.port, 'unix')).close);
      process.stdout.write(`forward: ${path} -> ${formatEndpoint(target)}\n`);
    }
    await new Promise<void>((resolve) => {
      const stop = () => {
        for (const close of closes) close();
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};

export const topologyCommand: CommandModule<object, object> = {
  command: 'topology',
  describe: 'the network namespaces where clients reach the guest: up, down, hold, forward',
  builder: (yargs) =>
    yargs
      .command(upCommand)
      .command(downCommand)
      .command(holdCommand)
      .command(forwardCommand)
      .demandCommand(1, 'name a topology subcommand (see hbft topology --help)') as never,
  handler: () => undefined,
};
