/**
 * A client of `hbft bench false-takeovers --load loaded`, run inside the bench's network namespace:
 * one plain RESP connection to the guest that stores a 60 KB value and then pipelines 2 000 GETs of
 * it without ever reading a reply. It stays connected until it is killed.
 *
 *   nonReadingClient.ts HOST PORT
 */
import net from 'node:net';
import { encodeCommand } from '@hbft/common/session/resp.ts';

const [host, port] = process.argv.slice(2);
if (host === undefined || !Number.isInteger(Number(port))) throw new Error('usage: nonReadingClient.ts HOST PORT');
const socket = net.connect(Number(port), host);
socket.on('error', (error) => {
  process.stderr.write(`nonReadingClient: ${error.message}\n`);
  process.exit(1);
});
socket.on('connect', () => {
  socket.pause();
  socket.write(encodeCommand(['SET', 'bench:big', 'x'.repeat(60_000)]));
  const get = encodeCommand(['GET', 'bench:big']);
  for (let i = 0; i < 2_000; i++) socket.write(get);
  process.stdout.write('connected\n');
});
