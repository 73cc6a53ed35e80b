import PQueue from 'p-queue';
import { randomBytes } from 'node:crypto';
import type { Logger } from '@hbft/common/log.ts';
import { Ticker } from '@hbft/common/ticker.ts';
import { PAGE_BYTES, PAGE_WORDS } from '@hbft/common/guest/addressMap.ts';
import { assert } from '@hbft/common/errors.ts';
import type { BackupLossPolicy, TimingConfig } from '@hbft/common/constants.ts';
import { DELTA_CACHE_PAGES_DEFAULT, backupSilenceMs, mainThreadHungMs } from '@hbft/common/constants.ts';
import { GuestWorker } from '@hbft/common/hypervisor/guestWorker.ts';
import type { GuestWorkerReplication } from '@hbft/common/hypervisor/messages.ts';
import { StagingRing } from '@hbft/common/checkpoint/staging.ts';
import type { CapturedCheckpoint } from '@hbft/common/checkpoint/capture.ts';
import { DeltaCache, PageEncoder } from '@hbft/common/checkpoint/pageCodec.ts';
import type { MapperOptions } from '@hbft/common/tracking/mapper.ts';
import type { TrackerOptions } from '@hbft/common/tracking/baseTracker.ts';
import type { AuthConfig } from '@hbft/common/protocol/auth.ts';
import type { Frame } from '@hbft/common/protocol/frame.ts';
import { FrameKind } from '@hbft/common/protocol/kinds.ts';
import { protocolLimitsFor } from '@hbft/common/protocol/limits.ts';
import type { ReplicationMetrics } from '@hbft/common/http/metrics.ts';
import type { Readiness } from '@hbft/common/http/statusServer.ts';
import { LiveFeed } from '@hbft/common/http/liveFeed.ts';
import { PrimaryReplicator, type PrimaryEffect } from './replicator.ts';
import { PRIMARY_HEALTH_REASONS, primaryHealth, type PrimaryHealth, type PrimaryHealthReason } from './health.ts';
import { BackupLink } from './backupLink.ts';
import { nonZeroPages, RecordBuffers, sendPageStream, StreamAbortedError } from './checkpointFrames.ts';
import type { BulkConnection } from '@hbft/common/transport/bulk.ts';
import type { GuestTap } from '@hbft/common/net/guestTap.ts';
import { formatMac } from '@hbft/common/net/mac.ts';
import { guestFrameHeldBytesMax, guestFrameHeldFramesMax } from '@hbft/common/limits.ts';
import { FrameLedger, type FrameLedgerCounters, type FrameLedgerLimits } from './frameLedger.ts';

export type PrimaryBoot =
  | { kind: 'image'; image: Uint8Array; imageName: string; args: string }
  /** A promoted backup: RAM already holds the guest, `state` is the last applied checkpoint's. */
  | {
      kind: 'resume';
      memory: SharedArrayBuffer;
      state: Uint8Array;
      epoch: number;
      /** A worker already booted over `memory` and paused (the backup's standby), with its staging. */
      standby?: { worker: GuestWorker; staging: StagingRing };
    };

export interface PrimaryRuntimeOptions {
  generation: number;
  boot: PrimaryBoot;
  memoryBytes: number;
  guestImageHash: Buffer;
  /** Absent: no backup at all; the guest runs unprotected and its output flows. */
  backup?: { host: string; port: number; auth: AuthConfig };
  timing: TimingConfig;
  checkpointsInFlightMax: number;
  onBackupLoss: BackupLossPolicy;
  tracking: string;
  trackerOptions: TrackerOptions;
  mapper: MapperOptions;
  deltaCachePages?: number;
  logger: Logger;
  metrics: ReplicationMetrics;
  /** Called when this node learns it was deposed (the backup took over): it must stop. */
  onDeposed?: (reason: string) => void;
  /** Console output of the guest. */
  onConsole?: (text: string) => void;
  /** Progress of a full synchronisation, pages sent of the total (the CLI draws it on a terminal). */
  onFullSyncProgress?: (sentPages: number, totalPages: number) => void;
  /** The node's live view (a promoted backup passes its own, so the timeline continues). */
  feed?: LiveFeed;
  /**
   * The guest's packet NIC on a real network: frames from the TAP go to the guest at once, frames
   * from the guest leave through output commit (the frame ledger). The runtime owns it from start
   * and closes it when it stops. Without one the guest has no network: what it transmits is
   * committed like any output and then dropped.
   */
  guestTap?: GuestTap;
  /** Bounds of the frames output commit may hold (default: guestFrameHeldBytesMax and …FramesMax). */
  frameLedgerLimits?: FrameLedgerLimits;
}

