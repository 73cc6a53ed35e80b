// Time-series charts drawn as SVG: every chart shares the page's time window, so a failover
// marked on one chart sits at the same moment on all of them.
import { formatClock, niceCeiling } from './format.js';

/** Width a marker's label may take before it is drawn on the left of its line instead. */
const MARKER_LABEL_PX = 90;

const SVG_NS = 'http://www.w3.org/2000/svg';
const MARGIN = { left: 50, right: 8, top: 8, bottom: 18 };
/** Samples come every 250 ms: a longer silence is a gap in the line, not a slope across it. */
const GAP_MS = 1_500;

export const EVENT_COLORS = {
  failover: '#dc2626',
  'primary-lost': '#ea580c',
  'backup-lost': '#d97706',
  deposed: '#7c3aed',
  stall: '#a16207',
  'backup-connected': '#0891b2',
  protected: '#16a34a',
};

export function escapeText(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** Evenly spaced wall-clock ticks (every 15, 30 or 60 s) inside [start, end]. */
export function timeTicks(startMs, endMs, widthPx) {
  const spanMs = endMs - startMs;
  const stepMs = [5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000].find((step) => (widthPx * step) / spanMs >= 55) ?? 300_000;
  const ticks = [];
  for (let t = Math.ceil(startMs / stepMs) * stepMs; t <= endMs; t += stepMs) ticks.push(t);
  return ticks;
}

/**
 * One chart: a title with a legend of current values, and an SVG with one line per series over
 * the time window, event markers, and optionally a band for a boolean (peer connected).
 *
 * spec: { id, title, format(value) → text, series: [{ key, label, color }], yMax?, yMinTop?, band?: { key, label } }
 */
export class TimeChart {
  constructor(parent, spec) {
    this.spec = spec;
    this.figure = document.createElement('figure');
    this.figure.className = 'chart';
    this.figure.dataset.chart = spec.id;
    this.figure.dataset.points = '0';
    const caption = document.createElement('figcaption');
    const title = document.createElement('span');
    title.className = 'chart-title';
    title.textContent = spec.title;
    this.legend = document.createElement('span');
    this.legend.className = 'legend';
    caption.append(title, this.legend);
    this.svg = document.createElementNS(SVG_NS, 'svg');
    this.svg.setAttribute('role', 'img');
    this.svg.setAttribute('aria-label', spec.title);
    this.figure.append(caption, this.svg);
    parent.append(this.figure);
  }

  /**
   * @param {{ samples: object[], startMs: number, endMs: number, markers: { t: number, kind: string, label: string, title: string }[], stale: boolean }} view
   */
  render(view) {
    const { spec } = this;
    const width = Math.max(120, Math.round(this.svg.clientWidth || 360));
    const height = Math.max(60, Math.round(this.svg.clientHeight || 120));
    const plot = { x0: MARGIN.left, x1: width - MARGIN.right, y0: MARGIN.top, y1: height - MARGIN.bottom };
    const inWindow = view.samples.filter((sample) => sample.t >= view.startMs - GAP_MS && sample.t <= view.endMs);

    let top = 0;
    for (const sample of inWindow)
      for (const series of spec.series) {
        const value = sample[series.key];
        if (typeof value === 'number' && Number.isFinite(value) && value > top) top = value;
      }
    // 10 % headroom keeps a steady line off the chart's top edge.
    top = spec.yMax ?? (spec.nice ?? niceCeiling)(Math.max(top * 1.1, spec.yMinTop ?? 1));
    const x = (t) => plot.x0 + ((t - view.startMs) / (view.endMs - view.startMs)) * (plot.x1 - plot.x0);
    const y = (value) => plot.y1 - (Math.min(value, top) / top) * (plot.y1 - plot.y0);

    const parts = [];
    parts.push(
      `<defs><clipPath id="clip-${this.clipId()}"><rect x="${plot.x0}" y="${plot.y0 - 1}" width="${plot.x1 - plot.x0}" height="${plot.y1 - plot.y0 + 2}"/></clipPath></defs>`,
    );
    // Value grid and labels: 0, half, top.
    for (const fraction of [0, 0.5, 1]) {
      const value = top * fraction;
      const py = y(value).toFixed(1);
      parts.push(`<line class="grid" x1="${plot.x0}" x2="${plot.x1}" y1="${py}" y2="${py}"/>`);
      parts.push(
        `<text class="axis" x="${plot.x0 - 4}" y="${py}" text-anchor="end" dominant-baseline="middle">${escapeText(spec.format(value))}</text>`,
      );
    }
    // Time axis.
    for (const t of timeTicks(view.startMs, view.endMs, plot.x1 - plot.x0)) {
      const px = x(t).toFixed(1);
      parts.push(`<line class="grid time" x1="${px}" x2="${px}" y1="${plot.y0}" y2="${plot.y1}"/>`);
      // A label at either end would run into the value axis or out of the chart.
      if (x(t) > plot.x0 + 24 && x(t) < plot.x1 - 24)
        parts.push(`<text class="axis" x="${px}" y="${height - 5}" text-anchor="middle">${formatClock(t)}</text>`);
    }
    parts.push(`<g clip-path="url(#clip-${this.clipId()})">`);
    if (spec.band) parts.push(this.band(inWindow, spec.band, x, plot));
    let pointsPlotted = 0;
    spec.series.forEach((series, index) => {
      const { path, points, area } = linePath(inWindow, series.key, x, y, plot.y1);
      pointsPlotted = Math.max(pointsPlotted, points);
      if (spec.series.length === 1 && area) parts.push(`<path class="area" d="${area}" fill="${series.color}"/>`);
      parts.push(
        `<path class="line${index > 0 ? ' secondary' : ''}" data-series="${series.key}" data-points="${points}" d="${path}" stroke="${series.color}"/>`,
      );
    });
    for (const marker of view.markers) {
      if (marker.t < view.startMs || marker.t > view.endMs) continue;
      const px = x(marker.t).toFixed(1);
      const color = EVENT_COLORS[marker.kind] ?? '#475569';
      const strong = marker.kind === 'failover';
      parts.push(
        `<g class="marker marker-${escapeText(marker.kind)}" data-kind="${escapeText(marker.kind)}"><title>${escapeText(marker.title)}</title>` +
          `<line x1="${px}" x2="${px}" y1="${plot.y0}" y2="${plot.y1}" stroke="${color}" stroke-width="${strong ? 2 : 1}"${strong ? '' : ' stroke-dasharray="3 3"'}/>` +
          (strong ? markerLabel(Number(px), plot.y0 + 9, plot.x1, color, marker.label, 3) : '') +
          `</g>`,
      );
    }
    parts.push('</g>');
    if (pointsPlotted === 0) {
      parts.push(
        `<text class="empty" x="${(plot.x0 + plot.x1) / 2}" y="${(plot.y0 + plot.y1) / 2}" text-anchor="middle" dominant-baseline="middle">no data</text>`,
      );
    }
    parts.push(`<rect class="frame" x="${plot.x0}" y="${plot.y0}" width="${plot.x1 - plot.x0}" height="${plot.y1 - plot.y0}"/>`);

    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.svg.innerHTML = parts.join('');
    this.figure.dataset.points = String(pointsPlotted);
    this.figure.classList.toggle('stale', view.stale);

    const last = inWindow.at(-1);
    this.legend.innerHTML = spec.series
      .map((series) => {
        const value = last ? last[series.key] : null;
        return `<span class="key"><i style="background:${series.color}"></i>${escapeText(series.label)} <b>${escapeText(spec.format(value))}</b></span>`;
      })
      .join('');
    if (last) this.figure.dataset.last = String(last[spec.series[0].key] ?? '');
  }

  clipId() {
    return `${this.figure.closest('[data-slot]')?.dataset.slot ?? 'x'}-${this.spec.id}`;
  }

  /** A strip along the bottom: green while the boolean holds, red while it does not. */
  band(samples, band, x, plot) {
    const rects = [];
    for (let i = 0; i < samples.length; i++) {
      const sample = samples[i];
      const next = samples[i + 1];
      const end = next && next.t - sample.t <= GAP_MS ? next.t : sample.t + 250;
      const on = Boolean(sample[band.key]);
      rects.push(
        `<rect class="band ${on ? 'on' : 'off'}" x="${x(sample.t).toFixed(1)}" y="${plot.y1 - 6}" width="${Math.max(0.5, x(end) - x(sample.t)).toFixed(1)}" height="6"><title>${escapeText(band.label)}: ${on ? 'yes' : 'no'}</title></rect>`,
      );
    }
    return rects.join('');
  }
}

/** A marker's label beside its line: on the right, or on the left near the right edge. */
export function markerLabel(px, py, rightEdge, color, label, gap) {
  const flip = px + gap + MARKER_LABEL_PX > rightEdge;
  const x = flip ? px - gap : px + gap;
  return `<text class="marker-label" x="${x.toFixed(1)}" y="${py}" text-anchor="${flip ? 'end' : 'start'}" dominant-baseline="middle" fill="${color}">${escapeText(label)}</text>`;
}

/** An SVG path through the samples' values, broken at nulls and at gaps in time. */
function linePath(samples, key, x, y, baseline) {
  let path = '';
  let area = '';
  let points = 0;
  let run = [];
  const flush = () => {
    if (run.length === 0) return;
    path += run.map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${px} ${py}`).join('');
    area += `M${run[0][0]} ${baseline}${run.map(([px, py]) => `L${px} ${py}`).join('')}L${run.at(-1)[0]} ${baseline}Z`;
    run = [];
  };
  let previousT = -Infinity;
  for (const sample of samples) {
    const value = sample[key];
    const usable = typeof value === 'number' && Number.isFinite(value);
    if (!usable || sample.t - previousT > GAP_MS) flush();
    previousT = sample.t;
    if (!usable) continue;
    run.push([x(sample.t).toFixed(1), y(Math.max(0, value)).toFixed(1)]);
    points++;
  }
  flush();
  return { path, points, area };
}
