// The dashboard: summary counts, timeline, filtered table, an alert's detail, live updates.
// Everything an alert holds is shown with textContent (never as HTML): alert text is written by
// whoever ran the process that matched.
import { AuthError, followStream, getJSON, getToken, setToken } from './api.js';
import { drawTimeline } from './chart.js';

const PRIORITIES = ['Emergency', 'Alert', 'Critical', 'Error', 'Warning', 'Notice', 'Informational', 'Debug'];
const RANGES = { '15m': 900e3, '1h': 3600e3, '6h': 6 * 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3, all: null };
const PAGE = 50;

const $ = (id) => document.getElementById(id);

/** h('td', { class: 'x' }, 'text', child…): an element; strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  return e;
}

const state = {
  rows: new Map(), // id → alert (as listed)
  nextBefore: null,
  selected: null,
  loading: 0,
  lastStats: null,
  statsTimer: null,
  statsMs: 0,
};

// ---- filters ---------------------------------------------------------------------------------

function filters() {
  const range = $('f-range').value;
  const span = RANGES[range] ?? null;
  return {
    range,
    from: span === null ? null : Date.now() - span,
    priority: $('f-priority').value,
    rule: $('f-rule').value,
    namespace: $('f-namespace').value,
    host: $('f-host').value,
    q: $('f-q').value.trim(),
  };
}

function params(f, withFacets = true) {
  const p = { from: f.from ?? undefined };
  if (withFacets) Object.assign(p, { priority: f.priority, rule: f.rule, namespace: f.namespace, host: f.host, q: f.q });
  return p;
}

/** Whether a streamed alert belongs in the current view. */
function matches(a, f) {
  if (f.from !== null && Date.parse(a.last_seen) < f.from) return false;
  if (f.priority && a.priority !== f.priority) return false;
  if (f.rule && a.rule !== f.rule) return false;
  if (f.namespace && a.namespace !== f.namespace) return false;
  if (f.host && a.hostname !== f.host) return false;
  if (f.q && !a.output.toLowerCase().includes(f.q.toLowerCase())) return false;
  return true;
}

/** Keep the filters in the address, so a view can be bookmarked and reloaded. */
function saveFiltersToHash() {
  const f = filters();
  const sp = new URLSearchParams();
  for (const k of ['range', 'priority', 'rule', 'namespace', 'host', 'q']) if (f[k] && !(k === 'range' && f[k] === '24h')) sp.set(k, f[k]);
  if (state.selected !== null) sp.set('alert', String(state.selected));
  const hash = sp.toString();
  history.replaceState(null, '', hash ? `#${hash}` : location.pathname);
}

function setSelect(sel, value) {
  if (value && ![...sel.options].some((o) => o.value === value)) sel.append(h('option', { value }, value));
  sel.value = value ?? '';
}

function loadFiltersFromHash() {
  const sp = new URLSearchParams(location.hash.slice(1));
  if (sp.get('range') && sp.get('range') in RANGES) $('f-range').value = sp.get('range');
  setSelect($('f-priority'), sp.get('priority') ?? '');
  setSelect($('f-rule'), sp.get('rule') ?? '');
  setSelect($('f-namespace'), sp.get('namespace') ?? '');
  setSelect($('f-host'), sp.get('host') ?? '');
  $('f-q').value = sp.get('q') ?? '';
  const id = Number(sp.get('alert'));
  return Number.isInteger(id) && id > 0 ? id : null;
}

/** Fill a facet <select> with values seen in the range, keeping the current choice. */
function fillSelect(sel, pairs) {
  const cur = sel.value;
  const opts = [h('option', { value: '' }, 'any')];
  const seen = new Set();
  for (const [v, n] of pairs) {
    seen.add(v);
    opts.push(h('option', { value: v }, `${v} (${n})`));
  }
  if (cur && !seen.has(cur)) opts.push(h('option', { value: cur }, cur));
  sel.replaceChildren(...opts);
  sel.value = cur;
}

