/**
 * A stand-in Docker Engine API on a unix socket in a temp dir: real HTTP over the socket, with
 * responses shaped like dockerd's. These machines have no container runtime, so this is what the
 * Docker client is tested against.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NGINX_ID = '3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e';
export const NGINX_IMAGE_ID = 'sha256:a8758716bb6aa4d90071160d27028fe4eaee7ce8166221a97d30440c8eac2be6';
export const NGINX_DIGEST = 'sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31';
export const POD_CTR_ID = 'b8a1f5c3e2d94f0a9c7b6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291';
export const SLOW_ID = '5e1f0c0ffee0000000000000000000000000000000000000000000000000dead';

/** GET /containers/<id>/json for a plain `docker run --privileged -v … nginx:1.25`. */
export function nginxRecord(): Record<string, unknown> {
  return {
    Id: NGINX_ID,
    Created: '2024-05-01T09:59:58.918273645Z',
    Path: '/docker-entrypoint.sh',
    Args: ['nginx', '-g', 'daemon off;'],
    State: {
      Status: 'running', Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false,
      Pid: 4321, ExitCode: 0, Error: '', StartedAt: '2024-05-01T10:00:00.123456789Z', FinishedAt: '0001-01-01T00:00:00Z',
    },
    Image: NGINX_IMAGE_ID,
    ResolvConfPath: `/var/lib/docker/containers/${NGINX_ID}/resolv.conf`,
    Name: '/web',
    RestartCount: 0,
    Driver: 'overlay2',
    Platform: 'linux',
    HostConfig: { Binds: ['/var/run/docker.sock:/var/run/docker.sock'], NetworkMode: 'bridge', Privileged: true, PidMode: '', CapAdd: null },
    GraphDriver: {
      Name: 'overlay2',
      Data: {
        LowerDir: '/var/lib/docker/overlay2/1f2e-init/diff:/var/lib/docker/overlay2/9a8b/diff',
        MergedDir: '/var/lib/docker/overlay2/1f2e/merged',
        UpperDir: '/var/lib/docker/overlay2/1f2e/diff',
        WorkDir: '/var/lib/docker/overlay2/1f2e/work',
      },
    },
    Mounts: [
      { Type: 'bind', Source: '/var/run/docker.sock', Destination: '/var/run/docker.sock', Mode: '', RW: true, Propagation: 'rprivate' },
      { Type: 'volume', Name: 'data', Source: '/var/lib/docker/volumes/data/_data', Destination: '/data', Driver: 'local', Mode: 'z', RW: false, Propagation: '' },
    ],
    Config: {
      Hostname: '3ad7b26ded6d', User: '', Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NGINX_VERSION=1.25.5'],
      Cmd: ['nginx', '-g', 'daemon off;'], Image: 'nginx:1.25',
      Labels: { maintainer: 'NGINX Docker Maintainers <docker-maint@nginx.com>' },
    },
    NetworkSettings: { IPAddress: '172.17.0.2' },
  };
}

/** A Kubernetes pod's container under dockershim / cri-dockerd: image by id, pod labels. */
export function podRecord(): Record<string, unknown> {
  return {
    Id: POD_CTR_ID,
    Name: '/k8s_miner_web-7d9c_shop_3e41dc6b-08a8-44db-bc2a-3724b18ab19a_0',
    State: { Status: 'running', Running: true, Pid: 777, StartedAt: '2024-05-02T08:30:00Z' },
    Image: 'sha256:77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa',
    HostConfig: { Privileged: false },
    Mounts: [],
    Config: {
      Image: 'sha256:77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa',
      Labels: {
        'io.kubernetes.container.name': 'miner',
        'io.kubernetes.pod.name': 'web-7d9c',
        'io.kubernetes.pod.namespace': 'shop',
        'io.kubernetes.pod.uid': '3e41dc6b-08a8-44db-bc2a-3724b18ab19a',
      },
    },
  };
}

export interface StandIn {
  socketPath: string;
  /** Requests received, by path. */
  requests: string[];
  close(): Promise<void>;
}

export async function startDockerStandIn(): Promise<StandIn> {
  const dir = mkdtempSync(join(tmpdir(), 'mw-docker-'));
  const socketPath = join(dir, 'docker.sock');
  const requests: string[] = [];
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Api-Version': '1.45', Server: 'Docker/26.1.0 (linux)', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '';
    requests.push(path);
    const m = /^\/(?:v[\d.]+\/)?containers\/([^/]+)\/json$/.exec(path);
    if (m) {
      const id = decodeURIComponent(m[1]!);
      if (id === NGINX_ID) return send(res, 200, nginxRecord());
      if (id === POD_CTR_ID) return send(res, 200, podRecord());
      if (id === SLOW_ID) return; // never answers: the client's timeout must end it
      return send(res, 404, { message: `No such container: ${id}` });
    }
    const im = /^\/(?:v[\d.]+\/)?images\/([^/]+)\/json$/.exec(path);
    if (im) {
      const id = decodeURIComponent(im[1]!);
      if (id === NGINX_IMAGE_ID) {
        return send(res, 200, { Id: NGINX_IMAGE_ID, RepoTags: ['nginx:1.25', 'nginx:latest'], RepoDigests: [`nginx@${NGINX_DIGEST}`] });
      }
      if (id.startsWith('sha256:77aa')) {
        return send(res, 200, { Id: id, RepoTags: ['ghcr.io/evil/xmrig:6.21.0'], RepoDigests: ['ghcr.io/evil/xmrig@sha256:1111111111111111111111111111111111111111111111111111111111111111'] });
      }
      return send(res, 404, { message: `No such image: ${id}` });
    }
    send(res, 404, { message: 'page not found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    socketPath,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
