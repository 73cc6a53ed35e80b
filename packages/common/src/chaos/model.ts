/**
 * What the control API talks about: proxies, toxics and their attributes. The JSON shapes and the
 * toxic names follow Toxiproxy's HTTP API (`type`, `stream`, `toxicity`, `attributes` with Toxiproxy's
 * units), so that users and scripts that know Toxiproxy work unchanged. `loss` is an hbft extension.
 */
import { assert } from '../errors.ts';
import { lossRetransmitMsDefault, toxicBytesMax, toxicTimeMsMax } from '../limits.ts';

/** `upstream` is client → server (the direction of the listen socket's data), `downstream` the reverse. */
export type StreamName = 'upstream' | 'downstream';
export const STREAM_NAMES: readonly StreamName[] = ['upstream', 'downstream'];

/**
 * How a disabled proxy partitions the link. `cut`: existing connections are closed and the listen
 * socket is closed, so new connections are refused (Toxiproxy's behaviour when disabled). `stall`:
 * connections stay open but no byte passes either way, and new connections are accepted and held
 * without reaching the upstream, as when packets are silently dropped; healing delivers what was held.
 */
export type PartitionMode = 'cut' | 'stall';
export const PARTITION_MODES: readonly PartitionMode[] = ['cut', 'stall'];

export type ToxicType = 'latency' | 'bandwidth' | 'slow_close' | 'timeout' | 'reset_peer' | 'slicer' | 'limit_data' | 'loss';

/** How one attribute is read: its unit (for messages), range, whether whole numbers only, default. */
export interface AttributeSchema {
  unit: string;
  min: number;
  /** `min` itself is not allowed (a rate of 0 KB/s would stop the link forever). */
  minExclusive?: boolean;
  max: number;
  integer: boolean;
  /** Missing means required. */
  default?: number;
  help: string;
}

const ms = (help: string, defaultValue?: number): AttributeSchema => ({
  unit: 'ms',
  min: 0,
  max: toxicTimeMsMax,
  integer: false,
  default: defaultValue,
  help,
});

/** Attributes of every toxic type, in Toxiproxy's names and units. */
export const TOXIC_ATTRIBUTES: Record<ToxicType, Record<string, AttributeSchema>> = {
  latency: {
    latency: ms('delay added to every chunk', 0),
    jitter: ms('uniform random ± added to the delay; bytes are never reordered', 0),
  },
  bandwidth: {
    rate: { unit: 'KB/s', min: 0, minExclusive: true, max: 1e9, integer: false, help: 'rate limit, 1 KB = 1000 bytes' },
  },
  slow_close: { delay: ms('delay before the close (FIN) is passed on', 0) },
  timeout: { timeout: ms('stop all data, then close the connection after this long; 0 = never close', 0) },
  reset_peer: { timeout: ms('reset (RST) the connection this long after it opened or the toxic was added', 0) },
  slicer: {
    average_size: { unit: 'bytes', min: 1, max: toxicBytesMax, integer: true, help: 'mean slice size' },
    size_variation: { unit: 'bytes', min: 0, max: toxicBytesMax, integer: true, default: 0, help: 'slices are average_size ± this' },
    delay: {
      unit: 'µs',
      min: 0,
      max: toxicTimeMsMax * 1000,
      integer: false,
      default: 0,
      help: 'gap between slices (microseconds, as in Toxiproxy)',
    },
  },
  limit_data: {
    bytes: { unit: 'bytes', min: 0, max: toxicBytesMax, integer: true, help: 'close the connection after this many bytes' },
  },
  loss: {
    probability: { unit: '', min: 0, max: 1, integer: false, help: 'chance that a 1460-byte segment is lost' },
    retransmit: ms('delay charged for a lost segment (its retransmission)', lossRetransmitMsDefault),
  },
};

export const TOXIC_TYPES = Object.keys(TOXIC_ATTRIBUTES) as ToxicType[];

/** One toxic as the API shows it. Attribute values are in the units of `TOXIC_ATTRIBUTES`. */
export interface Toxic {
  name: string;
  type: ToxicType;
  stream: StreamName;
  /** Probability in 0..1 that the toxic applies to a given connection, drawn once per connection. */
  toxicity: number;
  attributes: Record<string, number>;
}

export interface Endpoint {
  host: string;
  port: number;
}

/** An attribute of a validated toxic: validate.ts fills in every attribute its type defines. */
export function toxicAttribute(toxic: Toxic, key: string): number {
  const value = toxic.attributes[key];
  assert(value !== undefined, `a validated ${toxic.type} toxic has its ${key} attribute`);
  return value;
}

/** One sentence fragment describing a toxic, for logs and the CLI's one-line answers. */
export function describeToxic(toxic: Toxic): string {
  const a = toxic.attributes;
  const when = toxic.toxicity < 1 ? ` on ${round(toxic.toxicity * 100)}% of connections` : '';
  let what: string;
  switch (toxic.type) {
    case 'latency':
      what = `latency ${a.latency} ms${a.jitter ? ` ± ${a.jitter} ms` : ''}`;
      break;
    case 'bandwidth':
      what = `bandwidth ${a.rate} KB/s (${round((toxicAttribute(toxic, 'rate') * 8) / 1000)} Mbit/s)`;
      break;
    case 'slow_close':
      what = `slow_close after ${a.delay} ms`;
      break;
    case 'timeout':
      what = a.timeout ? `timeout: no data, close after ${a.timeout} ms` : 'timeout: no data, never close';
      break;
    case 'reset_peer':
      what = `reset_peer after ${a.timeout} ms`;
      break;
    case 'slicer':
      what = `slicer ${a.average_size} ± ${a.size_variation} bytes every ${a.delay} µs`;
      break;
    case 'limit_data':
      what = `limit_data ${a.bytes} bytes`;
      break;
    case 'loss':
      what = `loss ${round(toxicAttribute(toxic, 'probability') * 100)}% of segments, ${a.retransmit} ms retransmit stall`;
      break;
  }
  return `${toxic.name} (${toxic.stream}): ${what}${when}`;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
