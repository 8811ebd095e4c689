/**
 * A bounded table keyed by network namespace and key, for what the DNS learning keeps (learned
 * names, queries waiting for their answers): each namespace has a quota, past which its own oldest
 * entries go, and the whole table a bound, past which the oldest entries of all go. So one
 * namespace that floods fills only its own share, and the table never stops taking new entries.
 *
 * Oldest = least recently set. The order is kept in queues with lazy deletion (an item whose entry
 * is gone or was set again since is skipped): a Map's first key is no queue, V8 keeps deleted
 * entries as holes at its front, and finding the first live one after many evictions scans them
 * all (a flood ran 37 times slower per entry that way).
 */

interface Slot<V> {
  value: V;
  seq: number;
}

class OrderQueue<T extends { seq: number }> {
  private items: T[] = [];
  private head = 0;

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item for which `live` holds, taken out; undefined when none. */
  shift(live: (item: T) => boolean): T | undefined {
    while (this.head < this.items.length) {
      const item = this.items[this.head++]!;
      if (live(item)) return item;
    }
    return undefined;
  }

  /** Drop consumed and stale items once they outnumber the live ones (`size`). */
  compact(size: number, live: (item: T) => boolean): void {
    if (this.items.length - this.head <= 2 * size + 1024 && this.head <= Math.max(4096, size)) return;
    this.items = this.items.slice(this.head).filter(live);
    this.head = 0;
  }
}

interface Space<V> {
  slots: Map<string, Slot<V>>;
  queue: OrderQueue<{ key: string; seq: number }>;
}

export class NetnsTable<V> {
  private readonly spaces = new Map<number, Space<V>>();
  private readonly order = new OrderQueue<{ netns: number; key: string; seq: number }>();
  private total = 0;
  private seq = 0;
  /** Entries dropped to make room. */
  evicted = 0;

  constructor(readonly perNetns: number, readonly max: number) {}

  get(netns: number, key: string): V | undefined {
    return this.spaces.get(netns)?.slots.get(key)?.value;
  }

  /** Set an entry (a known one becomes the youngest); returns true when it is new. */
  set(netns: number, key: string, value: V): boolean {
    const space: Space<V> = this.spaces.get(netns) ?? { slots: new Map<string, Slot<V>>(), queue: new OrderQueue<{ key: string; seq: number }>() };
    // An item of a queue is live while its entry is there and was not set again since.
    const liveHere = (x: { key: string; seq: number }): boolean => space.slots.get(x.key)?.seq === x.seq;
    const seq = ++this.seq;
    const old = space.slots.get(key);
    if (old) {
      old.value = value;
      old.seq = seq;
    } else {
      while (space.slots.size >= this.perNetns) {
        const item = space.queue.shift(liveHere);
        if (!item) break;
        this.drop(netns, item.key, true);
      }
      while (this.total >= this.max) {
        const item = this.order.shift(this.liveAnywhere);
        if (!item) break;
        this.drop(item.netns, item.key, true);
      }
      space.slots.set(key, { value, seq });
      this.total++;
    }
    // New, or emptied (and let go) by the evictions above.
    this.spaces.set(netns, space);
    space.queue.push({ key, seq });
    this.order.push({ netns, key, seq });
    space.queue.compact(space.slots.size, liveHere);
    this.order.compact(this.total, this.liveAnywhere);
    return !old;
  }

  private readonly liveAnywhere = (x: { netns: number; key: string; seq: number }): boolean => this.spaces.get(x.netns)?.slots.get(x.key)?.seq === x.seq;

  delete(netns: number, key: string): boolean {
    return this.drop(netns, key, false);
  }

  /** Entries of one namespace. */
  sizeIn(netns: number): number {
    return this.spaces.get(netns)?.slots.size ?? 0;
  }

  get size(): number {
    return this.total;
  }

  private drop(netns: number, key: string, evicting: boolean): boolean {
    const s = this.spaces.get(netns);
    if (!s?.slots.delete(key)) return false;
    if (evicting) this.evicted++;
    this.total--;
    if (s.slots.size === 0) this.spaces.delete(netns);
    return true;
  }
}
