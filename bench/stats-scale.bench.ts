/**
 * Dashboard stats at fleet scale, for each store: 10,000,000 small groups (MINEWATCH_BENCH_STATS_GROUPS
 * overrides) over 30 days, made by the database itself (SQLite: a recursive CTE per million rows in
 * one transaction; PostgreSQL: generate_series per million), the indexes and text index built after
 * the load, progress shown. Then the dashboard's stats over 30 days through the hourly rollups,
 * beside two baselines measured in the same run on the same data: the same stats read from the
 * groups (the query before the rollups; its answer must equal the rollups') and the previous
 * rollup path (each partial hour read by six statements). Text search beside the dashboard's plain
 * first page. Each figure: median over rounds, with min and max. *
 * PostgreSQL comes from MINEWATCH_TEST_PG_URL or a private cluster (test/helpers/postgres.ts); it
 * is skipped with a message where neither can be had.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertStore } from '../src/alerts/store.js';
import { SQLITE_ROLLUP_REBUILD } from '../src/alerts/rollup-sqlite.js';
import { numbered, rollupPlan, type RollupPlan, type RollupRow } from '../src/alerts/rollup.js';
import { PgAlertStore } from '../src/alerts/pg/store.js';
import { ROLLUP_INSERT_TRIGGER } from '../src/alerts/pg/migrations.js';
import type { AlertQuery, AlertStats } from '../src/alerts/types.js';
import { type Priority, priorityRank } from '../src/engine/types.js';
import { parseBucket } from '../src/web/api.js';
import { postgresUnavailable, startPostgres } from '../test/helpers/postgres.js';
import { fmt, median } from './lib.js';

const N = Number(process.env.MINEWATCH_BENCH_STATS_GROUPS ?? 10_000_000);
const DAYS = 30;
const DAY_NS = 86_400_000_000_000n;
/** Rule i's priority (40 rules, 300 hosts, 60 namespaces). */
const RULE_PRIORITIES: Priority[] = ['CRITICAL', 'WARNING', 'NOTICE', 'ERROR'];
const RARE = 'zq7rare';

/**
 * The SELECT that makes groups ids [lo, hi] of the data set, all in the database (no row crosses
 * the wire): small groups over DAYS days before `nowNs`, every "random" draw a multiplicative hash
 * of the id, so both stores get the very same rows. Zipf-like: a few rules, hosts and namespaces
 * most of the time; 1 group in 10,000 holds the rare text. `int` is the store's floor to integer,
 * `ids` its row source of column i.
 */
function groupsSelect(nowNs: bigint, int: (x: string) => string, ids: string): string {
  const u = (a: number) => `((i * ${a}) % 4294967296) / 4294967296.0`;
  const span = BigInt(DAYS) * DAY_NS / 1_000_000_000n;
  const prio = (r: string, as: (p: Priority, i: number) => string) =>
    `CASE ${r} % 4 ${RULE_PRIORITIES.map((p, i) => `WHEN ${i} THEN ${as(p, i)}`).join(' ')} END`;
  return `SELECT 'b' || i, 'Rule ' || r, 'Rule ' || r, ${prio('r', (p) => `'${p}'`)}, ${prio('r', (p) => String(priorityRank(p)))}, 'syscall', '[]',
      'node-' || h, CASE WHEN i % 10000 = 7 THEN '${RARE}' ELSE 'xmrig' END || ' pid=' || i || ' on node-' || h, '{}', t, t,
      CASE WHEN u3 > 0.9 THEN 2 + ${int(`${u(1597334677)} * 50`)} ELSE 1 END, '{}', CASE WHEN u3 < 0.2 THEN NULL ELSE 'ns-' || ${int(`60 * ${u(668265263)} * ${u(668265263)}`)} END,
      NULL, NULL, NULL, NULL, 'input', NULL
    FROM (SELECT i, ${int(`40 * ${u(2654435761)} * ${u(2654435761)} * ${u(2654435761)}`)} AS r, ${int(`300 * ${u(2246822519)} * ${u(2246822519)}`)} AS h,
      ${u(3266489917)} AS u3, ${nowNs} - ${int(`${u(374761393)} * ${span}`)} * 1000000000 AS t FROM ${ids}) AS x`;
}