interface Capture {
  checkpoint: CapturedCheckpoint;
  /** Sent (or being sent), so its staging is freed by the send. */
  queued: boolean;
  released: boolean;
}

/** How often the state machine's clock ticks. */
const TICK_MS = 1;

/**
 * The primary daemon's driver: everything the pure PrimaryReplicator decides is carried out here,
 * in the order it says (capture → resume → send → release on ack). The guest runs in a worker;
 * this thread is Domain0: sockets, timers, output buffer.
 */
export class PrimaryRuntime {
  readonly options: PrimaryRuntimeOptions;
  readonly logger: Logger;
  private readonly worker: GuestWorker;
  private readonly staging: StagingRing;
  private readonly replicator: PrimaryReplicator;
  private readonly link: BackupLink | null;
  private readonly sendQueue = new PQueue({ concurrency: 1 });
  private readonly captures = new Map<number, Capture>();
  private readonly ram: Int32Array;
  /** Encodes pages for the connected backup (its delta cache says what that backup holds). */
  private checkpointEncoder: PageEncoder | null = null;
  private recordBuffers: { bulk: BulkConnection; buffers: RecordBuffers } | null = null;
  private ticker: Ticker | null = null;
  private stopping = false;
  private started = false;
  /** A takeover's steps, in ms since start() was called (logged with the announcement). */
  private readonly takeoverStepsMs: Record<string, number> = {};
  private startCalledAtMs = 0;
  private readonly startedAtMs = performance.now();
  private lastInstret = 0;
  private fullSyncProgress: { sent: number; total: number } | null = null;
  readonly feed: LiveFeed;
  private lastMode: string = 'unprotected';
  /** Set when this node learns that a newer generation exists. */
  private fenced = false;
  private lastHealthReason: PrimaryHealthReason | null = null;
  /** Stall time already counted in the metrics. */
  private stallMsCounted = 0;
  /** Output commit: the guest's frames, held per epoch until that epoch is committed. */
  private readonly frames: FrameLedger;
  private readonly framesCounted: FrameLedgerCounters = { framesHeld: 0, framesReleased: 0, framesDropped: 0 };

  private constructor(options: PrimaryRuntimeOptions, worker: GuestWorker, staging: StagingRing, logger: Logger) {
    this.options = options;
    this.logger = logger;
    this.worker = worker;
    this.staging = staging;
    this.ram = new Int32Array(worker.memory);
    const firstEpoch = options.boot.kind === 'resume' ? options.boot.epoch : 0;
    this.replicator = new PrimaryReplicator({
      epochMs: options.timing.epochMs,
      heartbeatMs: options.timing.heartbeatMs,
      backupSilenceMs: backupSilenceMs(options.timing.failoverTimeoutMs),
      checkpointsInFlightMax: options.checkpointsInFlightMax,
      onBackupLoss: options.onBackupLoss,
      // See PrimaryReplicator: before its first checkpoint of this generation goes out, no other
      // node can take over with this generation's state. A promoted node and one without a backup
      // release output; one that booted holds it until its first sync unless told continue-unsafe.
      outputBeforeFirstCheckpoint:
        options.boot.kind === 'resume' || !options.backup || options.onBackupLoss === 'continue-unsafe' ? 'release' : 'hold',
      firstEpoch,
      nowMs: performance.now(),
    });
    this.frames = new FrameLedger(
      options.frameLedgerLimits ?? { heldBytesMax: guestFrameHeldBytesMax, heldFramesMax: guestFrameHeldFramesMax },
      firstEpoch - 1,
    );
    this.feed = options.feed ?? new LiveFeed(() => this.liveStatus());
    this.feed.setStatusSource(() => this.liveStatus());
    this.link = options.backup
      ? new BackupLink({
          host: options.backup.host,
          port: options.backup.port,
          auth: options.backup.auth,
          limits: protocolLimitsFor(options.memoryBytes),
          logger,
          memoryBytes: options.memoryBytes,
          guestImageHash: options.guestImageHash,
          generation: options.generation,
          instanceId: randomBytes(16),
          heartbeat: { heartbeatMs: options.timing.heartbeatMs, mainThreadHungMs: mainThreadHungMs(options.timing.failoverTimeoutMs) },
        })
      : null;
  }

