/**
 * The broker outputs against real brokers (test/helpers/brokers.ts: Debian's nats-server with
 * JetStream, redis-server, mosquitto; or the ones CI started): each alert is read back from the
 * broker (a JetStream consumer, XRANGE, an MQTT subscriber); with the broker down a send fails
 * promptly (the test's timeout catches a hang); once it is back, a new send succeeds.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type MqttClient, connectAsync } from 'mqtt';
import { type NatsConnection, connect as natsConnect } from 'nats';
import { createClient } from 'redis';
import { MqttOutput } from '../src/alerts/outputs/mqtt.js';
import { NatsOutput } from '../src/alerts/outputs/nats.js';
import { RedisOutput } from '../src/alerts/outputs/redis.js';
import { PermanentDeliveryError } from '../src/alerts/types.js';
import type { AlertMessage } from '../src/alerts/types.js';
import { alertMessage } from './helpers/alerts.js';
import { eventually } from './helpers/wait.js';
import { type Broker, type BrokerKind, brokerUnavailable, freePort, startBroker } from './helpers/brokers.js';

const TIMEOUT = { timeout: 60_000 };
const unique = (): string => randomBytes(4).toString('hex');
const OUTPUT_TIMEOUT_MS = 1500;

/** One broker of `kind` for a describe block; undefined (and the tests skip) when there is none. */
function useBroker(kind: BrokerKind): { get: () => Broker | undefined; skip: string | undefined } {
  const skip = brokerUnavailable(kind);
  let broker: Broker | undefined;
  before(async () => {
    if (!skip) broker = await startBroker(kind);
  });
  after(async () => broker?.close());
  return { get: () => broker, skip };
}

/** Fails unless `p` rejects with a retryable (non-permanent) error matching `re`. */
async function rejectsRetryable(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(!(e instanceof PermanentDeliveryError), `retryable, got ${e.name}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

describe('nats output (JetStream)', TIMEOUT, () => {
  const b = useBroker('nats');
  let reader: NatsConnection;
  before(async () => {
    if (b.get()) reader = await natsConnect({ servers: b.get()!.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  });
  after(async () => reader?.close());

  const make = (stream: string, prefix: string, extra: Partial<ConstructorParameters<typeof NatsOutput>[0]> = {}): NatsOutput =>
    new NatsOutput({ name: 'nats', url: b.get()!.url, subject: `${prefix}.{priority}.{rule}`, stream, createStream: true, timeoutMs: OUTPUT_TIMEOUT_MS, ...extra });

  async function readAll(stream: string, n: number): Promise<{ subject: string; msgId: string | undefined; body: AlertMessage }[]> {
    const js = reader.jetstream();
    const consumer = await js.consumers.get(stream);
    const out: { subject: string; msgId: string | undefined; body: AlertMessage }[] = [];
    while (out.length < n) {
      const m = await consumer.next({ expires: 5000 });
      if (!m) throw new Error(`only ${out.length} of ${n} messages in stream ${stream}`);
      out.push({ subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), body: m.json<AlertMessage>() });
    }
    return out;
  }

  test('creates the stream, publishes on the templated subject with uuid:kind as msg id, and de-duplicates retries', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const stream = `MWTEST_${unique()}`;
    const prefix = `mwtest${unique()}`;
    const o = make(stream, prefix);
    t.after(() => o.close());
    const first = alertMessage();
    await o.send(first);
    await o.send(first); // a retry after a lost PubAck: stored once
    const summary = alertMessage({}, { uuid: first.minewatch.uuid, kind: 'summary', count: 7 });
    await o.send(summary);
    const jsm = await reader.jetstreamManager();
    const info = await jsm.streams.info(stream);
    assert.deepEqual(info.config.subjects, [`${prefix}.>`]);
    assert.equal(info.state.messages, 2);
    const got = await readAll(stream, 2);
    assert.equal(got[0]!.subject, `${prefix}.critical.Detect_crypto_miners_using_the_Stratum_protocol`);
    assert.equal(got[0]!.msgId, `${first.minewatch.uuid}:first`);
    assert.deepEqual(got[0]!.body, first);
    assert.equal(got[1]!.msgId, `${first.minewatch.uuid}:summary`);
    assert.equal(got[1]!.body.minewatch.count, 7);
    await jsm.streams.delete(stream);
  });

  test('without create_stream, a missing stream fails the send with what to do', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const o = make(`MWTEST_${unique()}`, `mwtest${unique()}`, { createStream: false });
    t.after(() => o.close());
    await rejectsRetryable(o.send(alertMessage()), /outputs\.nats: no JetStream stream stores subject 'mwtest.*' on nats:\/\/.* \(or JetStream is off there: nats-server -js\); create stream 'MWTEST_.*' or set outputs\.nats\.create_stream: true/);
  });

  test('nothing listening: the send fails at once naming the URL', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const url = `nats://127.0.0.1:${await freePort()}`;
    const o = new NatsOutput({ name: 'nats', url, subject: 'mwtest.{rule}', stream: 'MWTEST_NONE', createStream: true, timeoutMs: OUTPUT_TIMEOUT_MS });
    t.after(() => o.close());
    await rejectsRetryable(o.send(alertMessage()), new RegExp(`outputs\\.nats\\.url: cannot connect to ${url.replace(/\./g, '\\.')}`));
  });

  test('broker down: sends fail promptly; broker back: a new send is stored', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const broker = b.get()!;
    const stream = `MWTEST_${unique()}`;
    const o = make(stream, `mwtest${unique()}`);
    t.after(() => o.close());
    await o.send(alertMessage());
    await broker.stop();
    try {
      await rejectsRetryable(o.send(alertMessage()), /outputs\.nats: (not connected to nats:\/\/.* \(reconnecting\)|publish to .* failed|the PubAck from .*: no answer)/);
      await rejectsRetryable(o.send(alertMessage()), /outputs\.nats: not connected to nats:\/\/.* \(reconnecting\)/);
    } finally {
      await broker.start();
    }
    const later = alertMessage();
    await eventually(() => o.send(later));
    const got = await eventually(() => readAll(stream, 2));
    assert.equal(got[1]!.body.minewatch.uuid, later.minewatch.uuid);
  });
});

