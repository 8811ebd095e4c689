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
 */
export type ActionOutcome = 'done' | 'dryrun' | 'spared' | 'missed' | 'failed';

/** The process an action is about, with the identity it had when it was matched. */
export interface Target {
  pid: number;
  /** Start time (ns since the epoch) seen at match time: the kill checks it again first. */
  startTs?: bigint;
  cmdline?: string;
  exepath?: string;
  container?: ContainerInfo;
  k8s?: K8sInfo;
  /** Remote address and port, for block_destination. */
  remote?: { ip: string; port?: number };
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
