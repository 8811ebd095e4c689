/**
 * The rules engine: load rules files, index the rules by source and event type, and turn
 * events into matches. Knows nothing of where events come from or where matches go.
 * Per event type it keeps a plan (plan.ts): the rules for that type with their conditions
 * specialized to it, guards and a value index that skip rules which cannot match.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import type { Event } from '../events.js';
import { EventMemo } from '../fields/memo.js';
import type { FieldRegistry } from '../fields/registry.js';
import { CompileError, type IR } from './compiler.js';
import { type AppendOutput, OutputFormat, appendFor, falcoTags } from './output.js';
import { TypePlan } from './plan.js';
import { type CompiledRule, type RulesFileInput, type Ruleset, loadRules } from './loader.js';
import { type Match, type Priority, type RuleProblem, RulesLoadError, priorityRank } from './types.js';
import { BUILTIN_PLUGINS, type BuiltinPlugin } from './version.js';


export interface EngineOptions {
  registry: FieldRegistry;
  /** Event sources loaded (default: every source the registry has fields for). */
  sources?: string[];
  plugins?: BuiltinPlugin[];
  /** Falco's rule_matching: 'first' stops at the first matching rule (Falco's default), 'all' reports each. */
  ruleMatching?: 'first' | 'all';
  /** Rules less severe than this are not loaded (Falco's `priority` setting). */
  minPriority?: Priority;
  hostname?: string;
  /** Only rules carrying one of these tags (Falco's -t). */
  enabledTags?: string[];
  /** Rules carrying any of these tags are left out (Falco's -T). */
  disabledTags?: string[];
  /** Rules by name left out (Falco's -D takes a substring; so does this). */
  disabledRules?: string[];
  /**
   * Falco's append_output (falco.yaml): text appended to outputs, fields added to output_fields,
   * the sources' suggested fields. None by default here; the config's default is Falco's,
   * FALCO_DEFAULT_APPEND_OUTPUT.
   */
  appendOutput?: readonly AppendOutput[];
}

/** What a match of one rule carries besides the event's values. */
interface RuleEmit {
  output: OutputFormat;
  tags: string[];
}

/** Expand directories into their YAML files (sorted, as Falco reads rules.d) and read them all. */
export function readRulesFiles(paths: string[]): RulesFileInput[] {
  const out: RulesFileInput[] = [];
  const problems: { file: string; msg: string }[] = [];
  for (const p of paths) {
    try {
      if (statSync(p).isDirectory()) {
        for (const f of readdirSync(p).filter((n) => /\.ya?ml$/.test(n)).sort()) {
          const full = `${p.replace(/\/$/, '')}/${f}`;
          out.push({ path: full, text: readFileSync(full, 'utf8') });
        }
      } else out.push({ path: p, text: readFileSync(p, 'utf8') });
    } catch (e) {
      problems.push({ file: p, msg: `cannot read rules file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the path` });
    }
  }
  if (problems.length) {
    throw new RulesLoadError(problems.map((x) => ({ pos: { file: x.file, line: 0, col: 0 }, message: x.msg })));
  }
  return out;
}

interface SourceIndex {
  byType: Map<string, CompiledRule[]>;
  anyType: CompiledRule[];
  /** typed ∪ anyType in load order, per event type, built on first use. */
  merged: Map<string, CompiledRule[]>;
  /** What process() runs per event type, built on first use. */
  plans: Map<string, TypePlan>;
  /**
   * Event types some rule names (in its event types or in any evt.type test of a rule for all
   * types), built on first use. Every other type gets the same plan, `otherPlan`: its evt.type
   * tests all fold the same way. So event types from data that no rule knows cost no compiling.
   */
  named?: Set<string>;
  otherPlan?: TypePlan;
}

/** Event types remembered per source beyond those the rules name (the others share one plan). */
const MAX_PLANS = 4096;
/** An event type no rule names, standing for all of them. */
function unnamed(named: ReadonlySet<string>): string {
  let t = '\u0000other';
  while (named.has(t)) t += '\u0000';
  return t;
}

