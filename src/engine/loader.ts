/**
 * Rules files (YAML) → lists, macros and rules, as Falco reads them: several files in order,
 * later ones appending to or overriding earlier ones; exceptions; version and plugin requirements.
 * Every problem carries file:line:col; any error fails the whole load (never a half-loaded set).
 */
import { type Document, LineCounter, YAMLMap, YAMLSeq, isAlias, isMap, isScalar, isSeq, parseDocument, type Node as YNode } from 'yaml';
import type { EventMemo } from '../fields/memo.js';
import type { FieldRegistry } from '../fields/registry.js';
import type { Expr, FieldOperand, Literal, Op } from './ast.js';
import { LIST_OPS, NUM_OPS, STR_OPS } from './ast.js';
import { CompileError, ConditionCompiler, type IR, type Locator, type MacroDef } from './compiler.js';
import { OutputFormat } from './output.js';
import { ConditionSyntaxError, parseCondition, parseFieldName } from './parser.js';
import { type Position, type Priority, type RuleProblem, RulesLoadError, parsePriority } from './types.js';
import { ENGINE_VERSION, compareVersions, parseEngineVersion, pluginSatisfies, type BuiltinPlugin } from './version.js';

export interface RulesFileInput {
  path: string;
  text: string;
}

export interface LoadOptions {
  registry: FieldRegistry;
  /** Event sources that are loaded; rules of other sources are skipped with a warning. */
  sources: ReadonlySet<string>;
  plugins: readonly BuiltinPlugin[];
  /** The engine's per-event cache, which compiled conditions read their fields through. */
  memo?: EventMemo;
}

/** A piece of condition text and where it came from (appends add pieces from other files). */
interface TextPiece {
  text: string;
  locate: Locator;
}

export interface ExceptionDef {
  name: string;
  fields: string[] | string;
  comps: string[] | string;
  values: unknown[];
  pos: Position;
}

export interface RuleDef {
  name: string;
  desc: string;
  condition: TextPiece[];
  output: string;
  outputPos: Position;
  outputLocate: Locator;
  priority: Priority;
  enabled: boolean;
  tags: string[];
  source: string;
  exceptions: ExceptionDef[];
  warnEvttypes: boolean;
  skipIfUnknownFilter: boolean;
  pos: Position;
}

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

export interface FileStats {
  path: string;
  rules: number;
  macros: number;
  lists: number;
  requiredEngineVersion?: string;
}

export interface Ruleset {
  /** Every rule in load order (disabled ones too); `compiled` holds the enabled, loadable ones. */
  rules: RuleDef[];
  compiled: CompiledRule[];
  macros: Map<string, MacroDef & { pieces: TextPiece[] }>;
  lists: Map<string, string[]>;
  warnings: RuleProblem[];
  files: FileStats[];
}

// ---- positions ---------------------------------------------------------------------------------

/**
 * Map offsets in a scalar's value back into the file. YAML folding and quoting change only blanks,
 * quotes and escapes, so the value's characters are walked against the raw source in order.
 */
function scalarLocator(file: string, text: string, lc: LineCounter, node: YNode | null | undefined): Locator {
  const start = node?.range?.[0] ?? 0;
  const end = node?.range?.[1] ?? start;
  let map: number[] | undefined;
  const toPos = (off: number): Position => {
    const lp = lc.linePos(off);
    return { file, line: lp.line, col: lp.col };
  };
  return (at: number) => {
    if (!node || !isScalar(node)) return toPos(start);
    if (!map) {
      const raw = text.slice(start, end);
      const v = String(node.value);
      map = new Array<number>(v.length + 1);
      const ws = (c: string | undefined): boolean => c === ' ' || c === '\n' || c === '\t' || c === '\r';
      let j = 0;
      // Block scalars begin with a header line ('>-', '|') that is not part of the value.
      if (raw[0] === '>' || raw[0] === '|') {
        const nl = raw.indexOf('\n');
        j = nl < 0 ? raw.length : nl + 1;
      } else if (raw[0] === '"' || raw[0] === "'") j = 1;
      for (let i = 0; i < v.length; ) {
        if (j >= raw.length) {
          map[i++] = Math.max(0, raw.length - 1);
        } else if (v[i] === raw[j] || (ws(v[i]) && ws(raw[j]))) {
          map[i++] = j++;
        } else if (ws(v[i])) {
          map[i++] = j;
        } else j++;
      }
      map[v.length] = Math.min(j, raw.length);
      // Errors "at the end" point just past the last non-blank character, not at the line after
      // a block scalar's trailing newline.
      const trimmed = v.replace(/\s+$/, '').length;
      if (trimmed < v.length) map.length = trimmed + 1;
    }
    return toPos(start + (map[Math.min(at, map.length - 1)] ?? 0));
  };
}

