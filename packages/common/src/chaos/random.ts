import { SeededRandom } from '../random.ts';

/**
 * Random sources for toxics (jitter, toxicity, slicer sizes, losses): a function returning a
 * number in [0, 1). Drivers use `Math.random`; tests pass a seeded source so that a failing
 * schedule can be replayed from its seed.
 */
export type RandomSource = () => number;

/** A replayable source over hbft's one seeded generator (random.ts). */
export function seededRandom(seed: number): RandomSource {
  const random = new SeededRandom(seed);
  return () => random.next();
}
