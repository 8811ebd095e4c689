/**
 * The JSON API over the alert store, for the dashboard and scripts:
 *   GET /api/alerts       groups, newest first, filtered; paged with `beforeId`
 *   GET /api/alerts/:id   one group with everything it holds (the first event in full)
 *   GET /api/stats        counts by priority, rule, namespace, host and a timeline
 * A bad parameter is answered 400 naming it. Times are ISO 8601 or milliseconds since the epoch.
 */
import type { FastifyReply } from 'fastify';
import { isoTime } from '../engine/output.js';
import { type Priority, parsePriority, priorityLabel } from '../engine/types.js';
import type { AlertQuery, AlertReader, AlertRecord, AlertStats } from '../alerts/types.js';
import { redactChanged, redactOutput, redactStoredEvent } from '../alerts/redact.js';
import type { RoutePlugin } from './types.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
/** A timeline longer than this many buckets is refused: ask for a larger bucket or a shorter range. */
export const MAX_BUCKETS = 10_000;

export class QueryError extends Error {
  override name = 'QueryError';
}

type Params = Record<string, string | string[] | undefined>;

/** All values of a parameter given once or repeated (`?rule=a&rule=b`), empty ones left out. */
function many(p: Params, ...names: string[]): string[] | undefined {
  const out: string[] = [];
  for (const n of names) {
    const v = p[n];
    if (v === undefined) continue;
    for (const s of Array.isArray(v) ? v : [v]) if (s !== '') out.push(s);
  }
  return out.length ? out : undefined;
}

function one(p: Params, name: string): string | undefined {
  const v = p[name];
  const s = Array.isArray(v) ? v[v.length - 1] : v;
  return s === '' ? undefined : s;
}

/** ISO 8601 or ms since the epoch → ns since the epoch. */
export function parseTimeParam(s: string, name: string): bigint {
  if (/^\d{1,15}$/.test(s)) return BigInt(s) * 1_000_000n;
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) throw new QueryError(`${name}: '${s.slice(0, 40)}' is not a time; use ISO 8601 (2026-11-25T20:00:00Z) or milliseconds since the epoch`);
  // Keep sub-millisecond digits when given (Falco's times have nanoseconds).
  const frac = /\.(\d{4,9})(?=Z|[+-]|$)/.exec(s)?.[1];
  const extra = frac ? BigInt(frac.padEnd(9, '0').slice(3)) : 0n;
  return BigInt(ms) * 1_000_000n + extra;
}

function priorities(list: string[] | undefined, name: string): Priority[] | undefined {
  return list?.map((s) => {
    const p = parsePriority(s);
    if (!p) throw new QueryError(`${name}: '${s.slice(0, 40)}' is not a priority (emergency, alert, critical, error, warning, notice, informational, debug)`);
    return p;
  });
}

function positiveInt(s: string | undefined, name: string, max: number): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || Number(s) < 1) throw new QueryError(`${name}: '${s.slice(0, 20)}' is not a whole number ≥ 1`);
  const n = Number(s);
  if (n > max) throw new QueryError(`${name}: at most ${max}`);
  return n;
}

/** The filters shared by /api/alerts and /api/stats. */
export function parseAlertQuery(p: Params): AlertQuery {
  const q: AlertQuery = {};
  const from = one(p, 'from');
  const to = one(p, 'to');
  if (from !== undefined) q.from = parseTimeParam(from, 'from');
  if (to !== undefined) q.to = parseTimeParam(to, 'to');
  if (q.from !== undefined && q.to !== undefined && q.from >= q.to) throw new QueryError('from: must be before to');
  const set = <K extends 'rule' | 'source' | 'hostname' | 'namespace' | 'pod' | 'container'>(k: K, ...names: string[]): void => {
    const v = many(p, ...names);
    if (v) q[k] = v;
  };
  set('rule', 'rule');
  set('source', 'source');
  set('hostname', 'host', 'hostname');
  set('namespace', 'namespace');
  set('pod', 'pod');
  set('container', 'container');
  const prio = priorities(many(p, 'priority'), 'priority');
  if (prio) q.priority = prio;
  const min = one(p, 'minPriority');
  if (min !== undefined) q.minPriority = priorities([min], 'minPriority')![0];
  const text = one(p, 'q');
  if (text !== undefined) {
    if (text.length > 200) throw new QueryError('q: at most 200 characters');
    q.text = text;
  }
  return q;
}

const DURATION = /^(\d+)(ms|s|m|h|d)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Round bucket sizes the automatic choice picks from. */
const NICE_BUCKETS = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400].map((s) => s * 1000);

