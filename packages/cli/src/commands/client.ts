/**
 * `hbft client`: a redis-cli for hbft. With a command it sends that one command and prints the
 * reply; without one it reads commands line by line (a prompt on a terminal). By default it speaks
 * the session protocol, so it follows a failover without losing or repeating anything; `--plain`
 * speaks bare RESP like redis-cli does, to show the difference.
 */
import { createInterface } from 'node:readline';
import type { CommandModule } from 'yargs';
import { HbftError, UsageError } from '@hbft/common/errors.ts';
import { createLogger } from '@hbft/common/log.ts';
import { SessionClient } from '@hbft/common/session/client.ts';
import { PlainClient } from '@hbft/common/session/plainClient.ts';
import { formatReply, formatReplyRaw, splitCommandLine } from '@hbft/common/session/redisCli.ts';
import { encodeCommand, parseTypedReply, ReplyReader, type TypedReply } from '@hbft/common/session/resp.ts';
import { integerFlag } from './options.ts';
import { parseServers } from './load.ts';

interface ClientArgs {
  servers?: string;
  plain: boolean;
  raw?: boolean;
  'timeout-ms': number;
  command?: string[];
}

/** Sends commands and yields typed replies, over a session or a plain connection. */
interface CommandChannel {
  request(args: string[]): Promise<TypedReply>;
  /** Where commands go now, for the prompt. */
  address(): string | null;
  close(): Promise<void>;
}

/**
 * A session used through its byte-stream API: commands written in order, replies read back in
 * order with their RESP types kept for display.
 */
function sessionChannel(servers: string[], timeoutMs: number): CommandChannel {
  const session = new SessionClient({
    servers,
    reconnectDeadlineMs: timeoutMs,
    logger: createLogger({ role: 'client', level: process.env.HBFT_LOG_LEVEL ?? 'error' }),
  });
  const reader = new ReplyReader(parseTypedReply);
  const waiters: { resolve: (reply: TypedReply) => void; reject: (error: Error) => void }[] = [];
  session.on('data', (bytes) => {
    reader.push(bytes);
    try {
      for (let reply = reader.next(); reply !== undefined; reply = reader.next()) waiters.shift()?.resolve(reply);
    } catch (error) {
      for (const waiter of waiters.splice(0))
        waiter.reject(new HbftError('E_SESSION_BAD_REPLY', `the output stream is not valid RESP: ${(error as Error).message}`));
      void session.close();
    }
  });
  session.on('failover', (info) =>
    process.stderr.write(
      `(failover: ${info.from} → ${info.to}, generation ${info.fromGeneration} → ${info.toGeneration}, ${info.gapMs.toFixed(0)} ms; nothing lost or repeated)\n`,
    ),
  );
  void session.whenClosed().then((error) => {
    for (const waiter of waiters.splice(0)) waiter.reject(error ?? new HbftError('E_SESSION_CLOSED', 'the session is closed'));
  });
  return {
    request: (args) =>
      new Promise((resolve, reject) => {
        if (session.isClosed) return reject(new HbftError('E_SESSION_CLOSED', 'the session is closed'));
        waiters.push({ resolve, reject });
        session.write(encodeCommand(args));
      }),
    address: () => session.address,
    close: () => session.close(),
  };
}

function plainChannel(servers: string[], timeoutMs: number): CommandChannel {
  const client = new PlainClient({ servers, probeTimeoutMs: timeoutMs });
  return {
    request: (args) => client.request(args),
    address: () => client.address,
    close: async () => client.close(),
  };
}

function printReply(reply: TypedReply, raw: boolean): void {
  process.stdout.write(`${raw ? formatReplyRaw(reply) : formatReply(reply)}\n`);
}

async function interactive(channel: CommandChannel, raw: boolean, servers: string[]): Promise<void> {
  const terminal = Boolean(process.stdin.isTTY);
  const lines = createInterface({ input: process.stdin, output: process.stdout, terminal });
  const prompt = () => {
    if (!terminal) return;
    lines.setPrompt(`${channel.address() ?? servers[0]}> `);
    lines.prompt();
  };
  prompt();
  for await (const line of lines) {
    const split = splitCommandLine(line);
    if ('error' in split) {
      process.stdout.write(`Invalid argument(s): ${split.error}\n`);
    } else if (split.args[0] !== undefined) {
      const name = split.args[0].toLowerCase();
      if (name === 'quit' || name === 'exit') break;
      try {
        printReply(await channel.request(split.args), raw);
      } catch (error) {
        if (!(error instanceof HbftError)) throw error;
        process.stdout.write(`(error) ${error.message}\n`);
        if (error.code !== 'E_PLAIN_CONNECTION') break;
      }
    }
    prompt();
  }
  lines.close();
}

export const clientCommand: CommandModule<object, ClientArgs> = {
  command: 'client [command..]',
  describe: 'send a command to the kv guest (or read commands interactively), following failovers',
  builder: (yargs) =>
    yargs
      .positional('command', { type: 'string', array: true, describe: 'command and arguments, e.g. SET k v (none: interactive)' })
      .option('servers', { type: 'string', describe: "the nodes' --serve addresses, HOST:PORT,HOST:PORT" })
      .option('plain', { type: 'boolean', default: false, describe: 'bare RESP like redis-cli: no resume after a failover' })
      .option('raw', { type: 'boolean', describe: 'print replies raw (the default when output is not a terminal)' })
      .option('timeout-ms', { type: 'number', default: 10_000, describe: 'give up when no node serves for this long' })
      .epilogue(
        'Put -- before a command whose arguments start with a dash. Exit status: 0, or 1 when the reply is an error or no node serves.',
      ),
  handler: async (argv) => {
    const servers = parseServers(argv.servers);
    const timeoutMs = integerFlag(argv['timeout-ms'], '--timeout-ms', 1);
    const raw = argv.raw ?? !process.stdout.isTTY;
    const command = (argv.command ?? []).map(String);
    const channel = argv.plain ? plainChannel(servers, timeoutMs) : sessionChannel(servers, timeoutMs);
    try {
      if (command.length === 0) {
        await interactive(channel, raw, servers);
        return;
      }
      // `hbft client "SET k v"` means what it says: split a lone argument as the prompt would.
      const [only] = command;
      const split = command.length === 1 && only !== undefined ? splitCommandLine(only) : { args: command };
      if ('error' in split) throw new UsageError(`command: ${split.error}`);
      const reply = await channel.request(split.args);
      printReply(reply, raw);
      if (reply.type === 'error') process.exitCode = 1;
    } finally {
      await channel.close();
    }
  },
};
