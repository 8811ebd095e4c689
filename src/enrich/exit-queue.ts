/**
 * Exited process-table entries waiting out a grace (process-table.ts): pushed in exit order with
 * one grace per queue, so the order they come in is the order their grace ends in, and a sweep
 * stops at the first entry still within it.
 */

/** What the queue needs of an entry: when its grace ends (ms). */
export interface Exited {
  exitAt: number | undefined;
}

export class ExitQueue<T extends Exited> {
  private items: T[] = [];
  private head = 0;

  /** Whether any entry is waiting. */
  get waiting(): boolean {
    return this.head < this.items.length;
  }

  push(e: T): void {
    this.items.push(e);
  }

  /** Hand `take` each entry whose grace is over at `now` (every one when `force`), oldest first. */
  takeDue(now: number, force: boolean, take: (e: T) => void): void {
    while (this.head < this.items.length) {
      const e = this.items[this.head]!;
      if (!force && e.exitAt !== undefined && e.exitAt > now) break;
      this.head++;
      take(e);
    }
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024) {
      // Moved down in place: a slice was a new array of those still waiting per 1,024 exits, and
      // the pushes after it grew that array again (garbage under an exec storm, issue 16).
      const a = this.items;
      const h = this.head;
      const n = a.length - h;
      for (let i = 0; i < n; i++) a[i] = a[i + h]!;
      a.length = n;
      this.head = 0;
    }
  }
}
