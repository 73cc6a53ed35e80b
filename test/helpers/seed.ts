export { SeededRandom } from '@hbft/common/random.ts';

/** The seed for a randomized test: HBFT_SEED when set (to replay a failure), else fresh. */
export function testSeed(): number {
  const fromEnv = Number(process.env.HBFT_SEED);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : (Math.random() * 2 ** 32) >>> 0 || 1;
}
