/**
 * What the engine runs for one event type: the rules that can match it, in load order, each with
 * its condition specialized to the type (its evt.type tests folded away), plus two ways to skip
 * rules that cannot match without calling into them. Neither changes a result: a rule is skipped
 * only when one of the tests its condition requires (a top-level `and` term) is known false, and
 * a rule with a false term is false whatever its other terms do, exceptions included (process()
 * takes a predicate that throws as not matching).
 *
 * - A value index. Many rules require a field to be one of a few values: `proc.name in (…)` on
 *   execve, or an `or` whose every branch requires one (`(proc.name = nc and …) or (proc.name =
 *   ncat and …)`). The plan picks the field most rules require so, reads it once per event and
 *   runs only the rules whose values include the event's (and the rules that do not look at it).
 * - Guards. Many rules open with the same test (`open_write and …`, `container.id != host and …`),
 *   and on most events it is false. A test that opens two or more rules becomes a guard: the plan
 *   evaluates it once per event and skips every rule it opens while it is false. Only a rule's
 *   leading tests become its guards, in their order, and the rule runs the rest of its condition
 *   after them: the same tests in the same order as the whole condition.
 */
import type { Event } from '../events.js';
import type { EventMemo } from '../fields/memo.js';
import type { Extracted } from '../fields/types.js';
import { ConditionCompiler, asText, type IR, type Pred } from './compiler.js';
import type { CompiledRule } from './loader.js';
import { ownFunction, specialize } from './specialize.js';

type Leaf = Extract<IR, { k: 'leaf' }>;

/** A leading test of a rule: a leaf, or the negation of one. */
interface Lead {
  leaf: Leaf;
  neg: boolean;
}

/** A field's values for which a condition can be true: it is false for any other value. */
interface Allowed {
  get: (ev: Event) => Extracted;
  values: ReadonlySet<string>;
}

const TRUE: Pred = () => true;
/** Fewer rules than this requiring one field: no value index. */
const INDEX_MIN_RULES = 3;

export class TypePlan {
  /** The rules that can match the type, in load order. */
  readonly rules: CompiledRule[] = [];
  /** Per rule: its condition after its guards. */
  private readonly preds: Pred[] = [];
  /** Per rule i: its guards are guardIds[guardStart[i] .. guardStart[i + 1]). */
  private readonly guardStart: Int32Array;
  private readonly guardIds: Int32Array;
  private readonly guards: Pred[] = [];
  /** Per guard: the event (memo generation) its value is for, and the value. */
  private readonly stamp: Float64Array;
  private readonly value: Uint8Array;
  /** The value index: the field, the rules to run per value, and for any other value. */
  private readonly indexGet: ((ev: Event) => Extracted) | undefined;
  private readonly byValue = new Map<string, Int32Array>();
  private readonly otherwise: Int32Array;
  /** Rule indices to run for the current event (set when next() starts an event). */
  private current: Int32Array;

  constructor(candidates: readonly CompiledRule[], type: string, private readonly memo: EventMemo) {
    const types = new Set([type]);
    const leads: Lead[][] = [];
    const conjuncts: IR[][] = [];
    const simplified: IR[] = [];
    for (const r of candidates) {
      const s = ConditionCompiler.simplify(r.condition, types);
      if (s.k === 'const' && !s.v) continue; // can never match this type
      this.rules.push(r);
      conjuncts.push(s.k === 'and' ? s.items : s.k === 'const' ? [] : [s]);
      simplified.push(s);
    }

    // Guards: a leading test that opens two or more rules. A rule that opens with a macro no
    // other rule opens with (`write_etc_common`, itself `open_write and …`) opens with that
    // macro's terms instead: the same tests in the same order, so its own leading terms may be
    // shared ones.
    const key = (l: Lead): Leaf | { not: Leaf } => (l.neg ? negation(l.leaf) : l.leaf);
    let uses = countLeads(conjuncts, key);
    for (let round = 0; round < 4; round++) {
      let changed = false;
      for (let i = 0; i < conjuncts.length; i++) {
        const first = conjuncts[i]![0];
        if (first?.k === 'leaf' && first.inner?.k === 'and' && uses.get(first) === 1) {
          conjuncts[i] = [...first.inner.items, ...conjuncts[i]!.slice(1)];
          changed = true;
        }
      }
      if (!changed) break;
      uses = countLeads(conjuncts, key);
    }
    for (const items of conjuncts) leads.push(leadsOf(items));
    const ids = new Map<object, number>();
    const start: number[] = [];
    const flat: number[] = [];
    for (let i = 0; i < this.rules.length; i++) {
      start.push(flat.length);
      const lead = leads[i]!;
      let n = 0;
      while (n < lead.length && (uses.get(key(lead[n]!)) ?? 0) >= 2) {
        const k = key(lead[n]!);
        let id = ids.get(k);
        if (id === undefined) {
          id = this.guards.length;
          ids.set(k, id);
          const t = ownFunction(lead[n]!.leaf.test);
          // A negated guard in a function of its own (specialize.ts): it calls one test.
          this.guards.push(lead[n]!.neg ? specialize<Pred>(['t'], [t], 'return function notGuard(ev) { return !t(ev); };', () => (ev) => !t(ev)) : t);
        }
        flat.push(id);
        n++;
      }
      const rest = conjuncts[i]!.slice(n);
      this.preds.push(rest.length === 0 ? TRUE : ConditionCompiler.build(rest.length === 1 ? rest[0]! : { k: 'and', items: rest }));
    }
    start.push(flat.length);
    this.guardStart = Int32Array.from(start);
    this.guardIds = Int32Array.from(flat);
    this.stamp = new Float64Array(this.guards.length).fill(-1);
    this.value = new Uint8Array(this.guards.length);

    // The value index, on the field the most rules require.
    const all = Int32Array.from(this.rules.keys());
    this.otherwise = this.current = all;
    const counts = new Map<string, number>();
    for (const s of simplified) for (const f of eqFields(s)) counts.set(f, (counts.get(f) ?? 0) + 1);
    let field: string | undefined;
    for (const [f, n] of counts) if (n >= INDEX_MIN_RULES && (!field || n > counts.get(field)!)) field = f;
    if (field === undefined) return;
    const allowed = simplified.map((s) => allowedValues(s, field));
    const values = new Set<string>();
    for (const a of allowed) if (a) for (const v of a.values) values.add(v);
    for (const v of values) this.byValue.set(v, Int32Array.from(all.filter((i) => !allowed[i] || allowed[i]!.values.has(v))));
    this.otherwise = Int32Array.from(all.filter((i) => !allowed[i]));
    this.indexGet = allowed.find((a) => a)!.get;
  }

