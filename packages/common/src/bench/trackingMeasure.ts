import { parentPort, workerData } from 'node:worker_threads';
import { assert } from '../errors.ts';
import type { GuestName } from '../guest/images.ts';
import { CheckpointCapturer } from '../checkpoint/capture.ts';
import { StagingRing } from '../checkpoint/staging.ts';
import { createMapper, type MapperName } from '../tracking/mapper.ts';
import { createTracker, trackMemory } from '../tracking/strategies.ts';
import type { DirtyTracker, EpochTrackingStats, TrackingStrategyName } from '../tracking/tracker.ts';
import { startTsWorker } from '../tsWorker.ts';
import type { Machine } from '../guest/machine.ts';
import { createBenchMachine } from './guestLoad.ts';

/**
 * One measurement of the tracking benchmark, run on a fresh worker thread. A fresh thread is a
 * fresh V8 isolate: the guest's compiled blocks are compiled and optimised anew for this
 * configuration alone, so no run inherits another's JIT state (in one isolate, a run after a
 * snapshot restore measured 20–45 % slower than the first, with the same code and strategy).
 */
export interface MeasureJob {
  workload: GuestName;
  memoryBytes: number;
  /** The warmed-up snapshot every measurement starts from. */
  ram: SharedArrayBuffer;
  state: Uint8Array;
  strategy: TrackingStrategyName;
  exitCostNs: number;
  epochMs: number;
  /**
   * Instructions measured: every configuration runs the same stretch of the workload, whose speed
   * varies by ±20 % from one 300 ms window to the next as it moves between phases.
   */
  instructions: number;
  /** Gives up on a configuration that takes longer than this. */
  timeLimitMs: number;
  /** Instructions run with the strategy attached before measuring. */
  trackerWarmupInstructions: number;
  /** With a mapper: the full pause, dirty pages copied into a staging ring. */
  copy?: { mapper: MapperName; mapCostNs: number; mapSlots: number };
}

export interface EpochTotals {
  readFaults: number;
  writeFaults: number;
  exits: number;
  pagesPredicted: number;
  truePredictions: number;
  falseDirty: number;
  dirtyPages: number;
  entriesScanned: number;
  scanNs: number;
  pauseNs: number;
  copyNs: number;
  mapAccesses: number;
  mapHits: number;
  mapOperations: number;
}

export interface Measurement {
  instructions: number;
  wallMs: number;
  epochs: number;
  totals: EpochTotals;
}

function emptyTotals(): EpochTotals {
  return {
    readFaults: 0,
    writeFaults: 0,
    exits: 0,
    pagesPredicted: 0,
    truePredictions: 0,
    falseDirty: 0,
    dirtyPages: 0,
    entriesScanned: 0,
    scanNs: 0,
    pauseNs: 0,
    copyNs: 0,
    mapAccesses: 0,
    mapHits: 0,
    mapOperations: 0,
  };
}

function addTracking(totals: EpochTotals, stats: EpochTrackingStats): void {
  totals.readFaults += stats.readFaults;
  totals.writeFaults += stats.writeFaults;
  totals.exits += stats.exits;
  totals.pagesPredicted += stats.pagesPredicted;
  totals.truePredictions += stats.truePredictions;
  totals.falseDirty += stats.falseDirty;
  totals.dirtyPages += stats.dirtyPages;
  totals.entriesScanned += stats.entriesScanned;
  totals.scanNs += stats.scanNs;
}

const SLICE_INSTRUCTIONS = 20_000;

/** Runs a benchmark guest in slices until `instructions` have retired (or it halts). */
export function runGuest(machine: Machine, instructions: number): void {
  while (machine.cpu.instret < instructions && !machine.halted) machine.run(SLICE_INSTRUCTIONS);
}

