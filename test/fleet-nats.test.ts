/**
 * Fleet mode's transport against a real nats-server (JetStream, per-agent users from
 * natsAuthorization): agents forward through their local store to their own subject, a server's
 * durable consumer stores what they send under the subject's host, an agent cannot publish as
 * another, a NATS outage loses nothing and stores nothing twice, a batch the store refused comes
 * back.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { connect, headers } from 'nats';
import { alertsSection } from '../src/alerts/config.js';
import { consumeSchema, forwardSchema } from '../src/alerts/fleet-config.js';
import { hostSubject, hostToken, tokenHost } from '../src/alerts/fleet-nats.js';
import { FORWARD_OUTPUT, forwardOutput } from '../src/alerts/forward.js';
import { AlertPipeline } from '../src/alerts/pipeline.js';
import type { IncomingAlert } from '../src/alerts/types.js';
import { createLogger } from '../src/platform/logger.js';
import { FleetConsumer } from '../src/fleet/consumer.js';
import { natsAuthorization } from '../src/fleet/nats-users.js';
import { pipelineSink } from '../src/fleet/pipeline-sink.js';
import { alertMessage } from './helpers/alerts.js';
import { eventually } from './helpers/wait.js';
import { type NatsServer, natsServerUnavailable, startNatsServer } from './helpers/nats-fleet.js';

const log = createLogger('silent');
const TIMEOUT = { timeout: 120_000 };
const PREFIX = 'mwtest.alerts';
const pw = (): string => randomBytes(12).toString('hex');

const agents = [
  { hostname: 'alpha', user: 'agent-alpha', password: pw() },
  { hostname: 'beta.example', user: 'agent-beta', password: pw() },
];
const serverUser = { user: 'minewatch-server', password: pw() };

function pipeline(path = ':memory:', outputs: ConstructorParameters<typeof AlertPipeline>[0]['outputs'] = []): AlertPipeline {
  const config = alertsSection.parse({ store: { path }, throttle: { window_s: 0 }, delivery: { retry_initial_ms: 50, retry_max_ms: 300, send_timeout_ms: 3000 } });
  return new AlertPipeline({ config, outputs, log }).start();
}

let n = 0;
function localAlert(hostname: string): IncomingAlert {
  n++;
  return {
    hostname, output: `Miner started (proc.name=xmrig${n})`, output_fields: { 'proc.name': `xmrig${n}`, 'container.id': `c${n}` }, priority: 'Critical',
    rule: 'Miner started', source: 'syscall', tags: ['cryptomining'], time: new Date().toISOString(),
  };
}

describe('fleet transport: hostnames as subject tokens', () => {
  test('round-trips hostnames, keeps dotted names readable, and never maps two hosts to one token', () => {
    for (const h of ['alpha', 'node-1.example.com', 'a_b', 'a.b', 'ünï', 'x~y', '']) assert.equal(tokenHost(hostToken(h)), h, h);
    assert.equal(hostToken('node-1.example.com'), 'node-1_example_com');
    assert.notEqual(hostToken('a_b'), hostToken('a.b'));
    assert.equal(hostSubject('minewatch.alerts', 'ip-10-0-0-1.ec2.internal'), 'minewatch.alerts.ip-10-0-0-1_ec2_internal');
    // Not what hostToken makes: refused, so a hand-made subject cannot alias a host.
    for (const t of ['a.b', 'a~5F', 'a~5', 'a b', '*']) assert.equal(tokenHost(t), undefined, t);
  });

  test('config: a URL alone or an object; HTTP is refused with where HTTP forwarding lives; one way to authenticate', () => {
    assert.equal(forwardSchema.parse('nats://10.0.0.1:4222').url, 'nats://10.0.0.1:4222');
    assert.equal(consumeSchema.parse({ url: 'tls://nats:4222' }).consumer, 'minewatch-server');
    const http = forwardSchema.safeParse('http://server:8788');
    assert.ok(!http.success);
    assert.match(http.error.issues[0]!.message, /outputs\.falcosidekick\.url/);
    const both = forwardSchema.safeParse({ url: 'nats://n:4222', token: 't', creds_file: '/x.creds' });
    assert.ok(!both.success);
    assert.match(both.error.issues[0]!.message, /one way to authenticate at a time/);
  });
});

describe('fleet transport against nats-server', TIMEOUT, () => {
  const skip = natsServerUnavailable();
  let nats: NatsServer;
  let server: AlertPipeline;
  let consumer: FleetConsumer;
  const stream = `MWTEST_${randomBytes(3).toString('hex')}`;
  const consume = () => consumeSchema.parse({ url: nats.url, user: serverUser.user, password: serverUser.password, stream, subject_prefix: PREFIX, batch: 64, ack_wait_s: 2 });
  const forward = (a: (typeof agents)[number]) => forwardSchema.parse({ url: nats.url, user: a.user, password: a.password, stream, subject_prefix: PREFIX, timeout_ms: 1000 });

  before(async () => {
    if (skip) return;
    nats = await startNatsServer(natsAuthorization(PREFIX, agents, serverUser));
    server = pipeline();
    consumer = new FleetConsumer(consume(), pipelineSink(server), log);
    await consumer.start();
  });
  after(async () => {
    await consumer?.stop();
    await server?.stop();
    await nats?.close();
  });

  const byHost = (h: string) => server.query({ hostname: [h], limit: 10_000 });

  /** The shared replica leaves; a test's own store (and its sink, for the test to wrap) takes over. */
  const takeOver = async (t: { after: (fn: () => unknown) => void }) => {
    await consumer.stop();
    const store = pipeline();
    t.after(() => store.stop());
    return { store, inner: pipelineSink(store) };
  };

  test('an agent forwards through its store to its own subject; the server stores under the subject\'s host and acks', async (t) => {
    if (skip) return t.skip(skip);
    const agent = pipeline(':memory:', [forwardOutput(forward(agents[0]!), log, 'alpha')]);
    t.after(() => agent.stop());
    const sent = Array.from({ length: 5 }, () => agent.ingest(localAlert('alpha'))!.uuid);
    await eventually(async () => assert.equal(agent.outputStats()[0]!.pending, 0));
    await eventually(async () => assert.deepEqual(byHost('alpha').map((r) => r.uuid).filter((u) => sent.includes(u)).sort(), [...sent].sort()));
    assert.equal(agent.outputStats()[0]!.name, FORWARD_OUTPUT);
  });

  test('an agent cannot publish on another host\'s subject, and an alert claiming another host is stored under its subject\'s', async (t) => {
    if (skip) return t.skip(skip);
    const nc = await connect({ servers: nats.url, user: agents[0]!.user, pass: agents[0]!.password, inboxPrefix: '_INBOX_alpha' });
    t.after(() => nc.close());
    const js = nc.jetstream({ timeout: 1500 });
    const forged = alertMessage({ hostname: 'beta.example' });
    await assert.rejects(js.publish(hostSubject(PREFIX, 'beta.example'), JSON.stringify(forged)), 'publishing on beta\'s subject as alpha must fail');
    // On its own subject, claiming beta: stored, but as alpha's.
    const before = consumer.stats.relabelled;
    const claim = alertMessage({ hostname: 'beta.example' });
    await js.publish(hostSubject(PREFIX, 'alpha'), JSON.stringify(claim), { msgID: `${claim.minewatch.uuid}:0` });
    await eventually(async () => assert.ok(byHost('alpha').some((r) => r.uuid === claim.minewatch.uuid)));
    assert.equal(byHost('beta.example').length, 0, 'nothing is stored as beta');
    assert.equal(consumer.stats.relabelled, before + 1);
  });

  test('a duplicate publish is dropped by JetStream; a late resend under another id changes nothing in the store', async (t) => {
    if (skip) return t.skip(skip);
    const nc = await connect({ servers: nats.url, user: agents[1]!.user, pass: agents[1]!.password, inboxPrefix: `_INBOX_${hostToken('beta.example')}` });
    t.after(() => nc.close());
    const js = nc.jetstream({ timeout: 1500 });
    const subject = hostSubject(PREFIX, 'beta.example');
    const m = alertMessage({ hostname: 'beta.example' });
    const a1 = await js.publish(subject, JSON.stringify(m), { msgID: `${m.minewatch.uuid}:0` });
    const a2 = await js.publish(subject, JSON.stringify(m), { msgID: `${m.minewatch.uuid}:0` });
    assert.equal(a2.duplicate, true);
    assert.equal(a2.seq, a1.seq);
    // Past the duplicate window, the same message again (another id): the store keeps one row.
    const h = headers();
    h.set('Nats-Msg-Id', `${m.minewatch.uuid}:late`);
    await js.publish(subject, JSON.stringify(m), { headers: h });
    const summary = alertMessage({ hostname: 'beta.example' }, { uuid: m.minewatch.uuid, kind: 'summary', count: 9 });
    await js.publish(subject, JSON.stringify(summary), { msgID: `${m.minewatch.uuid}:1` });
    await eventually(async () => assert.equal(byHost('beta.example').find((r) => r.uuid === m.minewatch.uuid)?.count, 9));
    assert.equal(byHost('beta.example').filter((r) => r.uuid === m.minewatch.uuid).length, 1);
  });

  test('while NATS is down the agent keeps its alerts; once it is back every one is stored once', async (t) => {
    if (skip) return t.skip(skip);
    const agent = pipeline(':memory:', [forwardOutput(forward(agents[0]!), log, 'alpha')]);
    t.after(() => agent.stop());
    const early = agent.ingest(localAlert('alpha'))!.uuid;
    await eventually(async () => assert.ok(byHost('alpha').some((r) => r.uuid === early)));
    await nats.stop();
    const sent = Array.from({ length: 20 }, () => agent.ingest(localAlert('alpha'))!.uuid);
    await eventually(async () => assert.ok(agent.outputStats()[0]!.failures > 0, 'the forwarder noticed the outage'));
    assert.equal(agent.outputStats()[0]!.pending, 20, 'all kept in the agent\'s store');
    await nats.start();
    await eventually(async () => assert.equal(agent.outputStats()[0]!.pending, 0), 120);
    await eventually(async () => {
      const rows = byHost('alpha').filter((r) => sent.includes(r.uuid));
      assert.equal(rows.length, 20);
      assert.equal(new Set(rows.map((r) => r.uuid)).size, 20);
    }, 120);
  });

  test('a batch the store did not commit is nak\'ed and stored when it comes back (a second replica on the same durable)', async (t) => {
    if (skip) return t.skip(skip);
    // The first replica leaves; another one, whose store refuses twice, takes over the durable.
    await consumer.stop();
    const store = pipeline();
    t.after(() => store.stop());
    let refusals = 2;
    const inner = pipelineSink(store);
    const c = new FleetConsumer(consume(), {
      storeBatch: async (a) => {
        if (refusals-- > 0) throw new Error('store down');
        return inner.storeBatch(a);
      },
    }, log);
    t.after(() => c.stop());
    await c.start();
    const agent = pipeline(':memory:', [forwardOutput(forward(agents[0]!), log, 'alpha')]);
    t.after(() => agent.stop());
    const uuid = agent.ingest(localAlert('alpha'))!.uuid;
    await eventually(async () => assert.ok(store.query({ limit: 100 }).some((r) => r.uuid === uuid)), 120);
    assert.ok(c.stats.failedBatches >= 1, 'the refused batch was counted');
    assert.equal(store.query({ limit: 100 }).filter((r) => r.uuid === uuid).length, 1);
  });

  test('a message the store refuses for good is set aside alone; the rest of its batch is stored', async (t) => {
    if (skip) return t.skip(skip);
    const { store, inner } = await takeOver(t);
    const poison = Object.assign(new Error('invalid byte sequence'), { code: '22021' });
    const c = new FleetConsumer(consume(), {
      storeBatch: async (a) => {
        if (a.some((x) => x.rule === 'POISON')) throw poison;
        return inner.storeBatch(a);
      },
      transient: (e) => e !== poison,
    }, log);
    t.after(() => c.stop());
    const agent = pipeline(':memory:', [forwardOutput(forward(agents[0]!), log, 'alpha')]);
    t.after(() => agent.stop());
    const good = [agent.ingest(localAlert('alpha'))!.uuid];
    agent.ingest({ ...localAlert('alpha'), rule: 'POISON' });
    good.push(agent.ingest(localAlert('alpha'))!.uuid);
    await eventually(async () => assert.equal(agent.outputStats()[0]!.pending, 0));
    await c.start();
    await eventually(async () => assert.deepEqual(store.query({ limit: 100 }).map((r) => r.uuid).filter((u) => good.includes(u)).sort(), [...good].sort()), 120);
    await eventually(async () => assert.equal(c.stats.refused, 1));
    assert.equal(store.query({ limit: 100 }).filter((r) => r.rule === 'POISON').length, 0);
  });

  test('batches are stored two at a time, but a group\'s messages never at once: its summary waits for the batch holding its first', async (t) => {
    if (skip) return t.skip(skip);
    const { store, inner } = await takeOver(t);
    const active = new Map<string, number>();
    const overlaps: string[] = [];
    const sizes: number[] = [];
    const seen = new Set<string>();
    const c = new FleetConsumer(consumeSchema.parse({ ...consume(), batch: 1 }), {
      storeBatch: async (a) => {
        sizes.push(a.length);
        for (const x of a) seen.add(`${x.minewatch?.uuid ?? ''}:${x.minewatch?.kind ?? ''}`);
        const ids = a.map((x) => x.minewatch?.uuid ?? '');
        for (const id of ids) {
          if (active.get(id)) overlaps.push(id);
          active.set(id, (active.get(id) ?? 0) + 1);
        }
        // Slow enough that the next batch is taken while this one is in flight.
        await new Promise((r) => setTimeout(r, 100));
        await inner.storeBatch(a);
        for (const id of ids) active.set(id, active.get(id)! - 1);
      },
    }, log);
    t.after(() => c.stop());
    // Firsts and their summaries, back to back in the stream (batches of one message).
    const nc = await connect({ servers: nats.url, user: agents[0]!.user, pass: agents[0]!.password, inboxPrefix: `_INBOX_${hostToken('alpha')}` });
    t.after(() => nc.close());
    const js = nc.jetstream();
    const uuids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const first = alertMessage({ hostname: 'alpha' });
      const summary = alertMessage({ hostname: 'alpha' }, { uuid: first.minewatch.uuid, kind: 'summary', count: 3, last_seen: '2026-11-25T20:20:00Z' });
      uuids.push(first.minewatch.uuid);
      for (const m of [first, summary]) await js.publish(hostSubject(PREFIX, 'alpha'), JSON.stringify(m), { msgID: `${m.minewatch.uuid}:${m.minewatch.kind}` });
    }
    await c.start();
    await eventually(async () => assert.deepEqual(store.query({ limit: 100 }).filter((r) => uuids.includes(r.uuid)).map((r) => r.count), [3, 3, 3, 3]), 120);
    // Each message its own batch. A message whose ack wait ran out on a slow host comes back
    // (at least once, by design), so what is counted is the distinct messages, not the calls.
    assert.ok(sizes.every((n) => n === 1), `each message its own batch: ${sizes.join(',')}`);
    assert.equal(seen.size, 8, 'all eight messages stored');
    assert.deepEqual(overlaps, [], 'no group stored by two batches at once');
  });

  test('the servers\' NATS user cannot publish alerts', async (t) => {
    if (skip) return t.skip(skip);
    const nc = await connect({ servers: nats.url, user: serverUser.user, pass: serverUser.password });
    t.after(() => nc.close());
    await assert.rejects(nc.jetstream({ timeout: 1500 }).publish(hostSubject(PREFIX, 'alpha'), '{}'));
  });
});
