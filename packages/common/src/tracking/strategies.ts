import { SettingError } from '../errors.ts';
import type { GuestMemory } from '../guest/memory.ts';
import type { TrackerOptions } from './baseTracker.ts';
import { NoTracking } from './none.ts';
import { OriginTracker } from './origin.ts';
import { PmlTracker } from './pml.ts';
import { RfrTracker } from './rfr.ts';
import { TRACKING_STRATEGIES, type DirtyTracker, type TrackingStrategyName } from './tracker.ts';
import { WfpTracker } from './wfp.ts';

export function isTrackingStrategy(name: string): name is TrackingStrategyName {
  return (TRACKING_STRATEGIES as readonly string[]).includes(name);
}

/** Builds a tracker from the `tracking` setting and its options, with errors that name the setting. */
export function createTracker(name: string, options: TrackerOptions = {}): DirtyTracker {
  if (!isTrackingStrategy(name)) {
    throw new SettingError('tracking', `unknown strategy "${name}"; accepted: ${TRACKING_STRATEGIES.join(', ')}`);
  }
  switch (name) {
    case 'none':
      return new NoTracking();
    case 'origin':
      return new OriginTracker(options);
    case 'rfr':
      return new RfrTracker(options);
    case 'wfp':
      return new WfpTracker(options);
    case 'pml':
      return new PmlTracker(options);
  }
}

/**
 * Makes `tracker` the MMU's fault handler for `memory` and starts its first epoch: every page
 * written from here on is in some epoch's dirty list.
 */
export function trackMemory<T extends DirtyTracker>(memory: GuestMemory, tracker: T): T {
  memory.setFaultHandler(tracker);
  tracker.beginEpoch();
  return tracker;
}