export class RulesEngine {
  readonly ruleset: Ruleset;
  /** The rules that run, after priority, tag and name filters. */
  readonly active: CompiledRule[];
  private readonly index = new Map<string, SourceIndex>();
  private readonly matchAll: boolean;
  private readonly hostname: string;
  /** This engine's per-event cache: fields, transformers, macros and guards, once per event. */
  private readonly memo = new EventMemo();
  /** Per active rule: its output with append_output applied, and its tags as Falco keeps them. */
  private readonly emits = new Map<CompiledRule, RuleEmit>();

  constructor(files: RulesFileInput[], readonly options: EngineOptions) {
    const registry = options.registry;
    const sources = new Set(options.sources ?? registry.sources());
    this.ruleset = loadRules(files, { registry, sources, plugins: options.plugins ?? BUILTIN_PLUGINS, memo: this.memo });
    this.matchAll = options.ruleMatching === 'all';
    this.hostname = options.hostname ?? osHostname();
    const minRank = options.minPriority ? priorityRank(options.minPriority) : Infinity;
    const onTags = options.enabledTags?.length ? new Set(options.enabledTags) : undefined;
    const offTags = new Set(options.disabledTags ?? []);
    const offNames = options.disabledRules ?? [];
    this.active = this.ruleset.compiled.filter(({ def }) =>
      priorityRank(def.priority) <= minRank &&
      (!onTags || def.tags.some((t) => onTags.has(t))) &&
      !def.tags.some((t) => offTags.has(t)) &&
      !offNames.some((n) => def.name.includes(n)));
    this.prepareOutputs(options.appendOutput ?? []);
    for (const r of this.active) {
      let si = this.index.get(r.def.source);
      if (!si) this.index.set(r.def.source, (si = { byType: new Map(), anyType: [], merged: new Map(), plans: new Map<string, TypePlan>() }));
      if (!r.evttypes) si.anyType.push(r);
      else for (const t of r.evttypes) {
        const list = si.byType.get(t);
        if (list) list.push(r);
        else si.byType.set(t, [r]);
      }
    }
  }

  get warnings() {
    return this.ruleset.warnings;
  }

  /** Each active rule's output with append_output on top, and the warnings Falco gives for outputs. */
  private prepareOutputs(append: readonly AppendOutput[]): void {
    const errors: RuleProblem[] = [];
    for (const r of this.active) {
      const def = r.def;
      if (def.output.includes('%container.info')) {
        // Falco's loader drops %container.info with this warning (rule_loader_compiler.cpp).
        this.ruleset.warnings.push({
          code: 'LOAD_DEPRECATED_ITEM', itemType: 'rule output', pos: def.outputPos, item: def.name,
          message: '%container.info is deprecated and expands to nothing (as in Falco); name the container fields you want, e.g. %container.id %container.name',
        });
      }
      let output = r.output;
      const extra = append.length ? appendFor(append, { name: def.name, source: def.source, tags: def.tags }, this.options.registry) : undefined;
      if (extra && (extra.outputs.length || extra.fields.length)) {
        try {
          output = output.withExtras(extra.outputs, extra.fields, this.options.registry, def.source, () => def.outputPos, this.memo);
        } catch (e) {
          if (!(e instanceof CompileError)) throw e;
          errors.push({ pos: def.outputPos, item: def.name, message: `append_output: ${e.message}; fix append_output in the config`, snippet: e.snippet });
        }
      }
      this.emits.set(r, { output, tags: falcoTags(def.tags) });
    }
    if (errors.length) throw new RulesLoadError(errors, this.ruleset.warnings);
  }

  /** The rules an event of this source and type meets, in load order. */
  rulesFor(source: string, type: string): CompiledRule[] {
    const si = this.index.get(source);
    if (!si) return [];
    let m = si.merged.get(type);
    if (!m) {
      const typed = si.byType.get(type) ?? [];
      const anyType = si.anyType.filter((r) => !r.excludedTypes?.has(type));
      m = typed.length === 0 ? anyType : anyType.length === 0 ? typed : [...typed, ...anyType].sort((a, b) => this.active.indexOf(a) - this.active.indexOf(b));
      si.merged.set(type, m);
    }
    return m;
  }

