// The hbft live dashboard: connects to this node's `/live` socket and to its peer's, keeps each
// node's recent samples and events, and draws both nodes side by side on one shared time axis,
// with a timeline of events (failovers first of all) above them.
import { EVENT_COLORS, TimeChart, escapeText, markerLabel, timeTicks } from './charts.js';
import { formatBytes, formatClock, formatCount, formatMs, formatPercent, formatUs, niceBytesCeiling } from './format.js';
import { LiveConnection } from './liveConnection.js';

/** Time windows a viewer can pick; `auto` takes the smallest that holds all the data kept. */
const WINDOWS_MS = { '30 s': 30_000, '1 min': 60_000, '2 min': 120_000, '5 min': 300_000 };
const SAMPLES_MAX = 1_200;
const EVENTS_MAX = 200;
const EVENT_LOG_ROWS = 8;
const RENDER_INTERVAL_MS_MIN = 200;
const ADDRESS = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;

const CHARTS = [
  {
    id: 'epochs',
    title: 'Epoch rate',
    format: (v) => `${formatCount(v)}/s`,
    yMinTop: 10,
    series: [{ key: 'epochsPerSecond', label: 'epochs', color: '#2563eb' }],
  },
  {
    id: 'mips',
    title: 'Guest speed',
    format: (v) => `${formatCount(v)} MIPS`,
    yMinTop: 1,
    series: [{ key: 'guestMips', label: 'guest', color: '#7c3aed' }],
  },
  {
    id: 'pages',
    title: 'Dirty pages and faults per epoch',
    format: formatCount,
    yMinTop: 4,
    series: [
      { key: 'dirtyPagesPerEpoch', label: 'dirty', color: '#334155' },
      { key: 'readFaultsPerEpoch', label: 'read faults', color: '#0ea5e9' },
      { key: 'writeFaultsPerEpoch', label: 'write faults', color: '#f97316' },
    ],
  },
  {
    id: 'prediction',
    title: 'Prediction quality and superpage hits',
    format: formatPercent,
    yMax: 1,
    series: [
      { key: 'recall', label: 'recall', color: '#16a34a' },
      { key: 'precision', label: 'precision', color: '#2563eb' },
      { key: 'superpageHitRatio', label: 'superpage hits', color: '#d97706' },
    ],
  },
  {
    id: 'checkpoint',
    title: 'Checkpoint size per epoch',
    format: formatBytes,
    nice: niceBytesCeiling,
    yMinTop: 4096,
    series: [
      { key: 'checkpointRawBytesPerEpoch', label: 'raw', color: '#64748b' },
      { key: 'checkpointWireBytesPerEpoch', label: 'on the wire', color: '#0d9488' },
    ],
  },
  {
    id: 'pause',
    title: 'Guest pause per epoch',
    format: formatUs,
    yMinTop: 100,
    series: [{ key: 'pauseUsPerEpoch', label: 'pause', color: '#db2777' }],
  },
  {
    id: 'latency',
    title: 'Output and ack latency',
    format: formatMs,
    yMinTop: 10,
    series: [
      { key: 'outputLatencyMs', label: 'output held', color: '#7c3aed' },
      { key: 'ackLatencyMs', label: 'checkpoint ack', color: '#0d9488' },
    ],
  },
  {
    id: 'heartbeat',
    title: 'Heartbeat: since the peer was heard',
    format: formatMs,
    yMinTop: 100,
    series: [{ key: 'msSincePeerHeard', label: 'silence', color: '#2563eb' }],
    band: { key: 'peerConnected', label: 'peer connected' },
  },
  {
    id: 'held',
    title: 'Output held for commit',
    format: formatBytes,
    nice: niceBytesCeiling,
    yMinTop: 1024,
    series: [{ key: 'heldOutputBytes', label: 'held', color: '#ea580c' }],
  },
  {
    id: 'frames',
    title: 'Frames held for commit',
    format: formatCount,
    yMinTop: 4,
    series: [{ key: 'heldFrames', label: 'frames', color: '#0891b2' }],
  },
];

/** One node as the page knows it: its socket, its samples (on this page's clock) and its events. */
class NodeView {
  constructor(slot, address, parent, onChange) {
    this.slot = slot;
    this.address = address;
    this.samples = [];
    this.events = [];
    this.samplesReceived = 0;
    this.clockOffsetMs = 0;
    this.state = 'connecting';
    this.stateDetail = { attempts: 0, since: Date.now(), reason: '' };
    /** Periods this page could not reach the node, for the timeline. */
    this.downPeriods = [];
    this.onChange = onChange;
    this.build(parent);
    if (address) {
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      this.connection = new LiveConnection(`${scheme}://${address}/live`, {
        onMessage: (message) => this.onMessage(message),
        onState: (state, detail) => this.onState(state, detail),
      });
    }
  }

