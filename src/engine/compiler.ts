/**
 * Conditions → predicate closures. Each field resolves once, through the catalog, to an extractor
 * whose value is kept once per event in a slot (the engine's EventMemo); each comparison becomes
 * one closure with its value parsed and typed up front (sets for `in`, a prefix table for
 * `pmatch`), and the same comparison written in many rules is one closure. What an operator means
 * is written once per value type (TEXT_OPS, NUMBER_OPS, BOOL_OPS, ADDRESS_OPS): the test on one
 * value, from which both the single-valued closure and the list-field walk are built. Inside an `or`, tests
 * of one kind on one field fuse: equalities into one set, startswith/endswith/contains into one
 * pass (one Aho-Corasick automaton for many needles). `x in ()` folds to false. List fields that
 * can (proc.aname, fd.ip) are walked without building arrays (FieldDef.bindAny).
 * Macros expand inline, so a rule's event types are known and its `evt.type` tests fold away;
 * the engine folds them further per event type (plan.ts).
 */
import type { Event } from '../events.js';
import type { FieldRegistry } from '../fields/registry.js';
import { FieldResolveError } from '../fields/registry.js';
import type { AnyOf, Extracted, FieldType, FieldValue } from '../fields/types.js';
import type { Expr, FieldOperand, Literal, Op, Operand } from './ast.js';
import { EventMemo, type FieldSlot, fieldSlot, valueOf } from '../fields/memo.js';
import { AhoCorasick } from './aho.js';
import { ownFunction, specialize, specializeLater } from './specialize.js';
import { ALL_TYPES, type TypeSet, covers, disjoint, except, intersect, only, union } from './evttypes.js';
import { PathPrefixMatcher, globToRegExp } from '../platform/glob.js';
import { TEXT_TYPES, transformedType, transformer } from './transformers.js';
import { netContains, netContains4, parseIp, parseNet, parseV4Number, type IpNet } from '../platform/ip.js';
import type { Position } from './types.js';

export type Pred = (ev: Event) => boolean;
/** Maps an offset in a condition's text to its place in a file. */
export type Locator = (at: number) => Position;

export class CompileError extends Error {
  constructor(
    message: string,
    readonly pos: Position,
    readonly snippet?: string,
    /** An unknown field: rules with skip-if-unknown-filter turn this into a warning. */
    readonly unknownField = false,
  ) {
    super(message);
    this.name = 'CompileError';
  }
}

/** Intermediate form: the expanded tree, before partial evaluation and closure building. */
export type IR =
  | { k: 'and'; items: IR[] }
  | { k: 'or'; items: IR[] }
  | { k: 'not'; x: IR }
  | { k: 'const'; v: boolean }
  /** A macro's expansion: kept as a node so each event evaluates a macro once for all rules (through memo). */
  | { k: 'macro'; name: string; ir: IR; memo: EventMemo }
  | {
      k: 'leaf';
      test: Pred;
      /** The comparison as written (for diagnostics). */
      text?: string;
      /** For a memoized macro: its simplified body (the engine's plans open it up, see plan.ts). */
      inner?: IR;
      /**
       * The test's value whatever the event (`x in ()`): simplify() folds it to a constant, while
       * types() treats it as any other test, so a rule's event types and warnings do not change.
       */
      known?: boolean;
      /** For evt.type tests: the types for which the test is true. */
      evtTypes?: TypeSet;
      /** Fusable text test: several of one kind on one field inside an `or` become one test. */
      fuse?: Fuse;
    };

/** Text tests that fuse: equality (=, in) into one set, the others into one pass over the value. */
export type FuseKind = 'eq' | 'contains' | 'icontains' | 'startswith' | 'endswith';

export interface Fuse {
  kind: FuseKind;
  /** The field as written (with its transformer, if any): tests fuse only on the same field. */
  field: string;
  /** The values tested (icontains: lowercased). */
  values: string[];
  get: (ev: Event) => Extracted;
  slot: FieldSlot<Event, Extracted>;
}

export interface MacroDef {
  name: string;
  expr: Expr;
  locate: Locator;
}

export interface CompileContext {
  registry: FieldRegistry;
  source: string;
  macros: Map<string, MacroDef>;
  /** Macros referenced while compiling (for "unused macro" warnings). */
  usedMacros?: Set<string>;
  /** The engine's per-event cache (one of the compiler's own when none is given). */
  memo?: EventMemo;
}

const NUMERIC: ReadonlySet<FieldType> = new Set(['int64', 'uint64', 'port', 'reltime', 'abstime']);
const STRINGY = TEXT_TYPES;

interface Operandish {
  /** The value for an event, extracted once per event (reads the slot). */
  get: (ev: Event) => Extracted;
  /** Where the value is kept for the current event: tests read it here without a call. */
  slot: FieldSlot<Event, Extracted>;
  type: FieldType;
  /** Several values (list field, or a transformer over one). */
  multi: boolean;
  /** Several values where any satisfying one is enough (proc.aname without index). */
  anyOf: boolean;
  /** For anyOf: the values walked without building an array, when the field offers it. */
  any?: AnyOf;
  text: string;
  /** The plain field name when no transformer is applied (for evt.type folding, fusion). */
  plain?: string;
}

