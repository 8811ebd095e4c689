/**
 * `suggest_revoke`: who could have put the miner there, and how to take that away. It changes
 * nothing: the alert names the identity and every RoleBinding and ClusterRoleBinding that grants
 * it something, with the kubectl commands that revoke them, for a human to judge (deleting a
 * binding can break a legitimate deployer).
 *
 * The identity is the creator when the event says who that was (an audit or admission event's
 * user.username), else the pod's ServiceAccount: the credentials the miner's pod holds, which
 * stolen or over-granted are how workloads get created from inside a cluster.
 */
import { callApi } from '../../k8s-api/client.js';
import type { ActionRequest, ActionResult, ResponseAction } from '../types.js';
import { type K8sActionOptions, failureResult, obj, podOfRequest, readPod, result, shq, str } from './common.js';

export interface Subject {
  kind: 'ServiceAccount' | 'User';
  name: string;
  namespace?: string;
  groups?: string[];
}

/** "system:serviceaccount:NS:NAME" → a ServiceAccount subject; other names are users. */
export function subjectOfUsername(username: string, groups?: string[]): Subject {
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  return m ? { kind: 'ServiceAccount', namespace: m[1]!, name: m[2]! } : { kind: 'User', name: username, groups };
}

/** The creator named by an audit or admission event, if the request carries one. */
function creatorOf(req: ActionRequest): Subject | undefined {
  const payload = obj((req.event as { payload?: unknown } | undefined)?.payload);
  const user = obj(payload?.user) ?? obj(obj(payload?.request)?.userInfo);
  const name = str(user?.username);
  if (!name) return undefined;
  const groups = Array.isArray(user?.groups) ? user.groups.filter((g): g is string => typeof g === 'string') : undefined;
  return subjectOfUsername(name, groups);
}

/**
 * Whether the identity is Kubernetes itself: the control plane's users (system:kube-controller-manager,
 * system:node:…) and kube-system's controller ServiceAccounts, which create a Deployment's
 * ReplicaSet and its pods on behalf of whoever created the Deployment.
 */
export function kubernetesComponent(s: Subject): string | undefined {
  // Not system:anonymous: what grants anonymous requests anything is exactly what to revoke.
  if (s.kind === 'User' && /^system:(kube-controller-manager|kube-scheduler|apiserver|kube-proxy|node:.+)$/.test(s.name)) return 'a Kubernetes component';
  if (s.kind === 'ServiceAccount' && s.namespace === 'kube-system' && s.name.endsWith('-controller')) return 'a Kubernetes controller';
  return undefined;
}

function bindsSubject(binding: unknown, s: Subject): boolean {
  const subjects = Array.isArray(obj(binding)?.subjects) ? (obj(binding)!.subjects as unknown[]) : [];
  return subjects.some((x) => {
    const o = obj(x) ?? {};
    if (s.kind === 'ServiceAccount') return o.kind === 'ServiceAccount' && o.name === s.name && o.namespace === s.namespace;
    // System groups (system:authenticated, …) bind everyone: revoking them is not the answer.
    return (o.kind === 'User' && o.name === s.name) || (o.kind === 'Group' && typeof o.name === 'string' && !o.name.startsWith('system:') && (s.groups ?? []).includes(o.name));
  });
}

export class SuggestRevokeAction implements ResponseAction {
  readonly name = 'suggest_revoke' as const;
  constructor(private readonly opts: K8sActionOptions) {}

  async run(req: ActionRequest): Promise<ActionResult> {
    const pod = podOfRequest(req);
    let subject = creatorOf(req);
    const details: Record<string, string | number | boolean> = {};
    if (typeof pod !== 'string') Object.assign(details, { namespace: pod.namespace, pod: pod.name });
    const o = req.target.object;
    if (o) Object.assign(details, { namespace: o.namespace, object: `${o.kind}/${o.name}` });
    try {
      if (!subject) {
        if (typeof pod === 'string') return result(req, 'spared', pod);
        const sa = req.target.k8s?.service_account ?? str(obj((await readPod(this.opts.client, pod)).spec)?.serviceAccountName) ?? 'default';
        subject = { kind: 'ServiceAccount', namespace: pod.namespace, name: sa };
      }
      const who = subject.kind === 'ServiceAccount' ? `ServiceAccount ${subject.namespace}/${subject.name}` : `user ${subject.name}`;
      details.subject = who;
      const component = kubernetesComponent(subject);
      if (component) return result(req, 'spared', `${who} is ${component}: revoking its bindings would break the cluster; suggest_revoke on the match of the object it acted for names who created that`, details);
      const rbac = this.opts.client.rbac;
      const [rbs, crbs] = await Promise.all([
        callApi({ verb: 'list', resource: 'rolebindings', group: 'rbac.authorization.k8s.io' }, () => rbac.listRoleBindingForAllNamespaces()),
        callApi({ verb: 'list', resource: 'clusterrolebindings', group: 'rbac.authorization.k8s.io' }, () => rbac.listClusterRoleBinding()),
      ]);
      const lines: string[] = [];
      const names: string[] = [];
      for (const b of crbs.items ?? []) {
        if (!bindsSubject(b, subject)) continue;
        names.push(`ClusterRoleBinding ${b.metadata?.name} (ClusterRole ${b.roleRef.name})`);
        lines.push(`kubectl delete clusterrolebinding ${shq(b.metadata?.name ?? '')}`);
      }
      for (const b of rbs.items ?? []) {
        if (!bindsSubject(b, subject)) continue;
        names.push(`RoleBinding ${b.metadata?.namespace}/${b.metadata?.name} (${b.roleRef.kind} ${b.roleRef.name})`);
        lines.push(`kubectl delete rolebinding -n ${shq(b.metadata?.namespace ?? '')} ${shq(b.metadata?.name ?? '')}`);
      }
      if (subject.kind === 'ServiceAccount') {
        // Deleting the ServiceAccount invalidates every token issued for it, bound or legacy.
        lines.push(`kubectl delete serviceaccount -n ${shq(subject.namespace ?? '')} ${shq(subject.name)}  # invalidates all its tokens; re-create it if a legitimate workload needs it`);
      } else {
        lines.push(`# ${subject.name} is a user: rotate or revoke its credentials at the identity provider or certificate authority`);
      }
      details.bindings = names.join('; ') || 'none';
      details.commands = lines.join('\n');
      return result(req, 'done', `suggestion only, nothing changed: ${who} is bound by ${names.length} binding(s)${names.length ? `: ${names.join('; ')}` : ''}; to revoke: ${lines.join(' ; ')}`, details);
    } catch (e) {
      return failureResult(req, e, details);
    }
  }
}
