/**
 * `isolate_pod`: cut a miner off from its pool with a NetworkPolicy that selects the pod's labels
 * and allows no egress at all. The policy is named `minewatch-isolate-<pod>` and labelled
 * app.kubernetes.io/managed-by=minewatch, so `kubectl get networkpolicy -A -l
 * app.kubernetes.io/managed-by=minewatch` lists every one, and its annotations say why and how to
 * remove it.
 *
 * Two things the alert says, because they decide whether the isolation works:
 * - NetworkPolicies add up: another policy that also selects the pod and allows some egress keeps
 *   that egress open. Those policies are listed (a warning in the alert).
 * - Only a CNI that enforces NetworkPolicies (Calico, Cilium, …) applies them; on others
 *   (flannel alone, kindnet before 1.30) the policy is stored and does nothing.
 * The labels select every pod that shares them (the workload's other replicas run the same image).
 * For a workload a k8s_audit match names (a Deployment created with a miner image), the policy
 * selects its pod template's labels, so it holds every pod the workload runs, now and later.
 * The pod or workload is read first: it must still be what the rule matched (live-check.ts), and
 * the labels are the live object's, never those an event claims.
 */
import { callApi } from '../../k8s-api/client.js';
import type { ActionRequest, ActionResult, K8sObjectTarget, ResponseAction } from '../types.js';
import { describeRequest, stringLabels, templateOf } from './audit-target.js';
import {
  ANNOTATION_PREFIX, type Details, type K8sActionOptions, MANAGED_BY, failureResult, obj, podTarget, readPod, readWorkload, result, shq, spareReason, str,
  unlessStillMatching,
} from './common.js';

export const CNI_NOTE = 'a NetworkPolicy only takes effect with a CNI that enforces policies (Calico, Cilium, Antrea, kube-router, …)';

/** A DNS-1123 subdomain name for the pod's isolation policy. */
export function isolationPolicyName(podName: string): string {
  return `minewatch-isolate-${podName}`.slice(0, 253).toLowerCase().replace(/[^a-z0-9.-]/g, '-').replace(/[-.]+$/, '');
}

type Json = Record<string, unknown>;

/** Whether a LabelSelector (matchLabels and matchExpressions) selects a pod with `labels`. */
export function selectorMatches(selector: unknown, labels: Record<string, string>): boolean {
  const sel = obj(selector) ?? {};
  for (const [k, v] of Object.entries(obj(sel.matchLabels) ?? {})) if (labels[k] !== v) return false;
  for (const e of Array.isArray(sel.matchExpressions) ? sel.matchExpressions : []) {
    const x = obj(e) ?? {};
    const key = str(x.key) ?? '';
    const values = Array.isArray(x.values) ? x.values.filter((v): v is string => typeof v === 'string') : [];
    const has = Object.prototype.hasOwnProperty.call(labels, key);
    switch (x.operator) {
      case 'In': if (!has || !values.includes(labels[key]!)) return false; break;
      case 'NotIn': if (has && values.includes(labels[key]!)) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false;
    }
  }
  return true;
}

/** Whether a policy restricts egress of the pods it selects and lets some of it through. */
function allowsEgress(spec: Json): boolean {
  const types = Array.isArray(spec.policyTypes) ? spec.policyTypes : undefined;
  const egress = Array.isArray(spec.egress) ? spec.egress : [];
  // Without policyTypes, a policy is an egress policy only when it has egress rules.
  const isEgress = types ? types.includes('Egress') : egress.length > 0;
  return isEgress && egress.length > 0;
}

export class IsolatePodAction implements ResponseAction {
  readonly name = 'isolate_pod' as const;
  constructor(private readonly opts: K8sActionOptions) {}

  async run(req: ActionRequest): Promise<ActionResult> {
    const o = req.target.object;
    return o && o.kind !== 'Pod' ? this.runOnWorkload(req, o) : this.runOnPod(req);
  }

  /** The matched pod's labels, as the API has them now (never an event's claim: they choose what is cut off). */
  private async runOnPod(req: ActionRequest): Promise<ActionResult> {
    const t = podTarget(req, this.opts, false, (p) => ({ policy: isolationPolicyName(p.name), note: CNI_NOTE }));
    if ('outcome' in t) return t;
    const { pod, details } = t;
    const o = req.target.object;
    try {
      const live = await readPod(this.opts.client, pod);
      const refused = unlessStillMatching(req, this.opts, live, 'Pod', details);
      if (refused) return refused;
      const labels = stringLabels(obj(live.metadata)?.labels);
      const why = o ? describeRequest(o) : `pod ${pod.namespace}/${pod.name}${req.target.cmdline ? ` ran ${req.target.cmdline}` : ''}`;
      return await this.isolate(req, details, { ns: pod.namespace, name: isolationPolicyName(pod.name), labels, what: `pod ${pod.namespace}/${pod.name}`, labelKey: 'isolated-pod', labelValue: pod.name, why });
    } catch (e) {
      return failureResult(req, e, details);
    }
  }

