/**
 * Bounds of the chaos proxy. Every buffer the proxy keeps has one, so that a fast sender behind a slow
 * toxic meets backpressure (the proxy stops reading its socket) instead of growing the heap.
 */
import { assert } from '../errors.ts';

/** Bytes a delaying toxic (latency, slicer, loss) may hold per connection and direction. */
export const delayedBytesMax = 4 * 1024 * 1024;
/** Bytes that have left the toxics but not yet been written because the destination is slow. */
export const readyBytesMax = 256 * 1024;
/** A bandwidth toxic queues about this much time's worth of bytes before it pushes back. */
export const bandwidthQueueMs = 100;
/** ... but never fewer bytes than this, so one socket read (up to 64 KiB) always fits. */
export const bandwidthQueueBytesMin = 64 * 1024;
/** A bandwidth toxic releases slices of this much time's worth of bytes, so slow links trickle. */
export const bandwidthSliceMs = 10;
/** Bytes a `timeout` toxic holds before the proxy stops reading the source. */
export const heldBytesMax = 64 * 1024;

/** Upper bound of every time attribute (one hour): a larger value is almost surely a unit mistake. */
export const toxicTimeMsMax = 3_600_000;
/** Upper bound of byte-count attributes (slicer sizes, limit_data). */
export const toxicBytesMax = 2 ** 40;
export const proxiesMax = 64;
export const toxicsPerProxyMax = 32;
export const connectionsPerProxyMax = 1024;
export const nameLengthMax = 64;
/** Largest request body the control API reads. */
export const apiBodyBytesMax = 64 * 1024;

/** The retransmission delay a `loss` toxic charges by default: Linux's minimum RTO (TCP_RTO_MIN). */
export const lossRetransmitMsDefault = 200;
/** A `loss` toxic draws losses per segment of this size (a typical Ethernet MSS). */
export const lossSegmentBytes = 1460;

assert(bandwidthQueueBytesMin >= 64 * 1024, 'a bandwidth queue must hold at least one socket read');
assert(readyBytesMax >= 64 * 1024, 'the ready queue must hold at least one socket read');
assert(bandwidthSliceMs < bandwidthQueueMs, 'a bandwidth queue must hold several slices');
