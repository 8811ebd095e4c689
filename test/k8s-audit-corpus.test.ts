/**
 * Falco's k8s_audit_rules.yaml as published loads with zero errors and warnings, and the recorded
 * audit events fire the rules Falco fires for them: worked out from the rule conditions (kevt is
 * stage ResponseComplete, kevt_started ResponseStarted; the namespace "foo" is not in
 * allowed_namespaces; minikube-user is an allowed user; ...). With Falco's default rule_matching
 * (first) each event gives its first matching rule in file order; with `all`, every one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { DEFAULT_RULES_FILES, Engine } from '../src/engine/index.js';
import { readAuditFile } from '../src/sources/k8s-audit-log.js';
import { CLI, FALCO_CORPUS, K8S_AUDIT_CORPUS } from './helpers/paths.js';

const RULES = FALCO_CORPUS + 'k8s_audit_rules.yaml';

const EXPECTED: Record<string, { first: string[]; all: string[] }> = {
  'anonymous_creates_namespace_foo.json': {
    first: ['Anonymous Request Allowed'],
    all: ['Anonymous Request Allowed', 'Create Disallowed Namespace', 'K8s Namespace Created'],
  },
  'create_deployment.json': { first: ['K8s Deployment Created'], all: ['K8s Deployment Created'] },
  'create_nginx_pod_privileged.json': { first: ['Create Privileged Pod'], all: ['Create Privileged Pod'] },
  'exec_pod.json': { first: ['Attach/Exec Pod'], all: ['Attach/Exec Pod'] },
};

async function rulesFired(engine: Engine, file: string): Promise<string[]> {
  const out: string[] = [];
  for await (const ev of readAuditFile(K8S_AUDIT_CORPUS + file, (e) => assert.fail(e.message))) out.push(...engine.process(ev).map((m) => m.rule));
  return out;
}

test('k8s_audit_rules.yaml loads with zero errors and zero warnings, every rule enabled and compiled', () => {
  const engine = Engine.fromFiles([RULES]);
  assert.deepEqual(engine.warnings, []);
  const text = readFileSync(RULES, 'utf8');
  const declared = (text.match(/^- rule: /gm) ?? []).length;
  assert.equal(engine.ruleset.rules.length, declared);
  assert.equal(engine.active.length, declared);
  assert.ok(engine.active.every((r) => r.def.source === 'k8s_audit'));
});

test('each recorded event fires the rules Falco fires for it (rule_matching first and all)', async () => {
  const first = Engine.fromFiles([RULES], { ruleMatching: 'first' });
  const all = Engine.fromFiles([RULES], { ruleMatching: 'all' });
  for (const [file, exp] of Object.entries(EXPECTED)) {
    assert.deepEqual(await rulesFired(first, file), exp.first, `${file} (first)`);
    assert.deepEqual((await rulesFired(all, file)).sort(), [...exp.all].sort(), `${file} (all)`);
  }
});

test("Falco's rules load together with minewatch's defaults, and ours stay quiet on the recorded events", async () => {
  const engine = Engine.fromFiles([RULES, ...DEFAULT_RULES_FILES], { ruleMatching: 'all' });
  assert.deepEqual(engine.warnings, []);
  for (const [file, exp] of Object.entries(EXPECTED)) assert.deepEqual((await rulesFired(engine, file)).sort(), [...exp.all].sort(), file);
});

test('minewatch replay --source k8s_audit takes several --rules in order and prints Falco alerts', () => {
  const r = spawnSync(process.execPath, [CLI, 'replay', '--source', 'k8s_audit', '--json', '-r', RULES, '-r', 'default', K8S_AUDIT_CORPUS + 'create_nginx_pod_privileged.json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const alerts = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0].rule, 'Create Privileged Pod');
  assert.equal(alerts[0].priority, 'Warning');
  assert.equal(alerts[0].source, 'k8s_audit');
  assert.equal(alerts[0].output_fields['ka.user.name'], 'system:serviceaccount:kube-system:replicaset-controller');
  assert.match(r.stderr, /replayed 1 events .*1 × Create Privileged Pod/);

  // An overriding file after Falco's: the later file wins, so the order of --rules matters.
  const override = '- macro: user_known_exec_pod_activities\n  condition: (ka.user.name = minikube-user)\n  override:\n    condition: replace\n';
  const dir = mkdtempSync(`${tmpdir()}/mw-k8s-replay-`);
  const f = `${dir}/override.yaml`;
  writeFileSync(f, override);
  const quiet = spawnSync(process.execPath, [CLI, 'replay', '--source', 'k8s_audit', '-r', RULES, '-r', f, K8S_AUDIT_CORPUS + 'exec_pod.json'], { encoding: 'utf8' });
  assert.equal(quiet.status, 0, quiet.stderr);
  assert.equal(quiet.stdout, '');
  const wrongOrder = spawnSync(process.execPath, [CLI, 'replay', '--source', 'k8s_audit', '-r', f, '-r', RULES, K8S_AUDIT_CORPUS + 'exec_pod.json'], { encoding: 'utf8' });
  // As in Falco, `override: replace` of a macro not yet defined defines it; Falco's file, read
  // after it, defines it again, so its own condition wins and the exec alert is back.
  assert.equal(wrongOrder.status, 0, wrongOrder.stderr);
  assert.match(wrongOrder.stdout, /Attach\/Exec to pod/);
  rmSync(dir, { recursive: true, force: true });
});

test('replay reports a bad audit line with its file:line and goes on', () => {
  const lines = [readFileSync(K8S_AUDIT_CORPUS + 'exec_pod.json', 'utf8').trim(), '{not json', '{"kind":"Pod"}', readFileSync(K8S_AUDIT_CORPUS + 'create_deployment.json', 'utf8').trim()].join('\n');
  const r = spawnSync(process.execPath, [CLI, 'replay', '--source', 'k8s_audit', '-r', RULES, '-'], { encoding: 'utf8', input: lines });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /-:2: not valid JSON/);
  assert.match(r.stderr, /-:3: not an audit Event or EventList/);
  assert.match(r.stderr, /replayed 2 events .*2 alert\(s\).*2 bad line\(s\) skipped/);
});
