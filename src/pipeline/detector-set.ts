/**
 * The running detectors: the list the detector stage reads, swapped whole on a reload, and the
 * timers of their periodic rescans. A detector that leaves the list is closed.
 */
import type { Detector } from '../detectors/types.js';
import { type AnswerTaker, handAnswers } from './detect.js';

export class DetectorSet {
  private list: readonly Detector[] = [];
  private timers: NodeJS.Timeout[] = [];

  /** `rescans: false` (replay): the periodic looks at this host never run. */
  constructor(private readonly to: AnswerTaker, private readonly opts: { rescans: boolean } = { rescans: true }) {}

  /** The provider the pipeline's detector stage reads. */
  readonly current = (): readonly Detector[] => this.list;

  /** Run these from now on; the ones not kept are closed. */
  replace(next: readonly Detector[]): void {
    for (const d of this.list) if (!next.includes(d)) d.close?.();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.list = next;
    for (const d of next) {
      const every = d.rescanIntervalMs ?? 0;
      if (!d.rescan || every <= 0 || !this.opts.rescans) continue;
      const t = setInterval(() => handAnswers(d.rescan?.(), this.to), every);
      t.unref();
      this.timers.push(t);
    }
  }

  close(): void {
    this.replace([]);
  }
}