/** A locator over text joined from pieces with single spaces (appends). */
function joinedLocator(pieces: TextPiece[]): { text: string; locate: Locator } {
  const starts: number[] = [];
  let text = '';
  for (const p of pieces) {
    if (text) text += ' ';
    starts.push(text.length);
    text += p.text;
  }
  return {
    text,
    locate: (at) => {
      let i = starts.length - 1;
      while (i > 0 && starts[i]! > at) i--;
      return pieces[i]!.locate(Math.max(0, at - starts[i]!));
    },
  };
}

// ---- YAML item access --------------------------------------------------------------------------

interface Item {
  map: YAMLMap;
  pos: Position;
  keys: Map<string, YNode | null>;
  file: string;
  text: string;
  lc: LineCounter;
}

const RULE_KEYS = new Set(['rule', 'condition', 'output', 'desc', 'priority', 'enabled', 'tags', 'source', 'exceptions', 'append', 'override', 'warn_evttypes', 'skip-if-unknown-filter', 'capture', 'capture_duration']);
const MACRO_KEYS = new Set(['macro', 'condition', 'append', 'override', 'desc', 'source']);
const LIST_KEYS = new Set(['list', 'items', 'append', 'override', 'desc']);
const OVERRIDABLE = {
  list: { append: ['items'], replace: ['items'] },
  macro: { append: ['condition'], replace: ['condition'] },
  rule: {
    append: ['condition', 'output', 'desc', 'tags', 'exceptions'],
    replace: ['condition', 'output', 'desc', 'priority', 'tags', 'exceptions', 'enabled', 'warn_evttypes', 'skip-if-unknown-filter'],
  },
} as const;
const VALID_OPS = new Set<string>([...NUM_OPS, ...STR_OPS, ...LIST_OPS, 'exists']);
/** What js() gives for a value it could not build: no accessor takes it for a valid value. */
const BAD_YAML_VALUE = Symbol('bad YAML value');
/** Lists naming lists naming lists…: deeper than this is an error (and no stack overflow). */
const MAX_LIST_NESTING = 1000;

class Loader {
  readonly errors: RuleProblem[] = [];
  readonly warnings: RuleProblem[] = [];
  readonly lists = new Map<string, { items: string[]; pos: Position }>();
  readonly macros = new Map<string, { pieces: TextPiece[]; pos: Position }>();
  readonly rules = new Map<string, RuleDef>();
  readonly order: string[] = [];
  readonly files: FileStats[] = [];
  /** The file being read: YAML aliases (*name) resolve against its document, as yaml-cpp does for Falco. */
  private cur?: { doc: Document; file: string; lc: LineCounter };

  constructor(private readonly opts: LoadOptions) {}

  private error(pos: Position, message: string, snippet?: string, item?: string): void {
    this.errors.push({ pos, message, snippet, item });
  }

  private warn(pos: Position, message: string, snippet?: string, item?: string): void {
    this.warnings.push({ pos, message, snippet, item });
  }

  private posOf(it: { file: string; lc: LineCounter }, node: YNode | null | undefined): Position {
    const off = node?.range?.[0] ?? 0;
    const lp = it.lc.linePos(off);
    return { file: it.file, line: lp.line, col: lp.col };
  }

