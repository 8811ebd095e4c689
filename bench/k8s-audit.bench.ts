/**
 * The audit webhook's throughput: audit events posted over loopback HTTP to POST /k8s-audit (as
 * EventLists, the way an API server batches them, and one Event per request), parsed, turned into
 * k8s_audit events and run through minewatch's default rules; beside the baseline of the same
 * events run through the engine alone, already decoded. Client and server share this process (and
 * its one event loop), so the figure is a floor for a server with a separate client.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { DEFAULT_RULES_FILES, Engine } from '../src/engine/index.js';
import { auditEvent } from '../src/k8s-api/audit-event.js';
import { auditWebhookRoutes } from '../src/k8s/audit-webhook.js';
import { fmt, median } from './lib.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/k8s/', import.meta.url));

function templates(): Record<string, unknown>[] {
  const cases = JSON.parse(readFileSync(`${FIXTURES}cases.json`, 'utf8')) as Array<{ audit: string }>;
  return cases.map((c) => JSON.parse(readFileSync(FIXTURES + c.audit, 'utf8')) as Record<string, unknown>);
}

const BENCH_TOKEN = 'k8s-audit-bench-token';

export async function k8sAuditBench(): Promise<void> {
  const tpl = templates();
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES);
  const N = 20_000;
  const items = Array.from({ length: N }, (_, i) => ({ ...tpl[i % tpl.length], auditID: `bench-${i}` }));

  // Baseline: the engine alone on the same events, decoded beforehand.
  const decoded = items.map((it) => auditEvent(it));
  const alone: number[] = [];
  let alerts = 0;
  for (let round = 0; round < 5; round++) {
    const t = performance.now();
    for (const ev of decoded) alerts += engine.process(ev).length;
    alone.push(N / ((performance.now() - t) / 1000));
  }
  const base = median(alone);

  let received = 0;
  const app = Fastify({ logger: false });
  await app.register(auditWebhookRoutes({ sink: (ev) => (received++, engine.process(ev), true), token: BENCH_TOKEN }));
  // The HTTP floor: a route that does nothing, through the same server and client.
  app.post('/empty', async () => ({ accepted: 1 }));
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `${baseUrl}/k8s-audit`;
  const post = (body: string, to = url): Promise<number> =>
    fetch(to, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_TOKEN}` } }).then(async (r) => (await r.arrayBuffer(), r.status));

  async function empty(requests: number, concurrency: number): Promise<number> {
    const body = JSON.stringify(items[0]);
    let next = 0;
    const t = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next++ < requests) await post(body, `${baseUrl}/empty`);
    }));
    return requests / ((performance.now() - t) / 1000);
  }

  async function through(batch: number, events: number, concurrency: number): Promise<number> {
    const bodies: string[] = [];
    for (let i = 0; i < events; i += batch) {
      const chunk = items.slice(i, i + batch);
      bodies.push(batch === 1 ? JSON.stringify(chunk[0]) : JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: chunk }));
    }
    received = 0;
    let next = 0;
    const t = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) {
        const status = await post(bodies[next++]!);
        if (status !== 200) throw new Error(`webhook answered ${status}`);
      }
    }));
    const rate = events / ((performance.now() - t) / 1000);
    if (received !== events) throw new Error(`sent ${events} events, the sink got ${received}`);
    return rate;
  }

  try {
    await through(100, 2_000, 4); // warm-up
    const batched: number[] = [];
    const single: number[] = [];
    const floor: number[] = [];
    for (let round = 0; round < 3; round++) {
      batched.push(await through(100, N, 4));
      single.push(await through(1, 3_000, 8));
      floor.push(await empty(3_000, 8));
    }
    const b = median(batched);
    const s = median(single);
    const f = median(floor);
    console.log(`k8s.engine_alone       ${fmt(base)} events/s  (baseline: default rules on decoded audit events; ${alerts / 5} alerts per ${fmt(N)})`);
    console.log(`k8s.webhook_batch100   ${fmt(b)} events/s  (${fmt(b / base, 3)}x engine alone)  EventLists of 100 over loopback HTTP, 4 in flight`);
    console.log(`k8s.webhook_single     ${fmt(s)} events/s  (${fmt(s / base, 3)}x engine alone; ${fmt(s / f, 2)}x an empty route's ${fmt(f)} requests/s)  one Event per request, 8 in flight`);
  } finally {
    await app.close();
  }
}
