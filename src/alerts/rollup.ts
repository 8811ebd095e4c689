/**
 * Hourly rollups for the dashboard's stats, shared by the SQLite and PostgreSQL stores.
 *
 * Every group counts, under the hour of its last_seen, in one row per dimension: its rule ('r'),
 * its namespace ('n', when it has one) and its host ('h'), each with its priority rank. The stores
 * keep the rows up in the transaction that writes the group (triggers on insert, on a change of
 * count or last_seen, and on delete, so retention takes its groups out too), so a rollup always
 * equals a recount of the groups.
 *
 * A stats query whose filters are only time and priority reads whole hours from the rollups and
 * the partial hours at either end of its range from the groups themselves, so its answer is the
 * same as the groups' own recount, at any range. Other filters (rule, host, text…) select few
 * groups and read them directly.
 */
import { PRIORITIES, priorityRank } from '../engine/types.js';
import type { AlertQuery, AlertStats } from './types.js';

export const HOUR_NS = 3_600_000_000_000n;
const HOUR_MS = 3_600_000;
/** Longest top lists the stats return (AlertStats). */
export const TOP_N = 50;

/**
 * The dimensions a rollup row counts under (the `dim` column). Namespaces and hosts are counted
 * per hour and per day too (their `hour` is the day's first hour): a month's top hosts read 30
 * rows per host and priority, not 720.
 */
export const DIMS = { rule: 'r', namespace: 'n', hostname: 'h', namespaceDaily: 'N', hostnameDaily: 'H' } as const;
/** The hour a daily row is counted under, from the group's hour (SQL over `hour`). */
export const dayOfHour = (hourExpr: string) => `(${hourExpr}) / 24 * 24`;

/** True when the rollups can answer this query (its filters are only time and priority). */
export function rollupAnswers(q: AlertQuery): boolean {
  const none = (v: readonly unknown[] | undefined) => !v || v.length === 0;
  return none(q.rule) && none(q.source) && none(q.hostname) && none(q.namespace) && none(q.pod) && none(q.container) && !q.text?.trim();
}

/** The whole hours a range covers, and the partial ends outside them (read from the groups). */
export interface RangeSplit {
  /** Hours [from, to) since the epoch; undefined bounds are open. Absent: no whole hour. */
  hours?: { from?: bigint; to?: bigint };
  edges: { from?: bigint; to?: bigint }[];
}

const ceilDiv = (a: bigint, b: bigint) => (a >= 0n ? (a + b - 1n) / b : a / b);
const floorDiv = (a: bigint, b: bigint) => (a >= 0n ? a / b : -((-a + b - 1n) / b));

export function splitRange(from: bigint | undefined, to: bigint | undefined): RangeSplit {
  const h0 = from === undefined ? undefined : ceilDiv(from, HOUR_NS);
  const h1 = to === undefined ? undefined : floorDiv(to, HOUR_NS);
  if (h0 !== undefined && h1 !== undefined && h0 >= h1) return { edges: [{ from, to }] };
  const edges: RangeSplit['edges'] = [];
  if (from !== undefined && h0! * HOUR_NS > from) edges.push({ from, to: h0! * HOUR_NS });
  if (to !== undefined && h1! * HOUR_NS < to) edges.push({ from: h1! * HOUR_NS, to });
  return { hours: { from: h0, to: h1 }, edges };
}

/** One SQL statement with `?` placeholders (the PostgreSQL store numbers them). */
export interface Sql {
  sql: string;
  params: unknown[];
}

