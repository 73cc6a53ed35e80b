// Proves the dashboard works in a real browser against a real cluster: opened on the primary with
// the backup as its peer, it draws both nodes' charts as samples stream in while the guest runs a
// compute workload (web: scattered writes every epoch; the feed needs no clients), and when
// the primary is killed it shows that node down and marks the backup's failover to generation 2 on
// the timeline and on every chart (a screenshot is saved for a person to look at).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { Cluster } from '../helpers/cluster.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const WAIT_MS = 20_000;

/** The little of the DOM used inside the page (the project's TypeScript has no DOM library). */
interface PageElement {
  dataset: Record<string, string | undefined>;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
}

/** What the page exposes about one node panel (data attributes set by dashboard.js). */
async function panel(page: Page, slot: 'self' | 'peer') {
  return page.$eval(`#node-${slot}`, (section) => {
    const element = section as unknown as PageElement;
    const charts = [...element.querySelectorAll('figure.chart')];
    return {
      state: element.dataset.state ?? '',
      role: element.dataset.role ?? '',
      generation: Number(element.dataset.generation ?? 0),
      samples: Number(element.dataset.samples ?? 0),
      charts: charts.length,
      /** Points plotted now, per chart id. */
      points: Object.fromEntries(charts.map((chart) => [chart.dataset.chart!, Number(chart.dataset.points)])),
      chartsWithFailover: charts.filter((chart) => chart.querySelector('.marker-failover') !== null).length,
      dirtyPages: Number(element.querySelector('figure[data-chart="pages"]')?.dataset.last ?? 0),
    };
  });
}

async function waitForPanel(
  page: Page,
  slot: 'self' | 'peer',
  what: string,
  accept: (state: Awaited<ReturnType<typeof panel>>) => boolean,
) {
  const deadline = performance.now() + WAIT_MS;
  let last = await panel(page, slot);
  while (!accept(last)) {
    if (performance.now() > deadline) throw new Error(`the ${slot} panel never showed ${what}; last seen ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await panel(page, slot);
  }
  return last;
}

test('the dashboard shows both nodes live and marks the failover when the primary dies', { timeout: 120_000 }, async (t) => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: run scripts/install-system-deps.sh (it installs Debian's chromium) before this test`,
  );
  // A generous failover timeout: a busy machine (tests run two at a time) must not fail the primary
  // over before the page has seen it; the kill below is what this test fails over on.
  const timing = ['--failover-timeout-ms', '1500'];
  const cluster = await Cluster.start({
    guest: 'web',
    primaryArgs: [...timing, '--args', 'mb=8 rounds=100000000'],
    backupArgs: timing,
  });
  const profile = mkdtempSync(join(tmpdir(), 'hbft-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    viewport: { width: 1600, height: 1000 },
  });
  const pageErrors: string[] = [];
  try {
    await cluster.waitProtected();
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) pageErrors.push(message.text());
    });
    const { primaryHttp, backupHttp } = cluster.ports;
    await page.goto(`http://127.0.0.1:${primaryHttp}/?peer=127.0.0.1:${backupHttp}`);

    const plotted = (s: Awaited<ReturnType<typeof panel>>, ids: string[]) => ids.every((id) => s.points[id]! > 0);
    const primaryBefore = await waitForPanel(
      page,
      'self',
      'the primary live',
      (s) =>
        s.state === 'up' &&
        s.role === 'primary' &&
        s.generation === 1 &&
        plotted(s, ['epochs', 'mips', 'pages', 'checkpoint', 'pause', 'latency', 'heartbeat', 'held']),
    );
    // A backup applies checkpoints and hears heartbeats; it has no guest running, faults or latencies.
    const backupBefore = await waitForPanel(
      page,
      'peer',
      'the backup live',
      (s) => s.state === 'up' && s.role === 'backup' && plotted(s, ['epochs', 'heartbeat']),
    );
    assert.ok(primaryBefore.charts >= 8, `the primary's panel draws its charts (${primaryBefore.charts})`);
    assert.equal(backupBefore.charts, primaryBefore.charts, 'both panels draw the same charts');
    // Both panels keep receiving samples, and the primary's charts carry the workload.
    await waitForPanel(page, 'self', 'new samples', (s) => s.samples >= primaryBefore.samples + 8);
    await waitForPanel(page, 'peer', 'new samples', (s) => s.samples >= backupBefore.samples + 8);
    await waitForPanel(page, 'self', 'dirty pages', (s) => s.dirtyPages > 0);

    cluster.killPrimary();
    const primaryAfter = await waitForPanel(page, 'self', 'the killed primary as down', (s) => s.state === 'down');
    assert.equal(primaryAfter.role, 'primary', 'the dead node keeps its last known role');
    const backupAfter = await waitForPanel(
      page,
      'peer',
      'the backup promoted to generation 2',
      (s) => s.state === 'up' && s.role === 'primary' && s.generation === 2,
    );
    await page.waitForSelector('#timeline-svg .event-marker[data-kind="failover"][data-slot="peer"][data-generation="2"]', {
      timeout: WAIT_MS,
    });
    await page.waitForSelector('#event-log li[data-kind="failover"][data-generation="2"]', { timeout: WAIT_MS });
    await page.waitForSelector('#timeline-svg .down-period[data-slot="self"]', { timeout: WAIT_MS });
    // Every chart of both panels marks the failover on its time axis, and the new primary keeps streaming.
    const promoted = await waitForPanel(
      page,
      'peer',
      'samples after the takeover',
      (s) => s.samples >= backupAfter.samples + 12 && s.chartsWithFailover === s.charts && plotted(s, ['mips', 'pages', 'checkpoint']),
    );
    assert.equal((await panel(page, 'self')).chartsWithFailover, primaryAfter.charts);
    const summary = await page.textContent('#summary');
    assert.match(summary ?? '', /serving: peer .* generation 2/);
    assert.match(summary ?? '', new RegExp(`down: 127\\.0\\.0\\.1:${primaryHttp}`));
    assert.deepEqual(pageErrors, [], 'no uncaught errors or policy violations in the page');

    const screenshot = join(mkdtempSync(join(tmpdir(), 'hbft-dashboard-')), 'dashboard-after-failover.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    t.diagnostic(`screenshot: ${screenshot}`);
    t.diagnostic(`samples seen: primary ${primaryAfter.samples}, backup ${promoted.samples}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    await cluster.stop();
  }
});
