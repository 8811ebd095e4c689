/**
 * Once-per-event caching. Many rules read the same fields and macros of one event: each engine
 * owns an EventMemo, starts every event with next(), and a memoized function runs again only
 * for a new event (a new generation) or a different event object, so a reprocessed or mutated
 * event is never answered from a stale cache. Two engines in one process (the agent's and the
 * admission webhook's) each keep their own.
 */
export class EventMemo {
  /** The current event's generation: changes with every next(). */
  generation = 0;
  private readonly shared = new Map<unknown, unknown>();

  /** The engine calls this before evaluating each event. */
  next(): void {
    this.generation++;
  }

  /** `fn`, run at most once per event (its value kept in a slot, as a field's). */
  perEvent<E extends object, V>(fn: (ev: E) => V): (ev: E) => V {
    const slot = fieldSlot(this, fn);
    return (ev: E): V => valueOf(slot, ev) as V;
  }

  /** One memoized `fn` for every caller of this memo: field modules share a parse this way. */
  sharedPerEvent<E extends object, V>(fn: (ev: E) => V): (ev: E) => V {
    let m = this.shared.get(fn) as ((ev: E) => V) | undefined;
    if (!m) this.shared.set(fn, (m = this.perEvent(fn)));
    return m;
  }
}

/** `fn` memoized by `memo`, or `fn` itself (each call computes) when there is no memo. */
export function perEventOf<E extends object, V>(memo: EventMemo | undefined, fn: (ev: E) => V): (ev: E) => V {
  return memo ? memo.sharedPerEvent(fn) : fn;
}

/**
 * A field's value for the current event, kept where a test reads it: a test checks the slot
 * itself (valueOf, small enough to be inlined) instead of calling through a memoized wrapper.
 */
export interface FieldSlot<E extends object = object, V = unknown> {
  memo: EventMemo;
  get: (ev: E) => V;
  /** A throw from `get` is a missing value (undefined): `get` is an extractor without its guard. */
  catches: boolean;
  gen: number;
  ev: E | undefined;
  v: V | undefined;
}

export function fieldSlot<E extends object, V>(memo: EventMemo, get: (ev: E) => V, catches = false): FieldSlot<E, V> {
  return { memo, get, catches, gen: -1, ev: undefined, v: undefined };
}

/** The slot's value for `ev`, extracted once per event. An extractor that throws throws here too (unless the slot catches). */
export function valueOf<E extends object, V>(s: FieldSlot<E, V>, ev: E): V | undefined {
  if (s.gen === s.memo.generation && s.ev === ev) return s.v;
  return fill(s, ev);
}

function fill<E extends object, V>(s: FieldSlot<E, V>, ev: E): V | undefined {
  let v: V | undefined;
  if (s.catches) {
    try {
      v = s.get(ev);
    } catch {
      v = undefined; // as the extractor's own guard would answer
    }
  } else v = s.get(ev);
  s.v = v;
  s.gen = s.memo.generation;
  s.ev = ev;
  return v;
}
