/**
 * `quarantine_workload`: stop the controller that would bring a deleted miner pod straight back.
 * The pod's owners are read afresh from the API (ReplicaSet → Deployment, Job → CronJob) and the
 * top one is acted on:
 * - Deployment, StatefulSet, ReplicaSet: scaled to 0 replicas (the object and its history stay);
 * - CronJob: suspended, and its running Job (the pod's direct owner) deleted;
 * - DaemonSet, Job: deleted (nothing to scale), with their manifest in the alert to re-create them.
 * Each object is first annotated (one merge patch, together with the scale or suspend) with when,
 * why, and the command that undoes it, so whoever finds it scaled to zero knows what happened.
 * Workloads in protected namespaces (kube-system, …) and minewatch's own are never touched.
 */
import { type ApiCall, K8sApiError, callApi, mergePatch } from '../../k8s/client.js';
import type { ActionRequest, ActionResult, ResponseAction } from '../types.js';
import {
  ANNOTATION_PREFIX, type K8sActionOptions, type OwnerRef, failureResult, obj, ownerChain, podTarget, readPod, result, shq, str,
} from './common.js';

type Op = 'scale' | 'suspend' | 'delete';

interface KindOps {
  group: string;
  resource: string;
  op: Op;
  read(ns: string, name: string): Promise<unknown>;
  patch(ns: string, name: string, body: object): Promise<unknown>;
  remove?(ns: string, name: string): Promise<unknown>;
}

/** Largest manifest kept in the alert for re-creating a deleted workload. */
const MAX_MANIFEST = 16 * 1024;

/** A deleted object as `kubectl apply` takes it back: no status, uid, resourceVersion or managed fields. */
export function reapplyManifest(o: unknown): string {
  const src = obj(o) ?? {};
  const meta = obj(src.metadata) ?? {};
  const annotations = { ...(obj(meta.annotations) ?? {}) };
  delete annotations['kubectl.kubernetes.io/last-applied-configuration'];
  for (const k of Object.keys(annotations)) if (k.startsWith(ANNOTATION_PREFIX)) delete annotations[k];
  const m = {
    apiVersion: src.apiVersion,
    kind: src.kind,
    metadata: { name: meta.name, namespace: meta.namespace, labels: meta.labels, annotations },
    spec: src.spec,
  };
  const text = JSON.stringify(m);
  return text.length > MAX_MANIFEST ? `${text.slice(0, MAX_MANIFEST)}… (truncated)` : text;
}

export class QuarantineWorkloadAction implements ResponseAction {
  readonly name = 'quarantine_workload' as const;
  private readonly kinds: Record<string, KindOps>;

  constructor(private readonly opts: K8sActionOptions) {
    const { apps, batch } = opts.client;
    const mp = mergePatch();
    this.kinds = {
      Deployment: { group: 'apps', resource: 'deployments', op: 'scale', read: (namespace, name) => apps.readNamespacedDeployment({ namespace, name }), patch: (namespace, name, body) => apps.patchNamespacedDeployment({ namespace, name, body }, mp) },
      StatefulSet: { group: 'apps', resource: 'statefulsets', op: 'scale', read: (namespace, name) => apps.readNamespacedStatefulSet({ namespace, name }), patch: (namespace, name, body) => apps.patchNamespacedStatefulSet({ namespace, name, body }, mp) },
      ReplicaSet: { group: 'apps', resource: 'replicasets', op: 'scale', read: (namespace, name) => apps.readNamespacedReplicaSet({ namespace, name }), patch: (namespace, name, body) => apps.patchNamespacedReplicaSet({ namespace, name, body }, mp) },
      CronJob: { group: 'batch', resource: 'cronjobs', op: 'suspend', read: (namespace, name) => batch.readNamespacedCronJob({ namespace, name }), patch: (namespace, name, body) => batch.patchNamespacedCronJob({ namespace, name, body }, mp) },
      DaemonSet: {
        group: 'apps', resource: 'daemonsets', op: 'delete', read: (namespace, name) => apps.readNamespacedDaemonSet({ namespace, name }),
        patch: (namespace, name, body) => apps.patchNamespacedDaemonSet({ namespace, name, body }, mp),
        remove: (namespace, name) => apps.deleteNamespacedDaemonSet({ namespace, name, propagationPolicy: 'Background' }),
      },
      Job: {
        group: 'batch', resource: 'jobs', op: 'delete', read: (namespace, name) => batch.readNamespacedJob({ namespace, name }),
        patch: (namespace, name, body) => batch.patchNamespacedJob({ namespace, name, body }, mp),
        remove: (namespace, name) => batch.deleteNamespacedJob({ namespace, name, propagationPolicy: 'Background' }),
      },
    };
  }

  private call(k: KindOps, verb: string, namespace: string): ApiCall {
    return { verb, resource: k.resource, group: k.group, namespace };
  }