/** `bucket`: "30s", "5m", "1h", "1d" or ms; absent: about 60 buckets over the range asked for (1 h when open-ended). */
export function parseBucket(s: string | undefined, q: AlertQuery, nowMs: number): number {
  const span = q.from !== undefined ? Number(((q.to ?? BigInt(nowMs) * 1_000_000n) - q.from) / 1_000_000n) : undefined;
  if (s === undefined) {
    if (span === undefined) return 3_600_000;
    return NICE_BUCKETS.find((b) => span / b <= 60) ?? NICE_BUCKETS[NICE_BUCKETS.length - 1]!;
  }
  const m = DURATION.exec(s.trim());
  if (!m) throw new QueryError(`bucket: '${s.slice(0, 20)}' is not a duration; use e.g. 30s, 5m, 1h, 1d or milliseconds`);
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? 'ms']!;
  if (ms < 1000) throw new QueryError('bucket: at least 1s');
  if (span !== undefined && span / ms > MAX_BUCKETS) throw new QueryError(`bucket: ${s} over this range makes more than ${MAX_BUCKETS} buckets; use a larger bucket or a shorter range`);
  return ms;
}

/** JSON for a value that may hold bigints (the event model's times). */
export const jsonSafe = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

/** One group as the API shows it (snake_case like Falco's JSON; times ISO, with ns beside them). */
export function alertView(r: AlertRecord, withEvent: boolean): Record<string, unknown> {
  // Stored alerts are redacted as they are written; redacting again here covers stores written
  // before that (a no-op on the rest).
  const { output, fields } = redactOutput(r.output, r.outputFields);
  const v: Record<string, unknown> = {
    id: r.id,
    uuid: r.uuid,
    rule: r.rule,
    priority: priorityLabel(r.priority),
    source: r.source,
    tags: r.tags,
    hostname: r.hostname,
    output,
    output_fields: fields,
    count: r.count,
    first_seen: isoTime(r.firstSeen),
    last_seen: isoTime(r.lastSeen),
    first_seen_ns: r.firstSeen.toString(),
    last_seen_ns: r.lastSeen.toString(),
    changed: redactChanged(r.changed),
    namespace: r.namespace,
    pod: r.pod,
    container_id: r.containerId,
    container_name: r.containerName,
    origin: r.origin,
    window_open: r.windowEnd !== null,
    group_key: r.groupKey,
  };
  if (withEvent) v.event = redactStoredEvent(r.event);
  return v;
}

export function statsView(s: AlertStats, bucketMs: number): Record<string, unknown> {
  const byPriority: Record<string, number> = {};
  for (const [p, n] of Object.entries(s.byPriority)) {
    const canon = parsePriority(p);
    byPriority[canon ? priorityLabel(canon) : p] = n;
  }
  return {
    groups: s.groups,
    matches: s.matches,
    by_priority: byPriority,
    by_rule: s.byRule,
    by_namespace: s.byNamespace,
    by_hostname: s.byHostname,
    bucket_ms: bucketMs,
    timeline: s.timeline,
  };
}

function badRequest(reply: FastifyReply, e: unknown): FastifyReply {
  if (e instanceof QueryError) return reply.code(400).send({ error: e.message });
  throw e;
}

export function apiRoutes(store: AlertReader, now: () => number = Date.now): RoutePlugin {
  return async (app) => {
    app.get('/api/alerts', { config: { auth: 'token' } }, async (req, reply) => {
      const p = req.query as Params;
      let q: AlertQuery;
      try {
        q = parseAlertQuery(p);
        q.limit = positiveInt(one(p, 'limit'), 'limit', MAX_LIMIT) ?? DEFAULT_LIMIT;
        const before = positiveInt(one(p, 'beforeId'), 'beforeId', Number.MAX_SAFE_INTEGER);
        if (before !== undefined) q.beforeId = before;
      } catch (e) {
        return badRequest(reply, e);
      }
      const rows = await store.query(q);
      const next = rows.length === q.limit ? rows[rows.length - 1]!.id : null;
      return reply.type('application/json').send(jsonSafe({ alerts: rows.map((r) => alertView(r, false)), next_before_id: next }));
    });

    app.get('/api/alerts/:id', { config: { auth: 'token' } }, async (req, reply) => {
      const raw = (req.params as { id: string }).id;
      if (!/^\d{1,15}$/.test(raw)) return reply.code(400).send({ error: `id: '${raw.slice(0, 20)}' is not an alert id (a whole number)` });
      const r = await store.get(Number(raw));
      if (!r) return reply.code(404).send({ error: `no alert with id ${raw} (it may have been removed by retention)` });
      return reply.type('application/json').send(jsonSafe(alertView(r, true)));
    });

    app.get('/api/stats', { config: { auth: 'token' } }, async (req, reply) => {
      const p = req.query as Params;
      let q: AlertQuery;
      let bucket: number;
      try {
        q = parseAlertQuery(p);
        bucket = parseBucket(one(p, 'bucket'), q, now());
      } catch (e) {
        return badRequest(reply, e);
      }
      return reply.send(statsView(await store.stats(q, bucket), bucket));
    });
  };
}
