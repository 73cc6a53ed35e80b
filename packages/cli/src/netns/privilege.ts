import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { TopologyError } from './topology.ts';

/*
 * Which of the two ways this process may build the namespace topology (issue 11 §7), and when it
 * may use neither, exactly what is missing and how to fix it:
 *
 *   root   the namespaces are the machine's own (`ip netns`, visible to `ip netns list`);
 *   user   an ordinary user builds them inside an unprivileged user namespace of its own (root
 *          there, nobody anywhere else): `unshare --user --map-root-user --net --mount`, with a
 *          private /run/netns. Three things must hold: the kernel allows unprivileged user
 *          namespaces (kernel.unprivileged_userns_clone, user.max_user_namespaces, AppArmor's
 *          kernel.apparmor_restrict_unprivileged_userns, or a container's seccomp policy can
 *          forbid them); the namespace root may make links (AppArmor's restriction lets the
 *          namespace be made but takes its capabilities); and /dev/net/tun opens for this user, as
 *          its mode decides (0666 under systemd's udev rules, 0600 on some minimal systems), for
 *          a user namespace grants no rights over a device node owned by the real root.
 *
 * Each check runs the real thing (unshare, then a bridge and a TAP inside a throw-away user
 * namespace), so the answer is the kernel's, not a guess from version numbers.
 */

export type NamespaceRoute = 'root' | 'user';
export type WantedRoute = 'auto' | NamespaceRoute;

const TUN_DEVICE = '/dev/net/tun';
/** One probe: a few milliseconds; a hung one is a broken system. */
const PROBE_MS = 10_000;

/** The sysctls that can forbid unprivileged user namespaces; null where this kernel has none. */
export interface UsernsSysctls {
  unprivilegedUsernsClone: string | null;
  maxUserNamespaces: string | null;
  apparmorRestrictUnprivilegedUserns: string | null;
}

function readSysctl(path: string): string | null {
  try {
    return readFileSync(`/proc/sys/${path}`, 'utf8').trim();
  } catch {
    return null;
  }
}

export function readUsernsSysctls(): UsernsSysctls {
  return {
    unprivilegedUsernsClone: readSysctl('kernel/unprivileged_userns_clone'),
    maxUserNamespaces: readSysctl('user/max_user_namespaces'),
    apparmorRestrictUnprivilegedUserns: readSysctl('kernel/apparmor_restrict_unprivileged_userns'),
  };
}

interface Ran {
  ok: boolean;
  output: string;
}

function run(command: string, args: string[]): Ran {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: PROBE_MS });
  if (result.error) return { ok: false, output: result.error.message };
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim().replace(/\s*\n\s*/g, '; ') };
}

/**
 * Why a user namespace could not be made (or gave no privileges in it: `step` says which), and the
 * fix: the sysctl that forbids it when one does, else the kernel's own words and the usual cause.
 */
export function diagnoseUserNamespaces(step: string, output: string, sysctls: UsernsSysctls): string {
  const failed = `unprivileged user namespaces are not usable here (${step}: ${output || 'failed'})`;
  if (sysctls.unprivilegedUsernsClone === '0') {
    return `${failed}: kernel.unprivileged_userns_clone is 0; allow them with: sudo sysctl -w kernel.unprivileged_userns_clone=1`;
  }
  if (sysctls.maxUserNamespaces === '0') {
    return `${failed}: user.max_user_namespaces is 0; allow them with: sudo sysctl -w user.max_user_namespaces=15000`;
  }
  if (sysctls.apparmorRestrictUnprivilegedUserns === '1') {
    return (
      `${failed}: AppArmor restricts them (kernel.apparmor_restrict_unprivileged_userns is 1); allow them with: ` +
      'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile granting `userns,` to unshare and nsenter)'
    );
  }
  return (
    `${failed}; none of kernel.unprivileged_userns_clone, user.max_user_namespaces and kernel.apparmor_restrict_unprivileged_userns ` +
    'forbids them, so a container or seccomp policy probably does (Docker: run the container with --privileged, or run the demo as root)'
  );
}

/** How /dev/net/tun reads to a person: `crw------- root:root (mode 0600)`. */
function describeDevice(stat: { mode: number; uid: number; gid: number }): string {
  const bits = stat.mode & 0o777;
  const letters = ['r', 'w', 'x'];
  const symbolic = Array.from({ length: 9 }, (_, i) => ((bits >> (8 - i)) & 1 ? letters[i % 3] : '-')).join('');
  const owner = stat.uid === 0 ? 'root' : `uid ${stat.uid}`;
  return `c${symbolic}, owner ${owner} (mode 0${bits.toString(8)})`;
}

