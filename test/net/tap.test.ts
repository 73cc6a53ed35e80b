// Proves the host attachment's checks that need no root: a guest's MAC is locally administered and
// the same wherever the guest runs, a bad TAP name is refused with a TapError naming it, and
// `hbft run`, `primary` and `backup` refuse a malformed --guest-ip or --tap, or one without the
// other, with one line naming the flag and exit 2; primary and backup agree on the guest's MAC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TapError } from '@hbft/common/errors.ts';
import { TapDevice } from '@hbft/common/net/tap.ts';
import { formatMac } from '@hbft/common/net/mac.ts';
import { guestMac } from '@hbft/common/net/tapRunner.ts';

const hbft = fileURLToPath(new URL('../../packages/cli/bin/hbft.js', import.meta.url));

test('a guest MAC is unicast, locally administered, and a function of its identity only', () => {
  const mac = guestMac('kvnet@10.0.0.2/24');
  assert.equal(mac.length, 6);
  assert.equal(mac[0]! & 0x01, 0, 'unicast');
  assert.equal(mac[0]! & 0x02, 0x02, 'locally administered');
  assert.deepEqual(guestMac('kvnet@10.0.0.2/24'), mac, 'the same on every node');
  assert.notDeepEqual(guestMac('kvnet@10.0.0.3/24'), mac);
  assert.match(formatMac(mac), /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
});

test('a TAP name that is not an interface name is refused before anything is opened', async () => {
  for (const name of ['', 'a'.repeat(16), 'bad name', 'tap/0']) {
    await assert.rejects(
      TapDevice.open(name),
      (error: unknown) => error instanceof TapError && /is not an interface name/.test(error.message),
    );
  }
});

test('hbft run, primary and backup refuse a malformed --guest-ip or --tap, and one without the other, naming the flag, with exit 2', () => {
  const cases: [string[], RegExp][] = [
    [
      ['run', 'kvnet', '--tap', 'hbft0', '--guest-ip', '10.0.0.300/24'],
      /--guest-ip: expected the guest's IPv4 address and prefix length, like 10\.0\.0\.2\/24, got "10\.0\.0\.300\/24"/,
    ],
    [['run', 'kvnet', '--tap', 'hbft0', '--guest-ip', '10.0.0.2'], /--guest-ip: expected/],
    [['run', 'kvnet', '--guest-ip', '10.0.0.2/24'], /--guest-ip: needs --tap/],
    [['run', 'kvnet', '--tap', 'hbft0'], /--tap: needs --guest-ip/],
    [
      ['primary', '--guest', 'kvnet', '--tap', 'bad name', '--guest-ip', '10.0.0.2/24', '--dry-run'],
      /--tap: "bad name" is not an interface name/,
    ],
    [['primary', '--guest', 'kvnet', '--tap', 'hbft0', '--guest-ip', '300.0.0.2/24', '--dry-run'], /--guest-ip: expected/],
    [['backup', '--listen', '127.0.0.1:7000', '--insecure', '--guest-ip', '10.0.0.2/24', '--dry-run'], /--guest-ip: needs --tap/],
  ];
  for (const [args, message] of cases) {
    const result = spawnSync(process.execPath, [hbft, ...args], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 2, `${args.join(' ')}: exit ${result.status}\n${result.stderr}`);
    assert.match(result.stderr, message);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('the primary and the backup give the guest the same MAC from --guest and --guest-ip, and the guest its address', () => {
  const network = ['--guest', 'kvnet', '--tap', 'hbft0', '--guest-ip', '10.0.0.10/24', '--dry-run'];
  const dryRun = (args: string[]) => {
    const result = spawnSync(process.execPath, [hbft, ...args, ...network], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout) as { network: { tap: string; guestIp: string; mac: string }; args?: string };
  };
  const primary = dryRun(['primary']);
  const backup = dryRun(['backup', '--listen', '127.0.0.1:7000', '--insecure']);
  assert.deepEqual(primary.network, { tap: 'hbft0', guestIp: '10.0.0.10/24', mac: formatMac(guestMac('kvnet@10.0.0.10/24')) });
  assert.deepEqual(backup.network, primary.network);
  assert.equal(primary.args, 'ip=10.0.0.10/24');
});

test('a gratuitous ARP announces the guest: broadcast, sender and target both the guest, a valid ARP request', async () => {
  const { gratuitousArpFrame, parseIpv4 } = await import('@hbft/common/net/arp.ts');
  const { parseFrame } = await import('../helpers/ethernetClient.ts');
  const mac = guestMac('kvnet@10.0.0.2/24');
  const ip = parseIpv4('10.0.0.2/24')!;
  assert.equal(ip, 0x0a000002);
  const frame = gratuitousArpFrame(mac, ip);
  assert.equal(frame.length, 60);
  const parsed = parseFrame(frame);
  assert.deepEqual([...parsed.destination], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  assert.deepEqual(parsed.source, mac);
  assert.equal(parsed.arp?.operation, 1);
  assert.deepEqual(parsed.arp?.senderMac, mac);
  assert.equal(parsed.arp?.senderIp, ip);
  assert.equal(parsed.arp?.targetIp, ip);
  assert.equal(parseIpv4('10.0.0.256'), undefined);
  assert.equal(parseIpv4('10.0.0'), undefined);
});