// ---- loading ---------------------------------------------------------------------------------

function showError(e) {
  const box = $('error');
  if (!e) {
    box.hidden = true;
    return;
  }
  if (e instanceof AuthError) {
    askToken();
    return;
  }
  box.textContent = `Could not load: ${e.message}`;
  box.hidden = false;
}

async function loadStats() {
  const f = filters();
  const t0 = performance.now();
  // The choices in the filter lists come from the time range alone; with no other filter set the
  // two are the same query, asked once.
  const filtered = Boolean(f.priority || f.rule || f.namespace || f.host || f.q);
  const asked = getJSON('/api/stats', params(f));
  const [facets, stats] = await Promise.all([filtered ? getJSON('/api/stats', params(f, false)) : asked, asked]);
  state.statsMs = performance.now() - t0;
  fillSelect($('f-rule'), facets.by_rule);
  fillSelect($('f-namespace'), facets.by_namespace);
  fillSelect($('f-host'), facets.by_hostname);
  const prios = PRIORITIES.map((p) => [p, facets.by_priority[p] ?? 0]).filter(([p, n]) => n > 0 || p === f.priority);
  fillSelect($('f-priority'), prios);
  state.lastStats = { stats, from: f.from };
  renderSummary(stats, f);
}

async function loadTable(append = false) {
  const f = filters();
  const p = { ...params(f), limit: PAGE };
  if (append && state.nextBefore !== null) p.beforeId = state.nextBefore;
  const { alerts, next_before_id } = await getJSON('/api/alerts', p);
  const body = $('alerts').tBodies[0];
  if (!append) {
    state.rows.clear();
    body.replaceChildren();
  }
  for (const a of alerts) {
    state.rows.set(a.id, a);
    body.append(row(a));
  }
  state.nextBefore = next_before_id;
  $('more').hidden = next_before_id === null;
  $('empty').hidden = state.rows.size > 0;
}

async function reload() {
  saveFiltersToHash();
  try {
    await Promise.all([loadStats(), loadTable(false)]);
    showError(null);
  } catch (e) {
    showError(e);
  }
}

/**
 * Stats after live changes: at most once a second, and no more often than five times what the
 * last stats took (over a long range on a large store they are the costly query).
 */
function refreshStatsSoon() {
  if (state.statsTimer) return;
  const wait = Math.max(1000, 5 * state.statsMs);
  state.statsTimer = setTimeout(async () => {
    state.statsTimer = null;
    try {
      await loadStats();
    } catch (e) {
      showError(e);
    }
  }, wait);
}

// ---- rendering -------------------------------------------------------------------------------

function prioBadge(p) {
  return h('span', { class: `prio prio-${p.toLowerCase()}` }, p);
}

function fmtTime(iso) {
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  const t = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return today ? t : `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${t}`;
}

function row(a) {
  const where = [a.namespace, a.pod].filter(Boolean).join(' / ') || (a.container_name ?? '');
  return h('tr', { dataset: { id: a.id }, tabindex: 0, class: a.id === state.selected ? 'selected' : undefined,
    onclick: () => openDetail(a.id), onkeydown: (e) => { if (e.key === 'Enter') openDetail(a.id); } },
  h('td', { class: 'c-time', title: a.last_seen }, fmtTime(a.last_seen)),
  h('td', { class: 'c-prio' }, prioBadge(a.priority)),
  h('td', { class: 'c-rule' }, a.rule),
  h('td', { class: 'c-host' }, a.hostname),
  h('td', { class: 'c-where' }, where),
  h('td', { class: 'c-count' }, String(a.count)),
  h('td', { class: 'c-output', title: a.output }, a.output));
}

/** A bar showing a share (its width set through the CSSOM: the page's CSP forbids inline styles). */
function meter(share) {
  const bar = h('span');
  bar.style.width = `${Math.round(share * 100)}%`;
  return h('span', { class: 'meter' }, bar);
}

