// Proves that docker-compose.yml is valid and wired as intended without a Docker engine: Debian's
// docker-compose accepts it, every hbft command it runs is accepted by hbft itself (--dry-run, or
// --help for commands without one), the primary replicates to the backup only through the chaos
// proxy, and healthchecks, start order, the key secret, networks, signals and the Dockerfile agree.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, REPO } from './runScript.ts';

interface Healthcheck {
  test: string[];
}
interface Service {
  command: string[];
  environment?: Record<string, string>;
  healthcheck?: Healthcheck;
  depends_on?: Record<string, { condition: string }>;
  networks: Record<string, unknown>;
  secrets?: { source: string }[];
  init?: boolean;
  stop_grace_period?: string;
  stop_signal?: string;
  cap_add?: string[];
  devices?: (string | { source: string; target: string })[];
  user?: string;
  image?: string;
  build?: unknown;
}
interface ComposeConfig {
  services: Record<string, Service>;
  networks: Record<string, { internal?: boolean; ipam?: { config: { subnet: string; ip_range?: string; gateway?: string }[] } } | null>;
  secrets: Record<string, { file: string }>;
}

/** The environment without HBFT_* variables, so that a developer's settings do not leak in. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('HBFT_') && value !== undefined) env[name] = value;
  return { ...env, ...extra };
}

function dockerCompose(...args: string[]) {
  return spawnSync('docker-compose', ['-f', join(REPO, 'docker-compose.yml'), ...args], { cwd: REPO, env: cleanEnv(), encoding: 'utf8' });
}

let config: ComposeConfig;
let keyFile: string;

before(() => {
  const version = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
  if (version.error) {
    assert.fail("docker-compose is not installed: run scripts/install-system-deps.sh (it installs Debian's docker-compose; CI runs it)");
  }
  const dir = mkdtempSync(join(tmpdir(), 'hbft-compose-'));
  keyFile = join(dir, 'hbft_key');
  writeFileSync(keyFile, readFileSync(join(REPO, 'deploy/secrets/hbft_key.example')));
});

test('docker-compose config -q accepts the file', () => {
  const result = dockerCompose('config', '-q');
  assert.equal(result.status, 0, `docker-compose config -q failed:\n${result.stderr}`);
  const resolved = dockerCompose('config');
  assert.equal(resolved.status, 0, resolved.stderr);
  // Debian's docker-compose (1.29) prints YAML only; its own dependency python3-yaml reads it.
  const toJson = spawnSync('python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], {
    input: resolved.stdout,
    encoding: 'utf8',
  });
  assert.equal(toJson.status, 0, `cannot read the resolved config as YAML (python3-yaml comes with docker-compose):\n${toJson.stderr}`);
  config = JSON.parse(toJson.stdout) as ComposeConfig;
  assert.deepEqual(Object.keys(config.services).sort(), ['backup', 'chaos', 'client', 'primary']);
});

/** A service's command as it would run here: image paths mapped to the checkout, the secret to a temp key. */
function localCommand(service: Service): string[] {
  // guest-network.sh bridges the guest's TAP inside the container and runs the rest: here, the rest.
  const [program, ...args] = service.command[0] === '/app/deploy/guest-network.sh' ? service.command.slice(1) : service.command;
  if (program === '/app/deploy/hbft-node.sh') return ['bash', join(REPO, 'deploy/hbft-node.sh'), ...args];
  if (program === 'hbft') return [process.execPath, CLI, ...args];
  assert.fail(`unexpected program ${program}`);
}

function localEnv(service: Service, extra: Record<string, string> = {}): Record<string, string> {
  const environment = { ...(service.environment ?? {}) };
  assert.equal(environment.HBFT_KEY_FILE, '/run/secrets/hbft_key', 'the key comes from the compose secret');
  environment.HBFT_KEY_FILE = keyFile;
  return cleanEnv({ ...environment, ...extra });
}

function dryRun(service: Service, extra: Record<string, string> = {}): Record<string, any> {
  const [program, ...args] = localCommand(service);
  const result = spawnSync(program!, [...args, '--dry-run'], { cwd: REPO, env: localEnv(service, extra), encoding: 'utf8' });
  assert.equal(result.status, 0, `${service.command.join(' ')} --dry-run failed:\n${result.stderr}`);
  return JSON.parse(result.stdout) as Record<string, any>;
}

function hostPort(value: string): { host: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(value);
  assert.ok(match, `HOST:PORT expected, got ${value}`);
  return { host: match[1]!, port: Number(match[2]) };
}

