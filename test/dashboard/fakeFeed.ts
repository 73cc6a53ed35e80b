import { LiveFeed, type LiveSample } from '@hbft/common/http/liveFeed.ts';

/** A plausible primary sample; `epoch` tells samples apart. */
export function fakeSample(epoch: number, overrides: Partial<LiveSample> = {}): LiveSample {
  return {
    t: 1_700_000_000_000 + epoch * 250,
    role: 'primary',
    generation: 1,
    mode: 'protected',
    epoch,
    epochsPerSecond: 50,
    dirtyPagesPerEpoch: 12.5,
    readFaultsPerEpoch: 3,
    writeFaultsPerEpoch: 9,
    recall: 0.93,
    precision: 0.81,
    superpageHitRatio: 0.97,
    checkpointRawBytesPerEpoch: 51_200,
    checkpointWireBytesPerEpoch: 20_480,
    pauseUsPerEpoch: 180,
    ackLatencyMs: 1.2,
    outputLatencyMs: 21.5,
    heldOutputBytes: 320,
    peerConnected: true,
    msSincePeerHeard: 4,
    guestMips: 150,
    heldFrames: 2,
    ...overrides,
  };
}

/**
 * A LiveFeed that is never started: the test decides when a sample or an event happens, exactly
 * as the real feed reports them (history kept, then emitted).
 */
export class FakeFeed extends LiveFeed {
  constructor() {
    super(() => {
      throw new Error('a fake feed is never sampled on a timer');
    });
  }

  push(sample: LiveSample): void {
    this.samples.push(sample);
    this.emit('sample', sample);
  }
}
