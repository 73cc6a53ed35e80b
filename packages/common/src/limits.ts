/**
 * Bounds, in one place, units last (style.md, TigerBeetle), with their relations asserted when
 * this module loads. The protocol's frame limits, which follow from the guest's memory size and
 * the page record format, are derived from these in protocol/limits.ts.
 */
import { assert } from './errors.ts';

/**
 * CPU and device state (Machine.getState) carried by a checkpoint's BEGIN frame. The packet NIC's
 * receive queue is device state and the largest part of it (see devices/packetNic.ts).
 */
export const machineStateBytesMax = 1024 * 1024;

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
