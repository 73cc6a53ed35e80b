import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { PAGE_BYTES } from '@hbft/common/guest/addressMap.ts';
import { PAGE_RECORD_BYTES_MAX, type PageEncoder, PageRecordWriter } from '@hbft/common/checkpoint/pageCodec.ts';
import { CheckpointChecksum } from '@hbft/common/protocol/checkpointStream.ts';
import type { FrameFields } from '@hbft/common/protocol/frame.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import type { MetaOf } from '@hbft/common/protocol/messages.ts';
import type { SendResult } from '@hbft/common/transport/connection.ts';
import { framePayloadBytesMax } from '@hbft/common/protocol/limits.ts';

const PAGE_WORDS = PAGE_BYTES / 4;

/**
 * Pages per PAGES frame: as many as fit when every one is raw, so the number of parts is known
 * before encoding (BEGIN announces it) and each part is encoded just before it is sent.
 */
export const PAGES_PER_PART = Math.floor(framePayloadBytesMax / PAGE_RECORD_BYTES_MAX);

/** Where a page's bytes are: a word array and the index of the page's first word in it. */
export interface PageSource {
  words: Int32Array;
  wordIndex(i: number): number;
}

/** Where frames go: a bulk connection (transport/), or a collector in tests. */
export interface FrameSender {
  send<K extends FrameKind>(kind: K, meta: MetaOf<K>, fields?: FrameFields): SendResult;
  drained(): Promise<void>;
}

/** Bytes of one PAGES part's records when every page is raw: the size of every pooled buffer. */
const PART_BYTES_MAX = PAGES_PER_PART * PAGE_RECORD_BYTES_MAX;
/** Idle buffers kept for reuse (the bulk high-water mark keeps about this many in flight). */
const IDLE_BUFFERS_MAX = 8;

/**
 * Record buffers for one connection's PAGES frames, reused once the transport has written the frame
 * that carried them. A fresh 4 MiB buffer per part meant ~200 MB/s of new ArrayBuffers under cfp,
 * and V8 answered the external-memory pressure with a full GC every ~150 ms (8-10 ms pauses on the
 * thread that releases output). Positions are the connection's, so a new connection needs new
 * buffers.
 */
export class RecordBuffers {
  private readonly lent: Array<{ writer: PageRecordWriter; endsAt: number }> = [];
  private readonly idle: PageRecordWriter[] = [];

  /** `handedOver`: the connection's bytesHandedOver. */
  constructor(private readonly handedOver: () => number) {}

  /** An empty buffer for a whole part. */
  take(): PageRecordWriter {
    const handedOver = this.handedOver();
    for (let oldest = this.lent[0]; oldest !== undefined && oldest.endsAt <= handedOver; oldest = this.lent[0]) {
      this.lent.shift();
      if (this.idle.length < IDLE_BUFFERS_MAX) this.idle.push(oldest.writer);
    }
    const writer = this.idle.pop() ?? new PageRecordWriter(PART_BYTES_MAX);
    writer.reset();
    return writer;
  }

  /** The writer's records went out in a frame ending at `endsAt`; it is free once that is written. */
  lend(writer: PageRecordWriter, endsAt: number): void {
    this.lent.push({ writer, endsAt });
  }
}

/** The connection closed while a stream was being sent. */
export class StreamAbortedError extends Error {}

export interface StreamSpec {
  kind: 'checkpoint' | 'full-sync';
  epoch: number;
  generation: number;
  /** Page numbers to send, ascending. */
  pages: Uint32Array;
  source: PageSource;
  /** CPU and device state (checkpoints only). */
  state?: Uint8Array;
  memoryBytes: number;
}

/**
 * Sends one checkpoint or full synchronisation as BEGIN, PAGES × n, END, encoding each part just
 * before it goes and waiting for the sink to drain between parts, so memory stays bounded by a
 * couple of frames. Returns the bytes of page data raw and as sent.
 */
