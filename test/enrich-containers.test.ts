/** src/enrich/containers.ts: cgroup paths of every runtime, image references, the Docker API client. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  ContainerResolver, DockerClient, containerFromCgroupPath, containerFromCgroups, parseImageRef, parseRfc3339Ns,
  type CgroupContainer,
} from '../src/enrich/containers.js';
import { NGINX_DIGEST, NGINX_ID, POD_CTR_ID, SLOW_ID, startDockerStandIn } from './helpers/docker-standin.js';

const ID = '3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e';
const ID2 = 'f9e8d7c6b5a4f9e8d7c6b5a4f9e8d7c6b5a4f9e8d7c6b5a4f9e8d7c6b5a4f9e8';
const UID = '0f9fc6a4-9d5e-4b67-8b5f-0d3e4a6c7e21';
const UID_ = UID.replace(/-/g, '_');
const STATIC_UID = '6c8d5b3d1a4c1e0f9a8b7c6d5e4f3a2b';

/** Real-world /proc/PID/cgroup lines: [line, type, full id, pod uid]. */
const CONTAINER_LINES: Array<[string, string, string, string?]> = [
  // Docker, cgroupfs driver (cgroup v1) and systemd driver (v1 and v2).
  [`12:memory:/docker/${ID}`, 'docker', ID],
  [`4:cpu,cpuacct:/docker/${ID}`, 'docker', ID],
  [`11:cpu,cpuacct:/system.slice/docker-${ID}.scope`, 'docker', ID],
  [`0::/system.slice/docker-${ID}.scope`, 'docker', ID],
  // Docker in Docker: the innermost container.
  [`0::/docker/${ID}/docker/${ID2}`, 'docker', ID2],
  // AWS ECS (Docker): /ecs/<task>/<container>.
  [`9:perf_event:/ecs/8f1e2d3c4b5a69788796a5b4c3d2e1f0/${ID}`, 'docker', ID],
  // Kubernetes + containerd, systemd driver, each QoS class (guaranteed has no class slice).
  [`0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`, 'containerd', ID, UID],
  [`0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/cri-containerd-${ID}.scope`, 'containerd', ID, UID],
  [`0::/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${ID}.scope`, 'containerd', ID, UID],
  // Kubernetes, cgroupfs driver (v1): bare ids under pod<uid>.
  [`10:cpuset:/kubepods/burstable/pod${UID}/${ID}`, 'containerd', ID, UID],
  [`7:pids:/kubepods/besteffort/pod${UID}/${ID}`, 'containerd', ID, UID],
  [`3:memory:/kubepods/pod${UID}/${ID}`, 'containerd', ID, UID],
  // A static pod: its UID is a 32-hex hash.
  [`5:devices:/kubepods/burstable/pod${STATIC_UID}/${ID}`, 'containerd', ID, STATIC_UID],
  // Kubernetes + CRI-O (systemd and cgroupfs) and + Docker (dockershim / cri-dockerd).
  [`0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${ID}.scope`, 'cri-o', ID, UID],
  [`6:freezer:/kubepods/burstable/pod${UID}/crio-${ID}`, 'cri-o', ID, UID],
  [`1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/docker-${ID}.scope`, 'docker', ID, UID],
  // Podman: rootful, rootless, split cgroups with a "container" child, cgroupfs driver.
  [`0::/machine.slice/libpod-${ID}.scope`, 'podman', ID],
  [`0::/machine.slice/libpod-${ID}.scope/container`, 'podman', ID],
  [`0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope`, 'podman', ID],
  [`8:blkio:/libpod_parent/libpod-${ID}`, 'podman', ID],
  // nerdctl (containerd without Kubernetes), systemd driver.
  [`0::/system.slice/nerdctl-${ID}.scope`, 'containerd', ID],
];

const HOST_LINES = [
  '0::/',
  '0::/init.scope',
  '1:name=systemd:/',
  '0::/system.slice/sshd.service',
  '0::/system.slice/docker.service',
  '0::/system.slice/containerd.service',
  '0::/user.slice/user-0.slice/session-3.scope',
  '0::/kubepods.slice',
  `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`,
  // conmon, the runtime monitor beside a container, is not the container.
  `0::/machine.slice/libpod-conmon-${ID}.scope`,
  `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-conmon-${ID}.scope`,
  // This machine's own sandbox: 32 hex is not a container id.
  '4:memory:/process_api/2b9b70c63d4d36308834f6972e1cac80',
  // Short or non-hex ids are not container ids.
  '0::/docker/3ad7b26ded6d',
  `0::/docker/${ID.replace(/a/g, 'g')}`,
];

test('cgroup lines of every runtime name the container, its type and pod', () => {
  for (const [line, type, full, pod] of CONTAINER_LINES) {
    const c = containerFromCgroups([line]);
    assert.ok(c, line);
    assert.equal(c.type, type, line);
    assert.equal(c.full_id, full, line);
    assert.equal(c.id, full.slice(0, 12), line);
    assert.equal(c.pod_uid, pod, line);
  }
});

