// Proves, with the primary's runtime running the kvnet guest in its worker (the real output path:
// packet NIC → frame ledger → TAP), that under --on-backup-loss hold with no backup ever reachable
// nothing the guest transmits leaves the node, and what it holds stays within the ledger's bounds
// however much the network makes the guest answer: frames beyond are dropped and counted, and the
// process's live memory does not grow with them. (The byte-stream model's "client that never reads" test,
// on the path that replaced it.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { silentLogger } from '@hbft/common/log.ts';
import { ReplicationMetrics } from '@hbft/common/http/metrics.ts';
import type { GuestTap } from '@hbft/common/net/guestTap.ts';
import { PrimaryRuntime } from '@hbft/primary/runtime.ts';
import { ETHERTYPE_ARP, arpPacket, ethernetFrame, ipv4, macBytes } from '../helpers/ethernetClient.ts';
import { freePorts } from '../helpers/cluster.ts';

const GUEST_IP = '10.0.0.2';
const HELD_BYTES_MAX = 4 * 1024;
const BROADCAST = macBytes('ff:ff:ff:ff:ff:ff');

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

/** This thread's live memory (the ledger and every frame it holds live here), after a full GC. */
function liveBytes(): number {
  collectGarbage();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** The part of a GuestTap the runtime uses: frames in through `deliver`, frames out counted. */
class FakeTap {
  readonly config = { tapName: 'fake0', address: `${GUEST_IP}/24`, ipv4: ipv4(GUEST_IP), mac: macBytes('02:48:42:46:54:02') };
  deliver: ((frame: Uint8Array) => void) | null = null;
  sent = 0;
  attach(deliver: (frame: Uint8Array) => void): void {
    this.deliver = deliver;
  }
  detach(): void {
    this.deliver = null;
  }
  send(): boolean {
    this.sent++;
    return true;
  }
  announce(): boolean {
    return true;
  }
  counters() {
    return { framesReplayed: 0 };
  }
  async close(): Promise<void> {}
}

/** An ARP request for the guest's address from client `n` (each one asks for a reply). */
function arpRequest(n: number): Uint8Array {
  const mac = Uint8Array.of(0x02, 0, 0, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const sender = ipv4('10.0.0.0') + 10 + (n % 200);
  return ethernetFrame(BROADCAST, mac, ETHERTYPE_ARP, arpPacket(1, mac, sender, new Uint8Array(6), ipv4(GUEST_IP)));
}

async function metric(metrics: ReplicationMetrics, name: string, outcome?: string): Promise<number> {
  const found = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = found?.values.find((v) => outcome === undefined || v.labels.outcome === outcome);
  return Number(value?.value ?? 0);
}

test('under hold with no backup, the guest answering a flood holds at most the ledger bound, sends nothing, and memory stays flat', {
  timeout: 120_000,
}, async () => {
  const [unreachable] = await freePorts(1);
  const tap = new FakeTap();
  const metrics = new ReplicationMetrics('primary', 1);
  const runtime = await PrimaryRuntime.start({
    generation: 1,
    boot: { kind: 'image', image: readFileSync(resolveGuestImage('kvnet')), imageName: 'kvnet', args: `ip=${GUEST_IP}/24` },
    memoryBytes: 64 * 1024 * 1024,
    guestImageHash: Buffer.alloc(32),
    // A backup is configured (so this primary holds until one has synchronised) but never answers.
    backup: { host: '127.0.0.1', port: unreachable!, auth: { mode: 'insecure' } },
    timing: { epochMs: 20, heartbeatMs: 20, failoverTimeoutMs: 1000 },
    checkpointsInFlightMax: 2,
    onBackupLoss: 'hold',
    tracking: 'wfp',
    trackerOptions: {},
    mapper: {},
    logger: silentLogger(),
    metrics,
    guestTap: tap as unknown as GuestTap,
    frameLedgerLimits: { heldBytesMax: HELD_BYTES_MAX, heldFramesMax: 10_000 },
  });
  try {
    assert.equal(runtime.readiness().outputRelease, 'holding');
    assert.ok(tap.deliver !== null, 'the runtime attached the TAP');
    let sent = 0;
    /** Sends `count` requests, 100 at a time (the NIC queues 256), letting the guest answer. */
    const flood = async (count: number) => {
      for (let end = sent + count; sent < end; ) {
        for (let i = 0; i < 100; i++) tap.deliver?.(arpRequest(sent++));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    // Until the guest answers (it boots first) and the bound is reached.
    const deadline = performance.now() + 60_000;
    while ((await metric(metrics, 'hbft_guest_frames_total', 'dropped')) === 0) {
      assert.ok(performance.now() < deadline, `the bound was never reached (${runtime.readiness().heldFrames} frames held)`);
      await flood(500);
    }
    const rssBefore = process.memoryUsage().rss;
    const liveBefore = liveBytes();
    const droppedBefore = await metric(metrics, 'hbft_guest_frames_total', 'dropped');
    await flood(20_000);
    // Answers arrive after the requests: give the guest a moment to finish.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const readiness = runtime.readiness();
    const dropped = await metric(metrics, 'hbft_guest_frames_total', 'dropped');
    const held = await metric(metrics, 'hbft_guest_frames_total', 'held');
    const rssGrowthBytes = process.memoryUsage().rss - rssBefore;
    const liveGrowthBytes = liveBytes() - liveBefore;
    console.log(
      `requests ${sent}, frames held ${held} (now ${readiness.heldFrames}, ${readiness.heldOutputBytes} bytes), dropped ${dropped}, ` +
        `live memory growth ${(liveGrowthBytes / 1024).toFixed(0)} KiB, RSS growth ${(rssGrowthBytes / 2 ** 20).toFixed(1)} MiB`,
    );
    assert.equal(tap.sent, 0, 'nothing left the node');
    assert.ok((readiness.heldOutputBytes as number) <= HELD_BYTES_MAX, 'held bytes within the bound');
    assert.equal(await metric(metrics, 'hbft_held_frame_bytes'), readiness.heldOutputBytes);
    // The guest answers what its NIC queue could take (it drops the rest of a flood itself).
    assert.ok(dropped - droppedBefore > 1_000, 'answers beyond the bound were dropped and counted, not queued');
    assert.equal(held, readiness.heldFrames, 'every frame held is still held: none was released');
    // Each frame held costs its bytes and a few objects (some 200 bytes); thousands kept would
    // show here as megabytes. Dropped ones leave nothing behind.
    assert.ok(liveGrowthBytes < 512 * 1024, `live memory grew ${liveGrowthBytes} bytes`);
    // RSS moves with the heap's and the worker's ordinary churn; this only catches gross growth.
    assert.ok(rssGrowthBytes < 64 * 1024 * 1024, `RSS grew ${rssGrowthBytes} bytes`);
  } finally {
    await runtime.stop('test done');
  }
});
