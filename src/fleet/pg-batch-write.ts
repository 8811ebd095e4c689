/**
 * A batch of forwarded groups written to PostgreSQL in a handful of statements instead of one round
 * trip per group (the fleet consumer's hot path: ~6x the per-row rate measured on a 2-core box,
 * bench/fleet.bench.ts). The same idempotency as the store's per-group upsert
 * (src/alerts/pg/store.ts):
 *
 * - the batch's groups are locked (FOR UPDATE) and read first; an input counts only when it brings
 *   something new to what is stored (a higher count, a later last_seen), in batch order, so a
 *   redelivered first message or summary writes nothing and queues nothing;
 * - one multi-row upsert on (uuid, hostname) writes each group's newest state (a batch may carry a
 *   group's first message and its summary together: they are merged into one row);
 * - each input that brought something new queues its message for the outputs (messages unique on
 *   group, kind and count), and the changes are announced with NOTIFY at commit.
 */
import type pg from 'pg';
import { priorityRank } from '../engine/types.js';
import { toJsonText } from '../engine/json.js';
import { CHANGES_CHANNEL, type GroupWrite, type WriteResult } from '../alerts/pg/store.js';
import type { NewGroup } from '../alerts/store.js';

const COLUMNS: [string, string][] = [
  ['uuid', 'text'], ['group_key', 'text'], ['rule', 'text'], ['priority', 'text'], ['prank', 'smallint'], ['source', 'text'], ['tags', 'text'],
  ['hostname', 'text'], ['output', 'text'], ['output_fields', 'text'], ['first_seen', 'bigint'], ['last_seen', 'bigint'], ['count', 'bigint'],
  ['changed', 'text'], ['namespace', 'text'], ['pod', 'text'], ['container_id', 'text'], ['container_name', 'text'], ['event', 'text'], ['origin', 'text'],
  ['window_end', 'bigint'],
];

const UPSERT = `
INSERT INTO alerts (${COLUMNS.map(([c]) => c).join(', ')})
SELECT * FROM unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ')})
ON CONFLICT ON CONSTRAINT alerts_group DO UPDATE SET
  count = GREATEST(alerts.count, EXCLUDED.count),
  last_seen = GREATEST(alerts.last_seen, EXCLUDED.last_seen),
  changed = CASE WHEN EXCLUDED.changed <> '{}' THEN EXCLUDED.changed ELSE alerts.changed END,
  window_end = EXCLUDED.window_end
WHERE EXCLUDED.count > alerts.count OR EXCLUDED.last_seen > alerts.last_seen
RETURNING id, uuid, hostname, (xmax = 0) AS inserted`;

const ENQUEUE = `
WITH msg AS (
  INSERT INTO messages (alert_id, kind, seq, payload)
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[])
  ON CONFLICT ON CONSTRAINT messages_once DO NOTHING
  RETURNING id
)
INSERT INTO deliveries (message_id, output) SELECT msg.id, o FROM msg CROSS JOIN unnest($5::text[]) AS o`;

/** NOTIFY payloads are limited to 8000 bytes: ids go out in chunks (as the store does). */
const NOTIFY_CHUNK = 300;

const key = (g: NewGroup) => `${g.uuid}\u0000${g.hostname}`;

function values(g: NewGroup): unknown[] {
  return [g.uuid, g.groupKey, g.rule, g.priority, priorityRank(g.priority), g.source, JSON.stringify(g.tags), g.hostname, g.output, toJsonText(g.outputFields),
    g.firstSeen.toString(), g.lastSeen.toString(), g.count, toJsonText(g.changed), g.namespace, g.pod, g.containerId, g.containerName, g.event, g.origin,
    g.windowEnd === null ? null : g.windowEnd.toString()];
}