  build(parent) {
    const section = document.createElement('section');
    section.className = 'node';
    section.id = `node-${this.slot}`;
    section.dataset.slot = this.slot;
    section.dataset.state = this.address ? 'connecting' : 'absent';
    section.innerHTML = `
      <header class="node-head">
        <div class="node-title">
          <span class="slot">${this.slot === 'self' ? 'this node' : 'peer'}</span>
          <code class="address">${escapeText(this.address ?? 'not configured')}</code>
          <span class="link-state"></span>
        </div>
        <div class="role-line"><span class="role">—</span><span class="generation"></span><span class="mode"></span><span class="last-known">last known state</span></div>
        <dl class="facts"></dl>
      </header>
      <div class="charts"></div>`;
    parent.append(section);
    this.section = section;
    this.linkState = section.querySelector('.link-state');
    this.roleEl = section.querySelector('.role');
    this.generationEl = section.querySelector('.generation');
    this.modeEl = section.querySelector('.mode');
    this.factsEl = section.querySelector('.facts');
    const chartsEl = section.querySelector('.charts');
    if (!this.address) {
      chartsEl.innerHTML = `<p class="hint">No peer configured. Open this page as <code>/?peer=HOST:PORT</code> (the other node's <code>--http</code> address), or start the daemon with <code>--peer-http</code>.</p>`;
      this.charts = [];
      return;
    }
    this.charts = CHARTS.map((spec) => new TimeChart(chartsEl, spec));
  }

  onMessage(message) {
    const receivedAtMs = Date.now();
    switch (message.type) {
      case 'hello':
        // Place this node's wall clock on the page's: hosts' clocks differ, loopback latency does not matter.
        this.clockOffsetMs = message.serverTimeMs - receivedAtMs;
        this.samples = message.history.samples.map((sample) => this.local(sample));
        this.events = message.history.events.map((event) => this.local(event));
        this.samplesReceived += this.samples.length;
        break;
      case 'sample':
        this.samples.push(this.local(message.sample));
        if (this.samples.length > SAMPLES_MAX) this.samples.splice(0, this.samples.length - SAMPLES_MAX);
        this.samplesReceived++;
        break;
      case 'event':
        this.events.push(this.local(message.event));
        if (this.events.length > EVENTS_MAX) this.events.splice(0, this.events.length - EVENTS_MAX);
        break;
      case 'pong':
        this.clockOffsetMs = message.serverTimeMs - receivedAtMs;
        return;
      default:
        return;
    }
    this.onChange();
  }

  local(item) {
    return { ...item, t: item.t - this.clockOffsetMs };
  }

  onState(state, detail) {
    const now = Date.now();
    const open = this.downPeriods.at(-1);
    if (state === 'down' && !(open && open.toMs === null)) this.downPeriods.push({ fromMs: detail.since ?? now, toMs: null });
    if (state === 'up' && open && open.toMs === null) open.toMs = now;
    if (this.downPeriods.length > 50) this.downPeriods.shift();
    this.state = state;
    this.stateDetail = detail;
    this.onChange();
  }

  get latest() {
    return this.samples.at(-1) ?? null;
  }

  /** The generation a node had when an event happened: that of its first sample at or after it. */
  generationAt(t) {
    const sample = this.samples.find((s) => s.t >= t);
    return sample ? sample.generation : null;
  }

  markers() {
    return this.events.map((event) => {
      const generation = event.kind === 'failover' ? this.generationAt(event.t) : null;
      return {
        t: event.t,
        kind: event.kind,
        generation,
        label: event.kind === 'failover' ? `failover${generation !== null ? ` → gen ${generation}` : ''}` : event.kind,
        title: `${formatClock(event.t)} ${this.slot === 'self' ? 'this node' : 'peer'} (${this.address}): ${event.message}`,
        slot: this.slot,
        message: event.message,
      };
    });
  }

