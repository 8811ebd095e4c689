/**
 * The alert store: one SQLite database (WAL) holding every alert group, the messages waiting for
 * each output, and each output's delivery counters. Alerts are written here before anything
 * forwards them, so a crash or a dead output loses nothing: on restart, pending deliveries resume.
 *
 * Times are ns since the epoch in INTEGER columns (good to 2262); statements that read them use
 * safe integers so no nanosecond is rounded away.
 */
import Database from 'better-sqlite3';
import { closeSync, constants, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { securePrivateFile } from '../platform/state.js';
import type { OutputValue } from '../engine/output.js';
import { PRIORITIES, priorityRank, type Priority } from '../engine/types.js';
import type { AlertBackend, GroupUpdate, NewGroup, OutputCounters, PendingDelivery, RetentionLimits } from './backend.js';
import type { AlertMessage, AlertQuery, AlertReader, AlertRecord, AlertStats, DeliveryKind } from './types.js';
import { fromJsonText, toJsonText } from '../engine/json.js';
import { EDGE_SETS, type EdgeRow, rollupPlan, statsFromEdgeRows, TOP_N, type RollupRow } from './rollup.js';
import { likePattern, whereClause } from './query-sql.js';
import { SQLITE_ROLLUP_SCHEMA, SQLITE_ROLLUP_REBUILD } from './rollup-sqlite.js';
import { DeferredTextIndex, migrateToDeferredTextIndex } from './text-index.js';

export type { GroupUpdate, NewGroup, OutputCounters, PendingDelivery } from './backend.js';

/**
 * The connection's page cache, KiB (issue 16: the agent's RSS). better-sqlite3 builds SQLite with
 * a 16 MB default, and the retention sweep reads every page of the alerts table: on a store past
 * 16 MB the cache filled at the first sweep and stayed (heaptrack on an agent with an 85 MB store:
 * 14 MB of page cache, RSS 115 MB against 100 with a fresh one). Pages come from the kernel's page
 * cache when not in SQLite's, so 2 MB (SQLite's own default) costs a pread where it misses.
 */
export const STORE_CACHE_KIB = 2048;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS alerts (
  id INTEGER PRIMARY KEY,
  uuid TEXT NOT NULL UNIQUE,
  group_key TEXT NOT NULL,
  rule TEXT NOT NULL,
  priority TEXT NOT NULL,
  prank INTEGER NOT NULL,
  source TEXT NOT NULL,
  tags TEXT NOT NULL,
  hostname TEXT NOT NULL,
  output TEXT NOT NULL,
  output_fields TEXT NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  count INTEGER NOT NULL,
  changed TEXT NOT NULL,
  namespace TEXT,
  pod TEXT,
  container_id TEXT,
  container_name TEXT,
  event TEXT,
  origin TEXT NOT NULL,
  window_end INTEGER
);
CREATE INDEX IF NOT EXISTS alerts_rule ON alerts(rule);
CREATE INDEX IF NOT EXISTS alerts_prank ON alerts(prank);
CREATE INDEX IF NOT EXISTS alerts_hostname ON alerts(hostname);
CREATE INDEX IF NOT EXISTS alerts_namespace ON alerts(namespace);
CREATE INDEX IF NOT EXISTS alerts_pod ON alerts(pod);
CREATE INDEX IF NOT EXISTS alerts_container ON alerts(container_id);
CREATE INDEX IF NOT EXISTS alerts_source ON alerts(source);
-- The dashboard's aggregates read only these columns, so a range on last_seen is an index-only
-- scan. It replaces alerts_last_seen (its prefix), which the planner would otherwise pick and then
-- read every row of the range from the table.
DROP INDEX IF EXISTS alerts_last_seen;
CREATE INDEX IF NOT EXISTS alerts_stats ON alerts(last_seen, prank, rule, namespace, hostname, count);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts(window_end) WHERE window_end IS NOT NULL;
-- detail=none: the trigram index answers LIKE '%text%' without positions. With positions (the
-- default) every insert's cost grew with the index (3,000 rows/s at 50k rows, 370/s at 200k);
-- without them it stays near 6,000/s at 300k.
-- Written after the alert, in batches (src/alerts/text-index.ts keeps it and its todo list).
CREATE VIRTUAL TABLE IF NOT EXISTS alerts_text USING fts5(output, content='alerts', content_rowid='id', tokenize='trigram', detail=none);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  alert_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_alert ON messages(alert_id);
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY,
  message_id INTEGER NOT NULL,
  output TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  dead INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS deliveries_queue ON deliveries(output, dead, id);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries(message_id);
CREATE TABLE IF NOT EXISTS output_counters (
  name TEXT PRIMARY KEY,
  delivered INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
);
`;

export type Row = Record<string, unknown>;

function num(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : (v as number);
}

function big(v: unknown): bigint {
  return typeof v === 'bigint' ? v : BigInt(v as number);
}

/**
 * The record of a group just written, its `event` parsed from the stored text only when something
 * reads it (a dashboard's stream, a listener): parsing back the text just encoded was the largest
 * item of an alert's write (issue 16: the exec → alert tail), and most alerts are never read back.
 */
function withLazyEvent(rec: AlertRecord, text: string | null): AlertRecord {
  if (text === null) return rec;
  let value: unknown;
  let parsed = false;
  Object.defineProperty(rec, 'event', {
    enumerable: true,
    configurable: true,
    get(): unknown {
      if (!parsed) {
        value = parseJson<unknown>(text, null);
        parsed = true;
      }
      return value;
    },
    set(v: unknown) {
      value = v;
      parsed = true;
    },
  });
  return rec;
}

function parseJson<T>(text: unknown, fallback: T): T {
  if (typeof text !== 'string') return fallback;
  try {
    return fromJsonText(text) as T;
  } catch {
    return fallback;
  }
}

/** A row of `alerts` (either store) as the record the pipeline and API use. */
export function toRecord(r: Row): AlertRecord {
  return {
    id: num(r.id),
    uuid: r.uuid as string,
    groupKey: r.group_key as string,
    rule: r.rule as string,
    priority: r.priority as Priority,
    source: r.source as string,
    tags: parseJson<string[]>(r.tags, []),
    hostname: r.hostname as string,
    output: r.output as string,
    outputFields: parseJson<Record<string, OutputValue>>(r.output_fields, {}),
    firstSeen: big(r.first_seen),
    lastSeen: big(r.last_seen),
    count: num(r.count),
    changed: parseJson<Record<string, OutputValue[]>>(r.changed, {}),
    namespace: (r.namespace as string | null) ?? null,
    pod: (r.pod as string | null) ?? null,
    containerId: (r.container_id as string | null) ?? null,
    containerName: (r.container_name as string | null) ?? null,
    event: parseJson<unknown>(r.event, null),
    origin: r.origin === 'input' ? 'input' : 'local',
    windowEnd: r.window_end === null || r.window_end === undefined ? null : big(r.window_end),
  };
}

export class AlertStore implements AlertReader, AlertBackend {
  readonly kind = 'sqlite' as const;
  readonly db: Database.Database;
  readonly path: string;
  private readonly st: ReturnType<AlertStore['prepare']>;
  /**
   * Deliveries queued since the last takeQueued(), with their message in hand: the pipeline gives
   * them to the outputs as it commits, so an idle output sends them without reading them back.
   */
  private queued: (PendingDelivery & { output: string })[] = [];
  /** Whether to keep them (only a pipeline that takes them asks). */
  keepsQueued = false;

  constructor(path: string) {
    this.path = path;
    if (path !== ':memory:') {
      try {
        mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
        // The store holds other users' command lines: 0600 from its first byte (SQLite gives the
        // -wal and -shm files the database file's mode), and older stores are tightened.
        closeSync(openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600));
        for (const f of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) securePrivateFile(f);
      } catch (e) {
        throw new Error(`alerts.store.path: cannot create ${path}: ${(e as Error).message}; set alerts.store.path to a writable place`);
      }
    }
    try {
      this.db = new Database(path);
    } catch (e) {
      throw new Error(`alerts.store.path: cannot open ${path}: ${(e as Error).message}; set alerts.store.path to a writable file`);
    }
    // WAL: readers (the API) never block the writer. synchronous=NORMAL in WAL mode survives the
    // process being killed (SIGKILL) with every committed write; only power loss may drop the
    // last transactions.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma(`cache_size = -${STORE_CACHE_KIB}`);
    this.migrateTextIndex();
    this.db.exec(SCHEMA);
    migrateToDeferredTextIndex(this.db);
    this.migrateRollups();
    // No ANALYZE / PRAGMA optimize: statistics taken while the store is small (at its first open,
    // they say the full-text index is empty) make FTS5's own lookups pick scans as it grows, and
    // inserts slowed from 8,000/s to 1,700/s by 200k alerts. The queries are shaped so the plain
    // planner picks the right index (alerts_stats for ranges, ids first for pages).
    this.st = this.prepare();
    this.textIndex = new DeferredTextIndex(this.db);
  }

  /** The text index, written in batches after the alerts (the pipeline tells it of commits). */
  readonly textIndex: DeferredTextIndex;

  /** Stores made before the text index dropped its positions: rebuild it once, the new way. */
  private migrateTextIndex(): void {
    const row = this.db.prepare("SELECT sql FROM sqlite_master WHERE name = 'alerts_text'").get() as { sql: string } | undefined;
    if (!row || row.sql.includes('detail=none')) return;
    this.db.exec('DROP TABLE alerts_text');
    this.db.exec(SCHEMA);
    this.db.exec("INSERT INTO alerts_text(alerts_text) VALUES ('rebuild')");
    // Every row is in the index now: none waits for it.
    if (this.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'alerts_text_todo'").get()) this.db.exec('DELETE FROM alerts_text_todo');
  }

  /** Stores made before the hourly rollups: count them once from the groups, then keep them up. */
  private migrateRollups(): void {
    const had = this.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'rollup_hourly'").get() !== undefined;
    this.db.transaction(() => {
      this.db.exec(SQLITE_ROLLUP_SCHEMA);
      if (!had) this.db.exec(SQLITE_ROLLUP_REBUILD);
    })();
  }

  /**
   * Load many groups at once (benches, imports): the rollup triggers are dropped for the load and
   * the rollups recounted after it, in one transaction per `fn` call of the caller's batches.
   */
  bulkLoad(load: (insert: (g: NewGroup) => void) => void): void {
    this.db.exec('DROP TRIGGER IF EXISTS alerts_rollup_ins');
    try {
      load((g) => this.insertGroup(g, [], null));
    } finally {
      this.db.transaction(() => {
        this.db.exec(SQLITE_ROLLUP_SCHEMA);
        this.db.exec(SQLITE_ROLLUP_REBUILD);
      })();
    }
  }

  /** The rollup rows (tests compare them with a recount from the groups). */
  rollupRows(): { dim: string; hour: number; prank: number; value: string; groups: number; matches: number }[] {
    return this.db.prepare('SELECT dim, hour, prank, value, n_groups AS groups, n_matches AS matches FROM rollup_hourly WHERE n_groups <> 0 OR n_matches <> 0 ORDER BY 1, 2, 3, 4').all() as never;
  }

  private prepare() {
    const db = this.db;
    const read = <T extends Database.Statement>(s: T): T => s.safeIntegers(true) as T;
    return {
      insertAlert: db.prepare(`INSERT INTO alerts (uuid, group_key, rule, priority, prank, source, tags, hostname, output, output_fields,
        first_seen, last_seen, count, changed, namespace, pod, container_id, container_name, event, origin, window_end)
        VALUES (@uuid, @groupKey, @rule, @priority, @prank, @source, @tags, @hostname, @output, @outputFields,
        @firstSeen, @lastSeen, @count, @changed, @namespace, @pod, @containerId, @containerName, @event, @origin, @windowEnd)`),
      updateAlert: db.prepare('UPDATE alerts SET count = ?, last_seen = ?, changed = ?, window_end = ? WHERE id = ?'),
      closeWindow: db.prepare('UPDATE alerts SET window_end = NULL WHERE id = ?'),
      byId: read(db.prepare('SELECT * FROM alerts WHERE id = ?')),
      byUuid: read(db.prepare('SELECT * FROM alerts WHERE uuid = ?')),
      open: read(db.prepare('SELECT * FROM alerts WHERE window_end IS NOT NULL')),
      insertMessage: db.prepare('INSERT INTO messages (alert_id, kind, payload) VALUES (?, ?, ?)'),
      insertDelivery: db.prepare('INSERT INTO deliveries (message_id, output) VALUES (?, ?)'),
      pending: db.prepare(`SELECT d.id, d.message_id AS messageId, m.alert_id AS alertId, m.kind, m.payload, d.attempts
        FROM deliveries d JOIN messages m ON m.id = d.message_id
        WHERE d.output = ? AND d.dead = 0 AND d.id > ? ORDER BY d.id LIMIT ?`),
      deleteDelivery: db.prepare('DELETE FROM deliveries WHERE id = ?'),
      deleteMessageIfDone: db.prepare('DELETE FROM messages WHERE id = ? AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = ?)'),
      failDelivery: db.prepare('UPDATE deliveries SET attempts = attempts + 1, last_error = ? WHERE id = ?'),
      killDelivery: db.prepare('UPDATE deliveries SET attempts = attempts + 1, last_error = ?, dead = 1 WHERE id = ?'),
      counterEnsure: db.prepare('INSERT OR IGNORE INTO output_counters (name) VALUES (?)'),
      counterDelivered: db.prepare('UPDATE output_counters SET delivered = delivered + ?, last_error = NULL WHERE name = ?'),
      counterFailed: db.prepare('UPDATE output_counters SET failures = failures + 1, last_error = ? WHERE name = ?'),
      counters: db.prepare('SELECT delivered, failures, last_error AS lastError FROM output_counters WHERE name = ?'),
      pendingCount: db.prepare('SELECT SUM(dead = 0) AS pending, SUM(dead = 1) AS dead FROM deliveries WHERE output = ?'),
      pendingOutputs: db.prepare('SELECT output, COUNT(*) AS n FROM deliveries WHERE dead = 0 GROUP BY output'),
    };
  }

  /**
   * Run `fn` atomically: in a transaction of its own, or, inside the pipeline's group commit, as
   * part of that one (a savepoint per alert would cost more than the alert's own rows).
   */
  private atomic<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.db.transaction(fn)();
  }

  /**
   * Store a new group, and queue its first message for the given outputs: one transaction.
   * `message` is the message `payload` encodes, handed on with it (takeQueued).
   */
  insertGroup(g: NewGroup, outputs: readonly string[], payload: string | null, message?: AlertMessage): AlertRecord {
    const queued: (PendingDelivery & { output: string })[] = [];
    const id = this.atomic(() => {
      const id = Number(this.st.insertAlert.run({
        ...g,
        prank: priorityRank(g.priority),
        tags: JSON.stringify(g.tags),
        outputFields: toJsonText(g.outputFields),
        changed: toJsonText(g.changed),
        windowEnd: g.windowEnd,
      }).lastInsertRowid);
      if (payload !== null) this.enqueueIn(id, 'first', payload, outputs, queued, message);
      return id;
    });
    this.keepQueued(queued);
    return withLazyEvent({ ...g, id, event: null }, g.event);
  }

  /** Queue `payload` for `outputs`; the deliveries are added to `into` (kept once the write succeeded). */
  private enqueueIn(alertId: number, kind: DeliveryKind, payload: string, outputs: readonly string[], into: (PendingDelivery & { output: string })[], message?: AlertMessage): void {
    if (outputs.length === 0) return;
    const messageId = Number(this.st.insertMessage.run(alertId, kind, payload).lastInsertRowid);
    for (const output of outputs) {
      const id = Number(this.st.insertDelivery.run(messageId, output).lastInsertRowid);
      into.push({ id, messageId, alertId, kind, payload, attempts: 0, output, ...(message ? { message } : {}) });
    }
  }

  private keepQueued(queued: (PendingDelivery & { output: string })[]): void {
    if (this.keepsQueued) for (const q of queued) this.queued.push(q);
  }

  /**
   * The deliveries queued since the last call, oldest first (the pipeline's commit hands them to
   * the outputs; after a rollback it drops them).
   */
  takeQueued(): (PendingDelivery & { output: string })[] {
    const q = this.queued;
    if (q.length > 0) this.queued = [];
    return q;
  }

  /** Queue one message (a summary, a forwarded update) for the given outputs. */
  enqueue(alertId: number, kind: DeliveryKind, payload: string, outputs: readonly string[], message?: AlertMessage): void {
    const queued: (PendingDelivery & { output: string })[] = [];
    this.atomic(() => this.enqueueIn(alertId, kind, payload, outputs, queued, message));
    this.keepQueued(queued);
  }

  /** Write the counts and changed values of many groups in one transaction. */
  updateGroups(updates: readonly GroupUpdate[]): void {
    if (updates.length === 0) return;
    this.atomic(() => {
      for (const u of updates) this.st.updateAlert.run(u.count, u.lastSeen, toJsonText(u.changed), u.windowEnd, u.id);
    });
  }

  /** Close a group's window, writing its final counts and queueing its summary, atomically. */
  closeGroup(u: GroupUpdate, summary: string | null, outputs: readonly string[], message?: AlertMessage): void {
    const queued: (PendingDelivery & { output: string })[] = [];
    this.atomic(() => {
      this.st.updateAlert.run(u.count, u.lastSeen, toJsonText(u.changed), null, u.id);
      if (summary !== null) this.enqueueIn(u.id, 'summary', summary, outputs, queued, message);
    });
    this.keepQueued(queued);
  }

  /** Groups whose throttle window was still open when the store was last written. */
  openGroups(): AlertRecord[] {
    return (this.st.open.all() as Row[]).map(toRecord);
  }

  get(id: number): AlertRecord | undefined {
    const r = this.st.byId.get(id) as Row | undefined;
    return r ? toRecord(r) : undefined;
  }

  getByUuid(uuid: string): AlertRecord | undefined {
    const r = this.st.byUuid.get(uuid) as Row | undefined;
    return r ? toRecord(r) : undefined;
  }

  // ---- deliveries ----

  /** Up to `limit` pending messages for an output, oldest first, after delivery id `afterId`. */
  pending(output: string, afterId: number, limit: number): PendingDelivery[] {
    return this.st.pending.all(output, afterId, limit) as PendingDelivery[];
  }

  /** One sender per SQLite store: the oldest pending messages. */
  claim(output: string, limit: number): PendingDelivery[] {
    return this.pending(output, 0, limit);
  }

  writing(): boolean {
    return this.db.inTransaction;
  }

  get location(): string {
    return this.path;
  }

  delivered(output: string, d: PendingDelivery): void {
    this.deliveredAll(output, [d]);
  }

  /** Many deliveries accepted: one transaction (or a part of the pipeline's open one). */
  deliveredAll(output: string, ds: readonly PendingDelivery[]): void {
    if (ds.length === 0) return;
    this.atomic(() => {
      for (const d of ds) {
        this.st.deleteDelivery.run(d.id);
        this.st.deleteMessageIfDone.run(d.messageId, d.messageId);
      }
      this.st.counterEnsure.run(output);
      this.st.counterDelivered.run(ds.length, output);
    });
  }

  /** A failed attempt: the delivery stays pending (or, when `permanent`, is set aside as dead). */
  failed(output: string, d: PendingDelivery, error: string, permanent: boolean): void {
    this.atomic(() => {
      (permanent ? this.st.killDelivery : this.st.failDelivery).run(error, d.id);
      this.st.counterEnsure.run(output);
      this.st.counterFailed.run(error, output);
    });
  }

  counters(output: string): OutputCounters {
    const c = this.st.counters.get(output) as { delivered: number; failures: number; lastError: string | null } | undefined;
    const p = this.st.pendingCount.get(output) as { pending: number | null; dead: number | null };
    return { pending: p.pending ?? 0, dead: p.dead ?? 0, delivered: c?.delivered ?? 0, failures: c?.failures ?? 0, lastError: c?.lastError ?? null };
  }

  /** Outputs with pending deliveries, and how many each: finds outputs no longer configured. */
  pendingByOutput(): Map<string, number> {
    return new Map((this.st.pendingOutputs.all() as { output: string; n: number }[]).map((r) => [r.output, r.n]));
  }

  // ---- queries ----

  private where(q: AlertQuery): { sql: string; params: unknown[] } {
    return whereClause(q, (text) => {
      // Trigram FTS needs 3 characters; shorter searches scan (they are rarely selective anyway).
      if ([...text].length < 3) return { sql: "output LIKE ? ESCAPE '\\'", params: [likePattern(text)] };
      // The trigram index narrows LIKE to the rows holding every trigram of the text, but not
      // with an ESCAPE clause: that is only added when the text holds % or _ itself.
      const special = /[%_]/.test(text);
      // Rows not yet in the index (src/alerts/text-index.ts) are matched from their own text:
      // the few listed rows first (CROSS JOIN keeps that order; with no statistics the planner
      // scanned every group's text instead, 500 ms at 1M groups).
      const pattern = special ? likePattern(text) : `%${text}%`;
      const escape = special ? " ESCAPE '\\'" : '';
      return {
        sql: `id IN (SELECT rowid FROM alerts_text WHERE output LIKE ?${escape} UNION ALL SELECT a.id FROM alerts_text_todo t CROSS JOIN alerts a ON a.id = t.id WHERE a.output LIKE ?${escape})`,
        params: [pattern, pattern],
      };
    });
  }

  query(q: AlertQuery): AlertRecord[] {
    const { sql, params } = this.where(q);
    const limit = Math.max(1, Math.min(q.limit ?? 100, 1000));
    // The page's ids from an index first, then only those rows: with a range on last_seen the
    // planner would otherwise read every row of the range from the table to sort it by id.
    const rows = this.db.prepare(`SELECT * FROM alerts WHERE id IN (SELECT id FROM alerts${sql} ORDER BY id DESC LIMIT ?) ORDER BY id DESC`).safeIntegers(true).all(...params, limit) as Row[];
    return rows.map(toRecord);
  }

  /**
   * The dashboard's counts: whole hours from the hourly rollups (src/alerts/rollup.ts) where the
   * filters allow, the rest from the groups.
   */
  stats(q: AlertQuery, bucketMs: number): AlertStats {
    const plan = rollupPlan(q, bucketMs, 'rollup_hourly');
    if (!plan) return this.statsFromGroups(q, bucketMs);
    const rows = plan.statements.map((s) => this.db.prepare(s.sql).all(...s.params) as RollupRow[]);
    const edges = plan.edges.map((e) => this.edgeStats(e, bucketMs));
    return plan.combine(rows, edges, plan.rawTimeline ? this.statsFromGroups(q, bucketMs).timeline : undefined);
  }

  /**
   * The exact counts of a partial hour at the end of a range (top lists not cut, for merging), in
   * one statement: each count a branch over the covering alerts_stats range, in the rows
   * PostgreSQL's grouping sets give (src/alerts/rollup.ts, EdgeRow).
   */
  edgeStats(q: AlertQuery, bucketMs: number): AlertStats {
    const { sql, params } = this.where({ ...q, beforeId: undefined });
    const bucketNs = BigInt(Math.max(1000, Math.floor(bucketMs))) * 1_000_000n;
    const set = (s: number, cols: string, by: string) => `SELECT ${s} AS s, ${cols}, COUNT(*) AS g, SUM(count) AS n FROM alerts${sql} GROUP BY ${by}`;
    const rows = this.db.prepare([
      set(EDGE_SETS.rule, 'prank, rule, NULL AS namespace, NULL AS hostname, NULL AS b', '+prank, +rule'),
      set(EDGE_SETS.namespace, 'NULL, NULL, namespace, NULL, NULL', '+namespace'),
      set(EDGE_SETS.hostname, 'NULL, NULL, NULL, hostname, NULL', '+hostname'),
      set(EDGE_SETS.bucket, 'NULL, NULL, NULL, NULL, last_seen / ?', '6'),
    ].join(' UNION ALL ')).safeIntegers(true).all(...params, ...params, ...params, bucketNs, ...params) as EdgeRow[];
    return statsFromEdgeRows(rows, bucketNs);
  }

  /** The counts read from the groups themselves (`exact`: top lists not cut to 50, for merging). */
  statsFromGroups(q: AlertQuery, bucketMs: number, exact = false): AlertStats {
    const { sql, params } = this.where({ ...q, beforeId: undefined });
    const all = (s: string) => this.db.prepare(s).all(...params) as { k: string | null; n: number }[];
    const total = this.db.prepare(`SELECT COUNT(*) AS g, COALESCE(SUM(count), 0) AS m FROM alerts${sql}`).get(...params) as { g: number; m: number };
    const byPriority: Record<string, number> = {};
    for (const p of PRIORITIES) byPriority[p] = 0;
    // `+col`: group in a temp b-tree over the covering alerts_stats range, not by walking the
    // index of `col` in order (no sort, but a table lookup per row: seconds at 1M rows).
    for (const r of all(`SELECT prank AS k, SUM(count) AS n FROM alerts${sql} GROUP BY +prank`)) byPriority[PRIORITIES[Number(r.k)]!] = r.n;
    const top = (col: string) =>
      all(`SELECT ${col} AS k, SUM(count) AS n FROM alerts${sql}${sql ? ' AND' : ' WHERE'} +${col} IS NOT NULL GROUP BY +${col} ORDER BY n DESC${exact ? '' : ` LIMIT ${TOP_N}`}`).map(
        (r) => [r.k as string, r.n] as [string, number],
      );
    const bucketNs = BigInt(Math.max(1000, Math.floor(bucketMs))) * 1_000_000n;
    const timeline = (this.db.prepare(`SELECT last_seen / ? AS b, SUM(count) AS n FROM alerts${sql} GROUP BY b ORDER BY b`).safeIntegers(true).all(bucketNs, ...params) as { b: bigint; n: bigint }[])
      .map((r) => ({ t: Number((r.b * bucketNs) / 1_000_000n), count: Number(r.n) }));
    return {
      groups: total.g,
      matches: total.m,
      byPriority,
      byRule: top('rule'),
      byNamespace: top('namespace'),
      byHostname: top('hostname'),
      timeline,
    };
  }

  // ---- retention ----

  /**
   * Delete groups past the age, count and size limits, oldest first. Groups with a message still
   * waiting for an output, and groups whose window is open, are kept: retention never loses an
   * alert that has not been delivered. Returns how many were deleted.
   */
  applyRetention(opts: RetentionLimits): number {
    const keep = 'window_end IS NULL AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.alert_id = alerts.id)';
    let deleted = 0;
    const delete_ = (cond: string, params: unknown[]) => {
      deleted += this.db.prepare(`DELETE FROM alerts WHERE ${keep} AND ${cond}`).run(...params).changes;
    };
    if (opts.maxAgeDays > 0) {
      const cutoff = opts.nowNs - BigInt(Math.floor(opts.maxAgeDays * 86_400)) * 1_000_000_000n;
      delete_('last_seen < ?', [cutoff]);
    }
    if (opts.maxAlerts > 0) {
      const n = (this.db.prepare('SELECT COUNT(*) AS n FROM alerts').get() as { n: number }).n;
      if (n > opts.maxAlerts) delete_('id IN (SELECT id FROM alerts ORDER BY id LIMIT ?)', [n - opts.maxAlerts]);
    }
    if (opts.maxSizeMb > 0) {
      // Delete the oldest tenth at a time until the live pages fit; freed pages are reused.
      for (let i = 0; i < 10 && this.liveBytes() > opts.maxSizeMb * 1024 * 1024; i++) {
        const n = (this.db.prepare('SELECT COUNT(*) AS n FROM alerts').get() as { n: number }).n;
        if (n === 0) break;
        const before = deleted;
        delete_('id IN (SELECT id FROM alerts ORDER BY id LIMIT ?)', [Math.max(1, Math.ceil(n / 10))]);
        if (deleted === before) break;
      }
    }
    // Rows whose groups all moved to a later hour or were deleted hold zeros now.
    this.db.prepare('DELETE FROM rollup_hourly WHERE n_groups <= 0 AND n_matches <= 0').run();
    return deleted;
  }

  /** Bytes in use (pages not on the free list). */
  liveBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    const size = this.db.pragma('page_size', { simple: true }) as number;
    return (pages - free) * size;
  }

  close(): void {
    this.textIndex.stop();
    if (this.db.open) this.db.close();
  }
}
