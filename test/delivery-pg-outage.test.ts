/**
 * A delivery the output accepted while PostgreSQL refused its acknowledgement (the fleet drill's
 * outage) is recorded when PostgreSQL is back and never sent again, even when its lease ended
 * meanwhile; and recording a delivery twice (a commit whose answer was lost) counts it once.
 * Real PostgreSQL behind a loopback relay that is cut mid-send.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { alertsSection } from '../src/alerts/config.js';
import { DeliveryWorker } from '../src/alerts/delivery.js';
import { PgAlertStore } from '../src/alerts/pg/store.js';
import type { Output } from '../src/alerts/types.js';
import { createLogger } from '../src/platform/logger.js';
import { alertMessage } from './helpers/alerts.js';
import { TcpRelay } from './helpers/brokers.js';
import { postgresUnavailable, startPostgres } from './helpers/postgres.js';
import { eventually } from './helpers/wait.js';

const log = createLogger('silent');
const LEASE_MS = 1000;

test('a send accepted while PostgreSQL refuses its acknowledgement is recorded once it is back, not sent again', { timeout: 120_000 }, async (t) => {
  const why = postgresUnavailable();
  if (why) return t.skip(why);
  // Cleaned up last first (after hooks run in the order they were added).
  const cleanup: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  const pgh = await startPostgres();
  cleanup.push(() => pgh.close());
  const url = await pgh.newDatabase();
  const target = new URL(url);
  const relay = new TcpRelay(target.hostname, Number(target.port) || 5432);
  const relayPort = await relay.listen(0);
  cleanup.push(() => relay.cut());
  const via = new URL(url);
  via.hostname = '127.0.0.1';
  via.port = String(relayPort);
  // A short lease: had the worker released or re-claimed the delivery, it would send it again.
  const store = await PgAlertStore.open({ url: via.toString(), leaseMs: LEASE_MS });
  cleanup.push(() => store.close());
  const direct = new pg.Client({ connectionString: url });
  await direct.connect();
  cleanup.push(() => direct.end());

  const now = BigInt(Date.now()) * 1_000_000n;
  const msg = alertMessage();
  await store.writeGroups([{
    group: {
      uuid: msg.minewatch.uuid, groupKey: 'k', rule: msg.rule, priority: 'CRITICAL', source: 'syscall', tags: [], hostname: 'node-1', output: msg.output, outputFields: {},
      firstSeen: now, lastSeen: now, count: 1, changed: {}, namespace: null, pod: null, containerId: null, containerName: null, origin: 'input', windowEnd: null, event: null,
    },
    kind: 'first', payload: JSON.stringify(msg),
  }], ['hook']);

  const queued = (await direct.query('SELECT id, message_id FROM deliveries')).rows as { id: string; message_id: string }[];
  assert.equal(queued.length, 1);
  const [{ id, message_id: messageId }] = queued as [{ id: string; message_id: string }];

  // The target takes the message; PostgreSQL goes away before the worker can record it.
  let sends = 0;
  const output: Output = {
    name: 'hook',
    async send() {
      sends++;
      if (sends === 1) await relay.cut();
    },
    async close() {},
  };
  let refusedAcks = 0;
  const watched = new Proxy(store, {
    get(s, p) {
      const v = Reflect.get(s, p, s) as unknown;
      if (p === 'delivered') {
        return async (...a: Parameters<PgAlertStore['delivered']>) => {
          try {
            return await s.delivered(...a);
          } catch (e) {
            refusedAcks++;
            throw e;
          }
        };
      }
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(s) : v;
    },
  });
  const cfg = alertsSection.parse({ delivery: { retry_initial_ms: 50, retry_max_ms: 200, send_timeout_ms: 3000 } }).delivery;
  const worker = new DeliveryWorker(output, watched, cfg, log);
  worker.start();
  cleanup.push(() => worker.stop());
  // Refused, and PostgreSQL stays away for longer than the lease.
  await eventually(async () => assert.ok(refusedAcks >= 1), 240);
  await new Promise((r) => setTimeout(r, LEASE_MS * 2));
  await relay.listen(relayPort);
  await eventually(async () => assert.equal(Number((await direct.query('SELECT count(*) AS n FROM deliveries')).rows[0].n), 0), 240);
  assert.equal(sends, 1, 'sent once: recorded after the outage, not sent again');
  assert.equal((await store.counters('hook')).delivered, 1);

  // Recorded again (a commit whose answer was lost): counted once.
  await store.delivered('hook', { id: Number(id), messageId: Number(messageId), alertId: 0, kind: 'first', payload: '', attempts: 0 });
  assert.equal((await store.counters('hook')).delivered, 1);
});
