// Proves that the toxic pipeline, driven by a fake clock, releases bytes in order, at the times and
// rates each toxic promises, and never holds more than its bounds when the source is fast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ToxicPipeline } from '@hbft/common/chaos/pipeline.ts';
import { seededRandom, type RandomSource } from '@hbft/common/chaos/random.ts';
import type { StreamItem } from '@hbft/common/chaos/stages.ts';
import { parseToxicCreate } from '@hbft/common/chaos/validate.ts';
import type { Toxic } from '@hbft/common/chaos/model.ts';
import { bandwidthQueueBytesMin, chaosReadyBytesMax } from '@hbft/common/limits.ts';

function toxic(type: string, attributes: Record<string, number>, extra: Record<string, unknown> = {}): Toxic {
  return parseToxicCreate({ type, attributes, ...extra });
}

interface Released {
  atMs: number;
  item: StreamItem;
}

interface Simulation {
  released: Released[];
  /** Largest `bufferedBytes` seen at any step. */
  bufferedBytesMax: number;
  /** When each input item was accepted by the pipeline (backpressure may delay it). */
  acceptedAtMs: number[];
}

/**
 * A fake driver: offers `inputs` at their times (only while the pipeline accepts, as the real driver
 * pauses the socket), takes everything due, and jumps the clock to the next event. The destination
 * is always writable.
 */
function simulate(
  pipeline: ToxicPipeline,
  inputs: { atMs: number; item: StreamItem }[],
  untilMs: number,
  onStep?: (nowMs: number) => void,
): Simulation {
  const released: Released[] = [];
  const acceptedAtMs: number[] = [];
  let bufferedBytesMax = 0;
  let next = 0;
  let nowMs = 0;
  while (nowMs <= untilMs) {
    onStep?.(nowMs);
    while (next < inputs.length && inputs[next]!.atMs <= nowMs && pipeline.canAccept()) {
      pipeline.push(inputs[next]!.item, nowMs);
      acceptedAtMs.push(nowMs);
      next++;
    }
    bufferedBytesMax = Math.max(bufferedBytesMax, pipeline.bufferedBytes);
    for (let item = pipeline.take(nowMs); item; item = pipeline.take(nowMs)) released.push({ atMs: nowMs, item });
    // After taking, room may have opened for input at this same instant.
    if (next < inputs.length && inputs[next]!.atMs <= nowMs && pipeline.canAccept()) continue;
    const inputAtMs = next < inputs.length ? Math.max(inputs[next]!.atMs, nowMs) : Infinity;
    const wakeAtMs = pipeline.wakeAtMs();
    const candidates = [wakeAtMs];
    // Input blocked by backpressure is retried when the pipeline next moves, not at its own time.
    if (inputAtMs > nowMs) candidates.push(inputAtMs);
    const nextMs = Math.min(...candidates);
    if (nextMs === Infinity) break;
    assert.ok(nextMs > nowMs, `the clock must move forward (now ${nowMs}, next ${nextMs})`);
    nowMs = nextMs;
  }
  return { released, bufferedBytesMax, acceptedAtMs };
}

function data(bytes: Buffer): StreamItem {
  return { kind: 'data', bytes };
}

function concatData(released: Released[]): Buffer {
  return Buffer.concat(released.flatMap((entry) => (entry.item.kind === 'data' ? [entry.item.bytes] : [])));
}

function randomBytes(random: RandomSource, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let index = 0; index < length; index++) bytes[index] = Math.floor(random() * 256);
  return bytes;
}

function pipelineWith(toxics: Toxic[], seed = 1): ToxicPipeline {
  const pipeline = new ToxicPipeline(seededRandom(seed));
  pipeline.setToxics(toxics, 0);
  return pipeline;
}