const GROUP_COLUMNS = 'uuid, group_key, rule, priority, prank, source, tags, hostname, output, output_fields, first_seen, last_seen, count, changed, namespace, pod, container_id, container_name, event, origin, window_end';
const CHUNK = 1_000_000;

interface Timed {
  med: number;
  min: number;
  max: number;
  n: number;
}

/** Median, min and max of `rounds` runs (fewer once `budgetMs` is spent: at least 3 when warmed first, else 1). */
async function time(fn: () => unknown, rounds: number, budgetMs: number, warm = true): Promise<Timed> {
  if (warm) await fn(); // statements, pages
  const ms: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < rounds && ((warm && i < 3) || i < 1 || performance.now() - t0 < budgetMs); i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return { med: median(ms), min: Math.min(...ms), max: Math.max(...ms), n: ms.length };
}

const show = (t: Timed) => `median ${fmt(t.med, 1)} ms (min ${fmt(t.min, 1)}, max ${fmt(t.max, 1)}, ${t.n} rounds)`;

interface StoreUnderTest {
  stats(q: AlertQuery, bucketMs: number): AlertStats | Promise<AlertStats>;
  statsFromGroups(q: AlertQuery, bucketMs: number, exact?: boolean): AlertStats | Promise<AlertStats>;
  query(q: AlertQuery): unknown;
  /** The rollup statements' rows (the store's own reads of them). */
  rollupRows(plan: RollupPlan): RollupRow[][] | Promise<RollupRow[][]>;
  rollupTable: string;
}

/**
 * The previous path, for a baseline in the same run: the same rollup statements, each partial hour
 * read from the groups by six statements (statsFromGroups) instead of the store's one.
 */
async function statsOldEdges(s: StoreUnderTest, q: AlertQuery, bucketMs: number): Promise<AlertStats> {
  const plan = rollupPlan(q, bucketMs, s.rollupTable)!;
  const [rows, edges] = await Promise.all([s.rollupRows(plan), Promise.all(plan.edges.map(async (e) => s.statsFromGroups(e, bucketMs, true)))]);
  return plan.combine(rows, edges);
}

async function measure(name: string, s: StoreUnderTest, nowMs: number): Promise<void> {
  const nowNs = BigInt(nowMs) * 1_000_000n;
  const month: AlertQuery = { from: nowNs - BigInt(DAYS) * DAY_NS };
  const week: AlertQuery = { from: nowNs - 7n * DAY_NS };
  const bucket = (q: AlertQuery) => parseBucket(undefined, q, nowMs);
  // Equal counts may be listed in either order (and cut at 50 differently): compare the counts.
  const canon = (x: AlertStats) => JSON.stringify({ ...x, byRule: x.byRule.map((e) => e[1]), byNamespace: x.byNamespace.map((e) => e[1]), byHostname: x.byHostname.map((e) => e[1]) });
  // The baseline: the same stats counted from the groups (the query before the rollups). Its
  // first answer is the one the rollups' must equal; at 10M groups a round takes long, so its
  // rounds stop after a budget (at least one).
  let fromGroups: AlertStats | undefined;
  const base = await time(async () => (fromGroups = await s.statsFromGroups(month, bucket(month))), 3, 90_000, false);
  const check = canon(await s.stats(month, bucket(month))) === canon(fromGroups!);
  const roll = await time(() => s.stats(month, bucket(month)), 15, 20_000);
  const old = await time(() => statsOldEdges(s, month, bucket(month)), 15, 20_000);
  console.log(`stats.${name}  30 d through rollups   ${show(roll)}`);
  console.log(`stats.${name}  30 d, partial hour by six statements (the previous path, same rollups) ${show(old)}; ratio now/previous ${fmt(roll.med / old.med, 2)}`);
  console.log(`stats.${name}  30 d from the groups   ${show(base)}  (baseline: the query before the rollups)`);
  console.log(`stats.${name}  ratio rollups/groups   ${fmt(roll.med / base.med, 4)} (medians; ${fmt(base.med / roll.med, 0)}x faster); target median ≤ 100 ms: ${roll.med <= 100 ? 'met' : 'NOT met'}; same answer as the groups: ${check ? 'yes' : 'NO'}`);
  const wk = await time(() => s.stats(week, bucket(week)), 10, 15_000);
  console.log(`stats.${name}  7 d through rollups    ${show(wk)}`);
  // Text search beside the dashboard's plain first page (no filter), both newest first.
  const page = await time(() => s.query({ limit: 50 }), 20, 15_000);
  const rare = await time(() => s.query({ text: RARE, limit: 50 }), 20, 15_000);
  const common = await time(() => s.query({ text: 'xmrig', limit: 50 }), 20, 15_000);
  console.log(`search.${name} first page, no filter   ${show(page)}  (baseline)`);
  console.log(`search.${name} rare text (1 in 10,000) ${show(rare)}; ratio to the plain page ${fmt(rare.med / page.med, 2)}`);
  console.log(`search.${name} common text (every row) ${show(common)}; ratio to the plain page ${fmt(common.med / page.med, 2)}`);
}

