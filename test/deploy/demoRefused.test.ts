// Proves that `npm start` (`hbft demo`) run by an ordinary user who may build the namespaces
// neither as root nor in a user namespace exits with status 1 and one message naming exactly what
// is missing and how to fix it, without a stack trace, and leaves nothing behind: for
// a /dev/net/tun only root may open (a private mount namespace gives nobody a 0600 one, as this
// machine has), for user namespaces the kernel refuses (an `unshare` on PATH that fails as the
// kernel does stands in for the sysctls, which a test must not change on a shared machine), and
// for `--namespaces root` asked for by a user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, runCommand } from './runScript.ts';
import { NOBODY, asNobody, whyNobodyCannotRun, withTunMode } from './asUser.ts';

test('a user who may build the namespaces neither way is told exactly what is missing', { timeout: 120_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root to run the demo as nobody (CI runs as root)');
  const dir = mkdtempSync(join(tmpdir(), 'hbft-demo-refused-'));
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  chownSync(dir, NOBODY, NOBODY);
  chownSync(tmp, NOBODY, NOBODY);
  try {
    const cannot = await whyNobodyCannotRun(tmp);
    if (cannot !== null) {
      t.diagnostic(`skipped: ${cannot}`);
      t.skip(cannot);
      return;
    }
    const demo = async (argv: string[]) => {
      const [command, ...args] = argv;
      const ran = await runCommand(command!, args, { timeoutMs: 60_000 });
      assert.equal(ran.code, 1, `exit status 1:\n${ran.output}`);
      assert.doesNotMatch(ran.stderr, /\n\s+at /, `no stack trace:\n${ran.output}`);
      assert.match(ran.stderr, /^hbft: cannot build the demo's network namespaces/, ran.output);
      assert.equal(existsSync(join(dir, 'demo.json')), false);
      return ran.stderr;
    };
    const start = [process.execPath, CLI, 'demo', '--dir', dir, '--base-port', '21000'];

    const tun = await demo(withTunMode('0600', asNobody(start, { TMPDIR: tmp })));
    t.diagnostic(tun);
    assert.match(tun, /as root: this process runs as uid 65534, not root: run it with sudo \(sudo npm start\)/);
    assert.match(
      tun,
      /as this user, in a user namespace: \/dev\/net\/tun is crw-------, owner root \(mode 0600\): this user may not open it.*sudo chmod 0666 \/dev\/net\/tun/,
    );

    // An unshare that fails as the kernel does when user namespaces are off.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'unshare'),
      [
        '#!/bin/sh',
        'if [ "$1" = --version ]; then echo "unshare from util-linux (a stand-in that fails as the kernel would)"; exit 0; fi',
        'echo "unshare: unshare failed: Operation not permitted" >&2',
        'exit 1',
        '',
      ].join('\n'),
    );
    chmodSync(bin, 0o755);
    chmodSync(join(bin, 'unshare'), 0o755);
    const userns = await demo(withTunMode('0666', asNobody(start, { TMPDIR: tmp, PATH: `${bin}:${process.env.PATH}` })));
    t.diagnostic(userns);
    assert.match(
      userns,
      /as this user, in a user namespace: unprivileged user namespaces are not usable here \(unshare --user --map-root-user --net --mount: unshare: unshare failed: Operation not permitted\)/,
    );
    assert.match(userns, /sysctl|container or seccomp policy/, 'it names the sysctl that forbids them, or says none does');

    const root = await demo(withTunMode('0666', asNobody([...start, '--namespaces', 'root'], { TMPDIR: tmp })));
    assert.match(root, /as root: this process runs as uid 65534, not root/);
    assert.doesNotMatch(root, /user namespace:/, 'only the route asked for');

    assert.deepEqual(
      readdirSync(tmp).filter((name) => name.startsWith('hbft-demo-')),
      [],
      'no socket directory was made',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
