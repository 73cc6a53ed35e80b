// Proves that command lines split and replies print the way redis-cli does them, that typed and
// plain reply parsing agree, and that a plain client loses its in-flight command at a failover
// (reported as possibly run) and then reconnects to the new node, unlike a session.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReply, formatReplyRaw, quoteBulk, splitCommandLine } from '@hbft/common/session/redisCli.ts';
import { PlainClient } from '@hbft/common/session/plainClient.ts';
import { parseReply, parseTypedReply, type TypedReply } from '@hbft/common/session/resp.ts';
import { FakeCluster } from './fakeServer.ts';

const clusters: FakeCluster[] = [];
after(async () => {
  for (const cluster of clusters) await cluster.close();
});

test('command lines split like redis-cli', () => {
  assert.deepEqual(splitCommandLine('  SET  k  v '), { args: ['SET', 'k', 'v'] });
  assert.deepEqual(splitCommandLine(`SET "a b" 'c d'`), { args: ['SET', 'a b', 'c d'] });
  assert.deepEqual(splitCommandLine('ECHO "\\x41\\n\\"q\\""'), { args: ['ECHO', 'A\n"q"'] });
  assert.deepEqual(splitCommandLine(`ECHO 'it\\'s' ""`), { args: ['ECHO', "it's", ''] });
  assert.deepEqual(splitCommandLine(''), { args: [] });
  assert.ok('error' in splitCommandLine('ECHO "open'));
  assert.ok('error' in splitCommandLine(`ECHO 'open`));
  assert.ok('error' in splitCommandLine('ECHO "a"b'));
});

test('replies print in redis-cli terminal and raw forms', () => {
  const reply: TypedReply = {
    type: 'array',
    items: [
      { type: 'bulk', text: 'a"b\n' },
      { type: 'array', items: Array.from({ length: 10 }, (_, value) => ({ type: 'integer' as const, value })) },
      { type: 'nil' },
      { type: 'array', items: [] },
    ],
  };
  const lines = formatReply(reply).split('\n');
  assert.equal(lines[0], '1) "a\\"b\\n"');
  assert.equal(lines[1], '2)  1) (integer) 0');
  assert.equal(lines[10], '   10) (integer) 9');
  assert.equal(lines[11], '3) (nil)');
  assert.equal(lines[12], '4) (empty array)');
  assert.equal(formatReply({ type: 'status', text: 'OK' }), 'OK');
  assert.equal(formatReply({ type: 'error', text: 'ERR x' }), '(error) ERR x');
  assert.equal(quoteBulk('\x00\xff'), '"\\x00\\xff"');
  assert.equal(formatReplyRaw(reply), `a"b\n\n${[...Array(10).keys()].join('\n')}\n\n`);
  assert.equal(formatReplyRaw({ type: 'integer', value: -3 }), '-3');
});

test('typed and plain parsing read the same replies', () => {
  const bytes = Buffer.from('*5\r\n+OK\r\n-ERR no\r\n:-12\r\n$3\r\nabc\r\n*-1\r\n');
  const typed = parseTypedReply(bytes);
  const plain = parseReply(bytes);
  assert.ok(typeof typed === 'object' && 'value' in typed && typeof plain === 'object' && 'value' in plain);
  assert.equal(typed.length, bytes.length);
  assert.equal(plain.length, bytes.length);
  assert.deepEqual(typed.value, {
    type: 'array',
    items: [
      { type: 'status', text: 'OK' },
      { type: 'error', text: 'ERR no' },
      { type: 'integer', value: -12 },
      { type: 'bulk', text: 'abc' },
      { type: 'nil' },
    ],
  });
  assert.equal(parseTypedReply(bytes.subarray(0, 20)), 'incomplete');
});

test('a plain client loses its in-flight command at a failover, then reconnects', { timeout: 20_000 }, async () => {
  const cluster = await FakeCluster.start({ epochMs: 0 });
  clusters.push(cluster);
  /** Commits (the backup acknowledging) until the request settles. */
  const committing = async <T>(request: Promise<T>): Promise<T> => {
    let settled = false;
    request.then(
      () => (settled = true),
      () => (settled = true),
    );
    while (!settled) {
      cluster.commit();
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return request;
  };
  const client = new PlainClient({ servers: cluster.addresses, probeTimeoutMs: 1000 });
  assert.deepEqual(await committing(client.request(['INCR', 'n'])), { type: 'integer', value: 1 });
  assert.equal(client.address, cluster.addresses[0]);
  // An INCR is applied but not committed when the node dies: the plain client cannot know.
  const lost = client.request(['INCR', 'n']);
  while (cluster.live.store.get('n') !== '2') await new Promise((resolve) => setTimeout(resolve, 2));
  await cluster.failover();
  await assert.rejects(lost, { code: 'E_PLAIN_CONNECTION', message: /may or may not have run/ });
  assert.deepEqual(
    await committing(client.request(['INCR', 'n'])),
    { type: 'integer', value: 2 },
    'the lost INCR went with the uncommitted state',
  );
  assert.equal(client.address, cluster.addresses[1]);
  client.close();
});
