import assert from 'node:assert/strict';
import type { SeededRandom } from '@hbft/common/random.ts';
import { PAIR_FAILOVER_TIMEOUT_MS, type Pair, type Site } from './pair.ts';

/**
 * A seeded schedule of faults for a Pair (Jepsen's nemesis): kills of the primary or the backup,
 * partitions of the replication link through its chaos proxies (both directions; `cut` closes the
 * connections, which the backup takes for a crashed primary after the closed-connection grace;
 * `stall` holds them silent until the failover timeout), each healed before the next event. The failover tests
 * share it, whatever the guest and the clients.
 *
 * `protectedFirst`: the event waits until the backup holds a checkpoint (else it may strike
 * mid-resync, during a re-protection). `kill-then-partition` kills the primary and cuts or stalls
 * the link `gapMs` later, while the survivor takes over or re-protects to the restarted node.
 */
export type NemesisEvent =
  | { kind: 'kill-primary' | 'kill-backup'; afterMs: number; protectedFirst: boolean }
  | { kind: 'partition'; mode: 'cut' | 'stall'; afterMs: number; forMs: number; protectedFirst: boolean }
  | { kind: 'kill-then-partition'; mode: 'cut' | 'stall'; afterMs: number; gapMs: number; forMs: number; protectedFirst: true };

export interface ScheduleOptions {
  /** Draw kill-then-partition events too (one pick in six). */
  killThenPartition?: boolean;
}

export function schedule(random: SeededRandom, count: number, options: ScheduleOptions = {}): NemesisEvent[] {
  const events: NemesisEvent[] = [];
  for (let i = 0; i < count; i++) {
    const afterMs = 500 + random.below(1_500);
    const pick = random.below(options.killThenPartition ? 6 : 5);
    // Kills always wait for a protected pair (see applyEvent); partitions two times in three.
    const protectedFirst = pick <= 2 || pick === 5 || random.below(3) !== 0;
    if (pick <= 1) events.push({ kind: 'kill-primary', afterMs, protectedFirst });
    else if (pick === 2) events.push({ kind: 'kill-backup', afterMs, protectedFirst });
    else if (pick === 5) events.push(killThenPartition(random, afterMs));
    else
      events.push({
        kind: 'partition',
        mode: pick === 3 ? 'cut' : 'stall',
        afterMs,
        forMs: partitionMs(random),
        protectedFirst,
      });
  }
  return events;
}

/** A kill of the primary and, from at once to past the failover timeout later, a partition. */
export function killThenPartition(random: SeededRandom, afterMs: number): NemesisEvent {
  return {
    kind: 'kill-then-partition',
    mode: random.below(2) === 0 ? 'cut' : 'stall',
    afterMs,
    gapMs: random.below(PAIR_FAILOVER_TIMEOUT_MS * 3),
    forMs: partitionMs(random),
    protectedFirst: true,
  };
}

function partitionMs(random: SeededRandom): number {
  return 200 + random.below(PAIR_FAILOVER_TIMEOUT_MS * 8);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The site serving as the primary of the highest generation, and the other one. */
export async function roles(pair: Pair): Promise<{ primary: Site; backup: Site } | null> {
  let best: { site: Site; generation: number } | null = null;
  for (const site of [pair.sites.a, pair.sites.b]) {
    const readiness = await pair.readiness(site);
    if (readiness?.body.role !== 'primary') continue;
    const generation = Number(readiness.body.generation);
    if (best === null || generation > best.generation) best = { site, generation };
  }
  return best === null ? null : { primary: best.site, backup: pair.other(best.site) };
}

async function partition(pair: Pair, mode: 'cut' | 'stall'): Promise<void> {
  for (const name of ['to-a', 'to-b']) await pair.registry.update(name, { enabled: false, partition: mode });
}

/**
 * Waits for the event's moment and strikes; a partition is healed before this returns. `onKill`
 * hears of each kill just after it (a load marks the instant).
 */
export async function applyEvent(pair: Pair, event: NemesisEvent, onKill: (site: Site) => void = () => {}): Promise<void> {
  await sleep(event.afterMs);
  const current = await roles(pair);
  assert.ok(current, `a primary serves before ${event.kind}\n${pair.logs()}`);
  // A primary killed before its backup holds a checkpoint takes the only copy of the guest
  // with it, which no protocol can survive: kills wait for a protected pair.
  if (event.protectedFirst) await pair.waitProtected(current.backup, 60_000);
  if (event.kind === 'partition') {
    await partition(pair, event.mode);
    await sleep(event.forMs);
    await pair.heal();
    return;
  }
  const victim = event.kind === 'kill-backup' ? current.backup : current.primary;
  pair.kill(victim);
  onKill(victim);
  if (event.kind === 'kill-then-partition') {
    await sleep(event.gapMs);
    await partition(pair, event.mode);
    await sleep(event.forMs);
    await pair.heal();
  }
}

/** After the schedule: the link healed, one primary, and its backup protecting it again. */
export async function waitSettled(pair: Pair, timeoutMs = 60_000): Promise<{ primary: Site; backup: Site }> {
  await pair.heal();
  const deadline = performance.now() + timeoutMs;
  let final = await roles(pair);
  while (final === null && performance.now() < deadline) {
    await sleep(100);
    final = await roles(pair);
  }
  assert.ok(final, `a primary serves at the end\n${pair.logs()}`);
  await pair.waitProtected(final.backup, timeoutMs);
  return final;
}
