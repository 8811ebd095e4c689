/**
 * The cluster half of `minewatch k8s scan`: what runs in the cluster, listed read-only, as plain
 * objects the scanner judges like manifests (each with its kind and apiVersion set, which list
 * items lack), plus the namespaces with whether each has a ResourceQuota and a LimitRange.
 *
 * Pods that a listed controller owns are left out (the Deployment, DaemonSet, StatefulSet, Job or
 * CronJob stands for them), as are finished pods and the Jobs a CronJob made, so one miner is one
 * finding. A resource the service account may not list (403) is reported once, with the RBAC rule
 * to grant, and the scan goes on with the rest; a failure that may pass (a timeout, a 5xx) is
 * retried a few times, never forever.
 */
import { type ApiCall, K8sApiError, type K8sClient, apiFailure, callApi, rbacRuleFor } from '../k8s-api/client.js';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);

export interface ListProblem {
  resource: string;
  group: string;
  verb: string;
  status: number;
  /** What went wrong and, for a 403, the rule to grant. */
  message: string;
  /** The ClusterRole rule that would allow the call. */
  rbac: string;
}

export interface NamespaceSummary {
  name: string;
  /** undefined when ResourceQuotas (LimitRanges) could not be listed: unknown, not absent. */
  resourceQuota: boolean | undefined;
  limitRange: boolean | undefined;
}

export interface ClusterListing {
  /** Workloads, Namespaces, ResourceQuotas and LimitRanges, each with kind and apiVersion. */
  objects: unknown[];
  namespaces: NamespaceSummary[];
  problems: ListProblem[];
}

export interface ListOptions {
  /** Attempts per resource for failures that may pass (default 3). */
  attempts?: number;
  /** Wait before the second attempt, doubled after (default 500 ms). */
  retryDelayMs?: number;
  /** Page size (default 500). */
  limit?: number;
}

interface Lister {
  kind: string;
  apiVersion: string;
  call: ApiCall;
  page: (limit: number, cont: string | undefined) => Promise<{ items: unknown[]; metadata?: { _continue?: string } }>;
}

/** Controllers that stand for the pods (or Jobs) they own. */
const COVERED_OWNERS = new Set(['ReplicaSet', 'Deployment', 'DaemonSet', 'StatefulSet', 'Job', 'CronJob']);

function controllerKind(o: unknown): string | undefined {
  const refs = obj(obj(o)?.metadata)?.ownerReferences;
  if (!Array.isArray(refs)) return undefined;
  const c = refs.map(obj).find((r) => r?.controller === true);
  return typeof c?.kind === 'string' ? c.kind : undefined;
}