function countList(ul, pairs, onPick, labelOf = (v) => v) {
  const max = Math.max(1, ...pairs.map(([, n]) => n));
  ul.replaceChildren(...pairs.slice(0, 8).map(([v, n]) => h('li', {},
    h('button', { type: 'button', class: 'pick', title: `Show only ${v}`, onclick: () => onPick(v) }, labelOf(v)),
    meter(n / max),
    h('span', { class: 'n' }, n.toLocaleString()))));
  if (!pairs.length) ul.replaceChildren(h('li', { class: 'muted' }, 'none'));
}

function pick(sel) {
  return (v) => {
    setSelect(sel, v);
    void reload();
  };
}

function renderSummary(s, f) {
  $('total-matches').textContent = s.matches.toLocaleString();
  $('total-groups').textContent = s.groups.toLocaleString();
  const prio = PRIORITIES.filter((p) => s.by_priority[p]).map((p) => [p, s.by_priority[p]]);
  countList($('by-priority'), prio, pick($('f-priority')), prioBadge);
  countList($('by-rule'), s.by_rule, pick($('f-rule')));
  countList($('by-namespace'), s.by_namespace, pick($('f-namespace')));
  countList($('by-host'), s.by_hostname, pick($('f-host')));
  drawChart(s, f.from);
}

function drawChart(s, from) {
  const step = drawTimeline($('timeline'), s.timeline, s.bucket_ms, from, Date.now());
  $('bucket-label').textContent = `(per ${duration(step)})`;
}

function duration(ms) {
  for (const [u, n] of [['d', 86400e3], ['h', 3600e3], ['min', 60e3], ['s', 1e3]]) if (ms >= n && ms % n === 0) return `${ms / n} ${u}`;
  return `${ms} ms`;
}

// ---- detail ----------------------------------------------------------------------------------

function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '').flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function fieldTable(obj, render = (v) => (v === null ? '<NA>' : String(v))) {
  const keys = Object.keys(obj ?? {}).sort();
  if (!keys.length) return h('p', { class: 'muted' }, 'none');
  return h('table', { class: 'fields' }, h('tbody', {}, keys.map((k) => h('tr', {}, h('th', {}, k), h('td', {}, render(obj[k]))))));
}

async function openDetail(id) {
  state.selected = id;
  for (const tr of $('alerts').tBodies[0].rows) tr.classList.toggle('selected', Number(tr.dataset.id) === id);
  saveFiltersToHash();
  let a;
  try {
    a = await getJSON(`/api/alerts/${id}`);
  } catch (e) {
    showError(e);
    return;
  }
  if (state.selected !== id) return;
  $('detail-title').replaceChildren(prioBadge(a.priority), ' ', a.rule);
  $('detail-body').replaceChildren(
    h('pre', { class: 'output' }, a.output),
    kv([
      ['Count', a.count.toLocaleString()],
      ['First seen', `${new Date(a.first_seen).toLocaleString()}  (${a.first_seen})`],
      ['Last seen', `${new Date(a.last_seen).toLocaleString()}  (${a.last_seen})`],
      ['Window', a.window_open ? 'open: repeats are still being counted' : 'closed'],
      ['Host', a.hostname],
      ['Source', a.source],
      ['Namespace', a.namespace],
      ['Pod', a.pod],
      ['Container', [a.container_name, a.container_id].filter(Boolean).join('  ')],
      ['Tags', a.tags.join(', ')],
      ['Origin', a.origin === 'local' ? 'this agent' : 'received (Falco or another agent)'],
      ['Group key', a.group_key],
      ['UUID', a.uuid],
      ['Id', String(a.id)],
    ]),
    h('h3', {}, 'Output fields'),
    fieldTable(a.output_fields),
    h('h3', {}, 'Changed across repeats'),
    fieldTable(a.changed, (vs) => vs.map((v) => (v === null ? '<NA>' : String(v))).join(', ')),
    h('h3', {}, 'Event'),
    a.event === null || a.event === undefined ? h('p', { class: 'muted' }, 'not kept (the alert was received, not matched here)') : h('pre', { class: 'json' }, JSON.stringify(a.event, null, 2)),
  );
  $('detail').hidden = false;
  $('detail').dataset.id = String(id);
}

