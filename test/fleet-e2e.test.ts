/**
 * Fleet mode end to end (issue 18), bounded for CI: 50 agents as processes, each in its own UTS
 * namespace with its own hostname and NATS user, replaying recorded miner activity through their
 * local stores and forwarders (`minewatch replay-live`) into a real nats-server (JetStream); two
 * `minewatch server` replicas consuming one durable consumer into a real PostgreSQL and
 * delivering to a loopback webhook receiver. During the run one replica is SIGKILLed and
 * restarted, nats-server is restarted, and PostgreSQL refuses connections for 10 s. At the end
 * PostgreSQL holds exactly the groups and counts the agents' stores say JetStream acknowledged,
 * none missing, none twice; each webhook delivery was made, and made once, except what was in
 * flight on the killed replica, which is reported. (The bench runs the same drill longer.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { drillUnavailable, runFleetDrill } from './helpers/fleet-drill.js';
import { natsServerUnavailable } from './helpers/nats-fleet.js';
import { postgresUnavailable, startPostgres } from './helpers/postgres.js';

test('50 agents, 2 replicas, a replica SIGKILLed, nats-server restarted, PostgreSQL away 10 s: every acknowledged group stored exactly once, deliveries once', { timeout: 600_000 }, async (t) => {
  const why = drillUnavailable() ?? natsServerUnavailable() ?? postgresUnavailable();
  if (why) return t.skip(why);
  const pgh = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'mw-p18-e2e-'));
  t.after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await pgh.close();
  });
  const rep = await runFleetDrill({ dir, pgUrl: pgh.url, agents: 50, rate: 10, durationS: 30, replicas: 2, faults: true, pgOutageS: 10, log: (l) => t.diagnostic(l) });
  for (const f of rep.faults) t.diagnostic(`fault: ${f}`);
  // Every agent ran, replayed, and had JetStream acknowledge all it stored.
  for (const a of rep.agents) {
    assert.equal(a.exit, 0, `agent ${a.hostname} exited ${a.exit}: ${a.stderrTail}`);
    assert.ok(a.summary && a.summary.groups > 0, `agent ${a.hostname} made groups`);
    assert.equal(a.summary!.forwarded?.pending, 0, `agent ${a.hostname}: everything acknowledged`);
    assert.ok(a.groups.size > 0);
  }
  assert.equal(rep.faults.length, 5, `every fault ran: ${rep.faults.join('; ')}`);
  const groups = rep.agents.reduce((n, a) => n + a.groups.size, 0);
  t.diagnostic(`${groups} groups from ${rep.agents.length} agents; ${rep.storedRows} rows in PostgreSQL; ${rep.deliveries.size} delivery keys; ${rep.seconds.toFixed(0)} s`);
  assert.deepEqual(rep.missing, [], 'no acknowledged group is missing from PostgreSQL');
  assert.deepEqual(rep.wrongCount, [], 'every group\'s count is the agent\'s');
  assert.deepEqual(rep.extra, [], 'nothing in PostgreSQL that no agent sent');
  assert.equal(rep.storedRows, groups, 'no group stored twice');
  assert.deepEqual(rep.undelivered, [], 'every group\'s last message (its summary, or its lone first) reached the webhook');
  t.diagnostic(`${rep.superseded} first message(s) superseded by their summary, stored before them`);
  // At least once: a delivery in flight on the killed replica is made again by the other once its
  // lease ends, and one sent while PostgreSQL refused its acknowledgement is sent again. Both are
  // reported (the receiver dedupes on Idempotency-Key); each is bounded by the sends in flight
  // (delivery.concurrency, 4) of one replica at one moment.
  if (rep.duplicateDeliveries.length) t.diagnostic(`delivered twice (in flight on the killed replica, or acknowledged while PostgreSQL was away): ${rep.duplicateDeliveries.join(', ')}`);
  assert.ok(rep.duplicateDeliveries.length <= 4 * 3, `repeats only what was in flight at the faults, got ${rep.duplicateDeliveries.length}`);
});
