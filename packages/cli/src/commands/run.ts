import type { CommandModule } from 'yargs';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { CPU_ENGINES, type CpuEngine } from '@hbft/common/guest/cpu.ts';
import { writeFileSync } from 'node:fs';
import { UsageError } from '@hbft/common/errors.ts';
import { runElf, signatureText } from '@hbft/common/guest/run.ts';
import { integerFlag, memoryBytesFrom, withMemory } from './options.ts';

/** Exit codes of `hbft run` beyond the guest's own: documented in --help. */
export const EXIT_GUEST_IDLE = 123;
export const EXIT_INSTRUCTION_LIMIT = 124;
export const EXIT_GUEST_FAULT = 125;
/** A failing test number above this is reported as this code (the message has the number). */
const EXIT_FAIL_MAX = 120;

interface RunArgs {
  image: string;
  memory: string;
  'max-instructions'?: number;
  args: string;
  quiet: boolean;
  engine: CpuEngine;
  signature?: string;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <image>',
  describe: 'run a guest image (an ELF path, or a shipped guest: kv, cfp, cint, jbb, web) and print its console',
  builder: (yargs) =>
    withMemory(yargs)
      .positional('image', { type: 'string', demandOption: true, describe: 'ELF file or guest name' })
      .option('max-instructions', { type: 'number', describe: 'stop after this many instructions (exit 124)' })
      .option('args', { type: 'string', default: '', describe: 'argument string for the guest, e.g. "mb=32 rounds=4"' })
      .option('quiet', { type: 'boolean', default: false, describe: 'do not print the summary line' })
      .option('signature', {
        type: 'string',
        describe: 'when the guest stops, write begin_signature..end_signature to FILE as Spike\'s +signature= does (one 32-bit hex word per line)',
      })
      .option('engine', {
        choices: CPU_ENGINES,
        default: 'blocks' as CpuEngine,
        describe: 'CPU engine: compiled basic blocks, or the reference interpreter (same results, slower)',
      })
      .epilogue(
        'Exit status: 0 when the guest passes (finisher PASS or tohost = 1); the guest\'s exit code or the failing ' +
          `test number (capped at ${EXIT_FAIL_MAX}) when it fails; ${EXIT_GUEST_IDLE} when it waits for input that ` +
          `cannot come; ${EXIT_INSTRUCTION_LIMIT} when --max-instructions is reached; ${EXIT_GUEST_FAULT} on a fatal guest error.`,
      ),
  handler: (argv) => {
    const maxInstructions = argv['max-instructions'] === undefined ? undefined : integerFlag(argv['max-instructions'], '--max-instructions', 1);
    const started = performance.now();
    const result = runElf(resolveGuestImage(argv.image), {
      memoryBytes: memoryBytesFrom(argv.memory),
      maxInstructions,
      args: argv.args,
      engine: argv.engine,
      onConsole: (text) => process.stdout.write(text),
    });
    const seconds = (performance.now() - started) / 1000;
    if (argv.signature !== undefined) {
      const text = signatureText(result.machine, result.symbols, argv.image);
      try {
        writeFileSync(argv.signature, text);
      } catch (error) {
        throw new UsageError(`--signature: cannot write ${argv.signature}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
    }
    if (!argv.quiet) {
      const mips = result.instructions / seconds / 1e6;
      process.stderr.write(`hbft: ${result.message} (${seconds.toFixed(2)} s, ${mips.toFixed(0)} MIPS)\n`);
    }
    switch (result.outcome) {
      case 'pass':
        process.exitCode = 0;
        break;
      case 'fail':
        process.exitCode = Math.min(Math.max(result.exitCode, 1), EXIT_FAIL_MAX);
        break;
      case 'idle':
        process.exitCode = EXIT_GUEST_IDLE;
        break;
      case 'limit':
        process.exitCode = EXIT_INSTRUCTION_LIMIT;
        break;
      case 'fault':
        process.exitCode = EXIT_GUEST_FAULT;
        break;
    }
  },
};
