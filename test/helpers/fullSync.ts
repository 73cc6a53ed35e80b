import { PageEncoder } from '@hbft/common/checkpoint/pageCodec.ts';
import { type FrameSender, nonZeroPages, sendPageStream } from '@hbft/primary/checkpointFrames.ts';

/**
 * Sends what a primary of generation 1 sends first to a new backup: a full synchronisation at epoch
 * 0 of every non-zero page of `words` (the guest's RAM), on `bulk`.
 */
export async function sendFullSync(bulk: FrameSender, words: Int32Array): Promise<void> {
  const pages = await nonZeroPages(words);
  await sendPageStream(
    {
      kind: 'full-sync',
      epoch: 0,
      generation: 1,
      pages,
      memoryBytes: words.byteLength,
      source: { words, wordIndex: (i) => pages[i]! * 1024 },
    },
    bulk,
    new PageEncoder(null),
  );
}
