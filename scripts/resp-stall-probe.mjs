#!/usr/bin/env node
// A plain-RESP load that records what unmodified clients see across a takeover: CLIENTS TCP
// connections to HOST:PORT, each sending INCR on a key of its own, one request at a time, never
// reconnecting. Each checks that every reply is its previous one plus one (an acknowledged
// increment lost, or one applied twice, breaks that) and records when each reply came (wall clock,
// ms). On SIGTERM (or after DURATION_MS) it stops sending, waits up to 5 s for the replies still
// due, and prints one JSON line: per client the reply times, the last value, and any error.
// Usage: node scripts/resp-stall-probe.mjs HOST:PORT CLIENTS KEY_PREFIX [DURATION_MS]
import { connect } from 'node:net';

const [target, clientsText, keyPrefix, durationText] = process.argv.slice(2);
const [host, portText] = (target ?? '').split(':');
const clients = Number(clientsText);
if (!host || !Number.isInteger(Number(portText)) || !Number.isInteger(clients) || clients < 1 || clients > 1000 || !keyPrefix) {
  process.stderr.write('usage: resp-stall-probe.mjs HOST:PORT CLIENTS(1-1000) KEY_PREFIX [DURATION_MS]\n');
  process.exit(2);
}
const REPLY_BYTES_MAX = 64;
const nowMs = () => performance.timeOrigin + performance.now();
let stopping = false;

function runClient(index) {
  const key = `${keyPrefix}:${index}`;
  const request = `*2\r\n$4\r\nINCR\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n`;
  const record = { key, times: [], lastValue: 0, error: null, closed: false };
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(portText) });
    let buffered = '';
    let waiting = false;
    const finish = () => {
      socket.destroy();
      resolve(record);
    };
    const send = () => {
      if (stopping || record.error !== null) return finish();
      waiting = true;
      socket.write(request);
    };
    socket.setNoDelay(true);
    socket.on('connect', send);
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      if (buffered.length > REPLY_BYTES_MAX) record.error = `reply longer than ${REPLY_BYTES_MAX} bytes: ${JSON.stringify(buffered)}`;
      const end = buffered.indexOf('\r\n');
      if (record.error !== null) return finish();
      if (end < 0) return;
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      waiting = false;
      const value = line.startsWith(':') ? Number(line.slice(1)) : Number.NaN;
      if (value !== record.lastValue + 1) {
        record.error = `after ${record.lastValue} the reply was ${JSON.stringify(line)}`;
        return finish();
      }
      record.lastValue = value;
      record.times.push(Math.round(nowMs() * 10) / 10);
      send();
    });
    socket.on('error', (error) => {
      record.error ??= `connection error: ${error.message}`;
    });
    socket.on('close', () => {
      if (waiting || !stopping) {
        record.closed = true;
        record.error ??= 'the connection closed';
      }
      resolve(record);
    });
    // Bounded: a reply that never comes after the stop does not keep the probe up.
    process.once('probe-stop', () => setTimeout(finish, 5_000).unref());
  });
}

process.setMaxListeners(clients + 10);
const results = Promise.all(Array.from({ length: clients }, (_, i) => runClient(i)));
const stop = () => {
  stopping = true;
  process.emit('probe-stop');
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
if (durationText !== undefined) setTimeout(stop, Number(durationText)).unref();
const records = await results;
process.stdout.write(`${JSON.stringify({ clients: records })}\n`);
