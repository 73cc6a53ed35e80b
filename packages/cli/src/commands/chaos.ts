/**
 * `hbft chaos`: the network chaos proxy that makes the replication link slow or broken on demand
 * (the kernel here has no netem). `hbft chaos proxy` runs the proxies and their Toxiproxy-style HTTP
 * API; the other subcommands drive a running one through that API and print one line saying what
 * they did. Every flag is also an environment variable (`--api` is `HBFT_API`).
 */
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '@hbft/common/errors.ts';
import { createLogger } from '@hbft/common/log.ts';
import { parseHostPort } from '@hbft/common/units.ts';
import { ChaosApiServer } from '@hbft/common/chaos/api.ts';
import { ChaosClient, type ProxyInfo } from '@hbft/common/chaos/client.ts';
import { ChaosApiError, InvalidFieldError } from '@hbft/common/chaos/errors.ts';
import { lossRetransmitMsDefault } from '@hbft/common/limits.ts';
import { describeToxic, PARTITION_MODES, STREAM_NAMES, type PartitionMode, type StreamName } from '@hbft/common/chaos/model.ts';
import { parseRateKBps } from '@hbft/common/chaos/rate.ts';
import { ProxyRegistry } from '@hbft/common/chaos/registry.ts';
import { parseProxyCreate } from '@hbft/common/chaos/validate.ts';

/** Toxiproxy's default API port, so that habits carry over. */
const API_DEFAULT = '127.0.0.1:8474';

type StreamChoice = StreamName | 'both';

interface ClientArgs {
  api: string;
  proxy?: string;
  stream: StreamChoice;
}

function clientOptions(yargs: Argv<any>): Argv<any> {
  return yargs
    .option('api', { type: 'string', default: API_DEFAULT, describe: 'HOST:PORT of the running chaos proxy API' })
    .option('proxy', { type: 'string', describe: 'proxy name (may be left out when the server runs exactly one)' });
}

function streamOption(yargs: Argv<any>): Argv<any> {
  return yargs.option('stream', {
    choices: ['both', ...STREAM_NAMES],
    default: 'both',
    describe: 'direction: upstream = client → server, downstream = server → client',
  });
}

function clientFor(args: { api: string }): ChaosClient {
  return new ChaosClient(parseHostPort(args.api, '--api'));
}

/** The proxy named by --proxy, or the only one there is. */
async function resolveProxy(client: ChaosClient, args: { proxy?: string }): Promise<ProxyInfo> {
  if (args.proxy) return client.getProxy(args.proxy);
  const proxies = Object.values(await client.listProxies());
  const [only, ...others] = proxies;
  if (only !== undefined && others.length === 0) return only;
  const names = proxies.map((proxy) => proxy.name).join(', ') || 'none';
  throw new UsageError(`--proxy: name the proxy to act on (the server has: ${names})`);
}

function streamsOf(choice: StreamChoice): StreamName[] {
  return choice === 'both' ? [...STREAM_NAMES] : [choice];
}

function describeStreams(choice: StreamChoice): string {
  return choice === 'both' ? 'upstream and downstream' : choice;
}

/** Reads a non-negative number, optionally ending in `unit` (`50`, `50ms`). */
function parseNumber(text: unknown, name: string, unit: string, max: number): number {
  const match = new RegExp(`^\\s*(\\d+(?:\\.\\d+)?)\\s*(?:${unit})?\\s*$`).exec(String(text));
  const value = match ? Number(match[1]) : NaN;
  if (!(value >= 0 && value <= max))
    throw new UsageError(`${name}: expected a number from 0 to ${max}${unit ? ` (${unit})` : ''}, got "${text}"`);
  return value;
}

/** Sets one toxic per chosen direction, named as Toxiproxy names them by default: TYPE_STREAM. */
async function putPerStream(
  client: ChaosClient,
  proxy: string,
  type: string,
  choice: StreamChoice,
  attributes: Record<string, number>,
  toxicity = 1,
): Promise<void> {
  for (const stream of streamsOf(choice)) {
    await client.putToxic(proxy, { name: `${type}_${stream}`, type, stream, toxicity, attributes });
  }
}

async function removePerStream(client: ChaosClient, proxy: ProxyInfo, type: string, choice: StreamChoice): Promise<number> {
  let removed = 0;
  for (const stream of streamsOf(choice)) {
    if (proxy.toxics.some((toxic) => toxic.name === `${type}_${stream}`)) {
      await client.deleteToxic(proxy.name, `${type}_${stream}`);
      removed++;
    }
  }
  return removed;
}

/**
 * yargs types every handler's arguments loosely; each handler states the shape its builder makes.
 * An API answer of 400 means the user's arguments were wrong, so it exits like a usage error.
 */
