/**
 * Conditions → predicate closures. Each field resolves once, through the catalog, to an extractor;
 * each comparison becomes one closure with its value parsed and typed up front (sets for `in`,
 * a prefix table for `pmatch`, one Aho-Corasick automaton for many `contains` on one field).
 * Macros expand inline, so a rule's event types are known and its `evt.type` tests fold away.
 */
import type { Event } from '../events.js';
import type { FieldRegistry } from '../fields/registry.js';
import { FieldResolveError } from '../fields/registry.js';
import type { Extracted, FieldType, FieldValue } from '../fields/types.js';
import type { Expr, FieldOperand, Literal, Op, Operand } from './ast.js';
import { memoPerEvent } from '../fields/memo.js';
import { AhoCorasick } from './aho.js';
import { ALL_TYPES, type TypeSet, covers, disjoint, except, intersect, only, union } from './evttypes.js';
import { PathPrefixMatcher, globToRegExp } from './glob.js';
import { netContains, parseIp, parseNet, type IpNet } from './ip.js';
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
      /** For evt.type tests: the types for which the test is true. */
      evtTypes?: TypeSet;
      /** Fusable `contains`: several on one field in an `or` share one automaton. */
      fuse?: { key: string; needle: string; ci: boolean; get: (ev: Event) => Extracted };
    };

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
          multi: !!r.def.isList || r.anyOf,
          anyOf: r.anyOf,
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
    if (f.fn === 'len') {
      const g = inner.get;
      return {
        get: (ev) => {
          const v = g(ev);
          if (v === undefined) return undefined;
          return Array.isArray(v) ? v.length : String(v).length;
        },
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
      get: (ev) => {
        const v = g(ev);
        if (v === undefined) return undefined;
        return Array.isArray(v) ? v.map((x) => fn(String(x))) : fn(String(v));
      },
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
      return {
        k: 'leaf',
        test: left.multi
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
      return { k: 'leaf', test: dynamicCompare(op, left, rhs) };
    }

    const listOp = op === 'in' || op === 'intersects' || op === 'pmatch';
    if (!listOp && right.kind !== 'value') throw new CompileError(`operator '${op}' takes a single value`, opPos, op);
    const { values, at } = listOp ? this.listValues(right, locate) : { values: [(right as { lit: Literal }).lit.value], at: (right as { lit: Literal }).lit.at };
    const valuePos = locate(at);
    const scalar = this.scalarTest(op, left, values, valuePos, opPos);

    const leaf: Extract<IR, { k: 'leaf' }> = { k: 'leaf', test: fastTextTest(op, left, values) ?? this.wrap(op, left, scalar) };
    if (left.plain === 'evt.type') {
      if (op === '=' || op === '==' || op === 'in') leaf.evtTypes = only(values);
      else if (op === '!=') leaf.evtTypes = except(values);
    }
    if ((op === 'contains' || op === 'icontains') && !left.multi && STRINGY.has(left.type)) {
      const ci = op === 'icontains';
      leaf.fuse = { key: `${left.text}\u0000${ci}`, needle: ci ? values[0]!.toLowerCase() : values[0]!, ci, get: left.get };
    }
    return leaf;
  }

  /** Apply a scalar test to a field's value(s) with Falco's semantics for missing values and lists. */
  private wrap(op: Op, left: Operandish, scalar: ScalarTest): Pred {
    const g = left.get;
    if (!left.multi) {
      return (ev) => {
        const v = g(ev);
        return v !== undefined && !Array.isArray(v) && scalar.one(v);
      };
    }
    if (op === 'in' && !left.anyOf) {
      // A list field is `in` a set when every one of its values is.
      return (ev) => {
        const v = g(ev);
        if (v === undefined) return false;
        const arr = Array.isArray(v) ? v : [v];
        return arr.length > 0 && arr.every(scalar.one);
      };
    }
    return (ev) => {
      const v = g(ev);
      if (v === undefined) return false;
      return Array.isArray(v) ? v.some(scalar.one) : scalar.one(v);
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
      return numericTest(op, nums) ?? bad('does not apply to numbers');
    }
    if (t === 'bool') {
      const bools = values.map((v) => {
        const l = v.toLowerCase();
        if (l === 'true') return true;
        if (l === 'false') return false;
        throw new CompileError(`'${v}' is not a boolean (true or false), and ${left.text} is bool`, valuePos, v);
      });
      switch (op) {
        case '=': case '==': case 'in': case 'intersects': return { one: (v) => bools.includes(toBool(v)) };
        case '!=': return { one: (v) => toBool(v) !== bools[0] };
        default: return bad('does not apply to booleans');
      }
    }
    if (t === 'ipaddr' || t === 'ipnet') {
      const nets: IpNet[] = values.map((v) => {
        const n = parseNet(v);
        if (!n) throw new CompileError(`'${v}' is not an IP address or CIDR network, and ${left.text} is ${t}`, valuePos, v);
        return n;
      });
      const inAny = (v: FieldValue): boolean => {
        const ip = parseIp(String(v));
        return ip !== undefined && nets.some((n) => netContains(n, ip));
      };
      switch (op) {
        case '=': case '==': case 'in': case 'intersects': return { one: inAny };
        case '!=': return { one: (v) => !inAny(v) };
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
        if (ir.evtTypes && types) {
          if (covers(ir.evtTypes, types)) return { k: 'const', v: true };
          if (disjoint(ir.evtTypes, types)) return { k: 'const', v: false };
        }
        return ir;
      case 'macro': {
        // Rules with the same event types share one memoized predicate per macro.
        const key = types ? [...types].sort().join(',') : '*';
        let byTypes = macroMemo.get(ir);
        if (!byTypes) macroMemo.set(ir, (byTypes = new Map()));
        let out = byTypes.get(key);
        if (!out) {
          const inner = ConditionCompiler.simplify(ir.ir, types);
          out = inner.k === 'const' || inner.k === 'leaf' ? inner : { k: 'leaf', test: memoPerEvent(ConditionCompiler.build(inner)) };
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
        const fused = fuseContains(items);
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

/**
 * The commonest tests (=, !=, in on a single text value) as one closure instead of three: they run
 * in nearly every rule, so the calls saved add up. Same semantics as the general path.
 */
function fastTextTest(op: Op, left: Operandish, values: string[]): Pred | undefined {
  if (left.multi || !STRINGY.has(left.type)) return undefined;
  const g = left.get;
  const s0 = values[0]!;
  const slow = (v: Extracted): string | undefined => (v === undefined || Array.isArray(v) ? undefined : String(v));
  switch (op) {
    case '=': case '==':
      return (ev) => {
        const v = g(ev);
        return typeof v === 'string' ? v === s0 : slow(v) === s0;
      };
    case '!=':
      return (ev) => {
        const v = g(ev);
        if (typeof v === 'string') return v !== s0;
        const t = slow(v);
        return t !== undefined && t !== s0;
      };
    case 'in': case 'intersects': {
      const set = new Set(values);
      return (ev) => {
        const v = g(ev);
        if (typeof v === 'string') return set.has(v);
        const t = slow(v);
        return t !== undefined && set.has(t);
      };
    }
    default:
      return undefined;
  }
}

/** Per macro expansion: its simplified, memoized predicate by the rule's event types. */
const macroMemo = new WeakMap<IR, Map<string, IR>>();

/** Three or more `contains` on one field inside an `or` become one automaton pass. */
const FUSE_MIN = 3;

function fuseContains(items: IR[]): IR[] {
  const groups = new Map<string, Extract<IR, { k: 'leaf' }>[]>();
  for (const it of items) {
    if (it.k === 'leaf' && it.fuse) {
      const g = groups.get(it.fuse.key);
      if (g) g.push(it);
      else groups.set(it.fuse.key, [it]);
    }
  }
  if (![...groups.values()].some((g) => g.length >= FUSE_MIN)) return items;
  const out: IR[] = [];
  const emitted = new Set<string>();
  for (const it of items) {
    if (it.k === 'leaf' && it.fuse) {
      const g = groups.get(it.fuse.key)!;
      if (g.length >= FUSE_MIN) {
        if (!emitted.has(it.fuse.key)) {
          emitted.add(it.fuse.key);
          const { get, ci } = it.fuse;
          const ac = new AhoCorasick(g.map((l) => l.fuse!.needle));
          out.push({
            k: 'leaf',
            test: (ev) => {
              const v = get(ev);
              if (v === undefined || Array.isArray(v)) return false;
              return ac.test(ci ? String(v).toLowerCase() : String(v));
            },
          });
        }
        continue;
      }
    }
    out.push(it);
  }
  return out;
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
