import { createHash } from 'node:crypto';
import { TIMEBASE_HZ } from '../guest/addressMap.ts';
import { MAC_BYTES, type PacketNicCounters } from '../guest/devices/packetNic.ts';
import { STOP_IDLE } from '../guest/cpu.ts';
import { Machine, type MachineExit } from '../guest/machine.ts';
import { TapDevice, type TapCounters } from './tap.ts';

/** Frames drained from the TAP between two run slices, at most. */
const TAP_FRAMES_PER_SLICE_MAX = 256;
/** Instructions per run slice: about a millisecond, so frames wait little for the next slice. */
const SLICE_INSTRUCTIONS = 200_000;
/**
 * Frames the guest transmits before the writer thread is woken for them (besides at each slice's
 * end). 8 against 64 (a batch is ~20-36 frames, so 64 meant once a batch): 45-51k requests/s
 * against 35-38k under redis-benchmark -c 50 (2 was slower, 16 the same).
 */
const WRITER_WAKE_FRAMES = 8;
/** A busy guest lets the event loop turn (signals, I/O callbacks) at least this often. */
const YIELD_EVERY_MS = 2;
/** Longest sleep of an idle guest before the loop looks again (signals, a timer that moved). */
const IDLE_WAIT_MS_MAX = 100;

/**
 * The MAC of a guest: locally administered (02:...), from a hash of its identity, so a guest has
 * the same address on every node that runs it and clients' ARP caches stay right across a failover.
 */
export function guestMac(identity: string): Uint8Array {
  const digest = createHash('sha256').update(identity).digest();
  const mac = Uint8Array.from(digest.subarray(0, MAC_BYTES));
  mac[0] = (digest.readUInt8(0) & 0xfc) | 0x02;
  return mac;
}

export interface TapRunOptions {
  image: Uint8Array;
  imageName: string;
  tapName: string;
  mac: Uint8Array;
  memoryBytes?: number;
  args?: string;
  onConsole?: (text: string) => void;
  /** Ends the run (the guest is left as it is). */
  signal?: AbortSignal;
  /** Called once the TAP device exists, before the guest boots. */
  onAttached?: (tap: TapDevice) => void;
}

/** How the run loop spent its time: what `HBFT_TAP_LOOP_STATS=1` prints at the end. */
export interface TapLoopCounters {
  /** Machine.run calls. */
  slices: number;
  /** Slices that ended with the guest idle (it took everything there was). */
  idleSlices: number;
  /** Times the idle guest slept until a frame or its timer. */
  waits: number;
  /** Frames read from the TAP, and the reads that found some. */
  framesRead: number;
  batches: number;
  /** Milliseconds in Machine.run, in reading the TAP, and asleep. */
  runMs: number;
  readMs: number;
  waitMs: number;
}

export interface TapRunResult {
  exit: MachineExit | null;
  instructions: number;
  net: PacketNicCounters;
  tap: TapCounters;
  loop: TapLoopCounters;
}

export function formatLoopCounters(loop: TapLoopCounters, instructions: number): string {
  const per = (value: number, of: number): string => (of === 0 ? '-' : (value / of).toFixed(2));
  return (
    `${loop.slices} slices (${loop.idleSlices} ended idle, ${loop.waits} waits), ${loop.framesRead} frames in ${loop.batches} batches ` +
    `(${per(loop.framesRead, loop.batches)} a batch), ${per(instructions, loop.framesRead)} instructions a frame; ` +
    `ms in run ${loop.runMs.toFixed(0)}, reading ${loop.readMs.toFixed(0)}, asleep ${loop.waitMs.toFixed(0)}`
  );
}

/**
 * Runs a guest with its packet NIC attached to a TAP device: frames from the TAP go into the NIC
 * between run slices, frames the guest transmits go out at once (no output commit here: this is
 * the unprotected guest). An idle guest sleeps until a frame arrives or its timer is due in real
 * time, and then its clock skips to the timer, so lwIP's timers run at wall-clock pace.
 */
