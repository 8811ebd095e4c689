/**
 * The PostgreSQL alert store (alerts.store.url): groups, messages, output queues, rollups and
 * retention in one database that any number of `minewatch server` replicas share.
 *
 * - Writes are upserts on the group's (uuid, hostname): a message delivered twice (an agent's
 *   retry, a JetStream redelivery, a replica that died before its ack) changes nothing, and queues
 *   nothing twice (messages are unique on group, kind and count).
 * - A delivery is leased to one replica at a time (SELECT … FOR UPDATE SKIP LOCKED, then a lease
 *   time): a replica that dies mid-send leaves it to another once the lease ends, so delivery stays
 *   at least once.
 * - Every committed change is announced with NOTIFY, so each replica's dashboard streams see the
 *   others' writes (listen()).
 * - The rollups' triggers only append deltas; one replica at a time folds them (compactRollups).
 */
import { hostname as osHostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { PRIORITIES, priorityRank } from '../../engine/types.js';
import { toJsonText } from '../../engine/json.js';
import type { AlertBackend, RetentionLimits } from '../backend.js';
import { likePattern, whereClause } from '../query-sql.js';
import { dayOfHour, DIMS, type EdgeRow, numbered, rollupPlan, statsFromEdgeRows, TOP_N, type RollupRow, type Sql } from '../rollup.js';
import { toRecord, type GroupUpdate, type NewGroup, type OutputCounters, type PendingDelivery, type Row } from '../store.js';
import type { AlertQuery, AlertRecord, AlertStats, DeliveryKind } from '../types.js';
import { clientConfig, createPool, pgLib, redactUrl, type PgStoreConfig } from './connect.js';
import { migrate, ROLLUP_INSERT_TRIGGER } from './migrations.js';

/** The NOTIFY channel of stored changes; payload: JSON [[id, "n" | "u"], …]. */
export const CHANGES_CHANNEL = 'minewatch_alerts';
/** Advisory lock keys: retention and rollup compaction run on one replica at a time. */
const RETENTION_LOCK = 0x6d77_3138_7265_74n;
const COMPACT_LOCK = 0x6d77_3138_636d_70n;
/** Deadlock, serialization failure: the transaction is run again (its writes are idempotent). */
const RETRYABLE = new Set(['40P01', '40001']);
/** NOTIFY payloads are limited to 8000 bytes: ids go out in chunks. */
const NOTIFY_CHUNK = 300;
/** Retention deletes in batches, so no transaction holds a long lock. */
const DELETE_BATCH = 20_000;

export type StoredChange = 'new' | 'update';

export interface PgStoreOptions extends PgStoreConfig {
  /** Apply the migrations at open (default true; `server migrate` runs them alone). */
  migrate?: boolean;
  /** How long a claimed delivery is this replica's before another may take it over. */
  leaseMs?: number;
  /** This replica's name in claims (default host:pid:random). */
  replica?: string;
}

/** One write of a group: what the pipeline hands the store. */
export interface GroupWrite {
  group: NewGroup;
  kind: DeliveryKind;
  /** The message to queue for the outputs (null: none). */
  payload: string | null;
}

export interface WriteResult {
  id: number;
  change: StoredChange;
  /** Matches this write added to what was stored (its count less the stored one), when the writer knows it. */
  added?: number;
}

export const COLUMNS = ['uuid', 'group_key', 'rule', 'priority', 'prank', 'source', 'tags', 'hostname', 'output', 'output_fields', 'first_seen', 'last_seen', 'count', 'changed',
  'namespace', 'pod', 'container_id', 'container_name', 'event', 'origin', 'window_end'] as const;

/**
 * PostgreSQL text cannot hold NUL, which a process's name or argv may: it becomes U+FFFD (the
 * group key's own separator too). JSON columns escape it already.
 */
export function pgText<T extends string | null>(v: T): T {
  return (typeof v === 'string' && v.includes('\u0000') ? v.replaceAll('\u0000', '\uFFFD') : v) as T;
}

/** The group's row values, in COLUMNS' order. */
export function rowValues(g: NewGroup): unknown[] {
  const t = pgText;
  return [t(g.uuid), t(g.groupKey), t(g.rule), g.priority, priorityRank(g.priority), t(g.source), JSON.stringify(g.tags), t(g.hostname), t(g.output), toJsonText(g.outputFields),
    g.firstSeen, g.lastSeen, g.count, toJsonText(g.changed), t(g.namespace), t(g.pod), t(g.containerId), t(g.containerName), g.event, g.origin, g.windowEnd];
}

/**
 * How an insert meets the stored group (one rule for the single and the batch write): the higher
 * count and later last_seen win, and a repeat of what is stored updates no row.
 */
export const UPSERT_CONFLICT = `ON CONFLICT ON CONSTRAINT alerts_group DO UPDATE SET
    count = GREATEST(alerts.count, EXCLUDED.count),
    last_seen = GREATEST(alerts.last_seen, EXCLUDED.last_seen),
    changed = CASE WHEN EXCLUDED.changed <> '{}' THEN EXCLUDED.changed ELSE alerts.changed END,
    window_end = EXCLUDED.window_end
  WHERE EXCLUDED.count > alerts.count OR EXCLUDED.last_seen > alerts.last_seen`;

const n = COLUMNS.length;
/**
 * One round trip per group: the upsert, its message and its deliveries. A repeat of what is stored
 * (no higher count, no later last_seen) updates no row, so it queues nothing and moves no rollup.
 */
const UPSERT = `
WITH up AS (
  INSERT INTO alerts (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})
  ${UPSERT_CONFLICT}
  RETURNING id, count, (xmax = 0) AS inserted
), msg AS (
  INSERT INTO messages (alert_id, kind, seq, payload)
  SELECT id, $${n + 1}, count, $${n + 2} FROM up WHERE $${n + 2}::text IS NOT NULL AND cardinality($${n + 3}::text[]) > 0
  ON CONFLICT ON CONSTRAINT messages_once DO NOTHING
  RETURNING id
), del AS (
  INSERT INTO deliveries (message_id, output) SELECT msg.id, o FROM msg CROSS JOIN unnest($${n + 3}::text[]) AS o
)
SELECT id, inserted FROM up`;

/** New groups remembered as announced (so a catch-up after a reconnect does not announce one twice). */
const ANNOUNCED_KEPT = 20_000;
/** At most this many groups announced after a reconnect (the streams' clients reload past that). */
const CATCH_UP_MAX = 5_000;

/** Add the deltas `source` gives (rows of rollup_delta's shape) to the hourly rows, under each dimension. */
const foldRollups = (source: string) => `WITH d AS (${source}),
  x AS (
    SELECT '${DIMS.rule}' AS dim, hour, prank, rule AS value, n_groups, n_matches FROM d
    UNION ALL SELECT '${DIMS.namespace}', hour, prank, namespace, n_groups, n_matches FROM d WHERE namespace IS NOT NULL
    UNION ALL SELECT '${DIMS.hostname}', hour, prank, hostname, n_groups, n_matches FROM d
    UNION ALL SELECT '${DIMS.namespaceDaily}', ${dayOfHour('hour')}, prank, namespace, n_groups, n_matches FROM d WHERE namespace IS NOT NULL
    UNION ALL SELECT '${DIMS.hostnameDaily}', ${dayOfHour('hour')}, prank, hostname, n_groups, n_matches FROM d)
  INSERT INTO rollup_hourly (dim, hour, prank, value, n_groups, n_matches)
  SELECT dim, hour, prank, value, SUM(n_groups), SUM(n_matches) FROM x GROUP BY 1, 2, 3, 4
  ON CONFLICT (dim, hour, prank, value) DO UPDATE SET n_groups = rollup_hourly.n_groups + EXCLUDED.n_groups, n_matches = rollup_hourly.n_matches + EXCLUDED.n_matches`;

export class PgAlertStore implements AlertBackend {
  readonly kind = 'postgres' as const;
  readonly location: string;
  readonly replica: string;
  private readonly leaseMs: number;
  private closed = false;
  private listener: pg.Client | undefined;

  private constructor(readonly pool: pg.Pool, private readonly cfg: PgStoreOptions) {
    this.location = redactUrl(cfg.url);
    this.leaseMs = cfg.leaseMs ?? 60_000;
    this.replica = cfg.replica ?? `${osHostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    // An idle client's error (the server restarted) must not crash the process: the pool drops it.
    pool.on('error', () => undefined);
    // Nor a checked-out client's, between two queries of a transaction (found in the fleet drill:
    // PostgreSQL refusing connections crashed a replica with an unhandled 'error' event); the
    // query in progress or the next one fails, and the caller retries.
    pool.on('connect', (client) => client.on('error', () => undefined));
  }

  /** Connect (and, unless told not to, migrate). Errors name the URL (password masked). */
  static async open(cfg: PgStoreOptions): Promise<PgAlertStore> {
    const pool = createPool(cfg);
    const store = new PgAlertStore(pool, cfg);
    if (cfg.migrate !== false) {
      let c: pg.PoolClient;
      try {
        c = await pool.connect();
      } catch (e) {
        await pool.end().catch(() => undefined);
        throw new Error(`alerts.store.url: cannot connect to ${store.location}: ${(e as Error).message}; check the URL, the password (alerts.store.password_file or PGPASSWORD) and that PostgreSQL accepts this host`);
      }
      try {
        await migrate(c);
      } catch (e) {
        c.release();
        await pool.end().catch(() => undefined);
        throw new Error(`alerts.store.url ${store.location}: ${(e as Error).message}`);
      }
      c.release();
    }
    return store;
  }

  /** Run `fn` in one transaction; again (up to 3 times) after a deadlock or serialization failure. */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const c = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await c.query('BEGIN');
        const r = await fn(c);
        await c.query('COMMIT');
        return r;
      } catch (e) {
        await c.query('ROLLBACK').catch((re: Error) => (broken = re));
        if (attempt < 3 && RETRYABLE.has((e as { code?: string }).code ?? '')) continue;
        throw e;
      } finally {
        c.release(broken);
      }
    }
  }

  private async rows<T = Row>(s: Sql | string, params: unknown[] = []): Promise<T[]> {
    const q = typeof s === 'string' ? { sql: s, params } : s;
    return (await this.pool.query(numbered(q.sql), q.params)).rows as T[];
  }

  // ---- groups ----

  /** Write groups (upserts) in one transaction, announcing the changes at its commit. */
  async writeGroups(writes: readonly GroupWrite[], outputs: readonly string[]): Promise<(WriteResult | undefined)[]> {
    if (writes.length === 0) return [];
    return this.tx(async (c) => {
      const out: (WriteResult | undefined)[] = [];
      for (const w of writes) out.push(await this.upsertIn(c, w, outputs));
      await this.announce(c, out.filter((r): r is WriteResult => r !== undefined));
      return out;
    });
  }

  private async upsertIn(c: pg.ClientBase, w: GroupWrite, outputs: readonly string[]): Promise<WriteResult | undefined> {
    const r = await c.query(UPSERT, [...rowValues(w.group), w.kind, w.payload, outputs]);
    const row = r.rows[0] as { id: bigint; inserted: boolean } | undefined;
    return row ? { id: Number(row.id), change: row.inserted ? 'new' : 'update' } : undefined;
  }

  /** NOTIFY the changes (delivered to every listening replica when the transaction commits). */
  private async announce(c: pg.ClientBase, changes: readonly WriteResult[]): Promise<void> {
    for (let i = 0; i < changes.length; i += NOTIFY_CHUNK) {
      const payload = JSON.stringify(changes.slice(i, i + NOTIFY_CHUNK).map((r) => [r.id, r.change === 'new' ? 'n' : 'u']));
      await c.query('SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, payload]);
    }
  }

  async insertGroup(g: NewGroup, outputs: readonly string[], payload: string | null): Promise<AlertRecord> {
    const [r] = await this.writeGroups([{ group: g, kind: 'first', payload }], outputs);
    const stored = r ? undefined : await this.getByUuidAndHost(g.uuid, g.hostname);
    return { ...g, id: r?.id ?? stored?.id ?? 0, event: g.event === null ? null : JSON.parse(g.event) };
  }

  async enqueue(alertId: number, kind: DeliveryKind, payload: string, outputs: readonly string[]): Promise<void> {
    if (outputs.length === 0) return;
    await this.tx((c) => this.enqueueIn(c, alertId, kind, payload, outputs));
  }

  private async enqueueIn(c: pg.ClientBase, alertId: number, kind: DeliveryKind, payload: string, outputs: readonly string[]): Promise<void> {
    if (outputs.length === 0) return;
    await c.query(`WITH msg AS (
        INSERT INTO messages (alert_id, kind, seq, payload) SELECT id, $2, count, $3 FROM alerts WHERE id = $1
        ON CONFLICT ON CONSTRAINT messages_once DO NOTHING RETURNING id)
      INSERT INTO deliveries (message_id, output) SELECT msg.id, o FROM msg CROSS JOIN unnest($4::text[]) AS o`, [alertId, kind, payload, outputs]);
  }

  async updateGroups(updates: readonly GroupUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    await this.tx(async (c) => {
      for (const u of updates) await this.updateIn(c, u);
      await this.announce(c, updates.map((u) => ({ id: u.id, change: 'update' as const })));
    });
  }

  private async updateIn(c: pg.ClientBase, u: GroupUpdate): Promise<void> {
    await c.query('UPDATE alerts SET count = $1, last_seen = $2, changed = $3, window_end = $4 WHERE id = $5', [u.count, u.lastSeen, toJsonText(u.changed), u.windowEnd, u.id]);
  }

  async closeGroup(u: GroupUpdate, summary: string | null, outputs: readonly string[]): Promise<void> {
    await this.tx(async (c) => {
      await this.updateIn(c, { ...u, windowEnd: null });
      if (summary !== null) await this.enqueueIn(c, u.id, 'summary', summary, outputs);
      await this.announce(c, [{ id: u.id, change: 'update' }]);
    });
  }

  async openGroups(): Promise<AlertRecord[]> {
    return (await this.rows('SELECT * FROM alerts WHERE window_end IS NOT NULL')).map(toRecord);
  }

  // ---- reads ----

  async get(id: number): Promise<AlertRecord | undefined> {
    const [r] = await this.rows('SELECT * FROM alerts WHERE id = ?', [id]);
    return r ? toRecord(r) : undefined;
  }

  /** Several groups by id, in no particular order (the change listener's batch). */
  async getMany(ids: readonly number[]): Promise<AlertRecord[]> {
    if (ids.length === 0) return [];
    return (await this.rows('SELECT * FROM alerts WHERE id = ANY(?::bigint[])', [ids])).map(toRecord);
  }

  async getByUuid(uuid: string): Promise<AlertRecord | undefined> {
    const [r] = await this.rows('SELECT * FROM alerts WHERE uuid = ? ORDER BY id LIMIT 1', [uuid]);
    return r ? toRecord(r) : undefined;
  }

  async getByUuidAndHost(uuid: string, hostname: string): Promise<AlertRecord | undefined> {
    const [r] = await this.rows('SELECT * FROM alerts WHERE uuid = ? AND hostname = ?', [uuid, hostname]);
    return r ? toRecord(r) : undefined;
  }

  private where(q: AlertQuery): Sql {
    // With pg_trgm (migration 3) ILIKE '%text%' is answered from the trigram index. LIKE's escape
    // character is the backslash by default.
    return whereClause(q, (text) => ({ sql: 'output ILIKE ?', params: [likePattern(text)] }));
  }

  async query(q: AlertQuery): Promise<AlertRecord[]> {
    const w = this.where(q);
    const limit = Math.max(1, Math.min(q.limit ?? 100, 1000));
    return (await this.rows(`SELECT * FROM alerts${w.sql} ORDER BY id DESC LIMIT ?`, [...w.params, limit])).map(toRecord);
  }

  async stats(q: AlertQuery, bucketMs: number): Promise<AlertStats> {
    const plan = rollupPlan(q, bucketMs, 'rollup_all');
    if (!plan) return this.statsFromGroups(q, bucketMs);
    const [rows, edges, timeline] = await Promise.all([
      Promise.all(plan.statements.map((s) => this.rows<RollupRow>(s))),
      Promise.all(plan.edges.map((e) => this.edgeStats(e, bucketMs))),
      plan.rawTimeline ? this.statsFromGroups(q, bucketMs).then((s) => s.timeline) : undefined,
    ]);
    return plan.combine(rows, edges, timeline);
  }

  /**
   * The exact counts of a partial hour at the end of a range (top lists not cut, for merging), in
   * one statement: one pass over alerts_stats (an index-only scan of the hour's entries), every
   * count at once as grouping sets.
   */
  async edgeStats(q: AlertQuery, bucketMs: number): Promise<AlertStats> {
    const w = this.where({ ...q, beforeId: undefined });
    const bucketNs = BigInt(Math.max(1000, Math.floor(bucketMs))) * 1_000_000n;
    const rows = await this.rows<EdgeRow>(`SELECT GROUPING(prank, namespace, hostname, b) AS s, prank, rule, namespace, hostname, b, COUNT(*) AS g, SUM(count) AS n
      FROM (SELECT prank, rule, namespace, hostname, last_seen / ?::bigint AS b, count FROM alerts${w.sql}) AS a
      GROUP BY GROUPING SETS ((prank, rule), (namespace), (hostname), (b))`, [bucketNs, ...w.params]);
    return statsFromEdgeRows(rows, bucketNs);
  }

  /** The counts read from the groups themselves (`exact`: top lists not cut, for merging). */
  async statsFromGroups(q: AlertQuery, bucketMs: number, exact = false): Promise<AlertStats> {
    const w = this.where({ ...q, beforeId: undefined });
    const and = w.sql ? `${w.sql} AND` : ' WHERE';
    const bucketNs = BigInt(Math.max(1000, Math.floor(bucketMs))) * 1_000_000n;
    const top = async (col: string) =>
      (await this.rows<{ k: string; n: bigint }>(`SELECT ${col} AS k, SUM(count) AS n FROM alerts${and} ${col} IS NOT NULL GROUP BY ${col} ORDER BY n DESC${exact ? '' : ` LIMIT ${TOP_N}`}`, w.params))
        .map((r) => [r.k, Number(r.n)] as [string, number]);
    const [total, prio, byRule, byNamespace, byHostname, tl] = await Promise.all([
      this.rows<{ g: bigint; m: bigint }>(`SELECT COUNT(*) AS g, COALESCE(SUM(count), 0) AS m FROM alerts${w.sql}`, w.params),
      this.rows<{ k: number; n: bigint }>(`SELECT prank AS k, SUM(count) AS n FROM alerts${w.sql} GROUP BY prank`, w.params),
      top('rule'),
      top('namespace'),
      top('hostname'),
      this.rows<{ b: bigint; n: bigint }>(`SELECT last_seen / ?::bigint AS b, SUM(count) AS n FROM alerts${w.sql} GROUP BY 1 ORDER BY 1`, [bucketNs, ...w.params]),
    ]);
    const byPriority: Record<string, number> = {};
    for (const p of PRIORITIES) byPriority[p] = 0;
    for (const r of prio) byPriority[PRIORITIES[Number(r.k)]!] = Number(r.n);
    return {
      groups: Number(total[0]!.g),
      matches: Number(total[0]!.m),
      byPriority,
      byRule,
      byNamespace,
      byHostname,
      timeline: tl.map((r) => ({ t: Number((BigInt(r.b) * bucketNs) / 1_000_000n), count: Number(r.n) })),
    };
  }

  // ---- output queues ----

  async claim(output: string, limit: number): Promise<PendingDelivery[]> {
    const rows = await this.rows<{ id: bigint; messageId: bigint; alertId: bigint; kind: DeliveryKind; payload: string; attempts: number }>(`
      UPDATE deliveries d SET claimed_by = ?, claimed_until = now() + ? * interval '1 millisecond'
      FROM (SELECT id FROM deliveries WHERE output = ? AND NOT dead AND (claimed_until IS NULL OR claimed_until < now())
            ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED) c, messages m
      WHERE d.id = c.id AND m.id = d.message_id
      RETURNING d.id, d.message_id AS "messageId", m.alert_id AS "alertId", m.kind, m.payload, d.attempts`, [this.replica, this.leaseMs, output, limit]);
    return rows
      .map((r) => ({ id: Number(r.id), messageId: Number(r.messageId), alertId: Number(r.alertId), kind: r.kind, payload: r.payload, attempts: r.attempts }))
      .sort((a, b) => a.id - b.id);
  }

  /**
   * Idempotent: the worker writes it again when it could not tell whether a commit went through
   * (the connection broke under it), and only the write that removed the row counts a delivery.
   */
  async delivered(output: string, d: PendingDelivery): Promise<void> {
    await this.tx(async (c) => {
      const gone = await c.query('DELETE FROM deliveries WHERE id = $1', [d.id]);
      await c.query('DELETE FROM messages WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = $1)', [d.messageId]);
      if (!gone.rowCount) return;
      await c.query(`INSERT INTO output_counters (name, delivered) VALUES ($1, 1)
        ON CONFLICT (name) DO UPDATE SET delivered = output_counters.delivered + 1, last_error = NULL`, [output]);
    });
  }

  async failed(output: string, d: PendingDelivery, error: string, permanent: boolean): Promise<void> {
    await this.tx(async (c) => {
      // Released at once: this replica's backoff decides when it tries again, another may sooner.
      error = pgText(error);
      await c.query('UPDATE deliveries SET attempts = attempts + 1, last_error = $2, dead = $3, claimed_by = NULL, claimed_until = NULL WHERE id = $1', [d.id, error, permanent]);
      await c.query(`INSERT INTO output_counters (name, failures, last_error) VALUES ($1, 1, $2)
        ON CONFLICT (name) DO UPDATE SET failures = output_counters.failures + 1, last_error = $2`, [output, error]);
    });
  }

  async counters(output: string): Promise<OutputCounters> {
    const [[c], [p]] = await Promise.all([
      this.rows<{ delivered: bigint; failures: bigint; lastError: string | null }>('SELECT delivered, failures, last_error AS "lastError" FROM output_counters WHERE name = ?', [output]),
      this.rows<{ pending: bigint; dead: bigint }>('SELECT COUNT(*) FILTER (WHERE NOT dead) AS pending, COUNT(*) FILTER (WHERE dead) AS dead FROM deliveries WHERE output = ?', [output]),
    ]);
    return { pending: Number(p?.pending ?? 0), dead: Number(p?.dead ?? 0), delivered: Number(c?.delivered ?? 0), failures: Number(c?.failures ?? 0), lastError: c?.lastError ?? null };
  }

  async pendingByOutput(): Promise<Map<string, number>> {
    const rows = await this.rows<{ output: string; n: bigint }>('SELECT output, COUNT(*) AS n FROM deliveries WHERE NOT dead GROUP BY output');
    return new Map(rows.map((r) => [r.output, Number(r.n)]));
  }

  /** Writes are awaited transactions: nothing uncommitted is ever visible to a sender. */
  writing(): boolean {
    return false;
  }

  // ---- rollups ----

  /**
   * Fold the rollup deltas into the hourly rows, on one replica at a time (the others skip).
   * Readers see the same sums before and after (rollup_all is both tables).
   */
  async compactRollups(): Promise<boolean> {
    return this.tx(async (c) => {
      const got = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [COMPACT_LOCK.toString()]);
      if (!got.rows[0]?.ok) return false;
      await c.query(foldRollups('DELETE FROM rollup_delta RETURNING *'));
      return true;
    });
  }

  /** Recount the rollups from the groups (after a bulk load; a repair). */
  async rebuildRollups(): Promise<void> {
    await this.tx(async (c) => {
      await c.query('LOCK TABLE alerts IN SHARE MODE');
      await c.query('TRUNCATE rollup_delta, rollup_hourly');
      // Straight into the hourly rows: through rollup_delta, its millions of deleted rows would be
      // scanned by every stats query (rollup_all) until a vacuum.
      await c.query(foldRollups('SELECT last_seen / 3600000000000 AS hour, prank, rule, namespace, hostname, COUNT(*) AS n_groups, SUM(count) AS n_matches FROM alerts GROUP BY 1, 2, 3, 4, 5'));
    });
  }

  /**
   * Load many groups at once (benches, imports) with COPY, the rollup triggers off for the load
   * and the rollups recounted after it. `onProgress` is told the rows written so far.
   */
  async bulkLoad(groups: Iterable<NewGroup>, onProgress?: (rows: number) => void): Promise<number> {
    const { from } = await import('pg-copy-streams');
    const c = await this.pool.connect();
    let n = 0;
    try {
      await c.query(`ALTER TABLE alerts DISABLE TRIGGER ${ROLLUP_INSERT_TRIGGER}`);
      const copy = c.query(from(`COPY alerts (${COLUMNS.join(', ')}) FROM STDIN`));
      const done = new Promise<void>((resolve, reject) => {
        copy.on('finish', resolve);
        copy.on('error', reject);
      });
      const field = (v: unknown) => (v === null || v === undefined ? '\\N' : String(v).replace(/[\\\t\n\r]/g, (ch) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[ch]!));
      let chunk: string[] = [];
      for (const g of groups) {
        chunk.push(rowValues(g).map(field).join('\t'));
        if (++n % 10_000 === 0) {
          if (!copy.write(chunk.join('\n') + '\n')) await new Promise((r) => copy.once('drain', r));
          chunk = [];
          if (n % 500_000 === 0) onProgress?.(n);
        }
      }
      if (chunk.length) copy.write(chunk.join('\n') + '\n');
      copy.end();
      await done;
      onProgress?.(n);
    } finally {
      await c.query(`ALTER TABLE alerts ENABLE TRIGGER ${ROLLUP_INSERT_TRIGGER}`).catch(() => undefined);
      c.release();
    }
    await this.rebuildRollups();
    return n;
  }

  /** The rollup rows, deltas folded in (tests compare them with a recount from the groups). */
  async rollupRows(): Promise<{ dim: string; hour: number; prank: number; value: string; groups: number; matches: number }[]> {
    const rows = await this.rows<Record<string, unknown>>(`SELECT dim, hour, prank, value, SUM(n_groups) AS groups, SUM(n_matches) AS matches FROM rollup_all
      GROUP BY 1, 2, 3, 4 HAVING SUM(n_groups) <> 0 OR SUM(n_matches) <> 0 ORDER BY 1, 2, 3, 4`);
    return rows.map((r) => ({ dim: String(r.dim), hour: Number(r.hour), prank: Number(r.prank), value: String(r.value), groups: Number(r.groups), matches: Number(r.matches) }));
  }

  // ---- retention ----

  /**
   * Delete groups past the age and count limits, oldest first, in batches, on one replica at a time
   * (the others return 0). Groups with an undelivered message or an open window are kept. The
   * rollups lose what is deleted in the same transactions; emptied rollup rows are removed.
   * max_size_mb is not applied here: PostgreSQL's size is the database operator's to plan.
   */
  async applyRetention(opts: RetentionLimits): Promise<number> {
    const c = await this.pool.connect();
    let deleted = 0;
    try {
      const got = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RETENTION_LOCK.toString()]);
      if (!got.rows[0]?.ok) return 0;
      try {
        const keep = 'window_end IS NULL AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.alert_id = alerts.id)';
        const batches = async (cond: string, params: unknown[], max = Infinity) => {
          for (;;) {
            const want = Math.min(DELETE_BATCH, max - deleted);
            if (want <= 0) return;
            const r = await c.query(numbered(`DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE ${keep} AND ${cond} ORDER BY id LIMIT ?)`), [...params, want]);
            deleted += r.rowCount ?? 0;
            if ((r.rowCount ?? 0) < want) return;
          }
        };
        if (opts.maxAgeDays > 0) {
          const cutoff = opts.nowNs - BigInt(Math.floor(opts.maxAgeDays * 86_400)) * 1_000_000_000n;
          await batches('last_seen < ?', [cutoff]);
        }
        if (opts.maxAlerts > 0) {
          const total = Number((await c.query<{ n: string }>('SELECT COUNT(*) AS n FROM alerts')).rows[0]?.n ?? 0);
          if (total > opts.maxAlerts) await batches('true', [], deleted + (total - opts.maxAlerts));
        }
        await this.compactRollups();
        await c.query('DELETE FROM rollup_hourly WHERE n_groups <= 0 AND n_matches <= 0');
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [RETENTION_LOCK.toString()]);
      }
    } finally {
      c.release();
    }
    return deleted;
  }

  // ---- changes from every replica ----

  /**
   * Call `onChanges` with the ids each committed transaction (of any replica) announced. The
   * connection is made again after a loss (changes made meanwhile are not replayed: a dashboard
   * reloads on reconnect). Resolves once listening; the returned function stops.
   */
  async listen(onChanges: (changes: WriteResult[]) => void, onError: (e: Error) => void = () => undefined): Promise<() => Promise<void>> {
    let stopped = false;
    let retry: NodeJS.Timeout | undefined;
    // Groups announced as new lately (a catch-up and a notification may name the same one), and
    // the highest id announced: after a lost connection, the groups above it are announced.
    const announced = new Set<number>();
    let highest = 0;
    let connects = 0;
    const tell = (changes: WriteResult[]): void => {
      const fresh = changes.filter((ch) => {
        highest = Math.max(highest, ch.id);
        if (ch.change !== 'new') return true;
        if (announced.has(ch.id)) return false;
        announced.add(ch.id);
        if (announced.size > ANNOUNCED_KEPT) announced.delete(announced.values().next().value!);
        return true;
      });
      if (fresh.length) onChanges(fresh);
    };
    const connect = async (): Promise<void> => {
      const c = new (pgLib().Client)(clientConfig(this.cfg));
      c.on('notification', (msg) => {
        if (msg.channel !== CHANGES_CHANNEL || !msg.payload) return;
        try {
          const list = JSON.parse(msg.payload) as [number, string][];
          tell(list.map(([id, ch]) => ({ id: Number(id), change: ch === 'n' ? 'new' : 'update' })));
        } catch (e) {
          onError(e as Error);
        }
      });
      let lost = false;
      const again = (e?: Error) => {
        if (lost) return; // 'error' and then 'end': one reconnect
        lost = true;
        if (this.listener === c) this.listener = undefined;
        c.removeAllListeners('error');
        c.on('error', () => undefined);
        c.end().catch(() => undefined);
        if (stopped || this.closed) return;
        if (e) onError(e);
        clearTimeout(retry);
        retry = setTimeout(() => void connect().catch((err: Error) => again(err)), 1000);
        retry.unref();
      };
      c.on('error', (e) => again(e));
      c.on('end', () => again());
      await c.connect();
      await c.query(`LISTEN ${CHANGES_CHANNEL}`);
      this.listener = c;
      // Reconnected: what was committed while no one listened here (found in the fleet drill: the
      // backlog stored right after PostgreSQL's outage, before this connection was back, never
      // reached this replica's dashboard streams). New groups are announced; updates to groups
      // the streams already show are not (a reload shows them).
      if (connects++ === 0) {
        const top = await c.query('SELECT COALESCE(max(id), 0) AS id FROM alerts');
        highest = Math.max(highest, Number((top.rows[0] as { id: string | number }).id));
      } else {
        const missed = await c.query('SELECT id FROM alerts WHERE id > $1 ORDER BY id LIMIT $2', [highest, CATCH_UP_MAX]);
        tell((missed.rows as { id: string | number }[]).map((r) => ({ id: Number(r.id), change: 'new' })));
      }
    };
    await connect();
    return async () => {
      stopped = true;
      clearTimeout(retry);
      const c = this.listener;
      this.listener = undefined;
      await c?.end().catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener?.end().catch(() => undefined);
    await this.pool.end();
  }
}