function isTrue(ir: IR): boolean {
  return ir.k === 'const' && ir.v;
}
function isFalse(ir: IR): boolean {
  return ir.k === 'const' && !ir.v;
}

export class ConditionCompiler {
  private readonly macroIR = new Map<string, IR>();
  private readonly fields = new Map<string, Operandish>();
  /** Comparisons already compiled, by field, operator and values: one closure for all their uses. */
  private readonly leaves = new Map<string, IR>();
  private readonly expanding = new Set<string>();
  private readonly memo: EventMemo;

  constructor(private readonly ctx: CompileContext) {
    this.memo = ctx.memo ?? new EventMemo();
  }

  /** An operand over `extract`: its value kept once per event (`catches`: a throw is a missing value). */
  private slotted(extract: (ev: Event) => Extracted, catches = false): Pick<Operandish, 'get' | 'slot'> {
    const slot = fieldSlot<Event, Extracted>(this.memo, extract, catches);
    return { slot, get: (ev) => valueOf(slot, ev) };
  }

  // ---- AST → IR ------------------------------------------------------------------------------

  toIR(e: Expr, locate: Locator): IR {
    switch (e.kind) {
      case 'and':
        return { k: 'and', items: e.items.map((x) => this.toIR(x, locate)) };
      case 'or':
        return { k: 'or', items: e.items.map((x) => this.toIR(x, locate)) };
      case 'not':
        return { k: 'not', x: this.toIR(e.expr, locate) };
      case 'ref':
        return this.macro(e.name, locate(e.at));
      case 'cmp':
        return this.cmp(e, locate);
    }
  }

  private macro(name: string, at: Position): IR {
    const cached = this.macroIR.get(name);
    if (cached) {
      this.ctx.usedMacros?.add(name);
      return cached;
    }
    const def = this.ctx.macros.get(name);
    if (!def) throw new CompileError(`undefined macro '${name}'`, at, name);
    if (this.expanding.has(name)) throw new CompileError(`macro '${name}' refers to itself`, at, name);
    this.ctx.usedMacros?.add(name);
    this.expanding.add(name);
    try {
      const ir: IR = { k: 'macro', name, ir: this.toIR(def.expr, def.locate), memo: this.memo };
      this.macroIR.set(name, ir);
      return ir;
    } finally {
      this.expanding.delete(name);
    }
  }

  private operand(f: FieldOperand, locate: Locator): Operandish {
    if (f.kind === 'field') {
      const key = f.arg === undefined ? f.name : `${f.name}[${f.arg}]`;
      const known = this.fields.get(key);
      if (known) return known;
      try {
        const r = this.ctx.registry.resolve(this.ctx.source, f.name, f.arg, this.memo);
        const op: Operandish = {
          // One extractor per field for all rules, run once per event however many rules ask.
          ...(r.unguarded ? this.slotted(r.unguarded, true) : this.slotted(r.extract)),
          type: r.def.type,
          multi: r.multi,
          anyOf: r.anyOf,
          any: r.any,
          text: r.text,
          plain: r.text,
        };
        this.fields.set(key, op);
        return op;
      } catch (err) {
        if (err instanceof FieldResolveError) {
          const unknown = err.message.startsWith('unknown field');
          const text = f.arg === undefined ? f.name : `${f.name}[${f.arg}]`;
          throw new CompileError(
            unknown ? `${err.message} for source '${this.ctx.source}' (see \`minewatch fields --source ${this.ctx.source}\`)` : err.message,
            locate(f.at), text, unknown,
          );
        }
        throw err;
      }
    }
    const inner = this.operand(f.arg, locate);
    const text = `${f.fn}(${inner.text})`;
    const known = this.fields.get(text);
    if (known) return known;
    const op = this.transform(f, inner, text, locate);
    this.fields.set(text, op);
    return op;
  }

  /** A transformer over an operand; kept once per event like a field. */
  private transform(f: Extract<FieldOperand, { kind: 'transform' }>, inner: Operandish, text: string, locate: Locator): Operandish {
    if (f.fn !== 'len' && !STRINGY.has(inner.type)) {
      throw new CompileError(`${f.fn}() applies to text fields; ${inner.text} is ${inner.type}`, locate(f.at), text);
    }
    const fn = transformer(f.fn);
    const g = inner.get;
    return {
      ...this.slotted((ev) => fn(g(ev))),
      type: transformedType(f.fn),
      multi: f.fn === 'len' ? false : inner.multi,
      anyOf: f.fn === 'len' ? false : inner.anyOf,
      text,
    };
  }

