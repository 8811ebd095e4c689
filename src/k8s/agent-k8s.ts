/**
 * What the agent gets from the Kubernetes API, built from the `k8s.api` config: the pod watcher
 * that fills k8s.* on syscall events, and the cluster response actions. Outside Kubernetes (no
 * in-cluster env, no kubeconfig, no server) there is neither, and the agent runs as before; a
 * client that cannot be built is logged, never fatal. @kubernetes/client-node takes a second or
 * two to load, so it is loaded only when there is an API server to talk to.
 */
import type { Logger } from '../platform/logger.js';
import type { PodWatcher } from '../enrich/pods.js';
import type { AllowList } from '../response/safety.js';
import type { Recheck } from '../response/k8s/live-check.js';
import type { ActionName, ResponseAction } from '../response/types.js';
import { K8S_API_DEFAULT, type K8sApiConfig, clientOptions, enrichEnabled, k8sApiSchema, nodeName } from '../k8s-api/api-config.js';
import type { K8sClient } from '../k8s-api/client.js';

export interface AgentK8s {
  client?: K8sClient;
  pods?: PodWatcher;
  actions: Partial<Record<ActionName, ResponseAction>>;
}

/** The `k8s.api` part of a loaded config (defaults when the section or the part is absent). */
export function apiConfigOf(config: { k8s?: { api?: unknown } }): K8sApiConfig {
  const api = config.k8s?.api;
  if (api === undefined) return K8S_API_DEFAULT;
  return k8sApiSchema.parse(api);
}

export interface AgentK8sOptions {
  /**
   * Whether this agent watches its node's pods for k8s.* (default true). `minewatch server` runs
   * no host sources: it has no node and no syscall events, only the cluster actions for its
   * k8s_audit matches.
   */
  podContext?: boolean;
  /**
   * The running rules' condition check (RulesEngine.recheck): the cluster actions run the matched
   * rule again on the object as the API has it before acting on what an audit event named.
   */
  recheck?: Recheck;
}

export async function agentK8s(config: Record<string, unknown>, log: Logger, allow: AllowList, env: NodeJS.ProcessEnv = process.env, options: AgentK8sOptions = {}): Promise<AgentK8s> {
  const api = apiConfigOf(config);
  const configured = Boolean(api.server || api.kubeconfig || env.KUBERNETES_SERVICE_HOST);
  if (!configured) {
    if (api.enrich.enabled === true && options.podContext !== false) log.error({}, 'k8s.api.enrich.enabled is true but no API server is configured: set k8s.api.kubeconfig or run in a pod');
    return { actions: {} };
  }
  const [{ K8sClient }, { PodWatcher }, { DeletePodAction }, { IsolatePodAction }, { QuarantineWorkloadAction }, { SuggestRevokeAction }] = await Promise.all([
    import('../k8s-api/client.js'), import('../enrich/pods.js'), import('../response/k8s/delete-pod.js'), import('../response/k8s/isolate-pod.js'),
    import('../response/k8s/quarantine.js'), import('../response/k8s/suggest-revoke.js'),
  ]);
  let client: K8sClient;
  try {
    client = new K8sClient(clientOptions(api));
  } catch (e) {
    log.error({ err: (e as Error).message }, 'Kubernetes API client unavailable: no pod context, no cluster responses');
    return { actions: {} };
  }
  const opts = { client, allow, selfNamespace: env.POD_NAMESPACE || undefined, recheck: options.recheck };
  const actions: AgentK8s['actions'] = {
    delete_pod: new DeletePodAction(opts),
    quarantine_workload: new QuarantineWorkloadAction(opts),
    isolate_pod: new IsolatePodAction(opts),
    suggest_revoke: new SuggestRevokeAction(opts),
  };
  let pods: PodWatcher | undefined;
  if (options.podContext !== false && enrichEnabled(api, env)) {
    const node = nodeName(api, env);
    if (!node) {
      log.error({}, 'pod enrichment needs the node name: set k8s.api.node_name or the NODE_NAME env (fieldRef spec.nodeName in the DaemonSet); running without pod context');
    } else {
      pods = new PodWatcher(client, { nodeName: node, resyncIntervalMs: api.enrich.resync_interval_s * 1000, log });
    }
  }
  return { client, pods, actions };
}