test('host cgroup lines name no container', () => {
  for (const line of HOST_LINES) assert.equal(containerFromCgroups([line]), undefined, line);
  assert.equal(containerFromCgroups(undefined), undefined);
  assert.equal(containerFromCgroups(['garbage', '', '::']), undefined);
});

test('cgroup v1: the first line that names a container decides', () => {
  const lines = ['13:rdma:/', '1:name=systemd:/', `12:pids:/docker/${ID}`, `11:memory:/docker/${ID}`, '0::/'];
  assert.equal(containerFromCgroups(lines)?.full_id, ID);
});

test('LXC containers are named by their name', () => {
  assert.deepEqual(containerFromCgroupPath('/lxc.payload.web1'), { id: 'web1', full_id: 'web1', type: 'lxc' });
  assert.deepEqual(containerFromCgroupPath('/lxc/web1/init.scope'), { id: 'web1', full_id: 'web1', type: 'lxc' });
  assert.equal(containerFromCgroupPath('/lxc.monitor.web1'), undefined);
});

test('image references split as Falco splits them', () => {
  const cases: Array<[string, string, string | undefined, string | undefined]> = [
    ['nginx', 'nginx', 'latest', undefined],
    ['nginx:1.25', 'nginx', '1.25', undefined],
    ['docker.io/library/nginx:1.25', 'docker.io/library/nginx', '1.25', undefined],
    [`registry:5000/x/y@${NGINX_DIGEST}`, 'registry:5000/x/y', 'latest', NGINX_DIGEST],
    [`registry:5000/x/y:v2@${NGINX_DIGEST}`, 'registry:5000/x/y', 'v2', NGINX_DIGEST],
    ['localhost:5000/app', 'localhost:5000/app', 'latest', undefined],
    ['ghcr.io/evil/xmrig:6.21.0', 'ghcr.io/evil/xmrig', '6.21.0', undefined],
  ];
  for (const [ref, repository, tag, digest] of cases) {
    assert.deepEqual(parseImageRef(ref), digest ? { repository, tag, digest } : { repository, tag }, ref);
  }
});

test('RFC 3339 times keep their nanoseconds', () => {
  const base = BigInt(Date.UTC(2024, 4, 1, 10, 0, 0)) * 1_000_000n;
  assert.equal(parseRfc3339Ns('2024-05-01T10:00:00.123456789Z'), base + 123_456_789n);
  assert.equal(parseRfc3339Ns('2024-05-01T10:00:00.5Z'), base + 500_000_000n);
  assert.equal(parseRfc3339Ns('2024-05-01T12:00:00+02:00'), base);
  assert.equal(parseRfc3339Ns('0001-01-01T00:00:00Z'), undefined, 'never started');
  assert.equal(parseRfc3339Ns('yesterday'), undefined);
  assert.equal(parseRfc3339Ns(undefined), undefined);
});

const ident = (full: string, type = 'docker', pod_uid?: string): CgroupContainer => ({ id: full.slice(0, 12), full_id: full, type, ...(pod_uid ? { pod_uid } : {}) });

test('Docker API: name, image, digest, privileged, mounts, start time, labels; cached by id', async () => {
  const api = await startDockerStandIn();
  try {
    const resolver = new ContainerResolver({ clients: [new DockerClient({ socketPath: api.socketPath, timeoutMs: 5000 })] });
    const first = resolver.get(ident(NGINX_ID));
    // The first answer never waits: the id, no name yet.
    assert.equal(first.container.id, NGINX_ID.slice(0, 12));
    assert.equal(first.container.name, undefined);
    assert.equal(first.final, false);
    const r = await resolver.resolve(ident(NGINX_ID), 10_000);
    assert.equal(r.final, true);
    const c = r.container;
    assert.equal(c.id, '3ad7b26ded6d');
    assert.equal(c.full_id, NGINX_ID);
    assert.equal(c.name, 'web');
    assert.equal(c.type, 'docker');
    assert.equal(c.image, 'nginx:1.25');
    assert.equal(c.image_repository, 'nginx');
    assert.equal(c.image_tag, '1.25');
    assert.equal(c.image_digest, NGINX_DIGEST, 'digest from the image record');
    assert.equal(c.image_id, 'a8758716bb6aa4d90071160d27028fe4eaee7ce8166221a97d30440c8eac2be6');
    assert.equal(c.privileged, true);
    assert.equal(c.start_ts, BigInt(Date.UTC(2024, 4, 1, 10)) * 1_000_000n + 123_456_789n);
    assert.deepEqual(c.mounts, [
      { source: '/var/run/docker.sock', dest: '/var/run/docker.sock', mode: '', rw: true, propagation: 'rprivate' },
      { source: '/var/lib/docker/volumes/data/_data', dest: '/data', mode: 'z', rw: false, propagation: '' },
    ]);
    assert.equal(c.labels?.maintainer, 'NGINX Docker Maintainers <docker-maint@nginx.com>');
    assert.equal(r.k8s, undefined);
    const asked = api.requests.length;
    assert.deepEqual(api.requests.filter((p) => p.includes('/containers/')), [`/containers/${NGINX_ID}/json`]);
    assert.equal(resolver.get(ident(NGINX_ID)).container.name, 'web');
    await resolver.resolve(ident(NGINX_ID), 1000);
    assert.equal(api.requests.length, asked, 'answered from the cache');
    assert.equal(resolver.stats.found, 1);
  } finally {
    await api.close();
  }
});

