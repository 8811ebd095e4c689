/**
 * Connecting to the PostgreSQL store: alerts.store.url (postgres://user@host:port/db?sslmode=…, as
 * libpq takes it), the password from the URL, from alerts.store.password_file (a mounted secret)
 * or from PGPASSWORD, as a production user expects. BIGINT columns come back as bigint (times are
 * ns since the epoch), never as strings or rounded numbers.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { lazyRequire } from '../../platform/lazy-require.js';
import { redactUrl as redactOutputUrl } from '../outputs/base.js';

/** The pg package, loaded by the first PostgreSQL connection: an agent (SQLite) never loads it. */
export const pgLib = lazyRequire<typeof pg>('pg');

export interface PgStoreConfig {
  url: string;
  password_file?: string;
  pool_size?: number;
}

const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    // INT8 columns as bigint (counts and ns times overflow a double); the rest as pg parses them.
    oid === (pgLib().types.builtins.INT8 as number) ? (v: string) => BigInt(v) : (pgLib().types.getTypeParser(oid, format as 'text') as unknown)) as typeof pg.types.getTypeParser,
};

/** True when a store setting names PostgreSQL rather than a SQLite file. */
export function isPgUrl(url: string | undefined): url is string {
  return typeof url === 'string' && /^postgres(ql)?:\/\//i.test(url);
}

/** The URL with its password masked (for logs and errors); one that does not parse is not shown at all. */
export function redactUrl(url: string): string {
  return redactOutputUrl(url, 'the alerts.store.url');
}

export function clientConfig(cfg: PgStoreConfig): pg.ClientConfig {
  if (!isPgUrl(cfg.url)) throw new Error(`alerts.store.url: '${redactUrl(cfg.url)}' is not a postgres:// URL; write postgres://user@host:5432/database`);
  const c: pg.ClientConfig = { connectionString: cfg.url, types, application_name: 'minewatch', connectionTimeoutMillis: 10_000 };
  if (cfg.password_file) {
    try {
      c.password = readFileSync(cfg.password_file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new Error(`alerts.store.password_file: cannot read ${cfg.password_file}: ${(e as Error).message}; mount the secret there or remove the key`);
    }
  }
  return c;
}

export function createPool(cfg: PgStoreConfig): pg.Pool {
  return new (pgLib().Pool)({ ...clientConfig(cfg), max: cfg.pool_size ?? 10, idleTimeoutMillis: 30_000 });
}
