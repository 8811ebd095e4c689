/**
 * The alert store's deferred text index (src/alerts/text-index.ts), on real SQLite files: a new
 * alert is found by a text search before and after its batch is indexed, the index stays
 * consistent with the groups (FTS5's own integrity check), stores indexed by the old per-alert
 * trigger move over without a row twice or missed, retention deletes rows on either side, and a
 * process killed before the batch loses nothing: the next open finds and indexes what waited.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, it } from 'node:test';
import Database from 'better-sqlite3';
import { alertsSection } from '../src/alerts/config.js';
import { AlertPipeline } from '../src/alerts/pipeline.js';
import { AlertStore, type NewGroup } from '../src/alerts/store.js';
import { DeferredTextIndex } from '../src/alerts/text-index.js';
import { createLogger } from '../src/platform/logger.js';
import { until } from './helpers/wait.js';

const log = createLogger('silent');
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mw-text-'));
  dirs.push(d);
  return d;
}

/** Now, in ns: the pipeline's retention (by age) keeps these. */
const NOW = BigInt(Date.now()) * 1_000_000n;
let n = 0;
function group(output: string): NewGroup {
  n++;
  return {
    uuid: `u-${n}-${Math.random()}`, groupKey: `k${n}`, rule: 'R', priority: 'CRITICAL', source: 'syscall', tags: [], hostname: 'h',
    output, outputFields: {}, firstSeen: NOW, lastSeen: NOW, count: 1, changed: {},
    namespace: null, pod: null, containerId: null, containerName: null, origin: 'local', windowEnd: null, event: null,
  };
}

/** Outputs found by a text search, sorted. */
function found(s: AlertStore, text: string): string[] {
  return s.query({ text, limit: 1000 }).map((r) => r.output).sort();
}

/** What the FTS index itself holds for a search (rows still waiting are not in it). */
function inIndex(db: Database.Database, text: string): number[] {
  return (db.prepare('SELECT rowid FROM alerts_text WHERE output LIKE ? ORDER BY rowid').all(`%${text}%`) as { rowid: number }[]).map((r) => r.rowid);
}

/** FTS5's integrity check: throws when the index disagrees with the groups' text (every row indexed). */
function checkIndex(db: Database.Database): void {
  db.exec("INSERT INTO alerts_text(alerts_text, rank) VALUES ('integrity-check', 1)");
}

/** The index's own structure only (rows still waiting are, rightly, missing from it). */
function checkIndexStructure(db: Database.Database): void {
  db.exec("INSERT INTO alerts_text(alerts_text) VALUES ('integrity-check')");
}

it('a new alert is found at once, indexed in a batch later, and the index matches the groups', () => {
  const s = new AlertStore(join(tempDir(), 'alerts.db'));
  const a = s.insertGroup(group('xmrig mining to pool.example'), [], null);
  s.insertGroup(group('kworker looks odd'), [], null);
  // Not in the index yet: its own transaction only listed it.
  assert.equal(s.textIndex.waiting(), 2);
  assert.deepEqual(inIndex(s.db, 'xmrig'), []);
  assert.deepEqual(found(s, 'XMRIG'), ['xmrig mining to pool.example']);
  assert.deepEqual(found(s, 'pool.ex'), ['xmrig mining to pool.example']);
  s.textIndex.flush();
  assert.equal(s.textIndex.waiting(), 0);
  assert.deepEqual(inIndex(s.db, 'xmrig'), [a.id]);
  // Found once (index and waiting list never both hold a row).
  assert.deepEqual(found(s, 'xmrig'), ['xmrig mining to pool.example']);
  assert.deepEqual(found(s, 'no such miner'), []);
  assert.deepEqual(found(s, 'looks'), ['kworker looks odd']);
  checkIndex(s.db);
  s.close();
});

