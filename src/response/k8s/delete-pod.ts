/**
 * `delete_pod`: delete the matched pod at once (gracePeriodSeconds 0, as incident responders run
 * `kubectl delete pod --grace-period=0 --force`), with a uid precondition so a pod that has
 * already been replaced under the same name (a StatefulSet's) is left alone. The pod is read
 * first and must still be what the rule matched (live-check.ts). A controller
 * recreates the pod: pair it with quarantine_workload to stop that.
 */
import { callApi } from '../../k8s-api/client.js';
import type { ActionRequest, ActionResult, ResponseAction } from '../types.js';
import { type K8sActionOptions, failureResult, podTarget, readPod, result, shq, unlessStillMatching } from './common.js';

export class DeletePodAction implements ResponseAction {
  readonly name = 'delete_pod' as const;
  constructor(private readonly opts: K8sActionOptions) {}

  async run(req: ActionRequest): Promise<ActionResult> {
    const t = podTarget(req, this.opts, false);
    if ('outcome' in t) return t;
    const { pod, details } = t;
    const cmd = `kubectl delete pod -n ${shq(pod.namespace)} ${shq(pod.name)} --grace-period=0 --force`;
    try {
      // The pod as it is now, in dry run too: it must still be what the rule matched.
      const refused = unlessStillMatching(req, this.opts, await readPod(this.opts.client, pod), 'Pod', details);
      if (refused) return refused;
      if (req.mode !== 'enforce') return result(req, 'dryrun', `would delete pod ${pod.namespace}/${pod.name} with grace period 0 (${cmd})`, details);
      await callApi({ verb: 'delete', resource: 'pods', group: '', namespace: pod.namespace }, () => this.opts.client.core.deleteNamespacedPod({
        name: pod.name,
        namespace: pod.namespace,
        gracePeriodSeconds: 0,
        body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, ...(pod.uid ? { preconditions: { uid: pod.uid } } : {}) },
      }));
    } catch (e) {
      return failureResult(req, e, details);
    }
    return result(req, 'done', `deleted pod ${pod.namespace}/${pod.name}${pod.uid ? ` (uid ${pod.uid})` : ''} with grace period 0; its controller, if any, will recreate it: quarantine_workload stops that`, details);
  }
}
