import { createLogger, type Logger } from '@hbft/common/log.ts';
import { StatusServer, type Readiness } from '@hbft/common/http/statusServer.ts';
import type { LiveFeed } from '@hbft/common/http/liveFeed.ts';
import type { ReplicationMetrics } from '@hbft/common/http/metrics.ts';

/**
 * What both daemons do around their work: a logger, the status server, and a clean stop on
 * SIGTERM/SIGINT (within a few seconds: sockets closed, ports freed, worker stopped).
 */
export async function runDaemon(options: {
  role: 'primary' | 'backup';
  logLevel: string;
  http: { host: string; port: number };
  /** The other node's status address, for the dashboard. */
  peerHttp?: string;
  metrics: ReplicationMetrics;
  /** Starts the daemon; it may call `shutdown` to stop itself (a deposed primary does). */
  start: (
    logger: Logger,
    shutdown: (reason: string, exitCode: number) => void,
  ) => Promise<{ readiness: () => Readiness; stop: (reason: string) => Promise<void>; feed: LiveFeed }>;
}): Promise<void> {
  const logger = createLogger({ role: options.role, level: options.logLevel });
  let requestStop: (reason: string, exitCode: number) => void = () => {};
  const daemon = await options.start(logger, (reason, exitCode) => requestStop(reason, exitCode));
  const status = new StatusServer({
    ...options.http,
    registry: options.metrics.registry,
    readiness: daemon.readiness,
    logger,
    feed: daemon.feed,
    peerHttp: options.peerHttp,
  });
  const address = await status.listen().catch(async (error: unknown) => {
    await daemon.stop(`start failed: ${(error as Error).message}`);
    throw error;
  });
  logger.info({ http: `http://${address.host}:${address.port}/` }, 'status and dashboard');
  options.metrics.watchEventLoop();
  installTestStallHook(logger);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string, exitCode = 0) => {
      if (stopping) return;
      stopping = true;
      process.exitCode = exitCode;
      logger.info({ signal }, 'stopping');
      const force = setTimeout(() => {
        logger.error('did not stop within 5 s; exiting');
        process.exit(1);
      }, 5_000);
      force.unref();
      Promise.all([daemon.stop(`received ${signal}`), status.close()]).then(
        () => resolve(),
        () => resolve(),
      );
    };
    requestStop = (reason, exitCode) => stop(reason, exitCode);
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * Test only: with HBFT_TEST_STALL_MAIN_MS=N in the environment, each SIGUSR2 keeps the main thread
 * busy for N ms (a synchronous loop; the process and its other threads stay alive), as a GC or a
 * burst of work would. The failover tests use it to show that a busy primary is not taken over.
 */
function installTestStallHook(logger: Logger): void {
  const stallMs = Number(process.env.HBFT_TEST_STALL_MAIN_MS ?? '');
  if (!(Number.isInteger(stallMs) && stallMs > 0 && stallMs <= 10_000)) return;
  logger.warn({ stallMs }, 'test hook: SIGUSR2 blocks the main thread (HBFT_TEST_STALL_MAIN_MS)');
  process.on('SIGUSR2', () => {
    const until = performance.now() + stallMs;
    while (performance.now() < until) {
      // busy on purpose
    }
    logger.warn({ stallMs }, 'test hook: main thread was blocked');
  });
}

/** Draws a full synchronisation's progress on one line of a terminal (nothing when stderr is not one). */
export function drawSyncProgress(sentPages: number, totalPages: number): void {
  if (!process.stderr.isTTY) return;
  const share = sentPages / Math.max(1, totalPages);
  process.stderr.write(`\rfull synchronisation: ${sentPages}/${totalPages} pages (${(share * 100).toFixed(0)}%)${share >= 1 ? '\n' : ''}`);
}