  async run(req: ActionRequest): Promise<ActionResult> {
    const t = podTarget(req, this.opts, true);
    if ('outcome' in t) return t;
    const { pod, details } = t;
    const ns = pod.namespace;
    try {
      // Read-only steps run in dry run too, so the dry run says exactly what enforce would do.
      const chain = await ownerChain(this.opts.client, ns, await readPod(this.opts.client, pod));
      const top = chain[chain.length - 1];
      if (!top) return result(req, 'spared', `pod ${ns}/${pod.name} has no controller: nothing recreates it, delete_pod is enough`, details);
      const k = this.kinds[top.kind];
      details.owner = `${top.kind}/${top.name}`;
      if (!k) return result(req, 'failed', `owner ${top.kind}/${top.name} is of a kind quarantine_workload does not handle (Deployment, StatefulSet, ReplicaSet, CronJob, DaemonSet, Job): stop it by hand`, details);
      const current = await callApi(this.call(k, 'get', ns), () => k.read(ns, top.name));
      const uid = str(obj(obj(current)?.metadata)?.uid);
      if (top.uid && uid && uid !== top.uid) throw new K8sApiError(this.call(k, 'get', ns), { status: 409, reason: 'Conflict', message: `${top.kind} ${ns}/${top.name} was replaced (uid ${uid})` });
      const plan = this.plan(k, top, ns, current, chain);
      details.undo = plan.undo;
      if (plan.manifest) details.manifest = plan.manifest;
      if (req.mode !== 'enforce') return result(req, 'dryrun', `would ${plan.what}`, details);

      const annotations: Record<string, string> = {
        [`${ANNOTATION_PREFIX}quarantined-at`]: new Date().toISOString(),
        [`${ANNOTATION_PREFIX}quarantine-reason`]: `minewatch ${req.trigger}: pod ${ns}/${pod.name}${req.target.cmdline ? ` ran ${req.target.cmdline}` : ''}`.slice(0, 1024),
        [`${ANNOTATION_PREFIX}quarantine-undo`]: plan.undo,
      };
      if (plan.replicasBefore !== undefined) annotations[`${ANNOTATION_PREFIX}replicas-before`] = String(plan.replicasBefore);
      // uid in the patch: the server refuses it (uid is immutable) if the object was replaced meanwhile.
      const body = { metadata: { uid, annotations }, ...(plan.spec ? { spec: plan.spec } : {}) };
      await callApi(this.call(k, 'patch', ns), () => k.patch(ns, top.name, body));
      if (k.remove) await callApi(this.call(k, 'delete', ns), () => k.remove!(ns, top.name));
      if (plan.alsoDeleteJob) {
        const jobs = this.kinds.Job!;
        await callApi(this.call(jobs, 'delete', ns), () => jobs.remove!(ns, plan.alsoDeleteJob!));
      }
      const past: Record<string, string> = { scale: 'scaled', suspend: 'suspended', delete: 'deleted' };
      return result(req, 'done', plan.what.replace(/^(\w+)/, (w) => past[w] ?? w).replace(' and delete ', ' and deleted '), details);
    } catch (e) {
      return failureResult(req, e, details);
    }
  }

  private plan(k: KindOps, top: OwnerRef, ns: string, current: unknown, chain: OwnerRef[]): { what: string; undo: string; spec?: object; replicasBefore?: number; manifest?: string; alsoDeleteJob?: string } {
    const ref = `${k.resource.replace(/s$/, '')}/${top.name}`;
    const annotationsOff = `kubectl annotate ${ref} -n ${shq(ns)} ${ANNOTATION_PREFIX}quarantined-at- ${ANNOTATION_PREFIX}quarantine-reason- ${ANNOTATION_PREFIX}quarantine-undo-`;
    if (k.op === 'scale') {
      const replicas = obj(obj(current)?.spec)?.replicas;
      const before = typeof replicas === 'number' ? replicas : 1;
      return {
        what: `scale ${top.kind} ${ns}/${top.name} from ${before} to 0 replicas`,
        undo: `kubectl scale ${ref} -n ${shq(ns)} --replicas=${before} && ${annotationsOff} ${ANNOTATION_PREFIX}replicas-before-`,
        spec: { replicas: 0 },
        replicasBefore: before,
      };
    }
    if (k.op === 'suspend') {
      const job = chain.length > 1 && chain[0]!.kind === 'Job' ? chain[0]!.name : undefined;
      return {
        what: `suspend CronJob ${ns}/${top.name}${job ? ` and delete its running Job ${job}` : ''}`,
        undo: `kubectl patch ${ref} -n ${shq(ns)} --type=merge -p '{"spec":{"suspend":false}}' && ${annotationsOff}`,
        spec: { suspend: true },
        alsoDeleteJob: job,
      };
    }
    return {
      what: `delete ${top.kind} ${ns}/${top.name} (annotated first with why)`,
      undo: `re-create it from the manifest in this alert (mw.response.manifest): kubectl apply -f manifest.json`,
      manifest: reapplyManifest(current),
    };
  }
}
