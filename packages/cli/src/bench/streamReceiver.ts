/**
 * The receiving process of `hbft bench replication`'s stream part: a raw TCP sink and a real backup
 * (BackupDaemon: decode, verify, apply, ack) in one process, so that both streams are measured
 * between the same two processes. Prints its ports as one JSON line on stdout.
 */
import { createServer } from 'node:net';
import { pino } from 'pino';
import { ReplicationMetrics } from '@hbft/common/http/metrics.ts';
import { BackupDaemon } from '@hbft/backup/daemon.ts';
import type { AuthConfig } from '@hbft/common/protocol/auth.ts';

const memoryBytes = Number(process.argv[2]);
/** The key in hex, or `insecure` for a plaintext link (the bench compares both). */
const keyArg = process.argv[3];
if (keyArg === undefined) throw new Error('usage: streamReceiver.ts MEMORY_BYTES KEY_HEX|insecure');
const auth: AuthConfig = keyArg === 'insecure' ? { mode: 'insecure' } : { mode: 'hmac', key: Buffer.from(keyArg, 'hex') };
const raw = createServer((socket) => {
  let expected = -1;
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    if (expected < 0) {
      expected = chunk.readUInt32LE(0) * 1024 * 1024;
      chunk = chunk.subarray(4);
    }
    received += chunk.length;
    if (received >= expected) socket.end('done');
  });
});
await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
const daemon = await BackupDaemon.start({
  listen: { host: '127.0.0.1', port: 0 },
  memoryBytes,
  auth,
  timing: { epochMs: 20, heartbeatMs: 1000, failoverTimeoutMs: 3_600_000 },
  logger: pino({ level: 'warn' }),
  metrics: new ReplicationMetrics('backup', 0),
  promoted: { tracking: 'wfp', trackerOptions: {}, mapper: {}, checkpointsInFlightMax: 2 },
});
process.stdout.write(`${JSON.stringify({ raw: (raw.address() as { port: number }).port, backup: daemon.listenAddress.port })}\n`);
process.on('SIGTERM', () => void daemon.stop().then(() => process.exit(0)));
