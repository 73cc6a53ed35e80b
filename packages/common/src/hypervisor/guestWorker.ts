import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { startTsWorker } from '../tsWorker.ts';
import { HbftError } from '../errors.ts';
import type { MachineExit } from '../guest/machine.ts';
import {
  CONTROL_WORDS,
  CTRL_CAPTURE_EPOCH,
  CTRL_DOORBELL,
  CTRL_REQUEST,
  CTRL_STATUS,
  CTRL_STATUS_SEQ,
  NO_CAPTURE,
  REQUEST_PAUSE,
  REQUEST_RUN,
  REQUEST_STOP,
  STATUS_NAMES,
  STATUS_PAUSED,
  STATUS_STARTING,
  STATUS_STOPPED,
} from './control.ts';
import type { FromWorker, GuestWorkerData, GuestWorkerReplication, ToWorker } from './messages.ts';
import type { CapturedCheckpoint } from '../checkpoint/capture.ts';

export interface GuestWorkerOptions {
  memory: SharedArrayBuffer;
  /** Boot paused with nothing loaded, waiting for activate() (a backup's standby). */
  standby?: boolean;
  image?: Uint8Array;
  imageName?: string;
  state?: Uint8Array;
  args?: string;
  /** The packet NIC's MAC, for a guest booted from an image. */
  mac?: Uint8Array;
  replication?: GuestWorkerReplication;
  /** For a standby: an image to run briefly in a scratch machine first, so a takeover starts warm. */
  warmUpImage?: Uint8Array;
}

export interface GuestWorkerEvents {
  /** A frame the guest transmitted on the packet NIC during `epoch`. */
  frame: [bytes: Uint8Array, epoch: number];
  captured: [checkpoint: CapturedCheckpoint];
  console: [text: string];
  halted: [exit: MachineExit];
  error: [error: Error];
  exit: [];
}

/**
 * The main thread's handle on a guest running in a worker_thread over shared memory. Pausing is
 * an Atomics handshake: the worker checks the request word between slices of 4096 instructions,
 * so it stops at an instruction boundary well within 100 µs; resume is one store and notify.
 */
export class GuestWorker extends EventEmitter<GuestWorkerEvents> {
  readonly memory: SharedArrayBuffer;
  private readonly control: Int32Array;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private nextCommandId = 1;
  private readonly pendingCommands = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;

  private constructor(options: GuestWorkerOptions) {
    super();
    this.memory = options.memory;
    this.control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
    this.control[CTRL_CAPTURE_EPOCH] = NO_CAPTURE;
    if (options.standby) this.control[CTRL_REQUEST] = REQUEST_PAUSE;
    const channel = new MessageChannel();
    this.port = channel.port1;
    const data: GuestWorkerData = {
      control: this.control.buffer as SharedArrayBuffer,
      memory: options.memory,
      image: options.image,
      imageName: options.imageName,
      state: options.state,
      args: options.args,
      mac: options.mac,
      replication: options.replication,
      warmUpImage: options.warmUpImage,
      port: channel.port2,
    };
    this.worker = startTsWorker(new URL('./guestWorkerMain.ts', import.meta.url), {
      workerData: data,
      transferList: [channel.port2],
    });
    channel.port1.on('message', (message: FromWorker) => this.onMessage(message));
    this.worker.on('error', (error) => this.emit('error', error));
    this.worker.on('exit', () => {
      this.exited = true;
      for (const pending of this.pendingCommands.values()) pending.reject(new HbftError('E_WORKER_EXITED', 'the guest worker exited'));
      this.pendingCommands.clear();
      channel.port1.close();
      this.emit('exit');
    });
  }

  /** Starts a worker and resolves once it has booted (left the starting state). */
  static async start(options: GuestWorkerOptions): Promise<GuestWorker> {
    const guest = new GuestWorker(options);
    // Until the caller has its own listeners, a worker error fails the start instead of the process.
    let bootError: Error | null = null;
    const onBootError = (error: Error) => (bootError = error);
    guest.on('error', onBootError);
    try {
      await guest.waitForStatus((status) => status !== STATUS_STARTING);
    } catch (error) {
      throw new HbftError('E_GUEST_BOOT', `the guest worker could not boot: ${(bootError ?? (error as Error)).message}`);
    } finally {
      guest.off('error', onBootError);
    }
    if (guest.statusCode === STATUS_STOPPED) {
      const exit = await new Promise<MachineExit | undefined>((resolve) => {
        guest.once('halted', resolve);
        setTimeout(() => resolve(undefined), 100);
      });
      throw new HbftError('E_GUEST_BOOT', exit?.kind === 'fault' ? exit.message : 'the guest worker could not boot');
    }
    return guest;
  }

