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
 */
import { callApi } from '../../k8s/client.js';
import type { ActionRequest, ActionResult, ResponseAction } from '../types.js';
import { ANNOTATION_PREFIX, type K8sActionOptions, MANAGED_BY, failureResult, obj, podTarget, readPod, result, shq, str } from './common.js';

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
    const t = podTarget(req, this.opts, false, (p) => ({ policy: isolationPolicyName(p.name), note: CNI_NOTE }));
    if ('outcome' in t) return t;
    const { pod, details } = t;
    const ns = pod.namespace;
    const name = isolationPolicyName(pod.name);
    const { net } = this.opts.client;
    try {
      const live = await readPod(this.opts.client, pod);
      const labels: Record<string, string> = {};
      for (const [k, v] of Object.entries(obj(obj(live.metadata)?.labels) ?? {})) if (typeof v === 'string') labels[k] = v;
      if (Object.keys(labels).length === 0) {
        return result(req, 'failed', `pod ${ns}/${pod.name} has no labels: a NetworkPolicy selecting it would select every pod in ${ns}; use delete_pod or quarantine_workload`, details);
      }
      const list = await callApi({ verb: 'list', resource: 'networkpolicies', group: 'networking.k8s.io', namespace: ns }, () => net.listNamespacedNetworkPolicy({ namespace: ns }));
      const others = (list.items ?? [])
        .map((p) => p as unknown as Json)
        .filter((p) => str(obj(p.metadata)?.name) !== name)
        .filter((p) => selectorMatches(obj(p.spec)?.podSelector, labels) && allowsEgress(obj(p.spec) ?? {}))
        .map((p) => str(obj(p.metadata)?.name) ?? '?');
      if (others.length > 0) {
        details.warning = `policies add up: ${others.join(', ')} also select${others.length === 1 ? 's' : ''} this pod and allow${others.length === 1 ? 's' : ''} egress, which stays open`;
      }
      const undo = `kubectl delete networkpolicy -n ${shq(ns)} ${shq(name)}`;
      details.undo = undo;
      const policy = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: {
          name,
          namespace: ns,
          labels: { ...MANAGED_BY, [`${ANNOTATION_PREFIX}isolated-pod`]: pod.name.slice(0, 63).replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '') },
          annotations: {
            [`${ANNOTATION_PREFIX}reason`]: `minewatch ${req.trigger}: pod ${ns}/${pod.name}${req.target.cmdline ? ` ran ${req.target.cmdline}` : ''}`.slice(0, 1024),
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
    } catch (e) {
      return failureResult(req, e, details);
    }
  }
}