  loadFile(f: RulesFileInput): void {
    const lc = new LineCounter();
    const stats: FileStats = { path: f.path, rules: 0, macros: 0, lists: 0 };
    this.files.push(stats);
    const doc = parseDocument(f.text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
    if (doc.errors.length) {
      for (const e of doc.errors) {
        const lp = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
        this.error({ file: f.path, line: lp.line, col: lp.col }, `invalid YAML: ${e.message.split('\n')[0]}`);
      }
      return;
    }
    this.cur = { doc, file: f.path, lc };
    const deref = (v: unknown): YNode | null => (isAlias(v) ? (v.resolve(doc) ?? v) : ((v as YNode | null | undefined) ?? null));
    const root = doc.contents;
    if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) return;
    if (!isSeq(root)) {
      this.error({ file: f.path, line: 1, col: 1 }, 'a rules file must be a YAML sequence of items (- rule: …, - macro: …, - list: …)');
      return;
    }
    for (const node of (root as YAMLSeq).items) {
      const n = deref(node) as YNode;
      const base = { file: f.path, text: f.text, lc };
      const pos = this.posOf(base, n);
      if (!isMap(n)) {
        this.error(pos, 'each item of a rules file must be a mapping such as "- rule: name"');
        continue;
      }
      const keys = new Map<string, YNode | null>();
      for (const pair of (n as YAMLMap).items) {
        const key = deref(pair.key);
        const k = isScalar(key) ? String(key.value) : String(key);
        keys.set(k, deref(pair.value));
      }
      const it: Item = { map: n as YAMLMap, pos, keys, ...base };
      if (keys.has('required_engine_version')) this.engineVersion(it, stats);
      else if (keys.has('required_plugin_versions')) this.pluginVersions(it);
      else if (keys.has('list')) {
        if (this.list(it)) stats.lists++;
      } else if (keys.has('macro')) {
        if (this.macro(it)) stats.macros++;
      } else if (keys.has('rule')) {
        if (this.rule(it)) stats.rules++;
      } else {
        this.warn(pos, `unknown top-level item with keys: ${[...keys.keys()].join(', ')}; it is ignored`);
      }
    }
  }

  // ---- typed accessors ---------------------------------------------------------------------

  private js(node: YNode | null | undefined): unknown {
    if (node === null || node === undefined) return null;
    if (!this.cur) return (node as { toJSON(): unknown }).toJSON();
    try {
      return node.toJS(this.cur.doc, { maxAliasCount: 1000 });
    } catch (e) {
      // An alias without its anchor, or an alias bomb: a problem in the file, not a crash.
      this.error(this.posOf(this.cur, node), `YAML alias: ${(e as Error).message}`);
      return BAD_YAML_VALUE;
    }
  }

  private str(it: Item, key: string, item?: string): string | undefined {
    if (!it.keys.has(key)) return undefined;
    const node = it.keys.get(key);
    const v = this.js(node);
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    this.error(this.posOf(it, node ?? it.map), `'${key}' must be a string`, key, item);
    return undefined;
  }

  private bool(it: Item, key: string, item?: string): boolean | undefined {
    if (!it.keys.has(key)) return undefined;
    const node = it.keys.get(key);
    const v = this.js(node);
    if (typeof v === 'boolean') return v;
    this.error(this.posOf(it, node ?? it.map), `'${key}' must be true or false`, String(v), item);
    return undefined;
  }

