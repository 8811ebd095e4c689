/**
 * Once-per-event caching. Many rules read the same fields and macros of one event; the engine
 * starts each event with nextEvent(), and a memoized function runs again only for a new event
 * (a new generation) or a different event object, so a reprocessed or mutated event is never
 * answered from a stale cache.
 */
let generation = 0;

/** The engine calls this before evaluating each event. */
export function nextEvent(): void {
  generation++;
}

/** The current event's generation: changes with every nextEvent(). */
export function currentGeneration(): number {
  return generation;
}

export function memoPerEvent<E extends object, V>(fn: (ev: E) => V): (ev: E) => V {
  let gen = -1;
  let last: E | undefined;
  let value: V;
  return (ev: E): V => {
    if (gen === generation && last === ev) return value;
    value = fn(ev);
    gen = generation;
    last = ev;
    return value;
  };
}
