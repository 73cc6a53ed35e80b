import type { OutputRelease } from './replicator.ts';

/**
 * Why a primary does or does not answer its clients now:
 * - `protected`: a backup acknowledges its checkpoints; output flows as each epoch commits.
 * - `syncing`: a backup is being synchronised; output waits for its first acknowledgement.
 * - `holding`: no backup, and output is held until one is synchronised (--on-backup-loss hold).
 * - `unprotected`: output is released without a backup's ack (no node can take over from this
 *   one yet, or continue-unsafe): it answers, but a crash of this host loses what it released.
 * - `fenced`: a newer generation exists; this node must never release output again.
 */
export type PrimaryHealthReason = 'protected' | 'syncing' | 'holding' | 'unprotected' | 'fenced';

export const PRIMARY_HEALTH_REASONS: readonly PrimaryHealthReason[] = ['protected', 'syncing', 'holding', 'unprotected', 'fenced'];

export interface PrimaryHealthInputs {
  /** How the replicator releases output now (PrimaryStatus.outputRelease). */
  outputRelease: OutputRelease;
  /** The node has learnt that it was deposed. */
  fenced: boolean;
}

export interface PrimaryHealth {
  reason: PrimaryHealthReason;
  /** Whether clients get answers: /readyz is false otherwise. */
  answersClients: boolean;
}

/** The one place that turns the replicator's status into health: the replicator decides release. */
export function primaryHealth(inputs: PrimaryHealthInputs): PrimaryHealth {
  if (inputs.fenced) return { reason: 'fenced', answersClients: false };
  switch (inputs.outputRelease) {
    case 'committed':
      return { reason: 'protected', answersClients: true };
    case 'syncing':
      return { reason: 'syncing', answersClients: false };
    case 'holding':
      return { reason: 'holding', answersClients: false };
    case 'unprotected':
      return { reason: 'unprotected', answersClients: true };
  }
}
