/**
 * The cluster listing behind `minewatch k8s scan`, against the stand-in API server: the exact list
 * requests (paged with continue), objects handed on with kind and apiVersion, owned pods and
 * CronJob Jobs left out, namespaces with their ResourceQuota/LimitRange presence, a 403 reported
 * with the rule to grant and not asked again, and a flaky resource retried a bounded number of times.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { K8sClient } from '../src/k8s-api/client.js';
import { listClusterWorkloads } from '../src/k8s/workloads.js';
import { CLI } from './helpers/paths.js';
import { K8sApiStandin, listObject, podObject, requestLine, sendForbidden, sendJson, sendStatus, workloadObject } from './helpers/k8s-api-standin.js';

const ns = (name: string) => ({ metadata: { name, uid: `ns-${name}`, resourceVersion: '1' }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
const strip = (o: Record<string, unknown>) => {
  const { kind: _k, apiVersion: _a, ...rest } = o;
  return rest;
};

function scriptCluster(s: K8sApiStandin): void {
  const RS = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-6b7f', uid: 'rs-1' };
  const CJ = { apiVersion: 'batch/v1', kind: 'CronJob', name: 'nightly', uid: 'cj-1' };
  s.on('GET', '/api/v1/namespaces', (_r, res) => sendJson(res, 200, listObject('NamespaceList', 'v1', '10', [ns('default'), ns('shop'), ns('kube-system')])));
  s.on('GET', '/api/v1/resourcequotas', (_r, res) => sendJson(res, 200, listObject('ResourceQuotaList', 'v1', '10', [{ metadata: { name: 'q', namespace: 'shop' }, spec: { hard: { 'requests.cpu': '4' } } }])));
  s.on('GET', '/api/v1/limitranges', (_r, res) => sendJson(res, 200, listObject('LimitRangeList', 'v1', '10', [{ metadata: { name: 'l', namespace: 'kube-system' }, spec: { limits: [{ type: 'Container' }] } }])));
  // Pods in two pages: the second asked for with the first's continue token.
  s.on('GET', '/api/v1/pods', (r, res) => {
    if (!r.query.continue) {
      return sendJson(res, 200, listObject('PodList', 'v1', '10', [
        strip(podObject({ name: 'miner', namespace: 'default', uid: 'p1', node: 'n', containers: [{ name: 'c', image: 'alpine' }] })),
        strip(podObject({ name: 'web-6b7f-abcde', namespace: 'shop', uid: 'p2', node: 'n', containers: [{ name: 'c', image: 'nginx' }], owner: RS })),
      ], 'page-2'));
    }
    const done = strip(podObject({ name: 'finished', namespace: 'default', uid: 'p3', node: 'n', containers: [{ name: 'c', image: 'busybox' }] }));
    (done.status as Record<string, unknown>).phase = 'Succeeded';
    sendJson(res, 200, listObject('PodList', 'v1', '10', [done]));
  });
  s.on('GET', '/apis/apps/v1/deployments', (_r, res) => sendJson(res, 200, listObject('DeploymentList', 'apps/v1', '10', [strip(workloadObject('apps/v1', 'Deployment', 'shop', 'web', 'd1', { replicas: 2 }))])));
  s.on('GET', '/apis/apps/v1/daemonsets', (_r, res) => sendJson(res, 200, listObject('DaemonSetList', 'apps/v1', '10', [])));
  s.on('GET', '/apis/apps/v1/statefulsets', (_r, res) => sendJson(res, 200, listObject('StatefulSetList', 'apps/v1', '10', [])));
  s.on('GET', '/apis/batch/v1/jobs', (_r, res) => sendJson(res, 200, listObject('JobList', 'batch/v1', '10', [
    strip(workloadObject('batch/v1', 'Job', 'default', 'nightly-29400120', 'j1', {}, CJ)),
    strip(workloadObject('batch/v1', 'Job', 'default', 'one-off', 'j2', {})),
  ])));
  s.on('GET', '/apis/batch/v1/cronjobs', (_r, res) => sendJson(res, 200, listObject('CronJobList', 'batch/v1', '10', [strip(workloadObject('batch/v1', 'CronJob', 'default', 'nightly', 'cj-1', { schedule: '0 0 * * *' }))])));
}

const LISTS = [
  'GET /api/v1/namespaces?limit=500',
  'GET /api/v1/resourcequotas?limit=500',
  'GET /api/v1/limitranges?limit=500',
  'GET /api/v1/pods?limit=500',
  'GET /api/v1/pods?continue=page-2&limit=500',
  'GET /apis/apps/v1/deployments?limit=500',
  'GET /apis/apps/v1/daemonsets?limit=500',
  'GET /apis/apps/v1/statefulsets?limit=500',
  'GET /apis/batch/v1/jobs?limit=500',
  'GET /apis/batch/v1/cronjobs?limit=500',
];

describe('cluster listing for k8s scan', () => {
  test('lists every resource cluster-wide, read-only, and hands on plain objects with kind and apiVersion', async () => {
    const s = await K8sApiStandin.start();
    try {
      scriptCluster(s);
      const out = await listClusterWorkloads(new K8sClient({ server: s.url, token: s.token }));
      assert.deepEqual(s.requests.map(requestLine), LISTS);
      assert.deepEqual(out.problems, []);
      const names = out.objects.map((o) => {
        const x = o as { kind: string; apiVersion: string; metadata: { name: string; namespace?: string } };
        return `${x.apiVersion} ${x.kind} ${x.metadata.namespace ? `${x.metadata.namespace}/` : ''}${x.metadata.name}`;
      });
      assert.deepEqual(names, [
        'v1 Namespace default', 'v1 Namespace shop', 'v1 Namespace kube-system',
        'v1 ResourceQuota shop/q', 'v1 LimitRange kube-system/l',
        'v1 Pod default/miner',
        'apps/v1 Deployment shop/web',
        'batch/v1 Job default/one-off',
        'batch/v1 CronJob default/nightly',
      ]);
      assert.deepEqual(out.namespaces, [
        { name: 'default', resourceQuota: false, limitRange: false },
        { name: 'shop', resourceQuota: true, limitRange: false },
        { name: 'kube-system', resourceQuota: false, limitRange: true },
      ]);
      // Plain data, as a manifest parser would give it: no class instances, timestamps as strings.
      const pod = out.objects[5] as { spec: { containers: Array<{ image: string }> }; metadata: { creationTimestamp: unknown } };
      assert.equal(Object.getPrototypeOf(pod), Object.prototype);
      assert.equal(Object.getPrototypeOf(pod.spec), Object.prototype);
      assert.equal(pod.spec.containers[0]!.image, 'alpine');
      assert.equal(pod.metadata.creationTimestamp, '2026-11-25T22:14:03.000Z');
    } finally {
      await s.close();
    }
  });

  test('a 403 is reported once with the rule to grant; the rest is still listed; a flaky list is retried a bounded number of times', async () => {
    const s = await K8sApiStandin.start();
    try {
      scriptCluster(s);
      s.on('GET', '/apis/batch/v1/cronjobs', (_r, res) => sendForbidden(res, 'list', 'cronjobs', 'batch'));
      s.on('GET', '/api/v1/limitranges', (_r, res) => sendStatus(res, 503, 'ServiceUnavailable', 'the server is currently unable to handle the request'));
      const out = await listClusterWorkloads(new K8sClient({ server: s.url, token: s.token }), { attempts: 3, retryDelayMs: 5 });
      const lines = s.requests.map(requestLine);
      assert.equal(lines.filter((l) => l.startsWith('GET /apis/batch/v1/cronjobs')).length, 1, 'a 403 is not asked again');
      assert.equal(lines.filter((l) => l.startsWith('GET /api/v1/limitranges')).length, 3, 'a 503 is retried, three attempts in all');
      assert.deepEqual(out.problems.map((p) => [p.resource, p.group, p.verb, p.status, p.rbac]), [
        ['limitranges', '', 'list', 503, '{apiGroups: [""], resources: ["limitranges"], verbs: ["list"]}'],
        ['cronjobs', 'batch', 'list', 403, '{apiGroups: ["batch"], resources: ["cronjobs"], verbs: ["list"]}'],
      ]);
      assert.match(out.problems[1]!.message, /^forbidden to list cronjobs.batch cluster-wide: grant minewatch's service account the RBAC rule \{apiGroups: \["batch"\], resources: \["cronjobs"\], verbs: \["list"\]\} in a ClusterRole/);
      assert.match(out.problems[0]!.message, /after 3 attempts/);
      assert.ok(out.objects.some((o) => (o as { kind: string }).kind === 'Deployment'), 'the other resources are listed');
      assert.ok(!out.objects.some((o) => (o as { kind: string }).kind === 'CronJob'));
      assert.deepEqual(out.namespaces.map((n) => n.limitRange), [undefined, undefined, undefined], 'unknown, not absent');
    } finally {
      await s.close();
    }
  });

  test('an unreachable API server: each resource fails after its attempts, nothing hangs', async () => {
    const s = await K8sApiStandin.start();
    const url = s.url;
    await s.close();
    const out = await listClusterWorkloads(new K8sClient({ server: url, token: 't' }), { attempts: 2, retryDelayMs: 1 });
    assert.equal(out.problems.length, 9);
    assert.ok(out.problems.every((p) => p.status === 0 && /cannot reach the API server to list/.test(p.message)), out.problems[0]?.message);
    assert.deepEqual(out.objects, []);
  });
});

describe('minewatch k8s scan against a cluster', () => {
  test('lists the cluster read-only through a kubeconfig and reports namespaces without a ResourceQuota or LimitRange', async () => {
    const s = await K8sApiStandin.start();
    const dir = mkdtempSync(join(tmpdir(), 'mw-k8s-scan-cluster-'));
    try {
      scriptCluster(s);
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(kubeconfig, [
        'apiVersion: v1', 'kind: Config', 'current-context: standin',
        // The stand-in speaks plain HTTP, which the client takes only with TLS verification off.
        'clusters: [{name: standin, cluster: {server: "' + s.url + '", insecure-skip-tls-verify: true}}]',
        'users: [{name: u, user: {token: "' + s.token + '"}}]',
        'contexts: [{name: standin, context: {cluster: standin, user: u}}]', '',
      ].join('\n'));
      const child = spawn(process.execPath, [CLI, 'k8s', 'scan', '--kubeconfig', kubeconfig, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const code = await new Promise<number | null>((r) => child.on('exit', r));
      assert.equal(code, 1, err);
      const report = JSON.parse(out) as { findings: { rule: string; name: string }[] };
      const about = (rule: string) => report.findings.filter((f) => f.rule === rule).map((f) => f.name).sort();
      assert.deepEqual(about('Namespace Without ResourceQuota'), ['default', 'kube-system']);
      assert.deepEqual(about('Namespace Without LimitRange'), ['default', 'shop']);
      assert.ok(s.requests.every((r) => r.method === 'GET'), 'the scan changes nothing');
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
