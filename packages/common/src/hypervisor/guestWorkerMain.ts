import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import { HbftError } from '../errors.ts';
import { STOP_IDLE } from '../guest/cpu.ts';
import { Machine } from '../guest/machine.ts';
import { CheckpointCapturer } from '../checkpoint/capture.ts';
import { StagingRing } from '../checkpoint/staging.ts';
import { createMapper } from '../tracking/mapper.ts';
import { createTracker, trackMemory } from '../tracking/strategies.ts';
import {
  CTRL_CAPTURE_EPOCH,
  CTRL_DOORBELL,
  CTRL_REQUEST,
  CTRL_STATUS,
  CTRL_STATUS_SEQ,
  NO_CAPTURE,
  REQUEST_PAUSE,
  REQUEST_STOP,
  SLICE_INSTRUCTIONS,
  STATUS_HALTED,
  STATUS_IDLE,
  STATUS_PAUSED,
  STATUS_RUNNING,
  STATUS_STOPPED,
} from './control.ts';
import type { FromWorker, GuestWorkerData, ToWorker } from './messages.ts';
import { workerCommands } from './commands.ts';

/*
 * The guest's thread: runs the machine in slices and, between slices, takes input, answers
 * commands and honours pause requests. It never yields to an event loop while the guest runs:
 * messages are drained with receiveMessageOnPort when the doorbell says there are some.
 */
const data = workerData as GuestWorkerData;
const control = new Int32Array(data.control);
const port = data.port;
const machine = new Machine({ memoryBuffer: data.memory, args: data.args });
let doorbellSeen = Atomics.load(control, CTRL_DOORBELL);
/** The epoch the guest is running in: the frames it transmits are tagged with it. */
let epoch = data.replication?.firstEpoch ?? 0;
let capturer: CheckpointCapturer | null = null;

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function setStatus(status: number): void {
  if (Atomics.load(control, CTRL_STATUS) === status) return;
  Atomics.store(control, CTRL_STATUS, status);
  Atomics.add(control, CTRL_STATUS_SEQ, 1);
  Atomics.notify(control, CTRL_STATUS_SEQ);
}

machine.uart.onOutput = (() => {
  const decoder = new TextDecoder();
  return (byte: number) => post({ type: 'console', text: decoder.decode(Uint8Array.of(byte), { stream: true }) });
})();
machine.net.host = {
  onFrame(frame) {
    post({ type: 'frame', bytes: frame, epoch }, [frame.buffer as ArrayBuffer]);
  },
};

function handle(message: ToWorker): void {
  switch (message.type) {
    case 'frame':
      machine.net.receive(message.bytes);
      return;
    case 'activate': {
      try {
        machine.setState(message.state);
        machine.cpu.holdCompiles(RESUMED_INTERPRET_INSTRUCTIONS);
        epoch = message.firstEpoch;
        armTracking();
        post({ type: 'reply', id: message.id, ok: true, result: null });
      } catch (error) {
        const code = error instanceof HbftError ? error.code : 'E_INTERNAL';
        post({ type: 'reply', id: message.id, ok: false, error: (error as Error).message, code });
      }
      return;
    }
    case 'command': {
      const command = workerCommands[message.name];
      try {
        if (command === undefined) throw new HbftError('E_COMMAND', `unknown worker command "${message.name}"`);
        post({ type: 'reply', id: message.id, ok: true, result: command(machine, message.args) });
      } catch (error) {
        const code = error instanceof HbftError ? error.code : 'E_INTERNAL';
        post({ type: 'reply', id: message.id, ok: false, error: (error as Error).message, code });
      }
      return;
    }
  }
}

function drainMessages(): void {
  const doorbell = Atomics.load(control, CTRL_DOORBELL);
  if (doorbell === doorbellSeen) return;
  doorbellSeen = doorbell;
  for (let entry = receiveMessageOnPort(port); entry !== undefined; entry = receiveMessageOnPort(port)) {
    handle(entry.message as ToWorker);
  }
}

/** Sleeps until main rings the doorbell (or the timeout passes). */
function waitForDoorbell(timeoutMs: number): void {
  Atomics.wait(control, CTRL_DOORBELL, doorbellSeen, timeoutMs);
}

