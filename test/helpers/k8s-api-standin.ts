/**
 * A stand-in Kubernetes API server on 127.0.0.1 (port 0): real HTTP, answers shaped like
 * kube-apiserver's (List objects with resourceVersion, watch streams of JSON lines with BOOKMARK
 * and ERROR/410 events, Status objects for errors), and a record of every request (method, path,
 * query, body) for tests to assert on. No API server can run on these machines.
 *
 * Routes are scripted per test: `on(method, path, handler)`; the newest matching route answers.
 * Unmatched requests get a 404 Status, as the API server gives for an unknown object. A bearer
 * token is required on every request (401 otherwise), as a real server would.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  contentType?: string;
  authorization?: string;
}

export type Handler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

interface Route {
  method: string;
  path: string | RegExp;
  handler: Handler;
  once: boolean;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A metav1.Status failure, as the API server answers errors. */
export function statusObject(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, details, code };
}

export function sendStatus(res: ServerResponse, code: number, reason: string, message: string, details?: Record<string, unknown>): void {
  sendJson(res, code, statusObject(code, reason, message, details));
}

/** The API server's 403 body for a verb on a resource. */
export function sendForbidden(res: ServerResponse, verb: string, resource: string, group: string, namespace?: string): void {
  const user = 'system:serviceaccount:minewatch:minewatch';
  const scope = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
  sendStatus(res, 403, 'Forbidden', `${resource}${group ? `.${group}` : ''} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${group}" ${scope}`, { kind: resource, group });
}

/** A List object: `kind` is e.g. "PodList". */
export function listObject(kind: string, apiVersion: string, resourceVersion: string, items: unknown[], cont?: string): Record<string, unknown> {
  return { kind, apiVersion, metadata: { resourceVersion, ...(cont ? { continue: cont } : {}) }, items };
}

/** One open watch response: the test sends events down it. */
export class WatchStream {
  readonly closed: Promise<void>;
  constructor(readonly request: RecordedRequest, private readonly res: ServerResponse) {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    this.closed = new Promise((r) => res.on('close', () => r()));
  }

  send(type: string, object: unknown): void {
    this.res.write(JSON.stringify({ type, object }) + '\n');
  }

  /** A BOOKMARK event as the server sends it: only kind, apiVersion and resourceVersion. */
  bookmark(kind: string, apiVersion: string, resourceVersion: string): void {
    this.send('BOOKMARK', { kind, apiVersion, metadata: { resourceVersion, annotations: { 'k8s.io/initial-events-end': 'true' } } });
  }

  /** The ERROR event a watch from a too-old resourceVersion gets. */
  gone(resourceVersion: string): void {
    this.send('ERROR', statusObject(410, 'Expired', `too old resource version: ${resourceVersion} (${Number(resourceVersion) + 1000})`));
  }

  end(): void {
    this.res.end();
  }

  /** Cut the connection without ending the stream (a crashed API server, a reset). */
  destroy(): void {
    this.res.socket?.destroy();
  }
}

export class K8sApiStandin {
  readonly requests: RecordedRequest[] = [];
  private routes: Route[] = [];
  private readonly sockets = new Set<Socket>();
  private server: Server;
  private port = 0;
  private waiters: Array<{ pred: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void; from: number }> = [];
  private watchWaiters: Array<(w: WatchStream) => void> = [];
  private pendingWatches: WatchStream[] = [];

  private constructor(readonly token: string) {
    this.server = this.makeServer();
  }

