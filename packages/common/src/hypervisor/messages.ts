import type { MessagePort } from 'node:worker_threads';
import type { MachineExit } from '../guest/machine.ts';
import type { CapturedCheckpoint } from '../checkpoint/capture.ts';
import type { MapperOptions } from '../tracking/mapper.ts';
import type { TrackerOptions } from '../tracking/baseTracker.ts';

export type ToWorker =
  /** An Ethernet frame from the network for the packet NIC. */
  | { type: 'frame'; bytes: Uint8Array }
  | { type: 'command'; id: number; name: string; args: unknown }
  /** A standby worker takes over: restore this state and run from epoch `firstEpoch` once resumed. */
  | { type: 'activate'; id: number; state: Uint8Array; firstEpoch: number };

export type FromWorker =
  | { type: 'captured'; checkpoint: CapturedCheckpoint }
  /** A frame the guest transmitted on the packet NIC during `epoch` (held until it is committed). */
  | { type: 'frame'; bytes: Uint8Array; epoch: number }
  | { type: 'console'; text: string }
  | { type: 'halted'; exit: MachineExit }
  | { type: 'reply'; id: number; ok: true; result: unknown }
  | { type: 'reply'; id: number; ok: false; error: string; code: string };

export interface GuestWorkerReplication {
  tracking: string;
  trackerOptions: TrackerOptions;
  mapper: MapperOptions;
  staging: SharedArrayBuffer;
  stagingPages: number;
  /** The epoch the guest starts in (0 at boot; after a failover, the next after the last applied). */
  firstEpoch: number;
}

export interface GuestWorkerData {
  control: SharedArrayBuffer;
  memory: SharedArrayBuffer;
  /**
   * Boot from an image, or continue from a saved state (RAM already holds the guest); with
   * neither, the worker is a standby: booted and paused, waiting for `activate`.
   */
  image?: Uint8Array;
  imageName?: string;
  state?: Uint8Array;
  args?: string;
  /** The packet NIC's MAC (set before boot; a restored state carries its own). */
  mac?: Uint8Array;
  /** Tracking and checkpointing; absent for a plain run. */
  replication?: GuestWorkerReplication;
  /** A standby's warm-up: an image run briefly in a scratch machine (see guestWorkerMain). */
  warmUpImage?: Uint8Array;
  port: MessagePort;
}
