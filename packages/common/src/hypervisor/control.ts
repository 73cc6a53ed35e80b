/**
 * The control block shared by the main thread and the guest worker: an Int32Array over a small
 * SharedArrayBuffer. Requests and status changes are Atomics stores followed by notify, so a
 * pause needs no message round trip (design.md §3).
 */
export const CONTROL_WORDS = 8;
/** Main → worker: what the worker should do at the next slice boundary. */
export const CTRL_REQUEST = 0;
/** Worker → main: where the worker is. */
export const CTRL_STATUS = 1;
/** Incremented by the worker on every status change (main waits on it). */
export const CTRL_STATUS_SEQ = 2;
/** Incremented by main for every message posted and every request (the worker waits on it). */
export const CTRL_DOORBELL = 3;
/**
 * Main → worker: end this epoch at the next instruction boundary (running or paused), or
 * NO_CAPTURE. Independent of the request word, so a paused guest can be captured and stay paused.
 */
export const CTRL_CAPTURE_EPOCH = 4;
export const NO_CAPTURE = -1;

export const REQUEST_RUN = 0;
export const REQUEST_PAUSE = 1;
export const REQUEST_STOP = 2;

export const STATUS_STARTING = 0;
export const STATUS_RUNNING = 1;
export const STATUS_PAUSED = 2;
/** In `wfi` with nothing to wake it: waiting for input. */
export const STATUS_IDLE = 3;
export const STATUS_HALTED = 4;
export const STATUS_STOPPED = 5;

export const STATUS_NAMES = ['starting', 'running', 'paused', 'idle', 'halted', 'stopped'] as const;

/** Instructions per slice: the pause latency is at most one slice (≈27 µs at 150 MIPS). */
export const SLICE_INSTRUCTIONS = 4096;
