/**
 * What the Kubernetes response actions share: which pod a request is about, the checks that come
 * before any API call (not in a pod, allow-listed, the agent's own namespace, a protected
 * namespace), reading the pod and its owners afresh from the API (the event's copy may be old),
 * and turning API failures into outcomes (gone or replaced is `missed`, the rest `failed`, a 403
 * naming the RBAC rule to grant).
 */
import type { K8sClient } from '../../k8s-api/client.js';
import { type ApiCall, K8sApiError, callApi } from '../../k8s-api/client.js';
import type { AllowList } from '../safety.js';
import type { ActionOutcome, ActionRequest, ActionResult } from '../types.js';
import { type Recheck, liveMismatch } from './live-check.js';

export interface K8sActionOptions {
  client: K8sClient;
  /** The response allow-list (images, namespaces, executables). */
  allow?: AllowList;
  /** The agent's own namespace (POD_NAMESPACE): never acted on. */
  selfNamespace?: string;
  /** Namespaces whose workloads quarantine_workload never scales down or deletes (default kube-system, kube-public, kube-node-lease). */
  protectedNamespaces?: readonly string[];
  /**
   * Runs a rule's condition again (the agent's engine): before acting on what an audit event
   * named, on the object as the API returns it now. Without it, images and commands are compared.
   */
  recheck?: Recheck;
}

export const DEFAULT_PROTECTED_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'];

/** Annotation and label keys minewatch writes, so its changes can be found and undone. */
export const ANNOTATION_PREFIX = 'minewatch.io/';
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'minewatch' };

export interface PodRef {
  namespace: string;
  name: string;
  uid?: string;
}

type Json = Record<string, unknown>;
export const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
export const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function result(req: ActionRequest, outcome: ActionOutcome, reason: string, details?: Record<string, string | number | boolean>): ActionResult {
  const request = details ? { ...req, details: { ...req.details, ...details } } : req;
  return { request, outcome, reason };
}

/** The pod named by the request, or why there is none to act on. */
export function podOfRequest(req: ActionRequest): PodRef | string {
  const k = req.target.k8s;
  if (!k?.ns_name || !k.pod_name) return 'not in a known Kubernetes pod (no k8s.ns.name/k8s.pod.name on the event: is pod enrichment on?)';
  return { namespace: k.ns_name, name: k.pod_name, uid: k.pod_uid };
}

/** Why this pod must not be acted on, if it must not. */
export function spareReason(req: ActionRequest, pod: PodRef, opts: K8sActionOptions, workloadLevel: boolean): string | undefined {
  const allowed = opts.allow?.targetReason(req.target);
  if (allowed) return allowed;
  if (opts.selfNamespace && pod.namespace === opts.selfNamespace) return `namespace ${pod.namespace} is minewatch's own`;
  const prot = opts.protectedNamespaces ?? DEFAULT_PROTECTED_NAMESPACES;
  if (workloadLevel && prot.includes(pod.namespace)) return `namespace ${pod.namespace} is protected: its workloads are never scaled down or deleted (delete_pod still works there)`;
  return undefined;
}

export type Details = Record<string, string | number | boolean>;

/**
 * The pod a request acts on, with the alert details naming it; or the `spared` result that ends
 * the action (no pod known, allow-listed, minewatch's own or a protected namespace).
 */
export function podTarget(req: ActionRequest, opts: K8sActionOptions, workloadLevel: boolean, extra: (pod: PodRef) => Details = () => ({})): { pod: PodRef; details: Details } | ActionResult {
  const pod = podOfRequest(req);
  if (typeof pod === 'string') return result(req, 'spared', pod);
  const details: Details = { namespace: pod.namespace, pod: pod.name, ...extra(pod) };
  const spare = spareReason(req, pod, opts, workloadLevel);
  return spare ? result(req, 'spared', spare, details) : { pod, details };
}

/**
 * The `spared` result that ends an action when the object just read from the API no longer
 * matches what the rule matched (live-check.ts), with why; undefined when it still does.
 */
export function unlessStillMatching(req: ActionRequest, opts: K8sActionOptions, live: unknown, kind: string, details?: Details): ActionResult | undefined {
  const why = liveMismatch(req, live, kind, opts.recheck);
  return why ? result(req, 'spared', why, details) : undefined;
}

/** A failed API call as an outcome: the object gone (404) or replaced (409) is a lost race. */
export function failureResult(req: ActionRequest, e: unknown, details?: Record<string, string | number | boolean>): ActionResult {
  if (e instanceof K8sApiError) {
    const s = e.failure.status;
    if (s === 404) return result(req, 'missed', `gone before the action: ${e.message}`, details);
    if (s === 409) return result(req, 'missed', `replaced or changed before the action: ${e.message}`, details);
    return result(req, 'failed', e.message, details);
  }
  return result(req, 'failed', e instanceof Error ? e.message : String(e), details);
}

