/**
 * The compile stage (Falco's rule_loader::compiler): lists, then every macro in definition order
 * (used or not), then every rule — its output, then its condition with exceptions written out,
 * list names replaced by their items, macros resolved by visibility, values checked as libs
 * checks them, and the result compiled. Problems: LOAD_ERR_COMPILE_CONDITION (syntax, fields,
 * values), LOAD_ERR_COMPILE_OUTPUT, LOAD_ERR_VALIDATE (macros that do not resolve, exception
 * shapes), and the warnings LOAD_UNKNOWN_FILTER, LOAD_NO_EVTTYPE, LOAD_UNUSED_MACRO/LIST.
 */
import type { EventMemo } from '../../fields/memo.js';
import type { FieldRegistry } from '../../fields/registry.js';
import type { Expr } from '../ast.js';
import { CompileError, ConditionCompiler, type IR, type Locator, type MacroDef } from '../compiler.js';
import { OutputFormat } from '../output.js';
import { ConditionSyntaxError, parseCondition } from '../parser.js';
import { LoadFailure, type Problems } from './codes.js';
import type { Collector, ExceptionDef, RuleDef } from './collector.js';
import { MappedText, quoteItem, substituteList } from './text.js';
import { ConditionChecker } from './values.js';

export interface CompiledRule {
  def: RuleDef;
  /** Event types the rule can match; undefined when it can match any type. */
  evttypes: Set<string> | undefined;
  /** When `evttypes` is undefined: types the rule can never match (`not evt.type = execve`). */
  excludedTypes?: Set<string>;
  /**
   * The condition (with exceptions) before simplification: the engine specializes it per event
   * type (ConditionCompiler.simplify with that one type), folding its evt.type tests away.
   */
  condition: IR;
  output: OutputFormat;
}

export interface Compiled {
  compiled: CompiledRule[];
  macros: Map<string, MacroDef>;
  lists: Map<string, string[]>;
}

/** Parsed conditions by their text: later files' compiles reparse only what changed. */
export type ParseCache = Map<string, Expr | ConditionSyntaxError>;

/** Operators whose single exception value gets parentheses (Falco's is_operator_for_list). */
const LIST_OPS = new Set(['in', 'intersects', 'pmatch']);
/** Falco's resolve_list delimiters: a list name is replaced only between these (or the ends). */
const DELIM_RUN = /[ \t\n\r(),=]+/;
/** More event types than this and Falco warns that the rule runs for nearly every event. */
const MAX_EVTTYPES = 100;

export class RuleCompiler {
  constructor(
    private readonly col: Collector,
    private readonly registry: FieldRegistry,
    private readonly problems: Problems,
    private readonly cache: ParseCache,
    /**
     * False for the compile after a file that is not the last: it finds every problem the final
     * one would, but returns no rules (nothing runs them).
     */
    private readonly final = true,
    /** The engine's per-event cache, which compiled conditions and outputs read fields through. */
    private readonly memo?: EventMemo,
  ) {}

