/**
 * A batch of forwarded groups written to PostgreSQL in two statements (a locked read, then one
 * statement that upserts, queues and announces) instead of one round trip per group: the fleet
 * consumer's hot path (bench/fleet.bench.ts). The same idempotency as the store's per-group upsert
 * (src/alerts/pg/store.ts):
 *
 * - the batch's groups are locked (FOR UPDATE) and read first; an input counts only when it brings
 *   something new to what is stored (a higher count, a later last_seen), in batch order, so a
 *   redelivered first message or summary writes nothing and queues nothing;
 * - one multi-row upsert on (uuid, hostname) writes each group's newest state (a batch may carry a
 *   group's first message and its summary together: they are merged into one row);
 * - each input that brought something new queues its message for the outputs (messages unique on
 *   group, kind and count), and the changes are announced with NOTIFY at commit;
 * - the rollups follow from the statement-level triggers (migration 4): one aggregated delta per
 *   hour, rule, priority, namespace and host the batch touched.
 */
import type pg from 'pg';
import { CHANGES_CHANNEL, COLUMNS, type GroupWrite, rowValues, UPSERT_CONFLICT, type WriteResult } from '../alerts/pg/store.js';
import type { NewGroup } from '../alerts/store.js';

/** The PostgreSQL type of each of the store's COLUMNS, for the arrays unnest() reads. */
const ARRAY_TYPE: Record<(typeof COLUMNS)[number], string> = {
  uuid: 'text', group_key: 'text', rule: 'text', priority: 'text', prank: 'smallint', source: 'text', tags: 'text', hostname: 'text', output: 'text',
  output_fields: 'text', first_seen: 'bigint', last_seen: 'bigint', count: 'bigint', changed: 'text', namespace: 'text', pod: 'text', container_id: 'text',
  container_name: 'text', event: 'text', origin: 'text', window_end: 'bigint',
};

/** NOTIFY payloads are limited to 8000 bytes: ids go out in chunks (as the store does). */
const NOTIFY_CHUNK = 300;

const N = COLUMNS.length;
/** The group columns ($1…$N) as arrays, then the messages' ($N+1…$N+5: uuid, host, kind, seq, payload) and the outputs ($N+6). */
const WRITE = `
WITH up AS (
  INSERT INTO alerts (${COLUMNS.join(', ')})
  SELECT * FROM unnest(${COLUMNS.map((c, i) => `$${i + 1}::${ARRAY_TYPE[c]}[]`).join(', ')})
  ${UPSERT_CONFLICT}
  RETURNING id, uuid, hostname, (xmax = 0) AS inserted
), msg AS (
  -- In batch order (message ids are the outputs' sending order), only for groups this statement changed.
  INSERT INTO messages (alert_id, kind, seq, payload)
  SELECT up.id, m.kind, m.seq, m.payload
  FROM unnest($${N + 1}::text[], $${N + 2}::text[], $${N + 3}::text[], $${N + 4}::bigint[], $${N + 5}::text[]) WITH ORDINALITY AS m(uuid, hostname, kind, seq, payload, i)
  JOIN up ON up.uuid = m.uuid AND up.hostname = m.hostname
  ORDER BY m.i
  ON CONFLICT ON CONSTRAINT messages_once DO NOTHING
  RETURNING id
), del AS (
  INSERT INTO deliveries (message_id, output) SELECT msg.id, o FROM msg CROSS JOIN unnest($${N + 6}::text[]) AS o
), note AS (
  -- Sent at commit, like every NOTIFY; payloads are limited to 8000 bytes, so ids go in chunks.
  SELECT pg_notify('${CHANGES_CHANNEL}', json_agg(json_build_array(id, CASE WHEN inserted THEN 'n' ELSE 'u' END))::text)
  FROM (SELECT id, inserted, (row_number() OVER () - 1) / ${NOTIFY_CHUNK} AS chunk FROM up) AS c GROUP BY chunk
)
-- note is a plain SELECT: PostgreSQL runs it only when the statement reads it.
SELECT up.id, up.uuid, up.hostname, up.inserted, (SELECT COUNT(*) FROM note) AS notified FROM up`;

const key = (g: NewGroup) => `${g.uuid}\u0000${g.hostname}`;

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
  if (!rows.length) return writes.map(() => undefined);
  const cols = COLUMNS.map(() => [] as unknown[]);
  for (const g of rows) rowValues(g).forEach((v, i) => cols[i]!.push(v));
  // The messages of the inputs that brought something new; the statement keeps those of groups it changed.
  const m: [string[], string[], string[], number[], string[]] = [[], [], [], [], []];
  if (outputs.length) {
    writes.forEach((w, i) => {
      if (!fresh[i] || w.payload === null) return;
      m[0].push(w.group.uuid);
      m[1].push(w.group.hostname);
      m[2].push(w.kind);
      m[3].push(w.group.count);
      m[4].push(w.payload);
    });
  }
  // One round trip: the upsert, the messages and deliveries, and the NOTIFY of the changes.
  const up = await c.query(WRITE, [...cols, ...m, outputs]);
  const ids = new Map<string, WriteResult>();
  for (const r of up.rows as { id: bigint | string; uuid: string; hostname: string; inserted: boolean }[]) {
    ids.set(`${r.uuid}\u0000${r.hostname}`, { id: Number(r.id), change: r.inserted ? 'new' : 'update' });
  }
  const results = writes.map((w, i) => {
    const r = fresh[i] ? ids.get(key(w.group)) : undefined;
    return r && { ...r, added: added[i]! };
  });
  return results;
}
