import type { Socket } from 'node:net';
import type { Logger } from '@hbft/common/log.ts';
import {
  clientInputQueuedBytesMaxPerConnection,
  clientOutputStalledMsMax,
  clientOutputUnsentBytesMaxPerConnection,
  clientInputQueuedBytesMaxTotal,
  clientOutputTakenReportBytes,
} from '@hbft/common/limits.ts';

/** What flow control needs of the guest's NIC (GuestWorker implements it). */
export interface FlowNic {
  deliver(tag: string, bytes: Uint8Array): void;
  outputTaken(tag: string, offset: number): void;
}

interface FlowConnection {
  tag: string;
  /** Input handed to the guest: the connection's input stream offset. */
  inputHanded: number;
  /** Input the guest's NIC has put into its receive ring, as of the last capture. */
  inputInRing: number;
  /** Read from the socket, not yet handed over (no room in the NIC's queue): at most a chunk or so. */
  pending: Uint8Array[];
  socket: Socket | null;
  paused: boolean;
  onHanded: (bytes: number) => void;
  /** Output stream offset the client has taken, and the last one the NIC was told. */
  outputTaken: number;
  outputTakenReported: number;
  /** Since when output has waited in the socket's buffer without the kernel taking any; null: none waits. */
  outputStalledSinceMs: number | null;
}

/**
 * Flow control of every client connection, plain or session (limits.ts has the bounds and
 * why). Input: bytes go to the guest while the NIC's queue has room for them, per connection and
 * in total; what does not fit stays here and the socket is paused, so the client's own TCP window
 * pushes back. The NIC reports how far it has filled its ring at each capture, and paused
 * connections continue then. Output: what each client has taken is reported to the NIC, which
 * holds back the input of a connection (or of all) with too much output outstanding.
 *
 * Nothing read from a socket is dropped while the connection lives: it is handed over later, in
 * order. A session's socket that goes away drops what it had pending; the client resends from the
 * session's input offset, which counts only what was handed over.
 */
export class ClientFlow {
  private readonly connections = new Map<string, FlowConnection>();

  constructor(
    private readonly nic: FlowNic,
    private readonly logger: Logger | null = null,
    private readonly nowMs: () => number = () => performance.now(),
    private readonly limits = {
      inputQueuedBytesMaxPerConnection: clientInputQueuedBytesMaxPerConnection,
      inputQueuedBytesMaxTotal: clientInputQueuedBytesMaxTotal,
      outputTakenReportBytes: clientOutputTakenReportBytes,
    },
  ) {}

  /**
   * Starts tracking a connection; `at` gives its stream positions when it already exists in the
   * guest (a session resumed on a promoted node).
   */
  add(
    tag: string,
    socket: Socket | null,
    onHanded: (bytes: number) => void = () => {},
    at = { inputHanded: 0, inputInRing: 0, outputTaken: 0 },
  ): void {
    this.connections.set(tag, {
      tag,
      inputHanded: at.inputHanded,
      inputInRing: at.inputInRing,
      pending: [],
      socket,
      paused: false,
      onHanded,
      outputTaken: at.outputTaken,
      outputTakenReported: at.outputTaken,
      outputStalledSinceMs: null,
    });
  }

  /** The connection is gone: forget it and whatever it had pending. */
  remove(tag: string): void {
    this.connections.delete(tag);
  }

  has(tag: string): boolean {
    return this.connections.has(tag);
  }

  /** A session's client (re)connected or left: input pending from the old socket is dropped. */
  setSocket(tag: string, socket: Socket | null): void {
    const connection = this.connections.get(tag);
    if (connection === undefined) return;
    connection.pending = [];
    connection.paused = false;
    connection.socket = socket;
    connection.outputStalledSinceMs = null;
  }