describe('redis output (streams)', TIMEOUT, () => {
  const b = useBroker('redis');
  const reader = (): ReturnType<typeof createClient> => createClient({ url: b.get()!.url });

  async function entries(key: string): Promise<{ id: string; message: Record<string, string> }[]> {
    const c = reader();
    await c.connect();
    try {
      return (await c.xRange(key, '-', '+')) as { id: string; message: Record<string, string> }[];
    } finally {
      c.destroy();
    }
  }

  test('XADD puts the Falco JSON and filterable fields in the stream, trimmed to about maxlen', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const key = `mwtest:${unique()}`;
    const o = new RedisOutput({ name: 'redis', url: b.get()!.url, key, maxlen: 10, timeoutMs: OUTPUT_TIMEOUT_MS });
    t.after(() => o.close());
    const msg = alertMessage();
    await o.send(msg);
    const [e] = await entries(key);
    assert.deepEqual(JSON.parse(e!.message.alert!), msg);
    assert.equal(e!.message.rule, msg.rule);
    assert.equal(e!.message.priority, 'Critical');
    assert.equal(e!.message.uuid, msg.minewatch.uuid);
    assert.equal(e!.message.kind, 'first');
    for (let i = 0; i < 499; i++) await o.send(alertMessage());
    const c = reader();
    await c.connect();
    const len = await c.xLen(key);
    await c.del(key);
    c.destroy();
    // MAXLEN ~ trims whole stream nodes (100 entries by default): about maxlen, far below 500.
    assert.ok(len >= 10 && len < 250, `stream length ${len}`);
  });

  test('nothing listening: the send fails within timeout_ms naming the URL', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const url = `redis://127.0.0.1:${await freePort()}`;
    const o = new RedisOutput({ name: 'redis', url, key: 'mwtest', maxlen: 10, timeoutMs: 500 });
    t.after(() => o.close());
    await rejectsRetryable(o.send(alertMessage()), /outputs\.redis\.url: not connected to redis:\/\/127\.0\.0\.1:\d+.*ECONNREFUSED/);
  });

  test('broker down: sends fail promptly; broker back: a new send is stored', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const broker = b.get()!;
    const key = `mwtest:${unique()}`;
    const o = new RedisOutput({ name: 'redis', url: broker.url, key, maxlen: 1000, timeoutMs: OUTPUT_TIMEOUT_MS });
    t.after(() => o.close());
    await o.send(alertMessage());
    await broker.stop();
    try {
      await rejectsRetryable(o.send(alertMessage()), /outputs\.redis/);
      await rejectsRetryable(o.send(alertMessage()), /outputs\.redis(\.url: not connected| XADD)/);
    } finally {
      await broker.start();
    }
    const later = alertMessage();
    await eventually(() => o.send(later));
    const got = await entries(key);
    // A broker we restarted lost the stream (no persistence); one behind a relay kept it.
    assert.equal(JSON.parse(got.at(-1)!.message.alert!).minewatch.uuid, later.minewatch.uuid);
  });
});

