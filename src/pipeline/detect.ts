/**
 * The detector stage: every enriched event (and every rule match) through the detectors, their
 * answers handed to the response dispatcher, which owns safety, dry-run and the outcome alerts.
 */
import type { Detector, DetectorAnswer } from '../detectors/types.js';
import type { Match } from '../engine/types.js';
import type { Event } from '../events.js';
import type { ActionRequest, ActionResult } from '../response/types.js';

/** What the stage needs of the dispatcher. */
export interface AnswerTaker {
  request(req: ActionRequest): void;
  report(r: ActionResult): void;
}

/** The detectors as they run now: a reload swaps the list the provider returns. */
export type DetectorsProvider = () => readonly Detector[];

/** Hand a detector's answers on; true when there was any. */
export function handAnswers(answers: readonly DetectorAnswer[] | undefined, to: AnswerTaker): boolean {
  if (!answers || answers.length === 0) return false;
  for (const a of answers) {
    if ('request' in a) to.request(a.request);
    else to.report(a.report);
  }
  return true;
}

export class DetectorStage {
  constructor(private readonly detectors: DetectorsProvider, private readonly to: AnswerTaker) {}

  /** True when a detector answered (a request or a report). */
  onEvent(ev: Event): boolean {
    let answered = false;
    for (const d of this.detectors()) if (handAnswers(d.onEvent(ev), this.to)) answered = true;
    return answered;
  }

  onMatch(m: Match, ev: Event): void {
    for (const d of this.detectors()) if (d.onMatch) handAnswers(d.onMatch(m, ev), this.to);
  }
}
