/**
 * Fleet mode (issue 18), on a real nats-server (JetStream) and a real PostgreSQL, in one run:
 *
 * 1. transport: new alert groups/s from one publisher to committed in PostgreSQL (JetStream →
 *    the server's durable consumer → one transaction per batch → ack), beside its two baselines
 *    measured in the same round: the raw JetStream publish rate (PubAcks, msg ids, no consumer)
 *    and plain INSERTs of the same rows into the same table (batches of the consumer's size, one
 *    transaction each). Agents stopped: only the publisher runs.
 * 2. the drill: agents as processes (own hostnames, own NATS users) replaying recorded activity
 *    through their stores and forwarders, two server replicas; p99 from an agent's match to the
 *    alert on the dashboard's stream, beside the p50 of the same run; and whether PostgreSQL holds
 *    exactly what the agents had acknowledged.
 *
 * Spread over rounds: each figure is printed with its min and max over ROUNDS.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { consumeSchema } from '../src/alerts/fleet-config.js';
import { fleetMsgId, hostSubject } from '../src/alerts/fleet-nats.js';
import { rowValues } from '../src/alerts/pg/store.js';
import { PgAlertStore } from '../src/alerts/pg/store.js';
import { readIncoming, forwardedGroup } from '../src/alerts/intake.js';
import type { AlertMessage } from '../src/alerts/types.js';
import { createLogger } from '../src/platform/logger.js';
import { FleetConsumer } from '../src/fleet/consumer.js';
import { pgBatchSink } from '../src/fleet/pg-sink.js';
import { alertMessage } from '../test/helpers/alerts.js';
import { drillUnavailable, runFleetDrill } from '../test/helpers/fleet-drill.js';
import { natsServerUnavailable, startNatsServer } from '../test/helpers/nats-fleet.js';
import { postgresUnavailable, startPostgres } from '../test/helpers/postgres.js';
import { fmt, median } from './lib.js';

const ROUNDS = Number(process.env.MINEWATCH_BENCH_FLEET_ROUNDS ?? 3);
const GROUPS = 20_000;
const HOSTS = 50;
const BATCH = 256;
const IN_FLIGHT = 1024;

const spread = (xs: number[], digits = 0) => `${fmt(median(xs), digits)} (min ${fmt(Math.min(...xs), digits)}, max ${fmt(Math.max(...xs), digits)})`;

function messages(round: number): { subject: string; msg: AlertMessage }[] {
  return Array.from({ length: GROUPS }, (_, i) => {
    const host = `bench-${round}-${i % HOSTS}`;
    const now = new Date().toISOString();
    return { subject: hostSubject(`fleet${round}`, host), msg: alertMessage({ hostname: host, time: now }, { first_seen: now, last_seen: now }) };
  });
}

/** Publish all, IN_FLIGHT PubAcks outstanding at most; resolves when every one is acked. */
async function publishAll(js: ReturnType<Awaited<ReturnType<typeof connect>>['jetstream']>, msgs: { subject: string; msg: AlertMessage }[], subjectOf = (s: string) => s): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < msgs.length) {
      const m = msgs[next++]!;
      await js.publish(subjectOf(m.subject), JSON.stringify(m.msg), { msgID: fleetMsgId(m.msg) });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

const COLUMN_TYPES = ['text', 'text', 'text', 'text', 'smallint', 'text', 'text', 'text', 'text', 'text', 'bigint', 'bigint', 'bigint', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'bigint'];
const COLUMN_LIST = 'uuid, group_key, rule, priority, prank, source, tags, hostname, output, output_fields, first_seen, last_seen, count, changed, namespace, pod, container_id, container_name, event, origin, window_end';
const INSERT_ROW = `INSERT INTO alerts (${COLUMN_LIST}) VALUES (${COLUMN_TYPES.map((_, i) => `$${i + 1}`).join(', ')})`;
const INSERT_MULTI = `INSERT INTO alerts (${COLUMN_LIST}) SELECT * FROM unnest(${COLUMN_TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`;

export async function fleetTransportBench(): Promise<void> {
  const why = natsServerUnavailable() ?? postgresUnavailable();
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  const log = createLogger('silent');
  const pgh = await startPostgres();
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  const js = nc.jetstream({ timeout: 30_000 });
  const jsm = await nc.jetstreamManager();
  const raw: number[] = [];
  const plain: number[] = [];
  const plainMulti: number[] = [];
  const e2e: number[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const msgs = messages(r);
      // 1. Raw JetStream publish: a stream of its own, nobody consuming.
      await jsm.streams.add({ name: `RAW${r}`, subjects: [`raw${r}.>`] });
      let t = performance.now();
      await publishAll(js, msgs, (s) => s.replace(`fleet${r}.`, `raw${r}.`));
      raw.push(GROUPS / ((performance.now() - t) / 1000));
      await jsm.streams.delete(`RAW${r}`);

      // 2. Plain INSERTs of the same rows into the migrated alerts table (its indexes and rollup
      // trigger), BATCH per transaction: one statement per row, and one multi-row statement per batch.
      const rows = msgs.map(({ msg }) => {
        const g = forwardedGroup(readIncoming(msg, () => 0n), msg.minewatch).group;
        return rowValues({ ...g, groupKey: g.groupKey.replaceAll('\u0000', '\uFFFD') });
      });
      for (const [variant, into] of [['row', plain], ['multi', plainMulti]] as const) {
        const plainStore = await PgAlertStore.open({ url: await pgh.newDatabase() });
        const client = await plainStore.pool.connect();
        t = performance.now();
        for (let i = 0; i < rows.length; i += BATCH) {
          const batch = rows.slice(i, i + BATCH);
          await client.query('BEGIN');
          if (variant === 'row') for (const v of batch) await client.query(INSERT_ROW, v);
          else await client.query(INSERT_MULTI, COLUMN_TYPES.map((_, j) => batch.map((v) => v[j])));
          await client.query('COMMIT');
        }
        into.push(GROUPS / ((performance.now() - t) / 1000));
        client.release();
        await plainStore.close();
      }

      // 3. Publish → consumer → PostgreSQL committed, from one publisher.
      const store = await PgAlertStore.open({ url: await pgh.newDatabase() });
      const consumer = new FleetConsumer(consumeSchema.parse({ url: nats.url, stream: `FLEET${r}`, subject_prefix: `fleet${r}`, batch: BATCH }), pgBatchSink(store, ['webhook'], log), log);
      await consumer.start();
      t = performance.now();
      await publishAll(js, msgs);
      // stored counts what the consumer acked, which it does after the commit.
      while (consumer.stats.stored < GROUPS) await new Promise((res) => setTimeout(res, 20));
      e2e.push(GROUPS / ((performance.now() - t) / 1000));
      await consumer.stop();
      await store.close();
      console.log(`round ${r + 1}: publish→committed ${fmt(e2e[r]!)} groups/s; raw JetStream publish ${fmt(raw[r]!)} msgs/s; plain INSERTs ${fmt(plain[r]!)} rows/s one by one, ${fmt(plainMulti[r]!)} rows/s multi-row`);
    }
    console.log(`publish → committed in PostgreSQL (one publisher, ${fmt(GROUPS)} new groups, batches of ${BATCH}): ${spread(e2e)} groups/s`);
    console.log(`  baseline raw JetStream publish (same run): ${spread(raw)} msgs/s → ratio ${(median(e2e) / median(raw)).toFixed(2)}`);
    console.log(`  baseline plain INSERTs, one statement per row, ${BATCH} per transaction (same run): ${spread(plain)} rows/s → ratio ${(median(e2e) / median(plain)).toFixed(2)}`);
    console.log(`  baseline plain INSERTs, one multi-row statement per ${BATCH} (same run; no messages, deliveries or upsert): ${spread(plainMulti)} rows/s → ratio ${(median(e2e) / median(plainMulti)).toFixed(2)}`);
    console.log(`  target ≥ 5,000 groups/s: ${median(e2e) >= 5000 ? 'met' : 'NOT met'}`);
  } finally {
    await nc.close();
    await nats.close();
    await pgh.close();
  }
}

