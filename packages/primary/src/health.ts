import type { BackupLossPolicy } from '@hbft/common/constants.ts';
import type { PrimaryStatus } from './replicator.ts';

/**
 * Why a primary does or does not answer its clients now:
 * - `protected`: a backup acknowledges its checkpoints; output flows as each epoch commits.
 * - `syncing`: a backup is being synchronised; output waits for its first acknowledgement.
 * - `holding`: no backup, and output is held until one is synchronised (--on-backup-loss hold).
 * - `unprotected`: no backup, and output is released without one (answers, but a crash loses it).
 * - `fenced`: a newer generation exists; this node must never release output again.
 */
export type PrimaryHealthReason = 'protected' | 'syncing' | 'holding' | 'unprotected' | 'fenced';

export const PRIMARY_HEALTH_REASONS: readonly PrimaryHealthReason[] = ['protected', 'syncing', 'holding', 'unprotected', 'fenced'];

export interface PrimaryHealthInputs {
  mode: PrimaryStatus['mode'];
  /** The policy the replicator runs with (a primary without --backup releases: `continue`). */
  onBackupLoss: BackupLossPolicy;
  /** The node has learnt that it was deposed. */
  fenced: boolean;
}

export interface PrimaryHealth {
  reason: PrimaryHealthReason;
  /** Whether clients get answers: /readyz is false otherwise. */
  answersClients: boolean;
}

/**
 * The one place that turns the replicator's status into health. Output is held whenever the
 * replicator is not protected, except that an unprotected replicator under `continue` releases it;
 * if the status comes to say directly whether output is held, that fact replaces the policy here.
 */
export function primaryHealth(inputs: PrimaryHealthInputs): PrimaryHealth {
  if (inputs.fenced) return { reason: 'fenced', answersClients: false };
  switch (inputs.mode) {
    case 'protected':
      return { reason: 'protected', answersClients: true };
    case 'syncing':
      return { reason: 'syncing', answersClients: false };
    case 'unprotected':
      return inputs.onBackupLoss === 'hold' ? { reason: 'holding', answersClients: false } : { reason: 'unprotected', answersClients: true };
  }
}
