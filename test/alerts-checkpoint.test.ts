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

it('no checkpoint inside a commit: one in the turn after the commit that passes the size; every row kept', async () => {
  const { db, path } = open();
  const cp = new WalCheckpointer(db, path, { walBytes: 256 * 1024 });
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
