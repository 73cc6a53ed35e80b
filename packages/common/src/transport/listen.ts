import type { Server } from 'node:net';
import { HbftError } from '../errors.ts';
import { formatEndpoint } from '../units.ts';

/** A server could not bind its address: the message names the address, what it was for and why. */
export class ListenError extends HbftError {
  /** The system's error code (EADDRINUSE, EADDRNOTAVAIL, EACCES, …). */
  readonly errno: string;
  constructor(purpose: string, where: string, errno: string, detail: string) {
    super('E_LISTEN', `${purpose}: cannot listen on ${where}: ${REASONS[errno] ?? detail}`);
    this.errno = errno;
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
export async function listenOn(server: Server, host: string, port: number, purpose: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      reject(new ListenError(purpose, formatEndpoint({ host, port }), error.code ?? 'unknown', error.message));
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