  static async start(options: PrimaryRuntimeOptions): Promise<PrimaryRuntime> {
    const startCalledAtMs = performance.now();
    const logger = options.logger.child({ generation: options.generation });
    const boot = options.boot;
    let worker: GuestWorker;
    let staging: StagingRing;
    try {
      if (boot.kind === 'resume' && boot.standby !== undefined) {
        // The fast path of a takeover: the worker is already up; only CPU and devices are restored.
        ({ worker, staging } = boot.standby);
        await worker.activate(boot.state, boot.epoch);
      } else {
        staging = PrimaryRuntime.createStaging(options.memoryBytes);
        worker = await GuestWorker.start({
          memory: boot.kind === 'resume' ? boot.memory : new SharedArrayBuffer(options.memoryBytes),
          ...(boot.kind === 'image'
            ? { image: boot.image, imageName: boot.imageName, args: boot.args, mac: options.guestTap?.config.mac }
            : { state: boot.state }),
          replication: PrimaryRuntime.replicationConfig(options, staging, boot.kind === 'resume' ? boot.epoch : 0),
        });
      }
    } catch (error) {
      await options.guestTap?.close();
      throw error;
    }
    const runtime = new PrimaryRuntime(options, worker, staging, logger);
    runtime.startCalledAtMs = startCalledAtMs;
    runtime.step('guestRestored');
    try {
      await runtime.begin();
    } catch (error) {
      // Whatever failed, stop the worker and the link, or the process would stay up serving
      // nothing.
      await runtime.stop(`start failed: ${(error as Error).message}`);
      throw error;
    }
    return runtime;
  }

  static createStaging(memoryBytes: number): StagingRing {
    const stagingPages = memoryBytes / PAGE_BYTES;
    return new StagingRing(stagingPages, new SharedArrayBuffer(StagingRing.byteLengthFor(stagingPages)));
  }

  static replicationConfig(
    options: Pick<PrimaryRuntimeOptions, 'tracking' | 'trackerOptions' | 'mapper'>,
    staging: StagingRing,
    firstEpoch: number,
  ): GuestWorkerReplication {
    return {
      tracking: options.tracking,
      trackerOptions: options.trackerOptions,
      mapper: options.mapper,
      staging: staging.buffer,
      stagingPages: staging.capacityPages,
      firstEpoch,
    };
  }

  /**
   * A backup's standby: a guest worker booted over the replica's memory and paused, so that a
   * takeover does not wait for a thread and its modules to start.
   */
  static async startStandby(
    memory: SharedArrayBuffer,
    options: Pick<PrimaryRuntimeOptions, 'tracking' | 'trackerOptions' | 'mapper' | 'memoryBytes'>,
    warmUpImage?: Uint8Array,
  ): Promise<{ worker: GuestWorker; staging: StagingRing }> {
    const staging = PrimaryRuntime.createStaging(options.memoryBytes);
    const worker = await GuestWorker.start({
      memory,
      standby: true,
      replication: PrimaryRuntime.replicationConfig(options, staging, 0),
      warmUpImage,
    });
    return { worker, staging };
  }

