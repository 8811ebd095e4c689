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

  test('transient or not: data errors are the message\'s, connection errors pass', () => {
    assert.equal(transientPgError(Object.assign(new Error('invalid byte sequence'), { code: '22021' })), false);
    assert.equal(transientPgError(Object.assign(new Error('unique violation'), { code: '23505' })), false);
    assert.equal(transientPgError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), true);
    assert.equal(transientPgError(Object.assign(new Error('terminating connection'), { code: '57P01' })), true);
    assert.equal(transientPgError(Object.assign(new Error('deadlock'), { code: '40P01' })), true);
    assert.equal(transientPgError(new Error('Connection terminated unexpectedly')), true);
  });
});