  /**
   * The values on the right of a list operator. List names are already replaced by their items in
   * the condition's text (load/compile.ts substitutes them as Falco does), so these are literals.
   */
  private listValues(right: Operand): { values: string[]; at: number } {
    if (right.kind === 'list') return { values: right.items.map((lit) => lit.value), at: right.at };
    if (right.kind === 'value') return { values: [right.lit.value], at: right.lit.at };
    throw new Error('unreachable');
  }

  private cmp(e: Extract<Expr, { kind: 'cmp' }>, locate: Locator): IR {
    const left = this.operand(e.left, locate);
    const op = e.op;
    const opPos = locate(e.opAt);

    if (op === 'exists') {
      const g = left.get;
      const any = left.anyOf ? left.any : undefined;
      return {
        k: 'leaf',
        text: `${left.text} exists`,
        test: any
          ? (ev) => any(ev, yes)
          : left.multi
          ? (ev) => {
              const v = g(ev);
              return v !== undefined && (!Array.isArray(v) || v.length > 0);
            }
          : (ev) => g(ev) !== undefined,
      };
    }
    const right = e.right!;

    // evt.dir is always '<' here: every event is an exit event.
    if (left.plain === 'evt.dir' && right.kind === 'value' && (op === '=' || op === '==' || op === '!=')) {
      const eq = right.lit.value === '<';
      return { k: 'const', v: op === '!=' ? !eq : eq };
    }

    if (right.kind === 'fieldval') {
      const rhs = this.operand(right.field, locate);
      return { k: 'leaf', test: dynamicCompare(op, left, rhs), text: `${left.text} ${op} val(${rhs.text})` };
    }

    const listOp = op === 'in' || op === 'intersects' || op === 'pmatch';
    if (!listOp && right.kind !== 'value') throw new CompileError(`operator '${op}' takes a single value`, opPos, op);
    const { values, at } = listOp ? this.listValues(right) : { values: [(right as { lit: Literal }).lit.value], at: (right as { lit: Literal }).lit.at };
    const valuePos = locate(at);
    const one = this.valueTest(op, left, values, valuePos, opPos);
    // Nothing is in an empty list (Falco's user-overridable lists often are): the test is false
    // for every value, a missing one and every list, so it folds away with its branch.
    if (listOp && values.length === 0) return { k: 'leaf', test: no, text: `${left.text} ${op} ()`, known: false };

    const key = JSON.stringify([left.text, op, values]);
    const known = this.leaves.get(key);
    if (known) return known;
    const leaf: Extract<IR, { k: 'leaf' }> = {
      k: 'leaf',
      test: fieldTest(op, left, one),
      text: `${left.text} ${op} ${values.length === 1 ? values[0] : `(${values.length > 4 ? `${values.slice(0, 4).join(',')},…${values.length}` : values.join(',')})`}`,
    };
    if (left.plain === 'evt.type') {
      if (op === '=' || op === '==' || op === 'in') leaf.evtTypes = only(values);
      else if (op === '!=') leaf.evtTypes = except(values);
    }
    if (!left.multi && STRINGY.has(left.type)) {
      const fuse = (kind: FuseKind, vs: string[]): Fuse => ({ kind, field: left.text, values: vs, get: left.get, slot: left.slot });
      switch (op) {
        case '=': case '==': case 'in': case 'intersects':
          leaf.fuse = fuse('eq', values);
          break;
        case 'contains': case 'startswith': case 'endswith':
          leaf.fuse = fuse(op, values);
          break;
        case 'icontains':
          leaf.fuse = fuse(op, [values[0]!.toLowerCase()]);
          break;
      }
    }
    this.leaves.set(key, leaf);
    return leaf;
  }

  /**
   * The test on one value of the field, from its type's operator table, with the written values
   * parsed as that type. The operator is checked before the values, so the message names the
   * real mistake.
   */
  private valueTest(op: Op, left: Operandish, values: string[], valuePos: Position, opPos: Position): ValueTest {
    const t = left.type;
    const family = familyOf(t);
    const table = TABLES[family];
    if (!Object.hasOwn(table.ops, op)) throw new CompileError(`operator '${op}' does not apply to ${family}; ${left.text} is ${t}`, opPos, op);
    const parsed = values.map((v) => {
      const x = table.parse(v, op);
      if (x === undefined) throw new CompileError(`'${v}' is not ${table.what}, and ${left.text} is ${t}`, valuePos, v);
      return x;
    });
    return valueTestOf(family, op, parsed, valuePos);
  }

  // ---- IR → closure --------------------------------------------------------------------------