  private async begin(): Promise<void> {
    const { worker, logger } = this;
    worker.on('captured', (checkpoint) => this.onCaptured(checkpoint));
    worker.on('frame', (bytes, epoch) => this.onGuestFrame(bytes, epoch));
    worker.on('console', (text) => this.options.onConsole?.(text));
    worker.on('halted', (exit) => logger.error({ exit }, 'the guest stopped'));
    worker.on('error', (error) => logger.error({ err: error.message }, 'guest worker error'));
    if (this.link) {
      this.link.on('ready', () => this.execute(this.replicator.onBackupReady(performance.now())));
      this.link.on('frame', (frame) => this.onBackupFrame(frame));
      this.link.on('lost', (reason) => this.execute(this.replicator.onBackupLost(reason, performance.now())));
      this.link.on('deposed', (reason) => this.onDeposed(reason));
      this.link.start();
    } else {
      logger.warn('no backup configured: the guest runs UNPROTECTED and its output is released without output commit');
    }
    const boot = this.options.boot;
    this.ticker = new Ticker(TICK_MS, (now) => this.execute(this.replicator.tick(now)), logger, {
      nextDeadlineMs: () => this.replicator.nextDeadlineMs(),
    });
    this.ticker.start();
    this.feed.start();
    // A resumed guest learns that its cable moved before it runs again (see announceGuest).
    // (A link going down empties the NIC's receive queue: frames from the TAP go in only after it.)
    this.step('serving');
    const mac = boot.kind === 'resume' && this.options.guestTap !== undefined ? await worker.command<number[]>('netLinkChange') : null;
    this.step('linkChanged');
    this.options.guestTap?.attach((frame) => worker.deliverFrame(frame));
    if (boot.kind === 'resume' && boot.standby !== undefined) worker.resume();
    this.step('guestResumed');
    if (mac !== null) this.announceGuest(Uint8Array.from(mac));
    this.options.metrics.setRole('primary');
    this.options.metrics.generation.set(this.options.generation);
    this.started = true;
    const tap = this.options.guestTap;
    logger.info(
      tap ? { tap: tap.config.tapName, guest: tap.config.address } : {},
      tap ? 'serving the guest on its own address' : 'running the guest (no network)',
    );
  }

  /** Notes when a step of the start was done (for the takeover's log line). */
  private step(name: string): void {
    this.takeoverStepsMs[name] = Math.round((performance.now() - this.startCalledAtMs) * 10) / 10;
  }

  /**
   * A takeover moved the guest to this node: gratuitous ARP for its address from this node's TAP,
   * at once, so that the bridge and the clients send its frames here (QEMU's announce_self, Cuju's
   * RARP). The guest itself was told of a link change (netLinkChange before it resumed): it
   * announces itself too and sends again what its clients have not acknowledged, without waiting
   * for its retransmission timers.
   */
  private announceGuest(mac: Uint8Array): void {
    const tap = this.options.guestTap;
    if (tap === undefined) return;
    // The MAC is the guest's own (its NIC's state): the one clients have in their ARP caches.
    const sent = tap.announce(mac);
    if (!Buffer.from(mac).equals(Buffer.from(tap.config.mac))) {
      this.logger.warn(
        { guestMac: formatMac(mac), configuredMac: formatMac(tap.config.mac) },
        "the guest's MAC is not the one --guest and --guest-ip give: announced the guest's",
      );
    }
    this.logger.info(
      {
        tap: tap.config.tapName,
        guest: tap.config.address,
        mac: formatMac(mac),
        sent,
        framesReplayed: tap.counters().framesReplayed,
        stepsMs: this.takeoverStepsMs,
      },
      'announced the guest (gratuitous ARP)',
    );
  }

  /**
   * A frame the guest transmitted in `epoch`: held in the ledger until that epoch commits (output
   * commit), or sent at once while the replicator releases output without acks and nothing held
   * waits before it. Without a TAP, frames are committed like any output and then dropped.
   */
  private onGuestFrame(bytes: Uint8Array, epoch: number): void {
    const now = performance.now();
    if (this.replicator.releasesWithoutAck && this.frames.releaseAtOnce()) this.transmit(bytes, now, now);
    else this.frames.hold(epoch, bytes, now);
  }

  /** Epoch `epoch` and every one before it are committed: their frames go out, in order. */
  private releaseFrames(epoch: number): void {
    const now = performance.now();
    for (const held of this.frames.commitThrough(epoch)) this.transmit(held.frame, held.heldAtMs, now);
  }

  /** Sends a committed frame; `heldAtMs`: when the guest transmitted it (output commit's delay). */
  private transmit(frame: Uint8Array, heldAtMs: number, nowMs: number): void {
    this.options.guestTap?.send(frame);
    const heldMs = nowMs - heldAtMs;
    this.options.metrics.outputLatencySeconds.observe(heldMs / 1000);
    this.feed.recordOutputLatency(heldMs);
  }