  renderHeader(now) {
    const { section } = this;
    if (!this.address) {
      this.linkState.textContent = 'no peer';
      return;
    }
    const latest = this.latest;
    section.dataset.state = this.state;
    section.dataset.samples = String(this.samplesReceived);
    section.classList.toggle('down', this.state === 'down');
    section.classList.toggle('connecting', this.state === 'connecting');
    if (this.state === 'up') this.linkState.textContent = 'live';
    else if (this.state === 'down') {
      const reason = this.stateDetail.reason ? ` (${this.stateDetail.reason})` : '';
      this.linkState.textContent = `down since ${formatClock(this.stateDetail.since)}${reason} · retrying, attempt ${this.stateDetail.attempts}`;
    } else this.linkState.textContent = 'connecting…';
    this.linkState.title = this.state === 'down' ? 'The page cannot reach this node; it keeps retrying.' : '';
    if (!latest) return;
    section.dataset.role = latest.role;
    section.dataset.generation = String(latest.generation);
    section.dataset.mode = latest.mode;
    this.roleEl.textContent = latest.role;
    this.roleEl.className = `role ${latest.role}`;
    this.generationEl.textContent = `generation ${latest.generation}`;
    this.modeEl.textContent = latest.mode;
    this.modeEl.className = `mode mode-${latest.mode}`;
    const heard = latest.peerConnected
      ? `connected, heard ${formatMs(latest.msSincePeerHeard)} ago`
      : latest.msSincePeerHeard === null
        ? 'not connected'
        : `not connected, last heard ${formatMs(latest.msSincePeerHeard)} ago`;
    const facts = [
      ['epoch', latest.epoch === null ? '–' : String(latest.epoch)],
      ['its peer', heard],
      ['held output', `${formatBytes(latest.heldOutputBytes)} in ${formatCount(latest.heldFrames)} frames`],
      [
        'last sample',
        this.state === 'up' ? formatClock(latest.t) : `${formatClock(latest.t)} (${Math.round((now - latest.t) / 1000)} s ago)`,
      ],
    ];
    this.factsEl.innerHTML = facts.map(([name, value]) => `<div><dt>${escapeText(name)}</dt><dd>${escapeText(value)}</dd></div>`).join('');
  }

  renderCharts(startMs, endMs, markers) {
    for (const chart of this.charts) chart.render({ samples: this.samples, startMs, endMs, markers, stale: this.state !== 'up' });
  }
}

/** The strip across the top: one lane per node, its events and the periods the page lost it. */
class Timeline {
  constructor(svg, log, summary) {
    this.svg = svg;
    this.log = log;
    this.summary = summary;
  }

  render(nodes, startMs, endMs) {
    const width = Math.max(300, Math.round(this.svg.clientWidth || 800));
    const laneHeight = 26;
    const left = 170;
    // Room on the right for the label of an event that just happened.
    const right = 110;
    const height = nodes.length * laneHeight + 22;
    const x = (t) => left + ((t - startMs) / (endMs - startMs)) * (width - left - right);
    const parts = [];
    for (const t of timeTicks(startMs, endMs, width - left - right)) {
      const px = x(t).toFixed(1);
      parts.push(`<line class="grid time" x1="${px}" x2="${px}" y1="0" y2="${height - 16}"/>`);
      if (x(t) > left + 24 && x(t) < width - right - 24)
        parts.push(`<text class="axis" x="${px}" y="${height - 4}" text-anchor="middle">${formatClock(t)}</text>`);
    }
    nodes.forEach((node, lane) => {
      const y0 = lane * laneHeight + 2;
      const mid = y0 + laneHeight / 2;
      const latest = node.latest;
      const who = `${node.slot === 'self' ? 'this node' : 'peer'}${latest ? ` · ${latest.role} g${latest.generation}` : ''}`;
      parts.push(`<text class="lane-label" x="6" y="${mid}" dominant-baseline="middle">${escapeText(who)}</text>`);
      parts.push(`<line class="lane" x1="${left}" x2="${width - right}" y1="${mid}" y2="${mid}"/>`);
      for (const period of node.downPeriods) {
        const from = Math.max(period.fromMs, startMs);
        const to = Math.min(period.toMs ?? endMs, endMs);
        if (to <= from) continue;
        parts.push(
          `<rect class="down-period" data-slot="${node.slot}" x="${x(from).toFixed(1)}" y="${y0 + 3}" width="${(x(to) - x(from)).toFixed(1)}" height="${laneHeight - 6}"><title>page could not reach ${escapeText(node.address)}</title></rect>`,
        );
      }
      for (const marker of node.markers()) {
        if (marker.t < startMs || marker.t > endMs) continue;
        const px = x(marker.t);
        const color = EVENT_COLORS[marker.kind] ?? '#475569';
        const size = marker.kind === 'failover' ? 7 : 5;
        parts.push(
          `<g class="event-marker" data-kind="${escapeText(marker.kind)}" data-slot="${node.slot}" data-generation="${marker.generation ?? ''}"><title>${escapeText(marker.title)}</title>` +
            `<path d="M${px.toFixed(1)} ${mid - size}L${(px + size).toFixed(1)} ${mid}L${px.toFixed(1)} ${mid + size}L${(px - size).toFixed(1)} ${mid}Z" fill="${color}"/>` +
            (marker.kind === 'failover' ? markerLabel(px, mid, width - 4, color, marker.label, 9) : '') +
            `</g>`,
        );
      }
    });
    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.svg.style.height = `${height}px`;
    this.svg.innerHTML = parts.join('');

    const all = nodes
      .flatMap((node) => node.markers())
      .sort((a, b) => b.t - a.t)
      .slice(0, EVENT_LOG_ROWS);
    this.log.innerHTML =
      all.length === 0
        ? '<li class="empty">no events yet</li>'
        : all
            .map(
              (m) =>
                `<li data-kind="${escapeText(m.kind)}" data-slot="${m.slot}" data-generation="${m.generation ?? ''}"><time>${formatClock(m.t)}</time><span class="who">${m.slot === 'self' ? 'this node' : 'peer'}</span><span class="kind" style="background:${EVENT_COLORS[m.kind] ?? '#475569'}">${escapeText(m.kind)}</span><span class="message">${escapeText(m.message)}</span></li>`,
            )
            .join('');

    this.renderSummary(nodes);
  }