export async function runOnTap(options: TapRunOptions): Promise<TapRunResult> {
  const machine = new Machine({ memoryBytes: options.memoryBytes, args: options.args });
  const decoder = new TextDecoder();
  machine.uart.onOutput = (byte) => options.onConsole?.(decoder.decode(Uint8Array.of(byte), { stream: true }));
  machine.loadElf(options.image, options.imageName);
  machine.net.setMac(options.mac);
  // Frames go out from a writer thread (the kernel's receive path for each runs on the other core),
  // woken every few frames so that the kernel and the clients work on the first replies of a batch
  // while the guest runs the rest of it, and under SCHED_BATCH so that waking it never takes this
  // thread's core (tap.ts). Frames come in on this thread, read(2) through koffi between slices:
  // cheaper in all than a reader thread woken for nearly every frame (poll, read, the EAGAIN read,
  // the wake of this thread), and it leaves the other core to the writer and the clients (see
  // BENCHMARKS.md, "hbft bench network"). An idle guest waits in poll(2) on the thread pool.
  // HBFT_TAP_READER_THREAD=1, HBFT_TAP_WRITER_WAKE_FRAMES=N and HBFT_TAP_THREADS_BATCH=0 change
  // these, to compare.
  const readerThread = process.env.HBFT_TAP_READER_THREAD === '1';
  const wakeFrames = Number(process.env.HBFT_TAP_WRITER_WAKE_FRAMES ?? WRITER_WAKE_FRAMES);
  const tap = await TapDevice.open(options.tapName, {
    writerThread: true,
    readerThread,
    writerFramesPerWake: Number.isInteger(wakeFrames) && wakeFrames > 0 ? wakeFrames : WRITER_WAKE_FRAMES,
    threadsBatchPolicy: process.env.HBFT_TAP_THREADS_BATCH !== '0',
  });
  options.onAttached?.(tap);
  machine.net.host = { onFrame: (frame) => tap.send(frame) };
  const deliver = (frame: Uint8Array): void => {
    machine.net.receive(frame);
  };
  let instructions = 0;
  const loop: TapLoopCounters = { slices: 0, idleSlices: 0, waits: 0, framesRead: 0, batches: 0, runMs: 0, readMs: 0, waitMs: 0 };
  const read = (): number => {
    const from = performance.now();
    const frames = tap.readFrames(TAP_FRAMES_PER_SLICE_MAX, deliver);
    loop.readMs += performance.now() - from;
    if (frames > 0) {
      loop.batches++;
      loop.framesRead += frames;
    }
    return frames;
  };
  try {
    let yieldedAt = performance.now();
    let justRead = false;
    while (!machine.halted && options.signal?.aborted !== true) {
      if (!justRead) read();
      justRead = false;
      const ranFrom = performance.now();
      const result = machine.run(SLICE_INSTRUCTIONS);
      tap.flush();
      const ranTo = performance.now();
      loop.runMs += ranTo - ranFrom;
      loop.slices++;
      instructions += result.executed;
      // Frames that came while the guest ran go straight in (an idle guest does not sleep first:
      // a poll through the thread pool would take longer than reading them).
      if (result.stop === STOP_IDLE) {
        loop.idleSlices++;
        justRead = read() > 0;
      }
      if (result.stop !== STOP_IDLE || justRead) {
        // Let I/O callbacks and signals in now and then, not after every slice: a turn of the
        // event loop costs as much as a good part of a request.
        if (ranTo - yieldedAt >= YIELD_EVERY_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          yieldedAt = performance.now();
        }
        continue;
      }
      const untilTimerMs = ((machine.clint.mtimecmp - machine.cpu.currentCycle()) / TIMEBASE_HZ) * 1000;
      if (untilTimerMs > 0) {
        const waitedFrom = performance.now();
        loop.waits++;
        await tap.waitReadable(Math.min(Math.ceil(untilTimerMs), IDLE_WAIT_MS_MAX));
        yieldedAt = performance.now();
        loop.waitMs += yieldedAt - waitedFrom;
        justRead = read() > 0;
        if (justRead) continue;
        if (performance.now() - waitedFrom < untilTimerMs) continue;
      }
      machine.cpu.skipToTimer();
    }
  } finally {
    tap.close();
  }
  if (process.env.HBFT_TAP_LOOP_STATS === '1') process.stderr.write(`hbft: run loop: ${formatLoopCounters(loop, instructions)}\n`);
  return { exit: machine.exit, instructions, net: machine.net.counters(), tap: { ...tap.counters }, loop };
}
