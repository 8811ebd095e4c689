/**
 * What a server replica's fleet consumer commits to PostgreSQL is counted in its /metrics
 * (minewatch_alerts_total, by rule and priority) as local alerts are: once, by the matches each
 * message adds to what is stored (a group's first message and its summary add up to its count),
 * and not again when JetStream redelivers a batch whose ack was lost after the commit, nor for a
 * late resend of a message already stored. Real nats-server (JetStream) and real PostgreSQL.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { connect } from 'nats';
import { alertsSection } from '../src/alerts/config.js';
import { consumeSchema } from '../src/alerts/fleet-config.js';
import { fleetMsgId, hostSubject } from '../src/alerts/fleet-nats.js';
import { PgAlertService } from '../src/alerts/pg/service.js';
import type { AlertMessage } from '../src/alerts/types.js';
import { createLogger } from '../src/platform/logger.js';
import { FleetConsumer } from '../src/fleet/consumer.js';
import { fleetSink } from '../src/fleet/server-sink.js';
import { alertMessage } from './helpers/alerts.js';
import { natsServerUnavailable, startNatsServer } from './helpers/nats-fleet.js';
import { postgresUnavailable, startPostgres } from './helpers/postgres.js';
import { eventually } from './helpers/wait.js';
import { call, startWeb } from './helpers/web.js';

const log = createLogger('silent');
const PREFIX = 'mwmetrics.alerts';
const TOKEN = 'metrics-token-0123456789abcdef';

test('the fleet consumer\'s alerts count in minewatch_alerts_total once, by rule and priority; a redelivery after a lost ack counts nothing', { timeout: 120_000 }, async (t) => {
  const why = natsServerUnavailable() ?? postgresUnavailable();
  if (why) return t.skip(why);
  // Cleaned up last first (after hooks run in the order they were added).
  const cleanup: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  const pgh = await startPostgres();
  cleanup.push(() => pgh.close());
  const nats = await startNatsServer();
  cleanup.push(() => nats.close());
  const svc = await PgAlertService.start({ config: alertsSection.parse({ store: { url: await pgh.newDatabase() } }), outputs: [], log });
  cleanup.push(() => svc.stop());
  const web = await startWeb({ alerts: svc, token: TOKEN });
  cleanup.push(() => web.close());

  // The first batch is committed, then its ack is lost (the sink fails after the commit):
  // JetStream hands the same messages again.
  const inner = fleetSink(svc, log);
  let lostAcks = 0;
  const sink = {
    ...inner,
    async storeBatch(alerts: Parameters<typeof inner.storeBatch>[0]): Promise<void> {
      await inner.storeBatch(alerts);
      if (lostAcks === 0) {
        lostAcks++;
        throw new Error('connection lost before the ack');
      }
    },
  };
  const stream = `MWMETRICS_${randomBytes(3).toString('hex')}`;
  const consumer = new FleetConsumer(consumeSchema.parse({ url: nats.url, stream, subject_prefix: PREFIX, batch: 64, ack_wait_s: 2 }), sink, log);
  await consumer.start();
  cleanup.push(() => consumer.stop());

  const now = new Date().toISOString();
  const uuid = '0f000000-0000-4000-8000-00000000000a';
  const group = { uuid, first_seen: now, last_seen: now };
  const stratum = { hostname: 'node-a', rule: 'Stratum pool', priority: 'Critical', time: now };
  const msgs: AlertMessage[] = [
    alertMessage(stratum, { ...group, kind: 'first', count: 1 }),
    alertMessage(stratum, { ...group, kind: 'summary', count: 5, last_seen: new Date(Date.parse(now) + 1000).toISOString() }),
    alertMessage({ hostname: 'node-b', rule: 'Miner on disk', priority: 'Warning', time: now }, { first_seen: now, last_seen: now, kind: 'first', count: 1 }),
  ];
  const nc = await connect({ servers: nats.url });
  cleanup.push(() => nc.close());
  const js = nc.jetstream();
  for (const m of msgs) await js.publish(hostSubject(PREFIX, m.hostname), JSON.stringify(m), { msgID: fleetMsgId(m) });
  await eventually(async () => assert.equal(consumer.stats.stored, 3), 120);
  assert.equal(lostAcks, 1);
  assert.ok(consumer.stats.failedBatches >= 1, 'the batch whose ack was lost came back');
  // A late resend of the summary, under another message id (past JetStream's duplicate window): stored already.
  await js.publish(hostSubject(PREFIX, 'node-a'), JSON.stringify(msgs[1]), { msgID: `late-${uuid}` });
  await eventually(async () => assert.equal(consumer.stats.stored, 4), 120);

  const metrics = (await call(web.url, '/metrics', { token: TOKEN })).text;
  const series = metrics.split('\n').filter((l) => l.startsWith('minewatch_alerts_total{')).sort();
  assert.deepEqual(series, [
    'minewatch_alerts_total{rule="Miner on disk",priority="Warning"} 1',
    'minewatch_alerts_total{rule="Stratum pool",priority="Critical"} 5',
  ]);
  assert.equal(svc.counters.groups, 2, 'two new groups, each counted once');
  assert.equal(svc.counters.matches, 6);
});