/**
 * A guest resumed from a checkpoint (a takeover) runs this many instructions on the interpreter
 * before the block engine compiles anything (Cpu.holdCompiles): its clients are waiting, and
 * freshly compiled blocks run slower than the interpreter until V8 has optimised them. About
 * 15,000 kvnet requests; the compile cost comes later, spread over normal service.
 */
const RESUMED_INTERPRET_INSTRUCTIONS = 100_000_000;

/** How long a standby warms its CPU engine up, and in how much scratch memory. */
const WARM_UP_MS = 300;
const WARM_UP_MEMORY_BYTES = 16 * 1024 * 1024;

/**
 * A standby has never run guest code: at a takeover V8 would compile the interpreter and the block
 * compiler from cold while clients wait for their first replies. Running the guest's image for a
 * moment in a scratch machine (its own memory, thrown away) makes that happen now instead.
 */
function warmUp(image: Uint8Array): void {
  const scratch = new Machine({ memoryBytes: WARM_UP_MEMORY_BYTES });
  try {
    scratch.loadElf(image);
  } catch {
    return;
  }
  const untilMs = performance.now() + WARM_UP_MS;
  while (performance.now() < untilMs && !scratch.halted) {
    if (scratch.run(SLICE_INSTRUCTIONS).stop === STOP_IDLE) scratch.cpu.skipToTimer();
  }
}

function boot(): void {
  if (data.warmUpImage !== undefined) warmUp(data.warmUpImage);
  if (data.state !== undefined) {
    machine.setState(data.state);
    machine.cpu.holdCompiles(RESUMED_INTERPRET_INSTRUCTIONS);
  } else if (data.image !== undefined) {
    if (data.mac !== undefined) machine.net.setMac(data.mac);
    machine.loadElf(data.image, data.imageName);
  }
  armTracking();
}

/**
 * Tracking starts with the first instruction the guest runs here, so every page written from
 * then on is in some checkpoint.
 */
function armTracking(): void {
  const replication = data.replication;
  if (replication === undefined) return;
  capturer = new CheckpointCapturer(
    machine,
    trackMemory(machine.memory, createTracker(replication.tracking, replication.trackerOptions)),
    createMapper(replication.mapper, machine.memory.table.l1Count),
    new StagingRing(replication.stagingPages, replication.staging),
  );
}

/** Ends the epoch main asked for, if any: capture at this instruction boundary. */
function captureIfRequested(): void {
  const requested = Atomics.load(control, CTRL_CAPTURE_EPOCH);
  if (requested === NO_CAPTURE) return;
  if (capturer !== null && requested === (epoch | 0)) {
    const checkpoint = capturer.capture(epoch);
    epoch++;
    post({ type: 'captured', checkpoint }, [checkpoint.pages.buffer as ArrayBuffer]);
  }
  Atomics.compareExchange(control, CTRL_CAPTURE_EPOCH, requested, NO_CAPTURE);
}

function loop(): void {
  let haltReported = false;
  for (;;) {
    drainMessages();
    captureIfRequested();
    const request = Atomics.load(control, CTRL_REQUEST);
    if (request === REQUEST_STOP) break;
    if (request === REQUEST_PAUSE) {
      setStatus(STATUS_PAUSED);
      while (Atomics.load(control, CTRL_REQUEST) === REQUEST_PAUSE) {
        waitForDoorbell(1000);
        drainMessages();
        captureIfRequested();
      }
      continue;
    }
    if (machine.halted) {
      if (!haltReported && machine.exit !== null) post({ type: 'halted', exit: machine.exit });
      haltReported = true;
      setStatus(STATUS_HALTED);
      waitForDoorbell(1000);
      continue;
    }
    setStatus(STATUS_RUNNING);
    const result = machine.run(SLICE_INSTRUCTIONS);
    if (result.stop === STOP_IDLE) {
      setStatus(STATUS_IDLE);
      waitForDoorbell(10);
      // A guest waiting for input and a timer: after a real wait, let the timer fire.
      if (Atomics.load(control, CTRL_DOORBELL) === doorbellSeen) machine.cpu.skipToTimer();
    }
  }
  setStatus(STATUS_STOPPED);
  port.close();
}

try {
  boot();
} catch (error) {
  post({ type: 'halted', exit: { kind: 'fault', message: (error as Error).message } });
  setStatus(STATUS_STOPPED);
  port.close();
  throw error;
}
loop();