test('latency with jitter larger than the gaps between chunks never reorders bytes', () => {
  const random = seededRandom(7);
  const latencyMs = 20;
  const jitterMs = 15;
  const pipeline = pipelineWith([toxic('latency', { latency: latencyMs, jitter: jitterMs })]);
  const inputs = Array.from({ length: 300 }, (_, index) => ({
    atMs: index * 0.5,
    item: data(randomBytes(random, 1 + Math.floor(random() * 200))),
  }));
  const { released } = simulate(pipeline, inputs, 10_000);

  assert.deepEqual(concatData(released), Buffer.concat(inputs.map((input) => (input.item as { bytes: Buffer }).bytes)));
  assert.equal(released.length, inputs.length, 'latency keeps chunk boundaries');
  const delaysMs = released.map((entry, index) => entry.atMs - inputs[index]!.atMs);
  for (let index = 0; index < released.length; index++) {
    assert.ok(released[index]!.atMs >= (released[index - 1]?.atMs ?? 0), 'release times never go backwards');
    assert.ok(delaysMs[index]! >= latencyMs - jitterMs, `chunk ${index} released ${delaysMs[index]} ms after arrival`);
  }
  // The jitter really varies the delay (it is not a constant latency in disguise).
  assert.ok(Math.max(...delaysMs) - Math.min(...delaysMs) > jitterMs, 'delays spread over the jitter range');
});

test('bandwidth releases bytes at the configured rate in small slices, without an initial burst', () => {
  const rateKBps = 100; // 100 bytes per ms
  const pipeline = pipelineWith([toxic('bandwidth', { rate: rateKBps })]);
  const totalBytes = 200_000;
  const inputs = Array.from({ length: totalBytes / 10_000 }, () => ({ atMs: 0, item: data(Buffer.alloc(10_000, 1)) }));
  const { released } = simulate(pipeline, inputs, 10_000);

  assert.equal(concatData(released).length, totalBytes);
  const sliceBytesMax = Math.max(...released.map((entry) => (entry.item.kind === 'data' ? entry.item.bytes.length : 0)));
  assert.equal(sliceBytesMax, 1000, 'slices are 10 ms worth of bytes');
  // Bytes delivered by time t never exceed rate × t, and lag it by at most one slice.
  let deliveredBytes = 0;
  for (const entry of released) {
    deliveredBytes += entry.item.kind === 'data' ? entry.item.bytes.length : 0;
    assert.ok(deliveredBytes <= rateKBps * entry.atMs + 1e-6, `at ${entry.atMs} ms: ${deliveredBytes} bytes is over the rate`);
    assert.ok(deliveredBytes >= rateKBps * entry.atMs - 1000, `at ${entry.atMs} ms: ${deliveredBytes} bytes lags the rate`);
  }
  assert.equal(released.at(-1)!.atMs, totalBytes / rateKBps);
});

test('every toxic that was idle wakes for the first item pushed into it', () => {
  const toxics = [
    toxic('latency', { latency: 5 }),
    toxic('bandwidth', { rate: 1 }),
    toxic('slicer', { average_size: 1, delay: 1000 }),
    toxic('loss', { probability: 0 }),
    toxic('slow_close', { delay: 5 }),
  ];
  for (const single of toxics) {
    const pipeline = pipelineWith([single]);
    assert.equal(pipeline.take(0), null);
    assert.equal(pipeline.wakeAtMs(), Infinity, `${single.type}: nothing to do while empty`);
    pipeline.push(data(Buffer.from('xy')), 1);
    const item = pipeline.take(1);
    assert.ok(item !== null || pipeline.wakeAtMs() < Infinity, `${single.type}: a pushed item is released or scheduled`);
  }
});

test('bandwidth pushes back on a fast source instead of buffering it: 1 Mbit/s, 4 MB offered at once', () => {
  const pipeline = pipelineWith([toxic('bandwidth', { rate: 125 })]);
  const inputs = Array.from({ length: 64 }, () => ({ atMs: 0, item: data(Buffer.alloc(64 * 1024)) }));
  const { bufferedBytesMax, released, acceptedAtMs } = simulate(pipeline, inputs, 2000);

  assert.ok(bufferedBytesMax <= bandwidthQueueBytesMin + 64 * 1024, `held at most ${bufferedBytesMax} bytes`);
  assert.ok(acceptedAtMs.length < inputs.length, 'most of the input waited at the source');
  const deliveredBytes = concatData(released).length;
  assert.ok(Math.abs(deliveredBytes - 125 * 2000) <= 1250, `delivered ${deliveredBytes} bytes in 2 s at 125 KB/s`);
});

