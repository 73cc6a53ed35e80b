/**
 * A small seeded PRNG (xorshift32). Everything random in hbft takes one of these (style.md: the
 * random source is passed in), so a failing test, a benchmark or a load run replays from its seed.
 */
export class SeededRandom {
  private state: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0 || 1;
    this.state = this.seed;
  }

  nextU32(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  /** A number in [0, 1). */
  next(): number {
    return this.nextU32() / 2 ** 32;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.nextU32() / 2 ** 32 < p;
  }

  /** One of `items`, each as likely. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('SeededRandom.pick: no items to pick from');
    return items[this.below(items.length)] as T;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.nextU32() & 0xff;
    return out;
  }
}
