/**
 * Alert outputs: messages per second each output delivers to its real target, one message at a
 * time (each send awaited before the next, as a delivery queue feeds an output), beside the file
 * output (JSON lines to a temp file) measured in the same process as the baseline:
 *   - webhook and falcosidekick: a loopback node:http server answering 200;
 *   - program: `cat > /dev/null` kept alive;
 *   - redis (XADD MAXLEN ~), nats (JetStream publish, waiting for each PubAck), mqtt (QoS 1,
 *     waiting for each PUBACK): the brokers from test/helpers/brokers.ts (MINEWATCH_TEST_*_URL,
 *     or a broker process of our own).
 */
import { mkdtempSync, rmSync, truncateSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FalcosidekickOutput } from '../src/alerts/outputs/falcosidekick.js';
import { FileOutput } from '../src/alerts/outputs/file.js';
import { MqttOutput } from '../src/alerts/outputs/mqtt.js';
import { NatsOutput } from '../src/alerts/outputs/nats.js';
import { ProgramOutput } from '../src/alerts/outputs/program.js';
import { RedisOutput } from '../src/alerts/outputs/redis.js';
import { WebhookOutput } from '../src/alerts/outputs/webhook.js';
import type { AlertMessage, Output } from '../src/alerts/types.js';
import { alertMessage } from '../test/helpers/alerts.js';
import { type Broker, type BrokerKind, brokerUnavailable, startBroker } from '../test/helpers/brokers.js';
import { fmt, median } from './lib.js';

/** Time per output per round; each figure is the median of ROUNDS rounds. */
const ROUND_MS = 300;
const ROUNDS = 9;
const WARMUP = 200;

/** Messages per second, sending one at a time for `ms`. */
async function rate(out: Output, msgs: AlertMessage[], ms: number): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  let now = t0;
  while (now - t0 < ms) {
    for (let i = 0; i < 50; i++) await out.send(msgs[n++ % msgs.length]!);
    now = performance.now();
  }
  return n / ((now - t0) / 1000);
}

/**
 * Median messages/s of `out` and of the baseline, in alternating rounds: on a shared machine the
 * load drifts, and each ratio compares rounds run side by side.
 */
async function measure(out: Output, baseline: Output, baselinePath: string, msgs: AlertMessage[]): Promise<{ rate: number; base: number }> {
  for (let i = 0; i < WARMUP; i++) await out.send(msgs[i % msgs.length]!);
  const rates: number[] = [];
  const bases: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Start each baseline round with an empty file: a file grown to hundreds of MB measures the
    // page cache's write-back, not the output.
    truncateSync(baselinePath, 0);
    bases.push(await rate(baseline, msgs, ROUND_MS));
    rates.push(await rate(out, msgs, ROUND_MS));
  }
  return { rate: median(rates), base: median(bases) };
}

function okServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end('ok'));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  })));
}

export async function outputsBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mw-outputs-bench-'));
  // Distinct messages (uuids), so JetStream's de-duplication does not drop repeats.
  const msgs = Array.from({ length: 5000 }, () => alertMessage());
  const cleanups: (() => Promise<void>)[] = [];
  const brokers = new Map<BrokerKind, Broker>();
  try {
    const filePath = join(dir, 'alerts.jsonl');
    const file = new FileOutput({ name: 'file', path: filePath, format: 'json' });
    cleanups.push(() => file.close());
    for (let i = 0; i < WARMUP; i++) await file.send(msgs[i]!);
    console.log('outputs  one message at a time; baseline: the file output (JSON lines to a temp file) in rounds alternating with each output\'s');

    const srv = await okServer();
    cleanups.push(srv.close);
    const targets: [string, () => Promise<Output | string>][] = [
      ['webhook', async () => new WebhookOutput({ name: 'webhook', url: `${srv.url}/hook`, headers: {}, timeoutMs: 5000 })],
      ['falcosidekick', async () => new FalcosidekickOutput({ name: 'falcosidekick', url: srv.url, headers: {}, timeoutMs: 5000 })],
      ['program', async () => new ProgramOutput({ name: 'program', program: 'exec cat > /dev/null', keepAlive: true, format: 'json', timeoutMs: 5000 })],
      ['redis', async () => {
        const b = await broker('redis');
        return typeof b === 'string' ? b : new RedisOutput({ name: 'redis', url: b.url, key: `mwbench:${process.pid}`, maxlen: 10_000, timeoutMs: 5000 });
      }],
      ['nats', async () => {
        const b = await broker('nats');
        return typeof b === 'string' ? b : new NatsOutput({ name: 'nats', url: b.url, subject: `mwbench${process.pid}.{priority}.{rule}`, stream: `MWBENCH_${process.pid}`, createStream: true, timeoutMs: 5000 });
      }],
      ['mqtt', async () => {
        const b = await broker('mqtt');
        return typeof b === 'string' ? b : new MqttOutput({ name: 'mqtt', url: b.url, topic: `mwbench/${process.pid}/{priority}`, timeoutMs: 5000 });
      }],
    ];
    for (const [name, make] of targets) {
      const out = await make();
      if (typeof out === 'string') {
        console.log(`outputs.${name}  skipped: ${out}`);
        continue;
      }
      cleanups.push(() => out.close());
      const { rate: r, base } = await measure(out, file, filePath, msgs);
      console.log(`outputs.${name}  ${fmt(r)} msg/s  = ${fmt(r / base, 3)}× the file output (${fmt(base)} msg/s beside it)`);
    }
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    for (const b of brokers.values()) await b.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }

  async function broker(kind: BrokerKind): Promise<Broker | string> {
    const why = brokerUnavailable(kind);
    if (why) return why;
    const b = await startBroker(kind);
    brokers.set(kind, b);
    return b;
  }
}
