/**
 * What the dashboard's `/live` socket says, as plain values: a `hello` carrying the feed's
 * bounded history when a client connects, then one message per new sample or event. Pure
 * functions, so the protocol is tested without sockets.
 */
import type { LiveEvent, LiveSample } from '../liveFeed.ts';

export interface LiveHistory {
  readonly samples: readonly LiveSample[];
  readonly events: readonly LiveEvent[];
}

export type LiveMessage =
  /** `serverTimeMs` lets a page on another host place this node's samples on its own clock. */
  | { type: 'hello'; serverTimeMs: number; history: { samples: LiveSample[]; events: LiveEvent[] } }
  | { type: 'sample'; sample: LiveSample }
  | { type: 'event'; event: LiveEvent }
  | { type: 'pong'; serverTimeMs: number };

/** Copies the history: the feed keeps shifting its arrays after the message is built. */
export function helloMessage(history: LiveHistory, serverTimeMs: number): LiveMessage {
  return { type: 'hello', serverTimeMs, history: { samples: [...history.samples], events: [...history.events] } };
}

export function sampleMessage(sample: LiveSample): LiveMessage {
  return { type: 'sample', sample };
}

export function eventMessage(event: LiveEvent): LiveMessage {
  return { type: 'event', event };
}

export function pongMessage(serverTimeMs: number): LiveMessage {
  return { type: 'pong', serverTimeMs };
}

/** The longest message a client may send: `{"type":"ping"}` and some slack. */
export const CLIENT_MESSAGE_BYTES_MAX = 256;

/**
 * Clients only listen; the one thing they may say is an application-level ping (browsers cannot
 * send WebSocket ping frames). Anything else is a reason to close the connection.
 */
export function isClientPing(data: Buffer | string, isBinary: boolean): boolean {
  if (isBinary) return false;
  const text = typeof data === 'string' ? data : data.toString('utf8');
  if (text.length > CLIENT_MESSAGE_BYTES_MAX) return false;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) && (value as { type?: unknown }).type === 'ping';
  } catch {
    return false;
  }
}
