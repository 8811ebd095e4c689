/**
 * Conditions → predicate closures. Each field resolves once, through the catalog, to an extractor,
 * memoized per event; each comparison becomes one closure with its value parsed and typed up
 * front (sets for `in`, a prefix table for `pmatch`), and the same comparison written in many
 * rules is one closure. Inside an `or`, tests
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
import { memoPerEvent } from '../fields/memo.js';
import { AhoCorasick } from './aho.js';
import { ALL_TYPES, type TypeSet, covers, disjoint, except, intersect, only, union } from './evttypes.js';
import { PathPrefixMatcher, globToRegExp } from './glob.js';
import { netContains, netContains4, parseIp, parseNet, parseV4Number, type IpNet } from './ip.js';
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
  /** A macro's expansion: kept as a node so each event evaluates a macro once for all rules. */
  | { k: 'macro'; name: string; ir: IR }
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
  /** List name → fully expanded items. */
  lists: Map<string, string[]>;
  /** Macros referenced while compiling (for "unused macro" warnings). */
  usedMacros?: Set<string>;
  usedLists?: Set<string>;
}

const NUMERIC: ReadonlySet<FieldType> = new Set(['int64', 'uint64', 'port', 'reltime', 'abstime']);
const STRINGY: ReadonlySet<FieldType> = new Set(['charbuf', 'bytebuf', 'flags', 'mode']);

interface Operandish {
  get: (ev: Event) => Extracted;
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

