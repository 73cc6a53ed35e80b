// XOR-RLE (what hbft sends) against zlib deflate level 1 on the dirty pages of real epochs: how many
// bytes each leaves and how fast deflate runs on one core. Run: node --import tsx scripts/compare-compressors.ts
import { readFileSync } from 'node:fs';
import { deflateRawSync, constants } from 'node:zlib';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { BENCH_WORKLOAD_ARGS } from '@hbft/common/bench/guestLoad.ts';
import { createTracker, trackMemory } from '@hbft/common/tracking/strategies.ts';
import { DeltaCache, PageEncoder, PageRecordWriter } from '@hbft/common/checkpoint/pageCodec.ts';
for (const workload of ['cfp', 'cint', 'jbb', 'web', 'kv'] as const) {
  const m = new Machine({ memoryBytes: 128 * 1024 * 1024, args: BENCH_WORKLOAD_ARGS[workload] });
  m.loadElf(readFileSync(resolveGuestImage(workload)));
  while (m.cpu.instret < 80_000_000) m.run(1_000_000);
  const tracker = trackMemory(m.memory, createTracker('rfr'));
  const ram32 = new Int32Array(m.memory.buffer);
  const ram8 = new Uint8Array(m.memory.buffer);
  const enc = new PageEncoder(new DeltaCache(65536));
  // prime the cache with every page, as after a full sync
  const prime = new PageRecordWriter(4104 * 1024);
  for (let p = 0; p < m.memory.pageCount; p += 1) {
    if (prime.free < 4104) prime.reset();
    enc.encode(p, ram32, p * 1024, prime);
  }
  enc.resetCounts();
  let raw = 0,
    xorBytes = 0,
    zRaw = 0,
    zMs = 0,
    pages = 0;
  const prev = new Uint8Array(m.memory.buffer.byteLength);
  prev.set(ram8);
  for (let epoch = 0; epoch < 15; epoch++) {
    const end = performance.now() + 20;
    while (performance.now() < end) m.run(20_000);
    const r = tracker.endEpoch();
    const w = new PageRecordWriter(r.dirtyPages.length * 4104 + 8);
    for (const p of r.dirtyPages) enc.encode(p, ram32, p * 1024, w);
    xorBytes += w.offset;
    const t = performance.now();
    for (const p of r.dirtyPages)
      zRaw += deflateRawSync(ram8.subarray(p * 4096, p * 4096 + 4096), { level: 1, strategy: constants.Z_DEFAULT_STRATEGY }).length;
    zMs += performance.now() - t;
    raw += r.dirtyPages.length * 4096;
    pages += r.dirtyPages.length;
    tracker.beginEpoch();
  }
  console.log(
    `${workload}: ${pages} pages; XOR-RLE ${((100 * xorBytes) / raw).toFixed(1)} % of raw; deflate-1 of the raw page ${((100 * zRaw) / raw).toFixed(1)} % at ${(raw / 1e6 / (zMs / 1000)).toFixed(0)} MB/s on one core`,
  );
}