test('the node services run commands and settings that hbft accepts, in both roles', () => {
  const { primary, backup } = config.services;
  const asPrimary = dryRun(primary!);
  assert.equal(asPrimary.role, 'primary');
  assert.deepEqual(
    asPrimary.backup,
    { host: 'chaos', port: 7001, auth: { mode: 'hmac', key: '(set)' } },
    'the primary replicates through the chaos proxy, authenticated',
  );
  assert.deepEqual(asPrimary.network, { tap: 'hbft0', guestIp: '172.30.77.10/24', mac: asPrimary.network.mac }, 'the guest on its TAP');
  assert.deepEqual(asPrimary.http, { host: '0.0.0.0', port: 9100 });
  // A restarted primary whose backup took over starts as a backup (deploy/hbft-node.sh decides).
  const primaryRejoining = dryRun(primary!, { HBFT_NODE_ROLE: 'backup' });
  assert.equal(primaryRejoining.role, 'backup');
  assert.deepEqual(primaryRejoining.listen, { host: '0.0.0.0', port: 7000 });
  assert.deepEqual(primaryRejoining.reprotect, { host: 'chaos', port: 7001 });
  assert.deepEqual(primaryRejoining.http, { host: '0.0.0.0', port: 9100 }, 'same status port in either role, so the healthcheck holds');

  const asBackup = dryRun(backup!);
  assert.equal(asBackup.role, 'backup');
  assert.deepEqual(asBackup.listen, { host: '0.0.0.0', port: 7000 });
  assert.deepEqual(asBackup.reprotect, { host: 'chaos', port: 7002 }, 'after a takeover the backup re-protects through the chaos proxy');
  assert.deepEqual(asBackup.network, asPrimary.network, 'the same guest address and MAC on either node');
  assert.deepEqual(asBackup.http, { host: '0.0.0.0', port: 9101 });
  assert.equal(asBackup.auth.mode, 'hmac');

  assert.equal(asPrimary.memoryBytes, asBackup.memoryBytes, 'both nodes run the same guest memory');
  assert.deepEqual(asPrimary.timing, asBackup.timing, 'both nodes run the same timing');
  assert.ok(asPrimary.timing.failoverTimeoutMs >= 3 * asPrimary.timing.heartbeatMs);
  assert.equal(primary!.environment!.HBFT_PEER_HTTP, 'backup:9101', 'the role check asks the backup');
  assert.equal(backup!.environment!.HBFT_PEER_HTTP, 'primary:9100', 'the role check asks the primary');
});