  get statusCode(): number {
    return Atomics.load(this.control, CTRL_STATUS);
  }

  get status(): (typeof STATUS_NAMES)[number] {
    return STATUS_NAMES[this.statusCode] ?? 'stopped';
  }

  private onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'frame':
        this.emit('frame', message.bytes, message.epoch);
        return;
      case 'captured':
        this.emit('captured', message.checkpoint);
        return;
      case 'console':
        this.emit('console', message.text);
        return;
      case 'halted':
        this.emit('halted', message.exit);
        return;
      case 'reply': {
        const pending = this.pendingCommands.get(message.id);
        if (pending === undefined) return;
        this.pendingCommands.delete(message.id);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(new HbftError(message.code, message.error));
        return;
      }
    }
  }

  private ringDoorbell(): void {
    Atomics.add(this.control, CTRL_DOORBELL, 1);
    Atomics.notify(this.control, CTRL_DOORBELL);
  }

  private send(message: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (this.exited) return;
    this.port.postMessage(message, transfer);
    this.ringDoorbell();
  }

  /** Resolves when the worker's status satisfies `predicate`. */
  private async waitForStatus(predicate: (status: number) => boolean): Promise<void> {
    for (;;) {
      const seq = Atomics.load(this.control, CTRL_STATUS_SEQ);
      if (predicate(this.statusCode)) return;
      if (this.exited) throw new HbftError('E_WORKER_EXITED', 'the guest worker exited');
      const waiting = Atomics.waitAsync(this.control, CTRL_STATUS_SEQ, seq, 1000);
      if (waiting.async) await waiting.value;
    }
  }

  /** Stops the guest at the next instruction boundary; resolves once it is stopped. */
  async pause(): Promise<void> {
    Atomics.store(this.control, CTRL_REQUEST, REQUEST_PAUSE);
    this.ringDoorbell();
    await this.waitForStatus((status) => status === STATUS_PAUSED || status === STATUS_STOPPED);
  }

  /**
   * Ends epoch `epoch` at the next instruction boundary: the worker captures the checkpoint into
   * staging and carries on as it was (running, or paused). The result arrives as a `captured`
   * event, after every `frame` event of that epoch.
   */
  requestCapture(epoch: number): void {
    Atomics.store(this.control, CTRL_CAPTURE_EPOCH, epoch | 0);
    this.ringDoorbell();
  }

  resume(): void {
    Atomics.store(this.control, CTRL_REQUEST, REQUEST_RUN);
    this.ringDoorbell();
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.once('exit', resolve));
    Atomics.store(this.control, CTRL_REQUEST, REQUEST_STOP);
    this.ringDoorbell();
    await exited;
  }

  /**
   * A standby worker takes over the guest: its RAM already holds the state's memory; this
   * restores CPU and devices and sets the epoch. The guest runs once resume() is called.
   */
  activate(state: Uint8Array, firstEpoch: number): Promise<void> {
    if (this.exited) return Promise.reject(new HbftError('E_WORKER_EXITED', 'the guest worker exited'));
    const id = this.nextCommandId++;
    return new Promise<void>((resolve, reject) => {
      this.pendingCommands.set(id, { resolve: () => resolve(), reject });
      this.send({ type: 'activate', id, state, firstEpoch });
    });
  }

  /** Runs a worker command (see commands.ts) between slices or while paused. */
  command<T>(name: string, args?: unknown): Promise<T> {
    if (this.exited) return Promise.reject(new HbftError('E_WORKER_EXITED', 'the guest worker exited'));
    const id = this.nextCommandId++;
    return new Promise<T>((resolve, reject) => {
      this.pendingCommands.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.send({ type: 'command', id, name, args });
    });
  }

  /** An Ethernet frame from the network for the guest's packet NIC (queued, bounded, checked there). */
  deliverFrame(bytes: Uint8Array): void {
    this.send({ type: 'frame', bytes });
  }
}
