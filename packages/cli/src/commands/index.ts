import type { CommandModule } from 'yargs';
import { runCommand } from './run.ts';

/**
 * The `hbft` commands, one module each. Add a command by adding its module here.
 */
export const commands: CommandModule<any, any>[] = [runCommand];
