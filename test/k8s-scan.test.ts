/**
 * `minewatch k8s scan --manifests`: the same rules as the webhooks, offline, on YAML as `helm
 * template` prints it (several documents, List kinds); namespaces without a ResourceQuota or a
 * LimitRange; table, --json and exit codes; YAML errors with file:line. And the k8s config section.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { ConfigError, defaultConfig, parseConfig } from '../src/config/load.js';
import { ManifestError, parseManifests, scanObjects } from '../src/k8s/scan.js';
import { K8S_CASES, K8S_FIXTURES } from './helpers/k8s.js';
import { CLI } from './helpers/paths.js';

const PERSISTENCE = 'K8s DaemonSet or CronJob By Unexpected User';

function run(args: string[], input?: string) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input });
}

test('scanObjects: each workload fixture gives its object rules; who created it does not count offline', () => {
  for (const c of K8S_CASES) {
    const review = c.admission ? JSON.parse(readFileSync(K8S_FIXTURES + c.admission, 'utf8')) : undefined;
    if (!review) continue;
    const obj = review.request.object;
    const rules = scanObjects([obj]).filter((f) => !f.rule.startsWith('Namespace Without')).map((f) => f.rule).sort();
    assert.deepEqual(rules, c.rules.filter((r) => r !== PERSISTENCE).sort(), c.name);
  }
});

test('scanObjects: namespaces without a ResourceQuota or a LimitRange, List kinds opened', () => {
  const nginx = JSON.parse(readFileSync(`${K8S_FIXTURES}admission/deployment-nginx-with-limits.json`, 'utf8')).request.object;
  const inShop = { ...nginx, metadata: { ...nginx.metadata, namespace: 'shop' } };
  const f = scanObjects([{ apiVersion: 'v1', kind: 'List', items: [inShop, { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: 'q', namespace: 'shop' } }] }]);
  assert.deepEqual(f.map((x) => [x.rule, x.name]), [['Namespace Without LimitRange', 'shop']]);
  assert.deepEqual(scanObjects([{ kind: 'Namespace', metadata: { name: 'empty' } }]).map((x) => x.rule), ['Namespace Without ResourceQuota', 'Namespace Without LimitRange']);
  assert.deepEqual(scanObjects([nginx, 'junk', null, 42, { kind: 'Deployment' }]).filter((x) => !x.rule.startsWith('Namespace')), []);
});

test('k8s scan --manifests: a folder of charts as a table, exit 1; --json lists every finding', () => {
  const r = run(['k8s', 'scan', '--manifests', `${K8S_FIXTURES}manifests`]);
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /^PRIORITY\s+KIND\s+NAME\s+RULE\s+WHERE$/);
  assert.ok(lines.some((l) => /^CRITICAL\s+Deployment\s+default\/xmrig\s+K8s Workload With Miner Image\s+.*miner-list\.yaml#1\.items\[0\]$/.test(l)), r.stdout);
  assert.ok(lines.some((l) => /^CRITICAL\s+Pod\s+default\/miner\s+K8s Workload Runs Miner Command\s+.*miners\.yaml#1$/.test(l)), r.stdout);

  const j = run(['k8s', 'scan', '--json', '--manifests', `${K8S_FIXTURES}manifests`]);
  assert.equal(j.status, 1);
  const out = JSON.parse(j.stdout);
  const expected = K8S_CASES.filter((c) => c.admission).flatMap((c) => c.rules.filter((x) => x !== PERSISTENCE));
  const workloadFindings = out.findings.filter((f: { kind: string }) => f.kind !== 'Namespace');
  assert.deepEqual(workloadFindings.map((f: { rule: string }) => f.rule).sort(), expected.sort());
  const nsFindings = out.findings.filter((f: { kind: string }) => f.kind === 'Namespace').map((f: { name: string }) => f.name);
  assert.deepEqual([...new Set(nsFindings)].sort(), ['batch', 'default', 'kube-system', 'prod'], 'shop has both guards');
  assert.equal(out.objects, 11 + 1 + 5);
});

test('k8s scan --manifests -: an ordinary chart from standard input passes with exit 0', () => {
  const r = run(['k8s', 'scan', '--manifests', '-'], readFileSync(`${K8S_FIXTURES}manifests/ordinary.yaml`, 'utf8'));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, 'no findings in 5 object(s)\n');
});

test('k8s scan: bad YAML names the file and line (exit 2); no --manifests says what to give', () => {
  const dir = mkdtempSync(`${tmpdir()}/mw-k8s-scan-`);
  try {
    const f = `${dir}/bad.yaml`;
    writeFileSync(f, 'apiVersion: v1\nkind: Pod\n---\nkind: Pod\nmetadata: {name: [x\n');
    const r = run(['k8s', 'scan', '--manifests', f]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`k8s scan: ${f}:\\d+:\\d+: not valid YAML`));
    assert.throws(() => parseManifests('a: [', 'x.yaml'), ManifestError);
    const missing = run(['k8s', 'scan', '--manifests', `${dir}/nope.yaml`]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot read .*nope\.yaml: ENOENT; check the path/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // No cluster anywhere (no KUBECONFIG, no service account, no ~/.kube/config): it says what to give.
  const home = mkdtempSync(`${tmpdir()}/mw-k8s-home-`);
  const none = spawnSync(process.execPath, [CLI, 'k8s', 'scan'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home } });
  rmSync(home, { recursive: true, force: true });
  assert.equal(none.status, 2);
  assert.match(none.stderr, /no cluster to scan: give --kubeconfig PATH .*--manifests PATH\|-/);
  assert.match(run(['k8s', 'scan', '--help']).stdout, /--manifests <path>/);
});

test('config: the k8s section has defaults, takes its keys and refuses wrong ones with their path', () => {
  const api = { kubeconfig: '', node_name: '', enrich: { enabled: 'auto', resync_interval_s: 300 } };
  assert.deepEqual(defaultConfig().k8s, {
    audit: { enabled: false, max_body_bytes: 12 * 1024 * 1024 },
    admission: { enabled: false, mode: 'dryrun', allow_unauthenticated: false, client_names: [], max_body_bytes: 3 * 1024 * 1024, max_in_flight_per_client: 16 },
    api,
  });
  const { config } = parseConfig('k8s:\n  audit:\n    enabled: true\n    token_file: /run/secrets/audit-token\n    log_path: /var/log/kube-audit.log\n  admission:\n    enabled: true\n    mode: enforce\n', 'c.yaml');
  assert.deepEqual(config.k8s, {
    audit: { enabled: true, token_file: '/run/secrets/audit-token', log_path: '/var/log/kube-audit.log', max_body_bytes: 12 * 1024 * 1024 },
    admission: { enabled: true, mode: 'enforce', allow_unauthenticated: false, client_names: [], max_body_bytes: 3 * 1024 * 1024, max_in_flight_per_client: 16 },
    api,
  });
  for (const [text, where] of [
    ['k8s:\n  admission:\n    mode: block\n', /k8s\.admission\.mode/],
    ['k8s:\n  audit:\n    tokne: x\n', /k8s\.audit/],
    ['k8s:\n  audit:\n    token: a\n    token_file: /b\n', /token or token_file, not both/],
  ] as const) {
    assert.throws(() => parseConfig(text, 'c.yaml'), (e: unknown) => e instanceof ConfigError && where.test(e.message), text);
  }
});
