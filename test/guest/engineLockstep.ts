// Runs the same guest on both CPU engines in lockstep and asserts they never differ (used by the
// engine differential, fuzz and self-modifying-code tests).
import assert from 'node:assert/strict';
import msgpack from 'msgpack-lite';
import { Machine, type MachineOptions } from '@hbft/common/guest/machine.ts';
import { createTracker, trackMemory } from '@hbft/common/tracking/strategies.ts';
import type { DirtyTracker, EpochResult, TrackingStrategyName } from '@hbft/common/tracking/tracker.ts';

export interface EnginePair {
  interpreter: Machine;
  blocks: Machine;
  /** Console text of each, in order. */
  console: { interpreter: string; blocks: string };
}

/** Two machines, one per engine, prepared the same way by `setup`. */
export function createEnginePair(options: MachineOptions, setup: (machine: Machine) => void): EnginePair {
  const console = { interpreter: '', blocks: '' };
  const make = (engine: 'interpreter' | 'blocks'): Machine => {
    const machine = new Machine({ ...options, engine });
    machine.uart.onOutput = (byte) => {
      console[engine] += String.fromCharCode(byte);
    };
    setup(machine);
    return machine;
  };
  return { interpreter: make('interpreter'), blocks: make('blocks'), console };
}

export interface LockstepOptions {
  /** Stop after this many instructions (or when the guest halts or idles). */
  instructionsMax: number;
  /** Size of the next run() call; called once per slice, the same slices go to both machines. */
  nextSlice: () => number;
  /** Attach this strategy to both and compare every epoch's result. */
  tracking?: TrackingStrategyName;
  /** Instructions per tracking epoch. */
  epochInstructions?: number;
  /** Compare RAM every this many slices (always at the end). */
  compareRamEverySlices?: number;
  /** Compare stateHash() at the end (default); else RAM and state directly, which is faster. */
  hashAtEnd?: boolean;
  /** Says what is being run, in every failure message. */
  context: string;
}

export interface LockstepResult {
  executed: number;
  epochs: number;
  faults: number;
  ramCompared: number;
}

/** The parts of an epoch's result that must be identical (timings excluded). */
function epochSummary(result: EpochResult): object {
  const s = result.stats;
  return {
    dirtyPages: [...result.dirtyPages],
    falseDirtyPages: [...result.falseDirtyPages],
    readFaults: s.readFaults,
    writeFaults: s.writeFaults,
    logFullExits: s.logFullExits,
    exits: s.exits,
    pagesPredicted: s.pagesPredicted,
    truePredictions: s.truePredictions,
    falseDirty: s.falseDirty,
    entriesScanned: s.entriesScanned,
    dirtyPageCount: s.dirtyPages,
  };
}

/**
 * Runs both machines slice by slice, asserting after every slice that they executed the same
 * number of instructions, stopped for the same reason and hold the same CPU and device state; at
 * epoch ends that the tracker results are identical; and periodically that RAM is identical.
 */
export function runLockstep(pair: EnginePair, options: LockstepOptions): LockstepResult {
  const machines = [pair.interpreter, pair.blocks] as const;
  let trackers: DirtyTracker[] = [];
  if (options.tracking !== undefined) {
    trackers = machines.map(() => createTracker(options.tracking!));
    machines.forEach((machine, i) => {
      trackMemory(machine.memory, trackers[i]!);
    });
  }
  const epochInstructions = options.epochInstructions ?? Infinity;
  const compareEvery = options.compareRamEverySlices ?? Infinity;
  let executed = 0;
  let inEpoch = 0;
  let epochs = 0;
  let faults = 0;
  let slices = 0;
  let ramCompared = 0;
  const compareRam = (where: string): void => {
    ramCompared++;
    const differs = Buffer.compare(pair.blocks.memory.u8, pair.interpreter.memory.u8) !== 0;
    assert.ok(!differs, `${options.context}: RAM differs ${where}`);
  };
  const endEpoch = (): void => {
    const [reference, compiled] = trackers.map((tracker) => epochSummary(tracker.endEpoch())) as [Record<string, number>, object];
    assert.deepEqual(compiled, reference, `${options.context}: tracking differs in epoch ${epochs} (after ${executed} instructions)`);
    faults += reference.readFaults! + reference.writeFaults!;
    for (const tracker of trackers) tracker.beginEpoch();
    epochs++;
    inEpoch = 0;
  };
  while (executed < options.instructionsMax && !pair.interpreter.halted) {
    let slice = Math.max(1, Math.min(options.nextSlice(), options.instructionsMax - executed));
    if (trackers.length > 0) slice = Math.min(slice, epochInstructions - inEpoch);
    const [reference, compiled] = machines.map((machine) => machine.run(slice));
    const where = `in the slice of ${slice} after ${executed} instructions`;
    assert.deepEqual(compiled, reference, `${options.context}: run() result differs ${where}`);
    const [referenceState, compiledState] = [pair.interpreter.getState(), pair.blocks.getState()];
    if (Buffer.compare(compiledState, referenceState) !== 0) {
      // Decoded, so that the failure shows which register, CSR or device field differs.
      assert.deepEqual(
        msgpack.decode(compiledState),
        msgpack.decode(referenceState),
        `${options.context}: CPU or device state differs ${where}`,
      );
    }
    executed += reference!.executed;
    inEpoch += reference!.executed;
    slices++;
    if (trackers.length > 0 && inEpoch >= epochInstructions) endEpoch();
    if (slices % compareEvery === 0) compareRam(`after ${executed} instructions`);
    if (reference!.executed === 0 || reference!.stop !== 0) {
      // Halted or idle: nothing more will run.
      if (!pair.interpreter.halted) break;
    }
  }
  if (trackers.length > 0 && inEpoch > 0) endEpoch();
  if (options.hashAtEnd === false) compareRam(`at the end (${executed} instructions)`);
  else
    assert.equal(
      pair.blocks.stateHash(),
      pair.interpreter.stateHash(),
      `${options.context}: stateHash differs at the end (${executed} instructions)`,
    );
  assert.equal(pair.console.blocks, pair.console.interpreter, `${options.context}: console output differs`);
  return { executed, epochs, faults, ramCompared };
}