  /**
   * Writes released output, which ends at stream offset `endOffset`, to the connection's socket;
   * once the kernel has it, the client has taken it. A client that leaves more than the limit
   * unread in the socket's buffer is disconnected at once (its input was held back long before).
   */
  write(tag: string, chunks: Uint8Array[], endOffset: number): void {
    const connection = this.connections.get(tag);
    const socket = connection?.socket;
    if (connection === undefined || !socket) return;
    for (const [i, chunk] of chunks.entries()) {
      const last = i === chunks.length - 1;
      socket.write(
        chunk,
        last
          ? (error) => {
              if (error || connection.socket !== socket) return;
              connection.outputStalledSinceMs = socket.writableLength > 0 ? this.nowMs() : null;
              this.onOutputTaken(tag, endOffset);
            }
          : undefined,
      );
    }
    if (socket.writableLength > 0) connection.outputStalledSinceMs ??= this.nowMs();
    if (socket.writableLength > clientOutputUnsentBytesMaxPerConnection)
      this.disconnect(connection, socket, `${socket.writableLength} bytes of replies unread`);
  }

  /** Disconnects clients that have taken none of their waiting output for too long. */
  closeStalled(nowMs: number): void {
    for (const connection of this.connections.values()) {
      const since = connection.outputStalledSinceMs;
      if (since === null || connection.socket === null || nowMs - since <= clientOutputStalledMsMax) continue;
      this.disconnect(connection, connection.socket, `no reply taken for ${Math.round(nowMs - since)} ms`);
    }
  }

  private disconnect(connection: FlowConnection, socket: Socket, reason: string): void {
    connection.outputStalledSinceMs = null;
    this.logger?.warn({ tag: connection.tag, reason }, 'client disconnected: it does not read its replies');
    socket.destroy();
  }

  /** Input read from the connection's socket. */
  push(tag: string, bytes: Uint8Array): void {
    const connection = this.connections.get(tag);
    if (connection === undefined || bytes.length === 0) return;
    connection.pending.push(bytes);
    this.feed(connection);
  }

  /** Input not yet handed to the guest, summed over connections (held here, not in the NIC). */
  get pendingBytes(): number {
    let sum = 0;
    for (const connection of this.connections.values()) for (const bytes of connection.pending) sum += bytes.length;
    return sum;
  }

  /** Input handed over and not yet in the guest's ring: an upper bound on the NIC's queue. */
  get queuedBytes(): number {
    let sum = 0;
    for (const connection of this.connections.values()) sum += connection.inputHanded - connection.inputInRing;
    return sum;
  }

  /** At a capture: how far the NIC has filled the guest's ring for each connection. */
  onCaptured(connections: { tag: string; rxDelivered: number }[]): void {
    for (const { tag, rxDelivered } of connections) {
      const connection = this.connections.get(tag);
      if (connection !== undefined)
        connection.inputInRing = Math.min(connection.inputHanded, Math.max(connection.inputInRing, rxDelivered));
    }
    for (const connection of this.connections.values()) if (connection.pending.length > 0) this.feed(connection);
  }

  /** The client has taken the connection's output up to stream offset `offset`. */
  onOutputTaken(tag: string, offset: number): void {
    const connection = this.connections.get(tag);
    if (connection === undefined || offset <= connection.outputTaken) return;
    connection.outputTaken = offset;
    if (offset - connection.outputTakenReported >= this.limits.outputTakenReportBytes) {
      connection.outputTakenReported = offset;
      this.nic.outputTaken(tag, offset);
    }
  }

  private feed(connection: FlowConnection): void {
    const tag = connection.tag;
    let room = Math.min(
      this.limits.inputQueuedBytesMaxPerConnection - (connection.inputHanded - connection.inputInRing),
      this.limits.inputQueuedBytesMaxTotal - this.queuedBytes,
    );
    for (let first = connection.pending[0]; first !== undefined && room > 0; first = connection.pending[0]) {
      const piece = first.length <= room ? first : first.subarray(0, room);
      if (piece === first) connection.pending.shift();
      else connection.pending[0] = first.subarray(room);
      this.nic.deliver(tag, piece);
      connection.inputHanded += piece.length;
      room -= piece.length;
      connection.onHanded(piece.length);
    }
    const blocked = connection.pending.length > 0;
    if (blocked !== connection.paused) {
      connection.paused = blocked;
      if (blocked) connection.socket?.pause();
      else connection.socket?.resume();
    }
  }
}
