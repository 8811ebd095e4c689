/**
 * A counter keyed by two labels, cheap enough to bump per event (one Map lookup on a joined key);
 * its `entries` suit MetricsSources.alerts and .events.
 */
export class PairCounter {
  private readonly counts = new Map<string, { a: string; b: string; n: number }>();

  inc(a: string, b: string, by = 1): void {
    const key = `${a}\u0000${b}`;
    const c = this.counts.get(key);
    if (c) c.n += by;
    else this.counts.set(key, { a, b, n: by });
  }

  *entries(): IterableIterator<[string, string, number]> {
    for (const c of this.counts.values()) yield [c.a, c.b, c.n];
  }
}
