/**
 * The k8s_audit field catalog: Falco's k8saudit and json plugin fields with their semantics for
 * missing values, lists and index arguments, and our mw.k8s.* fields over every workload kind.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Event, PluginEvent } from '../src/events.js';
import { defaultRegistry } from '../src/fields/index.js';
import { auditEvent, auditEventsOf, parseTimestamp } from '../src/k8s-api/audit-event.js';
import { cpuMillicores, memoryBytes, parseQuantity } from '../src/k8s-api/quantity.js';
import { parseImage } from '../src/k8s-api/workload.js';
import { K8S_AUDIT_CORPUS } from './helpers/paths.js';

const registry = defaultRegistry();

/** The value a field (as written in a rule: "ka.req.pod.containers.image[0]") extracts from an event. */
function get(name: string, ev: Event): unknown {
  const m = /^([^[]+)(?:\[(.*)\])?$/.exec(name)!;
  return registry.resolve('k8s_audit', m[1]!, m[2]).extract(ev);
}

function corpus(file: string): PluginEvent {
  return auditEvent(JSON.parse(readFileSync(K8S_AUDIT_CORPUS + file, 'utf8').trim()));
}

const pod = corpus('create_nginx_pod_privileged.json');
const exec = corpus('exec_pod.json');
const ns = corpus('anonymous_creates_namespace_foo.json');

test('ka.* text fields read the recorded events; numbers and booleans are their JSON text', () => {
  assert.equal(get('ka.user.name', pod), 'system:serviceaccount:kube-system:replicaset-controller');
  assert.equal(get('ka.verb', pod), 'create');
  assert.equal(get('ka.target.resource', pod), 'pods');
  assert.equal(get('ka.target.namespace', pod), 'default');
  assert.equal(get('ka.resp.name', pod), 'nginx-deployment-5cdcc99dbf-rgw6z');
  assert.equal(get('ka.response.code', pod), '201');
  assert.equal(get('ka.auth.decision', ns), 'allow');
  assert.equal(get('ka.auth.reason', ns), '');
  assert.equal(get('ka.auditid', ns), '841d3e6d-90d2-43df-8da4-684738bee3d5');
  assert.equal(get('ka.stage', exec), 'ResponseStarted');
  assert.equal(get('ka.target.subresource', exec), 'exec');
  assert.equal(get('ka.target.pod.name', exec), 'nginx-deployment-7998647bdf-phvq7');
  assert.equal(get('ka.uri.param[command]', exec), 'bash');
  assert.equal(get('ka.uri.param[container]', exec), 'nginx1', 'the first of repeated parameters');
  assert.equal(get('ka.uri.param[nope]', exec), undefined);
  assert.deepEqual(get('ka.user.groups', ns), ['system:masters', 'system:authenticated']);
  assert.deepEqual(get('ka.sourceips', ns), ['192.168.99.1']);
  assert.equal(get('ka.req.configmap.obj', ns), undefined);
});

test('absent values are <NA>: a missing key, a missing list, an index past the end', () => {
  assert.equal(get('ka.target.name', pod), undefined, 'the pod create has no objectRef.name');
  assert.equal(get('ka.impuser.name', pod), undefined);
  assert.equal(get('ka.req.pod.containers.image', exec), undefined);
  assert.equal(get('ka.req.pod.containers.image[1]', pod), undefined);
  assert.equal(get('ka.req.pod.initContainers.image', pod), undefined);
  assert.equal(get('ka.req.pod.volumes.hostpath', pod), undefined, 'the request object has no volumes (the response object has)');
  assert.equal(get('jevt.value[/requestObject/nope]', pod), undefined);
  assert.equal(get('jevt.value[/requestObject/spec/containers/5]', pod), undefined);
  // A payload that is not an object gives <NA> everywhere, never an exception.
  const junk: PluginEvent = { source: 'k8s_audit', type: 'Event', ts: 1n, payload: 'junk' };
  for (const f of ['ka.verb', 'ka.req.pod.containers.image', 'jevt.value[/a]', 'mw.k8s.cpu.request', 'mw.k8s.containers.image']) assert.equal(get(f, junk), undefined, f);
});

test('per-container list fields, with and without an index; containers that do not say are left out', () => {
  assert.deepEqual(get('ka.req.pod.containers.image', pod), ['nginx']);
  assert.deepEqual(get('ka.req.pod.containers.image[0]', pod), ['nginx']);
  assert.deepEqual(get('ka.req.pod.containers.privileged', pod), ['true']);
  assert.equal(get('ka.req.container.privileged', pod), 'true');
  assert.equal(get('ka.req.container.image', pod), 'nginx');
  const ev = auditEvent({
    kind: 'Event', verb: 'create', objectRef: { resource: 'pods' },
    requestObject: {
      kind: 'Pod',
      spec: {
        securityContext: { runAsUser: 1000 },
        hostNetwork: true,
        containers: [
          { name: 'a', image: 'docker.io/falcosecurity/falco:0.39@sha256:abc', securityContext: { privileged: false, runAsUser: 0, capabilities: { add: ['NET_ADMIN', 'SYS_TIME'] } }, ports: [{ containerPort: 80 }, { containerPort: 53, hostPort: 5353 }] },
          { name: 'b', image: 'registry:5000/team/app', command: ['sh', '-c', 'true'] },
        ],
        initContainers: [{ name: 'init', image: 'busybox', securityContext: { privileged: true } }],
        volumes: [{ name: 'tok', secret: { secretName: 's' } }, { name: 'root', hostPath: { path: '/etc' } }, { name: 'f', flexVolume: { driver: 'x/y' } }],
      },
    },
  });
  assert.deepEqual(get('ka.req.pod.containers.name', ev), ['a', 'b']);
  assert.deepEqual(get('ka.req.pod.containers.image.repository', ev), ['docker.io/falcosecurity/falco', 'registry'], "Falco cuts at the first ':', a registry port included");
  assert.deepEqual(get('ka.req.pod.containers.privileged', ev), ['false']);
  assert.deepEqual(get('ka.req.pod.initContainers.privileged', ev), ['true']);
  assert.deepEqual(get('ka.req.pod.containers.run_as_user', ev), ['0']);
  assert.deepEqual(get('ka.req.pod.containers.eff_run_as_user', ev), ['0', '1000'], 'the container, else the pod security context');
  assert.deepEqual(get('ka.req.pod.containers.eff_run_as_group', ev), ['0', '0'], 'else 0');
  assert.deepEqual(get('ka.req.pod.containers.add_capabilities', ev), ['NET_ADMIN', 'SYS_TIME']);
  assert.deepEqual(get('ka.req.pod.containers.host_port', ev), ['80', '5353']);
  assert.deepEqual(get('ka.req.pod.containers.command', ev), ['["sh","-c","true"]']);
  assert.deepEqual(get('ka.req.pod.volumes.hostpath', ev), ['/etc']);
  assert.deepEqual(get('ka.req.pod.volumes.hostpath[0]', ev), [], 'the first volume has no hostPath');
  assert.deepEqual(get('ka.req.pod.volumes.volume_type', ev), ['secret', 'hostPath', 'flexVolume']);
  assert.deepEqual(get('ka.req.pod.volumes.flexvolume_driver', ev), ['x/y']);
  assert.equal(get('ka.req.volume.hostpath[/etc]', ev), 'true');
  assert.equal(get('ka.req.volume.hostpath[/e*]', ev), 'true');
  assert.equal(get('ka.req.volume.hostpath[/var]', ev), 'false');
  assert.equal(get('ka.req.pod.host_network', ev), 'true');
  assert.equal(get('ka.req.pod.host_pid', ev), undefined);
  assert.equal(get('ka.req.pod.run_as_user', ev), '1000');
});

test('role, binding and service fields', () => {
  const role = auditEvent({ kind: 'Event', verb: 'create', requestObject: { kind: 'ClusterRole', rules: [{ apiGroups: [''], resources: ['pods', 'pods/exec'], verbs: ['*'] }, { nonResourceURLs: ['/metrics'], verbs: ['get'] }] } });
  assert.deepEqual(get('ka.req.role.rules.verbs', role), ['*', 'get']);
  assert.deepEqual(get('ka.req.role.rules.verbs[1]', role), ['get']);
  assert.deepEqual(get('ka.req.role.rules.resources', role), ['pods', 'pods/exec']);
  assert.deepEqual(get('ka.req.role.rules.nonResourceURLs', role), ['/metrics']);
  assert.equal((get('ka.req.role.rules', role) as string[])[1], '{"nonResourceURLs":["/metrics"],"verbs":["get"]}');
  const binding = auditEvent({
    kind: 'Event', verb: 'create',
    requestObject: { roleRef: { name: 'cluster-admin' }, subjects: [{ kind: 'User', name: 'eve' }, { kind: 'ServiceAccount', name: 'sa', namespace: 'ns1' }, { kind: 'Group', name: 'g' }] },
  });
  assert.equal(get('ka.req.binding.role', binding), 'cluster-admin');
  assert.deepEqual(get('ka.req.binding.subjects.user_names', binding), ['eve']);
  assert.deepEqual(get('ka.req.binding.subjects.serviceaccount_ns_names', binding), ['ns1:sa']);
  assert.deepEqual(get('ka.req.binding.subjects.group_names', binding), ['g']);
  const svc = auditEvent({ kind: 'Event', verb: 'create', requestObject: { spec: { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] } } });
  assert.equal(get('ka.req.service.type', svc), 'NodePort');
  assert.deepEqual(get('ka.req.service.ports', svc), ['{"port":80,"nodePort":30080}']);
});

