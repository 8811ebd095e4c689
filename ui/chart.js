// The timeline: matches per time bucket as SVG bars, drawn at the container's width.

const SVG = 'http://www.w3.org/2000/svg';
const MAX_BARS = 400;
const TICKS = [60e3, 300e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3];

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function label(ms, spanMs) {
  const d = new Date(ms);
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (spanMs <= 36 * 3600_000) return hm;
  return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })}${spanMs <= 8 * 86400_000 ? ` ${hm}` : ''}`;
}

/**
 * timeline: [{ t, count }] oldest first (t: bucket start, ms); fromMs/toMs: the range shown
 * (fromMs null: from the first bucket). Empty buckets are drawn as gaps.
 */
export function drawTimeline(container, timeline, bucketMs, fromMs, toMs) {
  container.replaceChildren();
  const width = Math.max(300, container.clientWidth || 800);
  const height = 140;
  const pad = { l: 40, r: 8, t: 8, b: 22 };
  let start = fromMs !== null ? Math.floor(fromMs / bucketMs) * bucketMs : (timeline[0]?.t ?? Math.floor(toMs / bucketMs) * bucketMs);
  const end = Math.max(toMs, (timeline.at(-1)?.t ?? 0) + bucketMs);
  if (start >= end) start = end - bucketMs;
  // Too many buckets for the width: merge neighbours.
  let step = bucketMs;
  while ((end - start) / step > MAX_BARS) step *= 2;
  start = Math.floor(start / step) * step;
  const n = Math.max(1, Math.ceil((end - start) / step));
  const bars = new Array(n).fill(0);
  for (const p of timeline) {
    const i = Math.floor((p.t - start) / step);
    if (i >= 0 && i < n) bars[i] += p.count;
  }
  const max = Math.max(1, ...bars);
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'alerts over time' });
  const plotW = width - pad.l - pad.r;
  const plotH = height - pad.t - pad.b;
  const bw = plotW / n;
  svg.append(el('line', { x1: pad.l, y1: pad.t + plotH, x2: width - pad.r, y2: pad.t + plotH, class: 'axis' }));
  svg.append(el('text', { x: pad.l - 6, y: pad.t + 10, 'text-anchor': 'end', class: 'tick' }, String(max)));
  svg.append(el('text', { x: pad.l - 6, y: pad.t + plotH, 'text-anchor': 'end', class: 'tick' }, '0'));
  bars.forEach((c, i) => {
    if (!c) return;
    const h = Math.max(1.5, (c / max) * plotH);
    const r = el('rect', { x: pad.l + i * bw + (bw > 3 ? 0.5 : 0), y: pad.t + plotH - h, width: Math.max(1, bw - (bw > 3 ? 1 : 0)), height: h, class: 'bar' });
    const t0 = start + i * step;
    r.append(el('title', {}, `${new Date(t0).toLocaleString()} — ${c} alert${c === 1 ? '' : 's'}`));
    svg.append(r);
  });
  // Time labels on round local times (every 5 min, 1 h, 6 h, a day…), at most about seven.
  const span = end - start;
  const every = TICKS.find((t) => span / t <= 7) ?? TICKS[TICKS.length - 1];
  const offset = new Date(start).getTimezoneOffset() * 60_000;
  for (let t = Math.ceil((start - offset) / every) * every + offset; t <= end; t += every) {
    const x = pad.l + ((t - start) / span) * plotW;
    if (x < pad.l + 20 || x > width - pad.r - 20) continue;
    svg.append(el('line', { x1: x, y1: pad.t + plotH, x2: x, y2: pad.t + plotH + 4, class: 'axis' }));
    svg.append(el('text', { x, y: height - 6, 'text-anchor': 'middle', class: 'tick' }, label(t, span)));
  }
  container.append(svg);
  return step;
}