it('indexes in batches of at most `batch` rows, one transaction each', () => {
  const s = new AlertStore(join(tempDir(), 'alerts.db'));
  for (let i = 0; i < 7; i++) s.insertGroup(group(`batch row ${i} minerd`), [], null);
  const ix = new DeferredTextIndex(s.db, { batch: 3 });
  assert.equal(ix.indexBatch(), true);
  assert.equal(ix.waiting(), 4);
  // Half indexed: a search still finds all seven, each once.
  assert.equal(found(s, 'minerd').length, 7);
  ix.flush();
  assert.equal(ix.batches, 3);
  assert.equal(ix.waiting(), 0);
  assert.equal(inIndex(s.db, 'minerd').length, 7);
  checkIndex(s.db);
  s.close();
});

it('retention deletes groups whether indexed or still waiting, and the index stays consistent', () => {
  const s = new AlertStore(join(tempDir(), 'alerts.db'));
  for (let i = 0; i < 4; i++) s.insertGroup(group(`old cpuminer ${i}`), [], null);
  s.textIndex.flush();
  for (let i = 0; i < 4; i++) s.insertGroup(group(`new cpuminer ${i}`), [], null);
  // Keep 2: the four indexed and two waiting go.
  const deleted = s.applyRetention({ nowNs: NOW, maxAgeDays: 0, maxAlerts: 2, maxSizeMb: 0 });
  assert.equal(deleted, 6);
  assert.equal(s.textIndex.waiting(), 2);
  checkIndexStructure(s.db);
  assert.deepEqual(found(s, 'cpuminer'), ['new cpuminer 2', 'new cpuminer 3']);
  s.textIndex.flush();
  checkIndex(s.db);
  assert.deepEqual(found(s, 'cpuminer'), ['new cpuminer 2', 'new cpuminer 3']);
  s.close();
});

