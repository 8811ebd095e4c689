/**
 * The reader stage: YAML text → items handed to the collector, with positions and Falco's shape
 * checks (rule_loader::reader). Several YAML documents per file; null items skipped. A YAML syntax
 * error is LOAD_ERR_YAML_PARSE and stops the file; a badly shaped item is LOAD_ERR_YAML_VALIDATE
 * and stops that item (the others are still read, so one run reports them all).
 */
import { type Document, LineCounter, type YAMLMap, isAlias, isMap, isScalar, isSeq, parseAllDocuments, type Node as YNode } from 'yaml';
import type { Locator } from '../compiler.js';
import { PRIORITIES, type Position, type Priority } from '../types.js';
import { ENGINE_VERSION, compareVersions, parseEngineVersion, pluginSatisfies, type BuiltinPlugin } from '../version.js';
import { LoadFailure, type ItemType, type Problems } from './codes.js';
import { type Collector, type Entry, type ExceptionDef, type FileStats, type RuleDef, type RuleUpdate, sortedTags } from './collector.js';
import { MappedText } from './text.js';

export interface RulesFileInput {
  path: string;
  text: string;
}

interface Src {
  path: string;
  text: string;
  lc: LineCounter;
  doc: Document;
}

interface Item {
  src: Src;
  map: YAMLMap;
  pos: Position;
  keys: Map<string, YNode | null>;
}