  /** The ledger's counters into the metrics (after each batch of effects, not per frame). */
  private publishFrameCounts(): void {
    const frames = this.frames;
    const metrics = this.options.metrics;
    for (const [outcome, key] of [
      ['held', 'framesHeld'],
      ['released', 'framesReleased'],
      ['dropped', 'framesDropped'],
    ] as const) {
      const delta = frames.counters[key] - this.framesCounted[key];
      if (delta > 0) {
        metrics.guestFrames.labels(outcome).inc(delta);
        this.framesCounted[key] = frames.counters[key];
      }
    }
    metrics.heldFrameBytes.set(frames.heldBytes);
    metrics.heldFrames.set(frames.heldFrames);
  }

  get guest(): GuestWorker {
    return this.worker;
  }

  private liveStatus() {
    const status = this.replicator.status(performance.now());
    return {
      role: 'primary' as const,
      generation: this.options.generation,
      mode: status.mode,
      epoch: status.epoch,
      heldOutputBytes: this.frames.heldBytes,
      heldFrames: this.frames.heldFrames,
      peerConnected: status.mode !== 'unprotected',
      msSincePeerHeard: status.msSinceBackupHeard,
    };
  }

  private onBackupFrame(frame: Frame): void {
    const now = performance.now();
    this.replicator.onBackupHeard(now);
    if (frame.kind === FrameKind.ACK && frame.meta.subject === 'checkpoint') {
      this.execute(this.replicator.onAck(frame.epoch, now));
      const metrics = this.options.metrics;
      for (const latencyMs of this.replicator.takeAckLatencies()) {
        metrics.ackLatencySeconds.observe(latencyMs / 1000);
        this.feed.recordAckLatency(latencyMs);
      }
    } else if (frame.kind === FrameKind.ACK) {
      this.logger.info('backup received the full synchronisation');
    }
  }

  private onCaptured(checkpoint: CapturedCheckpoint): void {
    const metrics = this.options.metrics;
    metrics.recordEpoch(checkpoint.tracking, checkpoint.mapping, checkpoint.pauseNs, checkpoint.instret - this.lastInstret);
    // A capture that waited for staging space held the guest too (the backup is behind).
    if (checkpoint.stallNs > 0) metrics.stallSeconds.inc(checkpoint.stallNs / 1e9);
    this.feed.recordEpoch({
      dirtyPages: checkpoint.tracking.dirtyPages,
      readFaults: checkpoint.tracking.readFaults,
      writeFaults: checkpoint.tracking.writeFaults,
      truePredictions: checkpoint.tracking.truePredictions,
      predicted: checkpoint.tracking.pagesPredicted,
      mapAccesses: checkpoint.mapping.accesses,
      mapHits: checkpoint.mapping.hits,
      pauseNs: checkpoint.pauseNs,
      instructions: checkpoint.instret - this.lastInstret,
    });
    this.lastInstret = checkpoint.instret;
    this.captures.set(checkpoint.epoch, { checkpoint, queued: false, released: false });
    this.logger.debug(
      { epoch: checkpoint.epoch, dirtyPages: checkpoint.pages.length, pauseUs: Math.round(checkpoint.pauseNs / 1000) },
      'epoch captured',
    );
    this.execute(this.replicator.onCaptured(checkpoint.epoch, performance.now()));
  }

  /** Carries out the state machine's effects, in order. */
  private execute(effects: PrimaryEffect[]): void {
    for (const effect of effects) {
      switch (effect.type) {
        case 'requestCapture':
          this.worker.requestCapture(effect.epoch);
          break;
        case 'pauseGuest':
          void this.worker.pause();
          break;
        case 'resumeGuest':
          this.worker.resume();
          break;
        case 'startFullSync':
          this.checkpointEncoder = new PageEncoder(new DeltaCache(this.options.deltaCachePages ?? DELTA_CACHE_PAGES_DEFAULT));
          this.queueSend('full synchronisation', () => this.sendFullSync());
          break;
        case 'sendCheckpoint': {
          const capture = this.captures.get(effect.epoch);
          if (capture === undefined) break;
          capture.queued = true;
          this.queueSend(`checkpoint ${effect.epoch}`, () => this.sendCheckpoint(capture));
          break;
        }
        case 'discardCheckpoint': {
          const capture = this.captures.get(effect.epoch);
          if (capture !== undefined && !capture.queued) this.releaseCapture(capture);
          break;
        }
        case 'sendHeartbeat':
          this.link?.control?.send(
            FrameKind.HEARTBEAT,
            { sentAtMs: Math.max(0, performance.now()) },
            { generation: this.options.generation },
          );
          break;
        case 'commit':
          this.releaseFrames(effect.epoch);
          break;
        case 'dropBackup':
          this.link?.drop(effect.reason);
          break;
        case 'log':
          this.logger[effect.level](effect.fields ?? {}, effect.message);
          break;
      }
    }
    const status = this.replicator.status(performance.now());
    if (status.mode !== this.lastMode) {
      if (status.mode === 'syncing') this.feed.event('backup-connected', 'backup connected: full synchronisation');
      else if (status.mode === 'protected') this.feed.event('protected', 'the guest is protected');
      else this.feed.event('backup-lost', 'backup lost: the guest is unprotected');
      this.lastMode = status.mode;
    }
    this.publishFrameCounts();
    const stalledMs = this.replicator.stalledMs;
    if (stalledMs > this.stallMsCounted) {
      this.options.metrics.stallSeconds.inc((stalledMs - this.stallMsCounted) / 1000);
      this.stallMsCounted = stalledMs;
    }
    this.options.metrics.checkpointsInFlight.set(status.checkpointsInFlight);
    this.options.metrics.peerConnected.set(status.mode === 'unprotected' ? 0 : 1);
    this.publishHealth();
  }