  /** The source of the previous event and its plans: events come mostly from one source. */
  private lastSource: string | undefined;
  private lastPlans: Map<string, TypePlan> | undefined;

  /** What runs for an event of this source and type (see plan.ts), built on first use. */
  private planFor(source: string, type: string): TypePlan {
    let plans = this.lastPlans;
    if (source !== this.lastSource || !plans) {
      const si = this.index.get(source);
      if (!si) return NO_PLAN;
      this.lastSource = source;
      this.lastPlans = plans = si.plans;
    }
    return plans.get(type) ?? this.newPlan(source, type);
  }

  private newPlan(source: string, type: string): TypePlan {
    const si = this.index.get(source)!;
    si.named ??= namedTypes(si);
    let plan: TypePlan;
    if (si.named.has(type)) plan = new TypePlan(this.rulesFor(source, type), type, this.memo);
    else plan = si.otherPlan ??= new TypePlan(si.anyType, unnamed(si.named), this.memo);
    if (si.named.has(type) || si.plans.size < MAX_PLANS) si.plans.set(type, plan);
    return plan;
  }

  /**
   * Whether the active rule `name` matches `ev` now: for acting on a match only while what it
   * matched still holds (a cluster object re-read before a cluster action, an event without the
   * names learned from DNS before a kill). Undefined when no
   * active rule has that name (reloaded away). A predicate that throws counts as not matching.
   */
  recheck(name: string, ev: Event): boolean | undefined {
    const r = this.active.find((x) => x.def.name === name);
    if (!r) return undefined;
    if (r.def.source !== ev.source || (r.evttypes ? !r.evttypes.has(ev.type) : r.excludedTypes?.has(ev.type))) return false;
    // The event's plan runs every rule up to this one (the plan throws nothing: a predicate that
    // throws is a non-match there). Rare (an action about to run), so no plan of its own.
    this.memo.next();
    const plan = this.planFor(ev.source, ev.type);
    for (let pos = plan.next(ev, 0); pos >= 0; pos = plan.next(ev, pos + 1)) {
      if (plan.rule(pos) === r) return true;
    }
    return false;
  }

  /** Evaluate one event. A predicate that throws is treated as not matching: bad data never stops the engine. */
  process(ev: Event): Match[] {
    this.memo.next();
    const plan = this.planFor(ev.source, ev.type);
    let out: Match[] | undefined;
    for (let pos = plan.next(ev, 0); pos >= 0; pos = this.matchAll ? plan.next(ev, pos + 1) : -1) {
      const r = plan.rule(pos);
      const emit = this.emits.get(r)!;
      const { text, fields } = emit.output.render(ev);
      const m: Match = {
        rule: r.def.name,
        priority: r.def.priority,
        source: r.def.source,
        tags: emit.tags,
        output: text,
        outputFields: fields,
        time: ev.ts,
        hostname: ev.hostname ?? this.hostname,
        event: ev,
      };
      (out ??= []).push(m);
    }
    return out ?? NO_MATCHES;
  }
}

/** The event types the rules of a source name: their indexed types and every evt.type test. */
function namedTypes(si: SourceIndex): Set<string> {
  const out = new Set<string>(si.byType.keys());
  const seen = new Set<IR>();
  const walk = (ir: IR): void => {
    if (seen.has(ir)) return;
    seen.add(ir);
    switch (ir.k) {
      case 'leaf':
        if (ir.evtTypes) for (const t of ir.evtTypes.set) out.add(t);
        break;
      case 'not':
        walk(ir.x);
        break;
      case 'macro':
        walk(ir.ir);
        break;
      case 'and': case 'or':
        for (const x of ir.items) walk(x);
        break;
    }
  };
  for (const r of si.anyType) walk(r.condition);
  return out;
}

const NO_MATCHES: Match[] = Object.freeze([]) as unknown as Match[];
const NO_PLAN = new TypePlan([], '', new EventMemo());