test('latency holds at most its bound of bytes when the source is faster than the delay allows', () => {
  const pipeline = pipelineWith([toxic('latency', { latency: 1000 })]);
  const inputs = Array.from({ length: 200 }, () => ({ atMs: 0, item: data(Buffer.alloc(64 * 1024)) }));
  const { bufferedBytesMax } = simulate(pipeline, inputs, 500);
  assert.ok(bufferedBytesMax <= 4 * 1024 * 1024 + 64 * 1024, `held ${bufferedBytesMax} bytes`);
});

test('slicer cuts data into average_size ± size_variation slices, delay µs apart, in order', () => {
  const random = seededRandom(3);
  const pipeline = pipelineWith([toxic('slicer', { average_size: 100, size_variation: 20, delay: 1000 })]);
  const input = randomBytes(random, 10_000);
  const { released } = simulate(pipeline, [{ atMs: 0, item: data(input) }], 10_000);

  assert.deepEqual(concatData(released), input);
  const sizes = released.map((entry) => (entry.item as { bytes: Buffer }).bytes.length);
  for (const size of sizes.slice(0, -1)) assert.ok(size >= 80 && size <= 120, `slice of ${size} bytes`);
  assert.ok(sizes.at(-1)! <= 120);
  const meanBytes = input.length / sizes.length;
  assert.ok(meanBytes > 90 && meanBytes < 110, `mean slice ${meanBytes} bytes`);
  for (let index = 1; index < released.length; index++) {
    assert.equal(released[index]!.atMs - released[index - 1]!.atMs, 1, 'slices are 1000 µs apart');
  }
});

test('limit_data passes exactly `bytes` bytes, then closes the connection and passes nothing more', () => {
  const pipeline = pipelineWith([toxic('limit_data', { bytes: 1000 })]);
  const inputs = [0, 1, 2].map((index) => ({ atMs: index, item: data(Buffer.alloc(600, index)) }));
  inputs.push({ atMs: 3, item: { kind: 'end' } });
  const { released } = simulate(pipeline, inputs, 100);

  assert.deepEqual(
    released.map((entry) => (entry.item.kind === 'data' ? entry.item.bytes.length : entry.item.kind)),
    [600, 400, 'close'],
  );
  assert.deepEqual(concatData(released), Buffer.concat([Buffer.alloc(600, 0), Buffer.alloc(400, 1)]));
  assert.equal(pipeline.isFinished, true);
});

test('loss delays the stream from a lost segment on by the retransmit time, keeping every byte in order', () => {
  const random = seededRandom(11);
  const pipeline = pipelineWith([toxic('loss', { probability: 0.02, retransmit: 200 })], 5);
  const inputs = Array.from({ length: 400 }, (_, index) => ({ atMs: index * 5, item: data(randomBytes(random, 1460)) }));
  const { released } = simulate(pipeline, inputs, 100_000);

  assert.deepEqual(concatData(released), Buffer.concat(inputs.map((input) => (input.item as { bytes: Buffer }).bytes)));
  const stalls = released.filter((entry, index) => index > 0 && entry.atMs - released[index - 1]!.atMs >= 150);
  // 400 segments at 2 %: about 8 losses; some fall inside an earlier stall and share it.
  assert.ok(stalls.length >= 2 && stalls.length <= 16, `${stalls.length} stalls`);
  for (let index = 1; index < released.length; index++) assert.ok(released[index]!.atMs >= released[index - 1]!.atMs);

  const lossless = simulate(pipelineWith([toxic('loss', { probability: 0 })]), inputs, 100_000);
  assert.ok(
    lossless.released.every((entry, index) => entry.atMs === inputs[index]!.atMs),
    'probability 0 never delays',
  );
});

test('timeout holds everything and closes the connection when it expires', () => {
  const pipeline = pipelineWith([toxic('timeout', { timeout: 500 })]);
  const { released } = simulate(pipeline, [{ atMs: 10, item: data(Buffer.from('held')) }], 10_000);
  assert.deepEqual(released, [{ atMs: 500, item: { kind: 'close' } }]);
});

test('removing a holding toxic releases what it held, in order, ahead of newer bytes', () => {
  const timeout = toxic('timeout', { timeout: 0 });
  const pipeline = pipelineWith([timeout]);
  pipeline.push(data(Buffer.from('one ')), 0);
  pipeline.push(data(Buffer.from('two ')), 1);
  assert.equal(pipeline.take(100), null);
  assert.equal(pipeline.wakeAtMs(), Infinity, 'timeout 0 never closes');
  pipeline.setToxics([], 200);
  pipeline.push(data(Buffer.from('three')), 200);
  const out: string[] = [];
  for (let item = pipeline.take(200); item; item = pipeline.take(200)) out.push((item as { bytes: Buffer }).bytes.toString());
  assert.equal(out.join(''), 'one two three');
});

