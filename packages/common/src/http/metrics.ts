import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MapperStats } from '../tracking/mapper.ts';
import type { EpochTrackingStats } from '../tracking/tracker.ts';

/** Sampling interval of the event-loop delay monitor. */
const EVENT_LOOP_RESOLUTION_MS = 10;

/**
 * The replication metrics of one daemon, in its own registry (no global state). Names follow
 * Prometheus conventions: `hbft_` prefix, base units, `_total` for counters.
 */
export class ReplicationMetrics {
  readonly registry = new Registry();
  readonly role = new Gauge({
    name: 'hbft_role',
    help: 'Current role (1 for the active one)',
    labelNames: ['role'],
    registers: [this.registry],
  });
  readonly generation = new Gauge({
    name: 'hbft_generation',
    help: 'Replication generation (rises at each failover)',
    registers: [this.registry],
  });
  readonly epochs = new Counter({ name: 'hbft_epochs_total', help: 'Epochs ended (checkpoints captured)', registers: [this.registry] });
  readonly dirtyPages = new Counter({ name: 'hbft_dirty_pages_total', help: 'Dirty pages captured', registers: [this.registry] });
  readonly faults = new Counter({
    name: 'hbft_tracking_faults_total',
    help: 'Tracking VM exits by kind',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly predictions = new Counter({
    name: 'hbft_predicted_pages_total',
    help: 'Histase predictions by outcome',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly recall = new Gauge({
    name: 'hbft_prediction_recall_ratio',
    help: 'Last epoch: true predictions / dirty pages',
    registers: [this.registry],
  });
  readonly precision = new Gauge({
    name: 'hbft_prediction_precision_ratio',
    help: 'Last epoch: true predictions / predictions',
    registers: [this.registry],
  });
  readonly mapAccesses = new Counter({
    name: 'hbft_mapper_accesses_total',
    help: 'Dirty pages reached through the mapper',
    registers: [this.registry],
  });
  readonly mapHits = new Counter({ name: 'hbft_mapper_hits_total', help: 'Mapper accesses already mapped', registers: [this.registry] });
  readonly mapOperations = new Counter({
    name: 'hbft_mapper_map_operations_total',
    help: 'Mapper map operations',
    registers: [this.registry],
  });
  readonly checkpointBytes = new Counter({
    name: 'hbft_checkpoint_bytes_total',
    help: 'Checkpoint page bytes, raw and on the wire',
    labelNames: ['form'],
    registers: [this.registry],
  });
  readonly pauseSeconds = new Histogram({
    name: 'hbft_pause_seconds',
    help: 'Guest pause per epoch (capture into staging)',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [this.registry],
  });
  readonly ackLatencySeconds = new Histogram({
    name: 'hbft_ack_latency_seconds',
    help: 'Checkpoint capture to backup acknowledgement',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly outputLatencySeconds = new Histogram({
    name: 'hbft_output_latency_seconds',
    help: 'Time a guest frame was held before release (output commit)',
    buckets: [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly guestFrames = new Counter({
    name: 'hbft_guest_frames_total',
    help: 'Frames the guest transmitted, by what output commit did with them (held, released, dropped beyond the bound or when fenced)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly heldFrameBytes = new Gauge({
    name: 'hbft_held_frame_bytes',
    help: 'Bytes of guest frames held for output commit',
    registers: [this.registry],
  });
  readonly heldFrames = new Gauge({
    name: 'hbft_held_frames',
    help: 'Guest frames held for output commit',
    registers: [this.registry],
  });
  readonly checkpointsInFlight = new Gauge({
    name: 'hbft_checkpoints_in_flight',
    help: 'Checkpoints sent and not yet acknowledged',
    registers: [this.registry],
  });
  readonly stallSeconds = new Counter({
    name: 'hbft_stall_seconds_total',
    help: 'Time the guest was stalled waiting for the backup',
    registers: [this.registry],
  });
  readonly heartbeatMisses = new Counter({
    name: 'hbft_heartbeat_misses_total',
    help: 'Heartbeat intervals that passed without a frame from the peer',
    registers: [this.registry],
  });
  readonly failovers = new Counter({
    name: 'hbft_failovers_total',
    help: 'Promotions of this node from backup to primary',
    registers: [this.registry],
  });
  readonly health = new Gauge({
    name: 'hbft_health',
    help: '1 for why the primary answers clients or not: protected, syncing, holding, unprotected, fenced',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly answersClients = new Gauge({
    name: 'hbft_answers_clients',
    help: '1 while the node answers its clients (/readyz ready)',
    registers: [this.registry],
  });
  readonly peerConnected = new Gauge({
    name: 'hbft_peer_connected',
    help: '1 while the replication peer is connected',
    registers: [this.registry],
  });
  readonly replicationLagSeconds = new Gauge({
    name: 'hbft_replication_lag_seconds',
    help: 'Age of the newest checkpoint the backup has applied',
    registers: [this.registry],
  });
  readonly guestInstructions = new Counter({
    name: 'hbft_guest_instructions_total',
    help: 'Guest instructions retired',
    registers: [this.registry],
  });
  private eventLoop: IntervalHistogram | null = null;
  readonly eventLoopDelaySeconds = new Gauge({
    name: 'hbft_event_loop_delay_seconds',
    help: "How late the main thread's event loop ran a timer, since the daemon started serving (quantile 1 is the maximum)",
    labelNames: ['quantile'],
    registers: [this.registry],
    collect: () => this.collectEventLoopDelay(),
  });

  /**
   * Starts measuring the main thread's event-loop delay (perf_hooks.monitorEventLoopDelay, never
   * reset, so a scrape reports everything since the daemon began serving; start-up is left out).
   */
  watchEventLoop(): void {
    if (this.eventLoop !== null) return;
    this.eventLoop = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
    this.eventLoop.enable();
  }

  private collectEventLoopDelay(): void {
    const histogram = this.eventLoop;
    if (histogram === null || histogram.count === 0) return;
    // The histogram holds the time between wake-ups of a timer of EVENT_LOOP_RESOLUTION_MS: its
    // delay is what exceeds that.
    const delaySeconds = (ns: number) => Math.max(0, ns / 1e6 - EVENT_LOOP_RESOLUTION_MS) / 1000;
    this.eventLoopDelaySeconds.labels('0.5').set(delaySeconds(histogram.percentile(50)));
    this.eventLoopDelaySeconds.labels('0.99').set(delaySeconds(histogram.percentile(99)));
    this.eventLoopDelaySeconds.labels('1').set(delaySeconds(histogram.max));
  }

  constructor(role: 'primary' | 'backup', generation: number) {
    this.setRole(role);
    this.generation.set(generation);
  }

  setRole(role: 'primary' | 'backup'): void {
    this.role.labels('primary').set(role === 'primary' ? 1 : 0);
    this.role.labels('backup').set(role === 'backup' ? 1 : 0);
  }

  /** Accounts one captured epoch. */
  recordEpoch(tracking: EpochTrackingStats, mapping: MapperStats, pauseNs: number, instructions: number): void {
    this.epochs.inc();
    this.dirtyPages.inc(tracking.dirtyPages);
    this.faults.labels('read').inc(tracking.readFaults);
    this.faults.labels('write').inc(tracking.writeFaults);
    this.faults.labels('pml_log_full').inc(tracking.logFullExits);
    this.predictions.labels('true').inc(tracking.truePredictions);
    this.predictions.labels('false_dirty').inc(tracking.falseDirty);
    if (!Number.isNaN(tracking.recall)) this.recall.set(tracking.recall);
    if (!Number.isNaN(tracking.precision)) this.precision.set(tracking.precision);
    this.mapAccesses.inc(mapping.accesses);
    this.mapHits.inc(mapping.hits);
    this.mapOperations.inc(mapping.mapOperations);
    this.pauseSeconds.observe(pauseNs / 1e9);
    if (instructions > 0) this.guestInstructions.inc(instructions);
  }
}