const progress = (name: string, t0: number) => (rows: number) =>
  console.log(`load.${name}  ${fmt(rows)} / ${fmt(N)} groups, ${fmt(rows / ((performance.now() - t0) / 1000))} groups/s, ${fmt((performance.now() - t0) / 1000, 0)} s`);

/**
 * N groups into the SQLite store in one transaction, generated by SQLite itself (a recursive CTE
 * per million), with the groups' indexes, the text index and the rollup trigger off for the load
 * and rebuilt after it (the text index by FTS5's 'rebuild', the indexes from their own CREATE
 * statements, the rollups counted from the groups).
 */
export function loadSqlite(store: AlertStore, nowNs: bigint): { loadS: number; rollS: number } {
  const db = store.db;
  const t0 = performance.now();
  const tell = progress('sqlite', t0);
  const defs = db.prepare("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'alerts' AND type IN ('index', 'trigger') AND sql IS NOT NULL").all() as { type: string; name: string; sql: string }[];
  db.transaction(() => {
    for (const d of defs) db.exec(`DROP ${d.type.toUpperCase()} ${d.name}`);
    const ids = '(WITH RECURSIVE s(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM s WHERE i < ?) SELECT i FROM s) AS s';
    const insert = db.prepare(`INSERT INTO alerts (${GROUP_COLUMNS}) ${groupsSelect(nowNs, (x) => `CAST(${x} AS INTEGER)`, ids)}`);
    for (let lo = 0; lo < N; lo += CHUNK) {
      insert.run(lo, Math.min(N, lo + CHUNK) - 1);
      tell(Math.min(N, lo + CHUNK));
    }
    for (const d of defs.filter((x) => x.type === 'index')) {
      const t = performance.now();
      db.exec(d.sql);
      console.log(`load.sqlite  index ${d.name} built in ${fmt((performance.now() - t) / 1000, 1)} s`);
    }
    const t = performance.now();
    db.exec("INSERT INTO alerts_text(alerts_text) VALUES ('rebuild')");
    console.log(`load.sqlite  text index rebuilt in ${fmt((performance.now() - t) / 1000, 1)} s`);
    for (const d of defs.filter((x) => x.type === 'trigger' && !x.name.startsWith('alerts_rollup'))) db.exec(d.sql);
  })();
  const loadS = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  db.transaction(() => {
    for (const d of defs.filter((x) => x.type === 'trigger' && x.name.startsWith('alerts_rollup'))) db.exec(d.sql);
    db.exec(SQLITE_ROLLUP_REBUILD);
  })();
  return { loadS, rollS: (performance.now() - t1) / 1000 };
}

/**
 * N groups into the PostgreSQL store, generated by PostgreSQL (generate_series per million), with
 * the secondary indexes and the rollup trigger off for the load: the indexes are made again from
 * their own definitions after it (one sorted build each, not 10M inserts), the rollups counted
 * from the groups.
 */
