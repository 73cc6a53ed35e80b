/**
 * A man in the middle of the replication link, for tests: a TCP proxy in front of the backup's
 * replication port that records every byte of both channels in both directions and, when told,
 * attacks one frame the way an on-path attacker would — with everything it can read on the wire
 * (frame headers, and the whole frame when it is not sealed, whose CRC-32 it then recomputes so
 * the forgery is well formed).
 *
 * Attacks:
 *   forgeAck — on the control channel, from the next message boundary on, withholds everything the
 *              backup sends to the primary and injects in its place one ACK for an epoch the
 *              backup never acknowledged (2^40), numbered as the next frame, with the flags the
 *              connection uses.
 *   alterPages — on the bulk channel, changes the next PAGES frame: where `needle` appears in it
 *              in plaintext, the needle's first byte; otherwise one bit of its last byte. A frame in
 *              plaintext gets its CRC-32 recomputed, and the checkpoint's END its chained checksum
 *              (checkpointStream.ts), so that the forgery is consistent all the way.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import msgpack from 'msgpack-lite';
import { encodeFrameUnchecked, encodeMeta, concatFrame, metaCodec } from '@hbft/common/protocol/frame.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import { controlPath, heartbeatPath } from '@hbft/common/transport/control.ts';

const headerBytes = 36;
const tagBytes = 16;
const sealedFlag = 1;
const offsets = { flags: 6, kind: 5, generation: 8, epoch: 12, sequence: 20, metaBytes: 24, payloadBytes: 28, checksum: 32 };

export type TapChannel = 'bulk' | 'control' | 'heartbeat' | 'unknown';

/** One proxied connection: what each side sent. */
export interface TappedConnection {
  channel: TapChannel;
  toBackup: Buffer[];
  toPrimary: Buffer[];
}

export interface TapEvents {
  /** The primary closed (FIN or reset) a control connection the tap had attacked. */
  attackedControlClosedByPrimary: [];
  /** An attack was carried out: what was done. */
  attacked: [description: string];
}

/** Bytes of a frame (header, and tag when sealed, and body) as declared by its header. */
function frameLength(header: Buffer): number {
  const sealed = (header.readUInt16LE(offsets.flags) & sealedFlag) !== 0;
  return headerBytes + (sealed ? tagBytes : 0) + header.readUInt32LE(offsets.metaBytes) + header.readUInt32LE(offsets.payloadBytes);
}

/** Recomputes an unsealed frame's CRC-32 in place (header with the field zeroed, then the body). */
function fixChecksum(frame: Buffer): void {
  frame.writeUInt32LE(0, offsets.checksum);
  frame.writeUInt32LE(crc32(frame), offsets.checksum);
}

const beginKinds = new Set<number>([FrameKind.CHECKPOINT_BEGIN, FrameKind.FULL_SYNC_BEGIN]);
const chainedKinds = new Set<number>([FrameKind.CHECKPOINT_PAGES, FrameKind.FULL_SYNC_PAGES]);
const endKinds = new Set<number>([FrameKind.CHECKPOINT_END, FrameKind.FULL_SYNC_END]);

/** The END frame `end` (unsealed) with its meta's chained checksum replaced, and its own CRC recomputed. */
function withChainChecksum(end: Buffer, chain: number): Buffer {
  const metaBytes = end.readUInt32LE(offsets.metaBytes);
  const meta = msgpack.decode(end.subarray(headerBytes, headerBytes + metaBytes), { codec: metaCodec }) as Record<string, unknown>;
  return concatFrame(
    encodeFrameUnchecked({
      kind: end.readUInt8(offsets.kind),
      flags: end.readUInt16LE(offsets.flags),
      generation: end.readUInt32LE(offsets.generation),
      epoch: end.readUInt32LE(offsets.epoch) + end.readUInt32LE(offsets.epoch + 4) * 2 ** 32,
      sequence: end.readUInt32LE(offsets.sequence),
      metaBytes: encodeMeta({ ...meta, checksum: chain }),
    }),
  );
}

