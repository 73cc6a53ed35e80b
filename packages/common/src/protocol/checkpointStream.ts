/**
 * A checkpoint (or full sync) on the bulk channel is BEGIN, PAGES × partCount, END. Each frame is
 * verified by its own CRC; the checkpoint as a whole is verified by chaining those CRCs: the END
 * frame's `checksum` is the CRC-32 of the BEGIN and PAGES frames' checksums (u32 LE each), in
 * order. That covers every byte of the checkpoint (header, meta and payload of every frame) and
 * its order, without a second pass over the page data. On a sealed connection (seal.ts) frames
 * carry checksum 0 and the chain proves nothing more: each frame's AEAD tag, under a nonce that is
 * its position in the stream, already covers its bytes and its order.
 *
 * `CheckpointChecksum` computes it (the sender adds each encoded frame's checksum, the receiver
 * each decoded one); `CheckpointStreamChecker` is the receiver's pure check that BEGIN / PAGES /
 * END add up, so the backup applies only a complete and verified checkpoint: it stages pages as
 * they arrive and applies them only after `check` returns `complete` for END.
 */
import { crc32 } from 'node:zlib';
import { assert } from '../errors.ts';
import { ProtocolErrorCode, protocolFailure, type ProtocolFailure } from './codes.ts';
import type { Frame } from './frame.ts';
import { FrameKind, frameKindName } from './kinds.ts';
import type { AckSubject } from './messages.ts';

export class CheckpointChecksum {
  private readonly word = Buffer.alloc(4);
  private crc = 0;

  /** Adds the next frame's CRC (EncodedFrame.checksum or Frame.checksum). */
  add(frameChecksum: number): void {
    this.word.writeUInt32LE(frameChecksum >>> 0, 0);
    this.crc = crc32(this.word, this.crc);
  }

  get value(): number {
    return this.crc;
  }

  reset(): void {
    this.crc = 0;
  }
}

export type CheckpointStreamStep =
  | { readonly status: 'in-progress' }
  | {
      readonly status: 'complete';
      readonly subject: AckSubject;
      readonly epoch: number;
      readonly pageCount: number;
      readonly partCount: number;
    }
  | { readonly status: 'invalid'; readonly failure: ProtocolFailure };

type CheckpointFrame = Frame<
  | typeof FrameKind.CHECKPOINT_BEGIN
  | typeof FrameKind.CHECKPOINT_PAGES
  | typeof FrameKind.CHECKPOINT_END
  | typeof FrameKind.FULL_SYNC_BEGIN
  | typeof FrameKind.FULL_SYNC_PAGES
  | typeof FrameKind.FULL_SYNC_END
>;

interface InProgress {
  subject: AckSubject;
  epoch: number;
  generation: number;
  pageCount: number;
  partCount: number;
  pagesSeen: number;
  partsSeen: number;
}

const inProgressStep: CheckpointStreamStep = { status: 'in-progress' };

export function isCheckpointStreamKind(kind: FrameKind): boolean {
  return kind >= FrameKind.FULL_SYNC_BEGIN && kind <= FrameKind.CHECKPOINT_END;
}

/** The receiver's check of one bulk connection's checkpoint frames. Holds counts, never pages. */
export class CheckpointStreamChecker {
  private current: InProgress | null = null;
  private readonly checksum = new CheckpointChecksum();

  /** True between a BEGIN and its END. */
  get inProgress(): boolean {
    return this.current !== null;
  }

  /**
   * Feeds the next checkpoint or full-sync frame. `invalid` leaves the checker idle, ready for a
   * new BEGIN; the caller decides whether the connection survives (it normally does not).
   */
  check(frame: Frame): CheckpointStreamStep {
    assert(isCheckpointStreamKind(frame.kind), 'only checkpoint and full-sync frames are checked');
    const checkpointFrame = frame as CheckpointFrame;
    const step = this.step(checkpointFrame);
    if (step.status !== 'in-progress') this.current = null;
    return step;
  }