/** Why a TAP could not be made inside a user namespace, and the fix. */
export function diagnoseTun(output: string, stat: { mode: number; uid: number; gid: number } | null): string {
  if (stat === null) return `${TUN_DEVICE} does not exist: this kernel has no TUN/TAP support loaded (sudo modprobe tun)`;
  if (/permission denied|EACCES|not permitted/i.test(output)) {
    return (
      `${TUN_DEVICE} is ${describeDevice(stat)}: this user may not open it, and a user namespace grants no rights over a device ` +
      `of the real root (ip tuntap add: ${output}). Let users open it, as systemd's udev rules do on most distributions: ` +
      `sudo chmod 0666 ${TUN_DEVICE} (kept across reboots by a udev rule: KERNEL=="tun", MODE="0666")`
    );
  }
  if (/no such device/i.test(output)) return `${TUN_DEVICE} exists but the tun module is not loaded (sudo modprobe tun): ${output}`;
  return `a TAP device cannot be made inside a user namespace (ip tuntap add: ${output || 'failed'})`;
}

function tunStat(): { mode: number; uid: number; gid: number } | null {
  try {
    return statSync(TUN_DEVICE);
  } catch {
    return null;
  }
}

/** The tools both routes need (iproute2), and the user route's (util-linux's unshare and nsenter). */
function missingTools(route: NamespaceRoute): string[] {
  const missing: string[] = [];
  if (!run('ip', ['-V']).ok) missing.push('the ip command (iproute2) is missing: run scripts/install-system-deps.sh');
  if (route === 'user') {
    for (const tool of ['unshare', 'nsenter']) {
      if (!run(tool, ['--version']).ok) missing.push(`the ${tool} command (util-linux) is missing: install util-linux`);
    }
  }
  return missing;
}

/** What the root route lacks here (nothing: it can be tried). */
export function rootRouteMissing(uid = process.getuid?.() ?? -1): string[] {
  if (uid !== 0) return [`this process runs as uid ${uid}, not root: run it with sudo (sudo npm start)`];
  const missing = missingTools('root');
  if (!existsSync(TUN_DEVICE)) missing.push(`${TUN_DEVICE} does not exist: this kernel has no TUN/TAP support loaded (modprobe tun)`);
  return missing;
}

/** The user namespace the user route makes: `unshare` with these flags, then the command. */
export const USER_NAMESPACE_FLAGS = ['--user', '--map-root-user', '--net', '--mount', '--propagation', 'private'] as const;

/**
 * What the user route lacks here (nothing: it works): each step is tried for real in a throw-away
 * user namespace, and the first that fails is diagnosed.
 */
export function userRouteMissing(): string[] {
  const tools = missingTools('user');
  if (tools.length > 0) return tools;
  const stat = tunStat();
  if (stat === null) return [diagnoseTun('', null)];
  const made = run('unshare', [...USER_NAMESPACE_FLAGS, 'true']);
  if (!made.ok) return [diagnoseUserNamespaces('unshare --user --map-root-user --net --mount', made.output, readUsernsSysctls())];
  const bridge = run('unshare', [...USER_NAMESPACE_FLAGS, 'ip', 'link', 'add', 'hbft-probe0', 'type', 'bridge']);
  if (!bridge.ok) {
    return [diagnoseUserNamespaces('a bridge inside one: ip link add type bridge', bridge.output, readUsernsSysctls())];
  }
  const tap = run('unshare', [...USER_NAMESPACE_FLAGS, 'ip', 'tuntap', 'add', 'dev', 'hbft-probe1', 'mode', 'tap']);
  if (!tap.ok) return [diagnoseTun(tap.output, stat)];
  return [];
}

/**
 * The route to take: `root` as root, else `user` (auto), or the one asked for. Throws a
 * TopologyError naming what each possible route lacks and how to fix it.
 */
export function chooseRoute(wanted: WantedRoute, uid = process.getuid?.() ?? -1): NamespaceRoute {
  const route: NamespaceRoute = wanted === 'auto' ? (uid === 0 ? 'root' : 'user') : wanted;
  const missing = route === 'root' ? rootRouteMissing(uid) : userRouteMissing();
  if (missing.length === 0) return route;
  const lines = ["cannot build the demo's network namespaces, which it needs (the guest is reached at its own address on a LAN of them):"];
  if (route === 'root') lines.push(...missing.map((reason) => `  as root: ${reason}`));
  else {
    if (wanted === 'auto') lines.push(`  as root: ${rootRouteMissing(uid).join('; ')}`);
    lines.push(...missing.map((reason) => `  as this user, in a user namespace: ${reason}`));
  }
  throw new TopologyError(lines.join('\n'));
}