  compile(): Compiled {
    const errorsBefore = this.problems.errors.length;
    const usedLists = new Set<string>();
    const lists = this.compileLists(usedLists);
    const listOrder = [...lists].map(([name, items]) => ({ name, items, delimited: DELIM_RUN.test(name) }));
    // A name can only be replaced where it stands between delimiters, that is where it is a whole
    // word of the text: look words up in a set instead of searching the text for every list.
    const substitute = (t: MappedText): MappedText => {
      let cur = t;
      const words = new Set(cur.text.split(DELIM_RUN));
      for (const l of listOrder) {
        if (l.delimited ? !cur.text.includes(l.name) : !words.has(l.name)) continue;
        const next = substituteList(cur, l.name, l.items);
        if (next) {
          usedLists.add(l.name);
          cur = next;
          for (const item of l.items) for (const w of item.split(DELIM_RUN)) words.add(w);
        }
      }
      return cur;
    };

    // Every macro, in definition order, used or not.
    const macros = new Map<string, MacroDef>();
    const broken = new Set<string>();
    for (const m of this.col.macros.values()) {
      const text = substitute(m.cond);
      const expr = this.parse(text, m.name, 'macro condition');
      if (expr) macros.set(m.name, { name: m.name, expr, locate: text.locate });
      else broken.add(m.name);
    }
    const usedMacros = new Set<string>();
    this.resolveMacros(macros, broken, usedMacros);

    const checker = new ConditionChecker(this.registry, macros);
    const compilers = new Map<string, ConditionCompiler>();
    const compilerFor = (source: string): ConditionCompiler => {
      let c = compilers.get(source);
      if (!c) {
        // Lists are already in place in the text: the compiler gets none, so nothing is expanded twice.
        c = new ConditionCompiler({ registry: this.registry, source, macros, memo: this.memo });
        compilers.set(source, c);
      }
      return c;
    };
    const compiled: CompiledRule[] = [];
    for (const r of this.col.rules.values()) {
      if (r.unknownSource) continue;
      try {
        const c = this.rule(r, substitute, compilerFor(r.source), checker, broken, usedMacros);
        if (c && r.enabled) compiled.push(c);
      } catch (e) {
        if (e instanceof LoadFailure) {
          this.problems.error(e.code, e.pos, e.message, { snippet: e.snippet, item: r.name, itemType: e.itemType ?? 'rule' });
        } else if (e instanceof RangeError) {
          // A blown stack (macros nested thousands deep): an error in this rule, not a crash.
          this.problems.error('LOAD_ERR_COMPILE_CONDITION', r.pos, `condition is too large or nests too deeply to compile (${e.message})`, { item: r.name, itemType: 'rule condition' });
        } else throw e;
      }
    }

    // As Falco, which stops compiling at an error: no unused warnings from a failed compile.
    if (this.problems.errors.length > errorsBefore) return { compiled, macros, lists };
    for (const m of this.col.macros.values()) {
      if (!usedMacros.has(m.name)) this.problems.warn('LOAD_UNUSED_MACRO', m.pos, 'Macro not referred to by any other rule/macro', { snippet: m.name, item: m.name, itemType: 'macro' });
    }
    for (const l of this.col.lists.values()) {
      if (!usedLists.has(l.name)) this.problems.warn('LOAD_UNUSED_LIST', l.pos, 'List not referred to by any other rule/macro', { snippet: l.name, item: l.name, itemType: 'list' });
    }
    return { compiled, macros, lists };
  }

