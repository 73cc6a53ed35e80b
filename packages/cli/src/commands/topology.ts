/**
 * `hbft topology`: the network-namespace topology where clients reach the guest (see
 * netns/topology.ts), for scripts/two-hosts.sh and for people: `up` and `down` build and remove it,
 * `forward` is the forwarder that runs inside the client's namespace and carries connections from
 * a Unix socket to the guest's address (the host side of it is in `hbft demo`).
 */
import type { CommandModule } from 'yargs';
import { parseHostPort } from '@hbft/common/units.ts';
import { FRONT_ADDRESS, GUEST_ADDRESS, NetnsTopology, REPL_ADDRESS } from '../netns/topology.ts';
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

interface ForwardArgs {
  unix: string;
  to: string;
}

const forwardCommand: CommandModule<object, ForwardArgs> = {
  command: 'forward',
  describe: 'listen on a Unix socket and connect each connection to HOST:PORT (run it where HOST is reachable)',
  builder: (yargs) =>
    yargs
      .option('unix', { type: 'string', demandOption: true, describe: 'the Unix socket to listen on' })
      .option('to', { type: 'string', demandOption: true, describe: "HOST:PORT to connect to (the guest's address)" }),
  handler: async (args) => {
    const to = parseHostPort(args.to, '--to');
    const forward = await forwardUnixToTcp(args.unix, to.host, to.port);
    process.stdout.write(`forward: ${args.unix} -> ${args.to}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => forward.server.close(() => resolve());
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};

export const topologyCommand: CommandModule<object, object> = {
  command: 'topology',
  describe: 'the network namespaces where clients reach the guest: up, down, forward',
  builder: (yargs) =>
    yargs
      .command(upCommand)
      .command(downCommand)
      .command(forwardCommand)
      .demandCommand(1, 'name a topology subcommand (see hbft topology --help)') as never,
  handler: () => undefined,
};