  private step(frame: CheckpointFrame): CheckpointStreamStep {
    const name = frameKindName(frame.kind);
    const subject: AckSubject = frame.kind <= FrameKind.FULL_SYNC_END ? 'full-sync' : 'checkpoint';
    switch (frame.kind) {
      case FrameKind.FULL_SYNC_BEGIN:
      case FrameKind.CHECKPOINT_BEGIN: {
        if (this.current !== null) {
          return invalid(`${name} for epoch ${frame.epoch} while the ${this.current.subject} of epoch ${this.current.epoch} is unfinished`);
        }
        this.current = {
          subject,
          epoch: frame.epoch,
          generation: frame.generation,
          pageCount: frame.meta.pageCount,
          partCount: frame.meta.partCount,
          pagesSeen: 0,
          partsSeen: 0,
        };
        this.checksum.reset();
        this.checksum.add(frame.checksum);
        return inProgressStep;
      }
      case FrameKind.FULL_SYNC_PAGES:
      case FrameKind.CHECKPOINT_PAGES: {
        const current = this.current;
        const mismatch = this.mismatch(frame, subject, name);
        if (mismatch !== null) return mismatch;
        assert(current !== null, 'mismatch() refuses a frame without a BEGIN');
        if (frame.meta.part !== current.partsSeen) return invalid(`${name} is part ${frame.meta.part}, expected part ${current.partsSeen}`);
        if (current.partsSeen + 1 > current.partCount)
          return invalid(`${name} part ${frame.meta.part} is beyond the announced ${current.partCount} parts`);
        if (current.pagesSeen + frame.meta.pageCount > current.pageCount) {
          return invalid(
            `${name} brings the page count to ${current.pagesSeen + frame.meta.pageCount}, more than the announced ${current.pageCount}`,
          );
        }
        current.partsSeen++;
        current.pagesSeen += frame.meta.pageCount;
        this.checksum.add(frame.checksum);
        return inProgressStep;
      }
      case FrameKind.FULL_SYNC_END:
      case FrameKind.CHECKPOINT_END: {
        const current = this.current;
        const mismatch = this.mismatch(frame, subject, name);
        if (mismatch !== null) return mismatch;
        assert(current !== null, 'mismatch() refuses a frame without a BEGIN');
        const { pageCount, partCount, checksum } = frame.meta;
        if (pageCount !== current.pageCount || partCount !== current.partCount) {
          return invalid(
            `${name} totals ${pageCount} pages in ${partCount} parts, BEGIN announced ${current.pageCount} in ${current.partCount}`,
          );
        }
        if (current.pagesSeen !== pageCount || current.partsSeen !== partCount) {
          return invalid(`${name} after ${current.pagesSeen} pages in ${current.partsSeen} parts, expected ${pageCount} in ${partCount}`);
        }
        if (checksum !== this.checksum.value) {
          return invalid(
            `${name} checksum 0x${checksum.toString(16)} does not match the frames received (0x${this.checksum.value.toString(16)})`,
          );
        }
        return { status: 'complete', subject, epoch: current.epoch, pageCount, partCount };
      }
    }
  }

  private mismatch(frame: CheckpointFrame, subject: AckSubject, name: string): CheckpointStreamStep | null {
    const current = this.current;
    if (current === null) return invalid(`${name} for epoch ${frame.epoch} without a BEGIN`);
    if (current.subject !== subject) return invalid(`${name} inside a ${current.subject}`);
    if (frame.epoch !== current.epoch)
      return invalid(`${name} for epoch ${frame.epoch} inside the ${current.subject} of epoch ${current.epoch}`);
    if (frame.generation !== current.generation)
      return invalid(`${name} of generation ${frame.generation} inside generation ${current.generation}`);
    return null;
  }
}

function invalid(reason: string): CheckpointStreamStep {
  return { status: 'invalid', failure: protocolFailure(ProtocolErrorCode.CHECKPOINT_STREAM, reason) };
}