  /**
   * compile_list_infos: an item naming a list defined before this one (by visibility) becomes
   * that list's items, one level deep, as Falco does it.
   */
  private compileLists(used: Set<string>): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const l of this.col.lists.values()) {
      const items: string[] = [];
      for (const item of l.items) {
        const ref = this.col.lists.get(item);
        if (ref && ref.index < l.visibility) {
          used.add(ref.name);
          for (const v of ref.items) items.push(v); // not push(...): 100k items overflow the stack
        } else items.push(item);
      }
      out.set(l.name, items);
    }
    return out;
  }

  private parse(text: MappedText, item: string, itemType: 'macro condition' | 'rule condition'): Expr | undefined {
    let hit = this.cache.get(text.text);
    if (hit === undefined) {
      try {
        hit = parseCondition(text.text);
      } catch (e) {
        if (!(e instanceof ConditionSyntaxError)) throw e;
        hit = e;
      }
      this.cache.set(text.text, hit);
    }
    if (hit instanceof ConditionSyntaxError) {
      this.problems.error('LOAD_ERR_COMPILE_CONDITION', text.position(hit.at), hit.message, { snippet: hit.snippet, item, itemType });
      return undefined;
    }
    return hit;
  }

  /**
   * filter_macro_resolver over every macro, in definition order: each macro it names must be
   * defined before it (visibility), and no macro may reach itself (a loop needs an append). One
   * pass over the graph of names, without recursion, so thousands of macros deep cost nothing
   * special. A macro that fails, or reaches one that does, is `broken`.
   */
  private resolveMacros(macros: Map<string, MacroDef>, broken: Set<string>, used: Set<string>): void {
    const edges = new Map<string, string[]>();
    for (const m of this.col.macros.values()) {
      const def = macros.get(m.name);
      if (!def) continue;
      const to: string[] = [];
      edges.set(m.name, to);
      for (const ref of refsOf(def.expr)) {
        const info = this.col.macros.get(ref.name);
        if (!info || info.index >= m.visibility) {
          this.problems.error('LOAD_ERR_VALIDATE', def.locate(ref.at), undefinedMacro(ref.name, this.col.lists.has(ref.name)), { snippet: ref.name, item: m.name, itemType: 'macro condition' });
          broken.add(m.name);
          continue;
        }
        used.add(ref.name);
        to.push(ref.name);
      }
    }
    // Depth-first over the names, with an explicit stack: grey on the way down, black when done.
    const color = new Map<string, 1 | 2>();
    for (const start of edges.keys()) {
      if (color.has(start)) continue;
      const stack: { name: string; next: number }[] = [{ name: start, next: 0 }];
      color.set(start, 1);
      while (stack.length) {
        const top = stack[stack.length - 1]!;
        const to = edges.get(top.name) ?? [];
        if (top.next < to.length) {
          const n = to[top.next++]!;
          const c = color.get(n);
          if (c === 1) {
            const def = macros.get(top.name)!;
            const at = refsOf(def.expr).find((x) => x.name === n)!;
            this.problems.error('LOAD_ERR_VALIDATE', def.locate(at.at), `reference loop in macro '${n}'`, { snippet: n, item: top.name, itemType: 'macro condition' });
            broken.add(top.name);
            broken.add(n);
          } else if (c === undefined) {
            color.set(n, 1);
            stack.push({ name: n, next: 0 });
          }
          continue;
        }
        // Done with its names: broken when one of them is.
        if (to.some((n) => broken.has(n))) broken.add(top.name);
        color.set(top.name, 2);
        stack.pop();
      }
    }
  }

  /** The macros a rule names must exist; true when one of them is broken (its error is reported). */
  private resolveRule(expr: Expr, locate: Locator, broken: Set<string>, used: Set<string>): boolean {
    let silent = false;
    for (const ref of refsOf(expr)) {
      if (!this.col.macros.has(ref.name)) {
        throw new LoadFailure('LOAD_ERR_VALIDATE', undefinedMacro(ref.name, this.col.lists.has(ref.name)), locate(ref.at), ref.name, 'condition expression');
      }
      used.add(ref.name);
      if (broken.has(ref.name)) silent = true;
    }
    return silent;
  }

  private rule(
    r: RuleDef,
    substitute: (t: MappedText) => MappedText,
    compiler: ConditionCompiler,
    checker: ConditionChecker,
    broken: Set<string>,
    usedMacros: Set<string>,
  ): CompiledRule | undefined {
    // The output first, as Falco checks it before the condition.
    let output: OutputFormat;
    try {
      output = OutputFormat.compile(r.output, this.registry, r.source, r.outputLocate, { memo: this.memo });
    } catch (e) {
      if (!(e instanceof CompileError)) throw e;
      if (/unknown field/.test(e.message) && r.skipIfUnknownFilter) {
        this.problems.warn('LOAD_UNKNOWN_FILTER', e.pos, `rule '${r.name}' is skipped (skip-if-unknown-filter): ${e.message}`, { snippet: e.snippet, item: r.name, itemType: 'rule output' });
        return undefined;
      }
      throw new LoadFailure('LOAD_ERR_COMPILE_OUTPUT', e.message, e.pos, e.snippet, 'rule output');
    }

    // check_deprecated_fields_in_output
    if (r.output.includes('evt.dir')) {
      this.problems.warn('LOAD_DEPRECATED_ITEM', r.outputPos, "usage of deprecated field 'evt.dir' has been detected in the rule output", { snippet: 'evt.dir', item: r.name, itemType: 'rule output' });
    }
    const text = substitute(r.exceptions.length ? withExceptions(r.condition, r.exceptions) : r.condition);
    const expr = this.parse(text, r.name, 'rule condition');
    if (!expr) return undefined;
    if (this.resolveRule(expr, text.locate, broken, usedMacros)) return undefined; // its macro's error is already reported
    // filter_warning_resolver: found before the condition compiles, kept whatever comes next.
    const w = checker.warnings(expr);
    if (w.unsafeNa) this.problems.warn('LOAD_UNSAFE_NA_CHECK', r.pos, 'a ka.* or jevt.* field compared with <NA>: use the exists operator to test for the field', { item: r.name, itemType: 'rule condition' });
    if (w.evtDir) this.problems.warn('LOAD_DEPRECATED_ITEM', r.pos, "evt.dir is deprecated: every event is an exit event, so 'evt.dir = <' is always true and 'evt.dir = >' always false", { snippet: 'evt.dir', item: r.name, itemType: 'rule condition' });
    try {
      checker.check(expr, text.locate, r.source);
      const ir = compiler.toIR(expr, text.locate);
      const { canTrue } = ConditionCompiler.types(ir);
      const evttypes = canTrue.neg ? undefined : new Set(canTrue.set);
      if (r.warnEvttypes && r.source === 'syscall' && (evttypes === undefined || evttypes.size === 0 || evttypes.size > MAX_EVTTYPES)) {
        const why = evttypes?.size === 0 ? 'its condition excludes every event type, so it can never match' : 'it is evaluated for nearly every event (add an evt.type test)';
        this.problems.warn('LOAD_NO_EVTTYPE', r.pos, `Rule matches too many evt.type values: ${why}`, { item: r.name, itemType: 'rule' });
      }
      if (!this.final) return undefined;
      const excludedTypes = canTrue.neg && canTrue.set.size ? new Set(canTrue.set) : undefined;
      return { def: r, evttypes, excludedTypes, condition: ir, output };
    } catch (e) {
      if (!(e instanceof CompileError)) throw e;
      if (e.unknownField && r.skipIfUnknownFilter) {
        this.problems.warn('LOAD_UNKNOWN_FILTER', e.pos, `rule '${r.name}' is skipped (skip-if-unknown-filter): ${e.message}`, { snippet: e.snippet, item: r.name, itemType: 'condition expression' });
        return undefined;
      }
      throw new LoadFailure('LOAD_ERR_COMPILE_CONDITION', e.message, e.pos, e.snippet, 'condition expression');
    }
  }
}

