/**
 * Aho-Corasick over UTF-16 code units: many `contains` needles on one field (and, later, tens of
 * thousands of execwhacker banned strings) tested in one pass over the haystack.
 */
export class AhoCorasick {
  // Trie as parallel arrays; goto edges in a Map per state keep memory small for large alphabets.
  private readonly next: Map<number, number>[] = [new Map<number, number>()];
  private readonly fail: number[] = [0];
  /** Needle ids ending at each state, including those reached by failure links (after build). */
  private readonly out: number[][] = [[]];
  private built = false;

  constructor(readonly needles: readonly string[] = []) {
    needles.forEach((n, i) => this.add(n, i));
    this.build();
  }

  private add(needle: string, id: number): void {
    let s = 0;
    for (let i = 0; i < needle.length; i++) {
      const c = needle.charCodeAt(i);
      let t = this.next[s]!.get(c);
      if (t === undefined) {
        t = this.next.length;
        this.next.push(new Map());
        this.fail.push(0);
        this.out.push([]);
        this.next[s]!.set(c, t);
      }
      s = t;
    }
    this.out[s]!.push(id);
  }

  private build(): void {
    const queue: number[] = [];
    for (const t of this.next[0]!.values()) queue.push(t);
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]!;
      for (const [c, t] of this.next[s]!) {
        let f = this.fail[s]!;
        while (f !== 0 && !this.next[f]!.has(c)) f = this.fail[f]!;
        const ft = this.next[f]!.get(c);
        this.fail[t] = ft !== undefined && ft !== t ? ft : 0;
        const inherited = this.out[this.fail[t]!]!;
        if (inherited.length) this.out[t] = this.out[t]!.concat(inherited);
        queue.push(t);
      }
    }
    this.built = true;
  }

  private step(s: number, c: number): number {
    for (;;) {
      const t = this.next[s]!.get(c);
      if (t !== undefined) return t;
      if (s === 0) return 0;
      s = this.fail[s]!;
    }
  }

  /** True when any needle occurs in `text`. An empty needle always matches. */
  test(text: string): boolean {
    if (this.out[0]!.length) return true;
    let s = 0;
    for (let i = 0; i < text.length; i++) {
      s = this.step(s, text.charCodeAt(i));
      if (this.out[s]!.length) return true;
    }
    return false;
  }

  /** Every occurrence: needle id and the index just past its end. */
  *matches(text: string): Generator<{ id: number; end: number }> {
    let s = 0;
    for (let i = 0; i < text.length; i++) {
      s = this.step(s, text.charCodeAt(i));
      for (const id of this.out[s]!) yield { id, end: i + 1 };
    }
  }

  get isBuilt(): boolean {
    return this.built;
  }
}
