import type { CommandModule } from 'yargs';

/**
 * The `hbft` commands, one module each. Add a command by adding its module here.
 */
export const commands: CommandModule<any, any>[] = [];
