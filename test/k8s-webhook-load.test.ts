/**
 * The audit webhook under load: a loopback client sends 1,000 audit events a second for 30 seconds
 * (EventLists of 10, as an API server batches them), and meanwhile an oversized body and a garbage
 * body every second. Every event reaches the engine exactly once and alerts as it should; every
 * oversized body gets 413 and every garbage one 400. (How fast it goes is the bench's business:
 * bench/k8s-audit.bench.ts; here the pace is only the load.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_RULES_FILES, Engine } from '../src/engine/index.js';
import type { PluginEvent } from '../src/events.js';
import { auditWebhookRoutes } from '../src/k8s/audit-webhook.js';
import { HOOK_AUTH, HOOK_TOKEN, K8S_CASES, fixtureText, post, serve } from './helpers/k8s.js';

const RATE = 1000;
const SECONDS = 30;
const BATCH = 10;
const TOTAL = RATE * SECONDS;
const MAX_BODY = 64 * 1024;

test(`audit webhook: ${RATE} events/s for ${SECONDS} s loses nothing, and answers 413 and 400 meanwhile`, { timeout: 180_000 }, async (t) => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES, { ruleMatching: 'all' });
  const seen = new Map<string, number>();
  const alerts = new Map<string, number>();
  const { app, url } = await serve(auditWebhookRoutes({
    maxBodyBytes: MAX_BODY,
    token: HOOK_TOKEN,
    sink: (ev) => {
      const id = ((ev as PluginEvent).payload as { auditID: string }).auditID;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      for (const m of engine.process(ev)) alerts.set(m.rule, (alerts.get(m.rule) ?? 0) + 1);
      return true;
    },
  }));
  t.after(() => app.close());

  // The fixtures in turn, each copy with its own audit ID.
  const templates = K8S_CASES.map((c) => JSON.parse(fixtureText(c.audit)) as Record<string, unknown>);
  const expectedAlerts = new Map<string, number>();
  const batchBody = (b: number): string => {
    const items = [];
    for (let i = 0; i < BATCH; i++) {
      const n = b * BATCH + i;
      const k = n % templates.length;
      items.push({ ...templates[k], auditID: `load-${n}` });
      for (const r of K8S_CASES[k]!.rules) expectedAlerts.set(r, (expectedAlerts.get(r) ?? 0) + 1);
    }
    return JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items });
  };
  const oversized = JSON.stringify({ kind: 'EventList', items: Array.from({ length: 200 }, () => templates[0]) });
  assert.ok(oversized.length > MAX_BODY);

  const statuses = new Map<string, number[]>([['batch', []], ['oversized', []], ['garbage', []]]);
  const inflight = new Set<Promise<void>>();
  const send = (kind: string, body: string): void => {
    const p = post(`${url}/k8s-audit`, body, HOOK_AUTH).then((r) => { statuses.get(kind)!.push(r.status); }, (e) => { statuses.get(kind)!.push(-1); void e; });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  const batches = TOTAL / BATCH;
  const start = performance.now();
  let sent = 0;
  let second = 0;
  while (sent < batches) {
    const elapsed = (performance.now() - start) / 1000;
    // Send what the schedule says is due by now; a slow moment is caught up, never skipped.
    const due = Math.min(batches, Math.floor((elapsed * RATE) / BATCH) + 1);
    while (sent < due && inflight.size < 32) send('batch', batchBody(sent++));
    if (elapsed >= second) {
      send('oversized', oversized);
      send('garbage', second % 2 ? '{"kind":"EventList","items":[' : '\u0000\u0001not json at all');
      second++;
    }
    await sleep(5);
  }
  while (inflight.size) await Promise.all(inflight);

  assert.equal(statuses.get('batch')!.length, batches);
  assert.ok(statuses.get('batch')!.every((s) => s === 200), `batch answers: ${[...new Set(statuses.get('batch'))]}`);
  assert.ok(second >= SECONDS, `${second} seconds of oversized and garbage bodies`);
  assert.deepEqual([...new Set(statuses.get('oversized'))], [413]);
  assert.deepEqual([...new Set(statuses.get('garbage'))], [400]);
  assert.equal(statuses.get('oversized')!.length, second);
  // Nothing lost, nothing twice.
  assert.equal(seen.size, TOTAL);
  assert.ok([...seen.values()].every((n) => n === 1));
  for (let n = 0; n < TOTAL; n++) assert.ok(seen.has(`load-${n}`), `load-${n}`);
  assert.deepEqual(Object.fromEntries([...alerts].sort()), Object.fromEntries([...expectedAlerts].sort()));
});
