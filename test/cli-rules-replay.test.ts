/**
 * `minewatch rules validate --json` in the shape of Falco's `-V` JSON, and `minewatch replay` of
 * files with no readable event: real processes, real files, exit codes and output.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, scratchDir } from './helpers/cli.js';
import { FALCO_CORPUS } from './helpers/paths.js';

const { dir, file } = scratchDir('mw-fl-cli-');

const RULES = file('rules.yaml', `
- macro: spawned
  condition: evt.type = execve
- rule: Miner started
  desc: d
  condition: spawned and proc.name = xmrig
  output: miner %proc.name
  priority: CRITICAL
`);

test('rules validate --json: one Falco load result per file, each compiled with the files before it', () => {
  const second = file('second.yaml', `
- macro: unused_here
  condition: proc.name = a
- rule: Uses later macro
  desc: d
  condition: evt.type = execve and not_yet
  output: o
  priority: INFO
`);
  const r = runCli(['rules', 'validate', '--json', RULES, second]);
  assert.equal(r.code, 1, r.err);
  const doc = JSON.parse(r.out);
  assert.deepEqual(Object.keys(doc), ['falco_load_results']);
  const [a, b] = doc.falco_load_results;
  assert.deepEqual([a.name, a.successful, a.errors, a.warnings], [RULES, true, [], []]);
  assert.equal(b.name, second);
  assert.equal(b.successful, false);
  assert.deepEqual(Object.keys(b.errors[0]).sort(), ['code', 'codedesc', 'context', 'message']);
  assert.equal(b.errors[0].code, 'LOAD_ERR_VALIDATE');
  assert.equal(b.errors[0].codedesc, 'Error validating rule/macro/list/exception objects');
  assert.deepEqual(b.errors[0].context.locations.map((l: { item_type: string; item_name: string }) => [l.item_type, l.item_name]),
    [['rules content', ''], ['rule', 'Uses later macro'], ['condition expression', '']]);
  const at = b.errors[0].context.locations.at(-1).position;
  assert.deepEqual([at.name, at.line, at.column], [second, 5, 35]);
  // A compile that fails stops before the unused-macro check, as Falco's does: no warning for unused_here.
  assert.deepEqual(b.warnings, []);
});

test("rules validate --json on Falco's five files in order: each successful, with no warning (as their own CI requires of falco -V)", () => {
  const files = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml', 'k8s_audit_rules.yaml', 'github.yaml'].map((f) => FALCO_CORPUS + f);
  const r = runCli(['rules', 'validate', '--json', ...files]);
  assert.equal(r.code, 0, r.err);
  const results = JSON.parse(r.out).falco_load_results;
  assert.deepEqual(results.map((x: { name: string; successful: boolean; errors: unknown[]; warnings: unknown[] }) => [x.name, x.successful, x.errors.length, x.warnings.length]),
    files.map((f) => [f, true, 0, 0]));
});

test('rules validate --json: a file that cannot be read is LOAD_ERR_FILE_READ', () => {
  const r = runCli(['rules', 'validate', '--json', join(dir, 'nope.yaml')]);
  assert.equal(r.code, 1);
  const [res] = JSON.parse(r.out).falco_load_results;
  assert.deepEqual([res.successful, res.errors[0].code], [false, 'LOAD_ERR_FILE_READ']);
});

test('replay of a file with no readable event exits 1 and says why', () => {
  const garbage = file('garbage.jsonl', '{ not json\nalso not json\n');
  const r = runCli(['replay', garbage, '--rules', RULES]);
  assert.equal(r.code, 1);
  assert.match(r.err, /garbage\.jsonl:1: not valid JSON/);
  assert.match(r.err, /garbage\.jsonl: nothing replayed: none of its 2 line\(s\) is an event/);
  const empty = file('empty.jsonl', '\n# only a comment\n');
  const e = runCli(['replay', empty, '--rules', RULES]);
  assert.equal(e.code, 1);
  assert.match(e.err, /empty\.jsonl: nothing replayed: it holds no event/);
  const audit = runCli(['replay', '--source', 'k8s_audit', garbage]);
  assert.equal(audit.code, 1);
  assert.match(audit.err, /nothing replayed: .*Expected a Kubernetes audit log/);
});

test('replay of a file with some bad lines goes on, reports them, exits 0', () => {
  const mixed = file('mixed.jsonl', [
    '{ not json',
    JSON.stringify({ source: 'syscall', type: 'execve', ts: '1764100000000000000', proc: { pid: 7, name: 'xmrig' } }),
  ].join('\n'));
  const r = runCli(['replay', mixed, '--rules', RULES]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Critical miner xmrig/);
  assert.match(r.err, /mixed\.jsonl:1: not valid JSON/);
  assert.match(r.err, /replayed 1 events .*1 bad line\(s\) skipped/);
  // Readable events all of another source: nothing to alert on, but the file was read (exit 0).
  const other = runCli(['replay', mixed, '--rules', RULES, '--source', 'github']);
  assert.equal(other.code, 0, other.err);
  assert.match(other.err, /replayed 0 events/);
});
