/**
 * A thin layer over @kubernetes/client-node (v2, promise API): where the API server is and how to
 * authenticate, the typed API groups the agent uses, and what a failed call means in words a user
 * can act on (a 403 names the verb, the resource and the RBAC rule to grant).
 *
 * Three ways to find the API server, in this order:
 * - `server` (+ `token`): an explicit URL, as tests point the client at their loopback stand-in;
 * - `kubeconfig`: a kubeconfig file (its current context);
 * - in-cluster: the pod's service account token and the KUBERNETES_SERVICE_HOST/PORT env.
 */
import type {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  NetworkingV1Api,
  RbacAuthorizationV1Api,
  Watch,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { createRequire } from 'node:module';

type ClientLib = typeof import('@kubernetes/client-node');
let loaded: ClientLib | undefined;

/**
 * @kubernetes/client-node, loaded on first use: it costs some 70 MB of memory, which an agent that
 * never talks to a cluster should not carry (issue 16). Node 20.19+ loads it synchronously.
 */
export function k8sLib(): ClientLib {
  loaded ??= createRequire(import.meta.url)('@kubernetes/client-node') as ClientLib;
  return loaded;
}

export interface K8sClientOptions {
  /** API server URL (https://host:port, or http://127.0.0.1:port for a loopback stand-in). */
  server?: string;
  /** Bearer token sent with `server`. */
  token?: string;
  /** Skip TLS verification of `server` (tests only). */
  insecureSkipTlsVerify?: boolean;
  /** Path of a kubeconfig file; its current context is used. */
  kubeconfig?: string;
  /** Force the in-cluster config (service account) even when a kubeconfig is given. */
  inCluster?: boolean;
}

export function kubeConfigFor(opts: K8sClientOptions): KubeConfig {
  const kc = new (k8sLib().KubeConfig)();
  if (opts.server) {
    kc.loadFromOptions({
      // client-node refuses plain http unless TLS verification is off; http is only for loopback stand-ins.
      clusters: [{ name: 'minewatch', server: opts.server, skipTLSVerify: opts.insecureSkipTlsVerify ?? opts.server.startsWith('http://') }],
      users: [{ name: 'minewatch', token: opts.token }],
      contexts: [{ name: 'minewatch', cluster: 'minewatch', user: 'minewatch' }],
      currentContext: 'minewatch',
    });
  } else if (opts.kubeconfig && !opts.inCluster) {
    try {
      kc.loadFromFile(opts.kubeconfig);
    } catch (e) {
      throw new Error(`cannot load kubeconfig ${opts.kubeconfig}: ${(e as Error).message}; point k8s.api.kubeconfig at a readable kubeconfig file or leave it empty to use the in-cluster service account`);
    }
  } else {
    if (!process.env.KUBERNETES_SERVICE_HOST) {
      throw new Error('not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is unset): set k8s.api.kubeconfig to a kubeconfig file');
    }
    kc.loadFromCluster();
  }
  if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${opts.kubeconfig ?? ''} has no current cluster: set current-context`);
  return kc;
}

/** The API groups minewatch talks to, built once per config. */
export class K8sClient {
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly batch: BatchV1Api;
  readonly net: NetworkingV1Api;
  readonly rbac: RbacAuthorizationV1Api;

  constructor(opts: K8sClientOptions | KubeConfig) {
    const L = k8sLib();
    this.kc = opts instanceof L.KubeConfig ? opts : kubeConfigFor(opts);
    this.core = this.kc.makeApiClient(L.CoreV1Api);
    this.apps = this.kc.makeApiClient(L.AppsV1Api);
    this.batch = this.kc.makeApiClient(L.BatchV1Api);
    this.net = this.kc.makeApiClient(L.NetworkingV1Api);
    this.rbac = this.kc.makeApiClient(L.RbacAuthorizationV1Api);
  }

  get server(): string {
    return this.kc.getCurrentCluster()?.server ?? '';
  }

  /** A watch with an inactivity timeout of `idleMs` (the server sends bookmarks well within it). */
  watcher(idleMs: number): Watch {
    const w = new (k8sLib().Watch)(this.kc);
    // Private in the typings, public at run time: the default (30 s) is shorter than the gap
    // between an API server's bookmarks.
    (w as unknown as { requestTimeoutMs: number }).requestTimeoutMs = idleMs;
    return w;
  }
}

/** Options that make a generated patch call send a JSON merge patch. */
export const mergePatch = (): ReturnType<typeof setHeaderOptions> => k8sLib().setHeaderOptions('Content-Type', k8sLib().PatchStrategy.MergePatch);

/** What went wrong in an API call, as far as it can be told. */
export interface ApiFailure {
  /** HTTP status; 0 when the server was not reached. */
  status: number;
  /** The Status object's reason (Forbidden, NotFound, Conflict, Expired, …) or the network error code. */
  reason: string;
  message: string;
}

export function apiFailure(e: unknown): ApiFailure {
  // Without the library loaded, no call was made and no ApiException exists.
  if (loaded && e instanceof loaded.ApiException) {
    let body: Record<string, unknown> | undefined;
    if (typeof e.body === 'string') {
      try {
        body = JSON.parse(e.body) as Record<string, unknown>;
      } catch {
        body = undefined;
      }
    } else if (e.body && typeof e.body === 'object') body = e.body as Record<string, unknown>;
    const reason = typeof body?.reason === 'string' ? body.reason : '';
    const message = typeof body?.message === 'string' ? body.message : `HTTP ${e.code}`;
    return { status: e.code, reason, message };
  }
  const err = e as { statusCode?: number; code?: string; cause?: { code?: string; message?: string }; message?: string };
  if (typeof err?.statusCode === 'number') return { status: err.statusCode, reason: '', message: err.message ?? `HTTP ${err.statusCode}` };
  const code = err?.cause?.code ?? err?.code ?? '';
  return { status: 0, reason: code, message: err?.cause?.message ?? err?.message ?? String(e) };
}

/** What one API call does, for error messages and the RBAC hint. */
export interface ApiCall {
  verb: string;
  /** Plural resource, with its subresource when there is one: "deployments", "deployments/scale". */
  resource: string;
  /** API group: '' for the core group. */
  group: string;
  namespace?: string;
}

/** The ClusterRole rule that allows `call`, as YAML flow text. */
export function rbacRuleFor(call: ApiCall): string {
  return `{apiGroups: ["${call.group}"], resources: ["${call.resource}"], verbs: ["${call.verb}"]}`;
}

/** A failed call in words: which verb on which resource, and for a 403 the rule to grant. */
export function describeFailure(call: ApiCall, f: ApiFailure): string {
  const where = call.namespace ? ` in namespace ${call.namespace}` : ' cluster-wide';
  const what = `${call.verb} ${call.group ? `${call.resource}.${call.group}` : call.resource}${where}`;
  if (f.status === 403) {
    return `forbidden to ${what}: grant minewatch's service account the RBAC rule ${rbacRuleFor(call)}${call.namespace ? ' (in a ClusterRole, or a Role in that namespace)' : ' in a ClusterRole'} (${f.message})`;
  }
  if (f.status === 401) return `unauthorized to ${what}: the API server rejected minewatch's credentials (${f.message}); check the token or kubeconfig`;
  if (f.status === 0) return `cannot reach the API server to ${what}: ${f.reason ? `${f.reason}: ` : ''}${f.message}`;
  return `${what} failed: HTTP ${f.status}${f.reason ? ` ${f.reason}` : ''}: ${f.message}`;
}

/** An API call's failure with its description; `failure.status` tells 403s from the rest. */
export class K8sApiError extends Error {
  constructor(readonly call: ApiCall, readonly failure: ApiFailure) {
    super(describeFailure(call, failure));
    this.name = 'K8sApiError';
  }
}

/** Run one API call; a failure becomes a K8sApiError that says what was attempted. */
export async function callApi<T>(call: ApiCall, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof K8sApiError) throw e;
    throw new K8sApiError(call, apiFailure(e));
  }
}
