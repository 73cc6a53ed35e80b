// Measures, side by side in one run, how fast checkpoint-sized frames (1 and 4 MiB) cross loopback on the framed bulk channel, sealed (with a key) and with --insecure, compared with a bare net socket pipe; it prints the figures and asserts only that every byte arrived (no timed assertion).
// The sender runs in a worker thread (as the primary and backup are separate processes); set HBFT_THROUGHPUT_MIB to move more data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { isMainThread, parentPort, workerData, type Worker } from 'node:worker_threads';
import { startTsWorker } from '@hbft/common/tsWorker.ts';
import { silentLogger } from '@hbft/common/log.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor } from '@hbft/common/protocol/limits.ts';
import { connectBulk } from '@hbft/common/transport/bulk.ts';
import { listen } from '@hbft/common/transport/listener.ts';
import type { AuthConfig } from '@hbft/common/protocol/auth.ts';
import { median } from '@hbft/common/stats.ts';

const limits = protocolLimitsFor(256 * 1024 * 1024);
const sealed: AuthConfig = { mode: 'hmac', key: Buffer.from('throughput test key, 32 bytes...') };
const insecure: AuthConfig = { mode: 'insecure' };
const recordBytes = 8 + 4096;
const totalBytes = Number(process.env.HBFT_THROUGHPUT_MIB ?? 256) * 1024 * 1024;

interface SenderJob {
  mode: 'raw' | 'framed';
  /** For framed jobs: a key (every frame sealed) or insecure (CRC-32 only). */
  sealed?: boolean;
  port: number;
  frameBytes: number;
  frames: number;
}

/** The sending side, in a worker: writes `frames` buffers of `frameBytes` as fast as backpressure allows. */
async function runSender(job: SenderJob): Promise<void> {
  const payload = Buffer.alloc(job.frameBytes, 0x5a);
  if (job.mode === 'raw') {
    const socket = net.connect({ host: '127.0.0.1', port: job.port });
    await once(socket, 'connect');
    for (let i = 0; i < job.frames; i++) if (!socket.write(payload)) await once(socket, 'drain');
    socket.end();
    return;
  }
  const bulk = await connectBulk({
    host: '127.0.0.1',
    port: job.port,
    auth: job.sealed === true ? sealed : insecure,
    limits,
    logger: silentLogger(),
  });
  const pageCount = job.frameBytes / recordBytes;
  for (let i = 0; i < job.frames; i++) {
    if (bulk.send(FrameKind.CHECKPOINT_PAGES, { part: i, pageCount }, { payload }).backpressure) await bulk.drained();
  }
  await bulk.drained().catch(() => {});
  // The receiver says GOODBYE when it has everything.
  await once(bulk, 'close');
}

if (!isMainThread && workerData === 'sender') {
  // One long-lived sender thread runs every job, so its start-up is not in any measurement.
  parentPort!.on('message', (job: SenderJob) => {
    runSender(job).then(
      () => parentPort!.postMessage('done'),
      (error: Error) => parentPort!.postMessage(`error: ${error.message}`),
    );
  });
  parentPort!.postMessage('ready');
}

/** Starts this file as the sender thread. */
async function startSenderThread(): Promise<Worker> {
  const worker = startTsWorker(import.meta.url, { workerData: 'sender' });
  const [message] = await once(worker, 'message');
  assert.equal(message, 'ready');
  return worker;
}

let senderThread: Worker;

/** Runs one job on the sender thread; resolves when it reports done. */
function startSender(job: SenderJob): Promise<void> {
  senderThread.postMessage(job);
  return once(senderThread, 'message').then(([message]) => {
    if (message !== 'done') throw new Error(String(message));
  });
}

/** Receives `expectedBytes` on a bare socket; returns GB/s from first to last byte. */
async function measureRaw(frameBytes: number, frames: number): Promise<number> {
  const expectedBytes = frameBytes * frames;
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const received = new Promise<number>((resolve) => {
    server.once('connection', (socket) => {
      let bytes = 0;
      let startedNs = 0n;
      socket.on('data', (chunk: Buffer) => {
        if (bytes === 0) startedNs = process.hrtime.bigint();
        bytes += chunk.length;
        if (bytes >= expectedBytes) resolve(expectedBytes / (Number(process.hrtime.bigint() - startedNs) / 1e9) / 1e9);
      });
    });
  });
  const sent = startSender({ mode: 'raw', port, frameBytes, frames });
  const gbPerS = await received;
  await sent;
  server.close();
  return gbPerS;
}

