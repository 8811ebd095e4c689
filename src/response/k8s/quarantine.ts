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
 *
 * A k8s_audit match names the object itself (the Deployment an attacker created through the API):
 * that object is acted on the same way, through its owner when a controller made it; a bare Pod is
 * deleted (annotated first, its manifest in the alert), since no controller would bring it back.
 *
 * The object is read first and must still be what the rule matched (live-check.ts): otherwise the
 * outcome is `spared`, saying the live object no longer matches.
 */
import { type ApiCall, K8sApiError, callApi, mergePatch } from '../../k8s-api/client.js';
import type { V1DeleteOptions } from '@kubernetes/client-node';
import type { ActionRequest, ActionResult, K8sObjectTarget, ResponseAction } from '../types.js';
import { describeRequest } from './audit-target.js';
import {
  ANNOTATION_PREFIX, type Details, type K8sActionOptions, type OwnerRef, failureResult, obj, ownerChain, podTarget, readPod, readWorkload, result, shq, spareReason, str,
  unlessStillMatching,
} from './common.js';

type Op = 'scale' | 'suspend' | 'delete';

interface KindOps {
  group: string;
  resource: string;
  op: Op;
  read(ns: string, name: string): Promise<unknown>;
  patch(ns: string, name: string, body: object): Promise<unknown>;
  /** Delete, with the uid as a precondition when known. */
  remove?(ns: string, name: string, uid?: string): Promise<unknown>;
}