export class ReplicationTap extends EventEmitter<TapEvents> {
  readonly connections: TappedConnection[] = [];
  private server!: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private pendingForgeAck = false;
  private pendingAlterPages: Buffer | null = null;

  private constructor(
    private readonly backupPort: number,
    private readonly backupHost: string,
  ) {
    super();
  }

  /** Listens on 127.0.0.1 (an ephemeral port) and forwards to the backup's replication port. */
  static async start(backupPort: number, backupHost = '127.0.0.1'): Promise<ReplicationTap> {
    const tap = new ReplicationTap(backupPort, backupHost);
    tap.server = net.createServer((socket) => tap.onConnection(socket));
    await new Promise<void>((resolve) => tap.server.listen(0, '127.0.0.1', resolve));
    return tap;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Everything recorded on one channel, both directions. */
  captured(channel: TapChannel): Buffer {
    return Buffer.concat(this.connections.filter((c) => c.channel === channel).flatMap((c) => [...c.toBackup, ...c.toPrimary]));
  }

  forgeAck(): void {
    this.pendingForgeAck = true;
  }

  alterPages(needle: Buffer): void {
    this.pendingAlterPages = needle;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(fromPrimary: net.Socket): void {
    const toBackup = net.connect({ host: this.backupHost, port: this.backupPort });
    const record: TappedConnection = { channel: 'unknown', toBackup: [], toPrimary: [] };
    this.connections.push(record);
    for (const socket of [fromPrimary, toBackup]) {
      this.sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        this.sockets.delete(socket);
        fromPrimary.destroy();
        toBackup.destroy();
      });
    }
    let attacked = false;
    let upstream = Buffer.alloc(0); // primary → backup, not yet forwarded (bulk frames are forwarded whole)
    let downstream = Buffer.alloc(0); // backup → primary on control, not yet forwarded
    let upgraded = false;
    let withholding = false;
    let lastHeader: Buffer | null = null;
    /** The chained checksum of the checkpoint passing through, and whether the tap changed one of its frames. */
    const word = Buffer.alloc(4);
    let chain = 0;
    let chainAltered = false;

    fromPrimary.on('data', (chunk: Buffer) => {
      record.toBackup.push(Buffer.from(chunk));
      if (record.channel === 'unknown') {
        // The control and heartbeat channels are both WebSocket upgrades: told apart by their path,
        // so that an attack on the control channel never lands on the heartbeat thread's connection.
        const first = chunk.toString('latin1', 0, Math.min(chunk.length, 64));
        record.channel = first.startsWith('HBFT')
          ? 'bulk'
          : first.startsWith(`GET ${controlPath} `)
            ? 'control'
            : first.startsWith(`GET ${heartbeatPath} `)
              ? 'heartbeat'
              : 'unknown';
      }
      if (record.channel !== 'bulk') {
        toBackup.write(chunk);
        return;
      }
      upstream = Buffer.concat([upstream, chunk]);
      while (upstream.length >= headerBytes) {
        const length = frameLength(upstream);
        if (upstream.length < length) break;
        let frame: Buffer = Buffer.from(upstream.subarray(0, length));
        upstream = upstream.subarray(length);
        const kind = frame.readUInt8(offsets.kind);
        const sealed = (frame.readUInt16LE(offsets.flags) & sealedFlag) !== 0;
        if (this.pendingAlterPages !== null && kind === FrameKind.CHECKPOINT_PAGES) {
          const at = frame.indexOf(this.pendingAlterPages, headerBytes);
          if (at >= 0) frame[at] = frame[at]! === 0x41 ? 0x42 : 0x41;
          else frame[frame.length - 1]! ^= 0x01;
          if (!sealed) fixChecksum(frame);
          chainAltered = !sealed;
          this.pendingAlterPages = null;
          this.emit(
            'attacked',
            `altered PAGES epoch ${frame.readUInt32LE(offsets.epoch)} ${at >= 0 ? 'at the value' : 'in its last byte'}${sealed ? '' : ', fixed its CRC and the END checksum'}`,
          );
        }
        if (beginKinds.has(kind) || chainedKinds.has(kind)) {
          word.writeUInt32LE(frame.readUInt32LE(offsets.checksum));
          chain = crc32(word, beginKinds.has(kind) ? 0 : chain);
        } else if (endKinds.has(kind) && chainAltered) {
          frame = withChainChecksum(frame, chain);
          chainAltered = false;
        }
        toBackup.write(frame);
      }
    });
    fromPrimary.on('end', () => {
      if (attacked) this.emit('attackedControlClosedByPrimary');
      toBackup.end();
    });
    fromPrimary.on('close', () => {
      if (attacked) this.emit('attackedControlClosedByPrimary');
    });

    toBackup.on('data', (chunk: Buffer) => {
      record.toPrimary.push(Buffer.from(chunk));
      if (record.channel !== 'control') {
        fromPrimary.write(chunk);
        return;
      }
      downstream = Buffer.concat([downstream, chunk]);
      if (!upgraded) {
        const end = downstream.indexOf('\r\n\r\n');
        if (end < 0) return;
        fromPrimary.write(downstream.subarray(0, end + 4));
        downstream = downstream.subarray(end + 4);
        upgraded = true;
      }
      // WebSocket frames from the server (RFC 6455 §5.2, unmasked): forwarded whole.
      for (;;) {
        if (withholding) return;
        if (this.pendingForgeAck && lastHeader !== null) {
          this.pendingForgeAck = false;
          withholding = true;
          attacked = true;
          fromPrimary.write(this.forgedAck(lastHeader));
          this.emit(
            'attacked',
            `injected an ACK for epoch 2^40 as frame #${lastHeader.readUInt32LE(offsets.sequence) + 1} and withheld the backup's frames`,
          );
          return;
        }
        if (downstream.length < 2) return;
        const length7 = downstream[1]! & 0x7f;
        const lengthBytes = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
        if (downstream.length < 2 + lengthBytes) return;
        const payloadLength =
          length7 === 126 ? downstream.readUInt16BE(2) : length7 === 127 ? Number(downstream.readBigUInt64BE(2)) : length7;
        const total = 2 + lengthBytes + payloadLength;
        if (downstream.length < total) return;
        const payload = downstream.subarray(2 + lengthBytes, total);
        if ((downstream[0]! & 0x0f) === 0x2 && payload.length >= headerBytes) lastHeader = Buffer.from(payload.subarray(0, headerBytes));
        fromPrimary.write(downstream.subarray(0, total));
        downstream = downstream.subarray(total);
      }
    });
    toBackup.on('end', () => fromPrimary.end());
  }

  /** An ACK for epoch 2^40 following `last` on the same connection, as one unmasked binary ws message. */
  private forgedAck(last: Buffer): Buffer {
    const flags = last.readUInt16LE(offsets.flags);
    const plain = concatFrame(
      encodeFrameUnchecked({
        kind: FrameKind.ACK,
        flags,
        generation: last.readUInt32LE(offsets.generation),
        epoch: 2 ** 40,
        sequence: (last.readUInt32LE(offsets.sequence) + 1) >>> 0,
        metaBytes: encodeMeta({ subject: 'checkpoint' }),
      }),
    );
    // Sealed: the attacker cannot compute a tag, so it sends a random one (and the meta as it is).
    const frame =
      (flags & sealedFlag) === 0
        ? plain
        : Buffer.concat([plain.subarray(0, headerBytes), randomBytes(tagBytes), plain.subarray(headerBytes)]);
    if ((flags & sealedFlag) !== 0) frame.writeUInt32LE(0, offsets.checksum);
    const head = frame.length < 126 ? Buffer.from([0x82, frame.length]) : Buffer.from([0x82, 126, frame.length >> 8, frame.length & 0xff]);
    return Buffer.concat([head, frame]);
  }
}