test('json/jevt fields: JSON pointers with escapes and array indexes, the whole object, times', () => {
  assert.equal(get('jevt.value[/stage]', pod), 'ResponseComplete');
  assert.equal(get('json.value[/responseStatus/code]', pod), '201');
  assert.equal(get('jevt.value[/requestObject/spec/containers/0/image]', pod), 'nginx');
  assert.equal(get('jevt.value[/annotations/authorization.k8s.io~1decision]', pod), 'allow');
  assert.equal(get('jevt.value[/requestObject/spec/containers/0/securityContext]', pod), '{"privileged":true}');
  assert.deepEqual(JSON.parse(get('jevt.obj', ns) as string), ns.payload);
  assert.equal(get('jevt.rawtime', ns), 1540475929736141000n, 'stageTimestamp, to the microsecond');
  assert.equal(get('evt.rawtime', ns), 1540475929736141000n);
  assert.equal(get('jevt.time.iso8601', ns), '2018-10-25T13:58:49.736141000+0000');
  assert.equal(get('evt.source', ns), 'k8s_audit');
  assert.equal(get('evt.pluginname', ns), 'k8saudit');
});

test('Kubernetes quantities in millicores and bytes', () => {
  assert.equal(cpuMillicores('500m'), 500);
  assert.equal(cpuMillicores('2'), 2000);
  assert.equal(cpuMillicores(2), 2000);
  assert.equal(cpuMillicores('0.1'), 100);
  assert.equal(cpuMillicores('1.5'), 1500);
  assert.equal(cpuMillicores('250000u'), 250);
  assert.equal(cpuMillicores('0.0001'), 1, 'rounded up, as Kubernetes does');
  assert.equal(memoryBytes('2Gi'), 2 * 1024 ** 3);
  assert.equal(memoryBytes('1.5G'), 1_500_000_000);
  assert.equal(memoryBytes('128Mi'), 128 * 1024 ** 2);
  assert.equal(memoryBytes('1e3'), 1000);
  assert.equal(memoryBytes('64k'), 64_000);
  assert.equal(parseQuantity('2 Gi'), undefined);
  assert.equal(parseQuantity('lots'), undefined);
  assert.equal(parseQuantity('1Gb'), undefined);
  assert.equal(parseQuantity(null), undefined);
});

