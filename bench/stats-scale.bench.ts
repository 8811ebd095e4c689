/**
 * Dashboard stats at fleet scale, for each store: 10,000,000 small groups (MINEWATCH_BENCH_STATS_GROUPS
 * overrides) over 30 days, loaded fast (SQLite: one transaction per 100,000 rows; PostgreSQL:
 * COPY), then the dashboard's stats over 30 days read through the hourly rollups, beside the
 * baseline measured in the same run on the same data: the same stats read from the groups (the
 * query before the rollups). Text search is measured before the rollups are built and after, in the
 * same run. Each figure: median over rounds, with min and max.
 *
 * PostgreSQL comes from MINEWATCH_TEST_PG_URL or a private cluster (test/helpers/postgres.ts); it
 * is skipped with a message where neither can be had.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertStore, type NewGroup } from '../src/alerts/store.js';
import { PgAlertStore } from '../src/alerts/pg/store.js';
import { ROLLUP_INSERT_TRIGGER } from '../src/alerts/pg/migrations.js';
import type { AlertQuery, AlertStats } from '../src/alerts/types.js';
import type { Priority } from '../src/engine/types.js';
import { parseBucket } from '../src/web/api.js';
import { postgresUnavailable, startPostgres } from '../test/helpers/postgres.js';
import { prng } from '../test/helpers/prng.js';
import { fmt, median } from './lib.js';

const N = Number(process.env.MINEWATCH_BENCH_STATS_GROUPS ?? 10_000_000);
const DAYS = 30;
const DAY_NS = 86_400_000_000_000n;
const RULES: [string, Priority][] = Array.from({ length: 40 }, (_, i) => [`Rule ${i}`, (['CRITICAL', 'WARNING', 'NOTICE', 'ERROR'] as Priority[])[i % 4]!]);
const HOSTS = Array.from({ length: 300 }, (_, i) => `node-${i}`);
const NAMESPACES = Array.from({ length: 60 }, (_, i) => `ns-${i}`);
const RARE = 'zq7rare';

/** Small groups over DAYS days before `nowNs`, reproducible. */
function* groups(n: number, nowNs: bigint): Generator<NewGroup> {
  const r = prng(0x5ca1e);
  const span = Number(BigInt(DAYS) * DAY_NS / 1_000_000_000n);
  for (let i = 0; i < n; i++) {
    // Zipf-like: a few rules, hosts and namespaces most of the time.
    const [rule, priority] = RULES[Math.floor(RULES.length * r() ** 3)]!;
    const host = HOSTS[Math.floor(HOSTS.length * r() ** 2)]!;
    const u = r();
    const namespace = u < 0.2 ? null : NAMESPACES[Math.floor(NAMESPACES.length * r() ** 2)]!;
    const last = nowNs - BigInt(Math.floor(r() * span)) * 1_000_000_000n;
    const count = u > 0.9 ? 2 + Math.floor(r() * 50) : 1;
    yield {
      uuid: `b${i}`, groupKey: rule, rule, priority, source: 'syscall', tags: [], hostname: host,
      output: `${i % 10_000 === 7 ? RARE : 'xmrig'} pid=${i} on ${host}`, outputFields: {}, firstSeen: last, lastSeen: last, count,
      changed: {}, namespace, pod: null, containerId: null, containerName: null, event: null, origin: 'input', windowEnd: null,
    };
  }
}

interface Timed {
  med: number;
  min: number;
  max: number;
  n: number;
}

/** Median, min and max of `rounds` runs (fewer once `budgetMs` is spent, at least 3). */
async function time(fn: () => unknown, rounds: number, budgetMs: number): Promise<Timed> {
  await fn(); // warm: statements, pages
  const ms: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < rounds && (i < 3 || performance.now() - t0 < budgetMs); i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return { med: median(ms), min: Math.min(...ms), max: Math.max(...ms), n: ms.length };
}

const show = (t: Timed) => `median ${fmt(t.med, 1)} ms (min ${fmt(t.min, 1)}, max ${fmt(t.max, 1)}, ${t.n} rounds)`;

interface StoreUnderTest {
  stats(q: AlertQuery, bucketMs: number): AlertStats | Promise<AlertStats>;
  statsFromGroups(q: AlertQuery, bucketMs: number): AlertStats | Promise<AlertStats>;
  query(q: AlertQuery): unknown;
}