/** Whether a listed object is a running workload the scan should judge on its own. */
function keep(kind: string, o: unknown): boolean {
  const owner = controllerKind(o);
  if (kind === 'Pod') {
    const phase = obj(obj(o)?.status)?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return false;
    return !(owner && COVERED_OWNERS.has(owner));
  }
  if (kind === 'Job') return owner !== 'CronJob';
  return true;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function listClusterWorkloads(client: K8sClient, opts: ListOptions = {}): Promise<ClusterListing> {
  const { core, apps, batch } = client;
  const listers: Lister[] = [
    { kind: 'Namespace', apiVersion: 'v1', call: { verb: 'list', resource: 'namespaces', group: '' }, page: (limit, c) => core.listNamespace({ limit, _continue: c }) },
    { kind: 'ResourceQuota', apiVersion: 'v1', call: { verb: 'list', resource: 'resourcequotas', group: '' }, page: (limit, c) => core.listResourceQuotaForAllNamespaces({ limit, _continue: c }) },
    { kind: 'LimitRange', apiVersion: 'v1', call: { verb: 'list', resource: 'limitranges', group: '' }, page: (limit, c) => core.listLimitRangeForAllNamespaces({ limit, _continue: c }) },
    { kind: 'Pod', apiVersion: 'v1', call: { verb: 'list', resource: 'pods', group: '' }, page: (limit, c) => core.listPodForAllNamespaces({ limit, _continue: c }) },
    { kind: 'Deployment', apiVersion: 'apps/v1', call: { verb: 'list', resource: 'deployments', group: 'apps' }, page: (limit, c) => apps.listDeploymentForAllNamespaces({ limit, _continue: c }) },
    { kind: 'DaemonSet', apiVersion: 'apps/v1', call: { verb: 'list', resource: 'daemonsets', group: 'apps' }, page: (limit, c) => apps.listDaemonSetForAllNamespaces({ limit, _continue: c }) },
    { kind: 'StatefulSet', apiVersion: 'apps/v1', call: { verb: 'list', resource: 'statefulsets', group: 'apps' }, page: (limit, c) => apps.listStatefulSetForAllNamespaces({ limit, _continue: c }) },
    { kind: 'Job', apiVersion: 'batch/v1', call: { verb: 'list', resource: 'jobs', group: 'batch' }, page: (limit, c) => batch.listJobForAllNamespaces({ limit, _continue: c }) },
    { kind: 'CronJob', apiVersion: 'batch/v1', call: { verb: 'list', resource: 'cronjobs', group: 'batch' }, page: (limit, c) => batch.listCronJobForAllNamespaces({ limit, _continue: c }) },
  ];
  const attempts = Math.max(1, opts.attempts ?? 3);
  const limit = opts.limit ?? 500;
  const problems: ListProblem[] = [];
  const byKind = new Map<string, unknown[]>();

  const listAll = async (l: Lister): Promise<unknown[]> => {
    const out: unknown[] = [];
    let cont: string | undefined;
    do {
      const page = await callApi(l.call, () => l.page(limit, cont));
      out.push(...page.items);
      cont = page.metadata?._continue || undefined;
    } while (cont);
    return out;
  };

  // One resource after another: a scan is not urgent, and the API server has other callers.
  for (const l of listers) {
    let delay = opts.retryDelayMs ?? 500;
    for (let attempt = 1; ; attempt++) {
      try {
        byKind.set(l.kind, await listAll(l));
        break;
      } catch (e) {
        const err = e instanceof K8sApiError ? e : new K8sApiError(l.call, apiFailure(e));
        const s = err.failure.status;
        // Refusals and client errors do not pass by asking again.
        const final = s === 401 || s === 403 || s === 404 || (s >= 400 && s < 500 && s !== 429) || attempt >= attempts;
        if (final) {
          problems.push({ resource: l.call.resource, group: l.call.group, verb: l.call.verb, status: s, message: attempt > 1 ? `${err.message} (after ${attempt} attempts)` : err.message, rbac: rbacRuleFor(l.call) });
          break;
        }
        await sleep(delay);
        delay *= 2;
      }
    }
  }

  const objects: unknown[] = [];
  for (const l of listers) {
    for (const item of byKind.get(l.kind) ?? []) {
      if (!keep(l.kind, item)) continue;
      // The client gives model class instances with Date timestamps; the scanner wants the API's
      // JSON, as a manifest would give it (field names of workload kinds are the same in both).
      const plain = JSON.parse(JSON.stringify(item)) as Json;
      objects.push({ ...plain, kind: l.kind, apiVersion: l.apiVersion });
    }
  }
  const nsOf = (o: unknown): string | undefined => {
    const ns = obj(obj(o)?.metadata)?.namespace;
    return typeof ns === 'string' ? ns : undefined;
  };
  const present = (kind: string): Set<string | undefined> | undefined => (byKind.has(kind) ? new Set(byKind.get(kind)!.map(nsOf)) : undefined);
  const quotas = present('ResourceQuota');
  const limits = present('LimitRange');
  const namespaces: NamespaceSummary[] = (byKind.get('Namespace') ?? []).map((n) => {
    const name = String(obj(obj(n)?.metadata)?.name ?? '');
    return { name, resourceQuota: quotas?.has(name), limitRange: limits?.has(name) };
  });
  return { objects, namespaces, problems };
}
