import type { CommandModule } from 'yargs';
import { runCommand } from './run.ts';
import { loadCommand } from './load.ts';
import { chaosCommand } from './chaos.ts';
import { demoCommand } from './demo.ts';
import { primaryCommand } from './primary.ts';
import { backupCommand } from './backup.ts';
import { benchCommand } from './bench.ts';
import { topologyCommand } from './topology.ts';

/**
 * The `hbft` commands, one module each. Add a command by adding its module here.
 */
export const commands: CommandModule<any, any>[] = [
  demoCommand,
  runCommand,
  primaryCommand,
  backupCommand,
  loadCommand,
  chaosCommand,
  benchCommand,
  topologyCommand,
];
