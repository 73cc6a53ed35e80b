/** A MAC address as `ip` and logs write it: six lowercase hex bytes joined by colons. */
export function formatMac(mac: Uint8Array): string {
  return [...mac].map((byte) => byte.toString(16).padStart(2, '0')).join(':');
}