function typed<T>(run: (args: T) => Promise<void>): (args: unknown) => Promise<void> {
  return async (args) => {
    try {
      await run(args as T);
    } catch (error) {
      if (error instanceof ChaosApiError && error.status === 400) throw new UsageError(error.message);
      throw error;
    }
  };
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

const proxyCommand: CommandModule<any, any> = {
  command: 'proxy',
  describe: 'run the chaos proxies and their HTTP control API until SIGTERM/SIGINT',
  builder: (yargs) =>
    yargs
      .option('api', { type: 'string', default: API_DEFAULT, describe: 'HOST:PORT for the control API' })
      .option('proxy', {
        type: 'string',
        array: true,
        default: [],
        describe: 'a proxy to create at start, as NAME=LISTEN_HOST:PORT>UPSTREAM_HOST:PORT (quote the ">")',
      })
      .example("$0 chaos proxy --api 127.0.0.1:8474 --proxy 'repl=127.0.0.1:7001>127.0.0.1:7000'", 'proxy the replication link'),
  handler: typed(async (args: { api: string; proxy: string[] }) => {
    const specs = args.proxy.map(parseProxySpec);
    const logger = createLogger({ role: 'chaos' });
    const registry = new ProxyRegistry({ logger });
    const api = await ChaosApiServer.start({ registry, listen: parseHostPort(args.api, '--api'), logger });
    try {
      for (const spec of specs) await registry.create(spec);
    } catch (error) {
      await registry.close();
      await api.close();
      throw error;
    }
    const proxies = registry.list().map((proxy) => {
      const { listen, upstream } = proxy.toJSON() as { listen: string; upstream: string };
      return `${proxy.name} ${listen} > ${upstream}`;
    });
    say(`chaos: API on ${api.address.host}:${api.address.port}; proxies: ${proxies.join(', ') || 'none yet (POST /proxies)'}`);
    const signal = await new Promise<string>((resolve) => {
      const onSignal = (name: string) => {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        resolve(name);
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    logger.info({ signal }, 'shutting down');
    await registry.close();
    await api.close();
    say(`chaos: stopped on ${signal}; sockets closed, ports free`);
  }),
};

/** `NAME=LISTEN>UPSTREAM` as one `POST /proxies` body, validated the same way. */
function parseProxySpec(spec: string) {
  const match = /^([^=]+)=(.+)>(.+)$/.exec(spec);
  if (!match) throw new UsageError(`--proxy: expected NAME=LISTEN_HOST:PORT>UPSTREAM_HOST:PORT, got "${spec}"`);
  try {
    return parseProxyCreate({ name: match[1], listen: match[2], upstream: match[3] });
  } catch (error) {
    if (error instanceof InvalidFieldError) throw new UsageError(`--proxy ${spec}: ${error.message}`);
    throw error;
  }
}

const latencyCommand: CommandModule<any, any> = {
  command: 'latency <ms> [jitter]',
  describe: 'delay every byte by MS ± JITTER milliseconds in each chosen direction (never reorders)',
  builder: (yargs) =>
    streamOption(clientOptions(yargs))
      .positional('ms', { type: 'string', describe: 'one-way delay in milliseconds' })
      .positional('jitter', { type: 'string', default: '0', describe: 'uniform ± jitter in milliseconds' })
      .example('$0 chaos latency --proxy repl 50 10', 'round trips get 100 ± 20 ms slower'),
  handler: typed(async (args: ClientArgs & { ms: string; jitter: string }) => {
    const latencyMs = parseNumber(args.ms, 'MS', 'ms', 3_600_000);
    const jitterMs = parseNumber(args.jitter, 'JITTER', 'ms', 3_600_000);
    const client = clientFor(args);
    const proxy = await resolveProxy(client, args);
    await putPerStream(client, proxy.name, 'latency', args.stream, { latency: latencyMs, jitter: jitterMs });
    const plusMinus = (value: number) => (jitterMs ? ` ± ${value * jitterMs} ms` : '');
    const roundTrip = args.stream === 'both' ? ` (round trips +${2 * latencyMs} ms${plusMinus(2)})` : '';
    say(`${proxy.name}: latency ${latencyMs} ms${plusMinus(1)} on ${describeStreams(args.stream)}${roundTrip}`);
  }),
};

const bandwidthCommand: CommandModule<any, any> = {
  command: 'bandwidth <rate>',
  describe: 'limit each chosen direction to RATE (1mbit, 128kbit, 100KB/s, 2MiB/s; a bare number is KB/s)',
  builder: (yargs) =>
    streamOption(clientOptions(yargs))
      .positional('rate', { type: 'string', describe: 'the rate limit' })
      .example('$0 chaos bandwidth --proxy repl 1mbit', '125 KB/s each way'),
  handler: typed(async (args: ClientArgs & { rate: string }) => {
    let rateKBps: number;
    try {
      rateKBps = parseRateKBps(args.rate, 'RATE');
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const client = clientFor(args);
    const proxy = await resolveProxy(client, args);
    await putPerStream(client, proxy.name, 'bandwidth', args.stream, { rate: rateKBps });
    say(`${proxy.name}: bandwidth ${rateKBps} KB/s (${(rateKBps * 8) / 1000} Mbit/s) on ${describeStreams(args.stream)}`);
  }),
};

const lossCommand: CommandModule<any, any> = {
  command: 'loss <percent>',
  describe:
    'lose PERCENT % of packets. TCP cannot drop bytes, so: --mode stall (default) delays the stream by a ' +
    'retransmission timeout at each lost 1460-byte segment; --mode reset resets PERCENT % of connections ' +
    '(reset_peer with that toxicity). 0 removes the loss toxics.',
  builder: (yargs) =>
    streamOption(clientOptions(yargs))
      .positional('percent', { type: 'string', describe: 'loss in percent, 0 to 100' })
      .option('mode', { choices: ['stall', 'reset'], default: 'stall', describe: 'how a loss shows on a TCP stream' })
      .option('retransmit-ms', { type: 'number', default: lossRetransmitMsDefault, describe: 'stall per loss (stall mode)' })
      .example('$0 chaos loss --proxy repl 2', '2 % of segments arrive 200 ms late'),
  handler: typed(async (args: ClientArgs & { percent: string; mode: 'stall' | 'reset'; retransmitMs: number }) => {
    const percent = parseNumber(args.percent, 'PERCENT', '%', 100);
    const retransmitMs = parseNumber(args.retransmitMs, '--retransmit-ms', 'ms', 3_600_000);
    const client = clientFor(args);
    const proxy = await resolveProxy(client, args);
    // Switching mode must not leave the other mode's toxics behind.
    await removePerStream(client, proxy, args.mode === 'stall' ? 'reset_peer' : 'loss', args.stream);
    if (percent === 0) {
      const removed = await removePerStream(client, proxy, args.mode === 'stall' ? 'loss' : 'reset_peer', args.stream);
      say(`${proxy.name}: loss off on ${describeStreams(args.stream)} (${removed} toxic${removed === 1 ? '' : 's'} removed)`);
      return;
    }
    if (args.mode === 'stall') {
      await putPerStream(client, proxy.name, 'loss', args.stream, { probability: percent / 100, retransmit: retransmitMs });
      say(`${proxy.name}: loss ${percent}% of segments on ${describeStreams(args.stream)}; each loss stalls the stream ${retransmitMs} ms`);
    } else {
      await putPerStream(client, proxy.name, 'reset_peer', args.stream, { timeout: 0 }, percent / 100);
      say(
        `${proxy.name}: loss as resets: ${percent}% of connections on ${describeStreams(args.stream)} are reset (reset_peer, toxicity ${percent / 100})`,
      );
    }
  }),
};

const partitionCommand: CommandModule<any, any> = {
  command: 'partition',
  describe:
    'partition the link: --mode cut closes connections and refuses new ones; --mode stall keeps ' +
    'connections open but passes no byte (and holds new ones) until heal',
  builder: (yargs) => clientOptions(yargs).option('mode', { choices: [...PARTITION_MODES], default: 'cut', describe: 'cut or stall' }),
  handler: typed(async (args: ClientArgs & { mode: PartitionMode }) => {
    const client = clientFor(args);
    const proxy = await resolveProxy(client, args);
    await client.updateProxy(proxy.name, { enabled: false, partition: args.mode });
    const what = args.mode === 'cut' ? 'connections closed, new ones refused' : 'connections held open, no bytes pass';
    say(`${proxy.name}: partitioned (${args.mode}: ${what}); undo with "hbft chaos heal"`);
  }),
};

const healCommand: CommandModule<any, any> = {
  command: 'heal',
  describe: 'end a partition (re-enable the proxy); toxics stay',
  builder: (yargs) => clientOptions(yargs),
  handler: typed(async (args: ClientArgs) => {
    const client = clientFor(args);
    const proxy = await resolveProxy(client, args);
    await client.updateProxy(proxy.name, { enabled: true });
    const toxics = proxy.toxics.length;
    say(
      `${proxy.name}: healed (enabled${proxy.enabled ? ', was not partitioned' : ''}); ${toxics} toxic${toxics === 1 ? '' : 's'} still active`,
    );
  }),
};

const clearCommand: CommandModule<any, any> = {
  command: 'clear',
  describe: 'remove every toxic and heal: one proxy with --proxy, else every proxy (POST /reset)',
  builder: (yargs) =>
    yargs
      .option('api', { type: 'string', default: API_DEFAULT, describe: 'HOST:PORT of the running chaos proxy API' })
      .option('proxy', { type: 'string', describe: 'only this proxy' }),
  handler: typed(async (args: ClientArgs) => {
    const client = clientFor(args);
    if (!args.proxy) {
      await client.reset();
      say('all proxies: toxics removed, enabled');
      return;
    }
    const proxy = await client.getProxy(args.proxy);
    for (const toxic of proxy.toxics) await client.deleteToxic(proxy.name, toxic.name);
    await client.updateProxy(proxy.name, { enabled: true });
    say(`${proxy.name}: ${proxy.toxics.length} toxic${proxy.toxics.length === 1 ? '' : 's'} removed, enabled`);
  }),
};

const statusCommand: CommandModule<any, any> = {
  command: 'status',
  describe: 'one line per proxy: addresses, partition, toxics, connections (--json for the raw answer)',
  builder: (yargs) =>
    yargs
      .option('api', { type: 'string', default: API_DEFAULT, describe: 'HOST:PORT of the running chaos proxy API' })
      .option('proxy', { type: 'string', describe: 'only this proxy' })
      .option('json', { type: 'boolean', default: false, describe: 'print the API answer as JSON' }),
  handler: typed(async (args: ClientArgs & { json: boolean }) => {
    const client = clientFor(args);
    const proxies = args.proxy ? [await client.getProxy(args.proxy)] : Object.values(await client.listProxies());
    if (args.json) {
      say(JSON.stringify(args.proxy ? proxies[0] : proxies));
      return;
    }
    if (proxies.length === 0) say('no proxies');
    for (const proxy of proxies) {
      const state = proxy.enabled ? 'enabled' : `partitioned (${proxy.partition ?? 'cut'})`;
      const toxics = proxy.toxics.length ? proxy.toxics.map(describeToxic).join('; ') : 'no toxics';
      const stats = proxy.stats
        ? `, ${proxy.stats.connections} connection${proxy.stats.connections === 1 ? '' : 's'}, ${proxy.stats.upstreamBytes} B up, ${proxy.stats.downstreamBytes} B down`
        : '';
      say(`${proxy.name}: ${proxy.listen} > ${proxy.upstream}, ${state}${stats}; ${toxics}`);
    }
  }),
};

const toxicCommand: CommandModule<any, any> = {
  command: 'toxic <type> [attributes..]',
  describe: 'add or update any toxic by its Toxiproxy name and attributes (e.g. slicer average_size=64 delay=500)',
  builder: (yargs) =>
    streamOption(clientOptions(yargs))
      .positional('type', { type: 'string', describe: 'latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, loss' })
      .positional('attributes', { type: 'string', array: true, default: [], describe: 'KEY=NUMBER pairs' })
      .option('toxicity', { type: 'number', default: 1, describe: 'probability 0..1 that a connection is affected' })
      .example('$0 chaos toxic --proxy repl timeout timeout=2000 --stream downstream', 'stop replies, close after 2 s'),
  handler: typed(async (args: ClientArgs & { type: string; attributes: string[]; toxicity: number }) => {
    const attributes: Record<string, number> = {};
    for (const pair of args.attributes) {
      const match = /^([a-z_]+)=(-?\d+(?:\.\d+)?)$/.exec(pair);
      const key = match?.[1];
      if (!match || key === undefined) throw new UsageError(`attributes: expected KEY=NUMBER, got "${pair}"`);
      attributes[key] = Number(match[2]);
    }
    const client = clientFor(args);
    const proxy = await resolveProxy(client, args);
    const toxics = [];
    for (const stream of streamsOf(args.stream)) {
      toxics.push(
        await client.putToxic(proxy.name, { name: `${args.type}_${stream}`, type: args.type, stream, toxicity: args.toxicity, attributes }),
      );
    }
    say(`${proxy.name}: ${toxics.map(describeToxic).join('; ')}`);
  }),
};

export const chaosCommand: CommandModule<any, any> = {
  command: 'chaos',
  describe: 'network chaos proxy for the replication link (latency, bandwidth, loss, partitions)',
  builder: (yargs) =>
    yargs
      .command(proxyCommand)
      .command(latencyCommand)
      .command(bandwidthCommand)
      .command(lossCommand)
      .command(partitionCommand)
      .command(healCommand)
      .command(clearCommand)
      .command(statusCommand)
      .command(toxicCommand)
      .demandCommand(1, 'name a chaos subcommand (see hbft chaos --help)'),
  handler: () => undefined,
};