function closeDetail() {
  state.selected = null;
  $('detail').hidden = true;
  for (const tr of $('alerts').tBodies[0].querySelectorAll('tr.selected')) tr.classList.remove('selected');
  saveFiltersToHash();
}

// ---- live ------------------------------------------------------------------------------------

function onLive({ change, alert }) {
  const f = filters();
  refreshStatsSoon();
  if (!matches(alert, f)) return;
  const body = $('alerts').tBodies[0];
  const old = body.querySelector(`tr[data-id="${alert.id}"]`);
  const tr = row(alert);
  tr.classList.add('fresh');
  state.rows.set(alert.id, alert);
  if (old) old.replaceWith(tr);
  else if (change === 'new') body.prepend(tr);
  else return;
  $('empty').hidden = true;
  if (state.selected === alert.id) void openDetail(alert.id);
}

function setLive(s) {
  const el = $('live-status');
  el.className = `live ${s === 'live' ? 'on' : 'off'}`;
  el.textContent = s === 'live' ? 'live' : s === 'unauthorized' ? 'needs token' : 'reconnecting…';
}

let stopStream = null;
let wasLive = false;

function startStream() {
  stopStream?.();
  stopStream = followStream(onLive, (s) => {
    setLive(s);
    if (s === 'live' && wasLive) void reload(); // catch up on what the break missed
    if (s === 'live') wasLive = true;
    if (s === 'unauthorized') askToken();
  });
}

// ---- token -----------------------------------------------------------------------------------

function askToken() {
  const d = $('token-dialog');
  if (d.open) return;
  $('token-input').value = getToken();
  d.showModal();
}

/**
 * A token in the address (`/?token=…`, as the agent prints it on its terminal) is kept for this
 * tab and taken out of the address bar at once, so it is not left in the history or a bookmark.
 */
function tokenFromAddress() {
  const u = new URL(location.href);
  if (!u.searchParams.has('token')) return;
  const t = u.searchParams.get('token').trim();
  if (t) setToken(t);
  u.searchParams.delete('token');
  history.replaceState(history.state, '', u.pathname + u.search + u.hash);
}

function initToken() {
  tokenFromAddress();
  $('token-button').addEventListener('click', askToken);
  $('token-form').addEventListener('submit', () => {
    setToken($('token-input').value.trim());
    startStream();
    void reload();
  });
  $('token-clear').addEventListener('click', () => {
    setToken('');
    $('token-input').value = '';
    $('token-dialog').close();
  });
}

// ---- start -----------------------------------------------------------------------------------

function init() {
  const selected = loadFiltersFromHash();
  for (const id of ['f-range', 'f-priority', 'f-rule', 'f-namespace', 'f-host']) $(id).addEventListener('change', () => void reload());
  let typing;
  $('f-q').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => void reload(), 250);
  });
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    void reload();
  });
  $('f-clear').addEventListener('click', () => {
    $('f-range').value = '24h';
    for (const id of ['f-priority', 'f-rule', 'f-namespace', 'f-host']) $(id).value = '';
    $('f-q').value = '';
    void reload();
  });
  $('more').addEventListener('click', async () => {
    try {
      await loadTable(true);
    } catch (e) {
      showError(e);
    }
  });
  $('detail-close').addEventListener('click', closeDetail);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('detail').hidden) closeDetail();
  });
  let resize;
  window.addEventListener('resize', () => {
    clearTimeout(resize);
    resize = setTimeout(() => state.lastStats && drawChart(state.lastStats.stats, state.lastStats.from), 150);
  });
  initToken();
  startStream();
  void reload().then(() => {
    if (selected !== null) void openDetail(selected);
  });
}

init();
