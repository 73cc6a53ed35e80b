import type { Socket } from 'node:net';
import type { Logger } from '@hbft/common/log.ts';
import {
  SESSION_OUTPUT_BYTES_MAX,
  SESSION_RECORD_CLIENT_ACK,
  SESSION_RECORD_OUTPUT,
  SessionOutputWindows,
  type SessionRecord,
} from '@hbft/common/checkpoint/sessionOutput.ts';
import {
  encodeAckFrame,
  encodeDataFrames,
  encodePongFrame,
  encodeServerHandshake,
  HandshakeStatus,
  SessionDecoder,
} from '@hbft/common/session/protocol.ts';
import type { GuestNic } from './guestNic.ts';
import { sessionCarryOverBytesMax, sessionIdleMsDefault } from '@hbft/common/limits.ts';
import type { ClientFlow } from './clientFlow.ts';

/** Session connections are NIC connections tagged `s:<session id in hex>`. */
export const SESSION_TAG_PREFIX = 's:';

interface Session {
  tag: string;
  /** Input bytes handed to the guest (the client resends from here after a reconnect). */
  inputAccepted: number;
  /** Input bytes the committed state has taken; acknowledged to the client. */
  inputCommitted: number;
  inputCommittedSent: number;
  /** End of the output produced by the guest (released or still held). */
  outputProduced: number;
  /** End of the output released to the client (committed). */
  outputReleased: number;
  socket: Socket | null;
  idleSinceMs: number;
  /** The guest closed the connection: end the socket once released output is written. */
  closing: boolean;
}

/** A session's input position at a captured epoch, waiting for that epoch to commit. */
interface PendingCommit {
  epoch: number;
  offsets: Map<string, number>;
}

/**
 * The server side of client sessions that survive a failover (session/protocol.ts). Exactly-once
 * comes from stream offsets: the client resends input from `inputAccepted`; the server sends
 * committed output from the client's `outputReceived`, out of a window of released output that
 * the client has not acknowledged. Each checkpoint carries its epoch's session output and the
 * clients' acknowledgements (CHECKPOINT_OUTPUT), so a backup that takes over has the same window.
 */
