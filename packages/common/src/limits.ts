/**
 * Bounds, in one place, units last (style.md, TigerBeetle), with their relations asserted when
 * this module loads. The protocol's frame limits, which follow from the guest's memory size and
 * the page record format, are derived from these in protocol/limits.ts.
 *
 * The client path: input on its way into the guest and output on its way out to clients.
 *
 * Input handed to the guest but not yet in its receive ring waits in the NIC's queue, which is
 * device state: it rides in every checkpoint's BEGIN frame, whose payload is limited to
 * `machineStateBytesMax`. So that queue is bounded per connection and in total; a client beyond
 * it is simply not read (back-pressure) until the guest has taken what it sent.
 *
 * Output the guest produced for a connection but the client has not taken (held for output
 * commit, or released and still in the socket's buffer) is bounded by holding that connection's
 * input back in the NIC: the guest gets no more requests from it, so it produces no more replies.
 */
import { assert } from './errors.ts';

/** CPU and device state (Machine.getState) carried by a checkpoint's BEGIN frame. */
export const machineStateBytesMax = 1024 * 1024;

/** Input queued in the NIC (accepted from a connection, not yet in the receive ring), per connection. */
export const clientInputQueuedBytesMaxPerConnection = 64 * 1024;
/** The same, over every connection. */
export const clientInputQueuedBytesMaxTotal = 512 * 1024;
/**
 * Room in the machine state for everything but queued input: CPU registers, the other devices,
 * the NIC's slot table (64 slots with tags of at most `clientTagBytesMax`) and its queue's
 * per-event headers (at most three events per slot: OPEN, DATA, CLOSE).
 */
export const machineStateBytesReservedForDevices = 128 * 1024;
/** A NIC connection's tag (`p:<generation>:<n>` or `s:<32 hex digits>`). */
export const clientTagBytesMax = 64;

/**
 * The device keeps at most this much in the guest's receive ring at once (the rest waits in its
 * queue, where flow control can still hold it). The guest refills it synchronously as it consumes
 * records, so this costs no throughput; what it buys is a small bound on the requests a guest
 * can still be working through once a connection's output is over its limit.
 */
export const nicReceiveRingFillBytesMax = 4 * 1024;

/**
 * Output produced for one connection and not yet taken by its client (held, or in the socket's
 * buffer), above which the NIC holds that connection's input back.
 */
export const clientOutputOutstandingBytesHighPerConnection = 1024 * 1024;
/** The same over every connection: above it the NIC holds every connection's input back. */
export const clientOutputOutstandingBytesHighTotal = 16 * 1024 * 1024;
/**
 * The host tells the guest's NIC how much output a client has taken in steps of at least this
 * (one message per step, not per reply), so the NIC's view lags by less than one step per slot.
 */
export const clientOutputTakenReportBytes = 64 * 1024;
/**
 * Released output in one plain connection's socket buffer (the client is not reading it) above
 * which the connection is closed. The input hold above keeps a client well below this unless the
 * guest's replies are far larger than the requests still in its receive ring.
 */
export const clientOutputUnsentBytesMaxPerConnection = 64 * 1024 * 1024;

/**
 * A client with released output waiting in its socket's buffer that takes none of it for this
 * long is disconnected. Without this, clients that never read would sit at their output bound
 * for ever, and a few of them would hold the total bound, and with it every other client, back.
 */
export const clientOutputStalledMsMax = 5_000;

/** NIC connection slots (the guest reads it as NIC_CONN_MAX): clients served at once. */
export const nicConnectionsMax = 64;

