/**
 * The alert pipeline's warm-up at start (AlertPipeline.warm): it runs the alert path on a made-up
 * match and keeps nothing of it: no group, message, delivery or text-index row in the store, no
 * count, no listener called, nothing sent or written by any output. The first real alert after
 * it is stored and sent as usual.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, it } from 'node:test';
import { alertsSection } from '../src/alerts/config.js';
import { AlertPipeline } from '../src/alerts/pipeline.js';
import { AlertStore } from '../src/alerts/store.js';
import { StdoutOutput } from '../src/alerts/outputs/stdout.js';
import type { AlertMessage, Output } from '../src/alerts/types.js';
import { createLogger } from '../src/platform/logger.js';
import type { Match } from '../src/engine/types.js';
import { until } from './helpers/wait.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

class Recording implements Output {
  readonly name = 'recording';
  readonly sent: AlertMessage[] = [];
  warmed = 0;
  async send(msg: AlertMessage): Promise<void> { this.sent.push(msg); }
  warm(): void { this.warmed++; }
  async close(): Promise<void> {}
}

function count(s: AlertStore, table: string): number {
  return (s.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
}

it('warms the alert path at start and keeps nothing of it; the first real alert goes out as usual', async () => {
  const d = mkdtempSync(join(tmpdir(), 'mw-warm-'));
  dirs.push(d);
  const store = new AlertStore(join(d, 'alerts.db'));
  const lines: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  const rec = new Recording();
  const p = new AlertPipeline({
    config: alertsSection.parse({ throttle: { window_s: 0 } }),
    outputs: [rec, new StdoutOutput({ name: 'stdout', format: 'json', stream })],
    log: createLogger('silent'),
    store,
  });
  const heard: number[] = [];
  p.subscribe((r) => heard.push(r.id));
  p.start();
  assert.equal(rec.warmed, 1, 'each output that can was warmed');
  // Start's own write (retention) commits in a microtask: look after it.
  await new Promise((r) => setImmediate(r));
  assert.equal(store.db.inTransaction, false);
  for (const t of ['alerts', 'messages', 'deliveries', 'alerts_text_todo', 'rollup_hourly']) assert.equal(count(store, t), 0, `${t} is empty`);
  assert.deepEqual(p.matchCountsByRule(), []);
  assert.equal(p.counters.groups, 0);
  assert.deepEqual(heard, []);
  const now = BigInt(Date.now()) * 1_000_000n;
  const m = {
    rule: 'Real rule', priority: 'CRITICAL', source: 'syscall', tags: [], hostname: 'h', output: 'a real alert (proc.pid=7)', outputFields: { 'proc.pid': 7 }, time: now,
    event: { source: 'syscall', type: 'execve', ts: now, proc: { pid: 7, name: 'xmrig' } },
  } as unknown as Match;
  const r = p.accept(m);
  p.commit();
  assert.equal(r?.id, 1, 'the warm-up took no id');
  await until(() => rec.sent.length === 1 && lines.length === 1);
  assert.equal(rec.sent[0]!.rule, 'Real rule');
  assert.equal(JSON.parse(lines[0]!).rule, 'Real rule');
  assert.ok(!lines[0]!.includes('warm'), 'no trace of the warm-up on stdout');
  assert.deepEqual(heard, [1]);
  await p.stop();
  store.close();
});
