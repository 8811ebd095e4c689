/**
 * Event-type sets for the rule index: a set of types, or "every type except these". Each node of a
 * condition gets two over-approximations: the types for which it can be true and those for which it
 * can be false; `not` swaps them, so `not evt.type in (a)` is known to skip a.
 */
export interface TypeSet {
  /** When true the set means "every type except `set`". */
  neg: boolean;
  set: ReadonlySet<string>;
}

export const ALL_TYPES: TypeSet = { neg: true, set: new Set() };

export function only(types: Iterable<string>): TypeSet {
  return { neg: false, set: new Set(types) };
}

export function except(types: Iterable<string>): TypeSet {
  return { neg: true, set: new Set(types) };
}

export function intersect(a: TypeSet, b: TypeSet): TypeSet {
  if (!a.neg && !b.neg) return only([...a.set].filter((t) => b.set.has(t)));
  if (!a.neg) return only([...a.set].filter((t) => !b.set.has(t)));
  if (!b.neg) return intersect(b, a);
  return except([...a.set, ...b.set]);
}

export function union(a: TypeSet, b: TypeSet): TypeSet {
  if (!a.neg && !b.neg) return only([...a.set, ...b.set]);
  if (!a.neg) return except([...b.set].filter((t) => !a.set.has(t)));
  if (!b.neg) return union(b, a);
  return except([...a.set].filter((t) => b.set.has(t)));
}

/** Is every type of `within` (a plain set) inside `s`? */
export function covers(s: TypeSet, within: ReadonlySet<string>): boolean {
  for (const t of within) if (s.neg === s.set.has(t)) return false;
  return true;
}

/** Does `s` share no type with `within`? */
export function disjoint(s: TypeSet, within: ReadonlySet<string>): boolean {
  for (const t of within) if (s.neg !== s.set.has(t)) return false;
  return true;
}
