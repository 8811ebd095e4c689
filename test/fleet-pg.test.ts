/**
 * The fleet consumer's PostgreSQL batch (src/fleet/pg-batch-write.ts, src/fleet/pg-sink.ts) on a
 * real PostgreSQL: a batch with a group's first message and summary stores one row and queues
 * both; the same batch again (a redelivery) changes and queues nothing; a late first after the
 * summary changes nothing; a NUL an agent put in its alert is stored as U+FFFD instead of failing
 * the batch; a data error is not transient (the consumer sets that message aside), a lost
 * connection is.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../src/platform/logger.js';
import { PgAlertStore } from '../src/alerts/pg/store.js';
import { pgBatchSink, transientPgError } from '../src/fleet/pg-sink.js';
import { alertMessage } from './helpers/alerts.js';
import { type Postgres, postgresUnavailable, startPostgres } from './helpers/postgres.js';

const log = createLogger('silent');

describe('fleet batches into PostgreSQL', { timeout: 120_000 }, () => {
  const skip = postgresUnavailable();
  let pgh: Postgres;
  let store: PgAlertStore;
  before(async () => {
    if (skip) return;
    pgh = await startPostgres();
    store = await PgAlertStore.open({ url: pgh.url });
  });
  after(async () => {
    await store?.close();
    await pgh?.close();
  });

  const rows = async (uuid: string) => (await store.pool.query('SELECT hostname, count FROM alerts WHERE uuid = $1', [uuid])).rows as { hostname: string; count: bigint }[];
  const messages = async (uuid: string) => (await store.pool.query(
    'SELECT m.kind, m.seq, count(d.id) AS deliveries FROM messages m JOIN alerts a ON a.id = m.alert_id LEFT JOIN deliveries d ON d.message_id = m.id WHERE a.uuid = $1 GROUP BY m.kind, m.seq ORDER BY m.seq', [uuid],
  )).rows.map((r: { kind: string; seq: bigint; deliveries: bigint }) => `${r.kind}:${r.seq}:${r.deliveries}`);

  test('first and summary in one batch: one row, both messages queued; a redelivery and a late first change nothing', async (t) => {
    if (skip) return t.skip(skip);
    const sink = pgBatchSink(store, ['webhook', 'slack'], log);
    const first = alertMessage({ hostname: 'node-a' });
    const summary = alertMessage({ hostname: 'node-a' }, { uuid: first.minewatch.uuid, kind: 'summary', count: 5, last_seen: '2026-11-25T20:20:00Z' });
    const other = alertMessage({ hostname: 'node-b' });
    await sink.storeBatch([first, summary, other]);
    assert.deepEqual((await rows(first.minewatch.uuid)).map((r) => [r.hostname, Number(r.count)]), [['node-a', 5]]);
    assert.deepEqual(await messages(first.minewatch.uuid), ['first:1:2', 'summary:5:2']);
    await sink.storeBatch([first, summary, other]);
    await sink.storeBatch([first]);
    assert.deepEqual((await rows(first.minewatch.uuid)).map((r) => Number(r.count)), [5]);
    assert.deepEqual(await messages(first.minewatch.uuid), ['first:1:2', 'summary:5:2'], 'nothing queued twice');
    // The same uuid from another host is another group (the consumer sets the host from the subject).
    await sink.storeBatch([{ ...first, hostname: 'node-c' }]);
    assert.deepEqual((await rows(first.minewatch.uuid)).map((r) => r.hostname).sort(), ['node-a', 'node-c']);
  });

  test('a redelivered first after its messages were delivered queues nothing again', async (t) => {
    if (skip) return t.skip(skip);
    const sink = pgBatchSink(store, ['webhook'], log);
    const first = alertMessage({ hostname: 'node-d' });
    await sink.storeBatch([first]);
    await store.pool.query('DELETE FROM deliveries WHERE message_id IN (SELECT m.id FROM messages m JOIN alerts a ON a.id = m.alert_id WHERE a.uuid = $1)', [first.minewatch.uuid]);
    await store.pool.query('DELETE FROM messages WHERE alert_id IN (SELECT id FROM alerts WHERE uuid = $1)', [first.minewatch.uuid]);
    await sink.storeBatch([first]);
    assert.deepEqual(await messages(first.minewatch.uuid), []);
  });

  test('a NUL in an agent\'s alert is stored as U+FFFD instead of failing its batch', async (t) => {
    if (skip) return t.skip(skip);
    const sink = pgBatchSink(store, ['webhook'], log);
    const bad = alertMessage({ hostname: 'node-e', output: 'Miner x\u0000y', rule: 'R\u0000' });
    const good = alertMessage({ hostname: 'node-e' });
    await sink.storeBatch([bad, good]);
    const r = (await store.pool.query('SELECT output, rule FROM alerts WHERE uuid = $1', [bad.minewatch.uuid])).rows[0] as { output: string; rule: string };
    assert.equal(r.rule, 'R\uFFFD');
    assert.match(r.output, /x\uFFFDy/);
    assert.equal((await rows(good.minewatch.uuid)).length, 1);
  });

  test('batches stored at once (the consumer keeps two in flight): each group once with its highest count, each message queued once, every row announced new once, rollups equal a recount', async (t) => {
    if (skip) return t.skip(skip);
    const db = await PgAlertStore.open({ url: await pgh.newDatabase() });
    const announced: { id: number; change: string }[] = [];
    const stop = await db.listen((changes) => announced.push(...changes));
    try {
      const sink = pgBatchSink(db, ['webhook'], log);
      const firsts = Array.from({ length: 60 }, (_, i) => alertMessage({ hostname: `node-${i % 7}`, rule: `Rule ${i % 5}` }));
      // Summaries for every other group, into the next hours (they move the group between rollup hours).
      const summaries = firsts.filter((_, i) => i % 2 === 0).map((f, i) => alertMessage({ hostname: f.hostname, rule: f.rule }, {
        uuid: f.minewatch.uuid, kind: 'summary', count: 3 + i, last_seen: `2026-11-25T2${1 + (i % 3)}:00:00Z`,
      }));
      // A group's first and its summary in two batches stored together, in either order; redeliveries mixed in.
      await Promise.all([
        sink.storeBatch([...firsts.slice(0, 30), ...summaries.slice(15)]),
        sink.storeBatch([...summaries.slice(0, 15), ...firsts.slice(30), ...firsts.slice(0, 5)]),
      ]);
      await Promise.all([sink.storeBatch(summaries), sink.storeBatch(firsts)]);
      const stored = (await db.pool.query('SELECT id, uuid, count FROM alerts')).rows as { id: bigint; uuid: string; count: bigint }[];
      assert.equal(stored.length, 60, 'one row per group');
      const want = new Map(firsts.map((f) => [f.minewatch.uuid, 1]));
      for (const x of summaries) want.set(x.minewatch.uuid, x.minewatch.count);
      for (const r of stored) assert.equal(Number(r.count), want.get(r.uuid), 'the highest count stored');
      const msgs = (await db.pool.query('SELECT alert_id, kind, seq, (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = m.id) AS d FROM messages m')).rows as { alert_id: bigint; kind: string; seq: bigint; d: bigint }[];
      assert.equal(new Set(msgs.map((m) => `${m.alert_id}:${m.kind}:${m.seq}`)).size, msgs.length, 'no message twice');
      assert.ok(msgs.every((m) => Number(m.d) === 1), 'one delivery per message and output');
      assert.equal(msgs.filter((m) => m.kind === 'summary').length, 30, 'every summary queued');
      // NOTIFY arrives after the commits: wait (bounded) for every row's announcement.
      for (let i = 0; i < 200 && new Set(announced.filter((c) => c.change === 'new').map((c) => c.id)).size < 60; i++) await new Promise((r) => setTimeout(r, 25));
      const news = announced.filter((c) => c.change === 'new').map((c) => c.id).sort((a, b) => a - b);
      assert.deepEqual(news, stored.map((r) => Number(r.id)).sort((a, b) => a - b), 'each row announced new once');
      // The statement-level triggers' deltas, before and after compaction, equal a recount.
      const recount = async () => (await db.pool.query(`SELECT 'r' AS dim, last_seen / 3600000000000 AS hour, prank, rule AS value, COUNT(*) AS groups, SUM(count) AS matches FROM alerts GROUP BY 1, 2, 3, 4
        UNION ALL SELECT 'h', last_seen / 3600000000000, prank, hostname, COUNT(*), SUM(count) FROM alerts GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`)).rows
        .map((r: Record<string, unknown>) => `${String(r.dim)}:${String(r.hour)}:${String(r.prank)}:${String(r.value)}:${String(r.groups)}:${String(r.matches)}`);
      const rollups = async () => (await db.rollupRows()).filter((r) => r.dim === 'r' || r.dim === 'h').map((r) => `${r.dim}:${r.hour}:${r.prank}:${r.value}:${r.groups}:${r.matches}`);
      assert.deepEqual(await rollups(), await recount(), 'deltas');
      await db.compactRollups();
      assert.deepEqual(await rollups(), await recount(), 'compacted');
    } finally {
      await stop();
      await db.close();
    }
  });

  test('transient or not: data errors are the message\'s, connection errors pass', () => {
    assert.equal(transientPgError(Object.assign(new Error('invalid byte sequence'), { code: '22021' })), false);
    assert.equal(transientPgError(Object.assign(new Error('unique violation'), { code: '23505' })), false);
    assert.equal(transientPgError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), true);
    assert.equal(transientPgError(Object.assign(new Error('terminating connection'), { code: '57P01' })), true);
    assert.equal(transientPgError(Object.assign(new Error('deadlock'), { code: '40P01' })), true);
    assert.equal(transientPgError(new Error('Connection terminated unexpectedly')), true);
  });
});