/** Runs epochs until the instruction count or the deadline is reached; returns how many. */
function runEpochs(
  machine: Machine,
  tracker: DirtyTracker,
  capturer: CheckpointCapturer | null,
  staging: StagingRing | null,
  tracked: boolean,
  epochMs: number,
  untilInstret: number,
  deadline: number,
  totals: EpochTotals,
): number {
  let epochs = 0;
  let now = performance.now();
  while (now < deadline && machine.cpu.instret < untilInstret && !machine.halted) {
    const epochEnd = Math.min(deadline, now + epochMs);
    while (now < epochEnd && machine.cpu.instret < untilInstret && !machine.halted) {
      machine.run(SLICE_INSTRUCTIONS);
      now = performance.now();
    }
    if (tracked) {
      const pauseStart = performance.now();
      if (capturer) {
        assert(staging !== null, 'a capturer comes with its staging ring');
        const checkpoint = capturer.capture(epochs);
        staging.release(checkpoint.allocation);
        addTracking(totals, checkpoint.tracking);
        totals.copyNs += checkpoint.copyNs;
        totals.mapAccesses += checkpoint.mapping.accesses;
        totals.mapHits += checkpoint.mapping.hits;
        totals.mapOperations += checkpoint.mapping.mapOperations;
      } else {
        addTracking(totals, tracker.endEpoch().stats);
        tracker.beginEpoch();
      }
      totals.pauseNs += (performance.now() - pauseStart) * 1e6;
    }
    epochs++;
    now = performance.now();
  }
  return epochs;
}

/** The measurement itself (on the worker thread). */
export function measure(job: MeasureJob): Measurement {
  const machine = createBenchMachine(job.workload, job.memoryBytes);
  machine.memory.u8.set(new Uint8Array(job.ram));
  machine.setState(job.state);
  const tracker = trackMemory(machine.memory, createTracker(job.strategy, { exitCostNs: job.exitCostNs }));
  const tracked = job.strategy !== 'none';
  const staging = job.copy && tracked ? new StagingRing(machine.memory.pageCount) : null;
  const capturer =
    job.copy && staging ? new CheckpointCapturer(machine, tracker, createMapper(job.copy, machine.memory.table.l1Count), staging) : null;
  // Bounded in time as well, in case a workload goes idle before the count is reached.
  runEpochs(
    machine,
    tracker,
    capturer,
    staging,
    tracked,
    job.epochMs,
    machine.cpu.instret + job.trackerWarmupInstructions,
    performance.now() + 20_000,
    emptyTotals(),
  );
  const totals = emptyTotals();
  const startInstret = machine.cpu.instret;
  const start = performance.now();
  const epochs = runEpochs(
    machine,
    tracker,
    capturer,
    staging,
    tracked,
    job.epochMs,
    startInstret + job.instructions,
    start + job.timeLimitMs,
    totals,
  );
  const wallMs = performance.now() - start;
  if (machine.halted) throw new Error(`${job.workload} ended during measurement: ${JSON.stringify(machine.exit)}`);
  if (machine.cpu.instret - startInstret < job.instructions) {
    throw new Error(
      `${job.workload}/${job.strategy}: ran only ${machine.cpu.instret - startInstret} of ${job.instructions} instructions in ${job.timeLimitMs} ms`,
    );
  }
  return { instructions: machine.cpu.instret - startInstret, wallMs, epochs, totals };
}

type WorkerReply = { ok: true; measurement: Measurement } | { ok: false; message: string };

/** Runs `job` on a fresh worker thread and resolves with its measurement. */
export async function measureOnFreshThread(job: MeasureJob): Promise<Measurement> {
  const worker = startTsWorker(import.meta.url, { workerData: job });
  return new Promise((resolve, reject) => {
    let settled = false;
    worker.once('message', (reply: WorkerReply) => {
      settled = true;
      if (reply.ok) resolve(reply.measurement);
      else reject(new Error(`${job.workload}/${job.strategy}: ${reply.message}`));
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`${job.workload}/${job.strategy}: the measuring thread exited with code ${code} before reporting`));
    });
  });
}

if (parentPort !== null && (workerData as MeasureJob | undefined)?.ram instanceof SharedArrayBuffer) {
  let reply: WorkerReply;
  try {
    reply = { ok: true, measurement: measure(workerData as MeasureJob) };
  } catch (error) {
    reply = { ok: false, message: (error as Error).message };
  }
  parentPort.postMessage(reply);
}
