/**
 * `minewatch replay-live`: a recording played as a live agent plays it, through the same event
 * pipeline `run` composes (src/app/compose.ts) — the enrich stage names the socket's peer from the
 * config's DNS table, so a rule reading fd.sip.name fires only when the events went through it —
 * then the alert pipeline and its SQLite store. Real processes and files.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { runCli, scratchDir } from './helpers/cli.js';
import { ROOT } from './helpers/paths.js';

const { dir, file } = scratchDir('mw-rl-cli-');
const SAMPLE = join(ROOT, 'samples/miner-activity.jsonl');

const RULES = file('rules.yaml', `
- rule: Payload host contacted
  desc: a connection to the host the payload came from, known by name only through the DNS table
  condition: evt.type = connect and fd.sip.name = "payload.example.test"
  output: payload host contacted (proc.name=%proc.name fd.sip.name=%fd.sip.name)
  priority: WARNING
`);

test('replay-live runs the events through run\'s event pipeline (enrich → rules) into the store, each pass in fresh containers', () => {
  const store = join(dir, 'alerts.db');
  const config = file('config.yaml', JSON.stringify({
    rules_files: [RULES],
    sources: { dns: { hosts_files: [], static: { 'payload.example.test': '203.0.113.50' } } },
    outputs: { stdout: { enabled: false } },
    alerts: { store: { path: store }, throttle: { window_s: 0 } },
  }));
  const r = runCli(['replay-live', SAMPLE, '-c', config, '--rate', '2000', '--passes', '2', '--drain-timeout', '5', '--json'], undefined, { MINEWATCH_STATE_DIR: join(dir, 'state') });
  assert.equal(r.code, 0, r.err);
  const summary = JSON.parse(r.out.trim().split('\n').pop()!) as { events: number; matches: number; groups: number; pipeline: { processed: number; queueDrops: number } };
  assert.equal(summary.events, 18, 'the 9 events of the sample, twice');
  assert.deepEqual(summary.pipeline, { processed: 18, queueDrops: 0 }, 'every event went through the event pipeline');
  assert.equal(summary.matches, 2, 'the rule fired once a pass: the enrich stage named 203.0.113.50');
  assert.equal(summary.groups, 2);
  const db = new Database(store, { readonly: true });
  const rows = db.prepare('SELECT output, container_id FROM alerts ORDER BY id').all() as { output: string; container_id: string }[];
  db.close();
  assert.equal(rows.length, 2);
  for (const row of rows) assert.match(row.output, /fd\.sip\.name=payload\.example\.test/);
  assert.notEqual(rows[0]!.container_id, rows[1]!.container_id, 'the second pass plays in another container');
});

test('replay-live: --help names its flags; a bad --rate is refused with the flag at fault', () => {
  const help = runCli(['replay-live', '--help']);
  assert.equal(help.code, 0);
  for (const flag of ['--rate', '--passes', '--duration', '--drain-timeout', '--json']) assert.ok(help.out.includes(flag), flag);
  const bad = runCli(['replay-live', SAMPLE, '--rate', 'fast']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--rate: expected a positive number, got 'fast'/);
});
