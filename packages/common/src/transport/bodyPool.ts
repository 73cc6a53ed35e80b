/**
 * Buffers for the bodies of large received frames (PAGES parts of up to 4 MiB), recycled by the
 * receiver once it no longer holds the frames assembled in them: a fresh buffer per part kept V8
 * in back-to-back full GCs on the backup, as it did on the primary before its RecordBuffers. Pass
 * `allocate` as the connection's `allocateBody`. Only free buffers are referenced here, so a body
 * that is never given back (a connection cut mid-frame) is ordinary garbage.
 */
export class BodyPool {
  private readonly free: Buffer[] = [];
  /** The pool's own buffers, so that `release` ignores anything else. */
  private readonly own = new WeakSet<ArrayBufferLike>();

  /**
   * `capacityBytes`: the largest body a frame can have; `minimumBytes`: smaller bodies are
   * ordinary allocations; `keep`: free buffers kept at most.
   */
  constructor(
    private readonly capacityBytes: number,
    private readonly minimumBytes = 256 * 1024,
    private readonly keep = 8,
  ) {}

  readonly allocate = (bytes: number): Buffer => {
    if (bytes < this.minimumBytes || bytes > this.capacityBytes) return Buffer.allocUnsafe(bytes);
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    const buffer = Buffer.allocUnsafeSlow(this.capacityBytes);
    this.own.add(buffer.buffer);
    return buffer;
  };

  /** The receiver holds nothing in `memory` any more (a frame's payload.buffer); other memory is ignored. */
  release(memory: ArrayBufferLike): void {
    if (!this.own.has(memory) || this.free.length >= this.keep) return;
    if (this.free.some((buffer) => buffer.buffer === memory)) return;
    this.free.push(Buffer.from(memory as ArrayBuffer, 0, this.capacityBytes));
  }

  get freeCount(): number {
    return this.free.length;
  }
}
