/**
 * The PostgreSQL alert store against a real PostgreSQL (test/helpers/postgres.ts), and the hourly
 * rollups of both stores: migrations (fresh, again, two at once), idempotent writes, rollups equal
 * to a recount from the groups, stats through the rollups equal to stats from the groups,
 * retention taking groups out of the rollups, one claim per delivery across two store instances,
 * changes announced to a second instance.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { AlertStore, type NewGroup } from '../src/alerts/store.js';
import { PgAlertStore, type WriteResult } from '../src/alerts/pg/store.js';
import { LATEST_VERSION, migrate, MIGRATIONS, schemaVersion } from '../src/alerts/pg/migrations.js';
import { HOUR_NS } from '../src/alerts/rollup.js';
import { DIMS } from '../src/alerts/rollup.js';
import { priorityRank, type Priority } from '../src/engine/types.js';
import type { AlertRecord, AlertStats } from '../src/alerts/types.js';
import { postgresUnavailable, startPostgres, type Postgres } from './helpers/postgres.js';
import { prng } from './helpers/prng.js';

const skip = postgresUnavailable();
const T0 = 1_780_000_000_000_000_000n - (1_780_000_000_000_000_000n % HOUR_NS);

function group(i: number, over: Partial<NewGroup> = {}): NewGroup {
  return {
    uuid: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    groupKey: `k${i}`,
    rule: `rule ${i % 4}`,
    priority: (['CRITICAL', 'WARNING', 'NOTICE'] as Priority[])[i % 3]!,
    source: 'syscall',
    tags: ['miner'],
    hostname: `host-${i % 3}`,
    output: `xmrig started pid=${i} pool=pool${i % 5}.example`,
    outputFields: { 'proc.pid': i },
    firstSeen: T0,
    lastSeen: T0 + BigInt((i * 7) % 70) * HOUR_NS + BigInt(i) * 1_000_000_000n,
    count: 1 + (i % 7),
    changed: {},
    namespace: i % 3 === 0 ? null : `ns-${i % 2}`,
    pod: null,
    containerId: null,
    containerName: null,
    event: null,
    origin: 'input',
    windowEnd: null,
    ...over,
  };
}

type RollupRow = { dim: string; hour: number; prank: number; value: string; groups: number; matches: number };

/** The rollup rows a recount of these groups gives. */
function recount(groups: AlertRecord[]): RollupRow[] {
  const m = new Map<string, RollupRow>();
  const add = (dim: string, g: AlertRecord, value: string | null, daily = false) => {
    if (value === null) return;
    const h = Number(g.lastSeen / HOUR_NS);
    const hour = daily ? Math.floor(h / 24) * 24 : h;
    const k = `${dim}\u0000${hour}\u0000${priorityRank(g.priority)}\u0000${value}`;
    const r = m.get(k) ?? { dim, hour, prank: priorityRank(g.priority), value, groups: 0, matches: 0 };
    r.groups++;
    r.matches += g.count;
    m.set(k, r);
  };
  for (const g of groups) {
    add(DIMS.rule, g, g.rule);
    add(DIMS.namespace, g, g.namespace);
    add(DIMS.hostname, g, g.hostname);
    add(DIMS.namespaceDaily, g, g.namespace, true);
    add(DIMS.hostnameDaily, g, g.hostname, true);
  }
  return [...m.values()].sort((a, b) => (a.dim + String(a.hour).padStart(12) + a.prank + a.value < b.dim + String(b.hour).padStart(12) + b.prank + b.value ? -1 : 1));
}

const sortRows = (rs: RollupRow[]) => [...rs].sort((a, b) => (a.dim + String(a.hour).padStart(12) + a.prank + a.value < b.dim + String(b.hour).padStart(12) + b.prank + b.value ? -1 : 1));

/** Stats with ties in the top lists in one order (the stores may list equal counts either way). */
function canon(s: AlertStats): AlertStats {
  const o = (l: [string, number][]) => [...l].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return { ...s, byRule: o(s.byRule), byNamespace: o(s.byNamespace), byHostname: o(s.byHostname) };
}

/** Ranges that cut hours and ones that don't, open ends, and a priority filter. */
const RANGES = [
  {},
  { from: T0 + HOUR_NS / 2n, to: T0 + 7n * HOUR_NS + 123n },
  { from: T0 + 2n * HOUR_NS, to: T0 + 5n * HOUR_NS },
  { from: T0 + 3n * HOUR_NS + 1n },
  { to: T0 + 4n * HOUR_NS - 1n, minPriority: 'WARNING' as Priority },
  { from: T0 + 10n, to: T0 + 20n },
  // Across days: whole days from the daily rows, hours either side from the hourly ones.
  { from: T0 + 5n * HOUR_NS + 1n, to: T0 + 60n * HOUR_NS - 7n },
  { from: T0 + 30n * HOUR_NS, priority: ['WARNING' as Priority, 'NOTICE' as Priority] },
];

