/** A bound on the distinct values of one metric label (issue 13: labels an attacker can choose). */

/** What a label value beyond the cap is counted under. */
const OTHER_LABEL = 'other';
/** Distinct values a label keeps by default (web.metrics_max_label_values). */
export const DEFAULT_MAX_LABEL_VALUES = 500;

/**
 * At most `max` distinct values of one label: the first ones seen keep their own series, every
 * later one is counted under `other`. Rule names, sources and hostnames can come from an alert
 * poster; without a cap 200k made-up rule names made 200k series (RSS tripled, /metrics 12.5 MB).
 * First come keeps its place for good, so a series never moves in or out of `other` between two
 * scrapes and every counter stays monotonic.
 */
export class LabelCap {
  private readonly kept = new Set<string>();

  constructor(readonly max: number = DEFAULT_MAX_LABEL_VALUES) {}

  fold(value: string): string {
    if (value === OTHER_LABEL || this.kept.has(value)) return value;
    if (this.kept.size < this.max) {
      this.kept.add(value);
      return value;
    }
    return OTHER_LABEL;
  }
}