test('image references: registry, repository, name, tag and digest', () => {
  assert.deepEqual(parseImage('metal3d/xmrig'), { registry: undefined, repository: 'metal3d/xmrig', name: 'xmrig', tag: undefined, digest: undefined });
  assert.deepEqual(parseImage('ghcr.io/a/b/XMRig:6.21@sha256:ff'), { registry: 'ghcr.io', repository: 'a/b/xmrig', name: 'xmrig', tag: '6.21', digest: 'sha256:ff' });
  assert.equal(parseImage('localhost:5000/xmrig:1').registry, 'localhost:5000');
  assert.equal(parseImage('docker.io/library/nginx:1.27').repository, 'nginx');
  assert.equal(parseImage('nginx').name, 'nginx');
});

function workload(kind: string, resource: string, spec: unknown, extra: Record<string, unknown> = {}): PluginEvent {
  return auditEvent({ kind: 'Event', verb: 'create', objectRef: { resource, namespace: 'ns' }, responseStatus: { code: 201 }, requestObject: { kind, metadata: { name: 'w' }, spec }, ...extra });
}

test('mw.k8s.* read the pod template of every workload kind', () => {
  const containers = [
    { name: 'main', image: 'ghcr.io/x/xmrig:1', command: ['xmrig'], args: ['-o', 'stratum+tcp://pool.example.net:3333', '--donate-level', '1'], resources: { requests: { cpu: '1500m', memory: '2Gi' }, limits: { memory: '3Gi' } } },
    { name: 'side', image: 'nginx', resources: { requests: { cpu: '1', memory: '1.5G' }, limits: { cpu: '2', memory: '2G' } } },
  ];
  const template = { template: { spec: { containers } } };
  const cases: Array<[string, string, unknown]> = [
    ['Pod', 'pods', { containers }],
    ['Deployment', 'deployments', template],
    ['DaemonSet', 'daemonsets', template],
    ['StatefulSet', 'statefulsets', template],
    ['ReplicaSet', 'replicasets', template],
    ['Job', 'jobs', template],
    ['CronJob', 'cronjobs', { jobTemplate: { spec: template } }],
  ];
  for (const [kind, resource, spec] of cases) {
    const ev = workload(kind, resource, spec);
    assert.equal(get('mw.k8s.kind', ev), kind);
    assert.equal(get('mw.k8s.name', ev), 'w');
    assert.equal(get('mw.k8s.namespace', ev), 'ns');
    assert.deepEqual(get('mw.k8s.containers.image.name', ev), ['xmrig', 'nginx'], kind);
    assert.deepEqual(get('mw.k8s.containers.image.repository', ev), ['x/xmrig', 'nginx'], kind);
    assert.deepEqual(get('mw.k8s.containers.cpu.request', ev), [1500, 1000], kind);
    assert.deepEqual(get('mw.k8s.containers.cpu.limit', ev), [2000], kind);
    assert.deepEqual(get('mw.k8s.containers.cpu.limit[0]', ev), [], 'the first container has no CPU limit');
    assert.deepEqual(get('mw.k8s.containers.memory.request', ev), [2 * 1024 ** 3, 1_500_000_000], kind);
    assert.equal(get('mw.k8s.cpu.request', ev), 2500);
    assert.equal(get('mw.k8s.memory.request', ev), 2 * 1024 ** 3 + 1_500_000_000);
    assert.equal(get('mw.k8s.cpu.limit', ev), undefined, 'not every container has a CPU limit');
    assert.equal(get('mw.k8s.memory.limit', ev), 3 * 1024 ** 3 + 2_000_000_000);
    assert.equal(get('mw.k8s.cpu.unlimited_request', ev), 1500);
    assert.equal(get('mw.k8s.containers.cpu.unlimited', ev), true);
    assert.equal(get('mw.k8s.containers.memory.unlimited', ev), false);
    assert.equal(get('mw.k8s.containers.unlimited', ev), true);
    assert.deepEqual(get('mw.k8s.containers.stratum_url', ev), ['stratum+tcp://pool.example.net:3333']);
    assert.equal(get('mw.k8s.containers.miner_flags', ev), true);
    assert.equal(get('mw.k8s.response.code', ev), 201);
    assert.equal(get('mw.k8s.admission', ev), false);
  }
  // A patch body has no kind: objectRef.resource says what it patches.
  const patch = auditEvent({ kind: 'Event', verb: 'patch', objectRef: { resource: 'deployments', name: 'web', namespace: 'ns' }, requestObject: { spec: { template: { spec: { containers: [{ name: 'web', image: 'xmrig/xmrig' }] } } } } });
  assert.equal(get('mw.k8s.kind', patch), 'Deployment');
  assert.equal(get('mw.k8s.name', patch), 'web');
  assert.deepEqual(get('mw.k8s.containers.image.name', patch), ['xmrig']);
  // Objects without a pod template: <NA>.
  assert.equal(get('mw.k8s.containers.image', ns), undefined);
  assert.equal(get('mw.k8s.containers.unlimited', ns), undefined);
  assert.equal(get('mw.k8s.kind', ns), 'Namespace');
});