/** The macros an expression names itself (not through other macros), in order. */
function refsOf(e: Expr): { name: string; at: number }[] {
  const out: { name: string; at: number }[] = [];
  const stack: Expr[] = [e];
  while (stack.length) {
    const x = stack.pop()!;
    if (x.kind === 'ref') out.push({ name: x.name, at: x.at });
    else if (x.kind === 'not') stack.push(x.expr);
    else if (x.kind === 'and' || x.kind === 'or') for (let i = x.items.length - 1; i >= 0; i--) stack.push(x.items[i]!);
  }
  return out;
}

function undefinedMacro(name: string, isList: boolean): string {
  return `Undefined macro '${name}' used in filter.${isList ? ` ('${name}' is a list: use it inside in (...))` : ''}`;
}

/**
 * build_rule_exception_infos: `(condition) and not (…)` per exception, written as text. Values go
 * in through quote_item (no escaping); a single value for a list operator gets parentheses.
 */
function withExceptions(cond: MappedText, exceptions: readonly ExceptionDef[]): MappedText {
  const parts: MappedText[] = [MappedText.at('(', cond.position(0)), cond, MappedText.at(')', cond.position(cond.text.length))];
  for (const ex of exceptions) {
    const text = exceptionText(ex);
    if (text) parts.push(MappedText.at(` and not ${text}`, ex.pos));
  }
  return MappedText.concat(parts);
}

function exceptionText(ex: ExceptionDef): string {
  const fields = ex.fields!;
  const comps = ex.comps!;
  const fail = (msg: string): never => {
    throw new LoadFailure('LOAD_ERR_VALIDATE', msg, ex.pos, ex.name, 'exception');
  };
  if (!fields.isList) {
    if (ex.values.length === 0) return '';
    const items = ex.values.map((v) => {
      if (v.isList) fail('Expected values array to contain a list of strings');
      return quoteItem(v.item);
    });
    return `(${fields.item} ${comps.item} (${items.join(', ')}))`;
  }
  const tuples: string[] = [];
  for (const values of ex.values) {
    if (!values.isList || values.items.length !== fields.items.length) fail('Fields and values lists must have equal length');
    const tests = fields.items.map((f, k) => {
      const v = values.items[k]!;
      const op = comps.items[k]!.item;
      let value: string;
      if (v.isList) value = `(${v.items.map((x) => quoteItem(x.item)).join(', ')})`;
      else if (LIST_OPS.has(op)) value = v.item[0] === '(' ? v.item : `(${v.item})`;
      else value = quoteItem(v.item);
      return ` ${f.item} ${op} ${value}`;
    });
    tuples.push(`(${tests.join(' and ')})`);
  }
  return tuples.length ? `(${tuples.join(' or ')})` : '';
}

