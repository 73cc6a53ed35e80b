// Proves that when the demo can build its namespaces neither as root nor in a user namespace, the
// reason it gives names the exact thing that is missing and its fix: each sysctl that forbids
// unprivileged user namespaces by name and value, /dev/net/tun by its mode and owner, and a
// refusal no sysctl explains as one (a container's policy), never a generic "failed".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diagnoseTun, diagnoseUserNamespaces, rootRouteMissing, type UsernsSysctls } from '../../packages/cli/src/netns/privilege.ts';

const ALLOWED: UsernsSysctls = { unprivilegedUsernsClone: null, maxUserNamespaces: '96362', apparmorRestrictUnprivilegedUserns: null };
const REFUSED = 'unshare: unshare failed: Operation not permitted';

test('each sysctl that forbids unprivileged user namespaces is named with its value and the command that allows them', () => {
  const cases: [Partial<UsernsSysctls>, RegExp][] = [
    [
      { unprivilegedUsernsClone: '0' },
      /kernel\.unprivileged_userns_clone is 0; allow them with: sudo sysctl -w kernel\.unprivileged_userns_clone=1/,
    ],
    [{ maxUserNamespaces: '0' }, /user\.max_user_namespaces is 0; allow them with: sudo sysctl -w user\.max_user_namespaces=15000/],
    [
      { apparmorRestrictUnprivilegedUserns: '1' },
      /AppArmor restricts them \(kernel\.apparmor_restrict_unprivileged_userns is 1\); allow them with: sudo sysctl -w kernel\.apparmor_restrict_unprivileged_userns=0/,
    ],
  ];
  for (const [sysctls, expected] of cases) {
    const said = diagnoseUserNamespaces('unshare --user', REFUSED, { ...ALLOWED, ...sysctls });
    assert.match(said, expected);
    assert.match(
      said,
      /^unprivileged user namespaces are not usable here \(unshare --user: unshare: unshare failed: Operation not permitted\)/,
    );
  }
  const unexplained = diagnoseUserNamespaces('unshare --user', REFUSED, ALLOWED);
  assert.match(
    unexplained,
    /none of kernel\.unprivileged_userns_clone, user\.max_user_namespaces and kernel\.apparmor_restrict_unprivileged_userns forbids them/,
  );
  assert.match(unexplained, /container or seccomp policy/);
});

test('/dev/net/tun is named with its mode and owner and the chmod that lets users open it; a missing one names modprobe', () => {
  const rootOnly = { mode: 0o20600, uid: 0, gid: 0 };
  const said = diagnoseTun('open: Permission denied', rootOnly);
  assert.match(said, /^\/dev\/net\/tun is crw-------, owner root \(mode 0600\): this user may not open it/);
  assert.match(said, /sudo chmod 0666 \/dev\/net\/tun/);
  assert.match(said, /KERNEL=="tun", MODE="0666"/);
  assert.match(diagnoseTun('', null), /\/dev\/net\/tun does not exist.*modprobe tun/);
  assert.match(diagnoseTun('ioctl(TUNSETIFF): No such device', rootOnly), /tun module is not loaded/);
});

test('the root route says which uid this is when it is not root', () => {
  assert.deepEqual(rootRouteMissing(1000), ['this process runs as uid 1000, not root: run it with sudo (sudo npm start)']);
});