describe('mqtt output', TIMEOUT, () => {
  const b = useBroker('mqtt');

  interface Got {
    topic: string;
    body: AlertMessage;
    qos: number;
    retain: boolean;
  }

  /** A subscriber on `filter` that keeps what it receives. */
  async function subscriber(filter: string): Promise<{ client: MqttClient; got: Got[]; wait: (n: number) => Promise<Got[]> }> {
    const client = await connectAsync(b.get()!.url, { reconnectPeriod: 0 });
    const got: Got[] = [];
    let wake: (() => void) | undefined;
    client.on('message', (topic, payload, packet) => {
      got.push({ topic, body: JSON.parse(payload.toString()) as AlertMessage, qos: packet.qos, retain: packet.retain });
      wake?.();
    });
    await client.subscribeAsync(filter, { qos: 1 });
    const wait = async (n: number): Promise<Got[]> => {
      while (got.length < n) await new Promise<void>((r) => (wake = r));
      return got;
    };
    return { client, got, wait };
  }

  test('QoS 1 on the templated topic, retain off', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const prefix = `mwtest/${unique()}`;
    const sub = await subscriber(`${prefix}/#`);
    t.after(() => sub.client.endAsync());
    const o = new MqttOutput({ name: 'mqtt', url: b.get()!.url, topic: `${prefix}/{priority}/{rule}`, timeoutMs: OUTPUT_TIMEOUT_MS });
    t.after(() => o.close());
    const msg = alertMessage({ rule: 'Outbound to mining/pool #1 +port' });
    await o.send(msg);
    const [got] = await sub.wait(1);
    assert.equal(got!.topic, `${prefix}/critical/Outbound_to_mining_pool_1_port`);
    assert.deepEqual(got!.body, msg);
    assert.equal(got!.qos, 1);
    assert.equal(got!.retain, false);

    // Not retained: a later subscriber gets only what is published after it subscribed.
    const late = await subscriber(`${prefix}/#`);
    t.after(() => late.client.endAsync());
    const marker = alertMessage();
    await o.send(marker);
    const [first] = await late.wait(1);
    assert.equal(first!.body.minewatch.uuid, marker.minewatch.uuid);
  });

  test('nothing listening: the send fails within timeout_ms naming the URL', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const url = `mqtt://127.0.0.1:${await freePort()}`;
    const o = new MqttOutput({ name: 'mqtt', url, topic: 'mwtest/{rule}', timeoutMs: 500 });
    t.after(() => o.close());
    await rejectsRetryable(o.send(alertMessage()), /outputs\.mqtt\.url: not connected to mqtt:\/\/127\.0\.0\.1:\d+.*ECONNREFUSED/);
  });

  test('broker down: sends fail promptly; broker back: a new send is delivered', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const broker = b.get()!;
    const prefix = `mwtest/${unique()}`;
    const o = new MqttOutput({ name: 'mqtt', url: broker.url, topic: `${prefix}/{priority}`, timeoutMs: OUTPUT_TIMEOUT_MS });
    t.after(() => o.close());
    await o.send(alertMessage());
    await broker.stop();
    try {
      await rejectsRetryable(o.send(alertMessage()), /outputs\.mqtt/);
      await rejectsRetryable(o.send(alertMessage()), /outputs\.mqtt\.url: not connected/);
    } finally {
      await broker.start();
    }
    const sub = await eventually(() => subscriber(`${prefix}/#`));
    t.after(() => sub.client.endAsync());
    const later = alertMessage();
    await eventually(() => o.send(later));
    const got = await sub.wait(1);
    assert.equal(got.at(-1)!.body.minewatch.uuid, later.minewatch.uuid);
  });
});
