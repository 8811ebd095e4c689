/**
 * Pod enrichment against the stand-in API server: the exact list and watch requests, bookmarks,
 * a 410 Gone resync, an API outage mid-watch, a 403, owners resolved through ownerReferences, and
 * syscall events of a known container getting the k8s.* fields.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../src/engine/index.js';
import { PodWatcher, podInfo, stripRuntimePrefix } from '../src/enrich/pods.js';
import type { SyscallEvent } from '../src/events.js';
import { K8sClient } from '../src/k8s-api/client.js';
import { type Handler, K8sApiStandin, listObject, podObject, requestLine, sendForbidden, sendJson, sendStatus, workloadObject } from './helpers/k8s-api-standin.js';

const NODE = 'node-a';
const MINER_CID = 'c0ffee00a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c';
const WEB_CID = '7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d';
const LATE_CID = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

const minerPod = (rv?: string) => podObject({
  name: 'miner-7d4b9c8f5-x2x9q', namespace: 'shop', uid: '5f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9', node: NODE,
  labels: { app: 'miner', 'pod-template-hash': '7d4b9c8f5' },
  containers: [{ name: 'xmrig', image: 'metal3d/xmrig:latest', containerID: `containerd://${MINER_CID}` }],
  owner: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'miner-7d4b9c8f5', uid: 'aaaa1111-2222-4333-8444-555566667777' },
  serviceAccount: 'deployer', podIP: '10.244.1.23', resourceVersion: rv,
});
const webPod = () => podObject({
  name: 'web-0', namespace: 'shop', uid: '0a0b0c0d-1111-4222-8333-444455556666', node: NODE,
  labels: { app: 'web' }, containers: [{ name: 'nginx', image: 'nginx:1.27', containerID: `cri-o://${WEB_CID}` }],
});

function client(s: K8sApiStandin): K8sClient {
  return new K8sClient({ server: s.url, token: s.token });
}

function watcher(s: K8sApiStandin, extra: Partial<ConstructorParameters<typeof PodWatcher>[1]> = {}): PodWatcher {
  return new PodWatcher(client(s), { nodeName: NODE, resyncIntervalMs: 0, backoffInitialMs: 20, backoffMaxMs: 80, watchTimeoutS: 300, random: () => 0, ...extra });
}

/** Serve the pod list (each call from `lists`, in turn) and hand watches to the test. */
function scriptPods(s: K8sApiStandin, lists: Array<{ rv: string; items: unknown[] }>): void {
  let i = 0;
  s.serveWatches('/api/v1/pods', (_req, res) => {
    const l = lists[Math.min(i++, lists.length - 1)]!;
    sendJson(res, 200, listObject('PodList', 'v1', l.rv, l.items));
  });
}

const LIST_LINE = `GET /api/v1/pods?fieldSelector=spec.nodeName=${NODE}&limit=500`;
const watchLine = (rv: string) => `GET /api/v1/pods?allowWatchBookmarks=true&fieldSelector=spec.nodeName=${NODE}&resourceVersion=${rv}&timeoutSeconds=300&watch=true`;

