/**
 * A counter keyed by two labels, cheap enough to bump per event: two Map lookups on the labels
 * themselves (no joined key string to build and hash per event); its `entries` suit
 * MetricsSources.alerts and .events.
 */
interface Count {
  a: string;
  b: string;
  n: number;
}

export class PairCounter {
  private readonly byA = new Map<string, Map<string, Count>>();
  /** Every count in the order its pair first came. */
  private readonly all: Count[] = [];

  inc(a: string, b: string, by = 1): void {
    let inner = this.byA.get(a);
    if (!inner) {
      inner = new Map();
      this.byA.set(a, inner);
    }
    const c = inner.get(b);
    if (c) c.n += by;
    else {
      const count = { a, b, n: by };
      inner.set(b, count);
      this.all.push(count);
    }
  }

  *entries(): IterableIterator<[string, string, number]> {
    for (const c of this.all) yield [c.a, c.b, c.n];
  }
}
