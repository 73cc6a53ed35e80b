import { EventEmitter } from 'node:events';
import { median } from '../stats.ts';

/** The part of a sample that describes the node's state rather than the interval's figures. */
export type LiveStatus = Pick<
  LiveSample,
  'role' | 'generation' | 'mode' | 'epoch' | 'heldOutputBytes' | 'heldFrames' | 'peerConnected' | 'msSincePeerHeard'
>;

/** One point of the live view: a node's state over the last sample interval. */
export interface LiveSample {
  /** Milliseconds since the epoch (wall clock, for the charts' time axis). */
  t: number;
  role: 'primary' | 'backup';
  generation: number;
  /** primary: unprotected | syncing | protected; backup: waiting | syncing | protecting | promoted. */
  mode: string;
  epoch: number | null;
  epochsPerSecond: number;
  dirtyPagesPerEpoch: number;
  readFaultsPerEpoch: number;
  writeFaultsPerEpoch: number;
  /** Histase over the interval: true predictions / dirty pages, and / predictions. */
  recall: number | null;
  precision: number | null;
  superpageHitRatio: number | null;
  checkpointRawBytesPerEpoch: number;
  checkpointWireBytesPerEpoch: number;
  pauseUsPerEpoch: number;
  ackLatencyMs: number | null;
  outputLatencyMs: number | null;
  /** Bytes of the guest's frames held for output commit (primary/src/frameLedger.ts). */
  heldOutputBytes: number;
  /** The same frames, counted. */
  heldFrames: number;
  peerConnected: boolean;
  /** Time since the last frame from the peer. */
  msSincePeerHeard: number | null;
  guestMips: number;
}

export interface LiveEvent {
  t: number;
  kind: 'failover' | 'backup-connected' | 'backup-lost' | 'protected' | 'primary-lost' | 'deposed' | 'stall';
  message: string;
}

/** What one epoch adds to the live figures (recordEpoch). */
export interface EpochFigures {
  dirtyPages: number;
  readFaults: number;
  writeFaults: number;
  truePredictions: number;
  predicted: number;
  mapAccesses: number;
  mapHits: number;
  pauseNs: number;
  instructions: number;
}

/** Epoch figures accumulated between samples. */
interface Accumulator extends EpochFigures {
  epochs: number;
  rawBytes: number;
  wireBytes: number;
  ackLatencyMs: number[];
  outputLatencyMs: number[];
}

const HISTORY_SAMPLES = 1200;
const HISTORY_EVENTS = 200;

/** An epoch that moved nothing the figures count (a backup's applied epoch, say). */
export function emptyEpochFigures(): EpochFigures {
  return {
    dirtyPages: 0,
    readFaults: 0,
    writeFaults: 0,
    truePredictions: 0,
    predicted: 0,
    mapAccesses: 0,
    mapHits: 0,
    pauseNs: 0,
    instructions: 0,
  };
}

function emptyAccumulator(): Accumulator {
  return {
    ...emptyEpochFigures(),
    epochs: 0,
    rawBytes: 0,
    wireBytes: 0,
    ackLatencyMs: [],
    outputLatencyMs: [],
  };
}

export interface LiveFeedEvents {
  sample: [sample: LiveSample];
  event: [event: LiveEvent];
}

/**
 * What a node shows on its live dashboard: every sample interval the epoch figures are folded
 * into one LiveSample; events (failover, backup lost, …) are kept as they happen. The drivers feed
 * it; the dashboard server streams it. Bounded history for clients that join late.
 */
export class LiveFeed extends EventEmitter<LiveFeedEvents> {
  readonly samples: LiveSample[] = [];
  readonly events: LiveEvent[] = [];
  private accumulator = emptyAccumulator();
  private lastSampleMs = performance.now();
  private timer: NodeJS.Timeout | null = null;

  private status: () => LiveStatus;

  constructor(status: () => LiveStatus) {
    super();
    this.status = status;
  }

  /** Who describes the node's state from now on (a backup hands over to the primary it becomes). */
  setStatusSource(status: () => LiveStatus): void {
    this.status = status;
  }

  start(intervalMs = 250): void {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  recordEpoch(figures: EpochFigures): void {
    const a = this.accumulator;
    a.epochs++;
    a.dirtyPages += figures.dirtyPages;
    a.readFaults += figures.readFaults;
    a.writeFaults += figures.writeFaults;
    a.truePredictions += figures.truePredictions;
    a.predicted += figures.predicted;
    a.mapAccesses += figures.mapAccesses;
    a.mapHits += figures.mapHits;
    a.pauseNs += figures.pauseNs;
    a.instructions += figures.instructions;
  }

  recordCheckpointBytes(rawBytes: number, wireBytes: number): void {
    this.accumulator.rawBytes += rawBytes;
    this.accumulator.wireBytes += wireBytes;
  }

  recordAckLatency(ms: number): void {
    this.accumulator.ackLatencyMs.push(ms);
  }

  recordOutputLatency(ms: number): void {
    if (this.accumulator.outputLatencyMs.length < 10_000) this.accumulator.outputLatencyMs.push(ms);
  }

  event(kind: LiveEvent['kind'], message: string): void {
    const event = { t: Date.now(), kind, message };
    this.events.push(event);
    if (this.events.length > HISTORY_EVENTS) this.events.shift();
    this.emit('event', event);
  }

  private fold(elapsedMs: number) {
    const a = this.accumulator;
    const perEpoch = (value: number) => (a.epochs > 0 ? value / a.epochs : 0);
    return {
      epochsPerSecond: (a.epochs * 1000) / elapsedMs,
      dirtyPagesPerEpoch: perEpoch(a.dirtyPages),
      readFaultsPerEpoch: perEpoch(a.readFaults),
      writeFaultsPerEpoch: perEpoch(a.writeFaults),
      recall: a.dirtyPages > 0 && a.predicted > 0 ? a.truePredictions / a.dirtyPages : null,
      precision: a.predicted > 0 ? a.truePredictions / a.predicted : null,
      superpageHitRatio: a.mapAccesses > 0 ? a.mapHits / a.mapAccesses : null,
      checkpointRawBytesPerEpoch: perEpoch(a.rawBytes),
      checkpointWireBytesPerEpoch: perEpoch(a.wireBytes),
      pauseUsPerEpoch: perEpoch(a.pauseNs) / 1000,
      ackLatencyMs: a.ackLatencyMs.length > 0 ? median(a.ackLatencyMs) : null,
      outputLatencyMs: a.outputLatencyMs.length > 0 ? median(a.outputLatencyMs) : null,
      guestMips: a.instructions / elapsedMs / 1000,
    };
  }

  private sample(): void {
    const now = performance.now();
    const sample: LiveSample = { t: Date.now(), ...this.status(), ...this.fold(now - this.lastSampleMs) } as LiveSample;
    this.lastSampleMs = now;
    this.accumulator = emptyAccumulator();
    this.samples.push(sample);
    if (this.samples.length > HISTORY_SAMPLES) this.samples.shift();
    this.emit('sample', sample);
  }
}