/**
 * GETs in flight, per client and object. The actions one match asks for start together and each
 * reads the same object first (the pod, the workload): they share one GET, sent when the first of
 * them asks, so none sees an older object than its own read would have shown, and the API server
 * is asked once per match rather than once per action. An entry goes as soon as its answer comes:
 * nothing is cached, a later action reads afresh.
 */
const inFlightGets = new WeakMap<K8sClient, Map<string, Promise<unknown>>>();

function getsOf(client: K8sClient): Map<string, Promise<unknown>> {
  let gets = inFlightGets.get(client);
  if (!gets) inFlightGets.set(client, (gets = new Map<string, Promise<unknown>>()));
  return gets;
}

function sharedGet(client: K8sClient, call: ApiCall, name: string, fn: () => Promise<unknown>): Promise<unknown> {
  const gets = getsOf(client);
  const key = `${call.group}/${call.resource}/${call.namespace ?? ''}/${name}`;
  const pending = gets.get(key);
  if (pending) return pending;
  const p = callApi<unknown>(call, fn);
  gets.set(key, p);
  const forget = (): void => void gets.delete(key);
  p.then(forget, forget);
  return p;
}

/** Read the pod; its uid must be the matched one (a StatefulSet reuses names). */
export async function readPod(client: K8sClient, pod: PodRef): Promise<Json> {
  const call: ApiCall = { verb: 'get', resource: 'pods', group: '', namespace: pod.namespace };
  const p = obj(await sharedGet(client, call, pod.name, () => client.core.readNamespacedPod({ name: pod.name, namespace: pod.namespace })));
  const uid = str(obj(p?.metadata)?.uid);
  if (pod.uid && uid && uid !== pod.uid) {
    throw new K8sApiError(call, { status: 409, reason: 'Conflict', message: `pod ${pod.namespace}/${pod.name} is now uid ${uid}, not the matched ${pod.uid}` });
  }
  return p ?? {};
}

/** Read a workload of `kind` (Deployment, StatefulSet, ReplicaSet, DaemonSet, Job, CronJob); its uid must be `uid` when given. */
export async function readWorkload(client: K8sClient, kind: string, namespace: string, name: string, uid?: string): Promise<Json> {
  const { apps, batch } = client;
  const readers: Record<string, [string, string, () => Promise<unknown>]> = {
    Deployment: ['apps', 'deployments', () => apps.readNamespacedDeployment({ name, namespace })],
    StatefulSet: ['apps', 'statefulsets', () => apps.readNamespacedStatefulSet({ name, namespace })],
    ReplicaSet: ['apps', 'replicasets', () => apps.readNamespacedReplicaSet({ name, namespace })],
    DaemonSet: ['apps', 'daemonsets', () => apps.readNamespacedDaemonSet({ name, namespace })],
    Job: ['batch', 'jobs', () => batch.readNamespacedJob({ name, namespace })],
    CronJob: ['batch', 'cronjobs', () => batch.readNamespacedCronJob({ name, namespace })],
  };
  const r = readers[kind];
  if (!r) throw new Error(`${kind} is not a workload kind minewatch reads`);
  const call: ApiCall = { verb: 'get', resource: r[1], group: r[0], namespace };
  const o = obj(await sharedGet(client, call, name, r[2])) ?? {};
  const now = str(obj(o.metadata)?.uid);
  if (uid && now && now !== uid) throw new K8sApiError(call, { status: 409, reason: 'Conflict', message: `${kind} ${namespace}/${name} is now uid ${now}, not the matched ${uid}` });
  return o;
}

export interface OwnerRef {
  kind: string;
  name: string;
  uid?: string;
  apiVersion?: string;
}

export function controllerOf(o: unknown): OwnerRef | undefined {
  const refs = (Array.isArray(obj(obj(o)?.metadata)?.ownerReferences) ? (obj(obj(o)?.metadata)!.ownerReferences as unknown[]) : []).map(obj).filter((r): r is Json => !!r);
  const r = refs.find((x) => x.controller === true);
  const kind = str(r?.kind);
  const name = str(r?.name);
  return r && kind && name ? { kind, name, uid: str(r.uid), apiVersion: str(r.apiVersion) } : undefined;
}

/** The pod's controllers from the direct one up (ReplicaSet → Deployment, Job → CronJob), read from the API. */
export async function ownerChain(client: K8sClient, namespace: string, pod: unknown): Promise<OwnerRef[]> {
  const chain: OwnerRef[] = [];
  let cur = controllerOf(pod);
  while (cur && chain.length < 4) {
    chain.push(cur);
    let o: unknown;
    const name = cur.name;
    if (cur.kind === 'ReplicaSet') {
      o = await sharedGet(client, { verb: 'get', resource: 'replicasets', group: 'apps', namespace }, name, () => client.apps.readNamespacedReplicaSet({ name, namespace }));
    } else if (cur.kind === 'Job') {
      o = await sharedGet(client, { verb: 'get', resource: 'jobs', group: 'batch', namespace }, name, () => client.batch.readNamespacedJob({ name, namespace }));
    } else {
      break;
    }
    cur = controllerOf(o);
  }
  return chain;
}

/** Single-quote a word for a shell command line. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
