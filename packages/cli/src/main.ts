import yargs, { type Argv, type CommandModule } from 'yargs';
import { HbftError, UsageError } from '@hbft/common/errors.ts';
import { commands } from './commands/index.ts';

/**
 * Entry point of the `hbft` command. Every flag can also be given as an environment variable:
 * `--epoch-ms 20` is `HBFT_EPOCH_MS=20`. Errors from bad input are printed as one line naming the
 * problem (exit 2 for usage errors, 1 otherwise); only programmer errors show a stack trace.
 */
export async function main(argv: string[]): Promise<void> {
  const parser: Argv = yargs(argv)
    .scriptName('hbft')
    .env('HBFT')
    .strict()
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
export function reportError(error: unknown): number {
  if (error instanceof UsageError) {
    process.stderr.write(`hbft: ${error.message}\n(run with --help for the accepted flags)\n`);
    return 2;
  }
  if (error instanceof HbftError) {
    process.stderr.write(`hbft: ${error.message}\n`);
    return 1;
  }
  throw error;
}
