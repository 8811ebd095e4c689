/**
 * A Map from pid to value with a small direct-mapped cache in front of it (the process table's
 * entries: process-table.ts).
 *
 * Under an exec storm the table holds every process that exited in the last few seconds (its exit
 * grace), thousands of entries, and each command's notices and events look up the same few pids
 * a dozen times (the child's, its parent's): in the source, the table, the ancestry walk, isSelf.
 * A Map lookup in a table that large missed the CPU caches often enough to be a visible part of
 * the agent's cost per exec (issue 16). The cache answers a pid seen lately from one slot, by its
 * low bits; a slot holds a pid only while the map holds it with that value.
 */
const SLOTS = 256;

export class PidMap<V> {
  private readonly map = new Map<number, V>();
  /** The pid each slot holds (NaN: none, equal to no pid). */
  private readonly pids = new Float64Array(SLOTS).fill(NaN);
  private readonly vals: (V | undefined)[] = new Array<V | undefined>(SLOTS).fill(undefined);

  get size(): number {
    return this.map.size;
  }

  get(pid: number): V | undefined {
    const s = pid & (SLOTS - 1);
    if (this.pids[s] === pid) return this.vals[s];
    const v = this.map.get(pid);
    if (v !== undefined) {
      this.pids[s] = pid;
      this.vals[s] = v;
    }
    return v;
  }

  has(pid: number): boolean {
    return this.get(pid) !== undefined;
  }

  set(pid: number, v: V): this {
    this.map.set(pid, v);
    const s = pid & (SLOTS - 1);
    this.pids[s] = pid;
    this.vals[s] = v;
    return this;
  }

  delete(pid: number): boolean {
    const s = pid & (SLOTS - 1);
    if (this.pids[s] === pid) {
      this.pids[s] = NaN;
      this.vals[s] = undefined;
    }
    return this.map.delete(pid);
  }

  /** Pids in the order they were first set (a set of a pid present keeps its place), as a Map's. */
  keys(): MapIterator<number> {
    return this.map.keys();
  }

  values(): MapIterator<V> {
    return this.map.values();
  }
}
