/**
 * The alert sink at the end of the pipeline: every match (rule matches after the response stage,
 * and response outcomes) passes here once, is counted, and goes on to the alert pipeline (run,
 * server) or to standard output (replay). Built first, so the dispatcher and the pipeline share it
 * and nothing is bound late.
 */
import type { Match } from '../engine/types.js';

export class CountingSink {
  /** Matches passed on, since start. */
  count = 0;

  constructor(private readonly next: (m: Match) => void) {}

  readonly accept = (m: Match): void => {
    this.count++;
    this.next(m);
  };
}