assert(clientInputQueuedBytesMaxPerConnection <= clientInputQueuedBytesMaxTotal, 'one connection fits in the total input bound');
assert(
  clientInputQueuedBytesMaxTotal + machineStateBytesReservedForDevices <= machineStateBytesMax,
  'queued client input and the rest of the machine state fit in a checkpoint BEGIN frame',
);
assert(
  nicConnectionsMax * (clientTagBytesMax + 3 * 64) <= machineStateBytesReservedForDevices / 2,
  'the NIC slot table and queue headers fit in the reserve',
);
assert(nicReceiveRingFillBytesMax >= 4096, 'the fill bound holds a PAD and the largest record (2 056 bytes) at once');
assert(
  clientOutputTakenReportBytes < clientOutputOutstandingBytesHighPerConnection,
  'an idle connection never reads as over its output bound',
);
assert(
  nicConnectionsMax * clientOutputTakenReportBytes < clientOutputOutstandingBytesHighTotal,
  'idle connections never read as over the total output bound',
);
assert(
  clientOutputOutstandingBytesHighPerConnection <= clientOutputOutstandingBytesHighTotal,
  'one connection fits in the total output bound',
);
assert(
  clientOutputUnsentBytesMaxPerConnection >= 4 * clientOutputOutstandingBytesHighPerConnection,
  'a client that reads slowly is held back long before it is closed',
);

/** Session output waiting for a backup beyond this is dropped (bounds memory while unprotected). */
export const sessionCarryOverBytesMax = 64 * 1024 * 1024;
/** A session whose client stays away this long is closed (its NIC connection hung up). */
export const sessionIdleMsDefault = 60_000;
/** How long a client connection that reaches the backup before a takeover is held. */
export const parkedClientMsDefault = 1_000;
/** Bytes a parked client may send before the takeover; more and it is closed. */
export const parkedClientBytesMax = 64 * 1024;

assert(parkedClientBytesMax <= clientInputQueuedBytesMaxPerConnection, 'a parked client hands over no more than one connection may queue');

/*
 * The chaos proxy. Every buffer the proxy keeps has a bound, so that a fast sender behind a slow
 * toxic meets backpressure (the proxy stops reading its socket) instead of growing the heap.
 */

/** Bytes a delaying toxic (latency, slicer, loss) may hold per connection and direction. */
export const chaosDelayedBytesMax = 4 * 1024 * 1024;
/** Bytes that have left the toxics but not yet been written because the destination is slow. */
export const chaosReadyBytesMax = 256 * 1024;
/** A bandwidth toxic queues about this much time's worth of bytes before it pushes back. */
export const bandwidthQueueMs = 100;
/** ... but never fewer bytes than this, so one socket read (up to 64 KiB) always fits. */
export const bandwidthQueueBytesMin = 64 * 1024;
/** A bandwidth toxic releases slices of this much time's worth of bytes, so slow links trickle. */
export const bandwidthSliceMs = 10;
/** Bytes a `timeout` toxic holds before the proxy stops reading the source. */
export const chaosHeldBytesMax = 64 * 1024;

/** Upper bound of every time attribute (one hour): a larger value is almost surely a unit mistake. */
export const toxicTimeMsMax = 3_600_000;
/** Upper bound of byte-count attributes (slicer sizes, limit_data). */
export const toxicBytesMax = 2 ** 40;
export const proxiesMax = 64;
export const toxicsPerProxyMax = 32;
export const connectionsPerProxyMax = 1024;
export const chaosNameLengthMax = 64;
/** Largest request body the control API reads. */
export const chaosApiBodyBytesMax = 64 * 1024;

/** The retransmission delay a `loss` toxic charges by default: Linux's minimum RTO (TCP_RTO_MIN). */
export const lossRetransmitMsDefault = 200;
/** A `loss` toxic draws losses per segment of this size (a typical Ethernet MSS). */
export const lossSegmentBytes = 1460;

assert(bandwidthQueueBytesMin >= 64 * 1024, 'a bandwidth queue must hold at least one socket read');
assert(chaosReadyBytesMax >= 64 * 1024, 'the ready queue must hold at least one socket read');
assert(bandwidthSliceMs < bandwidthQueueMs, 'a bandwidth queue must hold several slices');

/**
 * Frames the guest transmitted and output commit still holds (their epoch not yet committed), in
 * bytes and in frames, on one node. Beyond either a frame is dropped and counted: the guest's TCP
 * sends it again, as after a loss on the wire. Under `--on-backup-loss hold` with no backup this
 * is all a guest can make the primary hold, whatever its clients do.
 */
export const guestFrameHeldBytesMax = 8 * 1024 * 1024;
export const guestFrameHeldFramesMax = 32 * 1024;

assert(
  guestFrameHeldBytesMax >= guestFrameHeldFramesMax * 60,
  'the frame bound is reached no later than the byte bound by minimum-size frames',
);