export async function fleetDrillBench(): Promise<void> {
  const why = drillUnavailable() ?? natsServerUnavailable() ?? postgresUnavailable();
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  const agents = Number(process.env.MINEWATCH_BENCH_FLEET_AGENTS ?? 50);
  const durationS = Number(process.env.MINEWATCH_BENCH_FLEET_SECONDS ?? 60);
  const p50s: number[] = [];
  const p99s: number[] = [];
  for (let r = 0; r < 2; r++) {
    const pgh = await startPostgres();
    const dir = mkdtempSync(join(tmpdir(), 'mw-p18-drill-'));
    try {
      const rep = await runFleetDrill({ dir, pgUrl: pgh.url, agents, rate: 20, durationS, replicas: 2, faults: false, log: (l) => console.log(`  ${l}`) });
      const lat = [...rep.streamLatencyMs].sort((a, b) => a - b);
      const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
      p50s.push(q(0.5));
      p99s.push(q(0.99));
      const groups = rep.agents.reduce((n, a) => n + a.groups.size, 0);
      console.log(`round ${r + 1}: ${agents} agents × ${durationS} s: ${fmt(groups)} groups (${fmt(groups / durationS)}/s), stored exactly: ${rep.missing.length + rep.extra.length + rep.wrongCount.length === 0 ? 'yes' : `NO (missing ${rep.missing.length}, extra ${rep.extra.length}, wrong count ${rep.wrongCount.length})`}; match → dashboard stream p50 ${fmt(q(0.5))} ms, p99 ${fmt(q(0.99))} ms over ${fmt(lat.length)} alerts`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await pgh.close();
    }
  }
  console.log(`match → dashboard stream: p99 ${spread(p99s)} ms, beside p50 ${spread(p50s)} ms of the same runs (ratio ${(median(p99s) / median(p50s)).toFixed(1)})`);
}