  /** One line a person reads first: who serves the clients now, and whether that is protected. */
  renderSummary(nodes) {
    const serving = nodes
      .filter((node) => node.state === 'up' && node.latest?.role === 'primary')
      .sort((a, b) => b.latest.generation - a.latest.generation)[0];
    const down = nodes.filter((node) => node.address && node.state === 'down');
    let text;
    let tone;
    if (!serving) {
      text = 'no reachable primary';
      tone = 'bad';
    } else {
      const latest = serving.latest;
      const protectedNow = latest.mode === 'protected';
      text = `serving: ${serving.slot === 'self' ? 'this node' : 'peer'} ${serving.address} · primary, generation ${latest.generation} · ${protectedNow ? 'protected' : latest.mode.toUpperCase()}`;
      tone = protectedNow ? 'good' : 'warn';
    }
    if (down.length > 0) text += ` · down: ${down.map((node) => node.address).join(', ')}`;
    this.summary.textContent = text;
    this.summary.dataset.tone = tone;
  }
}

async function peerAddress() {
  const fromQuery = new URLSearchParams(location.search).get('peer');
  if (fromQuery) return fromQuery;
  try {
    const response = await fetch('/peer', { cache: 'no-store' });
    if (response.ok) return (await response.json()).peer ?? null;
  } catch {
    // The page was opened from a node without /peer: show this node alone.
  }
  return null;
}

async function main() {
  const nodesEl = document.getElementById('nodes');
  let peer = await peerAddress();
  if (peer !== null && !ADDRESS.test(peer)) {
    document.getElementById('notice').textContent = `ignored peer address "${peer}": expected HOST:PORT`;
    peer = null;
  }
  let renderPending = false;
  let lastRenderMs = 0;
  let windowChoice = 'auto';
  const windowMs = (endMs) => {
    if (windowChoice !== 'auto') return WINDOWS_MS[windowChoice];
    const firstMs = Math.min(...nodes.map((node) => node.samples[0]?.t ?? endMs));
    return Object.values(WINDOWS_MS).find((span) => span >= endMs - firstMs) ?? WINDOWS_MS['5 min'];
  };
  const render = () => {
    renderPending = false;
    lastRenderMs = performance.now();
    const endMs = Date.now();
    const startMs = endMs - windowMs(endMs);
    document.body.dataset.windowMs = String(endMs - startMs);
    const markers = nodes.flatMap((node) => node.markers());
    for (const node of nodes) {
      node.renderHeader(endMs);
      node.renderCharts(startMs, endMs, markers);
    }
    timeline.render(
      nodes.filter((node) => node.address),
      startMs,
      endMs,
    );
    document.body.dataset.renders = String(Number(document.body.dataset.renders ?? 0) + 1);
  };
  const scheduleRender = () => {
    if (renderPending) return;
    renderPending = true;
    const wait = Math.max(0, RENDER_INTERVAL_MS_MIN - (performance.now() - lastRenderMs));
    setTimeout(render, wait);
  };
  const nodes = [new NodeView('self', location.host, nodesEl, scheduleRender), new NodeView('peer', peer, nodesEl, scheduleRender)];
  const timeline = new Timeline(
    document.getElementById('timeline-svg'),
    document.getElementById('event-log'),
    document.getElementById('summary'),
  );
  const picker = document.getElementById('window');
  picker.innerHTML = ['auto', ...Object.keys(WINDOWS_MS)]
    .map((name) => `<button type="button" data-window="${name}">${name}</button>`)
    .join('');
  const pick = (name) => {
    windowChoice = name;
    for (const button of picker.querySelectorAll('button')) button.classList.toggle('chosen', button.dataset.window === name);
    scheduleRender();
  };
  picker.addEventListener('click', (event) => {
    const name = event.target.closest('button')?.dataset.window;
    if (name) pick(name);
  });
  pick('auto');
  // The time axis moves even when no sample comes (a node is down).
  setInterval(scheduleRender, 1_000);
  window.addEventListener('resize', scheduleRender);
  scheduleRender();
}

main().catch((error) => {
  document.body.textContent = `dashboard failed: ${error.message}`;
});
