/**
 * Rules files (YAML) → lists, macros and rules, loaded as Falco loads them, in three named stages
 * (load/): the reader (YAML → items, shape checks), the collector (define, append, override,
 * enable across files) and the compiler (lists, macros, exceptions, conditions, outputs). As in
 * Falco, each file is compiled with every file before it: a file must stand on what precedes it.
 * Every problem carries Falco's load code and file:line:col; any error fails the whole load.
 */
import type { EventMemo } from '../fields/memo.js';
import type { FieldRegistry } from '../fields/registry.js';
import type { MacroDef } from './compiler.js';
import { type LoadProblem, Problems } from './load/codes.js';
import { Collector, type FileStats, type RuleDef } from './load/collector.js';
import { type Compiled, type CompiledRule, type ParseCache, RuleCompiler } from './load/compile.js';
import { Reader, type RulesFileInput } from './load/reader.js';
import { RulesLoadError } from './types.js';
import type { BuiltinPlugin } from './version.js';

export type { RulesFileInput } from './load/reader.js';
export type { CompiledRule } from './load/compile.js';
export type { ExceptionDef, FileStats, RuleDef } from './load/collector.js';
export type { LoadProblem } from './load/codes.js';

export interface LoadOptions {
  registry: FieldRegistry;
  /** Event sources that are loaded; rules of other sources are skipped with a warning. */
  sources: ReadonlySet<string>;
  plugins: readonly BuiltinPlugin[];
  /** The engine's per-event cache, which compiled conditions read their fields through. */
  memo?: EventMemo;
}

export interface Ruleset {
  /** Every rule in load order (disabled ones too); `compiled` holds the enabled, loadable ones. */
  rules: RuleDef[];
  compiled: CompiledRule[];
  macros: Map<string, MacroDef>;
  /** Lists as conditions see them (an item naming an earlier list holds its items). */
  lists: Map<string, string[]>;
  warnings: LoadProblem[];
  files: FileStats[];
}

/** What loading one file (on top of the ones before it) gave: Falco's per-file load result. */
export interface FileResult {
  path: string;
  successful: boolean;
  errors: LoadProblem[];
  warnings: LoadProblem[];
}

/** Loads files one after the other into one collector, compiling after each, as Falco does. */
export class RulesLoader {
  private readonly collector: Collector;
  private readonly files: FileStats[] = [];
  private readonly cache: ParseCache = new Map();
  /** Every file's warnings of reading and collecting: they stay whatever the compiles find. */
  private readonly readWarnings: LoadProblem[] = [];
  /** The last compile's warnings (those of the rules as they end up); none when its file failed to read. */
  private compileWarnings: LoadProblem[] = [];
  private compiled?: Compiled;

  constructor(private readonly opts: LoadOptions) {
    this.collector = new Collector(opts.registry, opts.sources, new Problems());
  }

  /**
   * Read one file, then compile everything read so far. `last` false: more files follow, so the
   * compile checks everything but builds no predicates.
   */
  addFile(f: RulesFileInput, last = true): FileResult {
    const problems = new Problems();
    const stats: FileStats = { path: f.path, rules: 0, macros: 0, lists: 0 };
    this.files.push(stats);
    this.collector.problems = problems;
    const read = new Reader(this.collector, problems, this.opts.plugins).read(f, stats);
    this.readWarnings.push(...problems.warnings);
    this.compileWarnings = [];
    if (read) {
      const before = problems.warnings.length;
      this.compiled = new RuleCompiler(this.collector, this.opts.registry, problems, this.cache, last, this.opts.memo).compile();
      this.compileWarnings = problems.warnings.slice(before);
    }
    return { path: f.path, successful: problems.errors.length === 0, errors: problems.errors, warnings: problems.warnings };
  }

  /** Warnings of the load so far: every file's reading, then the last compile's. */
  warnings(): LoadProblem[] {
    return [...this.readWarnings, ...this.compileWarnings];
  }

  /** The rules as the last compile left them. */
  ruleset(): Ruleset {
    const c = this.compiled ?? { compiled: [], macros: new Map(), lists: new Map() };
    return {
      rules: [...this.collector.rules.values()],
      compiled: c.compiled,
      macros: c.macros,
      lists: c.lists,
      warnings: this.warnings(),
      files: this.files,
    };
  }
}

/** The same problem found again by a later file's compile is reported once. */
function dedupe(ps: LoadProblem[]): LoadProblem[] {
  const seen = new Set<string>();
  return ps.filter((p) => {
    const k = `${p.code}\u0000${p.pos.file}:${p.pos.line}:${p.pos.col}\u0000${p.message}\u0000${p.item ?? ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * Load rules files in order, each compiled with those before it. Throws RulesLoadError (with
 * every error and warning) on any error: the load is all or nothing.
 */
export function loadRules(files: RulesFileInput[], opts: LoadOptions): Ruleset {
  const loader = new RulesLoader(opts);
  const errors: LoadProblem[] = [];
  for (const [i, f] of files.entries()) errors.push(...loader.addFile(f, i === files.length - 1).errors);
  if (errors.length) throw new RulesLoadError(dedupe(errors), dedupe(loader.warnings()));
  return loader.ruleset();
}
