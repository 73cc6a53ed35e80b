// Proves the forwarder pair of netns/forward.ts (TCP → Unix socket → TCP): bytes arrive intact both
// ways, a half-close is passed on and the reply after it still comes back, a target that is down
// ends the client's connection and is counted (never a crash), and close() ends open connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { forwardTcpToUnix, forwardUnixToTcp } from '../../packages/cli/src/netns/forward.ts';

/** A server that answers each connection, once it has ended its input, with an echo of it. */
async function echoAfterEnd(): Promise<{ port: number; close: () => void }> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => socket.end(Buffer.concat(chunks)));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { port: address.port, close: () => server.close() };
}

function roundTrip(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => socket.end(payload));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

test('the forwarder pair carries bytes both ways across a half-close, counts an unreachable target, and close() ends connections', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hbft-forward-'));
  const echo = await echoAfterEnd();
  const inner = await forwardUnixToTcp(join(dir, 'echo.sock'), '127.0.0.1', echo.port, 'unix');
  const host = await forwardTcpToUnix('127.0.0.1', 0, join(dir, 'echo.sock'), 'test');
  try {
    const payload = randomBytes(2 * 1024 * 1024);
    const replies = await Promise.all([roundTrip(host.port, payload), roundTrip(host.port, Buffer.from('PING\r\n'))]);
    assert.ok(replies[0].equals(payload), '2 MiB arrive intact after the client has half-closed');
    assert.equal(replies[1].toString(), 'PING\r\n');

    // An idle connection (the target still up) is ended by close().
    const idle = connect({ host: '127.0.0.1', port: host.port });
    await once(idle, 'connect');
    const closed = once(idle, 'close');
    await new Promise((resolve) => setTimeout(resolve, 100));
    host.close();
    await closed;
    // The target goes away: the next connection is ended, and counted as failed.
    echo.close();
    const again = await forwardTcpToUnix('127.0.0.1', 0, join(dir, 'echo.sock'), 'test');
    const ended = await roundTrip(again.port, Buffer.from('x')).catch(() => Buffer.alloc(0));
    again.close();
    assert.equal(ended.length, 0);
    assert.equal(inner.counters.failed, 1);
    inner.close();
  } finally {
    host.close();
    inner.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
