import yargs, { type Argv, type CommandModule } from 'yargs';
import { HbftError, SettingError, UsageError } from '@hbft/common/errors.ts';
import { ListenError } from '@hbft/common/transport/listen.ts';
import { commands } from './commands/index.ts';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/**
 * Entry point of the `hbft` command. Every flag can also be given as an environment variable:
 * `--epoch-ms 20` is `HBFT_EPOCH_MS=20`. Errors from bad input are printed as one line naming the
 * problem (exit 2 for usage errors, 1 otherwise); only programmer errors show a stack trace.
 *
 * Unknown flags on the command line are errors; unknown HBFT_* variables are not, because one
 * environment (a compose env file, say) serves several commands.
 */
export async function main(argv: string[]): Promise<void> {
  const parser: Argv = yargs(argv)
    .scriptName('hbft')
    .env('HBFT')
    .strictCommands()
    .option('log-level', {
      type: 'string',
      choices: LOG_LEVELS,
      default: 'info',
      global: true,
      describe: 'daemon log level (logs are JSON lines on stderr)',
    })
    // yargs passes the instance as a second argument, which its type declarations leave out.
    .middleware(((_args: unknown, instance: { getOptions(): FlagOptions }) => rejectUnknownFlags(argv, instance.getOptions())) as never)
    .demandCommand(1, 'name a command (see --help)')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error) => {
      throw error ?? new UsageError(message);
    });
  for (const command of commands) parser.command(command as CommandModule);
  try {
    await parser.parseAsync();
  } catch (error) {
    process.exitCode = reportError(error);
  }
}

/** Prints an error the way users should see it and returns the exit code. */
/** Library errors name a setting; on the command line a setting is the flag of that name. */
function asFlag(error: { setting: string; problem: string }): string {
  return `--${error.setting}: ${error.problem}`;
}

export function reportError(error: unknown): number {
  if (error instanceof UsageError) {
    // Library code names a setting; on the command line a setting is the flag of that name.
    const message = error instanceof SettingError ? asFlag(error) : error.message;
    process.stderr.write(`hbft: ${message}\n(run with --help for the accepted flags)\n`);
    return 2;
  }
  if (error instanceof HbftError) {
    process.stderr.write(`hbft: ${error instanceof ListenError ? asFlag(error) : error.message}\n`);
    return 1;
  }
  throw error;
}

/** Throws a UsageError for a `--flag` on the command line that the chosen command does not know. */
interface FlagOptions {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
}

function rejectUnknownFlags(tokens: string[], options: FlagOptions): void {
  const known = new Set(Object.keys(options.key));
  for (const [name, aliases] of Object.entries(options.alias)) {
    known.add(name);
    for (const alias of aliases) known.add(alias);
  }
  const camelToKebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  for (const token of tokens) {
    if (token === '--') break;
    if (!token.startsWith('-') || /^-\d/.test(token) || token === '-') continue;
    const name = token.replace(/^--?/, '').replace(/=.*/s, '');
    const candidates = [name, camelToKebab(name), name.replace(/^no-/, '')];
    if (!candidates.some((candidate) => known.has(candidate))) {
      throw new UsageError(`unknown flag ${token.split('=')[0]}`);
    }
  }
}