test('Docker API: a pod container gets image from the image record and pod from labels', async () => {
  const api = await startDockerStandIn();
  try {
    const resolver = new ContainerResolver({ clients: [new DockerClient({ socketPath: api.socketPath, timeoutMs: 5000 })] });
    // cgroupfs kubepods paths do not say which runtime: reported as containerd until one answers.
    const r = await resolver.resolve(ident(POD_CTR_ID, 'containerd', '3e41dc6b-08a8-44db-bc2a-3724b18ab19a'), 10_000);
    assert.equal(r.container.type, 'docker');
    assert.equal(r.container.name, 'k8s_miner_web-7d9c_shop_3e41dc6b-08a8-44db-bc2a-3724b18ab19a_0');
    assert.equal(r.container.image, 'ghcr.io/evil/xmrig:6.21.0');
    assert.equal(r.container.image_repository, 'ghcr.io/evil/xmrig');
    assert.equal(r.container.image_tag, '6.21.0');
    assert.equal(r.container.image_digest, 'sha256:1111111111111111111111111111111111111111111111111111111111111111');
    assert.equal(r.container.privileged, false);
    assert.deepEqual(r.k8s, { pod_uid: '3e41dc6b-08a8-44db-bc2a-3724b18ab19a', pod_name: 'web-7d9c', ns_name: 'shop' });
  } finally {
    await api.close();
  }
});

test('Docker API: an unknown id (404) is final, remembered briefly, then asked again', async () => {
  const api = await startDockerStandIn();
  try {
    let now = 1_000_000;
    const resolver = new ContainerResolver({
      clients: [new DockerClient({ socketPath: api.socketPath, timeoutMs: 5000 })],
      negativeTtlMs: 5000,
      now: () => now,
    });
    const id = ident(ID2, 'containerd', UID);
    const r = await resolver.resolve(id, 10_000);
    assert.equal(r.final, true);
    assert.equal(r.container.id, ID2.slice(0, 12));
    assert.equal(r.container.name, undefined);
    assert.deepEqual(r.k8s, { pod_uid: UID }, 'the pod UID from the cgroup path stays');
    assert.equal(resolver.stats.missing, 1);
    const asked = api.requests.length;
    await resolver.resolve(id, 1000);
    assert.equal(api.requests.length, asked, 'the 404 is cached');
    now += 5001;
    await resolver.resolve(id, 10_000);
    assert.equal(api.requests.length, asked + 1, 'asked again after the negative TTL');
  } finally {
    await api.close();
  }
});

test('Docker API: a runtime that does not answer in time leaves the id alone, never blocks', async () => {
  const api = await startDockerStandIn();
  try {
    const resolver = new ContainerResolver({ clients: [new DockerClient({ socketPath: api.socketPath, timeoutMs: 200 })] });
    const slow = ident(SLOW_ID);
    // A caller that waits only a moment gets what is known and goes on.
    const quick = await resolver.resolve(slow, 1);
    assert.equal(quick.container.id, SLOW_ID.slice(0, 12));
    assert.equal(quick.container.name, undefined);
    // The lookup itself ends on the client's timeout, as an error (not "no such container").
    const later = await resolver.resolve(slow, 60_000);
    assert.equal(later.container.name, undefined);
    assert.equal(later.final, false, 'to be asked again later');
    assert.equal(resolver.stats.errors, 1);
    assert.equal(resolver.stats.found, 0);
  } finally {
    await api.close();
  }
});

test('no runtime socket: errors are counted, not thrown; unhandled types are not asked', async () => {
  const missing = join('/nonexistent-dir-for-minewatch', 'docker.sock');
  const resolver = new ContainerResolver({ clients: [new DockerClient({ socketPath: missing })] });
  const r = await resolver.resolve(ident(ID), 10_000);
  assert.equal(r.container.id, ID.slice(0, 12));
  assert.equal(r.container.type, 'docker');
  assert.equal(resolver.stats.errors, 1);
  const pod = resolver.get(ident(ID2, 'podman'));
  assert.equal(pod.final, true, 'no client handles podman: the cgroup word is final');
  assert.equal(resolver.stats.lookups, 1);
  const bare = new ContainerResolver();
  assert.equal(bare.get(ident(ID)).final, true);
});

test('the resolver stays bounded', async () => {
  const resolver = new ContainerResolver({ maxEntries: 3 });
  for (let i = 0; i < 10; i++) resolver.get(ident(i.toString(16).padStart(64, '0')));
  assert.equal(resolver.stats.entries, 3);
  assert.equal(NGINX_ID, ID);
});
