/**
 * The alert store's WAL checkpoints (src/alerts/checkpoint.ts), on a real SQLite file: none inside
 * a commit, one in the turn after the commit that takes the WAL past its size, and every committed
 * row still there after the store is closed and opened again.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import Database from 'better-sqlite3';
import { WalCheckpointer } from '../src/alerts/checkpoint.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function open(): { db: Database.Database; path: string } {
  const d = mkdtempSync(join(tmpdir(), 'mw-ckpt-'));
  dirs.push(d);
  const path = join(d, 'alerts.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  return { db, path };
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

it('no checkpoint inside a commit: one in the turn after the commit that passes the hard size; every row kept', async () => {
  const { db, path } = open();
  // No pause is waited for here: the size that calls for one at the next pause is the hard size.
  const cp = new WalCheckpointer(db, path, { walBytes: 256 * 1024, hardWalBytes: 256 * 1024 });
  assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 0);
  const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
  const body = 'x'.repeat(8000);
  let rows = 0;
  // SQLite's own checkpoint would have run inside the commit that passed 1,000 pages (4 MiB);
  // here none runs inside a commit, and the WAL grows until it passes the size.
  for (;;) {
    insert.run(body);
    rows++;
    cp.committed();
    assert.equal(cp.count, 0, 'no checkpoint inside a commit');
    if (cp.walBytes() >= 256 * 1024) break;
    await nextTurn();
  }
  // The commit past the size: checkpointed in the next turn.
  await nextTurn();
  assert.equal(cp.count, 1);
  // A checkpointed WAL starts again from nothing at the next write.
  insert.run(body);
  rows++;
  cp.committed();
  assert.ok(cp.walBytes() < 64 * 1024, `the WAL started again (${cp.walBytes()} bytes)`);
  cp.stop();
  assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 1000);
  db.close();
  const again = new Database(path, { readonly: true });
  assert.equal((again.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n, rows);
  again.close();
});

/** Insert rows until the WAL holds `bytes`; each commit told to the checkpointer. */
async function fill(db: Database.Database, cp: WalCheckpointer, bytes: number): Promise<number> {
  const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
  let rows = 0;
  while (cp.walBytes() < bytes) {
    insert.run('y'.repeat(8000));
    rows++;
    cp.committed();
    await nextTurn();
  }
  return rows;
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const end = Date.now() + 20_000;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

it('a WAL past the size waits for a pause in the commits: none while they keep coming, one after', async () => {
  const { db, path } = open();
  // A pause of a minute never comes while this test commits: the checkpoint must wait.
  const waiting = new WalCheckpointer(db, path, { walBytes: 64 * 1024, quietMs: 60_000, hardWalBytes: 64 * 1024 * 1024 });
  await fill(db, waiting, 256 * 1024);
  for (let i = 0; i < 5; i++) await nextTurn();
  assert.equal(waiting.count, 0, 'no checkpoint while the pause has not come');
  assert.ok(waiting.walBytes() >= 256 * 1024);
  waiting.stop();
  // The same WAL with a short pause: the checkpoint comes once commits stop, and empties it.
  const pausing = new WalCheckpointer(db, path, { walBytes: 64 * 1024, quietMs: 20, hardWalBytes: 64 * 1024 * 1024 });
  pausing.committed();
  await until('a checkpoint after the pause', () => pausing.count === 1);
  db.prepare('INSERT INTO t (body) VALUES (?)').run('z');
  assert.ok(pausing.walBytes() < 64 * 1024, `the WAL started again (${pausing.walBytes()} bytes)`);
  pausing.stop();
  db.close();
});

it('a stream of commits with no pause still checkpoints when the WAL passes the hard size', async () => {
  const { db, path } = open();
  const cp = new WalCheckpointer(db, path, { walBytes: 64 * 1024, quietMs: 60_000, hardWalBytes: 512 * 1024 });
  const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
  let maxWal = 0;
  for (let i = 0; i < 400 && cp.count === 0; i++) {
    insert.run('w'.repeat(8000));
    cp.committed();
    maxWal = Math.max(maxWal, cp.walBytes());
    await nextTurn();
  }
  assert.equal(cp.count, 1, 'one checkpoint, at the hard size');
  assert.ok(maxWal >= 512 * 1024 && maxWal < 1024 * 1024, `it came at the hard size, not before or long after (WAL peaked at ${maxWal} bytes)`);
  cp.stop();
  db.close();
});

it('a pause timer that fires late (the event loop was held) waits a whole pause again before checkpointing', async () => {
  const { db, path } = open();
  const cp = new WalCheckpointer(db, path, { walBytes: 64 * 1024, quietMs: 40, hardWalBytes: 64 * 1024 * 1024 });
  await fill(db, cp, 128 * 1024);
  // The loop held for 10 pauses' worth right after the last commit: when the timer runs, no
  // commit came "for a pause", but only because nothing could run.
  const end = performance.now() + 400;
  while (performance.now() < end) { /* held */ }
  // Timers due are run in this turn's timer phase; the late one re-arms instead of checkpointing.
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(cp.count, 0, 'no checkpoint straight after the loop was held');
  await until('a checkpoint after a real pause', () => cp.count === 1);
  cp.stop();
  db.close();
});