/** Receives frames on the framed bulk channel through the shared listener; returns payload GB/s. */
async function measureFramed(frameBytes: number, frames: number, sealedRun: boolean): Promise<number> {
  const listener = await listen({ host: '127.0.0.1', port: 0, auth: sealedRun ? sealed : insecure, limits, logger: silentLogger() });
  const received = new Promise<number>((resolve, reject) => {
    listener.once('connection', (connection) => {
      let bytes = 0;
      let count = 0;
      let startedNs = 0n;
      connection.on('frame', (frame) => {
        if (count === 0) startedNs = process.hrtime.bigint();
        count++;
        bytes += frame.payload.length;
        if (count === frames) {
          const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
          connection.close('all received');
          if (bytes !== frameBytes * frames) reject(new Error(`received ${bytes} payload bytes`));
          // The first frame's bytes arrived before the clock started: count one frame fewer.
          resolve((bytes - frameBytes) / seconds / 1e9);
        }
      });
      connection.on('close', (info) => {
        if (count < frames) reject(new Error(`closed after ${count} frames: ${info.reason}`));
      });
    });
  });
  const sent = startSender({ mode: 'framed', sealed: sealedRun, port: listener.address().port, frameBytes, frames });
  const gbPerS = await received;
  await sent;
  await listener.close();
  return gbPerS;
}

if (isMainThread) {
  test(`throughput: framed bulk channel vs bare TCP, ${totalBytes / 2 ** 20} MiB per run`, { timeout: 300_000 }, async (t) => {
    senderThread = await startSenderThread();
    t.after(() => senderThread.terminate());
    // Warm both paths up (JIT, connection set-up) before measuring.
    await measureRaw(recordBytes * 255, 16);
    await measureFramed(recordBytes * 255, 16, false);
    await measureFramed(recordBytes * 255, 16, true);
    for (const pages of [255, 1021]) {
      const frameBytes = pages * recordBytes; // just under 1 MiB and 4 MiB of page records
      const frames = Math.max(4, Math.floor(totalBytes / frameBytes));
      const variants = ['raw TCP', 'framed --insecure', 'framed sealed'] as const;
      const rate = new Map<string, number[]>(variants.map((v) => [v, []]));
      const cpuPerGb = new Map<string, number[]>(variants.map((v) => [v, []]));
      const gigabytes = (frameBytes * frames) / 1e9;
      // Alternate, so that drift in machine load hits all alike. CPU time (both threads, sender
      // and receiver together) per GB moved is steadier than wall-clock rate when other work
      // shares the machine.
      for (let round = 0; round < 3; round++) {
        for (const variant of variants) {
          const cpu = process.cpuUsage();
          const gbPerS =
            variant === 'raw TCP'
              ? await measureRaw(frameBytes, frames)
              : await measureFramed(frameBytes, frames, variant === 'framed sealed');
          const used = process.cpuUsage(cpu);
          rate.get(variant)!.push(gbPerS);
          cpuPerGb.get(variant)!.push((used.user + used.system) / 1e6 / gigabytes);
        }
      }
      const raw = median(rate.get('raw TCP')!);
      const line =
        `frames of ${(frameBytes / 2 ** 20).toFixed(2)} MiB × ${frames}: ` +
        variants
          .map((v) => {
            const rates = rate.get(v)!;
            return `${v} ${median(rates).toFixed(2)} GB/s [${rates.map((x) => x.toFixed(2)).join(' ')}] (${((100 * median(rates)) / raw).toFixed(0)} %, ${median(cpuPerGb.get(v)!).toFixed(2)} CPU-s/GB)`;
          })
          .join('; ');
      t.diagnostic(line);
      assert.ok([...rate.values()].flat().every((v) => v > 0));
    }
  });
}