  /** Where the IR can be true, by event type. */
  static types(ir: IR): { canTrue: TypeSet; canFalse: TypeSet } {
    switch (ir.k) {
      case 'const':
        return ir.v ? { canTrue: ALL_TYPES, canFalse: only([]) } : { canTrue: only([]), canFalse: ALL_TYPES };
      case 'leaf':
        if (ir.evtTypes) {
          const s = ir.evtTypes;
          return { canTrue: s, canFalse: s.neg ? only(s.set) : except(s.set) };
        }
        return { canTrue: ALL_TYPES, canFalse: ALL_TYPES };
      case 'not': {
        const x = ConditionCompiler.types(ir.x);
        return { canTrue: x.canFalse, canFalse: x.canTrue };
      }
      case 'macro':
        return ConditionCompiler.types(ir.ir);
      case 'and': {
        const parts = ir.items.map((i) => ConditionCompiler.types(i));
        return {
          canTrue: parts.map((p) => p.canTrue).reduce(intersect),
          canFalse: parts.map((p) => p.canFalse).reduce(union),
        };
      }
      case 'or': {
        const parts = ir.items.map((i) => ConditionCompiler.types(i));
        return {
          canTrue: parts.map((p) => p.canTrue).reduce(union),
          canFalse: parts.map((p) => p.canFalse).reduce(intersect),
        };
      }
    }
  }

  /**
   * Fold what is known once the rule's event types are known (evt.type tests) and constants,
   * and fuse sibling `contains` tests on one field.
   */
  static simplify(ir: IR, types: ReadonlySet<string> | undefined): IR {
    switch (ir.k) {
      case 'const':
        return ir;
      case 'leaf':
        if (ir.known !== undefined) return { k: 'const', v: ir.known };
        if (ir.evtTypes && types) {
          if (covers(ir.evtTypes, types)) return { k: 'const', v: true };
          if (disjoint(ir.evtTypes, types)) return { k: 'const', v: false };
        }
        return ir;
      case 'macro': {
        // Rules with the same event types share one memoized predicate per macro.
        const key = types ? JSON.stringify([...types].sort()) : '*';
        let byTypes = macroMemo.get(ir);
        if (!byTypes) macroMemo.set(ir, (byTypes = new Map<string, IR>()));
        let out = byTypes.get(key);
        if (!out) {
          const inner = ConditionCompiler.simplify(ir.ir, types);
          out = inner.k === 'const' || inner.k === 'leaf' ? inner : { k: 'leaf', test: memoized(ir.memo, ConditionCompiler.build(inner)), text: `[${ir.name}]`, inner };
          byTypes.set(key, out);
        }
        return out;
      }
      case 'not': {
        const x = ConditionCompiler.simplify(ir.x, types);
        if (x.k === 'const') return { k: 'const', v: !x.v };
        if (x.k === 'not') return x.x;
        return { k: 'not', x };
      }
      case 'and': {
        const items: IR[] = [];
        for (const it of ir.items) {
          const s = ConditionCompiler.simplify(it, types);
          if (isFalse(s)) return s;
          if (isTrue(s)) continue;
          if (s.k === 'and') for (const x of s.items) items.push(x);
          else items.push(s);
        }
        if (items.length === 0) return { k: 'const', v: true };
        return items.length === 1 ? items[0]! : { k: 'and', items };
      }
      case 'or': {
        const items: IR[] = [];
        for (const it of ir.items) {
          const s = ConditionCompiler.simplify(it, types);
          if (isTrue(s)) return s;
          if (isFalse(s)) continue;
          if (s.k === 'or') for (const x of s.items) items.push(x);
          else items.push(s);
        }
        const fused = fuseOr(items);
        if (fused.length === 0) return { k: 'const', v: false };
        return fused.length === 1 ? fused[0]! : { k: 'or', items: fused };
      }
    }
  }

  /**
   * The predicate for `ir`. A tree of and/or/not over tests becomes one generated function per
   * call (see generated()), a lone test its own function (specializeLater); deep trees are closures.
   */
  static build(ir: IR): Pred {
    if (ir.k === 'and' || ir.k === 'or' || ir.k === 'not' || ir.k === 'macro') {
      const g = generated(ir);
      if (g) return g;
    }
    if (ir.k === 'leaf') return ownFunction(ir.test);
    return ConditionCompiler.buildClosures(ir);
  }

  /** The predicate for `ir` as closures over closures, all the way down (the plain reading, and where no code is generated). */
  static buildClosures(ir: IR): Pred {
    switch (ir.k) {
      case 'macro':
        return ConditionCompiler.buildClosures(ir.ir);
      case 'const': {
        const v = ir.v;
        return () => v;
      }
      case 'leaf':
        return ir.test;
      case 'not': {
        const x = ConditionCompiler.buildClosures(ir.x);
        return (ev) => !x(ev);
      }
      case 'and': {
        const fs = ir.items.map((i) => ConditionCompiler.buildClosures(i));
        if (fs.length === 2) {
          const [a, b] = fs as [Pred, Pred];
          return (ev) => a(ev) && b(ev);
        }
        if (fs.length === 3) {
          const [a, b, c] = fs as [Pred, Pred, Pred];
          return (ev) => a(ev) && b(ev) && c(ev);
        }
        return (ev) => {
          for (let i = 0; i < fs.length; i++) if (!fs[i]!(ev)) return false;
          return true;
        };
      }
      case 'or': {
        const fs = ir.items.map((i) => ConditionCompiler.buildClosures(i));
        if (fs.length === 2) {
          const [a, b] = fs as [Pred, Pred];
          return (ev) => a(ev) || b(ev);
        }
        if (fs.length === 3) {
          const [a, b, c] = fs as [Pred, Pred, Pred];
          return (ev) => a(ev) || b(ev) || c(ev);
        }
        return (ev) => {
          for (let i = 0; i < fs.length; i++) if (fs[i]!(ev)) return true;
          return false;
        };
      }
    }
  }
}