test('removing latency mid-flight hands its queue to the next toxic without loss or reordering', () => {
  const latency = toxic('latency', { latency: 100 });
  const slicer = toxic('slicer', { average_size: 3, delay: 0 });
  const pipeline = pipelineWith([latency, slicer]);
  pipeline.push(data(Buffer.from('abcdef')), 0);
  pipeline.push(data(Buffer.from('ghijkl')), 10);
  assert.equal(pipeline.take(50), null, 'still delayed');
  pipeline.setToxics([slicer], 50);
  const out: string[] = [];
  for (let item = pipeline.take(50); item; item = pipeline.take(50)) out.push((item as { bytes: Buffer }).bytes.toString());
  assert.deepEqual(out, ['abc', 'def', 'ghi', 'jkl']);
});

test('reset_peer passes data until its timeout, then resets ahead of anything still queued', () => {
  const pipeline = pipelineWith([toxic('reset_peer', { timeout: 100 }), toxic('latency', { latency: 80 })]);
  const inputs = [
    { atMs: 0, item: data(Buffer.from('early')) },
    { atMs: 50, item: data(Buffer.from('late')) },
  ];
  const { released } = simulate(pipeline, inputs, 1000);
  assert.deepEqual(released, [
    { atMs: 80, item: data(Buffer.from('early')) },
    { atMs: 100, item: { kind: 'reset' } },
  ]);
});

test('slow_close passes data at once and delays only the close', () => {
  const pipeline = pipelineWith([toxic('slow_close', { delay: 300 })]);
  const { released } = simulate(
    pipeline,
    [
      { atMs: 0, item: data(Buffer.from('x')) },
      { atMs: 5, item: { kind: 'end' } },
    ],
    1000,
  );
  assert.deepEqual(
    released.map((entry) => [entry.atMs, entry.item.kind]),
    [
      [0, 'data'],
      [305, 'end'],
    ],
  );
});

test('a stalled (held) pipeline passes nothing and wants no input; released, it delivers all in order', () => {
  const pipeline = pipelineWith([toxic('latency', { latency: 10 })]);
  pipeline.push(data(Buffer.from('before ')), 0);
  pipeline.setHeld(true);
  assert.equal(pipeline.canAccept(), false);
  assert.equal(pipeline.take(1000), null);
  assert.equal(pipeline.wakeAtMs(), Infinity);
  pipeline.setHeld(false);
  pipeline.push(data(Buffer.from('after')), 1000);
  assert.equal((pipeline.take(1000) as { bytes: Buffer }).bytes.toString(), 'before ');
  assert.equal(pipeline.take(1000), null);
  assert.equal((pipeline.take(1010) as { bytes: Buffer }).bytes.toString(), 'after');
});

test('toxicity is drawn once per connection: 0 never applies, 1 always, 0.3 on about 30 % of connections', () => {
  const random = seededRandom(42);
  const count = (toxicity: number) => {
    let applied = 0;
    for (let index = 0; index < 2000; index++) {
      const pipeline = new ToxicPipeline(random);
      pipeline.setToxics([toxic('latency', { latency: 5 }, { toxicity })], 0);
      applied += pipeline.activeToxicNames.length;
    }
    return applied / 2000;
  };
  assert.equal(count(0), 0);
  assert.equal(count(1), 1);
  const share = count(0.3);
  assert.ok(share > 0.26 && share < 0.34, `applied to ${share} of connections`);
});

test('with no toxics the pipeline passes chunks straight through and bounds its ready queue', () => {
  const pipeline = new ToxicPipeline(seededRandom(1));
  let pushedBytes = 0;
  while (pipeline.canAccept()) {
    pipeline.push(data(Buffer.alloc(64 * 1024)), 0);
    pushedBytes += 64 * 1024;
  }
  assert.ok(pushedBytes <= chaosReadyBytesMax + 64 * 1024);
  assert.equal((pipeline.take(0) as { bytes: Buffer }).bytes.length, 64 * 1024);
});