  private strList(it: Item, key: string, item?: string): string[] | undefined {
    if (!it.keys.has(key)) return undefined;
    const node = it.keys.get(key);
    const v = this.js(node);
    if (v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x === 'object' && x !== null)) {
      this.error(this.posOf(it, node ?? it.map), `'${key}' must be a list of values, e.g. [a, b]`, key, item);
      return undefined;
    }
    return v.map((x) => String(x));
  }

  private locator(it: Item, key: string): Locator {
    return scalarLocator(it.file, it.text, it.lc, it.keys.get(key));
  }

  /** Check the override map and append flag; returns per-key modes, or null on error. */
  private overrides(it: Item, kind: 'list' | 'macro' | 'rule', name: string, exists: boolean): Map<string, 'append' | 'replace'> | null | undefined {
    const append = this.bool(it, 'append', name);
    if (!it.keys.has('override')) {
      if (append && !exists) {
        this.error(it.pos, `${kind} '${name}' has 'append: true' but no ${kind} by that name is defined before it`, name, name);
        return null;
      }
      return append ? new Map() : undefined;
    }
    const onode = it.keys.get('override');
    if (append) {
      this.error(this.posOf(it, onode), `'override' and 'append: true' cannot be used together`, 'override', name);
      return null;
    }
    if (!exists) {
      this.error(it.pos, `${kind} '${name}' has an 'override' key but no ${kind} by that name is defined before it`, name, name);
      return null;
    }
    const o = this.js(onode);
    if (!o || typeof o !== 'object' || Array.isArray(o)) {
      this.error(this.posOf(it, onode), `'override' must map keys to append or replace, e.g. {condition: append}`, 'override', name);
      return null;
    }
    const modes = new Map<string, 'append' | 'replace'>();
    for (const [k, m] of Object.entries(o as Record<string, unknown>)) {
      if (m !== 'append' && m !== 'replace') {
        this.error(this.posOf(it, onode), `override of '${k}' must be 'append' or 'replace', got '${String(m)}'`, String(m), name);
        return null;
      }
      const allowed = OVERRIDABLE[kind][m] as readonly string[];
      if (!allowed.includes(k)) {
        this.error(this.posOf(it, onode), `'${k}' cannot be overridden with ${m} for a ${kind} (allowed: ${allowed.join(', ')})`, k, name);
        return null;
      }
      if (!it.keys.has(k)) {
        this.error(this.posOf(it, onode), `override names '${k}' but the item has no '${k}' key`, k, name);
        return null;
      }
      modes.set(k, m);
    }
    for (const k of it.keys.keys()) {
      if (k !== kind && k !== 'override' && !modes.has(k)) {
        this.error(this.posOf(it, it.keys.get(k)), `key '${k}' is set but 'override' does not say whether to append or replace it`, k, name);
        return null;
      }
    }
    return modes;
  }

  private checkKeys(it: Item, allowed: Set<string>, name: string): void {
    for (const k of it.keys.keys()) {
      if (!allowed.has(k)) this.warn(this.posOf(it, it.keys.get(k) ?? it.map), `unexpected key '${k}' is ignored`, k, name);
    }
  }

  // ---- items -------------------------------------------------------------------------------

  private engineVersion(it: Item, stats: FileStats): void {
    const node = it.keys.get('required_engine_version');
    const raw = this.js(node);
    const v = parseEngineVersion(raw);
    if (!v) {
      this.error(this.posOf(it, node), `required_engine_version must be an integer (e.g. 15) or a version (e.g. 0.57.0)`, String(raw));
      return;
    }
    stats.requiredEngineVersion = v;
    if (compareVersions(v, ENGINE_VERSION) > 0) {
      this.error(this.posOf(it, node), `rules require engine version ${v}, but minewatch's engine version is ${ENGINE_VERSION}`, String(raw));
    }
  }

  private pluginVersions(it: Item): void {
    const node = it.keys.get('required_plugin_versions');
    const raw = this.js(node);
    if (!Array.isArray(raw)) {
      this.error(this.posOf(it, node), 'required_plugin_versions must be a list of {name, version}');
      return;
    }
    (raw as Array<Record<string, unknown>>).forEach((req, i) => {
      const at = this.posOf(it, isSeq(node) ? ((node as YAMLSeq).items[i] as YNode) : node);
      if (!req || typeof req.name !== 'string' || req.version === undefined) {
        this.error(at, 'each required_plugin_versions entry needs a name and a version');
        return;
      }
      const alts = [{ name: req.name, version: String(req.version) }];
      if (Array.isArray(req.alternatives)) {
        for (const a of req.alternatives as Array<Record<string, unknown>>) {
          if (a && typeof a.name === 'string') alts.push({ name: a.name, version: String(a.version ?? '0.0.0') });
        }
      }
      if (!alts.some((a) => pluginSatisfies(this.opts.plugins, a.name, a.version))) {
        const have = alts.map((a) => this.opts.plugins.find((p) => p.name === a.name)).find(Boolean);
        const why = have ? ` (minewatch has ${have.name} ${have.version})` : '';
        this.error(
          at,
          `Plugin requirement not satisfied, must load one of: ${alts.map((a) => `${a.name} (>= ${a.version})`).join(', ')}${why}`,
          req.name as string,
        );
      }
    });
  }

  private list(it: Item): boolean {
    const name = this.str(it, 'list');
    if (!name) {
      this.error(it.pos, "a list needs a name: '- list: my_list'");
      return false;
    }
    this.checkKeys(it, LIST_KEYS, name);
    const existing = this.lists.get(name);
    const modes = this.overrides(it, 'list', name, !!existing);
    if (modes === null) return false;
    const items = this.strList(it, 'items', name);
    if (items === undefined) {
      if (!it.keys.has('items')) this.error(it.pos, `list '${name}' has no 'items'`, name, name);
      return false;
    }
    // Falco lets an item carry its own quotes ('"sh -c"'): they delimit it, they are not part of it.
    const clean = items.map((s) => (s.length >= 2 && (s[0] === '"' || s[0] === "'") && s.at(-1) === s[0] ? s.slice(1, -1) : s));
    // A loop, not push(...clean): spreading a list of 100k+ items overflows the call stack.
    if (existing && modes && (modes.size === 0 || modes.get('items') === 'append')) for (const x of clean) existing.items.push(x);
    else this.lists.set(name, { items: clean, pos: it.pos });
    return true;
  }

  private macro(it: Item): boolean {
    const name = this.str(it, 'macro');
    if (!name) {
      this.error(it.pos, "a macro needs a name: '- macro: my_macro'");
      return false;
    }
    this.checkKeys(it, MACRO_KEYS, name);
    const existing = this.macros.get(name);
    const modes = this.overrides(it, 'macro', name, !!existing);
    if (modes === null) return false;
    const cond = this.str(it, 'condition', name);
    if (cond === undefined) {
      if (!it.keys.has('condition')) this.error(it.pos, `macro '${name}' has no 'condition'`, name, name);
      return false;
    }
    const piece = { text: cond, locate: this.locator(it, 'condition') };
    if (existing && modes && (modes.size === 0 || modes.get('condition') === 'append')) existing.pieces.push(piece);
    else this.macros.set(name, { pieces: [piece], pos: it.pos });
    return true;
  }

  private exceptions(it: Item, name: string): ExceptionDef[] | undefined {
    if (!it.keys.has('exceptions')) return undefined;
    const node = it.keys.get('exceptions');
    const raw = this.js(node);
    if (raw === null) return [];
    if (!Array.isArray(raw) || !isSeq(node)) {
      this.error(this.posOf(it, node), "'exceptions' must be a list of {name, fields, comps, values}", 'exceptions', name);
      return undefined;
    }
    const out: ExceptionDef[] = [];
    (raw as unknown[]).forEach((e, i) => {
      const pos = this.posOf(it, (node as YAMLSeq).items[i] as YNode);
      if (!e || typeof e !== 'object' || typeof (e as { name?: unknown }).name !== 'string') {
        this.error(pos, 'each exception needs a name', undefined, name);
        return;
      }
      const ex = e as Record<string, unknown>;
      out.push({
        name: ex.name as string,
        fields: (ex.fields ?? []) as string[] | string,
        comps: (ex.comps ?? []) as string[] | string,
        values: Array.isArray(ex.values) ? ex.values : ex.values === undefined || ex.values === null ? [] : [ex.values],
        pos,
      });
    });
    return out;
  }

  private rule(it: Item): boolean {
    const name = this.str(it, 'rule');
    if (!name) {
      this.error(it.pos, "a rule needs a name: '- rule: My rule'");
      return false;
    }
    this.checkKeys(it, RULE_KEYS, name);
    const existing = this.rules.get(name);
    const keys = [...it.keys.keys()];
    // `- rule: X` + `enabled: …` alone toggles an earlier rule, as in Falco.
    if (existing && !it.keys.has('override') && !it.keys.has('append') && keys.every((k) => k === 'rule' || k === 'enabled') && it.keys.has('enabled')) {
      const en = this.bool(it, 'enabled', name);
      if (en !== undefined) existing.enabled = en;
      return true;
    }
    const modes = this.overrides(it, 'rule', name, !!existing);
    if (modes === null) return false;
    const exc = this.exceptions(it, name);
    if (existing && modes) {
      const legacyAppend = modes.size === 0;
      const mode = (k: string): 'append' | 'replace' | undefined => (legacyAppend ? (k === 'condition' || k === 'exceptions' ? 'append' : undefined) : modes.get(k));
      if (legacyAppend) {
        for (const k of keys) {
          if (!['rule', 'append', 'condition', 'exceptions', 'enabled'].includes(k)) {
            this.warn(this.posOf(it, it.keys.get(k)), `'${k}' is ignored with 'append: true' (only condition and exceptions append); use 'override' instead`, k, name);
          }
        }
        const en = this.bool(it, 'enabled', name);
        if (en !== undefined) existing.enabled = en;
      }
      const cond = it.keys.has('condition') ? this.str(it, 'condition', name) : undefined;
      if (cond !== undefined) {
        const piece = { text: cond, locate: this.locator(it, 'condition') };
        if (mode('condition') === 'append') existing.condition.push(piece);
        else existing.condition = [piece];
      }
      if (it.keys.has('output') && mode('output')) {
        const out = this.str(it, 'output', name);
        if (out !== undefined) {
          const locate = this.locator(it, 'output');
          if (mode('output') === 'append') {
            // Offsets into the joined text map back to the file each part came from.
            const before = existing.output.length + 1;
            const prev = existing.outputLocate;
            existing.output = `${existing.output} ${out}`;
            existing.outputLocate = (at) => (at < before ? prev(at) : locate(at - before));
          } else {
            existing.output = out;
            existing.outputLocate = locate;
          }
          existing.outputPos = this.posOf(it, it.keys.get('output'));
        }
      }
      if (it.keys.has('desc') && mode('desc')) {
        const d = this.str(it, 'desc', name);
        if (d !== undefined) existing.desc = mode('desc') === 'append' ? `${existing.desc} ${d}` : d;
      }
      if (it.keys.has('tags') && mode('tags')) {
        const t = this.strList(it, 'tags', name);
        if (t) existing.tags = mode('tags') === 'append' ? [...existing.tags, ...t] : t;
      }
      if (it.keys.has('priority') && mode('priority')) {
        const p = this.priority(it, name);
        if (p) existing.priority = p;
      }
      for (const [k, prop] of [['enabled', 'enabled'], ['warn_evttypes', 'warnEvttypes'], ['skip-if-unknown-filter', 'skipIfUnknownFilter']] as const) {
        if (it.keys.has(k) && mode(k)) {
          const b = this.bool(it, k, name);
          if (b !== undefined) existing[prop] = b;
        }
      }
      if (exc && mode('exceptions')) {
        if (mode('exceptions') === 'replace') existing.exceptions = exc;
        else {
          for (const e of exc) {
            const prev = existing.exceptions.find((x) => x.name === e.name);
            if (prev) for (const v of e.values) prev.values.push(v);
            else existing.exceptions.push(e);
          }
        }
      }
      return true;
    }
    if (!existing && keys.every((k) => k === 'rule' || k === 'enabled')) {
      this.error(it.pos, `rule '${name}' only sets 'enabled', but no rule by that name is defined before it`, name, name);
      return false;
    }
    // A full definition (or a redefinition that replaces the earlier rule in place).
    let ok = true;
    for (const k of ['condition', 'output', 'desc', 'priority']) {
      if (!it.keys.has(k)) {
        this.error(it.pos, `rule '${name}' has no '${k}'`, name, name);
        ok = false;
      }
    }
    const cond = this.str(it, 'condition', name);
    const output = this.str(it, 'output', name);
    const desc = this.str(it, 'desc', name);
    const priority = this.priority(it, name);
    const tags = this.strList(it, 'tags', name) ?? [];
    const source = this.str(it, 'source', name) ?? 'syscall';
    const enabled = this.bool(it, 'enabled', name) ?? true;
    const warnEvttypes = this.bool(it, 'warn_evttypes', name) ?? true;
    const skip = this.bool(it, 'skip-if-unknown-filter', name) ?? false;
    if (!ok || cond === undefined || output === undefined || desc === undefined || !priority) return false;
    const def: RuleDef = {
      name, desc, output, priority, tags, source, enabled, warnEvttypes, skipIfUnknownFilter: skip,
      condition: [{ text: cond, locate: this.locator(it, 'condition') }],
      outputPos: this.posOf(it, it.keys.get('output')),
      outputLocate: this.locator(it, 'output'),
      exceptions: exc ?? [],
      pos: it.pos,
    };
    if (!existing) this.order.push(name);
    this.rules.set(name, def);
    return true;
  }

  private priority(it: Item, name: string): Priority | undefined {
    const s = this.str(it, 'priority', name);
    if (s === undefined) return undefined;
    const p = parsePriority(s);
    if (!p) {
      this.error(this.posOf(it, it.keys.get('priority')), `invalid priority '${s}': use one of EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFORMATIONAL (INFO), DEBUG`, s, name);
    }
    return p;
  }

  // ---- second pass: expand lists, parse macros, compile rules -------------------------------

  finish(): Ruleset {
    const lists = this.expandLists();
    const macros = new Map<string, MacroDef & { pieces: TextPiece[] }>();
    for (const [name, m] of this.macros) {
      const { text, locate } = joinedLocator(m.pieces);
      try {
        macros.set(name, { name, expr: parseCondition(text), locate, pieces: m.pieces });
      } catch (e) {
        if (!(e instanceof ConditionSyntaxError)) throw e;
        this.error(locate(e.at), `macro condition: ${e.message}`, e.snippet, name);
      }
    }
    const usedMacros = new Set<string>();
    const usedLists = new Set<string>();
    const compilers = new Map<string, ConditionCompiler>();
    const compilerFor = (source: string): ConditionCompiler => {
      let c = compilers.get(source);
      if (!c) {
        c = new ConditionCompiler({ registry: this.opts.registry, source, macros, lists, usedMacros, usedLists, memo: this.opts.memo });
        compilers.set(source, c);
      }
      return c;
    };
    const compiled: CompiledRule[] = [];
    const rules = this.order.map((n) => this.rules.get(n)!);
    for (const r of rules) {
      if (!this.opts.sources.has(r.source)) {
        this.warn(r.pos, `rule '${r.name}' is for source '${r.source}', which is not loaded; it is skipped`, r.source, r.name);
        continue;
      }
      const { text, locate } = joinedLocator(r.condition);
      let expr: Expr;
      try {
        expr = parseCondition(text);
      } catch (e) {
        if (!(e instanceof ConditionSyntaxError)) throw e;
        this.error(locate(e.at), e.message, e.snippet, r.name);
        continue;
      }
      try {
        const compiler = compilerFor(r.source);
        let ir: IR = compiler.toIR(expr, locate);
        const exc = this.exceptionIR(r, compiler);
        if (exc.length) ir = { k: 'and', items: [ir, { k: 'not', x: { k: 'or', items: exc } }] };
        const output = OutputFormat.compile(r.output, this.opts.registry, r.source, r.outputLocate, { memo: this.opts.memo });
        const { canTrue } = ConditionCompiler.types(ir);
        const evttypes = canTrue.neg ? undefined : new Set(canTrue.set);
        if (evttypes && evttypes.size === 0) {
          this.warn(r.pos, `rule '${r.name}' can never match: its condition excludes every event type`, undefined, r.name);
        } else if (!evttypes && r.warnEvttypes && r.source === 'syscall') {
          this.warn(r.pos, `rule '${r.name}' matches too many event types: it is evaluated for every event (add an evt.type test)`, undefined, r.name);
        }
        const excludedTypes = canTrue.neg && canTrue.set.size ? new Set(canTrue.set) : undefined;
        if (r.enabled) compiled.push({ def: r, evttypes, excludedTypes, condition: ir, output });
      } catch (e) {
        if (e instanceof RangeError) {
          // A blown stack (macros nested thousands deep): an error in this rule, not a crash.
          this.error(r.pos, `condition is too large or nests too deeply to compile (${e.message})`, undefined, r.name);
          continue;
        }
        if (!(e instanceof CompileError)) throw e;
        if (e.unknownField && r.skipIfUnknownFilter) {
          this.warn(e.pos, `rule '${r.name}' is skipped (skip-if-unknown-filter): ${e.message}`, e.snippet, r.name);
        } else this.error(e.pos, e.message, e.snippet, r.name);
      }
    }
    for (const [name, m] of this.macros) {
      if (!usedMacros.has(name) && macros.has(name)) this.warn(m.pos, `macro '${name}' is not used by any rule or macro`, name, name);
    }
    // Names that appear in another list's items, gathered once (a scan per list is quadratic).
    const namedByLists = new Set<string>();
    for (const [other, l] of this.lists) for (const item of l.items) if (item !== other) namedByLists.add(item);
    for (const [name, l] of this.lists) {
      if (!usedLists.has(name) && !namedByLists.has(name)) this.warn(l.pos, `list '${name}' is not used by any rule, macro or list`, name, name);
    }
    return { rules, compiled, macros, lists, warnings: this.warnings, files: this.files };
  }

  /** Lists may name other lists (in any order of definition): expand them, refusing cycles. */
  private expandLists(): Map<string, string[]> {
    const done = new Map<string, string[]>();
    const visiting = new Set<string>();
    const expand = (name: string): string[] => {
      const d = done.get(name);
      if (d) return d;
      const l = this.lists.get(name)!;
      if (visiting.has(name)) {
        this.error(l.pos, `list '${name}' contains itself (through other lists)`, name, name);
        return [];
      }
      if (visiting.size >= MAX_LIST_NESTING) {
        this.error(l.pos, `list '${name}' is nested more than ${MAX_LIST_NESTING} lists deep`, name, name);
        done.set(name, []);
        return [];
      }
      visiting.add(name);
      const out: string[] = [];
      for (const item of l.items) {
        // A loop, not push(...items): spreading a list of 100k+ items overflows the call stack.
        if (item !== name && this.lists.has(item)) for (const x of expand(item)) out.push(x);
        else out.push(item);
      }
      visiting.delete(name);
      done.set(name, out);
      return out;
    };
    for (const name of this.lists.keys()) expand(name);
    return done;
  }

  /** Exceptions become `and not (…or…)` on the rule, as Falco builds them. */
  private exceptionIR(r: RuleDef, compiler: ConditionCompiler): IR[] {
    const out: IR[] = [];
    for (const ex of r.exceptions) {
      const at = (): Position => ex.pos;
      const fail = (msg: string, snippet?: string): never => {
        throw new CompileError(`exception '${ex.name}': ${msg}`, ex.pos, snippet);
      };
      const single = typeof ex.fields === 'string';
      const fields = single ? [ex.fields as string] : (ex.fields as string[]);
      if (!Array.isArray(fields) || fields.length === 0 || fields.some((f) => typeof f !== 'string')) fail('needs fields: a field name or a list of them');
      let comps: string[];
      if (single) comps = [typeof ex.comps === 'string' ? ex.comps : Array.isArray(ex.comps) && ex.comps.length ? String(ex.comps[0]) : 'in'];
      else if (Array.isArray(ex.comps) && ex.comps.length) comps = ex.comps.map(String);
      else if (typeof ex.comps === 'string') comps = [ex.comps];
      else comps = fields.map(() => '=');
      if (comps.length !== fields.length) fail(`has ${fields.length} fields but ${comps.length} comps`);
      for (const c of comps) if (!VALID_OPS.has(c)) fail(`unknown comparison operator '${c}'`, c);
      if (single && !['in', 'pmatch', 'intersects'].includes(comps[0]!)) fail(`with a single field, comps must be in, pmatch or intersects (got '${comps[0]}')`, comps[0]);
      const fieldOps: FieldOperand[] = fields.map((f) => {
        try {
          return parseFieldName(f);
        } catch {
          return fail(`'${f}' is not a field name`, f);
        }
      });
      const lit = (v: unknown): Literal => ({ value: String(v), quoted: false, at: 0 });
      const build = (field: FieldOperand, op: Op, v: unknown): Expr => {
        const listOp = op === 'in' || op === 'pmatch' || op === 'intersects';
        if (listOp) {
          const items = Array.isArray(v) ? v.map(lit) : [lit(v)];
          return { kind: 'cmp', left: field, op, right: { kind: 'list', items, at: 0 }, at: 0, opAt: 0 };
        }
        if (Array.isArray(v) || (typeof v === 'object' && v !== null)) fail(`operator '${op}' takes a single value, got a list`, JSON.stringify(v));
        return { kind: 'cmp', left: field, op, right: op === 'exists' ? undefined : { kind: 'value', lit: lit(v) }, at: 0, opAt: 0 };
      };
      if (single) {
        if (ex.values.length === 0) continue;
        out.push(compiler.toIR(build(fieldOps[0]!, comps[0] as Op, ex.values), at));
        continue;
      }
      for (const tuple of ex.values) {
        if (!Array.isArray(tuple) || tuple.length !== fields.length) {
          fail(`each value must be a list of ${fields.length} item(s), matching fields [${fields.join(', ')}]`, JSON.stringify(tuple));
        }
        const parts = (tuple as unknown[]).map((v, i) => build(fieldOps[i]!, comps[i] as Op, v));
        out.push(compiler.toIR(parts.length === 1 ? parts[0]! : { kind: 'and', items: parts, at: 0 }, at));
      }
    }
    return out;
  }
}

/** Load rules files in order. Throws RulesLoadError (with every error and warning) on any error. */
export function loadRules(files: RulesFileInput[], opts: LoadOptions): Ruleset {
  const loader = new Loader(opts);
  for (const f of files) loader.loadFile(f);
  let result: Ruleset | undefined;
  if (loader.errors.length === 0) result = loader.finish();
  if (loader.errors.length) throw new RulesLoadError(loader.errors, loader.warnings);
  return result!;
}