  static async start(token = 'standin-token'): Promise<K8sApiStandin> {
    const s = new K8sApiStandin(token);
    await s.listen(0);
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private makeServer(): Server {
    const server = createServer((req, res) => void this.handle(req, res));
    server.on('connection', (sock) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
    return server;
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /** Answer `method path` with `handler`; the newest matching route wins. Returns an unregister function. */
  on(method: string, path: string | RegExp, handler: Handler, once = false): () => void {
    const r: Route = { method, path, handler, once };
    this.routes.unshift(r);
    return () => {
      this.routes = this.routes.filter((x) => x !== r);
    };
  }

  once(method: string, path: string | RegExp, handler: Handler): void {
    this.on(method, path, handler, true);
  }

  /** Serve `GET path?watch=true` by handing each watch to the test (see nextWatch), and the list with `list`. */
  serveWatches(path: string, list?: Handler): void {
    this.on('GET', path, (req, res) => {
      if (req.query.watch !== 'true') return list ? list(req, res) : sendStatus(res, 404, 'NotFound', `no list scripted for ${path}`);
      const w = new WatchStream(req, res);
      const waiter = this.watchWaiters.shift();
      if (waiter) waiter(w);
      else this.pendingWatches.push(w);
    });
  }

  /** The next watch request to arrive (or one that arrived unclaimed). */
  nextWatch(): Promise<WatchStream> {
    const w = this.pendingWatches.shift();
    if (w) return Promise.resolve(w);
    return new Promise((r) => this.watchWaiters.push(r));
  }

  /** Resolves with the first request (from index `from` on) that `pred` accepts. */
  waitFor(pred: (r: RecordedRequest) => boolean, from = 0): Promise<RecordedRequest> {
    const hit = this.requests.slice(from).find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve) => this.waiters.push({ pred, resolve, from }));
  }

  /** The requests other than watches, as "METHOD path?sorted-query" lines, for exact asserts. */
  lines(filter: (r: RecordedRequest) => boolean = () => true): string[] {
    return this.requests.filter(filter).map(requestLine);
  }

  /** Stop answering: close the listener and cut every connection (an API server outage). */
  async outage(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }

  /** Listen again on the same port after an outage. */
  async recover(): Promise<void> {
    this.server = this.makeServer();
    await this.listen(this.port);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const u = new URL(req.url ?? '/', 'http://standin');
    const query: Record<string, string> = {};
    for (const [k, v] of u.searchParams) query[k] = v;
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown = undefined;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: u.pathname,
      query,
      body,
      contentType: req.headers['content-type'],
      authorization: req.headers.authorization,
    };
    this.requests.push(rec);
    const n = this.requests.length - 1;
    this.waiters = this.waiters.filter((w) => {
      if (n >= w.from && w.pred(rec)) {
        w.resolve(rec);
        return false;
      }
      return true;
    });
    if (rec.authorization !== `Bearer ${this.token}`) return sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
    const route = this.routes.find((r) => r.method === rec.method && (typeof r.path === 'string' ? r.path === rec.path : r.path.test(rec.path)));
    if (!route) return sendStatus(res, 404, 'NotFound', `the server could not find the requested resource (${rec.method} ${rec.path})`);
    if (route.once) this.routes = this.routes.filter((x) => x !== route);
    try {
      await route.handler(rec, res);
    } catch (e) {
      if (!res.headersSent) sendStatus(res, 500, 'InternalError', String(e));
    }
  }
}

export function requestLine(r: RecordedRequest): string {
  const q = Object.keys(r.query).sort().map((k) => `${k}=${r.query[k]}`).join('&');
  return `${r.method} ${r.path}${q ? `?${q}` : ''}`;
}

// ---- API objects, shaped as kube-apiserver returns them ----------------------------------------------

let rvCounter = 1000;
export const nextRv = (): string => String(++rvCounter);

export interface PodSpecLite {
  name: string;
  namespace: string;
  uid: string;
  node: string;
  labels?: Record<string, string>;
  /** Each container: name, image, and its runtime id with prefix ("containerd://<64 hex>"). */
  containers: Array<{ name: string; image: string; containerID?: string; command?: string[] }>;
  owner?: { apiVersion: string; kind: string; name: string; uid: string };
  serviceAccount?: string;
  podIP?: string;
  resourceVersion?: string;
}

export function podObject(p: PodSpecLite): Record<string, unknown> {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name: p.name,
      namespace: p.namespace,
      uid: p.uid,
      resourceVersion: p.resourceVersion ?? nextRv(),
      creationTimestamp: '2026-11-25T22:14:03Z',
      labels: p.labels ?? {},
      ...(p.owner ? { ownerReferences: [{ ...p.owner, controller: true, blockOwnerDeletion: true }] } : {}),
    },
    spec: {
      containers: p.containers.map((c) => ({
        name: c.name, image: c.image, ...(c.command ? { command: c.command } : {}), resources: {}, terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent',
      })),
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: p.serviceAccount ?? 'default',
      serviceAccount: p.serviceAccount ?? 'default',
      nodeName: p.node,
      securityContext: {},
      schedulerName: 'default-scheduler',
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {
      phase: 'Running',
      hostIP: '198.51.100.10',
      podIP: p.podIP ?? '10.244.1.17',
      podIPs: [{ ip: p.podIP ?? '10.244.1.17' }],
      startTime: '2026-11-25T22:14:03Z',
      qosClass: 'BestEffort',
      containerStatuses: p.containers.filter((c) => c.containerID).map((c) => ({
        name: c.name, ready: true, restartCount: 0, image: c.image, imageID: `${c.image}@sha256:${'ab'.repeat(32)}`,
        containerID: c.containerID, started: true, state: { running: { startedAt: '2026-11-25T22:14:05Z' } },
      })),
    },
  };
}

export function workloadObject(apiVersion: string, kind: string, namespace: string, name: string, uid: string, spec: Record<string, unknown>, owner?: { apiVersion: string; kind: string; name: string; uid: string }): Record<string, unknown> {
  return {
    kind,
    apiVersion,
    metadata: {
      name, namespace, uid, resourceVersion: nextRv(), generation: 1, creationTimestamp: '2026-11-25T22:10:00Z',
      ...(owner ? { ownerReferences: [{ ...owner, controller: true, blockOwnerDeletion: true }] } : {}),
    },
    spec,
  };
}