export async function loadPostgres(store: PgAlertStore, nowNs: bigint): Promise<{ loadS: number; rollS: number }> {
  const t0 = performance.now();
  const tell = progress('postgres', t0);
  const c = await store.pool.connect();
  try {
    await c.query("SET maintenance_work_mem = '256MB'");
    const defs = (await c.query<{ name: string; def: string }>(`SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE tablename = 'alerts'
      AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'alerts'::regclass)`)).rows;
    for (const d of defs) await c.query(`DROP INDEX ${d.name}`);
    await c.query(`ALTER TABLE alerts DISABLE TRIGGER ${ROLLUP_INSERT_TRIGGER}`);
    const insert = `INSERT INTO alerts (${GROUP_COLUMNS}) ${groupsSelect(nowNs, (x) => `floor(${x})::bigint`, 'generate_series($1::bigint, $2::bigint) AS s(i)')}`;
    for (let lo = 0; lo < N; lo += CHUNK) {
      await c.query(insert, [lo, Math.min(N, lo + CHUNK) - 1]);
      tell(Math.min(N, lo + CHUNK));
    }
    for (const d of defs) {
      const t = performance.now();
      await c.query(d.def);
      console.log(`load.postgres  index ${d.name} built in ${fmt((performance.now() - t) / 1000, 1)} s`);
    }
    await c.query(`ALTER TABLE alerts ENABLE TRIGGER ${ROLLUP_INSERT_TRIGGER}`);
    await c.query('VACUUM ANALYZE alerts');
  } finally {
    c.release();
  }
  const loadS = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  await store.rebuildRollups();
  await store.pool.query('VACUUM ANALYZE rollup_hourly');
  return { loadS, rollS: (performance.now() - t1) / 1000 };
}

export async function sqliteStatsBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mw-stats-bench-'));
  const store = new AlertStore(join(dir, 'alerts.db'));
  try {
    const nowMs = Date.now();
    store.db.pragma('cache_size = -1048576');
    store.db.pragma('synchronous = OFF');
    const { loadS, rollS } = loadSqlite(store, BigInt(nowMs) * 1_000_000n);
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    store.db.pragma('synchronous = NORMAL');
    const rows = (store.db.prepare('SELECT COUNT(*) AS n FROM rollup_hourly').get() as { n: number }).n;
    console.log(`load.sqlite  ${fmt(N)} groups in ${fmt(loadS, 1)} s (${fmt(N / loadS)} groups/s, indexes and text index built after); rollups counted in ${fmt(rollS, 1)} s: ${fmt(rows)} rows; database ${fmt(statSync(join(dir, 'alerts.db')).size / 1048576)} MiB`);
    const sqliteUnderTest = Object.assign(store, {
      rollupTable: 'rollup_hourly',
      rollupRows: (plan: RollupPlan) => plan.statements.map((st) => store.db.prepare(st.sql).all(...st.params) as RollupRow[]),
    });
    await measure('sqlite', sqliteUnderTest, nowMs);
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
    const { loadS, rollS } = await loadPostgres(store, BigInt(nowMs) * 1_000_000n);
    const rows = Number((await store.pool.query('SELECT COUNT(*) AS n FROM rollup_hourly')).rows[0].n);
    const size = Number((await store.pool.query('SELECT pg_database_size(current_database()) AS b')).rows[0].b);
    console.log(`load.postgres  ${fmt(N)} groups in ${fmt(loadS, 1)} s (${fmt(N / loadS)} groups/s, indexes built after); rollups counted in ${fmt(rollS, 1)} s: ${fmt(rows)} rows; database ${fmt(size / 1048576)} MiB`);
    const pgUnderTest = Object.assign(store, {
      rollupTable: 'rollup_all',
      rollupRows: (plan: RollupPlan) => Promise.all(plan.statements.map(async (st) => (await store.pool.query(numbered(st.sql), st.params)).rows as RollupRow[])),
    });
    await measure('postgres', pgUnderTest, nowMs);
  } finally {
    await store.close();
    await pg.close();
  }
}
