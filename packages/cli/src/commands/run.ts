import type { CommandModule } from 'yargs';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { CPU_ENGINES, type CpuEngine } from '@hbft/common/guest/cpu.ts';
import { writeFileSync } from 'node:fs';
import { GuestImageError, UsageError } from '@hbft/common/errors.ts';
import { readImage, runElf, signatureText } from '@hbft/common/guest/run.ts';
import { parseIpv4 } from '@hbft/common/net/arp.ts';
import { formatMac, guestMac, runOnTap } from '@hbft/common/net/tapRunner.ts';
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
  tap?: string;
  ip?: string;
}

/** "A.B.C.D/N": the guest's address and prefix length, checked before anything starts. */
export function parseGuestAddress(text: string): string {
  const prefix = /\/(\d{1,2})$/.exec(text);
  if (parseIpv4(text) === undefined || !prefix || Number(prefix[1]) < 1 || Number(prefix[1]) > 32) {
    throw new UsageError(`--ip ${text}: expected the guest's IPv4 address and prefix length, like 10.0.0.2/24`);
  }
  return text;
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
        describe:
          "when the guest stops, write begin_signature..end_signature to FILE as Spike's +signature= does (one 32-bit hex word per line)",
      })
      .option('tap', {
        type: 'string',
        describe: "attach the guest's packet NIC to this TAP device (created if missing; needs CAP_NET_ADMIN) and serve until Ctrl-C",
      })
      .option('ip', {
        type: 'string',
        describe: "with --tap: the guest's IPv4 address and prefix, e.g. 10.0.0.2/24 (passed to the guest as ip=)",
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
    if (argv.tap !== undefined) {
      await runAttached(argv, argv.tap);
      return;
    }
    if (argv.ip !== undefined) throw new UsageError('--ip needs --tap: without a TAP device the guest has no network');
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

/** `hbft run IMAGE --tap NAME --ip A/N`: the guest on a real L2 network until Ctrl-C. */
async function runAttached(argv: RunArgs, tapName: string): Promise<void> {
  const ip = argv.ip === undefined ? undefined : parseGuestAddress(argv.ip);
  const path = resolveGuestImage(argv.image);
  const image = readImage(path);
  // The identity is the image and the address: the same guest gets the same MAC on every node.
  const mac = guestMac(`${argv.image}@${ip ?? ''}`);
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
      args: [argv.args, ip === undefined ? '' : `ip=${ip}`].filter((part) => part !== '').join(' '),
      onConsole: (text) => process.stdout.write(text),
      signal: controller.signal,
      onAttached: (tap) => {
        if (!argv.quiet)
          process.stderr.write(`hbft: ${argv.image} attached to TAP ${tap.name}, MAC ${formatMac(mac)}${ip ? `, address ${ip}` : ''}\n`);
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