/** Write `writes` inside the caller's transaction; one result per write (undefined: it changed nothing). */
export async function writeGroupBatch(c: pg.ClientBase, writes: readonly GroupWrite[], outputs: readonly string[]): Promise<(WriteResult | undefined)[]> {
  if (writes.length === 0) return [];
  // What is stored now, locked until commit: another replica writing the same group waits.
  const uuids = writes.map((w) => w.group.uuid);
  const hosts = writes.map((w) => w.group.hostname);
  const stored = new Map<string, { count: bigint; lastSeen: bigint }>();
  const found = await c.query(`SELECT a.uuid, a.hostname, a.count, a.last_seen FROM alerts a
    JOIN unnest($1::text[], $2::text[]) AS k(uuid, hostname) ON a.uuid = k.uuid AND a.hostname = k.hostname ORDER BY a.id FOR UPDATE OF a`, [uuids, hosts]);
  for (const r of found.rows as { uuid: string; hostname: string; count: bigint | string; last_seen: bigint | string }[]) {
    stored.set(`${r.uuid}\u0000${r.hostname}`, { count: BigInt(r.count), lastSeen: BigInt(r.last_seen) });
  }
  // In batch order: which inputs bring something new, and each group's newest state.
  const fresh: boolean[] = [];
  // Matches each input adds to what is stored (for /metrics: counted once, never on a redelivery).
  const added: number[] = [];
  const merged = new Map<string, NewGroup>();
  for (const w of writes) {
    const k = key(w.group);
    const was = stored.get(k);
    const count = BigInt(w.group.count);
    const isNew = !was || count > was.count || w.group.lastSeen > was.lastSeen;
    fresh.push(isNew);
    added.push(isNew && (!was || count > was.count) ? Number(count - (was?.count ?? 0n)) : 0);
    if (!isNew) continue;
    stored.set(k, { count: was && was.count > count ? was.count : count, lastSeen: was && was.lastSeen > w.group.lastSeen ? was.lastSeen : w.group.lastSeen });
    const prev = merged.get(k);
    merged.set(k, prev ? {
      ...prev,
      count: Math.max(prev.count, w.group.count),
      lastSeen: prev.lastSeen > w.group.lastSeen ? prev.lastSeen : w.group.lastSeen,
      changed: Object.keys(w.group.changed).length ? w.group.changed : prev.changed,
      windowEnd: w.group.windowEnd,
    } : w.group);
  }
  // In key order, so two replicas inserting overlapping batches take their locks in one order.
  const rows = [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
  const ids = new Map<string, WriteResult>();
  if (rows.length) {
    const cols = COLUMNS.map(() => [] as unknown[]);
    for (const g of rows) values(g).forEach((v, i) => cols[i]!.push(v));
    const up = await c.query(UPSERT, cols);
    for (const r of up.rows as { id: bigint | string; uuid: string; hostname: string; inserted: boolean }[]) {
      ids.set(`${r.uuid}\u0000${r.hostname}`, { id: Number(r.id), change: r.inserted ? 'new' : 'update' });
    }
  }
  // Messages of the inputs that brought something new to a group this statement changed.
  const results = writes.map((w, i) => {
    const r = fresh[i] ? ids.get(key(w.group)) : undefined;
    return r && { ...r, added: added[i]! };
  });
  if (outputs.length) {
    const m: [number[], string[], number[], string[]] = [[], [], [], []];
    writes.forEach((w, i) => {
      const r = results[i];
      if (!r || w.payload === null) return;
      m[0].push(r.id);
      m[1].push(w.kind);
      m[2].push(w.group.count);
      m[3].push(w.payload);
    });
    if (m[0].length) await c.query(ENQUEUE, [...m, outputs]);
  }
  const changes = [...ids.values()];
  for (let i = 0; i < changes.length; i += NOTIFY_CHUNK) {
    const payload = JSON.stringify(changes.slice(i, i + NOTIFY_CHUNK).map((r) => [r.id, r.change === 'new' ? 'n' : 'u']));
    await c.query('SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, payload]);
  }
  return results;
}
