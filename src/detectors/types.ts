/**
 * The detectors' contract (issue 14): a detector reads enriched events before the rules, and
 * answers with what the response stage should do. It never acts itself: the pipeline hands its
 * answers to the dispatcher, which owns safety, dry-run and the outcome alerts. That keeps
 * replay safe (responses there only record) and keeps every detector testable without a host.
 */
import type { Event } from '../events.js';
import type { Match } from '../engine/types.js';
import type { ActionRequest, ActionResult } from '../response/types.js';

/**
 * One answer of a detector: ask for an action, or report a decision it took itself (a process
 * an allow pattern spared is reported as a `spared` outcome, so the user sees every case).
 */
export type DetectorAnswer = { request: ActionRequest } | { report: ActionResult };

/** Counters a detector shows on /metrics and in `stats()`: flat numbers, or one level of labels. */
export type DetectorStats = Record<string, number | Record<string, number>>;

export interface Detector {
  /** Its config section's name under `detectors:` (execwhacker, tcpflowkiller, monero, …). */
  readonly name: string;
  /** Every enriched event, before the rules. Cheap for events it does not look at. */
  onEvent(ev: Event): DetectorAnswer[] | undefined;
  /** Every rule match (the monero detector acts on the RandomX rule's). */
  onMatch?(m: Match, ev: Event): DetectorAnswer[] | undefined;
  /** A periodic look at the whole host (the execwhacker re-reads every command line). */
  rescan?(): DetectorAnswer[];
  /** How often rescan() runs; 0 or absent: never. */
  readonly rescanIntervalMs?: number;
  stats(): DetectorStats;
  /** Release timers, files and sockets. */
  close?(): void;
}