test('audit bodies: an EventList, a single Event, v1 and v1beta1, with or without apiVersion; others refused', () => {
  const e = JSON.parse(readFileSync(K8S_AUDIT_CORPUS + 'exec_pod.json', 'utf8'));
  assert.equal(auditEventsOf(e).length, 1, 'a recorded line has no apiVersion');
  assert.equal(auditEventsOf({ ...e, apiVersion: 'audit.k8s.io/v1' }).length, 1);
  assert.equal(auditEventsOf({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1beta1', items: [e, e] }).length, 2);
  assert.equal(auditEventsOf({ items: [e] }).length, 1);
  assert.throws(() => auditEventsOf({ kind: 'Pod' }), /not an audit Event or EventList/);
  assert.throws(() => auditEventsOf({ kind: 'EventList', apiVersion: 'v1', items: [] }), /unsupported apiVersion 'v1'/);
  assert.throws(() => auditEventsOf({ kind: 'EventList', items: [e, 3] }), /items\[1\] is not an audit Event/);
  assert.throws(() => auditEventsOf([e]), /expected a JSON object/);
  assert.equal(parseTimestamp('2018-10-26T13:38:34.902914Z'), 1540561114902914000n);
  assert.equal(parseTimestamp('2018-10-26T13:38:34Z'), 1540561114000000000n);
  assert.equal(parseTimestamp('yesterday'), undefined);
});

test('every k8s_audit field resolves, and none throws on any recorded event', () => {
  const defs = registry.list('k8s_audit');
  assert.ok(defs.length > 100, `${defs.length} fields`);
  for (const d of defs) {
    const arg = d.arg === 'index' ? (d.argOptional ? undefined : '0') : d.arg === 'key' ? (d.name.includes('value') ? '/verb' : 'command') : undefined;
    const f = registry.resolve('k8s_audit', d.name, arg);
    for (const ev of [pod, exec, ns]) f.extract(ev);
  }
});
