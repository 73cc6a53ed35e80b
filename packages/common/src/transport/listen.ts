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
  /** `reason`: what the system's error means here, in words. */
  constructor(setting: string, where: string, errno: string, reason: string) {
    const problem = `cannot listen on ${where}: ${reason}`;
    super('E_LISTEN', `${setting}: ${problem}`);
    this.errno = errno;
    this.setting = setting;
    this.problem = problem;
  }
}

/** What a failed bind of a TCP address means, by the system's error code. */
const TCP_REASONS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (another hbft, or another program, listens there)',
  EADDRNOTAVAIL: "that address is not one of this host's",
  EACCES: 'permission denied (ports below 1024 need privileges)',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
};

/**
 * Binds `server` to host:port (port 0: one the kernel picks) and returns the bound port. Every
 * server of the project listens through here or listenOnPath, so a taken or foreign address is one
 * clear error (ListenError), never an unhandled 'error' event.
 */
export async function listenOn(server: Server, host: string, port: number, setting: string): Promise<number> {
  await bind(
    server,
    (done) => server.listen(port, host, done),
    formatEndpoint({ host, port }),
    setting,
    (error) => TCP_REASONS[error.code ?? 'unknown'] ?? error.message,
  );
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : port;
}

/** listenOn for a Unix socket at `path`. */
export function listenOnPath(server: Server, path: string, setting: string): Promise<void> {
  return bind(
    server,
    (done) => server.listen(path, done),
    `the Unix socket ${path}`,
    setting,
    (error) => error.code ?? error.message,
  );
}

function bind(
  server: Server,
  listen: (done: () => void) => void,
  where: string,
  setting: string,
  reason: (error: NodeJS.ErrnoException) => string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      reject(new ListenError(setting, where, error.code ?? 'unknown', reason(error)));
    };
    server.once('error', failed);
    listen(() => {
      server.off('error', failed);
      resolve();
    });
  });
}