/**
 * `fn` run at most once per event, as EventMemo.perEvent, in a function of its own
 * (specialize.ts): a macro's memo calls one predicate, not every macro's. (Its own variables, not
 * a slot as a field's value: measured ~15% slower on the engine bench as a slot.)
 */
function memoized(memo: EventMemo, fn: Pred): Pred {
  return specialize<Pred>(['memo', 'fn'], [memo, fn], `let gen = -1, last, value;
  return function macro(ev) {
    if (gen === memo.generation && last === ev) return value;
    value = fn(ev);
    gen = memo.generation;
    last = ev;
    return value;
  };`, () => memo.perEvent(fn));
}

/** Trees deeper or larger than this are built as closures: generated source stays small. */
const GEN_MAX_DEPTH = 64;
const GEN_MAX_NODES = 4096;

/**
 * `ir` as one generated function: its and/or/not as JavaScript operators, its tests as calls
 * `t3(ev)` to the tests' closures. Why: the closures build() otherwise makes for and/or/not share
 * their code across all rules, so V8 sees every call inside them go to many different functions
 * (megamorphic: no inlining, a slow call each time). A function generated per condition has call
 * sites of its own, each calling one test. The source holds only operators and slot numbers,
 * never text from the rules, and gives the same results in the same order (&& and || short-cut
 * as the closures do). Undefined when the tree is too deep or large.
 */
function generated(ir: IR): Pred | undefined {
  const tests: Pred[] = [];
  let nodes = 0;
  const src = (x: IR, depth: number): string | undefined => {
    if (++nodes > GEN_MAX_NODES || depth > GEN_MAX_DEPTH) return undefined;
    switch (x.k) {
      case 'macro':
        return src(x.ir, depth + 1);
      case 'const':
        return x.v ? 'true' : 'false';
      case 'leaf':
        tests.push(ownFunction(x.test));
        return `t${tests.length - 1}(ev)`;
      case 'not': {
        const a = src(x.x, depth + 1);
        return a === undefined ? undefined : `!${a}`;
      }
      case 'and': case 'or': {
        const parts: string[] = [];
        for (const it of x.items) {
          const a = src(it, depth + 1);
          if (a === undefined) return undefined;
          parts.push(a);
        }
        if (parts.length === 0) return x.k === 'and' ? 'true' : 'false';
        return `(${parts.join(x.k === 'and' ? ' && ' : ' || ')})`;
      }
    }
  };
  const body = src(ir, 0);
  if (body === undefined) return undefined;
  const names = tests.map((_, i) => `t${i} = t[${i}]`);
  return specialize<Pred>(['t'], [tests], `${names.length ? `const ${names.join(', ')}; ` : ''}return function condition(ev) { return ${body}; };`, () => ConditionCompiler.buildClosures(ir));
}

/** Per macro expansion: its simplified, memoized predicate by the rule's event types. */
const macroMemo = new WeakMap<IR, Map<string, IR>>();

/** How many needles make one Aho-Corasick pass cheaper than a search per needle. */
const AC_MIN = 24;

/** Fuse text tests of one kind on one field inside an `or`: two or more become one test. */
function fuseOr(items: IR[]): IR[] {
  const groups = new Map<string, Extract<IR, { k: 'leaf' }>[]>();
  for (const it of items) {
    if (it.k === 'leaf' && it.fuse) {
      const key = `${it.fuse.kind}\u0000${it.fuse.field}`;
      const g = groups.get(key);
      if (g) g.push(it);
      else groups.set(key, [it]);
    }
  }
  if (![...groups.values()].some((g) => g.length >= 2)) return items;
  const out: IR[] = [];
  const emitted = new Set<string>();
  for (const it of items) {
    if (it.k === 'leaf' && it.fuse) {
      const key = `${it.fuse.kind}\u0000${it.fuse.field}`;
      const g = groups.get(key)!;
      if (g.length >= 2) {
        // The fused test takes the place of the group's first member: an `or` of pure tests
        // gives the same answer in any order.
        if (!emitted.has(key)) {
          emitted.add(key);
          out.push(fusedLeaf(it.fuse, g.flatMap((l) => l.fuse!.values)));
        }
        continue;
      }
    }
    out.push(it);
  }
  return out;
}

