/**
 * A real PostgreSQL for tests and benches: Debian's server (postgresql package, binaries in
 * /usr/lib/postgresql/<version>/bin). When MINEWATCH_TEST_PG_URL names one (CI starts one, see
 * .ci/run), each caller gets a fresh database of its own on it; otherwise a private cluster is made
 * (initdb in a temp dir, as the postgres user when we are root, on a free loopback port, its
 * socket in the temp dir) and removed at close.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freePort, waitForPort } from './brokers.js';

export interface Postgres {
  /** postgres://… of a database made for this caller. */
  url: string;
  /** Another fresh database on the same server (for tests that need two). */
  newDatabase(): Promise<string>;
  close(): Promise<void>;
}

/** Debian's server binaries, newest version first. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  for (const v of readdirSync(root).sort((a, b) => Number(b) - Number(a))) {
    const bin = join(root, v, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return undefined;
}

/** Why PostgreSQL cannot be had here (for t.skip), or undefined when it can. */
export function postgresUnavailable(): string | undefined {
  if (process.env.MINEWATCH_TEST_PG_URL) return undefined;
  if (!postgresBin()) return 'PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb) and MINEWATCH_TEST_PG_URL is not set: apt-get install postgresql (or run .ci/run, which starts one)';
  if (userInfo().uid === 0 && spawnSync('id', ['-u', 'postgres']).status !== 0) return 'running as root and there is no postgres user to run initdb as: apt-get install postgresql makes it';
  return undefined;
}

async function createDatabase(adminUrl: string): Promise<string> {
  const name = `mw_test_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function dropDatabases(adminUrl: string, urls: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect().catch(() => undefined);
  try {
    for (const u of urls) await c.query(`DROP DATABASE IF EXISTS ${new URL(u).pathname.slice(1)} WITH (FORCE)`).catch(() => undefined);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function startPostgres(): Promise<Postgres> {
  const env = process.env.MINEWATCH_TEST_PG_URL;
  const made: string[] = [];
  const fresh = async (admin: string) => {
    const u = await createDatabase(admin);
    made.push(u);
    return u;
  };
  if (env) {
    const url = await fresh(env);
    return { url, newDatabase: () => fresh(env), close: () => dropDatabases(env, made) };
  }
  const why = postgresUnavailable();
  if (why) throw new Error(why);
  const bin = postgresBin()!;
  const dir = mkdtempSync(join(tmpdir(), 'mw-pg-'));
  const asRoot = userInfo().uid === 0;
  const user = asRoot ? 'postgres' : userInfo().username;
  if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  const run = (cmd: string, args: string[]) => {
    const full = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] as const : [cmd, args] as const;
    const r = spawnSync(full[0], full[1], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  };
  const port = await freePort();
  const data = join(dir, 'data');
  run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', user, '--no-sync', '-E', 'UTF8']);
  run(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`, 'start']);
  await waitForPort('127.0.0.1', port, 15_000);
  const admin = `postgres://${user}@127.0.0.1:${port}/postgres`;
  const url = await fresh(admin);
  return {
    url,
    newDatabase: () => fresh(admin),
    close: async () => {
      try {
        run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