  /** A workload an audit event names: a policy on its pod template's labels isolates every pod it runs. */
  private async runOnWorkload(req: ActionRequest, o: K8sObjectTarget): Promise<ActionResult> {
    const ns = o.namespace;
    const name = isolationPolicyName(`${o.kind}-${o.name}`);
    const details: Details = { namespace: ns, object: `${o.kind}/${o.name}`, policy: name, note: CNI_NOTE };
    const spare = spareReason(req, { namespace: ns, name: o.name }, this.opts, false);
    if (spare) return result(req, 'spared', spare, details);
    try {
      // The workload as it is now: it must still match, and its template's labels (not the event's) choose the pods.
      const live = await readWorkload(this.opts.client, o.kind, ns, o.name, o.uid);
      const refused = unlessStillMatching(req, this.opts, live, o.kind, details);
      if (refused) return refused;
      const labels = stringLabels(obj(templateOf(live, o.kind)?.metadata)?.labels);
      return await this.isolate(req, details, { ns, name, labels, what: `the pods of ${o.kind} ${ns}/${o.name}`, labelKey: 'isolated-workload', labelValue: `${o.kind}.${o.name}`, why: describeRequest(o) });
    } catch (e) {
      return failureResult(req, e, details);
    }
  }

  /** Create the deny-all-egress policy selecting `labels`, warning of policies that keep egress open. */
  private async isolate(req: ActionRequest, details: Details, p: { ns: string; name: string; labels: Record<string, string>; what: string; labelKey: string; labelValue: string; why: string }): Promise<ActionResult> {
    const { ns, name, labels } = p;
    const { net } = this.opts.client;
    if (Object.keys(labels).length === 0) {
      return result(req, 'failed', `${p.what} ha${p.what.startsWith('pod ') ? 's' : 've'} no labels: a NetworkPolicy selecting them would select every pod in ${ns}; use delete_pod or quarantine_workload`, details);
    }
    const list = await callApi({ verb: 'list', resource: 'networkpolicies', group: 'networking.k8s.io', namespace: ns }, () => net.listNamespacedNetworkPolicy({ namespace: ns }));
    const others = (list.items ?? [])
      .map((x) => x as unknown as Json)
      .filter((x) => str(obj(x.metadata)?.name) !== name)
      .filter((x) => selectorMatches(obj(x.spec)?.podSelector, labels) && allowsEgress(obj(x.spec) ?? {}))
      .map((x) => str(obj(x.metadata)?.name) ?? '?');
    if (others.length > 0) {
      details.warning = `policies add up: ${others.join(', ')} also select${others.length === 1 ? 's' : ''} ${p.what.startsWith('pod ') ? 'this pod' : 'these pods'} and allow${others.length === 1 ? 's' : ''} egress, which stays open`;
    }
    const undo = `kubectl delete networkpolicy -n ${shq(ns)} ${shq(name)}`;
    details.undo = undo;
    const policy = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name,
        namespace: ns,
        labels: { ...MANAGED_BY, [`${ANNOTATION_PREFIX}${p.labelKey}`]: p.labelValue.slice(0, 63).replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '') },
        annotations: {
          [`${ANNOTATION_PREFIX}reason`]: `minewatch ${req.trigger}: ${p.why}`.slice(0, 1024),
          [`${ANNOTATION_PREFIX}isolated-at`]: new Date().toISOString(),
          [`${ANNOTATION_PREFIX}undo`]: undo,
        },
      },
      spec: { podSelector: { matchLabels: labels }, policyTypes: ['Egress'], egress: [] },
    };
    const sel = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
    if (req.mode !== 'enforce') return result(req, 'dryrun', `would create NetworkPolicy ${ns}/${name} denying all egress of pods with labels ${sel}`, details);
    try {
      await callApi({ verb: 'create', resource: 'networkpolicies', group: 'networking.k8s.io', namespace: ns }, () => net.createNamespacedNetworkPolicy({ namespace: ns, body: policy }));
    } catch (e) {
      if ((e as { failure?: { status?: number } }).failure?.status === 409) {
        return result(req, 'done', `NetworkPolicy ${ns}/${name} already exists: pods with labels ${sel} were already isolated`, details);
      }
      throw e;
    }
    return result(req, 'done', `created NetworkPolicy ${ns}/${name} denying all egress of pods with labels ${sel}`, details);
  }
}
