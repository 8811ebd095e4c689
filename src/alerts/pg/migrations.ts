/**
 * The PostgreSQL store's schema, as numbered migrations. Each is applied once, in a transaction of
 * its own, and recorded in minewatch_migrations; a session advisory lock serialises replicas that
 * start together (the second waits, then finds nothing left to do). A migration is never edited
 * once released: a change is a new one.
 */
import type pg from 'pg';
import { dayOfHour, DIMS } from '../rollup.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The advisory lock key of the migrations (any fixed 64-bit number; "mw18mig" in ASCII). */
export const MIGRATION_LOCK = 0x6d77_3138_6d69_67n;

const rollupDims = (row: 'NEW' | 'OLD', sign: '' | '-') =>
  `INSERT INTO rollup_delta (hour, prank, rule, namespace, hostname, n_groups, n_matches)
      VALUES (${row}.last_seen / 3600000000000, ${row}.prank, ${row}.rule, ${row}.namespace, ${row}.hostname, ${sign}1, ${sign}${row}.count);`;

/** rollup_delta's columns from a transition table's rows, with the sign of `sign` ('' or '-'). */
const deltaRows = (rows: string, sign: '' | '-') =>
  `SELECT last_seen / 3600000000000 AS hour, prank, rule, namespace, hostname, ${sign}1 AS g, ${sign}count AS m FROM ${rows}`;
const foldDeltas = (from: string) =>
  `INSERT INTO rollup_delta (hour, prank, rule, namespace, hostname, n_groups, n_matches)
    SELECT hour, prank, rule, namespace, hostname, SUM(g), SUM(m) FROM (${from}) AS x
    GROUP BY 1, 2, 3, 4, 5 HAVING SUM(g) <> 0 OR SUM(m) <> 0;`;

/**
 * The rollups kept by statement-level triggers over transition tables (migration 4): a statement
 * that writes a batch of groups appends one delta row per hour, rule, priority, namespace and
 * host it touched, not one per group (a row trigger ran a PL/pgSQL call and an INSERT per row:
 * the fleet consumer's multi-row upserts paid it 256 times a batch). An upsert fires the insert
 * trigger for the rows it inserted and the update trigger for the rows it updated; an update that
 * moved neither count nor last_seen nets to zero and appends nothing. Transition tables cannot
 * go with a column list (UPDATE OF count, last_seen), hence the HAVING.
 */
const STATEMENT_ROLLUPS = `
CREATE FUNCTION alerts_rollup_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  ${foldDeltas(deltaRows('new_rows', ''))}
  RETURN NULL;
END $$;
CREATE FUNCTION alerts_rollup_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  ${foldDeltas(`${deltaRows('new_rows', '')} UNION ALL ${deltaRows('old_rows', '-')}`)}
  RETURN NULL;
END $$;
CREATE FUNCTION alerts_rollup_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  ${foldDeltas(deltaRows('old_rows', '-'))}
  RETURN NULL;
END $$;
CREATE TRIGGER alerts_rollup_ins AFTER INSERT ON alerts REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION alerts_rollup_inserted();
CREATE TRIGGER alerts_rollup_upd AFTER UPDATE ON alerts REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION alerts_rollup_updated();
CREATE TRIGGER alerts_rollup_del AFTER DELETE ON alerts REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION alerts_rollup_deleted();`;

