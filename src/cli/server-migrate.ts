/**
 * `minewatch server migrate`: apply the PostgreSQL store's schema migrations and exit (a Helm hook
 * or a deploy step runs it before the replicas; each replica also applies them at start, under the
 * same advisory lock, so running both is safe).
 */
import type { Command } from 'commander';
import type pg from 'pg';
import { clientConfig, pgLib, redactUrl } from '../alerts/pg/connect.js';
import { LATEST_VERSION, migrate, schemaVersion } from '../alerts/pg/migrations.js';
import { loadConfigWithFlags } from './common.js';

interface MigrateOpts {
  config?: string;
  url?: string;
  passwordFile?: string;
  json?: boolean;
}

export function registerServerMigrate(server: Command): void {
  server
    .command('migrate')
    .description('apply the PostgreSQL store\'s schema migrations (alerts.store.url) and exit; replicas also apply them at start')
    .option('-c, --config <file>', 'the config file whose alerts.store.url (and password_file) to use')
    .option('--url <postgres-url>', 'the database, instead of alerts.store.url (postgres://user@host:5432/database)')
    .option('--password-file <file>', 'a file holding the password, instead of alerts.store.password_file (else the URL\'s, or PGPASSWORD)')
    .option('--json', 'print the result as JSON: {"from": N, "version": N, "applied": [{"version", "name"}]}')
    .action(async (_opts: MigrateOpts, cmd: Command) => {
      // `server` has its own -c and --json: given after `migrate`, commander may hand them to it.
      process.exitCode = await runMigrate(cmd.optsWithGlobals<MigrateOpts>());
    });
}

async function runMigrate(opts: MigrateOpts): Promise<number> {
  const config = loadConfigWithFlags(opts.config, {});
  if (typeof config === 'number') return config;
  const url = opts.url ?? config.alerts.store.url;
  if (!url) {
    process.stderr.write(`minewatch server migrate: no database: set alerts.store.url in ${opts.config ?? 'the config (-c FILE)'} or pass --url postgres://user@host:5432/database\n`);
    return 2;
  }
  const say = (line: string) => (opts.json ? process.stderr : process.stdout).write(line + '\n');
  let client: pg.Client;
  try {
    client = new (pgLib().Client)(clientConfig({ url, password_file: opts.passwordFile ?? config.alerts.store.password_file }));
  } catch (e) {
    process.stderr.write(`minewatch server migrate: ${(e as Error).message}\n`);
    return 2;
  }
  try {
    await client.connect();
  } catch (e) {
    process.stderr.write(`minewatch server migrate: cannot connect to ${redactUrl(url)}: ${(e as Error).message}; check the URL, the password and that PostgreSQL accepts this host\n`);
    return 1;
  }
  try {
    const from = await schemaVersion(client);
    say(`${redactUrl(url)}: schema at version ${from}, this minewatch's is ${LATEST_VERSION}`);
    const r = await migrate(client, (m) => say(`applying ${m.version}: ${m.name}…`));
    if (opts.json) process.stdout.write(JSON.stringify({ from, version: r.version, applied: r.applied }) + '\n');
    else say(r.applied.length === 0 ? 'nothing to apply: the schema is current' : `applied ${r.applied.length}; the schema is at version ${r.version}`);
    return 0;
  } catch (e) {
    process.stderr.write(`minewatch server migrate: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await client.end().catch(() => undefined);
  }
}