  /** The name of the indexed field and how many rules it spares per value (for diagnostics). */
  get indexed(): { values: number; otherwise: number } | undefined {
    return this.indexGet ? { values: this.byValue.size, otherwise: this.otherwise.length } : undefined;
  }

  /** The rule at a position next() returned. */
  rule(pos: number): CompiledRule {
    return this.rules[this.current[pos]!]!;
  }

  /**
   * The position of the first rule at or after position `from` that matches `ev`, or -1; `from`
   * 0 starts an event. Runs inside the engine's process(), after its memo's next(): guard values and the
   * rules to run are kept for the current event only.
   */
  next(ev: Event, from: number): number {
    if (from === 0) this.current = this.candidates(ev);
    const gen = this.memo.generation;
    const { current, preds, guardStart, guardIds, guards, stamp, value } = this;
    for (let pos = from; pos < current.length; pos++) {
      const i = current[pos]!;
      let open = true;
      for (let k = guardStart[i]!, end = guardStart[i + 1]!; k < end; k++) {
        const g = guardIds[k]!;
        if (stamp[g] !== gen) {
          let v: boolean;
          try {
            v = guards[g]!(ev);
          } catch {
            v = false; // as a predicate that throws: the rules it opens do not match
          }
          stamp[g] = gen;
          value[g] = v ? 1 : 0;
        }
        if (value[g] === 0) {
          open = false;
          break;
        }
      }
      if (!open) continue;
      let hit: boolean;
      try {
        hit = preds[i]!(ev);
      } catch {
        hit = false;
      }
      if (hit) return pos;
    }
    return -1;
  }

  /** The rules that can match `ev` by the value index. */
  private candidates(ev: Event): Int32Array {
    const get = this.indexGet;
    if (!get) return this.otherwise;
    let v: Extracted;
    try {
      v = get(ev);
    } catch {
      // Every rule that requires the field would throw on it: none of them can match.
      return this.otherwise;
    }
    const t = typeof v === 'string' ? v : asText(v);
    return (t === undefined ? undefined : this.byValue.get(t)) ?? this.otherwise;
  }
}

/** A rule's leading tests: its first terms that are tests (or negated tests), up to the first that is not. */
function leadsOf(items: IR[]): Lead[] {
  const lead: Lead[] = [];
  for (const it of items) {
    if (it.k === 'leaf') lead.push({ leaf: it, neg: false });
    else if (it.k === 'not' && it.x.k === 'leaf') lead.push({ leaf: it.x, neg: true });
    else break;
  }
  return lead;
}

/** How many rules open with each test. */
function countLeads(conjuncts: IR[][], key: (l: Lead) => object): Map<object, number> {
  const uses = new Map<object, number>();
  for (const items of conjuncts) for (const l of new Set(leadsOf(items).map(key))) uses.set(l, (uses.get(l) ?? 0) + 1);
  return uses;
}

/** One key object per negated leaf, so `not x` in two rules is recognized as the same test. */
const negations = new WeakMap<Leaf, { not: Leaf }>();
function negation(leaf: Leaf): { not: Leaf } {
  let k = negations.get(leaf);
  if (!k) negations.set(leaf, (k = { not: leaf }));
  return k;
}

/** Fields with equality tests (=, in) reachable through and/or: index candidates. */
function eqFields(ir: IR, out = new Set<string>()): Set<string> {
  if (ir.k === 'leaf') {
    if (ir.fuse?.kind === 'eq') out.add(ir.fuse.field);
  } else if (ir.k === 'and' || ir.k === 'or') for (const x of ir.items) eqFields(x, out);
  return out;
}

/**
 * The values of `field` for which `ir` can be true, when `ir` requires an equality test on it:
 * the test itself, a term of an `and` that requires one, or an `or` whose every branch does.
 * Undefined when `ir` does not require one.
 */
function allowedValues(ir: IR, field: string): Allowed | undefined {
  switch (ir.k) {
    case 'leaf':
      return ir.fuse?.kind === 'eq' && ir.fuse.field === field ? { get: ir.fuse.get, values: new Set(ir.fuse.values) } : undefined;
    case 'and': {
      // Every term is required: the values all of them allow.
      let out: Allowed | undefined;
      for (const x of ir.items) {
        const a = allowedValues(x, field);
        if (!a) continue;
        out = out ? { get: out.get, values: new Set([...out.values].filter((v) => a.values.has(v))) } : a;
      }
      return out;
    }
    case 'or': {
      // One branch suffices: the values any of them allows, if each requires some.
      const values = new Set<string>();
      let get: Allowed['get'] | undefined;
      for (const x of ir.items) {
        const a = allowedValues(x, field);
        if (!a) return undefined;
        get = a.get;
        for (const v of a.values) values.add(v);
      }
      return get ? { get, values } : undefined;
    }
    default:
      return undefined;
  }
}
