/**
 * The store's SQLite page cache is bounded (STORE_CACHE_KIB) on every open, fresh store or old:
 * better-sqlite3's own default is 16 MB, which the retention sweep's scan of a large store filled
 * and kept resident (issue 16: the agent's RSS).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import Database from 'better-sqlite3';
import { AlertStore, STORE_CACHE_KIB } from '../src/alerts/store.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function cacheKib(db: Database.Database): number {
  // A negative cache_size is KiB; a positive one pages.
  const v = db.pragma('cache_size', { simple: true }) as number;
  return v < 0 ? -v : (v * (db.pragma('page_size', { simple: true }) as number)) / 1024;
}

it('bounds the page cache of a fresh store and of a reopened one, below better-sqlite3\'s 16 MB default', () => {
  const d = mkdtempSync(join(tmpdir(), 'mw-cache-'));
  dirs.push(d);
  const path = join(d, 'alerts.db');
  const plain = new Database(':memory:');
  const libraryDefault = cacheKib(plain);
  plain.close();
  assert.ok(STORE_CACHE_KIB < libraryDefault, `the bound (${STORE_CACHE_KIB} KiB) is below the library's default (${libraryDefault} KiB)`);
  for (let open = 0; open < 2; open++) {
    const store = new AlertStore(path);
    try {
      assert.equal(cacheKib(store.db), STORE_CACHE_KIB, `open ${open + 1}: the connection's page cache`);
    } finally {
      store.close();
    }
  }
});
