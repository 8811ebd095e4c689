/**
 * The response stage's vocabulary (ARCHITECTURE.md, "Matches, alerts, actions"): what an action
 * is asked to act on, and what it reports. Every outcome, done or not, becomes an alert.
 */
import type { ContainerInfo, Event, K8sInfo } from '../events.js';
import type { Match } from '../engine/types.js';

export type ActionName = 'kill' | 'kill_container' | 'block_destination' | 'delete_pod' | 'isolate_pod' | 'quarantine_workload' | 'suggest_revoke';

/**
 * done: the action happened. dryrun: it would have happened (mode dryrun), with what it would do.
 * spared: a safety rule or allow-list kept it from happening. missed: the target was gone or
 * replaced before the action (a lost race, never an error). failed: it was tried and failed.
 * skipped: the action does not apply to what matched (kill on a k8s_audit match: an API request
 * has no process; delete_pod on a Deployment).
 */
export type ActionOutcome = 'done' | 'dryrun' | 'spared' | 'missed' | 'failed' | 'skipped';

/**
 * The Kubernetes object an audit event names (objectRef, with what the request and response
 * carried of it): what the cluster actions act on when a k8s_audit rule matched.
 */
export interface K8sObjectTarget {
  /** Deployment, Pod, CronJob, … (from objectRef.resource). */
  kind: string;
  /** objectRef.resource: deployments, pods, … */
  resource: string;
  /** objectRef.apiGroup: '' for the core group. */
  apiGroup: string;
  namespace: string;
  name: string;
  /** responseObject.metadata.uid when the audit level recorded it: the object acted on must still be this one. */
  uid?: string;
  /** The object's labels (a Pod's are its pods'), when the event carries the whole object. */
  labels?: Record<string, string>;
  /** A workload's pod template labels, when the event carries the whole object. */
  templateLabels?: Record<string, string>;
  /** The images of its pod (template), for the image allow-list. */
  images?: string[];
  /** Who sent the request (user.username) and what it was (create, update, patch). */
  user?: string;
  verb?: string;
}

/** The process an action is about, with the identity it had when it was matched. */
export interface Target {
  /** 0 when the target is a Kubernetes object (`object`), not a process. */
  pid: number;
  /** Start time (ns since the epoch) seen at match time: the kill checks it again first. */
  startTs?: bigint;
  cmdline?: string;
  exepath?: string;
  container?: ContainerInfo;
  k8s?: K8sInfo;
  /** Remote address and port, for block_destination. */
  remote?: { ip: string; port?: number };
  /** The API object a k8s_audit match names (then there is no process: pid is 0). */
  object?: K8sObjectTarget;
}

export interface ActionRequest {
  action: ActionName;
  target: Target;
  /** What asked for it: a rule name, or a detector ("execwhacker", "tcpflowkiller"). */
  trigger: string;
  /** Detector details: the config entry and banned string that matched, the reason, … */
  details?: Record<string, string | number | boolean>;
  mode: 'dryrun' | 'enforce';
  /** The event and match behind it, when there is one. */
  event?: Event;
  match?: Match;
}

export interface ActionResult {
  request: ActionRequest;
  outcome: ActionOutcome;
  /** Why: "pid 1", "allow-listed image", "process gone", "start time changed", an errno… */
  reason?: string;
  /** Time from the event to the decision, ns. */
  decideNs?: number;
}

export interface ResponseAction {
  readonly name: ActionName;
  run(req: ActionRequest): Promise<ActionResult>;
}
