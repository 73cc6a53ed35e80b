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