export async function sendPageStream(
  spec: StreamSpec,
  sender: FrameSender,
  pageEncoder: PageEncoder,
  options: { onProgress?: (pagesSent: number) => void; buffers?: RecordBuffers } = {},
): Promise<{ rawBytes: number; wireBytes: number }> {
  const { onProgress, buffers } = options;
  const partCount = Math.ceil(spec.pages.length / PAGES_PER_PART);
  const checksum = new CheckpointChecksum();
  const header = { generation: spec.generation, epoch: spec.epoch };
  let wireBytes = 0;
  const aborted = () => new StreamAbortedError(`the connection closed during ${spec.kind} ${spec.epoch}`);
  // drained() rejects when the connection closes meanwhile (ProtocolError GOODBYE when this node
  // dropped it): that is the peer going away, an ordinary end of the stream, never a crash.
  const drained = () => sender.drained().catch(() => Promise.reject(aborted()));
  const sent = async (result: SendResult, bytes: number) => {
    if (!result.sent) throw aborted();
    checksum.add(result.checksum);
    wireBytes += bytes;
    if (result.backpressure) await drained();
  };
  const state = spec.state ?? new Uint8Array(0);
  await sent(
    spec.kind === 'checkpoint'
      ? sender.send(FrameKind.CHECKPOINT_BEGIN, { pageCount: spec.pages.length, partCount }, { ...header, payload: state })
      : sender.send(FrameKind.FULL_SYNC_BEGIN, { memoryBytes: spec.memoryBytes, pageCount: spec.pages.length, partCount }, header),
    state.length,
  );
  const rawBefore = pageEncoder.counts.rawBytes;
  for (let part = 0; part < partCount; part++) {
    const first = part * PAGES_PER_PART;
    const end = Math.min(spec.pages.length, first + PAGES_PER_PART);
    // Never a buffer the socket may still hold: a pooled one already written, or a fresh one.
    const writer = buffers?.take() ?? new PageRecordWriter((end - first) * PAGE_RECORD_BYTES_MAX);
    let i = first;
    for (const page of spec.pages.subarray(first, end)) pageEncoder.encode(page, spec.source.words, spec.source.wordIndex(i++), writer);
    const kind = spec.kind === 'checkpoint' ? FrameKind.CHECKPOINT_PAGES : FrameKind.FULL_SYNC_PAGES;
    const payload = writer.written();
    const result = sender.send(kind, { part, pageCount: end - first }, { ...header, payload });
    buffers?.lend(writer, result.endsAt);
    await sent(result, payload.length);
    onProgress?.(end);
    // Without backpressure every part up to the write buffer's 16 MiB would be encoded in one turn
    // of the event loop (hundreds of ms for a full sync): heartbeats, acks and the silence check
    // wait behind it. One part per turn.
    if (part + 1 < partCount && !result.backpressure) await yieldToEventLoop();
  }
  const totals = { pageCount: spec.pages.length, partCount, checksum: checksum.value };
  const end =
    spec.kind === 'checkpoint'
      ? sender.send(FrameKind.CHECKPOINT_END, totals, header)
      : sender.send(FrameKind.FULL_SYNC_END, totals, header);
  if (!end.sent) throw aborted();
  if (end.backpressure) await drained();
  // Frame headers are small; the figure that matters is page data as sent against raw.
  return { rawBytes: pageEncoder.counts.rawBytes - rawBefore, wireBytes };
}

/** Page numbers of the non-zero pages of `ram`, yielding to the event loop every 4 MiB. */
export async function nonZeroPages(ram: Int32Array): Promise<Uint32Array> {
  const pageCount = ram.length / PAGE_WORDS;
  const found = new Uint32Array(pageCount);
  let count = 0;
  for (let page = 0; page < pageCount; page++) {
    const base = page * PAGE_WORDS;
    for (let i = 0; i < PAGE_WORDS; i++) {
      if (ram[base + i] !== 0) {
        found[count++] = page;
        break;
      }
    }
    if ((page & 1023) === 1023) await new Promise((resolve) => setImmediate(resolve));
  }
  return found.slice(0, count);
}