/** The rollup statements for the whole hours of a query (rows: k, g, n). */
export function rollupQueries(table: string, q: AlertQuery, hours: NonNullable<RangeSplit['hours']>, bucketMs: number): { rule: Sql; namespace: Sql; hostname: Sql; wholeHourBuckets: boolean } {
  const where = (dim: string, from: bigint | undefined, to: bigint | undefined): Sql => {
    const parts = ['dim = ?'];
    const params: unknown[] = [dim];
    if (from !== undefined) { parts.push('hour >= ?'); params.push(from); }
    if (to !== undefined) { parts.push('hour < ?'); params.push(to); }
    if (q.priority && q.priority.length > 0) {
      parts.push(`prank IN (${q.priority.map(() => '?').join(',')})`);
      params.push(...q.priority.map(priorityRank));
    }
    if (q.minPriority !== undefined) { parts.push('prank <= ?'); params.push(priorityRank(q.minPriority)); }
    return { sql: ' WHERE ' + parts.join(' AND '), params };
  };
  const by = (dim: string, col: string, extra = ''): Sql => {
    const w = where(dim, hours.from, hours.to);
    return { sql: `SELECT ${col} AS k, SUM(n_groups) AS g, SUM(n_matches) AS n FROM ${table}${w.sql} GROUP BY ${col}${extra}`, params: w.params };
  };
  /** Whole days from the daily rows, the hours either side of them from the hourly ones. */
  const byDay = (hourly: string, daily: string): Sql => {
    const d0 = hours.from === undefined ? undefined : ((hours.from + 23n) / 24n) * 24n;
    const d1 = hours.to === undefined ? undefined : (hours.to / 24n) * 24n;
    if (d0 !== undefined && d1 !== undefined && d0 >= d1) return by(hourly, 'value', ' HAVING SUM(n_matches) > 0');
    const parts = [where(daily, d0, d1)];
    if (d0 !== undefined && hours.from! < d0) parts.push(where(hourly, hours.from, d0));
    if (d1 !== undefined && hours.to! > d1) parts.push(where(hourly, d1, hours.to));
    return {
      sql: `SELECT value AS k, SUM(n_groups) AS g, SUM(n_matches) AS n FROM (${parts.map((p) => `SELECT value, n_groups, n_matches FROM ${table}${p.sql}`).join(' UNION ALL ')}) AS x GROUP BY value HAVING SUM(n_matches) > 0`,
      params: parts.flatMap((p) => p.params),
    };
  };
  const bucketHours = bucketMs % HOUR_MS === 0 ? bucketMs / HOUR_MS : undefined;
  const r = where(DIMS.rule, hours.from, hours.to);
  return {
    // One pass over the rule rows gives the totals, priorities, top rules and the timeline (its
    // buckets, when whole hours; others come from the groups: short ranges only, the API picks
    // whole hours past two days).
    rule: {
      sql: `SELECT ${bucketHours === undefined ? '0' : `hour / ${bucketHours}`} AS b, prank AS p, value AS k, SUM(n_groups) AS g, SUM(n_matches) AS n FROM ${table}${r.sql} GROUP BY 1, 2, 3`,
      params: r.params,
    },
    namespace: byDay(DIMS.namespace, DIMS.namespaceDaily),
    hostname: byDay(DIMS.hostname, DIMS.hostnameDaily),
    wholeHourBuckets: bucketHours !== undefined,
  };
}

export interface RollupRow {
  k: unknown;
  g: unknown;
  n: unknown;
}

/** A rule row of rollupQueries: bucket, priority rank, rule, groups, matches. */
export interface RuleRow extends RollupRow {
  b: unknown;
  p: unknown;
}

/** Stats from the rows of rollupQueries (`timeline`: the rule rows' buckets are the timeline's). */
export function statsFromRollup(rows: { rule: RuleRow[]; namespace: RollupRow[]; hostname: RollupRow[] }, bucketMs: number, timeline: boolean): AlertStats {
  const byPriority: Record<string, number> = {};
  for (const p of PRIORITIES) byPriority[p] = 0;
  let groups = 0;
  let matches = 0;
  const rules = new Map<string, number>();
  const buckets = new Map<number, number>();
  for (const r of rows.rule) {
    const n = Number(r.n);
    const p = PRIORITIES[Number(r.p)];
    if (p) byPriority[p]! += n;
    groups += Number(r.g);
    matches += n;
    const k = String(r.k);
    rules.set(k, (rules.get(k) ?? 0) + n);
    const b = Number(r.b);
    buckets.set(b, (buckets.get(b) ?? 0) + n);
  }
  const top = (rs: RollupRow[]) => rs.map((r) => [String(r.k), Number(r.n)] as [string, number]);
  return {
    groups,
    matches,
    byPriority,
    byRule: [...rules].filter(([, n]) => n > 0),
    byNamespace: top(rows.namespace),
    byHostname: top(rows.hostname),
    timeline: timeline ? [...buckets].filter(([, n]) => n > 0).sort((x, y) => x[0] - y[0]).map(([b, count]) => ({ t: b * bucketMs, count })) : [],
  };
}

/**
 * A row of a store's edge statement (the exact counts of a partial hour, read from the groups in
 * one statement): `s` says which count it is, as PostgreSQL's GROUPING(prank, namespace, hostname,
 * b) numbers its grouping sets: by priority and rule, by namespace, by host, by timeline bucket.
 */
export interface EdgeRow {
  s: number;
  prank: number | null;
  rule: string | null;
  namespace: string | null;
  hostname: string | null;
  b: bigint | null;
  g: bigint | string;
  n: bigint | string;
}

export const EDGE_SETS = { rule: 0b0111, namespace: 0b1011, hostname: 0b1101, bucket: 0b1110 } as const;

