/**
 * The compile stage (Falco's rule_loader::compiler): lists, then every macro in definition order
 * (used or not), then every rule — its output, then its condition with exceptions written out,
 * list names replaced by their items, macros resolved by visibility, values checked as libs
 * checks them, and the result compiled. Problems: LOAD_ERR_COMPILE_CONDITION (syntax, fields,
 * values), LOAD_ERR_COMPILE_OUTPUT, LOAD_ERR_VALIDATE (macros that do not resolve, exception
 * shapes), and the warnings LOAD_UNKNOWN_FILTER, LOAD_NO_EVTTYPE, LOAD_UNUSED_MACRO/LIST.
 */
import type { FieldRegistry } from '../../fields/registry.js';
import type { Expr } from '../ast.js';
import { CompileError, ConditionCompiler, type IR, type Locator, type MacroDef, type Pred } from '../compiler.js';
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
  pred: Pred;
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
  /** Macros whose whole expansion resolved, by name and visibility. */
  private readonly resolved = new Set<string>();
  private macroDefs = new Map<string, MacroDef>();

  constructor(
    private readonly col: Collector,
    private readonly registry: FieldRegistry,
    private readonly problems: Problems,
    private readonly cache: ParseCache,
    /**
     * False for the compile after a file that is not the last: it finds every problem the final
     * one would, but builds no predicates (nothing runs them).
     */
    private readonly final = true,
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
    this.macroDefs = macros;
    const usedMacros = new Set<string>();
    for (const m of this.col.macros.values()) {
      const def = macros.get(m.name);
      if (!def) continue;
      try {
        this.resolve(def.expr, def.locate, m.visibility, [m.name], broken, usedMacros);
      } catch (e) {
        if (e instanceof LoadFailure) this.problems.error(e.code, e.pos, e.message, { snippet: e.snippet, item: m.name, itemType: 'macro condition' });
        else if (!(e instanceof Silent)) throw e;
        broken.add(m.name);
      }
    }

    const checker = new ConditionChecker(this.registry, macros);
    const compilers = new Map<string, ConditionCompiler>();
    const compilerFor = (source: string): ConditionCompiler => {
      let c = compilers.get(source);
      if (!c) {
        // Lists are already in place in the text: the compiler gets none, so nothing is expanded twice.
        c = new ConditionCompiler({ registry: this.registry, source, macros, lists: new Map() });
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
   * filter_macro_resolver: every macro named must be defined before the item that names it
   * (visibility), and no macro may reach itself. Marks what it reaches as used.
   */
  private resolve(e: Expr, locate: Locator, visibility: number, path: string[], broken: Set<string>, used: Set<string>): void {
    switch (e.kind) {
      case 'and': case 'or':
        for (const x of e.items) this.resolve(x, locate, visibility, path, broken, used);
        return;
      case 'not':
        this.resolve(e.expr, locate, visibility, path, broken, used);
        return;
      case 'cmp':
        return;
      case 'ref': {
        const info = this.col.macros.get(e.name);
        if (path.includes(e.name) && info && info.index < visibility) {
          throw new LoadFailure('LOAD_ERR_VALIDATE', `reference loop in macro '${e.name}'`, locate(e.at), e.name, 'condition expression');
        }
        if (!info || info.index >= visibility) {
          const hint = this.col.lists.has(e.name) ? ` ('${e.name}' is a list: use it inside in (...))` : '';
          throw new LoadFailure('LOAD_ERR_VALIDATE', `Undefined macro '${e.name}' used in filter.${hint}`, locate(e.at), e.name, 'condition expression');
        }
        used.add(e.name);
        if (broken.has(e.name)) throw new Silent();
        const key = `${e.name}\u0000${visibility}`;
        if (this.resolved.has(key)) return;
        const def = this.macroDefs.get(e.name);
        if (def) this.resolve(def.expr, def.locate, visibility, [...path, e.name], broken, used);
        this.resolved.add(key);
        return;
      }
    }
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
      output = OutputFormat.compile(r.output, this.registry, r.source, r.outputLocate);
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
    try {
      this.resolve(expr, text.locate, Number.MAX_SAFE_INTEGER, [], broken, usedMacros);
    } catch (e) {
      if (e instanceof Silent) return undefined; // its macro's error is already reported
      throw e;
    }
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
      const pred = ConditionCompiler.build(ConditionCompiler.simplify(ir, evttypes));
      const excludedTypes = canTrue.neg && canTrue.set.size ? new Set(canTrue.set) : undefined;
      return { def: r, evttypes, excludedTypes, pred, condition: ir, output };
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

/** A rule whose macro failed: its error is already reported. */
class Silent extends Error {}

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

