import { connect, createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { listenOn, listenOnPath } from '@hbft/common/transport/listen.ts';

/*
 * How a client on this machine reaches a guest that lives on a LAN inside network namespaces. A
 * Unix socket is a file, so it crosses network namespaces: a forwarder inside the client's
 * namespace listens on one and connects each connection to the guest's TCP address; the host side
 * listens on 127.0.0.1:PORT and pipes each connection to that socket. Neither is a node, so
 * `kill -9` of the primary ends no client connection: the TCP connection to the guest lives in the
 * guest (and in the backup's replica of it), and only its packets change host.
 *
 * Each accepted connection is one connection on the other side, bytes copied both ways with the
 * streams' own back-pressure, half-closes passed on, and either side's end or error ending both.
 */

/** Connections one forwarder carries at once; more are refused (closed at once), never queued. */
export const FORWARD_CONNECTIONS_MAX = 4096;

export interface ForwardCounters {
  accepted: number;
  refused: number;
  /** Connections whose other side could not be reached. */
  failed: number;
  open: number;
}

/** Joins two sockets both ways until either ends or fails. */
function splice(a: Socket, b: Socket, onClose: () => void): void {
  a.pipe(b);
  b.pipe(a);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    a.destroy();
    b.destroy();
    onClose();
  };
  // A half-close goes on (pipe ends the other side's writing); the pair ends when both are done.
  a.on('close', close);
  b.on('close', close);
  a.on('error', close);
  b.on('error', close);
}

/**
 * A server that forwards each connection to whatever `connectOther()` opens. Returns the server
 * (not yet listening) and its counters.
 */
export function forwardingServer(connectOther: () => Socket): { server: Server; counters: ForwardCounters; close: () => void } {
  const counters: ForwardCounters = { accepted: 0, refused: 0, failed: 0, open: 0 };
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    if (counters.open >= FORWARD_CONNECTIONS_MAX) {
      counters.refused++;
      client.destroy();
      return;
    }
    counters.accepted++;
    counters.open++;
    const other = connectOther();
    sockets.add(client);
    sockets.add(other);
    let connected = false;
    other.once('connect', () => {
      connected = true;
      client.resume();
    });
    other.once('error', () => {
      if (!connected) counters.failed++;
    });
    splice(client, other, () => {
      counters.open--;
      sockets.delete(client);
      sockets.delete(other);
    });
  });
  // server.close() alone waits for every connection to end, and an idle redis-cli never ends its
  // own: stopping a forwarder ends its connections.
  const close = () => {
    server.close();
    for (const socket of sockets) socket.destroy();
  };
  return { server, counters, close };
}

/** Inside the client's namespace: the Unix socket `path`, each connection to `host:port`; `setting` names the path's origin. */
export async function forwardUnixToTcp(path: string, host: string, port: number, setting: string) {
  rmSync(path, { force: true });
  const forward = forwardingServer(() => connect({ host, port, allowHalfOpen: true }));
  await listenOnPath(forward.server, path, setting);
  return forward;
}

/** On the host: `host:port`, each connection to the Unix socket `path`; `setting` names the address's origin. */
export async function forwardTcpToUnix(host: string, port: number, path: string, setting: string) {
  const forward = forwardingServer(() => connect({ path, allowHalfOpen: true }));
  const boundPort = await listenOn(forward.server, host, port, setting);
  return { ...forward, port: boundPort };
}