/** The stats of an edge's rows (top lists exact, not cut: for merging). */
export function statsFromEdgeRows(rows: EdgeRow[], bucketNs: bigint): AlertStats {
  const byPriority: Record<string, number> = {};
  for (const p of PRIORITIES) byPriority[p] = 0;
  const rules = new Map<string, number>();
  const top = (set: number, col: 'namespace' | 'hostname') => rows
    .filter((r) => Number(r.s) === set && r[col] !== null)
    .map((r) => [r[col]!, Number(r.n)] as [string, number])
    .sort((a, b) => b[1] - a[1]);
  let groups = 0;
  let matches = 0;
  for (const r of rows) {
    if (Number(r.s) !== EDGE_SETS.rule) continue;
    const n = Number(r.n);
    groups += Number(r.g);
    matches += n;
    byPriority[PRIORITIES[Number(r.prank)]!] = (byPriority[PRIORITIES[Number(r.prank)]!] ?? 0) + n;
    rules.set(r.rule!, (rules.get(r.rule!) ?? 0) + n);
  }
  return {
    groups,
    matches,
    byPriority,
    byRule: [...rules].sort((a, b) => b[1] - a[1]),
    byNamespace: top(EDGE_SETS.namespace, 'namespace'),
    byHostname: top(EDGE_SETS.hostname, 'hostname'),
    timeline: rows.filter((r) => Number(r.s) === EDGE_SETS.bucket).map((r) => ({ t: Number((BigInt(r.b!) * bucketNs) / 1_000_000n), count: Number(r.n) })).sort((a, b) => a.t - b.t),
  };
}

/** One stats answer from parts over disjoint ranges: sums, top lists cut to TOP_N after merging. */
export function mergeStats(parts: AlertStats[]): AlertStats {
  const byPriority: Record<string, number> = {};
  for (const p of PRIORITIES) byPriority[p] = 0;
  const merge = (lists: [string, number][][]) => {
    const m = new Map<string, number>();
    for (const l of lists) for (const [k, n] of l) m.set(k, (m.get(k) ?? 0) + n);
    return [...m].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, TOP_N);
  };
  const tl = new Map<number, number>();
  let groups = 0;
  let matches = 0;
  for (const s of parts) {
    groups += s.groups;
    matches += s.matches;
    for (const [p, n] of Object.entries(s.byPriority)) byPriority[p] = (byPriority[p] ?? 0) + n;
    for (const b of s.timeline) tl.set(b.t, (tl.get(b.t) ?? 0) + b.count);
  }
  return {
    groups,
    matches,
    byPriority,
    byRule: merge(parts.map((s) => s.byRule)),
    byNamespace: merge(parts.map((s) => s.byNamespace)),
    byHostname: merge(parts.map((s) => s.byHostname)),
    timeline: [...tl].sort((a, b) => a[0] - b[0]).map(([t, count]) => ({ t, count })),
  };
}

/** How a store answers a stats query through the rollups (undefined: from the groups alone). */
export interface RollupPlan {
  /** Rollup statements (rows k, g, n), run in this order. */
  statements: Sql[];
  /** Partial hours to read from the groups, with exact (uncut) top lists. */
  edges: AlertQuery[];
  /** The timeline's buckets are not whole hours: take it from the groups over the whole range. */
  rawTimeline: boolean;
  /** The answer from the statements' rows, the edges' stats and (rawTimeline) the groups' timeline. */
  combine(rows: RollupRow[][], edges: AlertStats[], timeline?: AlertStats['timeline']): AlertStats;
}

/**
 * The plan for a stats query through the rollups (both stores drive it: SQLite synchronously,
 * PostgreSQL asynchronously). `table` is the rollup rows' table or view.
 */
export function rollupPlan(q: AlertQuery, bucketMs: number, table: string): RollupPlan | undefined {
  const split = rollupAnswers(q) ? splitRange(q.from, q.to) : undefined;
  if (!split?.hours) return undefined;
  const qs = rollupQueries(table, q, split.hours, bucketMs);
  return {
    statements: [qs.rule, qs.namespace, qs.hostname],
    edges: split.edges.map((e) => ({ ...q, from: e.from, to: e.to })),
    rawTimeline: !qs.wholeHourBuckets,
    combine(rows, edges, timeline) {
      const [rule, namespace, hostname] = rows as [RuleRow[], RollupRow[], RollupRow[]];
      const merged = mergeStats([statsFromRollup({ rule, namespace, hostname }, bucketMs, qs.wholeHourBuckets), ...edges]);
      if (timeline) merged.timeline = timeline;
      return merged;
    },
  };
}

/** `?` placeholders → `$1, $2, …` (PostgreSQL). The statements here hold no `?` in literals. */
export function numbered(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}