  constructor(private readonly ctx: CompileContext) {}

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
    if (!def) {
      const hint = this.ctx.lists.has(name) ? ` ('${name}' is a list: use it inside in (...))` : '';
      throw new CompileError(`undefined macro '${name}'${hint}`, at, name);
    }
    if (this.expanding.has(name)) throw new CompileError(`macro '${name}' refers to itself`, at, name);
    this.ctx.usedMacros?.add(name);
    this.expanding.add(name);
    try {
      const ir: IR = { k: 'macro', name, ir: this.toIR(def.expr, def.locate) };
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
        const r = this.ctx.registry.resolve(this.ctx.source, f.name, f.arg);
        const op: Operandish = {
          // One extractor per field for all rules, run once per event however many rules ask.
          get: memoPerEvent(r.extract),
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

  /** A transformer over an operand; memoized per event like a field. */
  private transform(f: Extract<FieldOperand, { kind: 'transform' }>, inner: Operandish, text: string, locate: Locator): Operandish {
    if (f.fn === 'len') {
      const g = inner.get;
      return {
        get: memoPerEvent((ev: Event): Extracted => {
          const v = g(ev);
          if (v === undefined) return undefined;
          return Array.isArray(v) ? v.length : String(v).length;
        }),
        type: 'uint64', multi: false, anyOf: false, text,
      };
    }
    if (!STRINGY.has(inner.type)) {
      throw new CompileError(`${f.fn}() applies to text fields; ${inner.text} is ${inner.type}`, locate(f.at), text);
    }
    const fn: (s: string) => string =
      f.fn === 'tolower' ? (s) => s.toLowerCase()
      : f.fn === 'toupper' ? (s) => s.toUpperCase()
      : f.fn === 'b64' ? (s) => Buffer.from(s, 'base64').toString('latin1')
      : (s) => (s.endsWith('/') ? '' : s.slice(s.lastIndexOf('/') + 1));
    const g = inner.get;
    return {
      get: memoPerEvent((ev: Event): Extracted => {
        const v = g(ev);
        if (v === undefined) return undefined;
        return Array.isArray(v) ? v.map((x) => fn(String(x))) : fn(String(v));
      }),
      type: f.fn === 'b64' ? 'bytebuf' : 'charbuf',
      multi: inner.multi, anyOf: inner.anyOf, text,
    };
  }

  /** Expand a literal list, replacing unquoted list names by their items. */
  private listValues(right: Operand, locate: Locator): { values: string[]; at: number } {
    if (right.kind === 'listref') {
      const items = this.ctx.lists.get(right.name);
      if (!items) throw new CompileError(`undefined list '${right.name}'`, locate(right.at), right.name);
      this.ctx.usedLists?.add(right.name);
      return { values: items, at: right.at };
    }
    if (right.kind === 'list') {
      const out: string[] = [];
      for (const lit of right.items) {
        const items = lit.quoted ? undefined : this.ctx.lists.get(lit.value);
        if (items) {
          this.ctx.usedLists?.add(lit.value);
          for (const x of items) out.push(x); // not push(...items): a 100k-item list would overflow the stack
        } else out.push(lit.value);
      }
      return { values: out, at: right.at };
    }
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
    const { values, at } = listOp ? this.listValues(right, locate) : { values: [(right as { lit: Literal }).lit.value], at: (right as { lit: Literal }).lit.at };
    const valuePos = locate(at);
    const scalar = this.scalarTest(op, left, values, valuePos, opPos);
    // Nothing is in an empty list (Falco's user-overridable lists often are): the test is false
    // for every value, a missing one and every list, so it folds away with its branch.
    if (listOp && values.length === 0) return { k: 'leaf', test: no, text: `${left.text} ${op} ()`, known: false };

    const key = JSON.stringify([left.text, op, values]);
    const known = this.leaves.get(key);
    if (known) return known;
    const leaf: Extract<IR, { k: 'leaf' }> = {
      k: 'leaf',
      test: fastTest(op, left, values, scalar) ?? this.wrap(op, left, scalar),
      text: `${left.text} ${op} ${values.length === 1 ? values[0] : `(${values.length > 4 ? `${values.slice(0, 4).join(',')},…${values.length}` : values.join(',')})`}`,
    };
    if (left.plain === 'evt.type') {
      if (op === '=' || op === '==' || op === 'in') leaf.evtTypes = only(values);
      else if (op === '!=') leaf.evtTypes = except(values);
    }
    if (!left.multi && STRINGY.has(left.type)) {
      const g = left.get;
      switch (op) {
        case '=': case '==': case 'in': case 'intersects':
          leaf.fuse = { kind: 'eq', field: left.text, values, get: g };
          break;
        case 'contains': case 'startswith': case 'endswith':
          leaf.fuse = { kind: op, field: left.text, values, get: g };
          break;
        case 'icontains':
          leaf.fuse = { kind: op, field: left.text, values: [values[0]!.toLowerCase()], get: g };
          break;
      }
    }
    this.leaves.set(key, leaf);
    return leaf;
  }

  /** Apply a scalar test to a field's value(s) with Falco's semantics for missing values and lists. */
  private wrap(op: Op, left: Operandish, scalar: ScalarTest): Pred {
    const g = left.get;
    const one = scalar.one;
    if (!left.multi) {
      return (ev) => {
        const v = g(ev);
        return v !== undefined && !Array.isArray(v) && one(v);
      };
    }
    if (op === 'in' && !left.anyOf) {
      // A list field is `in` a set when every one of its values is.
      return (ev) => {
        const v = g(ev);
        if (v === undefined) return false;
        if (!Array.isArray(v)) return one(v);
        return v.length > 0 && v.every(one);
      };
    }
    const any = left.anyOf ? left.any : undefined;
    if (any) return (ev) => any(ev, one);
    return (ev) => {
      const v = g(ev);
      if (v === undefined) return false;
      return Array.isArray(v) ? v.some(one) : one(v);
    };
  }

  private scalarTest(op: Op, left: Operandish, values: string[], valuePos: Position, opPos: Position): ScalarTest {
    const t = left.type;
    const bad = (what: string): never => {
      throw new CompileError(`operator '${op}' ${what}; ${left.text} is ${t}`, opPos, op);
    };
    // The operator is checked before the value, so the message names the real mistake.
    const family = NUMERIC.has(t) ? 'numbers' : t === 'bool' ? 'booleans' : t === 'ipaddr' || t === 'ipnet' ? 'addresses' : 'text';
    if (!OPS_BY_FAMILY[family].has(op)) bad(`does not apply to ${family}`);
    if (NUMERIC.has(t)) {
      const nums = values.map((v) => {
        const n = parseNumber(v);
        if (n === undefined) throw new CompileError(`'${v}' is not a number, and ${left.text} is ${t}`, valuePos, v);
        return n;
      });
      const test = numericTest(op, nums) ?? bad('does not apply to numbers');
      return { ...test, nums };
    }
    if (t === 'bool') {
      const bools = values.map((v) => {
        const l = v.toLowerCase();
        if (l === 'true') return true;
        if (l === 'false') return false;
        throw new CompileError(`'${v}' is not a boolean (true or false), and ${left.text} is bool`, valuePos, v);
      });
      switch (op) {
        case '=': case '==': case 'in': case 'intersects': return { one: (v) => bools.includes(toBool(v)), bools };
        case '!=': return { one: (v) => toBool(v) !== bools[0], bools };
        default: return bad('does not apply to booleans');
      }
    }
    if (t === 'ipaddr' || t === 'ipnet') {
      const nets: IpNet[] = values.map((v) => {
        const n = parseNet(v);
        if (!n) throw new CompileError(`'${v}' is not an IP address or CIDR network, and ${left.text} is ${t}`, valuePos, v);
        return n;
      });
      const inAny = inNets(nets);
      switch (op) {
        case '=': case '==': case 'in': case 'intersects': return { one: inAny, nets };
        case '!=': return { one: (v) => !inAny(v), nets };
        default: return bad('does not apply to addresses');
      }
    }
    return stringTest(op, values, valuePos) ?? bad('does not apply to text');
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
        const parts = ir.items.map(ConditionCompiler.types);
        return {
          canTrue: parts.map((p) => p.canTrue).reduce(intersect),
          canFalse: parts.map((p) => p.canFalse).reduce(union),
        };
      }
      case 'or': {
        const parts = ir.items.map(ConditionCompiler.types);
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
        if (!byTypes) macroMemo.set(ir, (byTypes = new Map()));
        let out = byTypes.get(key);
        if (!out) {
          const inner = ConditionCompiler.simplify(ir.ir, types);
          out = inner.k === 'const' || inner.k === 'leaf' ? inner : { k: 'leaf', test: memoPerEvent(ConditionCompiler.build(inner)), text: `[${ir.name}]`, inner };
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

  static build(ir: IR): Pred {
    switch (ir.k) {
      case 'macro':
        return ConditionCompiler.build(ir.ir);
      case 'const': {
        const v = ir.v;
        return () => v;
      }
      case 'leaf':
        return ir.test;
      case 'not': {
        const x = ConditionCompiler.build(ir.x);
        return (ev) => !x(ev);
      }
      case 'and': {
        const fs = ir.items.map(ConditionCompiler.build);
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
        const fs = ir.items.map(ConditionCompiler.build);
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
          out.push(fusedLeaf(it.fuse.kind, it.fuse.field, it.fuse.get, g.flatMap((l) => l.fuse!.values)));
        }
        continue;
      }
    }
    out.push(it);
  }
  return out;
}

function fusedLeaf(kind: FuseKind, field: string, g: (ev: Event) => Extracted, values: string[]): IR {
  const text = `${field} ${kind === 'eq' ? 'in' : kind} any of (${values.length > 4 ? `${values.slice(0, 4).join(',')},…${values.length}` : values.join(',')})`;
  const fuse: Fuse = { kind, field, values, get: g };
  if (kind === 'eq') {
    // evt.type tests fused keep what they say about event types, so they still fold.
    return { k: 'leaf', text, fuse, test: setTest(g, new Set(values)), ...(field === 'evt.type' ? { evtTypes: only(values) } : {}) };
  }
  const needles = [...new Set(values)];
  let one: (s: string) => boolean;
  if (kind === 'startswith') one = (s) => someNeedle(needles, s, startsWith);
  else if (kind === 'endswith') one = (s) => someNeedle(needles, s, endsWith);
  else if (needles.length >= AC_MIN) {
    const ac = new AhoCorasick(needles);
    one = kind === 'icontains' ? (s) => ac.test(s.toLowerCase()) : (s) => ac.test(s);
  } else one = kind === 'icontains' ? (s) => someNeedle(needles, s.toLowerCase(), includes) : (s) => someNeedle(needles, s, includes);
  return { k: 'leaf', text, fuse, test: textTest(g, one) };
}

const startsWith = (s: string, n: string): boolean => s.startsWith(n);
const endsWith = (s: string, n: string): boolean => s.endsWith(n);
const includes = (s: string, n: string): boolean => s.includes(n);

function someNeedle(needles: string[], s: string, has: (s: string, n: string) => boolean): boolean {
  for (let i = 0; i < needles.length; i++) if (has(s, needles[i]!)) return true;
  return false;
}

// ---- single closures for the common leaf shapes ---------------------------------------------------
//
// Each does in one closure what wrap() does in three (extract, unwrap, test): they run in nearly
// every rule, so the calls saved add up. Same semantics as wrap() over the scalar tests below: a
// missing value or a list never satisfies a test on a single-valued field.

const yes = (): boolean => true;
const no = (): boolean => false;

/** A single value as text (String(v) for numbers and the like), undefined when missing or a list. */
export function asText(v: Extracted): string | undefined {
  return v === undefined || Array.isArray(v) ? undefined : String(v);
}

/** `test` on a single-valued text field's value. */
function textTest(g: (ev: Event) => Extracted, test: (s: string) => boolean): Pred {
  return (ev) => {
    const v = g(ev);
    if (typeof v === 'string') return test(v);
    const t = asText(v);
    return t !== undefined && test(t);
  };
}

function setTest(g: (ev: Event) => Extracted, set: ReadonlySet<string>): Pred {
  return (ev) => {
    const v = g(ev);
    if (typeof v === 'string') return set.has(v);
    const t = asText(v);
    return t !== undefined && set.has(t);
  };
}

function fastTest(op: Op, left: Operandish, values: string[], scalar: ScalarTest): Pred | undefined {
  if (left.multi) {
    // proc.aname, fd.ip…: any value satisfying the test is enough; walk them without an array.
    const any = left.anyOf ? left.any : undefined;
    if (!any) return undefined;
    const one = scalar.one;
    return (ev) => any(ev, one);
  }
  const g = left.get;
  if (STRINGY.has(left.type)) return fastTextTest(op, g, values, scalar);
  if (NUMERIC.has(left.type) && scalar.nums) return fastNumericTest(op, g, scalar.nums);
  if (left.type === 'bool' && scalar.bools && scalar.bools.length === 1 && (op === '=' || op === '==' || op === 'in' || op === 'intersects' || op === '!=')) {
    const b = scalar.bools[0]!;
    const eq = op !== '!=';
    return (ev) => {
      const v = g(ev);
      if (v === true || v === false) return (v === b) === eq;
      return v !== undefined && !Array.isArray(v) && (toBool(v) === b) === eq;
    };
  }
  if (scalar.nets) {
    // Only the scalar test differs from wrap(): one closure less is not worth more code here.
    const one = scalar.one;
    return (ev) => {
      const v = g(ev);
      return v !== undefined && !Array.isArray(v) && one(v);
    };
  }
  return undefined;
}

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

function fastTextTest(op: Op, g: (ev: Event) => Extracted, values: string[], scalar: ScalarTest): Pred {
  const s0 = values[0]!;
  switch (op) {
    case '=': case '==':
      return (ev) => {
        const v = g(ev);
        return typeof v === 'string' ? v === s0 : asText(v) === s0;
      };
    case '!=':
      return (ev) => {
        const v = g(ev);
        if (typeof v === 'string') return v !== s0;
        const t = asText(v);
        return t !== undefined && t !== s0;
      };
    case 'in': case 'intersects':
      return setTest(g, new Set(values));
    case 'contains':
      return (ev) => {
        const v = g(ev);
        if (typeof v === 'string') return v.includes(s0);
        const t = asText(v);
        return t !== undefined && t.includes(s0);
      };
    case 'startswith':
      return (ev) => {
        const v = g(ev);
        if (typeof v === 'string') return v.startsWith(s0);
        const t = asText(v);
        return t !== undefined && t.startsWith(s0);
      };
    case 'endswith':
      return (ev) => {
        const v = g(ev);
        if (typeof v === 'string') return v.endsWith(s0);
        const t = asText(v);
        return t !== undefined && t.endsWith(s0);
      };
    default: {
      // icontains, glob, regex, pmatch, bcontains…: the scalar test on the text.
      const one = scalar.one;
      return (ev) => {
        const v = g(ev);
        return v !== undefined && !Array.isArray(v) && one(v);
      };
    }
  }
}

function fastNumericTest(op: Op, g: (ev: Event) => Extracted, nums: number[]): Pred | undefined {
  const n0 = nums[0]!;
  // Number(v) as numericTest's num() does for what is not a number already (bigint, text).
  const num = (v: Extracted): number => (v === undefined || Array.isArray(v) ? NaN : Number(v));
  const miss = (v: Extracted): boolean => v === undefined || Array.isArray(v);
  switch (op) {
    case '=': case '==':
      return (ev) => {
        const v = g(ev);
        return typeof v === 'number' ? v === n0 : !miss(v) && num(v) === n0;
      };
    case '!=':
      return (ev) => {
        const v = g(ev);
        return typeof v === 'number' ? v !== n0 : !miss(v) && num(v) !== n0;
      };
    case '<':
      return (ev) => {
        const v = g(ev);
        return typeof v === 'number' ? v < n0 : !miss(v) && num(v) < n0;
      };
    case '<=':
      return (ev) => {
        const v = g(ev);
        return typeof v === 'number' ? v <= n0 : !miss(v) && num(v) <= n0;
      };
    case '>':
      return (ev) => {
        const v = g(ev);
        return typeof v === 'number' ? v > n0 : !miss(v) && num(v) > n0;
      };
    case '>=':
      return (ev) => {
        const v = g(ev);
        return typeof v === 'number' ? v >= n0 : !miss(v) && num(v) >= n0;
      };
    case 'in': case 'intersects': {
      const set = new Set(nums);
      return (ev) => {
        const v = g(ev);
        return typeof v === 'number' ? set.has(v) : !miss(v) && set.has(num(v));
      };
    }
    default:
      return undefined;
  }
}

const EQUALITY = ['=', '==', '!=', 'in', 'intersects'] as const;
const OPS_BY_FAMILY: Record<'numbers' | 'booleans' | 'addresses' | 'text', ReadonlySet<string>> = {
  numbers: new Set([...EQUALITY, '<', '<=', '>', '>=']),
  booleans: new Set(EQUALITY),
  addresses: new Set(EQUALITY),
  text: new Set([...EQUALITY, 'contains', 'icontains', 'bcontains', 'startswith', 'bstartswith', 'endswith', 'glob', 'iglob', 'regex', 'pmatch']),
};

interface ScalarTest {
  one: (v: FieldValue) => boolean;
  /** The values as parsed for the field's type, for the single-closure tests. */
  nums?: number[];
  bools?: boolean[];
  nets?: IpNet[];
}

function toBool(v: FieldValue): boolean {
  return typeof v === 'boolean' ? v : v === 'true' || v === 1 || v === 1n;
}

export function parseNumber(s: string): number | undefined {
  const t = s.trim();
  if (/^[+-]?0[xX][0-9a-fA-F]+$/.test(t)) return Number.parseInt(t, 16);
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
  return Number(t);
}

function numericTest(op: Op, nums: number[]): ScalarTest | undefined {
  const n0 = nums[0]!;
  const num = (v: FieldValue): number => (typeof v === 'number' ? v : Number(v));
  switch (op) {
    case '=': case '==': return { one: (v) => num(v) === n0 };
    case '!=': return { one: (v) => num(v) !== n0 };
    case '<': return { one: (v) => num(v) < n0 };
    case '<=': return { one: (v) => num(v) <= n0 };
    case '>': return { one: (v) => num(v) > n0 };
    case '>=': return { one: (v) => num(v) >= n0 };
    case 'in': case 'intersects': {
      const set = new Set(nums);
      return { one: (v) => set.has(num(v)) };
    }
    default: return undefined;
  }
}

function decodeHex(hex: string, pos: Position): string {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new CompileError(`'${hex}' is not an even-length hexadecimal byte string`, pos, hex);
  return Buffer.from(hex, 'hex').toString('latin1');
}

function stringTest(op: Op, values: string[], pos: Position): ScalarTest | undefined {
  const s0 = values[0]!;
  const str = (v: FieldValue): string => (typeof v === 'string' ? v : String(v));
  switch (op) {
    case '=': case '==': return { one: (v) => str(v) === s0 };
    case '!=': return { one: (v) => str(v) !== s0 };
    case 'contains': return { one: (v) => str(v).includes(s0) };
    case 'icontains': {
      const l = s0.toLowerCase();
      return { one: (v) => str(v).toLowerCase().includes(l) };
    }
    case 'startswith': return { one: (v) => str(v).startsWith(s0) };
    case 'endswith': return { one: (v) => str(v).endsWith(s0) };
    case 'bcontains': {
      const b = decodeHex(s0, pos);
      return { one: (v) => str(v).includes(b) };
    }
    case 'bstartswith': {
      const b = decodeHex(s0, pos);
      return { one: (v) => str(v).startsWith(b) };
    }
    case 'glob': case 'iglob': {
      const re = globToRegExp(s0, op === 'iglob');
      return { one: (v) => re.test(str(v)) };
    }
    case 'regex': {
      let re: RegExp;
      try {
        re = new RegExp(`^(?:${s0})$`, 's');
      } catch (e) {
        throw new CompileError(`invalid regular expression: ${(e as Error).message}`, pos, s0);
      }
      return { one: (v) => re.test(str(v)) };
    }
    case 'in': case 'intersects': {
      const set = new Set(values);
      return { one: (v) => set.has(str(v)) };
    }
    case 'pmatch': {
      const m = new PathPrefixMatcher(values);
      return { one: (v) => m.test(str(v)) };
    }
    default: return undefined;
  }
}

/** `field op val(other)`: both sides known only at run time. */
function dynamicCompare(op: Op, left: Operandish, right: Operandish): Pred {
  const numeric = NUMERIC.has(left.type) || left.type === 'uint64';
  const lg = left.get;
  const rg = right.get;
  const one = (a: FieldValue, b: FieldValue): boolean => {
    if (numeric) {
      const x = Number(a), y = Number(b);
      switch (op) {
        case '=': case '==': case 'in': case 'intersects': return x === y;
        case '!=': return x !== y;
        case '<': return x < y;
        case '<=': return x <= y;
        case '>': return x > y;
        case '>=': return x >= y;
        default: return false;
      }
    }
    const x = String(a), y = String(b);
    switch (op) {
      case '=': case '==': case 'in': case 'intersects': return x === y;
      case '!=': return x !== y;
      case 'contains': return x.includes(y);
      case 'icontains': return x.toLowerCase().includes(y.toLowerCase());
      case 'startswith': case 'bstartswith': return x.startsWith(y);
      case 'endswith': return x.endsWith(y);
      case 'bcontains': return x.includes(y);
      case 'glob': return globToRegExp(y).test(x);
      case 'iglob': return globToRegExp(y, true).test(x);
      case 'pmatch': return new PathPrefixMatcher([y]).test(x);
      default: return false;
    }
  };
  return (ev) => {
    const a = lg(ev), b = rg(ev);
    if (a === undefined || b === undefined) return false;
    const as = Array.isArray(a) ? a : [a];
    const bs = Array.isArray(b) ? b : [b];
    return as.some((x) => bs.some((y) => one(x, y)));
  };
}
