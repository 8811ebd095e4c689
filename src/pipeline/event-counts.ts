/** Events evaluated, counted by (source, type), for /metrics' minewatch_events_total. */
export class EventCounts {
  private readonly counts = new Map<string, { source: string; type: string; n: number }>();

  inc(source: string, type: string): void {
    const key = `${source}\u0000${type}`;
    const c = this.counts.get(key);
    if (c) c.n++;
    else this.counts.set(key, { source, type, n: 1 });
  }

  *entries(): IterableIterator<[string, string, number]> {
    for (const c of this.counts.values()) yield [c.source, c.type, c.n];
  }
}