function deleteOptions(uid: string | undefined): V1DeleteOptions {
  return { apiVersion: 'v1', kind: 'DeleteOptions', ...(uid ? { preconditions: { uid } } : {}) };
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
    const { apps, batch, core } = opts.client;
    const mp = mergePatch();
    this.kinds = {
      Deployment: { group: 'apps', resource: 'deployments', op: 'scale', read: (namespace, name) => apps.readNamespacedDeployment({ namespace, name }), patch: (namespace, name, body) => apps.patchNamespacedDeployment({ namespace, name, body }, mp) },
      StatefulSet: { group: 'apps', resource: 'statefulsets', op: 'scale', read: (namespace, name) => apps.readNamespacedStatefulSet({ namespace, name }), patch: (namespace, name, body) => apps.patchNamespacedStatefulSet({ namespace, name, body }, mp) },
      ReplicaSet: { group: 'apps', resource: 'replicasets', op: 'scale', read: (namespace, name) => apps.readNamespacedReplicaSet({ namespace, name }), patch: (namespace, name, body) => apps.patchNamespacedReplicaSet({ namespace, name, body }, mp) },
      CronJob: { group: 'batch', resource: 'cronjobs', op: 'suspend', read: (namespace, name) => batch.readNamespacedCronJob({ namespace, name }), patch: (namespace, name, body) => batch.patchNamespacedCronJob({ namespace, name, body }, mp) },
      DaemonSet: {
        group: 'apps', resource: 'daemonsets', op: 'delete', read: (namespace, name) => apps.readNamespacedDaemonSet({ namespace, name }),
        patch: (namespace, name, body) => apps.patchNamespacedDaemonSet({ namespace, name, body }, mp),
        remove: (namespace, name, uid) => apps.deleteNamespacedDaemonSet({ namespace, name, propagationPolicy: 'Background', body: deleteOptions(uid) }),
      },
      Job: {
        group: 'batch', resource: 'jobs', op: 'delete', read: (namespace, name) => batch.readNamespacedJob({ namespace, name }),
        patch: (namespace, name, body) => batch.patchNamespacedJob({ namespace, name, body }, mp),
        remove: (namespace, name, uid) => batch.deleteNamespacedJob({ namespace, name, propagationPolicy: 'Background', body: deleteOptions(uid) }),
      },
      // A bare pod an audit event names: nothing recreates it, so it is deleted at once (grace period 0).
      Pod: {
        group: '', resource: 'pods', op: 'delete', read: (namespace, name) => core.readNamespacedPod({ namespace, name }),
        patch: (namespace, name, body) => core.patchNamespacedPod({ namespace, name, body }, mp),
        remove: (namespace, name, uid) => core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0, body: { ...deleteOptions(uid), gracePeriodSeconds: 0 } }),
      },
    };
  }

  private call(k: KindOps, verb: string, namespace: string): ApiCall {
    return { verb, resource: k.resource, group: k.group, namespace };
  }

  async run(req: ActionRequest): Promise<ActionResult> {
    const o = req.target.object;
    return o && o.kind !== 'Pod' ? this.runOnObject(req, o) : this.runOnPod(req);
  }

  /** The matched pod's top controller; a bare pod an audit event names is itself deleted (nothing recreates it). */
  private async runOnPod(req: ActionRequest): Promise<ActionResult> {
    const t = podTarget(req, this.opts, true);
    if ('outcome' in t) return t;
    const { pod, details } = t;
    const ns = pod.namespace;
    const o = req.target.object;
    const why = o ? `minewatch ${req.trigger}: ${describeRequest(o)}` : `minewatch ${req.trigger}: pod ${ns}/${pod.name}${req.target.cmdline ? ` ran ${req.target.cmdline}` : ''}`;
    try {
      // Read-only steps run in dry run too, so the dry run says exactly what enforce would do.
      const live = await readPod(this.opts.client, pod);
      const refused = unlessStillMatching(req, this.opts, live, 'Pod', details);
      if (refused) return refused;
      const chain = await ownerChain(this.opts.client, ns, live);
      const top = chain[chain.length - 1];
      if (top) return await this.quarantine(req, details, ns, top, chain, why);
      if (!o) return result(req, 'spared', `pod ${ns}/${pod.name} has no controller: nothing recreates it, delete_pod is enough`, details);
      const self = { kind: 'Pod', name: pod.name, uid: str(obj(live.metadata)?.uid) };
      return await this.quarantine(req, details, ns, self, [self], why, live);
    } catch (e) {
      return failureResult(req, e, details);
    }
  }

  /**
   * The workload an audit event names. One a controller made (a Deployment's ReplicaSet, a
   * CronJob's Job) is quarantined through its owner, since the owner would undo it.
   */
  private async runOnObject(req: ActionRequest, o: K8sObjectTarget): Promise<ActionResult> {
    const ns = o.namespace;
    const details: Details = { namespace: ns, object: `${o.kind}/${o.name}` };
    if (o.user) details.user = o.user;
    const spare = spareReason(req, { namespace: ns, name: o.name }, this.opts, true);
    if (spare) return result(req, 'spared', spare, details);
    try {
      const live = await readWorkload(this.opts.client, o.kind, ns, o.name, o.uid);
      // A forged or stale event must not scale down what it only claims runs a miner.
      const refused = unlessStillMatching(req, this.opts, live, o.kind, details);
      if (refused) return refused;
      const uid = str(obj(live.metadata)?.uid);
      const self: OwnerRef = { kind: o.kind, name: o.name, uid: uid ?? o.uid };
      const chain = [self, ...(await ownerChain(this.opts.client, ns, live))];
      const top = chain[chain.length - 1]!;
      return await this.quarantine(req, details, ns, top, chain, `minewatch ${req.trigger}: ${describeRequest(o)}`, top === self ? live : undefined);
    } catch (e) {
      return failureResult(req, e, details);
    }
  }

  /** Annotate and scale, suspend or delete `top` (read afresh unless `current` is given). */
  private async quarantine(req: ActionRequest, details: Details, ns: string, top: OwnerRef, chain: OwnerRef[], why: string, current?: unknown): Promise<ActionResult> {
    const k = this.kinds[top.kind];
    details.owner = `${top.kind}/${top.name}`;
    if (!k) return result(req, 'failed', `owner ${top.kind}/${top.name} is of a kind quarantine_workload does not handle (Deployment, StatefulSet, ReplicaSet, CronJob, DaemonSet, Job): stop it by hand`, details);
    current ??= await callApi(this.call(k, 'get', ns), () => k.read(ns, top.name));
    const meta = obj(obj(current)?.metadata);
    const uid = str(meta?.uid);
    if (top.uid && uid && uid !== top.uid) throw new K8sApiError(this.call(k, 'get', ns), { status: 409, reason: 'Conflict', message: `${top.kind} ${ns}/${top.name} was replaced (uid ${uid})` });
    // Each of a workload's pods matches, and so does each audit event of it: once is enough, and a
    // second scale would record 0 as the replicas to restore.
    const at = str(obj(meta?.annotations)?.[`${ANNOTATION_PREFIX}quarantined-at`]);
    const spec = obj(obj(current)?.spec);
    if (at && ((k.op === 'scale' && spec?.replicas === 0) || (k.op === 'suspend' && spec?.suspend === true))) {
      return result(req, 'done', `${top.kind} ${ns}/${top.name} was already quarantined at ${at}: nothing more to do`, details);
    }
    const plan = this.plan(k, top, ns, current, chain);
    details.undo = plan.undo;
    if (plan.manifest) details.manifest = plan.manifest;
    if (req.mode !== 'enforce') return result(req, 'dryrun', `would ${plan.what}`, details);

    const annotations: Record<string, string> = {
      [`${ANNOTATION_PREFIX}quarantined-at`]: new Date().toISOString(),
      [`${ANNOTATION_PREFIX}quarantine-reason`]: why.slice(0, 1024),
      [`${ANNOTATION_PREFIX}quarantine-undo`]: plan.undo,
    };
    if (plan.replicasBefore !== undefined) annotations[`${ANNOTATION_PREFIX}replicas-before`] = String(plan.replicasBefore);
    // uid in the patch: the server refuses it (uid is immutable) if the object was replaced meanwhile.
    const body = { metadata: { uid, annotations }, ...(plan.spec ? { spec: plan.spec } : {}) };
    await callApi(this.call(k, 'patch', ns), () => k.patch(ns, top.name, body));
    if (k.remove) await callApi(this.call(k, 'delete', ns), () => k.remove!(ns, top.name, uid));
    if (plan.alsoDeleteJob) {
      const jobs = this.kinds.Job!;
      await callApi(this.call(jobs, 'delete', ns), () => jobs.remove!(ns, plan.alsoDeleteJob!));
    }
    const past: Record<string, string> = { scale: 'scaled', suspend: 'suspended', delete: 'deleted' };
    return result(req, 'done', plan.what.replace(/^(\w+)/, (w) => past[w] ?? w).replace(' and delete ', ' and deleted '), details);
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
