/**
 * The cluster response actions against the stand-in API server: the exact requests each makes
 * (method, path, query, body, content type), dry runs that change nothing, safety refusals that
 * send nothing, lost races and 403s as outcomes, and every outcome recorded as an alert.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { Match } from '../src/engine/types.js';
import type { SyscallEvent } from '../src/events.js';
import { K8sClient } from '../src/k8s-api/client.js';
import { ResponseDispatcher } from '../src/response/dispatcher.js';
import { DeletePodAction } from '../src/response/k8s/delete-pod.js';
import { IsolatePodAction, isolationPolicyName, selectorMatches } from '../src/response/k8s/isolate-pod.js';
import { QuarantineWorkloadAction } from '../src/response/k8s/quarantine.js';
import { SuggestRevokeAction, subjectOfUsername } from '../src/response/k8s/suggest-revoke.js';
import { AllowList } from '../src/response/safety.js';
import type { ActionRequest } from '../src/response/types.js';
import { K8sApiStandin, type RecordedRequest, listObject, podObject, requestLine, sendForbidden, sendJson, sendStatus, workloadObject } from './helpers/k8s-api-standin.js';

const NS = 'shop';
const POD_UID = '5f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
const RS = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'miner-7d4b9c8f5', uid: 'aaaa1111-2222-4333-8444-555566667777' };
const DEPLOY = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'miner', uid: 'dddd1111-2222-4333-8444-555566667777' };

function pod(owner?: { apiVersion: string; kind: string; name: string; uid: string }, name = 'miner-7d4b9c8f5-x2x9q', ns = NS) {
  return podObject({ name, namespace: ns, uid: POD_UID, node: 'node-a', labels: { app: 'miner', tier: 'batch' }, containers: [{ name: 'xmrig', image: 'metal3d/xmrig:latest', containerID: `containerd://${'c0'.repeat(32)}` }], owner, serviceAccount: 'deployer' });
}

function request(mode: 'dryrun' | 'enforce', action: ActionRequest['action'], k8s: Record<string, unknown> = {}): ActionRequest {
  return {
    action, mode, trigger: 'Detect crypto miners using the Stratum protocol',
    target: { pid: 4242, cmdline: 'xmrig -o stratum+tcp://pool.example:3333', container: { id: 'c0c0c0c0c0c0' }, k8s: { ns_name: NS, pod_name: 'miner-7d4b9c8f5-x2x9q', pod_uid: POD_UID, ...k8s } },
  };
}

const mutating = (r: RecordedRequest): boolean => r.method !== 'GET';

describe('k8s response actions', () => {
  let s: K8sApiStandin;
  let client: K8sClient;
  before(async () => {
    s = await K8sApiStandin.start();
    client = new K8sClient({ server: s.url, token: s.token });
  });
  after(() => s.close());
  let from = 0;
  beforeEach(() => {
    from = s.requests.length;
  });
  const made = (): RecordedRequest[] => s.requests.slice(from);
  const lines = (): string[] => made().map(requestLine);

  test('delete_pod: reads the pod (it must still run the process\'s container), then DELETE with gracePeriodSeconds 0 and a uid precondition', async () => {
    const offs = [
      s.on('GET', `/api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`, (_r, res) => sendJson(res, 200, pod())),
      s.on('DELETE', `/api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`, (_r, res) => sendJson(res, 200, pod())),
    ];
    const a = new DeletePodAction({ client });
    const r = await a.run(request('enforce', 'delete_pod'));
    offs.forEach((f) => f());
    assert.equal(r.outcome, 'done', r.reason);
    assert.deepEqual(lines(), [`GET /api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`, `DELETE /api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q?gracePeriodSeconds=0`]);
    assert.deepEqual(made()[1]!.body, { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid: POD_UID } });
    assert.match(r.reason ?? '', /deleted pod shop\/miner-7d4b9c8f5-x2x9q \(uid 5f1e2d3c-.*\) with grace period 0/);
  });

  test('delete_pod: dry run only reads; allow-listed and own namespaces send nothing; a replaced pod is missed; a 403 names the rule', async () => {
    const offGet = s.on('GET', `/api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`, (_r, res) => sendJson(res, 200, pod()));
    const dry = await new DeletePodAction({ client }).run(request('dryrun', 'delete_pod'));
    assert.equal(dry.outcome, 'dryrun');
    assert.match(dry.reason ?? '', /kubectl delete pod -n shop miner-7d4b9c8f5-x2x9q --grace-period=0 --force/);
    assert.deepEqual(lines(), [`GET /api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`], 'a dry run reads the pod, nothing more');
    from = s.requests.length;
    const allowed = await new DeletePodAction({ client, allow: new AllowList({ namespaces: ['sh*'] }) }).run(request('enforce', 'delete_pod'));
    assert.equal(allowed.outcome, 'spared');
    assert.match(allowed.reason ?? '', /allow-listed namespace shop/);
    const own = await new DeletePodAction({ client, selfNamespace: NS }).run(request('enforce', 'delete_pod'));
    assert.equal(own.outcome, 'spared');
    const noPod = await new DeletePodAction({ client }).run({ ...request('enforce', 'delete_pod'), target: { pid: 1, container: { id: 'host' } } });
    assert.equal(noPod.outcome, 'spared');
    assert.deepEqual(made(), [], 'no request for a dry run or a spared target');

    const off = s.on('DELETE', /\/pods\//, (_r, res) => sendStatus(res, 409, 'Conflict', `Operation cannot be fulfilled on Pod "miner-7d4b9c8f5-x2x9q": Precondition failed: UID in precondition: ${POD_UID}, UID in object meta: 11111111-0000-4000-8000-000000000000`));
    const replaced = await new DeletePodAction({ client }).run(request('enforce', 'delete_pod'));
    off();
    assert.equal(replaced.outcome, 'missed');
    const off2 = s.on('DELETE', /\/pods\//, (_r, res) => sendForbidden(res, 'delete', 'pods', '', NS));
    const denied = await new DeletePodAction({ client }).run(request('enforce', 'delete_pod'));
    off2();
    offGet();
    assert.equal(denied.outcome, 'failed');
    assert.match(denied.reason ?? '', /forbidden to delete pods in namespace shop: grant .* \{apiGroups: \[""\], resources: \["pods"\], verbs: \["delete"\]\}/);
  });

  test('cluster actions on a process match: a pod that no longer runs the process\'s container is spared, with why, and nothing is changed', async () => {
    const restarted = podObject({ name: 'miner-7d4b9c8f5-x2x9q', namespace: NS, uid: POD_UID, node: 'node-a', labels: { app: 'miner' }, containers: [{ name: 'xmrig', image: 'metal3d/xmrig:latest', containerID: `containerd://${'d1'.repeat(32)}` }] });
    const off = s.on('GET', `/api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`, (_r, res) => sendJson(res, 200, restarted));
    const outcomes = [];
    for (const a of [new DeletePodAction({ client }), new QuarantineWorkloadAction({ client }), new IsolatePodAction({ client })]) {
      outcomes.push(await a.run(request('enforce', a.name)));
    }
    off();
    for (const r of outcomes) {
      assert.equal(r.outcome, 'spared', `${r.request.action}: ${r.reason}`);
      assert.match(r.reason ?? '', /^live object no longer matches: Pod shop\/miner-7d4b9c8f5-x2x9q no longer runs container c0c0c0c0c0c0 \(the process's\); it runs d1d1d1d1d1d1/);
    }
    assert.ok(made().every((r) => r.method === 'GET'), `only reads: ${lines().join(', ')}`);
  });

  test('quarantine_workload: a Deployment (through its ReplicaSet) is annotated and scaled to 0 in one merge patch', async () => {
    const offs = [
      s.on('GET', `/api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`, (_r, res) => sendJson(res, 200, pod(RS))),
      s.on('GET', `/apis/apps/v1/namespaces/${NS}/replicasets/${RS.name}`, (_r, res) => sendJson(res, 200, workloadObject('apps/v1', 'ReplicaSet', NS, RS.name, RS.uid, { replicas: 3 }, DEPLOY))),
      s.on('GET', `/apis/apps/v1/namespaces/${NS}/deployments/miner`, (_r, res) => sendJson(res, 200, workloadObject('apps/v1', 'Deployment', NS, 'miner', DEPLOY.uid, { replicas: 3 }))),
      s.on('PATCH', `/apis/apps/v1/namespaces/${NS}/deployments/miner`, (r, res) => sendJson(res, 200, { ...workloadObject('apps/v1', 'Deployment', NS, 'miner', DEPLOY.uid, { replicas: 0 }), echo: r.body })),
    ];
    const dry = await new QuarantineWorkloadAction({ client }).run(request('dryrun', 'quarantine_workload'));
    assert.equal(dry.outcome, 'dryrun');
    assert.equal(dry.reason, 'would scale Deployment shop/miner from 3 to 0 replicas');
    assert.ok(made().every((r) => !mutating(r)), 'a dry run only reads');
    from = s.requests.length;

    const r = await new QuarantineWorkloadAction({ client }).run(request('enforce', 'quarantine_workload'));
    offs.forEach((f) => f());
    assert.equal(r.outcome, 'done', r.reason);
    assert.equal(r.reason, 'scaled Deployment shop/miner from 3 to 0 replicas');
    assert.deepEqual(lines(), [
      `GET /api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`,
      `GET /apis/apps/v1/namespaces/${NS}/replicasets/${RS.name}`,
      `GET /apis/apps/v1/namespaces/${NS}/deployments/miner`,
      `PATCH /apis/apps/v1/namespaces/${NS}/deployments/miner`,
    ]);
    const patch = made()[3]!;
    assert.equal(patch.contentType, 'application/merge-patch+json');
    const body = patch.body as { metadata: { uid: string; annotations: Record<string, string> }; spec: unknown };
    assert.deepEqual(body.spec, { replicas: 0 });
    assert.equal(body.metadata.uid, DEPLOY.uid);
    const ann = body.metadata.annotations;
    assert.deepEqual(Object.keys(ann).sort(), ['minewatch.io/quarantine-reason', 'minewatch.io/quarantine-undo', 'minewatch.io/quarantined-at', 'minewatch.io/replicas-before']);
    assert.equal(ann['minewatch.io/replicas-before'], '3');
    assert.match(ann['minewatch.io/quarantine-undo']!, /^kubectl scale deployment\/miner -n shop --replicas=3 && kubectl annotate deployment\/miner -n shop minewatch.io\/quarantined-at- /);
    assert.equal(ann['minewatch.io/quarantine-reason'], 'minewatch Detect crypto miners using the Stratum protocol: pod shop/miner-7d4b9c8f5-x2x9q ran xmrig -o stratum+tcp://pool.example:3333');
    assert.ok(!Number.isNaN(Date.parse(ann['minewatch.io/quarantined-at']!)));
    assert.equal(r.request.details?.owner, 'Deployment/miner');
  });

  test('quarantine_workload: a CronJob is suspended and its running Job deleted', async () => {
    const CJ = { apiVersion: 'batch/v1', kind: 'CronJob', name: 'backup', uid: 'cccc1111-2222-4333-8444-555566667777' };
    const JOB = { apiVersion: 'batch/v1', kind: 'Job', name: 'backup-29400120', uid: 'jjjj1111-2222-4333-8444-555566667777' };
    const offs = [
      s.on('GET', `/api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`, (_r, res) => sendJson(res, 200, pod(JOB))),
      s.on('GET', `/apis/batch/v1/namespaces/${NS}/jobs/${JOB.name}`, (_r, res) => sendJson(res, 200, workloadObject('batch/v1', 'Job', NS, JOB.name, JOB.uid, {}, CJ))),
      s.on('GET', `/apis/batch/v1/namespaces/${NS}/cronjobs/backup`, (_r, res) => sendJson(res, 200, workloadObject('batch/v1', 'CronJob', NS, 'backup', CJ.uid, { schedule: '*/5 * * * *', suspend: false }))),
      s.on('PATCH', `/apis/batch/v1/namespaces/${NS}/cronjobs/backup`, (_r, res) => sendJson(res, 200, workloadObject('batch/v1', 'CronJob', NS, 'backup', CJ.uid, { suspend: true }))),
      s.on('DELETE', `/apis/batch/v1/namespaces/${NS}/jobs/${JOB.name}`, (_r, res) => sendJson(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success' })),
    ];
    const r = await new QuarantineWorkloadAction({ client }).run(request('enforce', 'quarantine_workload'));
    offs.forEach((f) => f());
    assert.equal(r.outcome, 'done', r.reason);
    assert.equal(r.reason, 'suspended CronJob shop/backup and deleted its running Job backup-29400120');
    assert.deepEqual(lines().slice(3), [`PATCH /apis/batch/v1/namespaces/${NS}/cronjobs/backup`, `DELETE /apis/batch/v1/namespaces/${NS}/jobs/${JOB.name}?propagationPolicy=Background`]);
    const body = made()[3]!.body as { spec: unknown; metadata: { annotations: Record<string, string> } };
    assert.deepEqual(body.spec, { suspend: true });
    assert.match(body.metadata.annotations['minewatch.io/quarantine-undo']!, /kubectl patch cronjob\/backup -n shop --type=merge -p '\{"spec":\{"suspend":false\}\}'/);
  });

  test('quarantine_workload: a DaemonSet is annotated, then deleted, its manifest kept in the alert', async () => {
    const DS = { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'node-agent', uid: 'eeee1111-2222-4333-8444-555566667777' };
    const spec = { selector: { matchLabels: { app: 'miner' } }, template: { metadata: { labels: { app: 'miner' } }, spec: { containers: [{ name: 'x', image: 'metal3d/xmrig' }] } } };
    const offs = [
      s.on('GET', `/api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`, (_r, res) => sendJson(res, 200, pod(DS))),
      s.on('GET', `/apis/apps/v1/namespaces/${NS}/daemonsets/node-agent`, (_r, res) => sendJson(res, 200, workloadObject('apps/v1', 'DaemonSet', NS, 'node-agent', DS.uid, spec))),
      s.on('PATCH', `/apis/apps/v1/namespaces/${NS}/daemonsets/node-agent`, (_r, res) => sendJson(res, 200, workloadObject('apps/v1', 'DaemonSet', NS, 'node-agent', DS.uid, spec))),
      s.on('DELETE', `/apis/apps/v1/namespaces/${NS}/daemonsets/node-agent`, (_r, res) => sendJson(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success' })),
    ];
    const r = await new QuarantineWorkloadAction({ client }).run(request('enforce', 'quarantine_workload'));
    offs.forEach((f) => f());
    assert.equal(r.outcome, 'done', r.reason);
    assert.deepEqual(lines(), [
      `GET /api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`,
      `GET /apis/apps/v1/namespaces/${NS}/daemonsets/node-agent`,
      `PATCH /apis/apps/v1/namespaces/${NS}/daemonsets/node-agent`,
      `DELETE /apis/apps/v1/namespaces/${NS}/daemonsets/node-agent?propagationPolicy=Background`,
    ]);
    assert.equal((made()[2]!.body as { spec?: unknown }).spec, undefined, 'annotations only, before the delete');
    const manifest = JSON.parse(String(r.request.details?.manifest));
    assert.deepEqual(manifest, { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'node-agent', namespace: NS, annotations: {} }, spec });
  });

  test('quarantine_workload: protected namespaces and bare pods are left alone; a StatefulSet that answers 403 on patch fails with the rule', async () => {
    const sys = await new QuarantineWorkloadAction({ client }).run(request('enforce', 'quarantine_workload', { ns_name: 'kube-system' }));
    assert.equal(sys.outcome, 'spared');
    assert.match(sys.reason ?? '', /namespace kube-system is protected/);
    assert.deepEqual(made(), []);

    const off = s.on('GET', `/api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`, (_r, res) => sendJson(res, 200, pod()));
    const bare = await new QuarantineWorkloadAction({ client }).run(request('enforce', 'quarantine_workload'));
    off();
    assert.equal(bare.outcome, 'spared');
    assert.match(bare.reason ?? '', /has no controller/);

    const STS = { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'ssss1111-2222-4333-8444-555566667777' };
    const offs = [
      s.on('GET', `/api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`, (_r, res) => sendJson(res, 200, pod(STS))),
      s.on('GET', `/apis/apps/v1/namespaces/${NS}/statefulsets/db`, (_r, res) => sendJson(res, 200, workloadObject('apps/v1', 'StatefulSet', NS, 'db', STS.uid, { replicas: 2 }))),
      s.on('PATCH', `/apis/apps/v1/namespaces/${NS}/statefulsets/db`, (_r, res) => sendForbidden(res, 'patch', 'statefulsets', 'apps', NS)),
    ];
    const denied = await new QuarantineWorkloadAction({ client }).run(request('enforce', 'quarantine_workload'));
    offs.forEach((f) => f());
    assert.equal(denied.outcome, 'failed');
    assert.match(denied.reason ?? '', /forbidden to patch statefulsets.apps in namespace shop: grant .*\{apiGroups: \["apps"\], resources: \["statefulsets"\], verbs: \["patch"\]\}/);
  });

  test('isolate_pod: a deny-all-egress NetworkPolicy on the pod labels, with a warning about a policy that still allows egress', async () => {
    const allowDns = { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', metadata: { name: 'allow-egress', namespace: NS }, spec: { podSelector: { matchLabels: { app: 'miner' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] } };
    const other = { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', metadata: { name: 'web-only', namespace: NS }, spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Egress'], egress: [{}] } };
    const ingressOnly = { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', metadata: { name: 'ingress', namespace: NS }, spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{}] } };
    const offs = [
      s.on('GET', `/api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`, (_r, res) => sendJson(res, 200, pod(RS))),
      s.on('GET', `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`, (_r, res) => sendJson(res, 200, listObject('NetworkPolicyList', 'networking.k8s.io/v1', '77', [allowDns, other, ingressOnly]))),
      s.on('POST', `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`, (r, res) => sendJson(res, 201, r.body)),
    ];
    const dry = await new IsolatePodAction({ client }).run(request('dryrun', 'isolate_pod'));
    assert.equal(dry.outcome, 'dryrun');
    assert.ok(made().every((r) => !mutating(r)));
    from = s.requests.length;
    const r = await new IsolatePodAction({ client }).run(request('enforce', 'isolate_pod'));
    offs.forEach((f) => f());
    assert.equal(r.outcome, 'done', r.reason);
    assert.deepEqual(lines(), [
      `GET /api/v1/namespaces/${NS}/pods/miner-7d4b9c8f5-x2x9q`,
      `GET /apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`,
      `POST /apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`,
    ]);
    const body = made()[2]!.body as { metadata: { name: string; namespace: string; labels: Record<string, string>; annotations: Record<string, string> }; spec: unknown; kind: string; apiVersion: string };
    assert.equal(body.kind, 'NetworkPolicy');
    assert.equal(body.apiVersion, 'networking.k8s.io/v1');
    assert.equal(body.metadata.name, 'minewatch-isolate-miner-7d4b9c8f5-x2x9q');
    assert.deepEqual(body.metadata.labels, { 'app.kubernetes.io/managed-by': 'minewatch', 'minewatch.io/isolated-pod': 'miner-7d4b9c8f5-x2x9q' });
    assert.equal(body.metadata.annotations['minewatch.io/undo'], 'kubectl delete networkpolicy -n shop minewatch-isolate-miner-7d4b9c8f5-x2x9q');
    assert.deepEqual(body.spec, { podSelector: { matchLabels: { app: 'miner', tier: 'batch' } }, policyTypes: ['Egress'], egress: [] });
    assert.equal(r.request.details?.warning, 'policies add up: allow-egress also selects this pod and allows egress, which stays open');
    assert.match(String(r.request.details?.note), /CNI that enforces policies/);
  });

  test('isolate_pod helpers: policy names, label selectors', () => {
    assert.equal(isolationPolicyName('Web_0'), 'minewatch-isolate-web-0');
    assert.ok(isolationPolicyName('x'.repeat(300)).length <= 253);
    assert.equal(selectorMatches({}, { a: '1' }), true);
    assert.equal(selectorMatches({ matchLabels: { a: '1' } }, { a: '1', b: '2' }), true);
    assert.equal(selectorMatches({ matchLabels: { a: '2' } }, { a: '1' }), false);
    assert.equal(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1', '3'] }] }, { a: '1' }), true);
    assert.equal(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, { a: '1' }), false);
    assert.equal(selectorMatches({ matchExpressions: [{ key: 'b', operator: 'DoesNotExist' }] }, { a: '1' }), true);
    assert.equal(selectorMatches({ matchExpressions: [{ key: 'b', operator: 'Exists' }] }, { a: '1' }), false);
  });

  test('suggest_revoke: lists the bindings of the pod\'s ServiceAccount and the commands; changes nothing', async () => {
    const rb = (ns: string, name: string, subjects: unknown[]) => ({ kind: 'RoleBinding', apiVersion: 'rbac.authorization.k8s.io/v1', metadata: { name, namespace: ns }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'edit' }, subjects });
    const crb = (name: string, subjects: unknown[]) => ({ kind: 'ClusterRoleBinding', apiVersion: 'rbac.authorization.k8s.io/v1', metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' }, subjects });
    const offs = [
      s.on('GET', '/apis/rbac.authorization.k8s.io/v1/rolebindings', (_r, res) => sendJson(res, 200, listObject('RoleBindingList', 'rbac.authorization.k8s.io/v1', '5', [
        rb(NS, 'deployer-edit', [{ kind: 'ServiceAccount', name: 'deployer', namespace: NS }]),
        rb('other', 'deployer-elsewhere', [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'other' }]),
      ]))),
      s.on('GET', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', (_r, res) => sendJson(res, 200, listObject('ClusterRoleBindingList', 'rbac.authorization.k8s.io/v1', '5', [
        crb('oops-admin', [{ kind: 'ServiceAccount', name: 'deployer', namespace: NS }]),
        crb('system:basic-user', [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:authenticated' }]),
      ]))),
    ];
    const r = await new SuggestRevokeAction({ client }).run(request('enforce', 'suggest_revoke', { service_account: 'deployer' }));
    offs.forEach((f) => f());
    assert.equal(r.outcome, 'done', r.reason);
    assert.deepEqual(lines().sort(), ['GET /apis/rbac.authorization.k8s.io/v1/clusterrolebindings', 'GET /apis/rbac.authorization.k8s.io/v1/rolebindings']);
    assert.equal(r.request.details?.subject, 'ServiceAccount shop/deployer');
    assert.equal(r.request.details?.bindings, 'ClusterRoleBinding oops-admin (ClusterRole cluster-admin); RoleBinding shop/deployer-edit (Role edit)');
    assert.equal(r.request.details?.commands, [
      'kubectl delete clusterrolebinding oops-admin',
      'kubectl delete rolebinding -n shop deployer-edit',
      'kubectl delete serviceaccount -n shop deployer  # invalidates all its tokens; re-create it if a legitimate workload needs it',
    ].join('\n'));
    assert.match(r.reason ?? '', /^suggestion only, nothing changed/);
    assert.deepEqual(subjectOfUsername('system:serviceaccount:ci:builder'), { kind: 'ServiceAccount', namespace: 'ci', name: 'builder' });
    assert.equal(subjectOfUsername('alice').kind, 'User');
  });

  test('every outcome is recorded as an alert through the dispatcher', async () => {
    const offs = [s.on('GET', /\/pods\//, (_r, res) => sendJson(res, 200, pod())), s.on('DELETE', /\/pods\//, (_r, res) => sendJson(res, 200, pod()))];
    const alerts: Match[] = [];
    const cfg = { mode: 'enforce' as const, actions: [{ rules: ['Miner'], tags: [], do: ['delete_pod' as const, 'isolate_pod' as const] }], allow: { exe_paths: [], images: [], namespaces: [] }, block_ttl_s: 60 };
    const d = new ResponseDispatcher(cfg, { delete_pod: new DeletePodAction({ client }) }, (m) => alerts.push(m), 'node-a');
    const ev: SyscallEvent = { source: 'syscall', type: 'execve', ts: 1n, proc: { pid: 4242, name: 'xmrig' }, container: { id: 'c0c0c0c0c0c0' }, k8s: { ns_name: NS, pod_name: 'miner-7d4b9c8f5-x2x9q', pod_uid: POD_UID } };
    d.onMatch({ rule: 'Miner', priority: 'CRITICAL', source: 'syscall', tags: [], output: 'x', outputFields: {}, time: 1n, hostname: 'node-a', event: ev } as Match);
    for (let i = 0; i < 100 && alerts.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    offs.forEach((f) => f());
    const byAction = Object.fromEntries(alerts.map((a) => [a.outputFields['mw.response.action'], a]));
    assert.equal(byAction.delete_pod?.rule, 'minewatch response: delete_pod');
    assert.equal(byAction.delete_pod?.outputFields['mw.response.outcome'], 'done');
    assert.equal(byAction.delete_pod?.outputFields['k8s.pod.name'], 'miner-7d4b9c8f5-x2x9q');
    assert.equal(byAction.delete_pod?.outputFields['mw.response.pod'], 'miner-7d4b9c8f5-x2x9q');
    assert.equal(byAction.isolate_pod?.outputFields['mw.response.outcome'], 'failed', 'not configured on this host: still an alert');
  });
});