/** The trigger that counts inserted groups (bulk loads turn it off and recount after). */
export const ROLLUP_INSERT_TRIGGER = 'alerts_rollup_ins';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'alert groups, messages, deliveries, output counters',
    sql: `
CREATE TABLE alerts (
  id BIGSERIAL PRIMARY KEY,
  uuid TEXT NOT NULL,
  group_key TEXT NOT NULL,
  rule TEXT NOT NULL,
  priority TEXT NOT NULL,
  prank SMALLINT NOT NULL,
  source TEXT NOT NULL,
  tags TEXT NOT NULL,
  hostname TEXT NOT NULL,
  output TEXT NOT NULL,
  output_fields TEXT NOT NULL,
  first_seen BIGINT NOT NULL,
  last_seen BIGINT NOT NULL,
  count BIGINT NOT NULL,
  changed TEXT NOT NULL,
  namespace TEXT,
  pod TEXT,
  container_id TEXT,
  container_name TEXT,
  event TEXT,
  origin TEXT NOT NULL,
  window_end BIGINT,
  -- A group is one host's: its uuid (from the agent) and the host it came from. Writes are
  -- upserts on this key, so a message delivered twice changes nothing.
  CONSTRAINT alerts_group UNIQUE (uuid, hostname)
);
CREATE INDEX alerts_last_seen ON alerts (last_seen);
CREATE INDEX alerts_rule ON alerts (rule, last_seen);
CREATE INDEX alerts_hostname ON alerts (hostname, last_seen);
CREATE INDEX alerts_namespace ON alerts (namespace, last_seen);
CREATE INDEX alerts_pod ON alerts (pod);
CREATE INDEX alerts_container ON alerts (container_id);
CREATE INDEX alerts_source ON alerts (source);
CREATE INDEX alerts_open ON alerts (window_end) WHERE window_end IS NOT NULL;
CREATE TABLE messages (
  id BIGSERIAL PRIMARY KEY,
  alert_id BIGINT NOT NULL,
  kind TEXT NOT NULL,
  -- The group's count when the message was made: a redelivered first or summary is the same row.
  seq BIGINT NOT NULL,
  payload TEXT NOT NULL,
  CONSTRAINT messages_once UNIQUE (alert_id, kind, seq)
);
CREATE TABLE deliveries (
  id BIGSERIAL PRIMARY KEY,
  message_id BIGINT NOT NULL,
  output TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  dead BOOLEAN NOT NULL DEFAULT false,
  -- Which replica is sending it, until when: another replica takes it over only after that.
  claimed_by TEXT,
  claimed_until TIMESTAMPTZ
);
CREATE INDEX deliveries_queue ON deliveries (output, id) WHERE NOT dead;
CREATE INDEX deliveries_message ON deliveries (message_id);
CREATE TABLE output_counters (
  name TEXT PRIMARY KEY,
  delivered BIGINT NOT NULL DEFAULT 0,
  failures BIGINT NOT NULL DEFAULT 0,
  last_error TEXT
);`,
  },
  {
    version: 2,
    name: 'hourly rollups (src/alerts/rollup.ts), kept by triggers',
    sql: `
CREATE TABLE rollup_hourly (
  dim TEXT NOT NULL,
  hour BIGINT NOT NULL,
  prank SMALLINT NOT NULL,
  value TEXT NOT NULL,
  n_groups BIGINT NOT NULL,
  n_matches BIGINT NOT NULL,
  PRIMARY KEY (dim, hour, prank, value)
);
-- Writers only append here (no hot row for replicas to queue on, no deadlock between them); one
-- replica at a time folds the rows into rollup_hourly (PgAlertStore.compactRollups).
CREATE TABLE rollup_delta (
  hour BIGINT NOT NULL,
  prank SMALLINT NOT NULL,
  rule TEXT NOT NULL,
  namespace TEXT,
  hostname TEXT NOT NULL,
  n_groups BIGINT NOT NULL,
  n_matches BIGINT NOT NULL
);
CREATE VIEW rollup_all AS
  SELECT dim, hour, prank, value, n_groups, n_matches FROM rollup_hourly
  UNION ALL SELECT '${DIMS.rule}', hour, prank, rule, n_groups, n_matches FROM rollup_delta
  UNION ALL SELECT '${DIMS.namespace}', hour, prank, namespace, n_groups, n_matches FROM rollup_delta WHERE namespace IS NOT NULL
  UNION ALL SELECT '${DIMS.hostname}', hour, prank, hostname, n_groups, n_matches FROM rollup_delta
  UNION ALL SELECT '${DIMS.namespaceDaily}', ${dayOfHour('hour')}, prank, namespace, n_groups, n_matches FROM rollup_delta WHERE namespace IS NOT NULL
  UNION ALL SELECT '${DIMS.hostnameDaily}', ${dayOfHour('hour')}, prank, hostname, n_groups, n_matches FROM rollup_delta;
CREATE FUNCTION alerts_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    ${rollupDims('OLD', '-')}
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN
    ${rollupDims('NEW', '')}
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER alerts_rollup_ins_del AFTER INSERT OR DELETE ON alerts FOR EACH ROW EXECUTE FUNCTION alerts_rollup();
CREATE TRIGGER alerts_rollup_upd AFTER UPDATE OF count, last_seen ON alerts FOR EACH ROW
  WHEN (OLD.count IS DISTINCT FROM NEW.count OR OLD.last_seen IS DISTINCT FROM NEW.last_seen) EXECUTE FUNCTION alerts_rollup();
INSERT INTO rollup_delta SELECT last_seen / 3600000000000, prank, rule, namespace, hostname, COUNT(*), SUM(count) FROM alerts GROUP BY 1, 2, 3, 4, 5;`,
  },
  {
    version: 3,
    name: 'text search index (pg_trgm, where the database allows the extension)',
    sql: `
DO $$
BEGIN
  CREATE EXTENSION IF NOT EXISTS pg_trgm;
  CREATE INDEX alerts_text ON alerts USING gin (output gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'no pg_trgm (%): text search scans the groups; a superuser can run CREATE EXTENSION pg_trgm and CREATE INDEX alerts_text ON alerts USING gin (output gin_trgm_ops)', SQLERRM;
END $$;`,
  },
  {
    version: 4,
    name: 'rollups kept by statement-level triggers (one aggregated delta per statement, not one per row)',
    sql: `
DROP TRIGGER alerts_rollup_ins_del ON alerts;
DROP TRIGGER alerts_rollup_upd ON alerts;
DROP FUNCTION alerts_rollup();
${STATEMENT_ROLLUPS}`,
  },
  {
    version: 5,
    name: 'stats reads: a covering index for partial hours (index-only scans) in place of alerts_last_seen; no parallel scans of the rollups',
    sql: `
CREATE INDEX alerts_stats ON alerts (last_seen) INCLUDE (prank, rule, namespace, hostname, count);
DROP INDEX alerts_last_seen;
-- A stats read is tens of thousands of rollup rows: starting parallel workers for it cost more
-- than the scan (measured: 96 ms with two workers, 40 ms of work in each), most of all on a busy host.
ALTER TABLE rollup_hourly SET (parallel_workers = 0);`,
  },
];