describe('SQLite store: hourly rollups', () => {
  test('rollups equal a recount after inserts, updates that move hours, and retention; stats through them equal stats from the groups', () => {
    const s = new AlertStore(':memory:');
    try {
      for (let i = 0; i < 300; i++) s.insertGroup(group(i), [], null);
      const all = () => s.query({ limit: 1000 });
      // Later counts and last_seen (some into another hour), as summaries write them.
      s.updateGroups(all().filter((g) => g.id % 4 === 0).map((g) => ({ id: g.id, count: g.count + 5, lastSeen: g.lastSeen + HOUR_NS * 2n, changed: {}, windowEnd: null })));
      assert.deepEqual(sortRows(s.rollupRows()), recount(all()));
      for (const bucket of [3_600_000, 1_800_000, 12 * 3_600_000]) {
        for (const q of RANGES) assert.deepEqual(canon(s.stats(q, bucket)), canon(s.statsFromGroups(q, bucket)), `range ${JSON.stringify(q, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}, bucket ${bucket}`);
      }
      const deleted = s.applyRetention({ nowNs: T0 + 5n * HOUR_NS + 30n * 86_400_000_000_000n, maxAgeDays: 30, maxAlerts: 0, maxSizeMb: 0 });
      assert.ok(deleted > 20 && deleted < 300, `retention deleted part of the groups (${deleted})`);
      assert.equal(all().length, 300 - deleted);
      assert.deepEqual(sortRows(s.rollupRows()), recount(all()), 'the deleted groups left the rollups');
      assert.equal((s.db.prepare('SELECT COUNT(*) AS n FROM rollup_hourly WHERE n_groups <= 0').get() as { n: number }).n, 0, 'emptied rollup rows removed');
    } finally {
      s.close();
    }
  });

  test('a store made before the rollups gets them counted from its groups at open', () => {
    const path = `/tmp/mw-p18-rollup-${process.pid}.db`;
    const s = new AlertStore(path);
    for (let i = 0; i < 50; i++) s.insertGroup(group(i), [], null);
    s.db.exec('DROP TABLE rollup_hourly; DROP TRIGGER alerts_rollup_ins; DROP TRIGGER alerts_rollup_upd; DROP TRIGGER alerts_rollup_del');
    s.close();
    const again = new AlertStore(path);
    try {
      assert.deepEqual(sortRows(again.rollupRows()), recount(again.query({ limit: 1000 })));
    } finally {
      again.close();
      for (const f of [path, `${path}-wal`, `${path}-shm`]) import('node:fs').then((fs) => fs.rmSync(f, { force: true }));
    }
  });
});