export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  readonly windows: SessionOutputWindows;
  /** Output produced per epoch, for the checkpoint of that epoch. */
  private readonly epochOutput = new Map<number, SessionRecord[]>();
  /** Client acknowledgements not yet sent in a checkpoint. */
  private pendingClientAcks = new Map<string, number>();
  /**
   * Session output that no backup has received (epochs discarded while none was connected, and
   * the windows at the start of a full synchronisation): it rides in the next checkpoint sent.
   */
  private carryOver: SessionRecord[] = [];
  private carryOverBytes = 0;
  /**
   * Session output sent in a checkpoint that is not yet committed, by epoch. A checkpoint written
   * to a connection that then breaks may never have been applied, and its output may not have been
   * released yet (so it is in no window either): a full synchronisation sends it again.
   */
  private readonly uncommittedOutput = new Map<number, SessionRecord[]>();
  private readonly pendingCommits: PendingCommit[] = [];

  constructor(
    private readonly nic: GuestNic,
    private readonly flow: ClientFlow,
    private readonly logger: Logger,
    private readonly generation: () => number,
    windows?: SessionOutputWindows,
    private readonly idleMs = sessionIdleMsDefault,
  ) {
    this.windows = windows ?? new SessionOutputWindows(SESSION_OUTPUT_BYTES_MAX);
  }

  static isSessionTag(tag: string): boolean {
    return tag.startsWith(SESSION_TAG_PREFIX);
  }

  get count(): number {
    return this.sessions.size;
  }

  /**
   * After a takeover: the sessions the guest had open, with their committed positions (from the
   * NIC's device state) and the output windows the checkpoints carried.
   */
  adopt(connections: { tag: string; rxAccepted: number; rxDelivered: number; txProduced: number }[], nowMs: number): void {
    for (const connection of connections) {
      if (!SessionManager.isSessionTag(connection.tag)) continue;
      const session: Session = {
        tag: connection.tag,
        inputAccepted: connection.rxAccepted,
        inputCommitted: connection.rxAccepted,
        inputCommittedSent: -1,
        outputProduced: connection.txProduced,
        outputReleased: connection.txProduced,
        socket: null,
        idleSinceMs: nowMs,
        closing: false,
      };
      this.sessions.set(connection.tag, session);
      this.flow.add(connection.tag, null, (bytes) => (session.inputAccepted += bytes), {
        inputHanded: connection.rxAccepted,
        inputInRing: connection.rxDelivered,
        outputTaken: connection.txProduced,
      });
    }
    for (const tag of this.windows.tags()) if (!this.sessions.has(tag)) this.windows.delete(tag);
  }

  /** A client opened a session connection (its first byte was 0x00). */
  accept(socket: Socket, firstChunk: Buffer, nowMs: () => number): void {
    const decoder = new SessionDecoder('server');
    let session: Session | null = null;
    const onBytes = (chunk: Buffer) => {
      const { messages, error } = decoder.push(chunk);
      for (const message of messages) {
        if (message.kind === 'clientHandshake') {
          session = this.attach(socket, message.sessionId, message.outputReceived, nowMs());
          if (session === null) return;
        } else if (session !== null && message.kind === 'data') {
          // Handed to the guest as the NIC has room (session.inputAccepted counts it then); until
          // then this socket is not read.
          if (session.closing || session.socket !== socket) continue;
          this.flow.push(session.tag, message.payload);
        } else if (session !== null && message.kind === 'ack') {
          this.onClientAck(session, message.offset);
        } else if (message.kind === 'ping') {
          socket.write(encodePongFrame());
        }
      }
      if (error) {
        this.logger.debug({ code: error.code, reason: error.reason }, 'session connection closed: malformed input');
        if (session === null)
          socket.end(
            encodeServerHandshake({ status: HandshakeStatus.badRequest, generation: this.generation(), inputAccepted: 0, outputStart: 0 }),
          );
        else socket.destroy();
      }
    };
    socket.on('data', onBytes);
    socket.on('close', () => {
      if (session !== null && session.socket === socket) {
        session.socket = null;
        session.idleSinceMs = nowMs();
        this.flow.setSocket(session.tag, null);
      }
    });
    onBytes(firstChunk);
  }

  private attach(socket: Socket, sessionId: Uint8Array, outputReceived: number, nowMs: number): Session | null {
    const tag = `${SESSION_TAG_PREFIX}${Buffer.from(sessionId).toString('hex')}`;
    const reply = (status: (typeof HandshakeStatus)[keyof typeof HandshakeStatus], inputAccepted = 0, outputStart = 0) =>
      encodeServerHandshake({ status, generation: this.generation(), inputAccepted, outputStart });
    let session = this.sessions.get(tag);
    if (session === undefined) {
      if (outputReceived !== 0) {
        socket.end(reply(HandshakeStatus.gap));
        return null;
      }
      session = {
        tag,
        inputAccepted: 0,
        inputCommitted: 0,
        inputCommittedSent: 0,
        outputProduced: 0,
        outputReleased: 0,
        socket: null,
        idleSinceMs: nowMs,
        closing: false,
      };
      this.sessions.set(tag, session);
      this.nic.open(tag);
      const created = session;
      this.flow.add(tag, null, (bytes) => (created.inputAccepted += bytes));
    }
    const window = this.windows.range(tag) ?? { start: session.outputReleased, end: session.outputReleased };
    if (outputReceived < window.start || outputReceived > session.outputReleased) {
      this.logger.warn(
        { tag, outputReceived, windowStart: window.start, released: session.outputReleased },
        'session cannot resume: output gap',
      );
      socket.end(reply(HandshakeStatus.gap));
      return null;
    }
    if (session.socket !== null && session.socket !== socket) session.socket.destroy();
    session.socket = socket;
    // Input the old socket had pending is dropped here: the client resends from inputAccepted.
    this.flow.setSocket(tag, socket);
    socket.write(reply(HandshakeStatus.ok, session.inputAccepted, outputReceived));
    const missed = this.windows.from(tag, outputReceived);
    if (missed !== null && missed.length > 0) this.writeOutput(session, missed);
    this.onClientAck(session, outputReceived);
    socket.write(encodeAckFrame(session.inputCommitted));
    session.inputCommittedSent = session.inputCommitted;
    if (session.closing) socket.end();
    return session;
  }

  /** Output up to session.outputReleased, to the session's socket (the flow's socket for it). */
  private writeOutput(session: Session, bytes: Uint8Array): void {
    this.flow.write(session.tag, encodeDataFrames(bytes), session.outputReleased);
  }

  private onClientAck(session: Session, offset: number): void {
    if (offset > session.outputReleased) return;
    this.flow.onOutputTaken(session.tag, offset);
    this.windows.trim(session.tag, offset);
    this.pendingClientAcks.set(session.tag, Math.max(offset, this.pendingClientAcks.get(session.tag) ?? 0));
  }

  /** Output the guest produced in `epoch` (before it is committed): it will ride in that checkpoint. */
  onProduced(tag: string, bytes: Uint8Array, epoch: number): void {
    const session = this.sessions.get(tag);
    if (session === undefined) return;
    let records = this.epochOutput.get(epoch);
    if (!records) {
      records = [];
      this.epochOutput.set(epoch, records);
    }
    records.push({ type: SESSION_RECORD_OUTPUT, tag, offset: session.outputProduced, data: bytes });
    session.outputProduced += bytes.length;
  }

  /** The session records for checkpoint `epoch`: carried-over output, its own, then client acknowledgements. */
  takeCheckpointRecords(epoch: number): SessionRecord[] {
    const records = [...this.carryOver, ...(this.epochOutput.get(epoch) ?? [])];
    this.carryOver = [];
    this.carryOverBytes = 0;
    this.epochOutput.delete(epoch);
    if (records.length > 0) this.uncommittedOutput.set(epoch, records.slice());
    for (const [tag, offset] of this.pendingClientAcks)
      records.push({ type: SESSION_RECORD_CLIENT_ACK, tag, offset, data: new Uint8Array(0) });
    this.pendingClientAcks = new Map();
    return records;
  }

  /** Records of checkpoint `epoch`, which did not reach the backup: they go with the next one. */
  giveBack(epoch: number, records: SessionRecord[]): void {
    this.uncommittedOutput.delete(epoch);
    this.carry([...records.filter((record) => record.type === SESSION_RECORD_OUTPUT), ...this.carryOver.splice(0)]);
  }

  /** An epoch that no backup will get: its session output waits for the next checkpoint sent. */
  discardEpoch(epoch: number): void {
    const records = this.epochOutput.get(epoch);
    this.epochOutput.delete(epoch);
    if (records) this.carry(records);
  }

  /** A backup is being synchronised from scratch: it must learn the released, unacknowledged output too. */
  onFullSync(): void {
    const windowRecords: SessionRecord[] = [];
    for (const session of this.sessions.values()) {
      const range = this.windows.range(session.tag);
      const bytes = range === null ? null : this.windows.from(session.tag, range.start);
      if (range !== null && bytes !== null && bytes.length > 0) {
        windowRecords.push({ type: SESSION_RECORD_OUTPUT, tag: session.tag, offset: range.start, data: bytes });
      }
    }
    // Output sent in checkpoints that were never committed: the backup they went to may not have
    // applied them, and what was not released yet is in no window.
    const uncommitted = [...this.uncommittedOutput.entries()]
      .sort(([a], [b]) => a - b)
      .flatMap(([, records]) => records.filter((record) => record.type === SESSION_RECORD_OUTPUT));
    this.uncommittedOutput.clear();
    const carried = this.carryOver;
    this.carryOver = [];
    this.carryOverBytes = 0;
    // Each session's records in the order of their offsets (the replica appends them in order;
    // overlaps are skipped there), windows' first: their offsets precede anything produced later.
    const byTag = new Map<string, SessionRecord[]>();
    for (const record of [...windowRecords, ...uncommitted, ...carried]) {
      let records = byTag.get(record.tag);
      if (records === undefined) {
        records = [];
        byTag.set(record.tag, records);
      }
      records.push(record);
    }
    // Array sort is stable: at equal offsets the window's record stays first.
    this.carry([...byTag.values()].flatMap((records) => records.sort((a, b) => a.offset - b.offset)));
  }

  private carry(records: SessionRecord[]): void {
    for (const record of records) {
      this.carryOver.push(record);
      this.carryOverBytes += record.data.length;
    }
    if (this.carryOverBytes > sessionCarryOverBytesMax) {
      this.logger.warn(
        { bytes: this.carryOverBytes },
        'too much session output waiting for a backup: dropped (a resuming client may see a gap)',
      );
      this.carryOver = [];
      this.carryOverBytes = 0;
    }
  }

  /** Input positions at a capture; they become committed when that epoch does. */
  onCaptured(epoch: number, connections: { tag: string; rxAccepted: number }[]): void {
    const offsets = new Map<string, number>();
    for (const connection of connections) if (this.sessions.has(connection.tag)) offsets.set(connection.tag, connection.rxAccepted);
    this.pendingCommits.push({ epoch, offsets });
  }

  /** Committed output for a session: keep it for a resumption, send it if connected. */
  onReleased(tag: string, bytes: Uint8Array): void {
    const session = this.sessions.get(tag);
    if (session === undefined) return;
    this.windows.append(tag, session.outputReleased, bytes);
    session.outputReleased += bytes.length;
    if (session.socket !== null) this.writeOutput(session, bytes);
  }

  /** Epochs through `throughEpoch` are committed: acknowledge the input they took. */
  onCommitted(throughEpoch: number): void {
    for (const epoch of this.uncommittedOutput.keys()) if (epoch <= throughEpoch) this.uncommittedOutput.delete(epoch);
    for (let commit = this.pendingCommits[0]; commit !== undefined && commit.epoch <= throughEpoch; commit = this.pendingCommits[0]) {
      this.pendingCommits.shift();
      for (const [tag, offset] of commit.offsets) {
        const session = this.sessions.get(tag);
        if (session) session.inputCommitted = Math.max(session.inputCommitted, offset);
      }
    }
    for (const session of this.sessions.values()) {
      if (session.socket !== null && session.inputCommitted !== session.inputCommittedSent) {
        session.socket.write(encodeAckFrame(session.inputCommitted));
        session.inputCommittedSent = session.inputCommitted;
      }
    }
  }

  /** The guest closed the session's connection (committed): the session ends. */
  onGuestClose(tag: string): void {
    const session = this.sessions.get(tag);
    if (session === undefined) return;
    session.closing = true;
    session.socket?.end();
    this.sessions.delete(tag);
    this.windows.delete(tag);
  }

  /** Closes sessions whose client has been away too long. */
  expire(nowMs: number): void {
    for (const session of this.sessions.values()) {
      if (session.socket === null && nowMs - session.idleSinceMs > this.idleMs) {
        this.logger.info({ tag: session.tag }, 'session expired: its client did not come back');
        this.sessions.delete(session.tag);
        this.windows.delete(session.tag);
        this.flow.setSocket(session.tag, null);
        this.nic.hangUp(session.tag);
      }
    }
  }

  closeAll(): void {
    for (const session of this.sessions.values()) session.socket?.destroy();
  }
}