export interface MigrationResult {
  /** Versions applied by this call, in order. */
  applied: { version: number; name: string }[];
  /** The schema version after the call. */
  version: number;
}

/**
 * Apply the migrations not yet recorded. Safe to call from many replicas at once: they take turns
 * on an advisory lock, and each migration runs in one transaction with its record.
 */
export async function migrate(client: pg.ClientBase, onStep?: (m: Migration) => void): Promise<MigrationResult> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS minewatch_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM minewatch_migrations')).rows.map((r) => Number(r.version)));
    const newer = [...done].filter((v) => !MIGRATIONS.some((m) => m.version === v));
    if (newer.length > 0) {
      throw new Error(`the database's schema has migration ${Math.max(...newer)}, newer than this minewatch knows (${MIGRATIONS.length}): run the newer minewatch, or point alerts.store.url at another database`);
    }
    const applied: MigrationResult['applied'] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      onStep?.(m);
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO minewatch_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new Error(`migration ${m.version} (${m.name}) failed: ${(e as Error).message}`);
      }
      applied.push({ version: m.version, name: m.name });
    }
    return { applied, version: MIGRATIONS[MIGRATIONS.length - 1]!.version };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]).catch(() => undefined);
  }
}

/** The newest version recorded, 0 for a database never migrated (readiness waits for the latest). */
export async function schemaVersion(client: pg.ClientBase): Promise<number> {
  const t = await client.query<{ t: string | null }>("SELECT to_regclass('minewatch_migrations') AS t");
  if (!t.rows[0]?.t) return 0;
  const r = await client.query<{ v: string | number }>('SELECT COALESCE(MAX(version), 0) AS v FROM minewatch_migrations');
  return Number(r.rows[0]?.v ?? 0);
}

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
