/**
 * Fleet mode end to end (issue 18), bounded for CI: 50 agents as processes, each in its own UTS
 * namespace with its own hostname and NATS user, replaying recorded miner activity through the
 * event pipeline of `run`, their local stores and forwarders (`minewatch replay-live`) into a
 * real nats-server (JetStream); two `minewatch server` replicas consuming one durable consumer into a real PostgreSQL and
 * delivering to a loopback webhook receiver. During the run one replica is SIGKILLed and
 * restarted, nats-server is restarted, and PostgreSQL refuses connections for 10 s. At the end
 * PostgreSQL holds exactly the groups and counts the agents' stores say JetStream acknowledged,
 * none missing, none twice; each webhook delivery was made, and made once, except what was in
 * flight on the killed replica (at most delivery.concurrency, each traced to it), which is
 * reported. (The bench runs the same drill longer.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { alertsSection } from '../src/alerts/config.js';
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
  // Match → dashboard stream, for the record (the bench measures it; no timing is asserted here).
  const lat = [...rep.streamLatencyMs].sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  t.diagnostic(`match → dashboard stream: ${lat.length} of ${groups} new groups seen on replica 0's stream; p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`);
  // At least once: a delivery in flight on the killed replica (sent, not yet recorded) is made
  // again by a replica once its lease ends. Nothing else is repeated: a delivery sent while
  // PostgreSQL refused its acknowledgement is recorded when it is back, not sent again. So every
  // repeat was first sent by the killed replica's life, and there are no more of them than its
  // sends in flight at one moment (delivery.concurrency); they are reported.
  const concurrency = alertsSection.parse({}).delivery.concurrency;
  if (rep.repeated.length) t.diagnostic(`delivered twice (in flight on the killed replica ${rep.killed}): ${rep.repeated.map((r) => `${r.key} ×${r.times}, first from ${r.firstFrom}`).join('; ')}`);
  assert.deepEqual(rep.repeated.filter((r) => r.firstFrom !== rep.killed || r.times !== 2), [], 'each repeated delivery was in flight on the killed replica, and made twice, no more');
  assert.ok(rep.repeated.length <= concurrency, `repeats bounded by the killed replica's sends in flight (delivery.concurrency ${concurrency}), got ${rep.repeated.length}`);
});
