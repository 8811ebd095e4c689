/**
 * What a k8s_audit match gives the response actions: the object the API request named (objectRef,
 * with the uid, labels and images the request and response carried), who sent it, and which
 * actions can apply at all. An audit event is an API request, not a process: kill and the other
 * process actions are skipped with the reason, as are cluster actions the object's kind does not
 * take (delete_pod on a Deployment). Nothing here calls the API.
 */
import type { PluginEvent } from '../../events.js';
import { ADMISSION_TYPE } from '../../k8s-api/audit-event.js';
import { allContainers, isObj, kindOfResource, podSpecOf } from '../../k8s-api/workload.js';
import type { ActionName, K8sObjectTarget, Target } from '../types.js';

// Not common.js's: that one loads the API client, which the dispatcher of an agent without a
// cluster must not pay for.
type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (isObj(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The kinds quarantine_workload handles, and isolate_pod (each has pods with labels). */
export const QUARANTINE_KINDS: ReadonlySet<string> = new Set(['Pod', 'Deployment', 'StatefulSet', 'ReplicaSet', 'CronJob', 'DaemonSet', 'Job']);

/** Actions on a process or its connections: an audit event has none. */
const PROCESS_ACTIONS: ReadonlySet<ActionName> = new Set(['kill', 'kill_container', 'block_destination']);

/** A labels map with its string values (absent: empty). */
export function stringLabels(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(obj(v) ?? {})) if (typeof x === 'string') out[k] = x;
  return out;
}

/** A workload object's pod template (a CronJob's is one level deeper). */
export function templateOf(o: unknown, kind: string): Json | undefined {
  const spec = obj(obj(o)?.spec);
  if (kind === 'CronJob') return obj(obj(obj(spec?.jobTemplate)?.spec)?.template);
  return obj(spec?.template);
}

export interface AuditTarget {
  target: Target;
  /** Who sent the request (user.username). */
  user?: string;
  /** Why the event names no object the cluster actions can act on (a refused request, no name, …). */
  noObject?: string;
}

/**
 * The target of a k8s_audit event. The whole object is taken from the response (what was stored)
 * or else the request, but only when the request sent a whole object: a patch body is a fragment,
 * so its labels are not the object's (isolate_pod then reads the object from the API).
 */
export function auditTarget(ev: PluginEvent): AuditTarget {
  const p = obj(ev.payload) ?? {};
  const ref = obj(p.objectRef) ?? {};
  const user = str(obj(p.user)?.username);
  const verb = str(p.verb);
  const resource = str(ref.resource);
  const kind = kindOfResource(resource);
  const request = obj(p.requestObject);
  const response = obj(p.responseObject);
  const whole = response && str(response.kind) ? response : verb !== 'patch' && request && str(request.kind) ? request : undefined;
  const meta = (o: Record<string, unknown> | undefined) => obj(o?.metadata);
  const namespace = str(ref.namespace) ?? str(meta(whole)?.namespace) ?? str(meta(request)?.namespace);
  const name = str(ref.name) ?? str(meta(response)?.name) ?? str(meta(request)?.name);
  const target: Target = { pid: 0, k8s: namespace ? { ns_name: namespace } : undefined };
  const code = obj(p.responseStatus)?.code;
  if (ev.type === ADMISSION_TYPE) return { target, user, noObject: 'an admission request: the object does not exist yet (the admission webhook in enforce mode denies it)' };
  if (typeof code === 'number' && code >= 300) return { target, user, noObject: `the API server answered ${code} to this ${verb ?? ''} request: no object was created or changed` };
  if (!resource || !kind || !QUARANTINE_KINDS.has(kind)) return { target, user, noObject: `the event names ${resource ? `a ${resource} object` : 'no object'}, not a pod or a workload` };
  if (!namespace || !name) return { target, user, noObject: `the event does not name the ${kind} (objectRef.${namespace ? 'name' : 'namespace'} and the request object's metadata are empty)` };
  const uid = str(meta(response)?.uid) ?? (verb !== 'create' ? str(meta(request)?.uid) : undefined);
  const images = allContainers(podSpecOf(whole ?? request, kind)).map((c) => str(c.image)).filter((s): s is string => !!s);
  const object: K8sObjectTarget = {
    kind, resource: resource!, apiGroup: str(ref.apiGroup) ?? '', namespace, name, uid,
    labels: whole ? stringLabels(meta(whole)?.labels) : undefined,
    templateLabels: whole && kind !== 'Pod' ? stringLabels(obj(templateOf(whole, kind)?.metadata)?.labels) : undefined,
    images: images.length ? images : undefined,
    user, verb,
  };
  target.object = object;
  if (kind === 'Pod') target.k8s = { ns_name: namespace, pod_name: name, pod_uid: uid, pod_labels: object.labels };
  return { target, user };
}

/** Why `action` cannot apply to this audit target, or undefined when it can. */
export function auditSkipReason(action: ActionName, a: AuditTarget): string | undefined {
  if (PROCESS_ACTIONS.has(action)) return `${action} acts on a process and a k8s_audit event is an API request, with no process: use delete_pod or quarantine_workload`;
  if (action === 'suggest_revoke') return a.user ? undefined : 'the audit event names no user (user.username): nobody to suggest revoking';
  const o = a.target.object;
  if (!o) return a.noObject ?? 'the event names no object';
  if (action === 'delete_pod' && o.kind !== 'Pod') return `the event names ${o.kind} ${o.namespace}/${o.name}, not a pod: delete_pod acts on pods (quarantine_workload stops a ${o.kind})`;
  return undefined;
}

/** A short phrase for annotations and alerts: "create of Deployment default/xmrig by kubernetes-admin". */
export function describeRequest(o: K8sObjectTarget): string {
  return `${o.verb ?? 'request'} of ${o.kind} ${o.namespace}/${o.name}${o.user ? ` by ${o.user}` : ''}`;
}