function fusedLeaf(first: Fuse, values: string[]): IR {
  const { kind, field, get, slot } = first;
  const text = `${field} ${kind === 'eq' ? 'in' : kind} any of (${values.length > 4 ? `${values.slice(0, 4).join(',')},…${values.length}` : values.join(',')})`;
  const fuse: Fuse = { kind, field, values, get, slot };
  if (kind === 'eq') {
    // evt.type tests fused keep what they say about event types, so they still fold.
    return { k: 'leaf', text, fuse, test: textLeaf(slot, TEXT_OPS.ops.in!(values, NOWHERE)), ...(field === 'evt.type' ? { evtTypes: only(values) } : {}) };
  }
  const needles = [...new Set(values)];
  let one: (s: string) => boolean;
  if (kind !== 'startswith' && kind !== 'endswith' && needles.length >= AC_MIN) {
    // Many `contains`: one pass of an automaton answers whether any needle is in the text.
    const ac = new AhoCorasick(needles);
    one = kind === 'icontains' ? (s) => ac.test(s.toLowerCase()) : (s) => ac.test(s);
  } else {
    // icontains needles are lowercased already: the text is lowercased once, then `contains`.
    const tests = needles.map((n) => TEXT_OPS.ops[kind === 'icontains' ? 'contains' : kind]!([n], NOWHERE));
    const any = (s: string): boolean => {
      for (let i = 0; i < tests.length; i++) if (tests[i]!(s)) return true;
      return false;
    };
    one = kind === 'icontains' ? (s) => any(s.toLowerCase()) : any;
  }
  return { k: 'leaf', text, fuse, test: textLeaf(slot, one) };
}

/** Text operators on values known at compile time cannot fail at a position. */
const NOWHERE: Position = { file: '', line: 0, col: 0 };

// ---- what operators mean, once per value type ------------------------------------------------
//
// A family's table: how a written value is parsed, and per operator the test on one value of the
// field (already normalized: text as a string, numbers as a number, booleans as a boolean). Both
// the single-valued closure (fieldTest) and the list walks are built from these tests, so an
// operator's meaning is written once.

const yes = (): boolean => true;
const no = (): boolean => false;

type Family = 'text' | 'numbers' | 'booleans' | 'addresses';

interface Table<T, V> {
  /** What a written value must be, for messages ("a number"). */
  what: string;
  /** A written value, parsed; undefined when it is not one. */
  parse(v: string, op: Op): T | undefined;
  /** A field value (present, not a list) as the tests take it. */
  norm(v: FieldValue): V;
  /** Per operator: the test on one normalized value, given the parsed values. */
  ops: Record<string, (values: T[], pos: Position) => (v: V) => boolean>;
}

function decodeHex(hex: string, pos: Position): string {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new CompileError(`'${hex}' is not an even-length hexadecimal byte string`, pos, hex);
  return Buffer.from(hex, 'hex').toString('latin1');
}

const TEXT_OPS: Table<string, string> = {
  what: 'text',
  parse: (v) => v,
  norm: (v) => (typeof v === 'string' ? v : String(v)),
  ops: {
    '=': ([s0]) => (s) => s === s0,
    '==': ([s0]) => (s) => s === s0,
    '!=': ([s0]) => (s) => s !== s0,
    in: (values) => {
      const set = new Set(values);
      return (s) => set.has(s);
    },
    intersects: (values) => {
      const set = new Set(values);
      return (s) => set.has(s);
    },
    contains: ([s0]) => (s) => s.includes(s0!),
    icontains: ([s0]) => {
      const l = s0!.toLowerCase();
      return (s) => s.toLowerCase().includes(l);
    },
    startswith: ([s0]) => (s) => s.startsWith(s0!),
    endswith: ([s0]) => (s) => s.endsWith(s0!),
    bcontains: ([hex], pos) => {
      const b = decodeHex(hex!, pos);
      return (s) => s.includes(b);
    },
    bstartswith: ([hex], pos) => {
      const b = decodeHex(hex!, pos);
      return (s) => s.startsWith(b);
    },
    glob: ([s0]) => {
      const re = globToRegExp(s0!);
      return (s) => re.test(s);
    },
    iglob: ([s0]) => {
      const re = globToRegExp(s0!, true);
      return (s) => re.test(s);
    },
    regex: ([s0], pos) => {
      let re: RegExp;
      try {
        re = new RegExp(`^(?:${s0})$`, 's');
      } catch (e) {
        throw new CompileError(`invalid regular expression: ${(e as Error).message}`, pos, s0);
      }
      return (s) => re.test(s);
    },
    pmatch: (values) => {
      const m = new PathPrefixMatcher(values);
      return (s) => m.test(s);
    },
  },
};

export function parseNumber(s: string): number | undefined {
  const t = s.trim();
  if (/^[+-]?0[xX][0-9a-fA-F]+$/.test(t)) return Number.parseInt(t, 16);
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
  return Number(t);
}

const numberSet = (values: number[]): ((n: number) => boolean) => {
  const set = new Set(values);
  return (n) => set.has(n);
};

