import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where the committed guest images live. */
export const GUEST_IMAGES_DIR = fileURLToPath(new URL('../../guests/images/', import.meta.url));

/** The guest programs shipped with hbft (built from guests/src by guests/build.sh). */
export const GUEST_NAMES = ['kv', 'cfp', 'cint', 'jbb', 'web'] as const;
export type GuestName = (typeof GUEST_NAMES)[number];

/** Resolves a guest name (`kv`) to its committed image, or returns a path unchanged. */
export function resolveGuestImage(nameOrPath: string): string {
  if ((GUEST_NAMES as readonly string[]).includes(nameOrPath)) return `${GUEST_IMAGES_DIR}${nameOrPath}.elf`;
  if (!nameOrPath.includes('/') && !nameOrPath.endsWith('.elf') && existsSync(`${GUEST_IMAGES_DIR}${nameOrPath}.elf`)) {
    return `${GUEST_IMAGES_DIR}${nameOrPath}.elf`;
  }
  return nameOrPath;
}

/**
 * The arguments a daemon gives a shipped guest when the user gives none. `kv` drives its own load
 * and by default stops after a fixed number of rounds (to print its checksum); a protected kv is
 * meant to run until it is stopped, with its store sized to a quarter of the guest's RAM (at most
 * the 64 MiB it takes by default), so that it fits whatever `--memory` says.
 */
export function daemonGuestArgs(nameOrPath: string, memoryBytes: number): string {
  if (nameOrPath !== 'kv') return '';
  const mib = Math.max(1, Math.min(64, Math.floor(memoryBytes / (4 * 1024 * 1024))));
  return `rounds=0 mb=${mib}`;
}