describe('pod watcher: list, watch, bookmarks, 410', () => {
  let s: K8sApiStandin;
  before(async () => {
    s = await K8sApiStandin.start();
  });
  after(() => s.close());

  test('lists, watches from the list rv, follows events and bookmarks, relists on 410 Gone', async () => {
    scriptPods(s, [{ rv: '1500', items: [minerPod('1400'), webPod()] }, { rv: '3000', items: [webPod()] }]);
    s.on('GET', '/apis/apps/v1/namespaces/shop/replicasets/miner-7d4b9c8f5', (_r, res) => sendJson(res, 200, workloadObject('apps/v1', 'ReplicaSet', 'shop', 'miner-7d4b9c8f5', 'aaaa1111-2222-4333-8444-555566667777', { replicas: 1 }, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'miner', uid: 'dddd1111-2222-4333-8444-555566667777' })));
    const w = watcher(s);
    const synced = w.whenSynced();
    w.start();
    try {
      await synced;
      const w1 = await s.nextWatch();
      assert.equal(requestLine(w1.request), watchLine('1500'));
      const miner = w.podOfContainer(MINER_CID)!;
      assert.equal(miner.pod_name, 'miner-7d4b9c8f5-x2x9q');
      assert.equal(miner.ns_name, 'shop');
      assert.equal(miner.pod_uid, '5f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9');
      assert.deepEqual(miner.pod_labels, { app: 'miner', 'pod-template-hash': '7d4b9c8f5' });
      assert.equal(miner.node_name, NODE);
      assert.deepEqual(miner.images, ['metal3d/xmrig:latest']);
      assert.equal(miner.service_account, 'deployer');
      assert.equal(miner.pod_ip, '10.244.1.23');
      assert.equal(w.podOfContainer(WEB_CID)?.pod_name, 'web-0', 'cri-o:// prefix stripped');

      // The ReplicaSet is read once and its Deployment becomes the owner.
      await s.waitFor((r) => r.path.endsWith('/replicasets/miner-7d4b9c8f5'));
      for (let i = 0; i < 50 && w.podOfContainer(MINER_CID)?.owner_kind !== 'Deployment'; i++) await new Promise((r) => setTimeout(r, 10));
      const owned = w.podOfContainer(MINER_CID)!;
      assert.equal(owned.owner_kind, 'Deployment');
      assert.equal(owned.owner_name, 'miner');
      assert.deepEqual(owned.owners?.map((o) => `${o.kind}/${o.name}`), ['ReplicaSet/miner-7d4b9c8f5', 'Deployment/miner']);

      // A pod added on the watch, then a bookmark; the server ends the watch: resume from the bookmark.
      const late = podObject({ name: 'late', namespace: 'ci', uid: '9e9e9e9e-1111-4222-8333-444455556666', node: NODE, containers: [{ name: 'sh', image: 'alpine:3.20', containerID: `docker://${LATE_CID}` }], resourceVersion: '1600' });
      w1.send('ADDED', late);
      w1.bookmark('Pod', 'v1', '2000');
      w1.end();
      const w2 = await s.nextWatch();
      assert.equal(requestLine(w2.request), watchLine('2000'));
      assert.equal(w.podOfContainer(LATE_CID)?.pod_name, 'late');
      assert.equal(w.stats.bookmarks, 1);

      // The rv is too old: ERROR 410 → a fresh list, then a watch from the new list's rv.
      const from = s.requests.length;
      w2.gone('2000');
      const w3 = await s.nextWatch();
      assert.equal(requestLine(w3.request), watchLine('3000'));
      assert.deepEqual(s.lines((r) => s.requests.indexOf(r) >= from), [LIST_LINE, watchLine('3000')]);
      assert.equal(w.stats.expired, 1);
      // The pods missing from the new list are kept for a grace period, then gone.
      assert.equal(w.podOfContainer(WEB_CID)?.pod_name, 'web-0');

      // Everything the watcher asked for, in order, each with the token.
      assert.deepEqual(s.lines((r) => r.path === '/api/v1/pods'), [LIST_LINE, watchLine('1500'), watchLine('2000'), LIST_LINE, watchLine('3000')]);
      assert.ok(s.requests.every((r) => r.authorization === `Bearer ${s.token}`));
      assert.equal(s.requests.filter((r) => r.path.includes('/replicasets/')).length, 1, 'owner read once, then cached');
    } finally {
      await w.stop();
    }
  });
});

describe('pod watcher: periodic resync', () => {
  test('resync ends the watch and takes a fresh list; pods gone from it stop enriching after their grace', async () => {
    const s = await K8sApiStandin.start();
    scriptPods(s, [{ rv: '100', items: [minerPod(), webPod()] }, { rv: '200', items: [webPod()] }]);
    let now = 1_000_000;
    const w = watcher(s, { resolveOwners: false, deletedGraceMs: 30_000, now: () => now });
    w.start();
    try {
      const w1 = await s.nextWatch();
      assert.equal(requestLine(w1.request), watchLine('100'));
      w.resync();
      const w2 = await s.nextWatch();
      assert.equal(requestLine(w2.request), watchLine('200'));
      assert.deepEqual(s.lines(), [LIST_LINE, watchLine('100'), LIST_LINE, watchLine('200')]);
      assert.equal(w.stats.resyncs, 1);
      assert.equal(w.podOfContainer(MINER_CID)?.pod_name, 'miner-7d4b9c8f5-x2x9q', 'still resolves within the grace');
      now += 30_001;
      assert.equal(w.podOfContainer(MINER_CID), undefined, 'gone after the grace');
      assert.equal(w.podOfContainer(WEB_CID)?.pod_name, 'web-0');
    } finally {
      await w.stop();
      await s.close();
    }
  });
});