const RULE_APPEND_KEYS = ['condition', 'output', 'desc', 'tags', 'exceptions'];
const RULE_REPLACE_KEYS = ['condition', 'output', 'desc', 'priority', 'capture', 'capture_duration', 'tags', 'exceptions', 'enabled', 'warn_evttypes', 'skip-if-unknown-filter'];
const RGX_IDENTIFIER = /^[a-zA-Z]+[a-zA-Z0-9_]*$/;
const RGX_BARESTR = /^[^()"' \t\n\v\f\r=,]+$/;
const WARN_APPEND = "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.";
const WARN_ENABLED = "The standalone 'enabled' key usage is deprecated. The correct approach requires also a 'replace' entry under the 'override' key (i.e. 'enabled: replace').";
const ERR_OVERRIDE_APPEND = "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.";
/** yaml-cpp's convert<bool> spellings. */
const TRUE = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON']);
const FALSE = new Set(['n', 'N', 'no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF']);
/** Exception values nest lists in lists: more nodes than this (an alias bomb) is an error. */
const MAX_VALUE_NODES = 1_000_000;

/**
 * Falco's parse_priority: the eight names in any case, and "info" for Informational. Nothing
 * else (no WARN, no surrounding blanks).
 */
function parseRulePriority(s: string): Priority | undefined {
  const u = s.toUpperCase();
  if (u === 'INFO') return 'INFORMATIONAL';
  return (PRIORITIES as readonly string[]).includes(u) ? (u as Priority) : undefined;
}

export class Reader {
  constructor(
    private readonly collector: Collector,
    private readonly problems: Problems,
    private readonly plugins: readonly BuiltinPlugin[],
  ) {}

  /** Read one file into the collector; false when the file had an error. */
  read(f: RulesFileInput, stats: FileStats): boolean {
    const lc = new LineCounter();
    const docs = parseAllDocuments(f.text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
    const list = Array.isArray(docs) ? docs : [docs];
    let ok = true;
    for (const doc of list) {
      for (const e of doc.errors) {
        const lp = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
        this.problems.error('LOAD_ERR_YAML_PARSE', { file: f.path, line: lp.line, col: lp.col }, `invalid YAML: ${e.message.split('\n')[0]}`, { itemType: 'rules content' });
        ok = false;
      }
    }
    if (!ok) return false;
    for (const doc of list) {
      const src: Src = { path: f.path, text: f.text, lc, doc };
      const root = this.deref(src, doc.contents);
      if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) continue;
      if (!isSeq(root)) {
        const what = isMap(root) ? 'Rules content is not yaml array of objects' : 'Rules content is not yaml';
        this.problems.error('LOAD_ERR_YAML_VALIDATE', this.posOf(src, root), `${what}: a rules file is a YAML sequence of items (- rule: …, - macro: …, - list: …)`, { itemType: 'rules content' });
        ok = false;
        continue;
      }
      for (const node of root.items) {
        let n: YNode | null = null;
        try {
          n = this.deref(src, node as YNode | null);
          // Falco skips null items (the k8saudit plugin's rules file 0.6.0 holds one).
          if (n === null || (isScalar(n) && n.value === null)) continue;
          this.item(src, n, stats);
        } catch (e) {
          if (!(e instanceof LoadFailure)) throw e;
          this.problems.error(e.code, e.pos, e.message, { snippet: e.snippet, item: n ? itemName(n) : undefined, itemType: e.itemType });
          ok = false;
        }
      }
    }
    return ok;
  }

  /** A node, through its alias if it is one; an alias with no anchor is a YAML error, as in yaml-cpp. */
  private deref(src: Src, v: unknown): YNode | null {
    if (isAlias(v)) {
      const target = v.resolve(src.doc) as YNode | undefined;
      if (!target) throw new LoadFailure('LOAD_ERR_YAML_PARSE', `invalid YAML: Unresolved alias *${v.source}`, this.posOf(src, v as unknown as YNode), `*${v.source}`, 'rules content');
      return target;
    }
    return (v as YNode | null | undefined) ?? null;
  }

  private posOf(src: Src, node: YNode | null | undefined): Position {
    const lp = src.lc.linePos(node?.range?.[0] ?? 0);
    return { file: src.path, line: lp.line, col: lp.col };
  }

  // ---- typed access, with Falco's messages (decode_val, decode_seq) -----------------------

  private fail(it: Item, node: YNode | null | undefined, message: string, snippet?: string, itemType?: ItemType): never {
    throw new LoadFailure('LOAD_ERR_YAML_VALIDATE', message, node ? this.posOf(it.src, node) : it.pos, snippet, itemType);
  }

  /** A mapping's values by key, aliases resolved (a repeated key keeps its last value). */
  private keysOf(src: Src, map: YAMLMap): Map<string, YNode | null> {
    const keys = new Map<string, YNode | null>();
    for (const pair of map.items) {
      const k = this.deref(src, pair.key as YNode);
      keys.set(isScalar(k) ? this.scalarText(k) : String(k), this.deref(src, pair.value as YNode | null));
    }
    return keys;
  }

  /** A scalar as text (numbers and booleans as written). */
  private scalarText(node: YNode): string {
    const s = node as { value: unknown; source?: string };
    if (typeof s.value === 'string') return s.value;
    return typeof s.source === 'string' ? s.source : String(s.value);
  }

  private scalar(it: Item, key: string, opts: { optional?: boolean; canBeEmpty?: boolean } = {}): string | undefined {
    if (!it.keys.has(key)) {
      if (opts.optional) return undefined;
      this.fail(it, null, `Item has no mapping for key '${key}'`, key);
    }
    const node = it.keys.get(key) ?? null;
    if (node === null || (isScalar(node) && node.value === null)) {
      if (opts.canBeEmpty) return '';
      this.fail(it, node, `Mapping for key '${key}' is empty`, key);
    }
    if (!isScalar(node)) this.fail(it, node, `Value is not a scalar value`, key, 'value for');
    const v = this.scalarText(node);
    if (v === '') {
      if (opts.canBeEmpty) return '';
      this.fail(it, node, `Value must be non-empty`, key, 'value for');
    }
    return v;
  }

  private bool(it: Item, key: string, optional = true): boolean | undefined {
    const v = this.scalar(it, key, { optional });
    if (v === undefined) return undefined;
    if (TRUE.has(v)) return true;
    if (FALSE.has(v)) return false;
    this.fail(it, it.keys.get(key), `Can't decode YAML scalar value: '${key}' must be true or false`, v, 'value for');
  }

  private seq(it: Item, key: string, optional: boolean): string[] | undefined {
    if (!it.keys.has(key)) {
      if (optional) return undefined;
      this.fail(it, null, `Item has no mapping for key '${key}'`, key);
    }
    const node = it.keys.get(key) ?? null;
    if (!isSeq(node)) this.fail(it, node, 'Value is not a sequence', key, 'value for');
    const out: string[] = [];
    for (const x of node.items) {
      const v = this.deref(it.src, x as YNode | null);
      if (!isScalar(v) || v.value === null) this.fail(it, v ?? node, 'sequence value is not scalar', undefined, 'list item');
      out.push(this.scalarText(v));
    }
    return out;
  }

  private locator(it: Item, key: string): Locator {
    return scalarLocator(it.src, it.keys.get(key));
  }

  private text(it: Item, key: string, value: string): MappedText {
    return MappedText.of(value, this.locator(it, key));
  }

  /** The override map: per key, append or replace (decode_overrides). */
  private overrides(it: Item, appendable: readonly string[], replaceable: readonly string[]): { append: Set<string>; replace: Set<string> } {
    const append = new Set<string>();
    const replace = new Set<string>();
    if (!it.keys.has('override')) return { append, replace };
    const node = it.keys.get('override') ?? null;
    if (node === null) return { append, replace };
    if (!isMap(node)) this.fail(it, node, "'override' must map keys to append or replace, e.g. {condition: append}", 'override', 'overrides');
    for (const pair of node.items) {
      const k = this.deref(it.src, pair.key as YNode);
      const v = this.deref(it.src, pair.value as YNode | null);
      const key = isScalar(k) ? this.scalarText(k) : String(k);
      const op = isScalar(v) ? this.scalarText(v) : '';
      if (op === 'append') {
        if (!appendable.includes(key)) this.fail(it, k, `Key '${key}' cannot be appended to, use 'replace' instead`, key, 'overrides');
        append.add(key);
      } else if (op === 'replace') {
        if (!replaceable.includes(key)) this.fail(it, k, `Key '${key}' cannot be replaced`, key, 'overrides');
        replace.add(key);
      } else {
        const allowed = [appendable.includes(key) ? 'append' : '', replaceable.includes(key) ? 'replace' : ''].filter(Boolean).join(' ');
        this.fail(it, v ?? k, `Invalid override operation for key '${key}': '${op}'. Allowed values are: ${allowed}`, op, 'overrides');
      }
    }
    return { append, replace };
  }

  /** The deprecated `append: true` (warned about) and the override map: not both on one item. */
  private appendOrOverride(it: Item, name: string, itemType: 'list' | 'macro' | 'rule', appendable: readonly string[], replaceable: readonly string[]): { legacyAppend: boolean; append: Set<string>; replace: Set<string> } {
    const legacyAppend = this.bool(it, 'append') ?? false;
    if (legacyAppend) this.problems.warn('LOAD_DEPRECATED_ITEM', it.pos, WARN_APPEND, { item: name, itemType });
    const o = this.overrides(it, appendable, replaceable);
    if (legacyAppend && (o.append.size || o.replace.size)) this.fail(it, null, ERR_OVERRIDE_APPEND, 'override', itemType);
    return { legacyAppend, ...o };
  }

  // ---- items -------------------------------------------------------------------------------

  private item(src: Src, n: YNode, stats: FileStats): void {
    if (!isMap(n)) {
      throw new LoadFailure('LOAD_ERR_YAML_VALIDATE', 'Unexpected element type. Each element should be a yaml associative array (such as "- rule: name").', this.posOf(src, n), undefined, 'rules content item');
    }
    const keys = this.keysOf(src, n);
    const it: Item = { src, map: n, pos: this.posOf(src, n), keys };
    if (keys.has('required_engine_version')) this.engineVersion(it, stats);
    else if (keys.has('required_plugin_versions')) this.pluginVersions(it);
    else if (keys.has('list')) {
      this.list(it);
      stats.lists++;
    } else if (keys.has('macro')) {
      this.macro(it);
      stats.macros++;
    } else if (keys.has('rule')) {
      this.rule(it);
      stats.rules++;
    } else {
      this.problems.warn('LOAD_UNKNOWN_ITEM', it.pos, `Unknown top level item (keys: ${[...keys.keys()].join(', ')}); it is ignored`, { itemType: 'rules content item' });
    }
  }

  private engineVersion(it: Item, stats: FileStats): void {
    const node = it.keys.get('required_engine_version');
    const raw = isScalar(node) ? node.value : undefined;
    const v = parseEngineVersion(raw);
    if (!v) this.fail(it, node, `Unable to parse engine version '${String(raw)}': use an integer (e.g. 15) or a semver string (e.g. 0.57.0)`, String(raw), 'required_engine_version');
    stats.requiredEngineVersion = v;
    if (compareVersions(v, ENGINE_VERSION) > 0) {
      throw new LoadFailure('LOAD_ERR_VALIDATE', `Rules require engine version ${v}, but engine version is ${ENGINE_VERSION}`, this.posOf(it.src, node), String(raw), 'required_engine_version');
    }
  }

  private pluginVersions(it: Item): void {
    const node = it.keys.get('required_plugin_versions') ?? null;
    if (!isSeq(node)) this.fail(it, node, 'Value of required_plugin_versions must be a sequence', undefined, 'required plugin versions');
    for (const x of node.items) {
      const e = this.deref(it.src, x as YNode | null);
      const at = this.posOf(it.src, e ?? node);
      if (!isMap(e)) throw new LoadFailure('LOAD_ERR_YAML_VALIDATE', 'Plugin version must be a mapping', at, undefined, 'required plugin versions entry');
      let req: Record<string, unknown>;
      try {
        req = e.toJS(it.src.doc, { maxAliasCount: 1000 }) as Record<string, unknown>;
      } catch (err) {
        throw new LoadFailure('LOAD_ERR_YAML_PARSE', `invalid YAML: ${(err as Error).message}`, at, undefined, 'required plugin versions entry');
      }
      if (typeof req.name !== 'string' || req.name === '') throw new LoadFailure('LOAD_ERR_YAML_VALIDATE', "Item has no mapping for key 'name'", at, undefined, 'required plugin versions entry');
      if (req.version === undefined || req.version === null || req.version === '') throw new LoadFailure('LOAD_ERR_YAML_VALIDATE', "Item has no mapping for key 'version'", at, req.name, 'required plugin versions entry');
      const alts = [{ name: req.name, version: String(req.version) }];
      if (Array.isArray(req.alternatives)) {
        for (const a of req.alternatives as Array<Record<string, unknown>>) {
          if (!a || typeof a.name !== 'string') throw new LoadFailure('LOAD_ERR_YAML_VALIDATE', 'Plugin version alternative must be a mapping with a name and a version', at, undefined, 'required plugin versions alternative');
          alts.push({ name: a.name, version: String(a.version ?? '0.0.0') });
        }
      }
      if (!alts.some((a) => pluginSatisfies(this.plugins, a.name, a.version))) {
        const have = alts.map((a) => this.plugins.find((p) => p.name === a.name)).find(Boolean);
        const why = have ? ` (minewatch has ${have.name} ${have.version})` : '';
        this.problems.error('LOAD_ERR_VALIDATE', at, `Plugin requirement not satisfied, must load one of: ${alts.map((a) => `${a.name} (>= ${a.version})`).join(', ')}${why}`, { snippet: req.name, itemType: 'required plugin versions entry' });
      }
    }
  }

  private list(it: Item): void {
    const name = this.scalar(it, 'list')!;
    if (!RGX_BARESTR.test(name)) {
      this.problems.warn('LOAD_INVALID_LIST_NAME', it.pos, 'List has an invalid name. List names should match a regular expression: ([^()"\'[:space:]=,]+)', { snippet: name, item: name, itemType: 'list' });
    }
    const items = this.seq(it, 'items', false)!;
    const o = this.appendOrOverride(it, name, 'list', ['items'], ['items']);
    if (o.legacyAppend || o.append.has('items')) this.collector.appendList(name, items, it.pos);
    else this.collector.defineList(name, items, it.pos);
  }

  private macro(it: Item): void {
    const name = this.scalar(it, 'macro')!;
    if (!RGX_IDENTIFIER.test(name)) {
      this.problems.warn('LOAD_INVALID_MACRO_NAME', it.pos, 'Macro has an invalid name. Macro names should match a regular expression: ([a-zA-Z]+[a-zA-Z0-9_]*)', { snippet: name, item: name, itemType: 'macro' });
    }
    const cond = this.text(it, 'condition', this.scalar(it, 'condition')!);
    const o = this.appendOrOverride(it, name, 'macro', ['condition'], ['condition']);
    if (o.legacyAppend || o.append.has('condition')) this.collector.appendMacro(name, cond, it.pos);
    else this.collector.defineMacro(name, cond, it.pos);
  }

  private rule(it: Item): void {
    const name = this.scalar(it, 'rule')!;
    const source = this.scalar(it, 'source', { optional: true, canBeEmpty: true }) ?? '';
    const o = this.appendOrOverride(it, name, 'rule', RULE_APPEND_KEYS, RULE_REPLACE_KEYS);

    if (o.append.size > 0 || o.replace.size > 0) {
      // Every overridable key present must be named under override, and the other way round.
      const expected = new Set([...RULE_APPEND_KEYS, ...RULE_REPLACE_KEYS].filter((k) => it.keys.has(k)));
      const take = (mode: 'append' | 'replace', set: Set<string>, key: string): boolean => {
        if (!set.has(key)) return false;
        if (!expected.has(key)) this.fail(it, it.keys.get('override'), `An ${mode} override for '${key}' was specified but '${key}' is not defined`, key, 'overrides');
        expected.delete(key);
        return true;
      };
      for (const [mode, set] of [['append', o.append], ['replace', o.replace]] as const) {
        if (set.size === 0) continue;
        const u: RuleUpdate = { name, source, pos: it.pos };
        if (take(mode, set, 'condition')) u.condition = this.text(it, 'condition', this.scalar(it, 'condition')!);
        if (take(mode, set, 'exceptions')) u.exceptions = this.exceptions(it, name, mode === 'append');
        if (take(mode, set, 'output')) u.output = this.output(it);
        if (take(mode, set, 'desc')) u.desc = this.scalar(it, 'desc')!;
        if (take(mode, set, 'tags')) u.tags = this.seq(it, 'tags', false)!;
        if (mode === 'replace') {
          if (take(mode, set, 'priority')) u.priority = this.priority(it);
          if (take(mode, set, 'capture')) this.bool(it, 'capture', false);
          if (take(mode, set, 'capture_duration')) this.scalar(it, 'capture_duration');
          if (take(mode, set, 'enabled')) u.enabled = this.bool(it, 'enabled', false);
          if (take(mode, set, 'warn_evttypes')) u.warnEvttypes = this.bool(it, 'warn_evttypes', false);
          if (take(mode, set, 'skip-if-unknown-filter')) u.skipIfUnknownFilter = this.bool(it, 'skip-if-unknown-filter', false);
          this.collector.replaceRule(u);
        } else this.collector.appendRule(u);
      }
      for (const key of expected) {
        this.fail(it, it.keys.get(key), `Unexpected key '${key}': no corresponding entry under 'override' is defined.`, key, 'overrides');
      }
      return;
    }
    if (o.legacyAppend) {
      // Only condition and exceptions append this way; other keys are read by nothing.
      const u: RuleUpdate = { name, source, pos: it.pos };
      if (it.keys.has('condition')) u.condition = this.text(it, 'condition', this.scalar(it, 'condition')!);
      if (it.keys.has('exceptions')) u.exceptions = this.exceptions(it, name, true);
      this.collector.appendRule(u);
      return;
    }
    if (!it.keys.has('condition') && !it.keys.has('output') && !it.keys.has('desc') && !it.keys.has('priority')) {
      // `- rule: X` with `enabled:` (other keys are read by nothing) toggles an earlier rule.
      const enabled = this.bool(it, 'enabled', false)!;
      this.problems.warn('LOAD_DEPRECATED_ITEM', it.pos, WARN_ENABLED, { item: name, itemType: 'rule' });
      this.collector.enableRule(name, enabled, it.pos);
      return;
    }
    const cond = this.scalar(it, 'condition')!;
    const output = this.output(it);
    const desc = this.scalar(it, 'desc')!;
    const priority = this.priority(it);
    const def: RuleDef = {
      name,
      desc,
      condition: this.text(it, 'condition', cond),
      output: output.text,
      outputPos: output.pos,
      outputLocate: output.locate,
      priority,
      source: this.scalar(it, 'source', { optional: true }) ?? 'syscall',
      enabled: this.bool(it, 'enabled') ?? true,
      warnEvttypes: this.bool(it, 'warn_evttypes') ?? true,
      skipIfUnknownFilter: this.bool(it, 'skip-if-unknown-filter') ?? false,
      tags: sortedTags(this.seq(it, 'tags', true) ?? []),
      exceptions: [],
      unknownSource: false,
      pos: it.pos,
    };
    if (it.keys.has('capture')) this.bool(it, 'capture');
    def.exceptions = this.exceptions(it, name, false) ?? [];
    this.collector.defineRule(def);
  }

  /** The output, trimmed as Falco trims it (a `>` or `|` block's newline is not part of it). */
  private output(it: Item): { text: string; pos: Position; locate: Locator } {
    const raw = this.scalar(it, 'output')!;
    const lead = raw.length - raw.trimStart().length;
    const locate = this.locator(it, 'output');
    return { text: raw.trim(), pos: this.posOf(it.src, it.keys.get('output')), locate: (at) => locate(at + lead) };
  }

  private priority(it: Item): Priority {
    const s = this.scalar(it, 'priority')!;
    const p = parseRulePriority(s);
    if (!p) this.fail(it, it.keys.get('priority'), `Invalid priority '${s}': use one of Emergency, Alert, Critical, Error, Warning, Notice, Informational (or Info), Debug`, s, 'rule priority');
    return p;
  }

  /** read_rule_exceptions: shapes only; the collector checks fields and comps against the source. */
  private exceptions(it: Item, rule: string, append: boolean): ExceptionDef[] | undefined {
    if (!it.keys.has('exceptions')) return undefined;
    const node = it.keys.get('exceptions') ?? null;
    if (node === null) return [];
    if (!isSeq(node)) this.fail(it, node, 'Rule exceptions must be a sequence', 'exceptions', 'exceptions');
    const out: ExceptionDef[] = [];
    const budget = { left: MAX_VALUE_NODES };
    for (const x of node.items) {
      const e = this.deref(it.src, x as YNode | null);
      const pos = this.posOf(it.src, e ?? node);
      if (!isMap(e)) throw new LoadFailure('LOAD_ERR_YAML_VALIDATE', 'Rule exception must be a mapping', pos, undefined, 'exception');
      const keys = this.keysOf(it.src, e);
      const ex: Item = { src: it.src, map: e, pos, keys };
      const name = this.scalar(ex, 'name')!;
      if (out.some((o) => o.name === name)) {
        this.problems.warn('LOAD_EXCEPTION_NAME_NOT_UNIQUE', pos, `Multiple definitions of exception '${name}' in the same rule`, { snippet: name, item: rule, itemType: 'exception' });
      }
      const def: ExceptionDef = { name, values: [], pos };
      const fields = this.entry(ex, keys.get('fields'), 'fields', !keys.has('fields'), budget);
      if (fields) def.fields = fields;
      else if (!append) this.fail(ex, null, "Item has no mapping for key 'fields'", 'fields', 'exception');
      const comps = this.entry(ex, keys.get('comps'), 'comps', !keys.has('comps'), budget);
      if (comps) def.comps = comps;
      if (keys.has('values')) {
        const vals = keys.get('values') ?? null;
        if (!isSeq(vals)) this.fail(ex, vals, 'Rule exception values must be a sequence', 'values', 'exception values');
        for (const v of vals.items) {
          const entry = this.entry(ex, this.deref(it.src, v as YNode | null), '', false, budget);
          if (entry) def.values.push(entry);
        }
      } else if (append) {
        this.problems.warn('LOAD_APPEND_NO_VALUES', pos, 'Overriding/appending exception with no values', { snippet: name, item: rule, itemType: 'exception' });
      }
      out.push(def);
    }
    return out;
  }

  /** decode_exception_info_entry: a non-empty scalar, or a sequence of entries. */
  private entry(ex: Item, node: YNode | null | undefined, key: string, absent: boolean, budget: { left: number }): Entry | undefined {
    if (absent) return undefined;
    if (--budget.left < 0) this.fail(ex, node, 'exception values nest too many items (an alias bomb?)', key, 'exception value');
    const n = this.deref(ex.src, node ?? null);
    if (isScalar(n) && n.value !== null) {
      const item = this.scalarText(n);
      if (item === '') this.fail(ex, n, 'Value must be non-empty', key, 'exception value');
      return { isList: false, item, items: [] };
    }
    if (isSeq(n)) {
      const items: Entry[] = [];
      for (const x of n.items) {
        const e = this.entry(ex, x as YNode | null, key, false, budget);
        if (e) items.push(e);
      }
      return { isList: true, item: '', items };
    }
    // A null or a mapping: present but not usable (Falco leaves the entry invalid).
    return key === 'fields' || key === 'comps' ? undefined : { isList: false, item: '', items: [] };
  }
}

/** The name of a rule, macro or list item, for problems that stop it. */
function itemName(n: YNode): string | undefined {
  if (!isMap(n)) return undefined;
  for (const pair of n.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '';
    if ((k === 'rule' || k === 'macro' || k === 'list') && isScalar(pair.value)) return String(pair.value.value);
  }
  return undefined;
}

/**
 * Map offsets in a scalar's value back into the file. YAML folding and quoting change only blanks,
 * quotes and escapes, so the value's characters are walked against the raw source in order.
 */
function scalarLocator(src: { path: string; text: string; lc: LineCounter }, node: YNode | null | undefined): Locator {
  const start = node?.range?.[0] ?? 0;
  const end = node?.range?.[1] ?? start;
  let map: number[] | undefined;
  const toPos = (off: number): Position => {
    const lp = src.lc.linePos(off);
    return { file: src.path, line: lp.line, col: lp.col };
  };
  return (at: number) => {
    if (!node || !isScalar(node)) return toPos(start);
    if (!map) {
      const raw = src.text.slice(start, end);
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