test('the chaos proxy sits between primary and backup in both directions', () => {
  const { chaos, primary, backup } = config.services;
  const [program, ...args] = localCommand(chaos!);
  assert.deepEqual(args.slice(1, 3), ['chaos', 'proxy']);
  const help = spawnSync(program!, [args[0]!, 'chaos', 'proxy', '--help'], { cwd: REPO, env: cleanEnv(), encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  for (const flag of args.filter((arg) => arg.startsWith('--'))) assert.ok(help.stdout.includes(flag), `hbft chaos proxy knows ${flag}`);
  const proxies = new Map<string, { listen: { host: string; port: number }; upstream: { host: string; port: number } }>();
  args.forEach((arg, index) => {
    if (args[index - 1] !== '--proxy') return;
    const match = /^([\w-]+)=([^>]+)>(.+)$/.exec(arg);
    assert.ok(match, `--proxy NAME=LISTEN>UPSTREAM, got ${arg}`);
    proxies.set(match[1]!, { listen: hostPort(match[2]!), upstream: hostPort(match[3]!) });
  });
  const primaryEnv = primary!.environment!;
  const backupEnv = backup!.environment!;
  const repl = proxies.get('repl');
  assert.ok(repl, 'a proxy named repl');
  assert.equal(repl.listen.port, hostPort(primaryEnv.HBFT_BACKUP!).port, 'the primary sends to the repl proxy');
  assert.deepEqual(
    repl.upstream,
    { host: 'backup', port: hostPort(backupEnv.HBFT_LISTEN!).port },
    "which forwards to the backup's listen port",
  );
  const reprotect = proxies.get('reprotect');
  assert.ok(reprotect, 'a proxy named reprotect');
  assert.deepEqual(
    hostPort(backupEnv.HBFT_REPROTECT!),
    { host: 'chaos', port: reprotect.listen.port },
    'the promoted backup re-protects through the proxy',
  );
  assert.deepEqual(
    reprotect.upstream,
    { host: 'primary', port: hostPort(primaryEnv.HBFT_LISTEN!).port },
    "towards the restarted primary's listen port",
  );
  assert.deepEqual(
    hostPort(primaryEnv.HBFT_REPROTECT!),
    { host: 'chaos', port: repl.listen.port },
    'and a promoted primary slot through repl',
  );
  assert.deepEqual(chaos!.cap_add, ['NET_ADMIN'], 'tc netem works in the chaos container');
});

/** Whether dotted-quad `address` is inside `cidr`. */
function inSubnet(address: string, cidr: string): boolean {
  const toNumber = (quad: string) => quad.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
  const [base, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(toNumber(address) / size) === Math.floor(toNumber(base) / size);
}

test('the guest lives on the client network at an address Docker never hands out, through a TAP bridged in each node container', () => {
  const { primary, backup } = config.services;
  const ipam = config.networks.client?.ipam?.config[0];
  assert.ok(ipam, 'the client network has a fixed subnet');
  for (const [name, service] of Object.entries({ primary, backup })) {
    const env = service!.environment!;
    assert.equal(env.HBFT_GUEST, 'kvnet', `${name} runs the guest with its own TCP/IP`);
    assert.equal(env.HBFT_TAP, 'hbft0');
    const [guest, bits] = env.HBFT_GUEST_IP!.split('/') as [string, string];
    assert.equal(`${bits}`, ipam.subnet.split('/')[1], "the guest's prefix is the client network's");
    assert.ok(inSubnet(guest, ipam.subnet), `the guest ${guest} is on the client network ${ipam.subnet}`);
    assert.ok(ipam.ip_range && !inSubnet(guest, ipam.ip_range), `containers take addresses from ${ipam.ip_range}, never the guest's`);
    assert.equal(env.HBFT_CLIENT_SUBNET, ipam.subnet, 'guest-network.sh finds the client interface by this subnet');
    assert.equal(service!.command[0], '/app/deploy/guest-network.sh', `${name} bridges the TAP before its daemon starts`);
    assert.ok(service!.cap_add?.includes('NET_ADMIN'), `${name} may make a bridge and a TAP`);
    assert.ok(
      (service!.devices ?? []).some((device) =>
        typeof device === 'string' ? device.startsWith('/dev/net/tun') : device.source === '/dev/net/tun',
      ),
      `${name} has the TUN device`,
    );
    assert.equal(service!.user, 'root', 'the bridge is made as root');
    assert.equal(env.HBFT_DAEMON_USER, 'node', 'and the daemon runs as the unprivileged user');
  }
  assert.equal(primary!.environment!.HBFT_GUEST_IP, backup!.environment!.HBFT_GUEST_IP, 'one guest address, whichever node runs it');
  const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /COPY deploy\/guest-network\.sh deploy\/guest-network\.sh/, 'the image has guest-network.sh');
});

test('the client runs hbft load with flags it knows, against the guest', () => {
  const { client } = config.services;
  const [program, ...args] = localCommand(client!);
  assert.equal(args[1], 'load');
  const help = spawnSync(program!, [args[0]!, 'load', '--help'], { cwd: REPO, env: cleanEnv(), encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  for (const flag of args.filter((arg) => arg.startsWith('--'))) assert.ok(help.stdout.includes(flag), `hbft load knows ${flag}`);
  const servers = args[args.indexOf('--servers') + 1]!.split(',');
  const guest = config.services.primary!.environment!.HBFT_GUEST_IP!.split('/')[0];
  assert.deepEqual(servers, [`${guest}:6379`], "one address: the guest's own");
});

test('healthchecks, start order, signals, the secret and the networks are as intended', () => {
  const { services } = config;
  const httpPort = (service: Service) => hostPort(service.environment!.HBFT_HTTP!).port;
  const healthUrl = (service: Service) => {
    const check = service.healthcheck?.test ?? [];
    assert.equal(check[0], 'CMD', 'exec-form healthcheck');
    assert.equal(check[1], 'curl', 'curl is what the image installs for healthchecks');
    return check.at(-1)!;
  };
  for (const name of ['primary', 'backup']) {
    const service = services[name]!;
    assert.equal(healthUrl(service), `http://127.0.0.1:${httpPort(service)}/healthz`, `${name} healthcheck hits its own /healthz`);
    assert.equal(service.init, true, `${name}: an init as PID 1 passes signals on`);
    // The init runs as root and the daemon as `node`: with every capability dropped but these, it
    // may signal another user's process only with KILL (under a real engine, without it, `docker
    // compose stop` made the init exit with "forwarding signal: Operation not permitted").
    assert.equal(service.user, 'root');
    assert.ok(service.cap_add?.includes('KILL'), `${name}: the root init may pass SIGTERM to the daemon of another user`);
    assert.equal(service.stop_signal ?? 'SIGTERM', 'SIGTERM');
    assert.ok(service.stop_grace_period, `${name}: a stop grace period`);
    assert.deepEqual(
      service.secrets?.map((secret) => secret.source),
      ['hbft_key'],
      `${name} gets the key as a secret`,
    );
    assert.deepEqual(Object.keys(service.networks).sort(), ['client', 'replication']);
  }
  assert.equal(healthUrl(services.chaos!), 'http://127.0.0.1:8474/version');
  assert.equal(services.chaos!.init, true);
  assert.deepEqual(Object.keys(services.chaos!.networks), ['replication'], 'the chaos proxy only on the replication network');
  assert.deepEqual(Object.keys(services.client!.networks), ['client'], 'clients only on the client network');
  assert.equal(config.networks.replication?.internal, true, 'the replication network has no way out');

  const dependsOn = (name: string) =>
    Object.fromEntries(Object.entries(services[name]!.depends_on ?? {}).map(([on, { condition }]) => [on, condition]));
  assert.deepEqual(dependsOn('backup'), { chaos: 'service_healthy' });
  assert.deepEqual(dependsOn('primary'), { chaos: 'service_healthy', backup: 'service_healthy' });
  assert.deepEqual(dependsOn('client'), { primary: 'service_healthy', backup: 'service_healthy' });

  assert.match(config.secrets.hbft_key!.file, /\/deploy\/secrets\/hbft_key$/);
  assert.match(readFileSync(join(REPO, 'deploy/secrets/.gitignore'), 'utf8'), /^hbft_key$/m, 'the real key is never committed');
  assert.ok(
    readFileSync(join(REPO, 'deploy/secrets/hbft_key.example'), 'utf8').trim().length >= 16,
    'the example is long enough to be accepted',
  );
  for (const service of Object.values(services)) assert.equal(service.image, 'hbft:latest', 'one image for every service');
});

test('the ports agree with what the deployment scripts assume', () => {
  const lib = readFileSync(join(REPO, 'scripts/lib/hbft.sh'), 'utf8');
  const constant = (name: string) => Number(new RegExp(`^${name}=(\\d+)`, 'm').exec(lib)?.[1]);
  const { primary, backup } = config.services;
  assert.match(lib, /HTTP_PORT=\(\[primary\]=9100 \[backup\]=9101\)/);
  assert.equal(hostPort(primary!.environment!.HBFT_HTTP!).port, 9100);
  assert.equal(hostPort(backup!.environment!.HBFT_HTTP!).port, 9101);
  const client = config.services.client!.command;
  assert.equal(hostPort(client[client.indexOf('--servers') + 1]!).port, constant('GUEST_PORT'), "the client's port is the guest's");
  for (const service of [primary!, backup!])
    assert.equal(service.environment!.HBFT_SERVE, undefined, 'no --serve: the nodes serve no clients');
  assert.equal(hostPort(primary!.environment!.HBFT_LISTEN!).port, constant('REPLICATION_PORT'));
  assert.equal(hostPort(primary!.environment!.HBFT_BACKUP!).port, constant('CHAOS_REPL_PORT'));
  assert.equal(hostPort(backup!.environment!.HBFT_REPROTECT!).port, constant('CHAOS_REPROTECT_PORT'));
  assert.ok(config.services.chaos!.command.includes(`127.0.0.1:${constant('CHAOS_API_PORT')}`));
  assert.equal(
    `${/^COMPOSE_GUEST_ADDRESS=([0-9.]+)$/m.exec(lib)?.[1]}/24`,
    primary!.environment!.HBFT_GUEST_IP,
    "the scripts' load goes to the guest's address",
  );
});

test('the Dockerfile builds on Node 20 bookworm, installs production dependencies of every workspace, and runs in exec form', () => {
  const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /^FROM node:20-bookworm(-slim)?$/m);
  assert.match(dockerfile, /npm ci --omit=dev/);
  assert.match(dockerfile, /apt-get install[^\n]*\bcurl\b/, 'curl for the healthchecks');
  assert.match(dockerfile, /^CMD \[/m, 'exec form');
  const workspaces = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
  for (const workspace of workspaces) {
    assert.ok(
      dockerfile.includes(`COPY ${workspace}/package.json ${workspace}/`),
      `the Dockerfile copies ${workspace}/package.json before npm ci`,
    );
  }
  assert.ok(existsSync(join(REPO, 'packages/common/guests/images/kvnet.elf')), 'the guest image the services run is committed');
  const ignored = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n');
  for (const entry of ['.git', 'node_modules', '.hbft', 'deploy/secrets'])
    assert.ok(ignored.includes(entry), `.dockerignore leaves out ${entry}`);
});