  /** Whether this node answers its clients now, and why (see health.ts). */
  health(): PrimaryHealth {
    return primaryHealth({ outputRelease: this.replicator.status(performance.now()).outputRelease, fenced: this.fenced });
  }

  /** The health gauges, when the reason changes: one of hbft_health{reason} is 1. */
  private publishHealth(): void {
    const health = this.health();
    if (health.reason === this.lastHealthReason) return;
    this.lastHealthReason = health.reason;
    for (const reason of PRIMARY_HEALTH_REASONS) this.options.metrics.health.labels(reason).set(reason === health.reason ? 1 : 0);
    this.options.metrics.answersClients.set(health.answersClients ? 1 : 0);
  }

  /**
   * Sends one stream after the ones queued before it. A send that fails for any reason costs the
   * backup (it is dropped and synchronised again), never the process: this node may hold the only
   * copy of the guest.
   */
  private queueSend(what: string, send: () => Promise<void>): void {
    this.sendQueue.add(send).catch((error: Error) => {
      this.logger.error(
        { err: error.message, stack: error.stack },
        `sending the ${what} failed; dropping the backup to synchronise it again`,
      );
      this.link?.drop(`sending the ${what} failed: ${error.message}`);
    });
  }

  private releaseCapture(capture: Capture): void {
    if (capture.released) return;
    capture.released = true;
    this.staging.release(capture.checkpoint.allocation);
    this.captures.delete(capture.checkpoint.epoch);
  }

  /** The record buffers of the current bulk connection (positions are per connection). */
  private recordBuffersFor(bulk: BulkConnection): RecordBuffers {
    if (this.recordBuffers?.bulk !== bulk) this.recordBuffers = { bulk, buffers: new RecordBuffers(() => bulk.bytesHandedOver) };
    return this.recordBuffers.buffers;
  }

  private async sendFullSync(): Promise<void> {
    const bulk = this.link?.bulk;
    if (!bulk) return;
    const started = performance.now();
    const pages = await nonZeroPages(this.ram);
    this.fullSyncProgress = { sent: 0, total: pages.length };
    let nextReport = 0.1;
    const logger = this.logger;
    try {
      const result = await sendPageStream(
        {
          kind: 'full-sync',
          epoch: 0,
          generation: this.options.generation,
          pages,
          source: { words: this.ram, wordIndex: (i) => wordIndexOf(pages, i) },
          memoryBytes: this.options.memoryBytes,
        },
        bulk,
        new PageEncoder(null),
        {
          buffers: this.recordBuffersFor(bulk),
          onProgress: (sent) => {
            this.fullSyncProgress = { sent, total: pages.length };
            const share = sent / Math.max(1, pages.length);
            this.options.onFullSyncProgress?.(sent, pages.length);
            if (share >= nextReport) {
              logger.info({ sent, total: pages.length }, `full synchronisation ${(share * 100).toFixed(0)}%`);
              nextReport += 0.1;
            }
          },
        },
      );
      this.options.metrics.checkpointBytes.labels('raw').inc(result.rawBytes);
      this.options.metrics.checkpointBytes.labels('wire').inc(result.wireBytes);
      logger.info(
        {
          pages: pages.length,
          memoryPages: this.ram.length / PAGE_WORDS,
          ms: Math.round(performance.now() - started),
          wireBytes: result.wireBytes,
        },
        'full synchronisation sent (zero pages skipped)',
      );
      // Every page has been read: the next capture makes the replica a state the guest was in.
      if (this.link?.bulk === bulk) this.replicator.onFullSyncSent();
    } catch (error) {
      if (!(error instanceof StreamAbortedError)) throw error;
      logger.warn({ reason: error.message }, 'full synchronisation interrupted');
    } finally {
      this.fullSyncProgress = null;
    }
  }