const NUMBER_OPS: Table<number, number> = {
  what: 'a number',
  parse: parseNumber,
  norm: (v) => (typeof v === 'number' ? v : Number(v)),
  ops: {
    '=': ([n0]) => (n) => n === n0,
    '==': ([n0]) => (n) => n === n0,
    '!=': ([n0]) => (n) => n !== n0,
    '<': ([n0]) => (n) => n < n0!,
    '<=': ([n0]) => (n) => n <= n0!,
    '>': ([n0]) => (n) => n > n0!,
    '>=': ([n0]) => (n) => n >= n0!,
    in: numberSet,
    intersects: numberSet,
  },
};

function toBool(v: FieldValue): boolean {
  return typeof v === 'boolean' ? v : v === 'true' || v === 1 || v === 1n;
}

const anyBool = (values: boolean[]): ((b: boolean) => boolean) => (b) => values.includes(b);

const BOOL_OPS: Table<boolean, boolean> = {
  what: 'a boolean (true or false)',
  parse: (v) => {
    const l = v.toLowerCase();
    return l === 'true' ? true : l === 'false' ? false : undefined;
  },
  norm: toBool,
  ops: { '=': anyBool, '==': anyBool, in: anyBool, intersects: anyBool, '!=': ([b0]) => (b) => b !== b0 },
};

/**
 * Is an address inside one of `nets`? Dotted-quad IPv4 text, the common case, is parsed on the
 * spot with no allocation or cache lookup; anything else goes through parseIp (IPv6, IPv4-mapped
 * IPv6, which it takes as the IPv4 address mapped, and text that is no address).
 */
function inNets(nets: IpNet[]): (v: FieldValue) => boolean {
  const v4 = nets.filter((n) => !n.v6);
  const n0 = v4.length === 1 ? v4[0]! : undefined;
  return (v) => {
    const s = typeof v === 'string' ? v : String(v);
    const n4 = parseV4Number(s);
    if (n4 >= 0) {
      if (n0) return ((n4 & n0.mask4) >>> 0) === n0.base4;
      for (let i = 0; i < v4.length; i++) if (netContains4(v4[i]!, n4)) return true;
      return false;
    }
    const ip = parseIp(s);
    return ip !== undefined && nets.some((n) => netContains(n, ip));
  };
}

const ADDRESS_OPS: Table<IpNet, FieldValue> = {
  what: 'an IP address or CIDR network',
  parse: (v) => parseNet(v),
  norm: (v) => v,
  ops: {
    '=': inNets, '==': inNets, in: inNets, intersects: inNets,
    '!=': (nets) => {
      const inAny = inNets(nets);
      return (v) => !inAny(v);
    },
  },
};

const TABLES = { text: TEXT_OPS, numbers: NUMBER_OPS, booleans: BOOL_OPS, addresses: ADDRESS_OPS } as const;

function familyOf(t: FieldType): Family {
  return NUMERIC.has(t) ? 'numbers' : t === 'bool' ? 'booleans' : t === 'ipaddr' || t === 'ipnet' ? 'addresses' : 'text';
}

/** A test on one present value of a field, with the family it normalizes the value for. */
interface ValueTest {
  family: Family;
  /** The test on a normalized value. */
  test: (v: never) => boolean;
  /** The test on any present value (normalizes it first): the list walks use this one. */
  one: (v: FieldValue) => boolean;
}

function valueTestOf(family: Family, op: Op, parsed: unknown[], pos: Position): ValueTest {
  const table = TABLES[family] as Table<unknown, unknown>;
  const test = table.ops[op]!(parsed, pos);
  return { family, test, one: (v) => test(table.norm(v)) };
}

/** A single value as text (String(v) for numbers and the like), undefined when missing or a list. */
export function asText(v: Extracted): string | undefined {
  return v === undefined || Array.isArray(v) ? undefined : String(v);
}

/**
 * The closure for `field op values`, with Falco's semantics for missing values and lists: a
 * missing value satisfies no test; a single-valued field tests its value; a list field `in` a
 * set when every one of its values is, and any other test when one of its values passes (proc.aname
 * and fd.ip walk their values without an array).
 */
function fieldTest(op: Op, left: Operandish, vt: ValueTest): Pred {
  const one = vt.one;
  if (left.multi) {
    // Each in a function of its own (specialize.ts): one getter and one test per call site.
    const any = left.anyOf ? left.any : undefined;
    if (any) {
      const closure = (): Pred => (ev) => any(ev, one);
      return specializeLater(closure(), () => specialize<Pred>(['any', 'one'], [any, one], 'return function anyOf(ev) { return any(ev, one); };', closure));
    }
    // `in` a set: every value of the list must be in it; any other test: one value passing is enough.
    return slotLeaf(left.slot, one, op === 'in' && !left.anyOf ? everyTail : someTail);
  }
  // Single-valued: the value read from the field's slot, normalized for the family, then tested.
  const slot = left.slot;
  switch (vt.family) {
    case 'text':
      return textLeaf(slot, vt.test as (s: string) => boolean);
    case 'numbers':
      return slotLeaf(slot, vt.test as (n: number) => boolean, numberTail);
    default:
      return slotLeaf(slot, one, valueTail);
  }
}

