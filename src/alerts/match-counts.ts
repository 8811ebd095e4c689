/**
 * Matches counted by rule, priority and source, for /metrics (both alert services keep one). Rule
 * and source names past web.metrics_max_label_values are counted under `other`, bounded here where
 * the memory is held, not only on the /metrics page.
 */
import { LabelCap } from '../platform/label-cap.js';

/** A match count for /metrics: rule and priority. */
export interface MatchCount {
  rule: string;
  priority: string;
  source: string;
  count: number;
}

export class MatchCounts {
  private readonly counts = new Map<string, MatchCount>();
  private readonly ruleCap: LabelCap;
  private readonly sourceCap: LabelCap;

  constructor(maxLabelValues?: number) {
    this.ruleCap = new LabelCap(maxLabelValues);
    this.sourceCap = new LabelCap(maxLabelValues);
  }

  add(ruleName: string, priority: string, sourceName: string, n: number): void {
    const rule = this.ruleCap.fold(ruleName);
    const source = this.sourceCap.fold(sourceName);
    const k = `${rule}\u0000${priority}\u0000${source}`;
    const c = this.counts.get(k);
    if (c) c.count += n;
    else this.counts.set(k, { rule, priority, source, count: n });
  }

  list(): MatchCount[] {
    return [...this.counts.values()];
  }
}