describe('pod watcher: outages and refusals', () => {
  test('an API outage mid-watch: the known pods keep enriching, the watch resumes from its rv once the server is back', async () => {
    const s = await K8sApiStandin.start();
    scriptPods(s, [{ rv: '1500', items: [minerPod('1400')] }]);
    s.on('GET', /replicasets/, (_r, res) => sendJson(res, 404, {}));
    const logs: string[] = [];
    const log = { info: () => undefined, warn: (_o: object, m: string) => logs.push(m), error: (_o: object, m: string) => logs.push(`ERROR ${m}`) };
    const w = watcher(s, { log, resolveOwners: false });
    w.start();
    try {
      const w1 = await s.nextWatch();
      w1.bookmark('Pod', 'v1', '1777');
      await new Promise((r) => setTimeout(r, 50));
      const before = s.requests.length;
      await s.outage();
      // Down: the watcher retries (connection refused) with backoff; lookups still answer.
      for (let i = 0; i < 100 && w.stats.failures < 2; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(w.stats.failures >= 2, `failures counted while down: ${JSON.stringify(w.stats)}`);
      assert.match(w.stats.lastError ?? '', /cannot reach the API server to watch pods/);
      assert.equal(w.podOfContainer(MINER_CID)?.pod_name, 'miner-7d4b9c8f5-x2x9q');
      assert.equal(s.requests.length, before, 'nothing reached the server while it was down');
      await s.recover();
      const w2 = await s.nextWatch();
      assert.equal(requestLine(w2.request), watchLine('1777'), 'resumed from the last bookmark, no relist');
      w2.send('MODIFIED', minerPod('1800'));
      w2.bookmark('Pod', 'v1', '1900');
      for (let i = 0; i < 50 && w.stats.resourceVersion !== '1900'; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(w.stats.resourceVersion, '1900');
      assert.equal(s.lines((r) => r.path === '/api/v1/pods' && r.query.watch !== 'true').length, 1, 'one list only');
      assert.equal(logs.filter((l) => l.startsWith('ERROR')).length, 0);
    } finally {
      await w.stop();
      await s.close();
    }
  });

  test('a watch refused with HTTP 410 relists; an ERROR event other than 410 resumes from the last rv after a backoff', async () => {
    const s = await K8sApiStandin.start();
    let lists = 0;
    const list: Handler = (_r, res) => sendJson(res, 200, listObject('PodList', 'v1', String(500 + 100 * ++lists), [minerPod()]));
    s.serveWatches('/api/v1/pods', list);
    // The first watch request is answered 410 outright, as for a resourceVersion already compacted away.
    const off = s.on('GET', '/api/v1/pods', (r, res) => {
      if (r.query.watch !== 'true') return list(r, res);
      off();
      sendStatus(res, 410, 'Expired', 'too old resource version: 600 (900)');
    });
    const w = watcher(s, { resolveOwners: false });
    w.start();
    try {
      const w1 = await s.nextWatch();
      assert.equal(requestLine(w1.request), watchLine('700'), 'relisted after the 410, watching from the new list');
      w1.bookmark('Pod', 'v1', '750');
      w1.send('ERROR', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'etcdserver: request timed out', reason: 'InternalError', code: 500 });
      const w2 = await s.nextWatch();
      assert.equal(requestLine(w2.request), watchLine('750'), 'resumed, not relisted');
      assert.deepEqual(s.lines((r) => r.query.watch !== 'true'), [LIST_LINE, LIST_LINE]);
      assert.equal(w.stats.expired, 1);
      assert.match(w.stats.lastError ?? '', /etcdserver: request timed out/);
    } finally {
      await w.stop();
      await s.close();
    }
  });

  test('a 403 on the list is reported with the RBAC rule to grant, logged once, and no watch starts without a list', async () => {
    const s = await K8sApiStandin.start();
    s.on('GET', '/api/v1/pods', (_r, res) => sendForbidden(res, 'list', 'pods', ''));
    const warned: string[] = [];
    const w = watcher(s, { log: { info: () => undefined, warn: (o: object) => warned.push((o as { err: string }).err), error: () => undefined } });
    w.start();
    try {
      await s.waitFor((_r) => s.requests.length >= 3);
      await w.stop();
      const err = w.stats.lastError ?? '';
      assert.match(err, /forbidden to list pods cluster-wide/);
      assert.match(err, /\{apiGroups: \[""\], resources: \["pods"\], verbs: \["list"\]\}/);
      assert.equal(w.stats.synced, false);
      assert.equal(warned.length, 1, 'the same refusal is logged once, not at every retry');
      assert.ok(s.requests.every((r) => requestLine(r) === LIST_LINE), 'no watch without a list');
    } finally {
      await s.close();
    }
  });
});

describe('pod context on syscall events', () => {
  test('an event from a container the watch knows gets k8s.* fields; others are left alone', async () => {
    const s = await K8sApiStandin.start();
    scriptPods(s, [{ rv: '10', items: [minerPod(), webPod()] }]);
    s.on('GET', /replicasets/, (_r, res) => sendJson(res, 200, workloadObject('apps/v1', 'ReplicaSet', 'shop', 'miner-7d4b9c8f5', 'aaaa1111-2222-4333-8444-555566667777', {}, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'miner', uid: 'dddd' })));
    const w = watcher(s);
    const synced = w.whenSynced();
    w.start();
    try {
      await synced;
      const engine = new Engine([{ path: 'k.yaml', text: [
        '- rule: pod exec',
        '  desc: d',
        '  condition: evt.type = execve and k8s.ns.name = shop',
        '  output: ns=%k8s.ns.name pod=%k8s.pod.name uid=%k8s.pod.uid app=%k8s.pod.label.app labels=(%k8s.pod.labels) ip=%k8s.pod.ip',
        '  priority: WARNING',
      ].join('\n') }], { ruleMatching: 'all', hostname: 'h' });
      const ev = (fullId: string, podUid?: string): SyscallEvent => ({
        source: 'syscall', type: 'execve', ts: 1n, res: 0, proc: { pid: 42, name: 'xmrig' },
        container: { id: fullId.slice(0, 12), full_id: fullId, type: 'containerd' }, ...(podUid ? { k8s: { pod_uid: podUid } } : {}),
      });
      const known = ev(MINER_CID);
      w.enrich(known);
      const m = engine.process(known);
      assert.equal(m.length, 1);
      assert.equal(m[0]!.output.replace(/^\S+ \S+: /, ''), 'ns=shop pod=miner-7d4b9c8f5-x2x9q uid=5f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9 app=miner labels=(app:miner, pod-template-hash:7d4b9c8f5) ip=10.244.1.23');

      const fields = new Engine([{ path: 'f.yaml', text: [
        '- rule: owners',
        '  desc: d',
        '  condition: evt.type = execve and mw.k8s.pod.owner.kind = Deployment',
        '  output: rs=%k8s.rs.name deploy=%k8s.deployment.name owner=%mw.k8s.pod.owner.kind/%mw.k8s.pod.owner.name node=%mw.k8s.pod.node sa=%mw.k8s.pod.service_account images=%mw.k8s.pod.images',
        '  priority: WARNING',
      ].join('\n') }], { ruleMatching: 'all', hostname: 'h' });
      for (let i = 0; i < 50 && w.podOfContainer(MINER_CID)?.owner_kind !== 'Deployment'; i++) await new Promise((r) => setTimeout(r, 10));
      const owned = ev(MINER_CID);
      w.enrich(owned);
      assert.equal(fields.process(owned)[0]?.output.replace(/^\S+ \S+: /, ''), 'rs=miner-7d4b9c8f5 deploy=miner owner=Deployment/miner node=node-a sa=deployer images=metal3d/xmrig:latest');

      // Not in the pod's status yet, but the cgroup path named the pod uid.
      const byUid = ev(LATE_CID, '0a0b0c0d-1111-4222-8333-444455556666');
      w.enrich(byUid);
      assert.equal(byUid.k8s?.pod_name, 'web-0');

      const unknown = ev(LATE_CID);
      w.enrich(unknown);
      assert.equal(unknown.k8s, undefined);
      assert.equal(engine.process(unknown).length, 0);
      const host: SyscallEvent = { source: 'syscall', type: 'execve', ts: 1n, proc: { pid: 1, name: 'init' }, container: { id: 'host' } };
      w.enrich(host);
      assert.equal(host.k8s, undefined);
    } finally {
      await w.stop();
      await s.close();
    }
  });

  test('pod objects: runtime prefixes and init containers', () => {
    assert.equal(stripRuntimePrefix('containerd://abc'), 'abc');
    assert.equal(stripRuntimePrefix('docker://abc'), 'abc');
    assert.equal(stripRuntimePrefix('cri-o://abc'), 'abc');
    assert.equal(stripRuntimePrefix('abc'), 'abc');
    const p = podObject({ name: 'p', namespace: 'n', uid: 'u', node: NODE, containers: [{ name: 'a', image: 'x', containerID: 'containerd://1' }] });
    (p.status as Record<string, unknown>).initContainerStatuses = [{ name: 'init', containerID: 'containerd://0' }];
    assert.deepEqual(podInfo(p)?.containerIds, ['0', '1']);
    assert.equal(podInfo({ metadata: {} }), undefined);
  });
});
