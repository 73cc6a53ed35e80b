import type { Server } from 'node:net';
import { HbftError } from '../errors.ts';
import { formatEndpoint } from '../units.ts';

/**
 * A server could not bind its address: the message names the setting that gave the address (and
 * what the server is for), the address, and why. Like SettingError, the front end says how the
 * setting was given (the CLI: `--http (status and dashboard): …`).
 */
export class ListenError extends HbftError {
  /** The system's error code (EADDRINUSE, EADDRNOTAVAIL, EACCES, …). */
  readonly errno: string;
  readonly setting: string;
  readonly problem: string;
  constructor(setting: string, where: string, errno: string, detail: string) {
    const problem = `cannot listen on ${where}: ${REASONS[errno] ?? detail}`;
    super('E_LISTEN', `${setting}: ${problem}`);
    this.errno = errno;
    this.setting = setting;
    this.problem = problem;
  }
}

const REASONS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (another hbft, or another program, listens there)',
  EADDRNOTAVAIL: "that address is not one of this host's",
  EACCES: 'permission denied (ports below 1024 need privileges)',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
};

/**
 * Binds `server` to host:port (port 0: one the kernel picks) and returns the bound port. Every
 * server of the project listens through here, so a taken or foreign address is one clear error
 * (ListenError), never an unhandled 'error' event.
 */
export async function listenOn(server: Server, host: string, port: number, setting: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      reject(new ListenError(setting, formatEndpoint({ host, port }), error.code ?? 'unknown', error.message));
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : port;
}
