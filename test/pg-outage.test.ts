/**
 * PostgreSQL going away under a replica (the fleet drill's outage), on a real PostgreSQL behind a
 * loopback relay that is cut: a delivery the output accepted while PostgreSQL refused its
 * acknowledgement is recorded when PostgreSQL is back and never sent again, even when its lease
 * ended meanwhile, and recording a delivery twice (a commit whose answer was lost) counts it once;
 * the groups another replica stored while this one's LISTEN connection was down reach its
 * dashboard streams once it is back, each once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { alertsSection } from '../src/alerts/config.js';
import { DeliveryWorker } from '../src/alerts/delivery.js';
import { PgAlertStore, type WriteResult } from '../src/alerts/pg/store.js';
import type { NewGroup } from '../src/alerts/store.js';
import type { Output } from '../src/alerts/types.js';
import { createLogger } from '../src/platform/logger.js';
import { alertMessage } from './helpers/alerts.js';
import { TcpRelay } from './helpers/brokers.js';
import { postgresUnavailable, startPostgres } from './helpers/postgres.js';
import { eventually } from './helpers/wait.js';

const log = createLogger('silent');
const LEASE_MS = 1000;

function group(uuid: string): NewGroup {
  const now = BigInt(Date.now()) * 1_000_000n;
  return {
    uuid, groupKey: 'k', rule: 'Miner started', priority: 'CRITICAL', source: 'syscall', tags: [], hostname: 'node-1', output: 'xmrig started', outputFields: {},
    firstSeen: now, lastSeen: now, count: 1, changed: {}, namespace: null, pod: null, containerId: null, containerName: null, origin: 'input', windowEnd: null, event: null,
  };
}

/** A database reached through a relay that can be cut; `cleanup` runs at the end, last added first. */
async function relayed(t: { after: (fn: () => Promise<void>) => void }): Promise<{ url: string; via: string; relay: TcpRelay; relayPort: number; cleanup: (() => Promise<unknown>)[] }> {
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
  return { url, via: via.toString(), relay, relayPort, cleanup };
}

test('a send accepted while PostgreSQL refuses its acknowledgement is recorded once it is back, not sent again', { timeout: 120_000 }, async (t) => {
  const why = postgresUnavailable();
  if (why) return t.skip(why);
  const { url, via, relay, relayPort, cleanup } = await relayed(t);
  // A short lease: had the worker released or re-claimed the delivery, it would send it again.
  const store = await PgAlertStore.open({ url: via, leaseMs: LEASE_MS });
  cleanup.push(() => store.close());
  const direct = new pg.Client({ connectionString: url });
  await direct.connect();
  cleanup.push(() => direct.end());

  const msg = alertMessage();
  await store.writeGroups([{ group: group(msg.minewatch.uuid), kind: 'first', payload: JSON.stringify(msg) }], ['hook']);

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

test('groups stored while a replica\'s LISTEN connection was down reach its streams once it is back, each once', { timeout: 120_000 }, async (t) => {
  const why = postgresUnavailable();
  if (why) return t.skip(why);
  const { url, via, relay, relayPort, cleanup } = await relayed(t);
  const before = await PgAlertStore.open({ url });
  cleanup.push(() => before.close());
  const [old] = await before.writeGroups([{ group: group('0a000000-0000-4000-8000-000000000001'), kind: 'first', payload: null }], []);
  // This replica listens through the relay; the other writes directly.
  const here = await PgAlertStore.open({ url: via, migrate: false });
  cleanup.push(() => here.close());
  const heard: WriteResult[] = [];
  const stop = await here.listen((changes) => heard.push(...changes));
  cleanup.push(stop);
  const other = before;
  const write = async (i: number) => (await other.writeGroups([{ group: group(`0a000000-0000-4000-8000-00000000000${i}`), kind: 'first', payload: null }], []))[0]!.id;
  const a = await write(2);
  await eventually(async () => assert.deepEqual(heard.map((h) => h.id), [a]));
  await relay.cut();
  const missed = [await write(3), await write(4)];
  await relay.listen(relayPort);
  await eventually(async () => assert.deepEqual(heard.map((h) => h.id), [a, ...missed]), 240);
  const b = await write(5);
  await eventually(async () => assert.deepEqual(heard.map((h) => h.id), [a, ...missed, b]));
  assert.ok(heard.every((h) => h.change === 'new'));
  assert.ok(!heard.some((h) => h.id === old!.id), 'a group stored before it listened is not announced');
});
