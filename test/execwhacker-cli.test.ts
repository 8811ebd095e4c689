/** `minewatch whack test` and `minewatch whack check-config` as a user runs them: real processes, exit codes, output. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, ROOT } from './helpers/paths.js';

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'minewatch-whack-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** cryptnono's example/config.json, exactly. */
const EXAMPLE = file(
  'config.json',
  '{\n  "bannedCommandStrings": [\n    "cryptnono.banned.string1"\n  ],\n  "allowedCommandPatterns": [\n    ".*allowed\\\\s+cryptnono\\\\.banned\\\\.string1"\n  ]\n}',
);

test('whack test: a banned string kills (exit 1) and the output names the config and the string', () => {
  const r = run(['whack', 'test', '--config', EXAMPLE, '/bin/echo CRYPTNONO.banned.STRING1']);
  assert.equal(r.code, 1, r.err);
  assert.equal(
    r.out,
    "kill: banned string 'cryptnono.banned.string1' (config config) occurs as a standalone word\n" +
      '  /bin/echo CRYPTNONO.banned.STRING1\n' +
      '            ^^^^^^^^^^^^^^^^^^^^^^^^\n' +
      'note: execwhacker is off in this configuration (detectors.execwhacker.enabled is not true): the agent would not kill it\n',
  );
});

test('whack test: an allowed pattern spares (exit 0) and is named; --argv joins as shlex.join', () => {
  const r = run(['whack', 'test', '--config', EXAMPLE, '--argv', '--', '/bin/echo', 'allowed', 'cryptnono.BANNED.string1']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^spared: allowed by pattern '\.\*allowed\\s\+cryptnono\\\.banned\\\.string1' \(config config\)/);
  const j = run(['whack', 'test', '--json', '--no-default-list', '--config', EXAMPLE, '--argv', '--', 'sh', '-c', 'echo allowed cryptnono.banned.string1']);
  assert.equal(j.code, 0, 'the pattern matches from the start of "sh -c \'echo allowed…", through its leading .*');
  assert.equal(JSON.parse(j.out).spared, 'allowed');
  const x = JSON.parse(run(['whack', 'test', '--json', '--no-default-list', '--config', EXAMPLE, '--argv', '--', 'echo', 'it\'s', 'cryptnono.banned.string1']).out);
  assert.equal(x.cmdline, `echo 'it'"'"'s' cryptnono.banned.string1`);
  assert.equal(x.kill, true);
  assert.deepEqual(x.configs, ['config']);
});

test('whack test: word boundary and no match spare (exit 0); the shipped list decides without --config', () => {
  const w = run(['whack', 'test', 'make libxmrig_docs']);
  assert.equal(w.code, 0);
  assert.match(w.out, /^spared: banned string 'xmrig' \(config minewatch-default\) occurs only as part of a longer word\n/);
  const n = run(['whack', 'test', '--json', 'ls -la']);
  assert.equal(n.code, 0);
  assert.deepEqual(
    (({ kill, spared, banned }) => ({ kill, spared, banned }))(JSON.parse(n.out)),
    { kill: false, spared: 'no_match', banned: null },
  );
  const k = run(['whack', 'test', '/tmp/xmrig', '-o', 'pool.supportxmr.com:443']);
  assert.equal(k.code, 1, 'several words are one command line');
});

test('whack test: a bad config exits 2 with the file, line and key', () => {
  const bad = file('bad.yaml', 'detectors:\n  execwhacker:\n    configs:\n      x:\n        allowedCommandPatterns: ["(?<name>x)"]\n');
  const r = run(['whack', 'test', '--config', bad, 'xmrig']);
  assert.equal(r.code, 2);
  assert.match(r.err, new RegExp(`^${bad.replace(/[.]/g, '\\.')}:5:34: detectors\\.execwhacker\\.configs\\.x\\.allowedCommandPatterns\\.0: does not compile as a regular expression: unknown extension \\?< at position 0`));
});

test('whack check-config: Ok per file with a summary; errors exit 1 with file:line:col and the key path', () => {
  const values = file('values.yaml', 'image: {tag: x}\ndetectors:\n  execwhacker:\n    enabled: true\n    configs:\n      a: {bannedCommandStrings: [x, y]}\n');
  const ok = run(['whack', 'check-config', EXAMPLE, values]);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, new RegExp(`^${EXAMPLE}: Ok \\(cryptnono-config\\)\n${values}: Ok \\(chart-values\\)\nexecwhacker: on; 2 configs \\(config, a\\), 3 banned strings, 1 allowed patterns; with the shipped list: \\d+ strings; rescan every 10 s\n`));
  assert.match(ok.err, /values\.yaml:1:1: image: cryptnono's chart setting .* \(warning\)/);
  const bad = file('bad2.yaml', 'detectors:\n  execwhacker:\n    enabled: maybe\n  tcpflowkiller:\n    exempt_cidrs: [300.1.2.3/8]\n');
  const r = run(['whack', 'check-config', bad]);
  assert.equal(r.code, 1);
  assert.match(r.err, /bad2\.yaml:3:5: detectors\.execwhacker\.enabled: Invalid input: expected boolean/);
  assert.match(r.err, /bad2\.yaml:5:20: detectors\.tcpflowkiller\.exempt_cidrs\.0: not a CIDR/);
  assert.match(r.err, /2 error\(s\)/);
  const j = JSON.parse(run(['whack', 'check-config', '--json', bad]).out);
  assert.equal(j.valid, false);
  assert.deepEqual(j.errors.map((e: { path: string; line: number }) => [e.path, e.line]), [['detectors.execwhacker.enabled', 3], ['detectors.tcpflowkiller.exempt_cidrs.0', 5]]);
  const shipped = run(['whack', 'check-config', '--json', `${ROOT}rules/execwhacker-banned.yaml`]);
  assert.equal(shipped.code, 0);
  assert.equal(JSON.parse(shipped.out).detectors.execwhacker.enabled, false);
});

test('whack --help texts say what the exit codes mean', () => {
  const t = run(['whack', 'test', '--help']);
  assert.equal(t.code, 0);
  assert.match(t.out, /1 {2}it would kill the process/);
  assert.match(t.out, /0 {2}it would not/);
  const c = run(['whack', 'check-config', '--help']);
  assert.match(c.out, /exit 1 on any error/);
  assert.match(run(['whack', '--help']).out, /test .*\n.*check-config/s);
});