async function measure(name: string, s: StoreUnderTest, nowMs: number, searchBefore: { rare: Timed; common: Timed }): Promise<void> {
  const nowNs = BigInt(nowMs) * 1_000_000n;
  const month: AlertQuery = { from: nowNs - BigInt(DAYS) * DAY_NS };
  const week: AlertQuery = { from: nowNs - 7n * DAY_NS };
  const bucket = (q: AlertQuery) => parseBucket(undefined, q, nowMs);
  // Equal counts may be listed in either order (and cut at 50 differently): compare the counts.
  const canon = (x: AlertStats) => JSON.stringify({ ...x, byRule: x.byRule.map((e) => e[1]), byNamespace: x.byNamespace.map((e) => e[1]), byHostname: x.byHostname.map((e) => e[1]) });
  const check = canon(await s.stats(month, bucket(month))) === canon(await s.statsFromGroups(month, bucket(month)));
  const roll = await time(() => s.stats(month, bucket(month)), 15, 20_000);
  const base = await time(() => s.statsFromGroups(month, bucket(month)), 3, 60_000);
  console.log(`stats.${name}  30 d through rollups   ${show(roll)}`);
  console.log(`stats.${name}  30 d from the groups   ${show(base)}  (baseline: the query before the rollups)`);
  console.log(`stats.${name}  ratio rollups/groups   ${fmt(roll.med / base.med, 4)} (medians; ${fmt(base.med / roll.med, 0)}x faster); target median ≤ 100 ms: ${roll.med <= 100 ? 'met' : 'NOT met'}; same answer as the groups: ${check ? 'yes' : 'NO'}`);
  const wk = await time(() => s.stats(week, bucket(week)), 10, 15_000);
  console.log(`stats.${name}  7 d through rollups    ${show(wk)}`);
  const rare = await time(() => s.query({ text: RARE, limit: 50 }), 20, 15_000);
  const common = await time(() => s.query({ text: 'xmrig', limit: 50 }), 20, 15_000);
  console.log(`search.${name} rare text   before rollups ${show(searchBefore.rare)}; after ${show(rare)}; ratio after/before ${fmt(rare.med / searchBefore.rare.med, 2)}`);
  console.log(`search.${name} common text before rollups ${show(searchBefore.common)}; after ${show(common)}; ratio after/before ${fmt(common.med / searchBefore.common.med, 2)}`);
}

const progress = (name: string, t0: number) => (rows: number) =>
  console.log(`load.${name}  ${fmt(rows)} / ${fmt(N)} groups, ${fmt(rows / ((performance.now() - t0) / 1000))} groups/s`);

export async function sqliteStatsBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mw-stats-bench-'));
  const store = new AlertStore(join(dir, 'alerts.db'));
  try {
    const nowMs = Date.now();
    const nowNs = BigInt(nowMs) * 1_000_000n;
    store.db.pragma('cache_size = -1048576');
    store.db.pragma('synchronous = OFF');
    const t0 = performance.now();
    const tell = progress('sqlite', t0);
    // Searches "before": the groups loaded, the rollups not yet counted.
    store.db.exec('DROP TRIGGER IF EXISTS alerts_rollup_ins');
    const it = groups(N, nowNs);
    let n = 0;
    const batch = store.db.transaction(() => {
      for (let i = 0; i < 100_000; i++) {
        const g = it.next();
        if (g.done) return;
        store.insertGroup(g.value, [], null);
        n++;
      }
    });
    while (n < N) {
      const before = n;
      batch();
      if (n === before) break;
      if (n % 1_000_000 === 0 || n === N) tell(n);
    }
    const loadS = (performance.now() - t0) / 1000;
    const before = { rare: await time(() => store.query({ text: RARE, limit: 50 }), 20, 15_000), common: await time(() => store.query({ text: 'xmrig', limit: 50 }), 20, 15_000) };
    const t1 = performance.now();
    store.bulkLoad(() => undefined); // puts the trigger back and counts the rollups from the groups
    const rollS = (performance.now() - t1) / 1000;
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    store.db.pragma('synchronous = NORMAL');
    const rows = (store.db.prepare('SELECT COUNT(*) AS n FROM rollup_hourly').get() as { n: number }).n;
    console.log(`load.sqlite  ${fmt(N)} groups in ${fmt(loadS, 1)} s (${fmt(N / loadS)} groups/s, full-text index included); rollups counted in ${fmt(rollS, 1)} s: ${fmt(rows)} rows; database ${fmt(statSync(join(dir, 'alerts.db')).size / 1048576)} MiB`);
    await measure('sqlite', store, nowMs, before);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function postgresStatsBench(): Promise<void> {
  const why = postgresUnavailable();
  if (why) {
    console.log(`SKIPPED: ${why}`);
    return;
  }
  const pg = await startPostgres();
  const store = await PgAlertStore.open({ url: pg.url });
  try {
    const nowMs = Date.now();
    const t0 = performance.now();
    const tell = progress('postgres', t0);
    await store.pool.query(`ALTER TABLE alerts DISABLE TRIGGER ${ROLLUP_INSERT_TRIGGER}`);
    // COPY with the rollups off, so the searches "before" see no rollups; bulkLoad recounts them.
    const n = await store.bulkLoad(groups(N, BigInt(nowMs) * 1_000_000n), tell);
    const loadS = (performance.now() - t0) / 1000;
    await store.pool.query('VACUUM ANALYZE alerts');
    await store.pool.query('TRUNCATE rollup_delta, rollup_hourly');
    const before = { rare: await time(() => store.query({ text: RARE, limit: 50 }), 20, 15_000), common: await time(() => store.query({ text: 'xmrig', limit: 50 }), 20, 15_000) };
    const t1 = performance.now();
    await store.rebuildRollups();
    await store.pool.query('VACUUM ANALYZE rollup_hourly');
    const rollS = (performance.now() - t1) / 1000;
    const rows = Number((await store.pool.query('SELECT COUNT(*) AS n FROM rollup_hourly')).rows[0].n);
    const size = Number((await store.pool.query('SELECT pg_database_size(current_database()) AS b')).rows[0].b);
    console.log(`load.postgres  ${fmt(n)} groups by COPY in ${fmt(loadS, 1)} s (${fmt(n / loadS)} groups/s, indexes included, rollups recounted after); rollups counted in ${fmt(rollS, 1)} s: ${fmt(rows)} rows; database ${fmt(size / 1048576)} MiB`);
    await measure('postgres', store, nowMs, before);
  } finally {
    await store.close();
    await pg.close();
  }
}