/** A text test on a single-valued field's value, read from its slot. */
function textLeaf(slot: FieldSlot<Event, Extracted>, test: (s: string) => boolean): Pred {
  return slotLeaf(slot, test, textTail);
}

// What a leaf does with the value it read from its slot is written once, as a plain function (a
// tail) of (v, test): the leaf's closure calls it, and the leaf's generated function has its
// statements written out (bodyOf), so its call to the test is its own. So tails use nothing but
// v, test and globals (their text is compiled away from this module).

/** Text: a string as it is (the common case, no normalizing), any other single value as its text. */
function textTail(v: Extracted, test: (s: string) => boolean): boolean {
  if (typeof v === 'string') return test(v);
  return v !== undefined && !Array.isArray(v) && test(String(v));
}

/** Numbers: a number as it is, any other single value as a number. */
function numberTail(v: Extracted, test: (n: number) => boolean): boolean {
  if (typeof v === 'number') return test(v);
  return v !== undefined && !Array.isArray(v) && test(Number(v));
}

/** Booleans and addresses: `test` normalizes a present single value itself. */
function valueTail(v: Extracted, test: (v: FieldValue) => boolean): boolean {
  return v !== undefined && !Array.isArray(v) && test(v);
}

/** A list field `in` a set: a value of a list field (or a single one) passes when all its values do. */
function everyTail(v: Extracted, test: (v: FieldValue) => boolean): boolean {
  if (v === undefined) return false;
  if (!Array.isArray(v)) return test(v);
  return v.length > 0 && v.every(test);
}

/** Any other test on a list field: one of its values passing is enough. */
function someTail(v: Extracted, test: (v: FieldValue) => boolean): boolean {
  if (v === undefined) return false;
  if (!Array.isArray(v)) return test(v);
  return v.some(test);
}

/**
 * A test on a field's value, read from its slot: `tail(value, test)`. Built as a
 * closure over valueOf(); its own function (specialize.ts, made when a plan runs it) has
 * valueOf(), fill() and `tail` written out, so its calls to the field's getter and to the test
 * are each to one function.
 */
function slotLeaf<T>(slot: FieldSlot<Event, Extracted>, test: T, tail: (v: Extracted, test: T) => boolean): Pred {
  const closure: Pred = (ev) => tail(valueOf(slot, ev), test);
  const read = slot.catches ? 'try { v = get(ev); } catch { v = undefined; }' : 'v = get(ev);';
  return specializeLater(closure, () => specialize<Pred>(['slot', 'memo', 'get', 'test'], [slot, slot.memo, slot.get, test], `return function leaf(ev) {
    let v;
    if (slot.gen === memo.generation && slot.ev === ev) v = slot.v;
    else { ${read} slot.v = v; slot.gen = memo.generation; slot.ev = ev; }
    ${bodyOf(tail)}
  };`, () => closure));
}

/** A tail's statements, to be written out where its parameters (v, test) are in scope. */
function bodyOf(tail: (v: Extracted, test: never) => boolean): string {
  const src = tail.toString();
  if (!/^function \w+\(v(, test)?\) \{/.test(src)) throw new Error(`tail ${tail.name} must be a function (v, test)`);
  return src.slice(src.indexOf('{') + 1, src.lastIndexOf('}'));
}

/** `field op val(other)`: both sides known only at run time, tested with the same tables. */
function dynamicCompare(op: Op, left: Operandish, right: Operandish): Pred {
  const family = familyOf(left.type);
  const table = TABLES[family] as Table<unknown, unknown>;
  // regex takes no val(): its pattern would come from event data.
  const make = op === 'regex' ? undefined : table.ops[op];
  const lg = left.get;
  const rg = right.get;
  const one = (a: FieldValue, b: FieldValue): boolean => {
    if (!make) return false;
    // The other field's value is taken as written: text as is (no hex decoding for b*), a
    // number, an address; one that does not parse as the family's value matches nothing.
    const bv = family === 'text' ? String(b) : family === 'numbers' ? table.norm(b) : table.parse(String(b), op);
    if (bv === undefined) return false;
    let test: (v: unknown) => boolean;
    try {
      test = op === 'bcontains' ? (s) => String(s).includes(String(bv)) : op === 'bstartswith' ? (s) => String(s).startsWith(String(bv)) : make([bv], NOWHERE);
    } catch {
      return false; // a regex that does not compile
    }
    return test(table.norm(a));
  };
  return (ev) => {
    const a = lg(ev), b = rg(ev);
    if (a === undefined || b === undefined) return false;
    const as = Array.isArray(a) ? a : [a];
    const bs = Array.isArray(b) ? b : [b];
    return as.some((x) => bs.some((y) => one(x, y)));
  };
}