describe('PostgreSQL store', { skip }, () => {
  let server: Postgres;
  before(async () => {
    server = await startPostgres();
  });
  after(async () => {
    await server?.close();
  });

  const open = async (url: string, more: Partial<Parameters<typeof PgAlertStore.open>[0]> = {}) => PgAlertStore.open({ url, ...more });

  test('migrations: a fresh database gets every one once; again is a no-op; two replicas at once do not race', async () => {
    const url = await server.newDatabase();
    const clients = await Promise.all([0, 1, 2].map(async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }));
    try {
      assert.equal(await schemaVersion(clients[0]!), 0);
      // Two (three) starting together: one applies, the others wait on the lock and find nothing to do.
      const results = await Promise.all(clients.map((c) => migrate(c)));
      assert.deepEqual(results.map((r) => r.applied.length).sort(), [0, 0, MIGRATIONS.length]);
      assert.equal(await schemaVersion(clients[0]!), LATEST_VERSION);
      const again = await migrate(clients[0]!);
      assert.deepEqual(again.applied, []);
      const rows = await clients[0]!.query('SELECT version FROM minewatch_migrations ORDER BY version');
      assert.deepEqual(rows.rows.map((r) => Number(r.version)), MIGRATIONS.map((m) => m.version));
    } finally {
      for (const c of clients) await c.end();
    }
  });

  test('writes are idempotent on the group: a redelivered first or summary changes nothing and queues nothing', async () => {
    const s = await open(await server.newDatabase());
    try {
      const g = group(1, { count: 1 });
      const first = await s.writeGroups([{ group: g, kind: 'first', payload: '{"n":1}' }], ['hook']);
      assert.equal(first[0]!.change, 'new');
      const again = await s.writeGroups([{ group: g, kind: 'first', payload: '{"n":1}' }], ['hook']);
      assert.deepEqual(again, [undefined], 'the same first message again: no change');
      const summary = { ...g, count: 9, lastSeen: g.lastSeen + 5n * HOUR_NS };
      const up = await s.writeGroups([{ group: summary, kind: 'summary', payload: '{"n":9}' }], ['hook']);
      assert.deepEqual(up, [{ id: first[0]!.id, change: 'update' }]);
      assert.deepEqual(await s.writeGroups([{ group: summary, kind: 'summary', payload: '{"n":9}' }], ['hook']), [undefined]);
      // An older message arriving late does not take the count back.
      assert.deepEqual(await s.writeGroups([{ group: g, kind: 'first', payload: '{"n":1}' }], ['hook']), [undefined]);
      const stored = await s.getByUuid(g.uuid);
      assert.equal(stored!.count, 9);
      assert.equal(stored!.lastSeen, summary.lastSeen);
      assert.equal((await s.query({})).length, 1);
      assert.equal((await s.counters('hook')).pending, 2, 'one first, one summary queued');
      // The same uuid from another host is another group (a uuid names one host's group).
      assert.equal((await s.writeGroups([{ group: { ...g, hostname: 'elsewhere' }, kind: 'first', payload: null }], []))[0]!.change, 'new');
      assert.deepEqual(sortRows(await s.rollupRows()), recount(await s.query({ limit: 1000 })));
      // A NUL in what a process controls (PostgreSQL text cannot hold it) is stored as U+FFFD.
      const [nul] = await s.writeGroups([{ group: group(99, { output: 'xmrig\u0000--donate', pod: 'p\u0000', outputFields: { 'proc.cmdline': 'a\u0000b' } }), kind: 'first', payload: null }], []);
      const back = await s.get(nul!.id);
      assert.equal(back!.output, 'xmrig\uFFFD--donate');
      assert.equal(back!.pod, 'p\uFFFD');
      assert.equal(back!.outputFields['proc.cmdline'], 'a\u0000b', 'JSON keeps it, escaped');
    } finally {
      await s.close();
    }
  });

  test('rollups equal a recount from the groups (deltas and compacted); stats through them equal stats from the groups; retention takes groups out of them', async () => {
    const s = await open(await server.newDatabase());
    try {
      const rnd = prng(18);
      const groups = Array.from({ length: 300 }, (_, i) => group(i));
      await s.writeGroups(groups.map((g) => ({ group: g, kind: 'first' as const, payload: null })), []);
      // Summaries for a quarter, some into later hours, with redeliveries mixed in.
      const ups = groups.filter((_, i) => i % 4 === 0).map((g) => ({ ...g, count: g.count + 1 + Math.floor(rnd() * 5), lastSeen: g.lastSeen + HOUR_NS * BigInt(Math.floor(rnd() * 3)) + 1n }));
      await s.writeGroups([...ups, ...ups.slice(0, 10)].map((g) => ({ group: g, kind: 'summary' as const, payload: null })), []);
      const all = () => s.query({ limit: 1000 });
      assert.deepEqual(sortRows(await s.rollupRows()), recount(await all()), 'deltas only');
      for (const q of RANGES) assert.deepEqual(canon(await s.stats(q, 3_600_000)), canon(await s.statsFromGroups(q, 3_600_000)));
      assert.equal(await s.compactRollups(), true);
      const deltas = await s.pool.query('SELECT COUNT(*) AS n FROM rollup_delta');
      assert.equal(Number(deltas.rows[0].n), 0);
      assert.deepEqual(sortRows(await s.rollupRows()), recount(await all()), 'compacted');
      for (const bucket of [3_600_000, 1_800_000, 12 * 3_600_000]) {
        for (const q of RANGES) assert.deepEqual(canon(await s.stats(q, bucket)), canon(await s.statsFromGroups(q, bucket)));
      }
      const deleted = await s.applyRetention({ nowNs: T0 + 5n * HOUR_NS + 30n * 86_400_000_000_000n, maxAgeDays: 30, maxAlerts: 0, maxSizeMb: 0 });
      assert.ok(deleted > 20 && deleted < 300, `retention deleted part of the groups (${deleted})`);
      assert.equal((await all()).length, 300 - deleted);
      assert.deepEqual(sortRows(await s.rollupRows()), recount(await all()), 'the deleted groups left the rollups');
      const empty = await s.pool.query('SELECT COUNT(*) AS n FROM rollup_hourly WHERE n_groups <= 0');
      assert.equal(Number(empty.rows[0].n), 0, 'emptied rollup rows removed');
      // max_alerts keeps the newest.
      await s.applyRetention({ nowNs: T0, maxAgeDays: 0, maxAlerts: 10, maxSizeMb: 0 });
      assert.equal((await all()).length, 10);
      assert.deepEqual(sortRows(await s.rollupRows()), recount(await all()));
    } finally {
      await s.close();
    }
  });

  test('two store instances (replicas) share an output queue: each delivery is claimed once; a lapsed lease is taken over', async () => {
    const url = await server.newDatabase();
    const a = await open(url, { replica: 'a', leaseMs: 60_000 });
    const b = await open(url, { replica: 'b', leaseMs: 60_000 });
    try {
      await a.writeGroups(Array.from({ length: 40 }, (_, i) => ({ group: group(i), kind: 'first' as const, payload: `{"i":${i}}` })), ['hook']);
      // Both claim at once, in several rounds, as two delivery workers would.
      const seen: number[] = [];
      for (let round = 0; round < 6; round++) {
        const [x, y] = await Promise.all([a.claim('hook', 4), b.claim('hook', 4)]);
        seen.push(...x.map((d) => d.id), ...y.map((d) => d.id));
      }
      assert.equal(new Set(seen).size, seen.length, 'no delivery claimed by both');
      assert.equal(seen.length, 40, 'every delivery claimed (6 rounds of 2 × 4)');
      assert.deepEqual(await a.claim('hook', 1), [], 'nothing left unclaimed while the leases run');
      // A delivered one is gone; a failed one comes back (released) for either replica.
      const all = await a.pool.query('SELECT id, message_id FROM deliveries ORDER BY id');
      const first = { id: Number(all.rows[0].id), messageId: Number(all.rows[0].message_id), alertId: 0, kind: 'first' as const, payload: '', attempts: 0 };
      await a.delivered('hook', first);
      const second = { ...first, id: Number(all.rows[1].id), messageId: Number(all.rows[1].message_id) };
      await b.failed('hook', second, 'HTTP 503', false);
      const retaken = await a.claim('hook', 10);
      assert.deepEqual(retaken.map((d) => d.id), [second.id], 'the failed delivery, released, is claimed again');
      // A replica that died mid-send: its lease lapses and the other takes the delivery over.
      await a.pool.query("UPDATE deliveries SET claimed_until = now() - interval '1 second' WHERE claimed_by = 'b'");
      const takeover = await a.claim('hook', 100);
      assert.ok(takeover.length > 0 && takeover.length <= 20);
      const c = await a.counters('hook');
      assert.equal(c.delivered, 1);
      assert.equal(c.failures, 1);
      assert.equal(c.pending, 39);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a change committed by one instance reaches the other through LISTEN/NOTIFY', async () => {
    const url = await server.newDatabase();
    const a = await open(url);
    const b = await open(url);
    try {
      const got: WriteResult[] = [];
      let wake: () => void = () => undefined;
      const stop = await b.listen((changes) => {
        got.push(...changes);
        wake();
      });
      const until = (n: number) => new Promise<void>((resolve) => {
        wake = () => got.length >= n && resolve();
        wake();
      });
      const [r] = await a.writeGroups([{ group: group(7), kind: 'first', payload: null }], []);
      await until(1);
      await a.writeGroups([{ group: { ...group(7), count: 50 }, kind: 'summary', payload: null }], []);
      await until(2);
      assert.deepEqual(got, [{ id: r!.id, change: 'new' }, { id: r!.id, change: 'update' }]);
      assert.equal((await b.getMany(got.map((c) => c.id)))[0]!.count, 50);
      await stop();
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a wrong URL or password file is named in the error', async () => {
    await assert.rejects(PgAlertStore.open({ url: 'mysql://x' }), /alerts\.store\.url: .*not a postgres:\/\/ URL/);
    await assert.rejects(PgAlertStore.open({ url: server.url, password_file: '/nonexistent/pw' }), /alerts\.store\.password_file: cannot read \/nonexistent\/pw/);
    const u = new URL(server.url);
    u.port = '1';
    u.password = 'secret';
    await assert.rejects(PgAlertStore.open({ url: u.toString() }), (e: Error) => /cannot connect to postgres:\/\/.*:\*\*\*@127\.0\.0\.1:1\//.test(e.message) && !e.message.includes('secret'));
  });
});
