// Proves that incremental checkpoints captured by the guest worker reproduce the primary exactly:
// a replica that starts from a copy of RAM taken while the guest runs (torn pages and all) and
// applies every checkpoint ends with the same state hash as the paused primary, for every
// tracking strategy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { GuestWorker } from '@hbft/common/hypervisor/guestWorker.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { Machine } from '@hbft/common/guest/machine.ts';
import { StagingRing } from '@hbft/common/checkpoint/staging.ts';
import type { CapturedCheckpoint } from '@hbft/common/checkpoint/capture.ts';
import { TRACKING_STRATEGIES } from '@hbft/common/tracking/tracker.ts';

const MEMORY_BYTES = 32 * 1024 * 1024;
const PAGE = 4096;

for (const tracking of TRACKING_STRATEGIES) {
  test(`${tracking}: a replica built from a running copy plus every checkpoint equals the primary`, async () => {
    const memory = new SharedArrayBuffer(MEMORY_BYTES);
    const stagingPages = MEMORY_BYTES / PAGE;
    const staging = new StagingRing(stagingPages, new SharedArrayBuffer(StagingRing.byteLengthFor(stagingPages)));
    const guest = await GuestWorker.start({
      memory,
      image: readFileSync(resolveGuestImage('jbb')),
      imageName: 'jbb.elf',
      args: 'mb=4 rounds=100000000',
      replication: {
        tracking,
        trackerOptions: {},
        mapper: { mapper: 'superpage', mapSlots: 4 },
        staging: staging.buffer,
        stagingPages,
        firstEpoch: 0,
      },
    });
    try {
      // Full synchronisation: copied while the guest runs; what changes meanwhile is dirty.
      const replica = new SharedArrayBuffer(MEMORY_BYTES);
      const replicaBytes = new Uint8Array(replica);
      replicaBytes.set(new Uint8Array(memory));
      let state: Uint8Array | null = null;
      let totalPages = 0;
      const apply = (checkpoint: CapturedCheckpoint) => {
        const region = staging.region(checkpoint.allocation);
        checkpoint.pages.forEach((page, i) => replicaBytes.set(region.subarray(i * PAGE, (i + 1) * PAGE), page * PAGE));
        staging.release(checkpoint.allocation);
        state = checkpoint.state;
        totalPages += checkpoint.pages.length;
      };
      for (let epoch = 0; epoch < 12; epoch++) {
        await new Promise((resolve) => setTimeout(resolve, 8));
        const captured = once(guest, 'captured');
        guest.requestCapture(epoch);
        const [checkpoint] = (await captured) as [CapturedCheckpoint];
        assert.equal(checkpoint.epoch, epoch);
        apply(checkpoint);
      }
      await guest.pause();
      const captured = once(guest, 'captured');
      guest.requestCapture(12);
      apply(((await captured) as [CapturedCheckpoint])[0]);
      assert.equal(guest.status, 'paused', 'a capture of a paused guest leaves it paused');
      assert.ok(totalPages > 0, 'the guest dirtied pages');

      const primaryHash = await guest.command<string>('stateHash');
      const machine = new Machine({ memoryBuffer: replica });
      machine.setState(state!);
      assert.equal(machine.stateHash(), primaryHash);
      assert.equal(staging.usedPages, 0, 'every staging allocation was released');
    } finally {
      await guest.stop();
    }
  });
}
