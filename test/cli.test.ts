/** The `minewatch` command as a user runs it: real processes, real files, exit codes and output. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, scratchDir } from './helpers/cli.js';
import { FALCO_CORPUS } from './helpers/paths.js';

const { dir, file } = scratchDir('minewatch-cli-');

const GOOD = file('good.yaml', `
- list: miners
  items: [xmrig, minerd]
- rule: Miner started
  desc: a known miner binary starts
  condition: evt.type = execve and proc.name in (miners)
  output: miner %proc.name started (cmd=%proc.cmdline container=%container.id)
  priority: CRITICAL
  tags: [mining]
`);

test('rules validate: Ok per file, exit 0', () => {
  const r = runCli(['rules', 'validate', GOOD]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `${GOOD}: Ok (1 rules, 0 macros, 1 lists)\n`);
});

test('rules validate: an error names file:line:col, shows the line, exits 1', () => {
  const bad = file('bad.yaml', `- rule: Bad
  desc: d
  output: o
  priority: INFO
  condition: >
    evt.type = execve
    and proc.name = "unterminated
`);
  const r = runCli(['rules', 'validate', bad]);
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`^${bad.replace(/[.]/g, '\\.')}:7:21: error \\(Bad\\): unterminated string: no closing "`, 'm'));
  assert.match(r.err, /\n {8}and proc\.name = "unterminated\n {24}\^\n/);
  assert.match(r.err, /1 error\(s\): the rules were not loaded/);
  const j = runCli(['rules', 'validate', '--json', bad]);
  assert.equal(j.code, 1);
  // Falco's -V JSON: one result per file, positions 0-based as yaml-cpp marks are.
  const [res] = JSON.parse(j.out).falco_load_results;
  assert.equal(res.name, bad);
  assert.equal(res.successful, false);
  assert.equal(res.errors[0].code, 'LOAD_ERR_COMPILE_CONDITION');
  const at = res.errors[0].context.locations.at(-1).position;
  assert.deepEqual({ line: at.line, column: at.column }, { line: 6, column: 20 });
  assert.equal(res.errors[0].context.snippet, '    and proc.name = "unterminated\n                    ^\n');
});

test('rules validate: Falco\'s three files in order, then ours ("default")', () => {
  const files = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'].map((f) => FALCO_CORPUS + f);
  const r = runCli(['rules', 'validate', '-q', ...files]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.split('\n').filter((l) => l.endsWith(')') && l.includes(': Ok (')).length, 3);
});

test('rules list --json gives name, source, priority, enabled, tags', () => {
  const r = runCli(['rules', 'list', '--rules', GOOD, '--json']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), [{ name: 'Miner started', source: 'syscall', priority: 'CRITICAL', enabled: true, tags: ['mining'] }]);
});

test('fields --json lists the catalog with types; unknown source exits 1', () => {
  const r = runCli(['fields', '--source', 'syscall', '--json']);
  assert.equal(r.code, 0, r.err);
  const fields = JSON.parse(r.out) as { name: string; type: string }[];
  assert.equal(fields.find((f) => f.name === 'proc.name')?.type, 'charbuf');
  assert.equal(fields.find((f) => f.name === 'fd.net')?.type, 'ipnet');
  assert.ok(fields.some((f) => f.name.startsWith('mw.wallet.')));
  const bad = runCli(['fields', '--source', 'nope']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /unknown source 'nope'/);
});

test('version --json names the engine version and the built-in plugins (container, k8saudit, json)', () => {
  const r = runCli(['version', '--json']);
  assert.equal(r.code, 0, r.err);
  const v = JSON.parse(r.out);
  assert.equal(v.engine_version, '0.57.0');
  assert.deepEqual(v.plugins.map((p: { name: string; version: string }) => `${p.name} ${p.version}`), ['container 0.4.0', 'k8saudit 0.18.0', 'json 0.7.0', 'github 0.10.0']);
});

test('replay --json prints Falco JSON alerts; a bad line is reported with file:line and skipped', () => {
  const events = file('events.jsonl', [
    JSON.stringify({ source: 'syscall', type: 'execve', ts: '1764100000123456789', proc: { pid: 7, name: 'xmrig', args: ['-o', 'x'] }, container: { id: 'abc123abc123' } }),
    '{ not json',
    JSON.stringify({ source: 'syscall', type: 'execve', ts: '1764100000200000000', proc: { pid: 8, name: 'bash', args: [] } }),
    '',
  ].join('\n'));
  // The text time is local time, as Falco prints it: UTC here (TZ=UTC) so the line is known.
  const r = runCli(['replay', events, '--rules', GOOD, '--json'], undefined, { TZ: 'UTC' });
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  assert.equal(lines.length, 1);
  const alert = JSON.parse(lines[0]!);
  assert.deepEqual(Object.keys(alert), ['hostname', 'output', 'output_fields', 'priority', 'rule', 'source', 'tags', 'time']);
  assert.equal(alert.rule, 'Miner started');
  assert.equal(alert.priority, 'Critical');
  assert.equal(alert.time, '2025-11-25T19:46:40.123456789Z');
  // Falco's default append_output: the container plugin's suggested fields (container.id is printed already).
  assert.equal(alert.output, '19:46:40.123456789: Critical miner xmrig started (cmd=xmrig -o x container=abc123abc123) ' +
    'container_name=<NA> container_image_repository=<NA> container_image_tag=<NA> k8s_pod_name=<NA> k8s_ns_name=<NA>');
  assert.deepEqual(Object.keys(alert.output_fields), [
    'container.id', 'container.image.repository', 'container.image.tag', 'container.name', 'evt.time', 'k8s.ns.name', 'k8s.pod.name', 'proc.cmdline', 'proc.name',
  ]);
  assert.equal(alert.output_fields['proc.cmdline'], 'xmrig -o x');
  // evt.time is the event time in ns, every digit of it (past what a JSON reader's double keeps).
  assert.match(lines[0]!, /"evt\.time":1764100000123456789,/);
  assert.match(r.err, new RegExp(`${events.replace(/[.]/g, '\\.')}:2: not valid JSON`));
  assert.match(r.err, /replayed 2 events .*: 1 alert\(s\) \(1 × Miner started\), 1 bad line\(s\) skipped/);
});

test('replay reads standard input with "-"; a missing file is a clear error', () => {
  const r = runCli(['replay', '-', '--rules', GOOD], JSON.stringify({ type: 'execve', ts: '1764100000000000000', proc: { pid: 1, name: 'minerd' } }) + '\n');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^\d\d:\d\d:\d\d\.\d{9}: Critical miner minerd started/);
  const missing = runCli(['replay', join(dir, 'nope.jsonl'), '--rules', GOOD]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /nope\.jsonl:0: cannot read events file: ENOENT/);
});

test('every command has --help', () => {
  for (const cmd of [[], ['replay'], ['rules'], ['rules', 'validate'], ['rules', 'list'], ['fields'], ['version']]) {
    const r = runCli([...cmd, '--help']);
    assert.equal(r.code, 0, cmd.join(' '));
    assert.match(r.out, /^Usage: minewatch/);
  }
});
