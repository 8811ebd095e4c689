// The timeline: matches per time bucket as SVG bars, drawn at the container's width.

const SVG = 'http://www.w3.org/2000/svg';
const MAX_BARS = 400;

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
  const ticks = Math.min(6, n);
  for (let k = 0; k <= ticks; k++) {
    const i = Math.round((k / ticks) * n);
    const x = pad.l + i * bw;
    svg.append(el('text', { x, y: height - 6, 'text-anchor': k === 0 ? 'start' : k === ticks ? 'end' : 'middle', class: 'tick' }, label(start + i * step, end - start)));
  }
  container.append(svg);
  return step;
}
