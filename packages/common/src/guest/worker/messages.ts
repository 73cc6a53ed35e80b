import type { MessagePort } from 'node:worker_threads';
import type { MachineExit } from '../machine.ts';

/** Connections are named by a tag chosen by the main thread; the worker maps tags to NIC slots. */
export type ToWorker =
  | { type: 'open'; tag: string }
  | { type: 'deliver'; tag: string; bytes: Uint8Array }
  | { type: 'hangUp'; tag: string }
  | { type: 'command'; id: number; name: string; args: unknown };

export type FromWorker =
  | { type: 'opened'; tag: string; slot: number }
  | { type: 'refused'; tag: string; reason: string }
  | { type: 'output'; tag: string; slot: number; bytes: Uint8Array }
  | { type: 'guestClose'; tag: string; slot: number }
  | { type: 'console'; text: string }
  | { type: 'halted'; exit: MachineExit }
  | { type: 'reply'; id: number; ok: true; result: unknown }
  | { type: 'reply'; id: number; ok: false; error: string; code: string };

export interface GuestWorkerData {
  control: SharedArrayBuffer;
  memory: SharedArrayBuffer;
  /** Boot from an image, or continue from a saved state (RAM already holds the guest). */
  image?: Uint8Array;
  imageName?: string;
  state?: Uint8Array;
  args?: string;
  port: MessagePort;
}
