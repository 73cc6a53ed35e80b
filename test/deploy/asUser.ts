import { CLI, runCommand } from './runScript.ts';

/*
 * Running the demo as an ordinary user from a test that runs as root (as CI does): `nobody`
 * (65534) stands in for the user, and a private mount namespace stands in for a machine whose
 * /dev/net/tun has a given mode (0666 under systemd's udev rules; 0600 here), so that the
 * machine's own device is never touched.
 */

export const NOBODY = 65534;

/** argv that runs `argv` as nobody, with no supplementary groups, and `env` added. */
export function asNobody(argv: string[], env: Record<string, string> = {}): string[] {
  const assignments = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  return ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'env', ...assignments, ...argv];
}

/** argv that runs `argv` in a private mount namespace where /dev/net/tun is a TUN device of mode `mode`. */
export function withTunMode(mode: '0666' | '0600', argv: string[]): string[] {
  const script = `mount -t tmpfs -o mode=0755 hbft-test-tun /dev/net && mknod -m ${mode} /dev/net/tun c 10 200 && exec "$@"`;
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...argv];
}

/**
 * Why nobody cannot run this checkout (a clone under a directory only root may enter, say), or
 * null when it can: it runs `hbft --help`, which loads every command.
 */
export async function whyNobodyCannotRun(tmp: string): Promise<string | null> {
  const [command, ...args] = asNobody([process.execPath, CLI, '--help'], { TMPDIR: tmp });
  const ran = await runCommand(command!, args);
  if (ran.code === 0) return null;
  const said = ran.output.trim().split('\n').slice(0, 3).join(' | ');
  return `user nobody (${NOBODY}) cannot run this checkout at ${CLI} (${said}): clone it where other users may read it to run this test`;
}
