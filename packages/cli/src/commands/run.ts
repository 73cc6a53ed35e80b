import type { CommandModule } from 'yargs';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { CPU_ENGINES, type CpuEngine } from '@hbft/common/guest/cpu.ts';
import { writeFileSync } from 'node:fs';
import { GuestImageError, UsageError } from '@hbft/common/errors.ts';
import { readImage, runElf, signatureText } from '@hbft/common/guest/run.ts';
import { formatMac } from '@hbft/common/net/mac.ts';
import { runOnTap } from '@hbft/common/net/tapRunner.ts';
import { guestArgsWithAddress, type GuestNetworkConfig } from '@hbft/common/net/guestTap.ts';
import { guestNetworkConfigFrom, withGuestNetworkFlags, type GuestNetworkArgs } from './daemonOptions.ts';
import { integerFlag, memoryBytesFrom, withMemory } from './options.ts';

/** Exit codes of `hbft run` beyond the guest's own: documented in --help. */
export const EXIT_GUEST_IDLE = 123;
export const EXIT_INSTRUCTION_LIMIT = 124;
export const EXIT_GUEST_FAULT = 125;
/** A failing test number above this is reported as this code (the message has the number). */
const EXIT_FAIL_MAX = 120;

interface RunArgs extends GuestNetworkArgs {
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
    withGuestNetworkFlags(withMemory(yargs))
      .positional('image', { type: 'string', demandOption: true, describe: 'ELF file or guest name' })
      .option('max-instructions', { type: 'number', describe: 'stop after this many instructions (exit 124)' })
      .option('args', { type: 'string', default: '', describe: 'argument string for the guest, e.g. "mb=32 rounds=4"' })
      .option('quiet', { type: 'boolean', default: false, describe: 'do not print the summary line' })
      .option('signature', {
        type: 'string',
        describe:
          "when the guest stops, write begin_signature..end_signature to FILE as Spike's +signature= does (one 32-bit hex word per line)",
      })

      .option('engine', {
        choices: CPU_ENGINES,
        default: 'blocks' as CpuEngine,
        describe: 'CPU engine: compiled basic blocks, or the reference interpreter (same results, slower)',
      })
      .epilogue(
        "Exit status: 0 when the guest passes (finisher PASS or tohost = 1); the guest's exit code or the failing " +
          `test number (capped at ${EXIT_FAIL_MAX}) when it fails; ${EXIT_GUEST_IDLE} when it waits for input that ` +
          `cannot come; ${EXIT_INSTRUCTION_LIMIT} when --max-instructions is reached; ${EXIT_GUEST_FAULT} on a fatal guest error.`,
      ),
  handler: async (argv) => {
    const network = guestNetworkConfigFrom(argv, argv.image);
    if (network !== undefined) {
      await runAttached(argv, network);
      return;
    }
    const maxInstructions =
      argv['max-instructions'] === undefined ? undefined : integerFlag(argv['max-instructions'], '--max-instructions', 1);
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
      let text: string;
      try {
        text = signatureText(result.machine, result.symbols, argv.image);
      } catch (error) {
        if (!(error instanceof GuestImageError)) throw error;
        throw new GuestImageError(`--signature: ${error.message}`);
      }
      try {
        writeFileSync(argv.signature, text);
      } catch (error) {
        throw new UsageError(
          `--signature: cannot write ${argv.signature}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        );
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

/** `hbft run IMAGE --tap NAME --guest-ip A/N`: the guest on a real L2 network until Ctrl-C (unprotected). */
async function runAttached(argv: RunArgs, network: GuestNetworkConfig): Promise<void> {
  const path = resolveGuestImage(argv.image);
  const image = readImage(path);
  const { mac, tapName, address: ip } = network;
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const result = await runOnTap({
      image,
      imageName: argv.image,
      tapName,
      mac,
      memoryBytes: memoryBytesFrom(argv.memory),
      args: guestArgsWithAddress(argv.args, network),
      onConsole: (text) => process.stdout.write(text),
      signal: controller.signal,
      onAttached: (tap) => {
        if (!argv.quiet) process.stderr.write(`hbft: ${argv.image} attached to TAP ${tap.name}, MAC ${formatMac(mac)}, address ${ip}\n`);
      },
    });
    if (!argv.quiet) {
      const { net, tap } = result;
      process.stderr.write(
        `hbft: stopped after ${result.instructions} instructions; frames in ${net.rxFrames}, out ${net.txFrames}; ` +
          `dropped: ${net.rxRunts} runts, ${net.rxOversize} oversize, ${net.rxQueueFull} queue full, ${tap.writeErrors} refused by the TAP\n`,
      );
    }
    const exit = result.exit;
    if (exit?.kind === 'exit') process.exitCode = Math.min(exit.code, EXIT_FAIL_MAX);
    else if (exit?.kind === 'fault') {
      process.stderr.write(`hbft: ${exit.message}\n`);
      process.exitCode = EXIT_GUEST_FAULT;
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
