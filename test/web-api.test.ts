/**
 * The JSON API over a real store: every filter, paging with beforeId, one alert in full, the
 * stats behind the dashboard, bad parameters answered 400 by name, and the live stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, falcoAlert, openStream, startWeb, type Running } from './helpers/web.js';

const TOKEN = 'api-test-token-0123456789';
// Two hours ago, on a 10-minute boundary (the timeline's buckets), well inside retention.
const BASE = Math.floor((Date.now() - 2 * 3600_000) / 600_000) * 600_000;
const RULES = ['Rule A', 'Rule B', 'Rule C', 'Rule D'];
const PRIOS = ['Critical', 'Warning', 'Notice', 'Error', 'Emergency'];
const N = 40;

interface Seed {
  rule: string;
  priority: string;
  at: number;
  host: string;
  namespace: string | null;
  marked: boolean;
}

const seeds: Seed[] = Array.from({ length: N }, (_, i) => ({
  rule: RULES[i % RULES.length]!,
  priority: PRIOS[i % PRIOS.length]!,
  at: BASE + i * 60_000,
  host: i % 3 === 0 ? 'node-x' : 'node-y',
  namespace: i % 4 === 3 ? null : i % 2 ? 'ns-odd' : 'ns-even',
  marked: i % 10 === 7,
}));

const RANK: Record<string, number> = { Emergency: 0, Alert: 1, Critical: 2, Error: 3, Warning: 4, Notice: 5, Informational: 6, Debug: 7 };

describe('JSON API', { timeout: 60_000 }, () => {
  let web: Running;
  const ids: number[] = [];
  const get = async (path: string) => {
    const r = await call(web.url, path, { token: TOKEN });
    assert.equal(r.status, 200, `${path}: ${r.text}`);
    return r.json;
  };
  const rulesOf = async (qs: string) => (await get(`/api/alerts?limit=1000&${qs}`)).alerts as { id: number; rule: string; priority: string; hostname: string; namespace: string | null; output: string; last_seen: string }[];

  before(async () => {
    web = await startWeb({ token: TOKEN });
    for (const s of seeds) {
      const a = falcoAlert({ ...s, output: `${s.marked ? 'Wallet XMR-Marker seen' : 'Miner started'} by proc ${s.rule}` });
      const r = await call(web.url, '/', { token: TOKEN, body: a });
      assert.equal(r.status, 200, r.text);
      ids.push(r.json.ids[0]);
    }
  });
  after(() => web.close());

  test('without filters: every alert, newest first', async () => {
    const all = await rulesOf('');
    assert.equal(all.length, N);
    const got = all.map((a) => a.id);
    assert.deepEqual(got, [...got].sort((a, b) => b - a));
  });

  test('filters: rule, priority, minPriority, host, namespace, text, time range', async () => {
    const count = (pred: (s: Seed) => boolean) => seeds.filter(pred).length;
    assert.equal((await rulesOf('rule=Rule%20B')).length, count((s) => s.rule === 'Rule B'));
    assert.ok((await rulesOf('rule=Rule%20B')).every((a) => a.rule === 'Rule B'));
    assert.equal((await rulesOf('rule=Rule%20A&rule=Rule%20C')).length, count((s) => s.rule === 'Rule A' || s.rule === 'Rule C'));
    const warn = await rulesOf('priority=warning');
    assert.equal(warn.length, count((s) => s.priority === 'Warning'));
    assert.ok(warn.every((a) => a.priority === 'Warning'));
    assert.equal((await rulesOf('minPriority=error')).length, count((s) => RANK[s.priority]! <= RANK.Error!));
    assert.equal((await rulesOf('host=node-x')).length, count((s) => s.host === 'node-x'));
    assert.equal((await rulesOf('namespace=ns-odd')).length, count((s) => s.namespace === 'ns-odd'));
    assert.equal((await rulesOf('namespace=ns-odd&priority=Critical&host=node-y')).length, count((s) => s.namespace === 'ns-odd' && s.priority === 'Critical' && s.host === 'node-y'));
    const marked = await rulesOf('q=xmr-marker');
    assert.equal(marked.length, count((s) => s.marked));
    assert.ok(marked.every((a) => a.output.includes('XMR-Marker')));
    const from = new Date(BASE + 10 * 60_000).toISOString();
    const to = BASE + 20 * 60_000;
    assert.equal((await rulesOf(`from=${from}&to=${to}`)).length, 10, 'from inclusive, to exclusive');
    assert.equal((await rulesOf(`from=${BASE + 35 * 60_000}`)).length, 5);
    assert.equal((await rulesOf('rule=No%20Such%20Rule')).length, 0);
  });

  test('paging with limit and beforeId visits every alert once', async () => {
    const seen: number[] = [];
    let before: number | null = null;
    for (let pages = 0; pages < 20; pages++) {
      const page: { alerts: { id: number }[]; next_before_id: number | null } = await get(`/api/alerts?limit=7${before ? `&beforeId=${before}` : ''}`);
      seen.push(...page.alerts.map((a) => a.id));
      assert.ok(page.alerts.length <= 7);
      if (page.next_before_id === null) break;
      assert.equal(page.next_before_id, page.alerts.at(-1)!.id);
      before = page.next_before_id;
    }
    assert.equal(seen.length, N);
    assert.deepEqual([...seen].sort((a, b) => a - b), [...ids].sort((a, b) => a - b));
    assert.deepEqual(seen, [...seen].sort((a, b) => b - a));
  });

  test('one alert in full', async () => {
    const i = 5;
    const a = await get(`/api/alerts/${ids[i]}`);
    assert.equal(a.id, ids[i]);
    assert.equal(a.rule, seeds[i]!.rule);
    assert.equal(a.priority, seeds[i]!.priority);
    assert.equal(a.count, 1);
    assert.equal(Date.parse(a.first_seen), seeds[i]!.at);
    assert.equal(a.first_seen_ns, `${BigInt(seeds[i]!.at) * 1_000_000n + 123_456n}`);
    assert.equal(a.output_fields['proc.name'], 'xmrig');
    assert.deepEqual(a.tags, ['mitre_impact', 'cryptomining']);
    assert.ok('event' in a && 'changed' in a);
    const missing = await call(web.url, '/api/alerts/999999', { token: TOKEN });
    assert.equal(missing.status, 404);
    assert.match(missing.json.error, /no alert with id 999999/);
    assert.equal((await call(web.url, '/api/alerts/abc', { token: TOKEN })).status, 400);
  });

  test('stats: counts by priority, rule, namespace, host, and a timeline', async () => {
    const s = await get(`/api/stats?from=${BASE}&to=${BASE + N * 60_000}&bucket=10m`);
    assert.equal(s.groups, N);
    assert.equal(s.matches, N);
    assert.equal(s.bucket_ms, 600_000);
    for (const p of PRIOS) assert.equal(s.by_priority[p], seeds.filter((x) => x.priority === p).length, p);
    assert.deepEqual(Object.fromEntries(s.by_rule), Object.fromEntries(RULES.map((r) => [r, seeds.filter((x) => x.rule === r).length])));
    assert.deepEqual(Object.fromEntries(s.by_namespace), { 'ns-odd': seeds.filter((x) => x.namespace === 'ns-odd').length, 'ns-even': seeds.filter((x) => x.namespace === 'ns-even').length });
    assert.deepEqual(Object.fromEntries(s.by_hostname), { 'node-x': 14, 'node-y': 26 });
    assert.deepEqual(s.timeline, [0, 1, 2, 3].map((k) => ({ t: BASE + k * 600_000, count: 10 })));
    const filtered = await get(`/api/stats?rule=Rule%20A&from=${BASE}`);
    assert.equal(filtered.matches, seeds.filter((x) => x.rule === 'Rule A').length);
    assert.deepEqual(filtered.by_rule, [['Rule A', filtered.matches]]);
    assert.equal(filtered.timeline.reduce((n: number, b: { count: number }) => n + b.count, 0), filtered.matches);
  });

  test('a bad parameter is answered 400 by name', async () => {
    const cases: [string, RegExp][] = [
      ['/api/alerts?limit=0', /^limit: '0' is not a whole number/],
      ['/api/alerts?limit=5000', /^limit: at most 1000/],
      ['/api/alerts?beforeId=x', /^beforeId:/],
      ['/api/alerts?priority=urgent', /^priority: 'urgent' is not a priority/],
      ['/api/alerts?minPriority=x', /^minPriority:/],
      ['/api/alerts?from=yesterday', /^from: 'yesterday' is not a time/],
      [`/api/alerts?from=${BASE + 1000}&to=${BASE}`, /^from: must be before to/],
      ['/api/stats?bucket=3x', /^bucket: '3x' is not a duration/],
      ['/api/stats?bucket=500ms', /^bucket: at least 1s/],
      [`/api/stats?from=${BASE}&to=${BASE + 86400_000 * 30}&bucket=1s`, /^bucket: 1s over this range makes more than 10000 buckets/],
    ];
    for (const [path, why] of cases) {
      const r = await call(web.url, path, { token: TOKEN });
      assert.equal(r.status, 400, path);
      assert.match(r.json.error, why, path);
    }
  });

  test('the stream delivers a new alert as it is stored', async () => {
    const stream = await openStream(web.url, TOKEN);
    try {
      const a = falcoAlert({ rule: 'Live Rule', priority: 'Alert', host: 'node-live' });
      const r = await call(web.url, '/falco', { token: TOKEN, body: a });
      assert.equal(r.status, 200);
      const ev = await stream.next((e) => e.event === 'alert' && e.data.alert.rule === 'Live Rule');
      assert.equal(ev.data.change, 'new');
      assert.equal(ev.data.alert.id, r.json.ids[0]);
      assert.equal(ev.id, String(r.json.ids[0]));
      assert.equal(ev.data.alert.priority, 'Alert');
      assert.equal(ev.data.alert.hostname, 'node-live');
    } finally {
      stream.close();
    }
  });

  test('a repeat inside the throttle window is counted into its group, and the stream says so', async () => {
    const stream = await openStream(web.url, TOKEN);
    try {
      const a = falcoAlert({ rule: 'Repeated Rule', host: 'node-rep', container: 'c0000000rep1' });
      const first = await call(web.url, '/', { token: TOKEN, body: a });
      const id = first.json.ids[0];
      assert.equal((await stream.next((e) => e.data.alert.id === id)).data.change, 'new');
      const again = await call(web.url, '/', { token: TOKEN, body: [{ ...a, output_fields: { ...a.output_fields, 'proc.name': 'xmrig2' } }] });
      assert.equal(again.status, 200);
      assert.deepEqual(again.json.ids, [null], 'no new row for a repeat');
      const upd = await stream.next((e) => e.data.alert.id === id && e.data.change === 'update');
      assert.equal(upd.data.alert.count, 2);
      const full = await call(web.url, `/api/alerts/${id}`, { token: TOKEN });
      assert.equal(full.json.count, 2);
      assert.equal(full.json.window_open, true);
      assert.deepEqual(full.json.changed['proc.name'], ['xmrig', 'xmrig2']);
    } finally {
      stream.close();
    }
  });
});