it('a store indexed by the old per-alert trigger moves over: every row found once, none indexed twice', () => {
  const path = join(tempDir(), 'alerts.db');
  const s = new AlertStore(path);
  s.insertGroup(group('before the move: ethminer'), [], null);
  s.textIndex.flush();
  // The old layout: no todo list, a trigger indexing each row as it is written.
  s.db.exec(`DROP TRIGGER alerts_text_todo_ins; DROP TRIGGER alerts_text_todo_del; DROP TABLE alerts_text_todo;
    CREATE TRIGGER alerts_text_ins AFTER INSERT ON alerts BEGIN INSERT INTO alerts_text(rowid, output) VALUES (new.id, new.output); END;
    CREATE TRIGGER alerts_text_del AFTER DELETE ON alerts BEGIN INSERT INTO alerts_text(alerts_text, rowid, output) VALUES ('delete', old.id, old.output); END;`);
  s.db.prepare("INSERT INTO alerts (uuid, group_key, rule, priority, prank, source, tags, hostname, output, output_fields, first_seen, last_seen, count, changed, origin) VALUES ('old-2', 'k', 'R', 'CRITICAL', 5, 'syscall', '[]', 'h', 'written by the old trigger: ethminer', '{}', 1, 1, 1, '{}', 'local')").run();
  s.close();
  const again = new AlertStore(path);
  const triggers = (again.db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'alerts_text%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  assert.deepEqual(triggers, ['alerts_text_todo_del', 'alerts_text_todo_ins']);
  assert.equal(again.textIndex.waiting(), 0);
  again.insertGroup(group('after the move: ethminer'), [], null);
  assert.deepEqual(found(again, 'ethminer'), ['after the move: ethminer', 'before the move: ethminer', 'written by the old trigger: ethminer']);
  again.textIndex.flush();
  checkIndex(again.db);
  assert.equal(inIndex(again.db, 'ethminer').length, 3);
  again.close();
});

it('the pipeline indexes after a pause in alerts, not in the alert\'s own commit', async () => {
  const s = new AlertStore(join(tempDir(), 'alerts.db'));
  const p = new AlertPipeline({ config: alertsSection.parse({ throttle: { window_s: 0 } }), outputs: [], log, store: s }).start();
  p.accept({
    rule: 'R', priority: 'CRITICAL', source: 'syscall', tags: [], hostname: 'h', output: 'pipeline row: nbminer', outputFields: {}, time: NOW,
    event: { source: 'syscall', type: 'execve', ts: NOW, proc: { pid: 1, name: 'nbminer' } },
  } as never);
  p.commit();
  assert.equal(s.textIndex.waiting(), 1);
  assert.deepEqual(found(s, 'nbminer'), ['pipeline row: nbminer']);
  // The pause (250 ms) passes: the test's own timeout bounds the wait.
  await until(() => s.textIndex.waiting() === 0);
  assert.deepEqual(inIndex(s.db, 'nbminer').length, 1);
  checkIndex(s.db);
  await p.stop();
  s.close();
});

it('a process killed before its batch loses nothing: the next open finds the alerts and indexes them', async () => {
  const dir = tempDir();
  const path = join(dir, 'alerts.db');
  const script = join(dir, 'writer.mjs');
  const storeUrl = pathToFileURL(join(import.meta.dirname, '..', 'src', 'alerts', 'store.js')).href;
  // Stores 50 alerts in 5 commits, as the pipeline does, then dies at once (no close, no batch).
  writeFileSync(script, `import { AlertStore } from ${JSON.stringify(storeUrl)};
const s = new AlertStore(${JSON.stringify(path)});
// Now: the pipeline's retention (by age) keeps them.
const now = BigInt(Date.now()) * 1000000n;
for (let c = 0; c < 5; c++) {
  s.db.exec('BEGIN');
  for (let i = 0; i < 10; i++) s.insertGroup({ uuid: 'k' + c + '-' + i, groupKey: 'g', rule: 'R', priority: 'CRITICAL', source: 'syscall', tags: [], hostname: 'h',
    output: 'killed writer xmr-stak ' + (c * 10 + i), outputFields: {}, firstSeen: now, lastSeen: now, count: 1, changed: {}, namespace: null, pod: null,
    containerId: null, containerName: null, origin: 'local', windowEnd: null, event: null }, [], null);
  s.db.exec('COMMIT');
}
process.kill(process.pid, 'SIGKILL');
`);
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  const s = new AlertStore(path);
  assert.equal(s.textIndex.waiting(), 50);
  assert.equal(found(s, 'xmr-stak').length, 50);
  const p = new AlertPipeline({ config: alertsSection.parse({ throttle: { window_s: 0 } }), outputs: [], log, store: s }).start();
  await until(() => s.textIndex.waiting() === 0);
  assert.equal(inIndex(s.db, 'xmr-stak').length, 50);
  assert.equal(found(s, 'xmr-stak').length, 50);
  checkIndex(s.db);
  await p.stop();
  s.close();
});

it('a text search reads the waiting rows from their list, never by scanning every group', () => {
  const s = new AlertStore(join(tempDir(), 'alerts.db'));
  s.insertGroup(group('plan check: xmrig'), [], null);
  const seen: string[] = [];
  const prepare = s.db.prepare.bind(s.db);
  s.db.prepare = ((sql: string) => { seen.push(sql); return prepare(sql); }) as typeof s.db.prepare;
  assert.equal(found(s, 'xmrig').length, 1);
  s.db.prepare = prepare;
  const sql = seen.find((x) => x.includes('alerts_text_todo'));
  assert.ok(sql, 'the search reads the waiting list');
  const plan = (s.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('%xmrig%', '%xmrig%', 1000) as { detail: string }[]).map((r) => r.detail);
  // The groups are only ever searched by id (the index's rows, the listed rows), never scanned.
  assert.ok(!plan.some((d) => /^SCAN (a|alerts)\b/.test(d)), plan.join('\n'));
  assert.ok(plan.some((d) => /^SCAN t\b/.test(d)), plan.join('\n'));
  s.close();
});