  private async sendCheckpoint(capture: Capture): Promise<void> {
    const checkpoint = capture.checkpoint;
    try {
      const bulk = this.link?.bulk;
      if (!bulk || capture.released) return;
      const encoder = this.checkpointEncoder;
      assert(encoder !== null, 'checkpoints are sent only after a full synchronisation began the backup session');
      const startSlot = checkpoint.allocation.start;
      const result = await sendPageStream(
        {
          kind: 'checkpoint',
          epoch: checkpoint.epoch,
          generation: this.options.generation,
          pages: checkpoint.pages,
          state: checkpoint.state,
          source: {
            words: new Int32Array(this.staging.bytes.buffer, this.staging.bytes.byteOffset),
            wordIndex: (i) => (startSlot + i) * PAGE_WORDS,
          },
          memoryBytes: this.options.memoryBytes,
        },
        bulk,
        encoder,
        { buffers: this.recordBuffersFor(bulk) },
      );
      this.options.metrics.checkpointBytes.labels('raw').inc(result.rawBytes);
      this.options.metrics.checkpointBytes.labels('wire').inc(result.wireBytes);
      this.feed.recordCheckpointBytes(result.rawBytes, result.wireBytes);
    } catch (error) {
      if (!(error instanceof StreamAbortedError)) throw error;
    } finally {
      // The socket has taken the bytes (or the connection is gone): staging is free again.
      this.releaseCapture(capture);
    }
  }

  private onDeposed(reason: string): void {
    this.logger.error({ reason }, 'DEPOSED: the backup has taken over; this node stops serving');
    this.feed.event('deposed', `deposed: ${reason}`);
    this.fenced = true;
    // Nothing this node holds may reach the network now, nor anything the guest sends from now on.
    const dropped = this.frames.fence();
    this.options.guestTap?.detach();
    this.logger.warn({ frames: dropped }, 'guest frames held for output commit dropped: this node transmits nothing more');
    this.publishHealth();
    this.options.onDeposed?.(reason);
  }

  readiness(): Readiness {
    const status = this.replicator.status(performance.now());
    const health = this.health();
    return {
      ready: !this.stopping && this.started && health.answersClients,
      reason: health.reason,
      // Why the backup cannot be reached, while it cannot (a refused handshake names the mismatch).
      detail: this.link?.lastFailure ?? null,
      role: 'primary',
      generation: this.options.generation,
      peerConnected: status.mode !== 'unprotected',
      replicationLagMs: status.msSinceLastAck,
      protection: status.mode,
      outputHeld: status.outputHeld,
      outputRelease: status.outputRelease,
      epoch: status.epoch,
      checkpointsInFlight: status.checkpointsInFlight,
      heldOutputBytes: this.frames.heldBytes,
      heldFrames: this.frames.heldFrames,
      stalled: status.stalled,
      fullSync: this.fullSyncProgress,
      guest: this.worker.status,
      uptimeMs: Math.round(performance.now() - this.startedAtMs),
    };
  }

  status() {
    return this.replicator.status(performance.now());
  }

  async stop(reason = 'shutting down'): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.ticker?.stop();
    this.feed.stop();
    const linkStopped = this.link?.stop(reason);
    this.sendQueue.clear();
    await this.worker.stop();
    await linkStopped;
    await this.options.guestTap?.close();
  }
}

/** The first RAM word of page `pages[i]`; sendPageStream asks only for `i` below the page count. */
function wordIndexOf(pages: Uint32Array, i: number): number {
  const page = pages[i];
  // The message is built only on failure: this runs once per page sent.
  if (page === undefined) assert(false, `page index ${i} is within the ${pages.length} pages sent`);
  return page * PAGE_WORDS;
}
