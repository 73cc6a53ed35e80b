import { PAGE_BYTES } from '@hbft/common/guest/addressMap.ts';
import { PAGE_RECORD_BYTES_MAX, PageEncoder, PageRecordWriter } from '@hbft/common/checkpoint/pageCodec.ts';
import { CheckpointChecksum } from '@hbft/common/protocol/checkpointStream.ts';
import type { EncodedFrame, FrameEncoder } from '@hbft/common/protocol/frame.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
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

/** A sink for frames: returns false when its buffer is above the high-water mark. */
export interface FrameSink {
  write(frame: EncodedFrame): boolean;
  drained(): Promise<void>;
}

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
  frames: FrameEncoder,
  pageEncoder: PageEncoder,
  sink: FrameSink,
  onProgress?: (pagesSent: number) => void,
): Promise<{ rawBytes: number; wireBytes: number }> {
  const partCount = Math.ceil(spec.pages.length / PAGES_PER_PART);
  const checksum = new CheckpointChecksum();
  const header = { generation: spec.generation, epoch: spec.epoch };
  let wireBytes = 0;
  const write = async (frame: EncodedFrame) => {
    wireBytes += frame.bytes;
    if (!sink.write(frame)) await sink.drained();
  };
  const begin =
    spec.kind === 'checkpoint'
      ? frames.encode(FrameKind.CHECKPOINT_BEGIN, { pageCount: spec.pages.length, partCount }, { ...header, payload: spec.state })
      : frames.encode(FrameKind.FULL_SYNC_BEGIN, { memoryBytes: spec.memoryBytes, pageCount: spec.pages.length, partCount }, header);
  checksum.add(begin.checksum);
  await write(begin);
  const rawBefore = pageEncoder.counts.rawBytes;
  for (let part = 0; part < partCount; part++) {
    const first = part * PAGES_PER_PART;
    const end = Math.min(spec.pages.length, first + PAGES_PER_PART);
    // A fresh buffer per part: the socket may still hold the previous one.
    const writer = new PageRecordWriter((end - first) * PAGE_RECORD_BYTES_MAX);
    for (let i = first; i < end; i++) pageEncoder.encode(spec.pages[i]!, spec.source.words, spec.source.wordIndex(i), writer);
    const kind = spec.kind === 'checkpoint' ? FrameKind.CHECKPOINT_PAGES : FrameKind.FULL_SYNC_PAGES;
    const frame = frames.encode(kind, { part, pageCount: end - first }, { ...header, payload: writer.written() });
    checksum.add(frame.checksum);
    await write(frame);
    onProgress?.(end);
  }
  const endKind = spec.kind === 'checkpoint' ? FrameKind.CHECKPOINT_END : FrameKind.FULL_SYNC_END;
  await write(frames.encode(endKind, { pageCount: spec.pages.length, partCount, checksum: checksum.value }, header));
  return { rawBytes: pageEncoder.counts.rawBytes - rawBefore, wireBytes };
}

/** Page numbers of the non-zero pages of `ram`, yielding to the event loop every 16 MiB. */
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
    if ((page & 4095) === 4095) await new Promise((resolve) => setImmediate(resolve));
  }
  return found.slice(0, count);
}
