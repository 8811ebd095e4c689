/**
 * The collector stage: what the reader found, gathered across files the way Falco's
 * rule_loader::collector does it — define (a redefinition replaces in place), append, selective
 * replace (override), enable. Every problem here is LOAD_ERR_VALIDATE. Nothing is compiled yet.
 */
import type { FieldRegistry } from '../../fields/registry.js';
import { LIST_OPS, NUM_OPS, STR_OPS } from '../ast.js';
import type { Locator } from '../compiler.js';
import { parseFieldName } from '../parser.js';
import type { Position, Priority } from '../types.js';
import { LoadFailure, type Problems } from './codes.js';
import { MappedText } from './text.js';

/** An exception's fields, comps or one value: a string, or a list of them (nested for values). */
export interface Entry {
  isList: boolean;
  item: string;
  items: Entry[];
}

export interface ExceptionDef {
  name: string;
  fields?: Entry;
  comps?: Entry;
  values: Entry[];
  pos: Position;
}

export interface ListInfo {
  name: string;
  items: string[];
  pos: Position;
  /** Definition order (kept by a redefinition) and the id of the last change: Falco's visibility. */
  index: number;
  visibility: number;
}

export interface MacroInfo {
  name: string;
  cond: MappedText;
  pos: Position;
  index: number;
  visibility: number;
}

export interface RuleDef {
  name: string;
  desc: string;
  condition: MappedText;
  output: string;
  outputPos: Position;
  outputLocate: Locator;
  priority: Priority;
  enabled: boolean;
  /** A set, as in Falco: sorted, each tag once. */
  tags: string[];
  source: string;
  exceptions: ExceptionDef[];
  warnEvttypes: boolean;
  skipIfUnknownFilter: boolean;
  /** The rule's source is not loaded: it is kept (later items may change it) but not compiled. */
  unknownSource: boolean;
  pos: Position;
}

/** A rule item that changes an existing rule (append: true, or override). */
export interface RuleUpdate {
  name: string;
  source: string;
  pos: Position;
  condition?: MappedText;
  output?: { text: string; pos: Position; locate: Locator };
  desc?: string;
  tags?: string[];
  exceptions?: ExceptionDef[];
  priority?: Priority;
  enabled?: boolean;
  warnEvttypes?: boolean;
  skipIfUnknownFilter?: boolean;
}

export interface FileStats {
  path: string;
  rules: number;
  macros: number;
  lists: number;
  requiredEngineVersion?: string;
}

const SUPPORTED_OPS = new Set<string>(['exists', ...NUM_OPS, ...STR_OPS, ...LIST_OPS]);
const ERR_NO_PREVIOUS_LIST = "List uses 'append' or 'override.items: append' but no list by that name already exists";
const ERR_NO_PREVIOUS_MACRO = "Macro uses 'append' or 'override.condition: append' but no macro by that name already exists";
const ERR_NO_PREVIOUS_RULE_APPEND = "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists";
const ERR_NO_PREVIOUS_RULE_REPLACE = "An 'override.<key>: replace' to a rule was requested but no rule by that name already exists";

function fail(message: string, pos: Position, snippet?: string): never {
  throw new LoadFailure('LOAD_ERR_VALIDATE', message, pos, snippet);
}

export function sortedTags(tags: Iterable<string>): string[] {
  return [...new Set(tags)].sort();
}

export class Collector {
  readonly lists = new Map<string, ListInfo>();
  readonly macros = new Map<string, MacroInfo>();
  readonly rules = new Map<string, RuleDef>();
  private next = 0;

  constructor(
    private readonly registry: FieldRegistry,
    private readonly sources: ReadonlySet<string>,
    /** Where problems go: the loader points it at the problems of the file being read. */
    public problems: Problems,
  ) {}

  defineList(name: string, items: string[], pos: Position): void {
    const id = this.next++;
    const prev = this.lists.get(name);
    this.lists.set(name, { name, items, pos, index: prev ? prev.index : id, visibility: id });
  }

  appendList(name: string, items: string[], pos: Position): void {
    const prev = this.lists.get(name);
    if (!prev) fail(ERR_NO_PREVIOUS_LIST, pos, name);
    for (const x of items) prev.items.push(x); // not push(...items): 100k items overflow the stack
    prev.visibility = this.next++;
  }

  defineMacro(name: string, cond: MappedText, pos: Position): void {
    const id = this.next++;
    const prev = this.macros.get(name);
    this.macros.set(name, { name, cond, pos, index: prev ? prev.index : id, visibility: id });
  }

  appendMacro(name: string, cond: MappedText, pos: Position): void {
    const prev = this.macros.get(name);
    if (!prev) fail(ERR_NO_PREVIOUS_MACRO, pos, name);
    prev.cond = MappedText.join([prev.cond, cond]);
    prev.visibility = this.next++;
  }

  private prevRule(name: string, source: string, pos: Position): RuleDef | undefined {
    const prev = this.rules.get(name);
    if (prev && prev.source !== '' && source !== '' && prev.source !== source) fail('Rule has been re-defined with a different source', pos, source);
    return prev;
  }

  defineRule(def: RuleDef): void {
    this.prevRule(def.name, def.source, def.pos);
    def.unknownSource = !this.sources.has(def.source);
    if (def.unknownSource) {
      this.problems.warn('LOAD_UNKNOWN_SOURCE', def.pos, `Unknown source ${def.source}, skipping`, { snippet: def.source, item: def.name, itemType: 'rule' });
    }
    for (const ex of def.exceptions) {
      if (!ex.fields) fail('Rule exception item must have fields property with a list of fields', ex.pos, ex.name);
      this.validateException(def.unknownSource ? undefined : def.source, ex);
    }
    this.next++;
    this.rules.set(def.name, def);
  }

  appendRule(u: RuleUpdate): void {
    const prev = this.prevRule(u.name, u.source, u.pos);
    if (!prev) fail(ERR_NO_PREVIOUS_RULE_APPEND, u.pos, u.name);
    if (!hasAnyValue(u)) fail('Appended rule must have exceptions or condition property', u.pos, u.name);
    const source = prev.unknownSource ? undefined : prev.source;
    if (u.condition && u.condition.text !== '') prev.condition = MappedText.join([prev.condition, u.condition]);
    if (u.output && u.output.text !== '') {
      // Offsets into the joined text map back to the file each part came from.
      const before = prev.output.length + 1;
      const prevLocate = prev.outputLocate;
      const locate = u.output.locate;
      prev.output = `${prev.output} ${u.output.text}`;
      prev.outputLocate = (at) => (at < before ? prevLocate(at) : locate(at - before));
      prev.outputPos = u.output.pos;
    }
    if (u.desc) prev.desc = `${prev.desc} ${u.desc}`;
    if (u.tags) prev.tags = sortedTags([...prev.tags, ...u.tags]);
    for (const ex of u.exceptions ?? []) {
      const same = prev.exceptions.find((x) => x.name === ex.name);
      if (!same) {
        if (!ex.fields) fail('Rule exception must have fields property with a list of fields', ex.pos, ex.name);
        if (ex.values.length === 0) fail('Rule exception must have values property with a list of values', ex.pos, ex.name);
        this.validateException(source, ex);
        prev.exceptions.push(ex);
      } else {
        if (ex.fields) fail('Can not append exception fields to existing exception, only values', ex.pos, ex.name);
        if (ex.comps) fail('Can not append exception comps to existing exception, only values', ex.pos, ex.name);
        for (const v of ex.values) same.values.push(v);
      }
    }
    this.next++;
  }

  replaceRule(u: RuleUpdate): void {
    const prev = this.prevRule(u.name, u.source, u.pos);
    if (!prev) fail(ERR_NO_PREVIOUS_RULE_REPLACE, u.pos, u.name);
    if (!hasAnyValue(u)) fail('The rule must have at least one field that can be replaced', u.pos, u.name);
    if (u.condition) prev.condition = u.condition;
    if (u.output) {
      prev.output = u.output.text;
      prev.outputLocate = u.output.locate;
      prev.outputPos = u.output.pos;
    }
    if (u.desc !== undefined) prev.desc = u.desc;
    if (u.tags) prev.tags = sortedTags(u.tags);
    if (u.exceptions) {
      // Falco takes replaced exceptions unchecked (and then writes `field  (value)` for missing
      // comps): they get the same checks and defaults as defined ones instead.
      for (const ex of u.exceptions) {
        if (!ex.fields) fail('Rule exception item must have fields property with a list of fields', ex.pos, ex.name);
        this.validateException(prev.unknownSource ? undefined : prev.source, ex);
      }
      prev.exceptions = u.exceptions;
    }
    if (u.priority) prev.priority = u.priority;
    if (u.enabled !== undefined) prev.enabled = u.enabled;
    if (u.warnEvttypes !== undefined) prev.warnEvttypes = u.warnEvttypes;
    if (u.skipIfUnknownFilter !== undefined) prev.skipIfUnknownFilter = u.skipIfUnknownFilter;
    this.next++;
  }

  enableRule(name: string, enabled: boolean, pos: Position): void {
    const prev = this.rules.get(name);
    if (!prev) fail("Rule has 'enabled' key but no rule by that name already exists", pos, name);
    prev.enabled = enabled;
  }

  /** Falco's validate_exception_info: comps default and shape, known operators and fields. */
  private validateException(source: string | undefined, ex: ExceptionDef): void {
    const fields = ex.fields!;
    if (fields.isList) {
      if (!ex.comps) ex.comps = { isList: true, item: '', items: fields.items.map(() => ({ isList: false, item: '=', items: [] })) };
      if (fields.items.length !== ex.comps.items.length) fail('Fields and comps lists must have equal length', ex.pos, ex.name);
      for (const c of ex.comps.items) if (!SUPPORTED_OPS.has(c.item)) fail(`'${c.item}' is not a supported comparison operator`, ex.pos, c.item);
      if (source) for (const f of fields.items) this.checkField(source, f.item, ex.pos);
    } else {
      if (!ex.comps) ex.comps = { isList: false, item: 'in', items: [] };
      if (ex.comps.isList) fail('Fields and comps must both be strings', ex.pos, ex.name);
      const c = ex.comps.item;
      if (c !== 'in' && c !== 'pmatch' && c !== 'intersects') fail('When fields is a single value, comps must be one of (in, pmatch, intersects)', ex.pos, c);
      if (source) this.checkField(source, fields.item, ex.pos);
    }
  }

  private checkField(source: string, field: string, pos: Position): void {
    try {
      const f = parseFieldName(field);
      const plain = f.kind === 'field' ? f : undefined;
      if (plain) this.registry.resolve(source, plain.name, plain.arg);
    } catch {
      fail(`'${field}' is not a supported filter field`, pos, field);
    }
  }
}

function hasAnyValue(u: RuleUpdate): boolean {
  return u.condition !== undefined || u.output !== undefined || u.desc !== undefined || u.tags !== undefined ||
    u.exceptions !== undefined || u.priority !== undefined || u.enabled !== undefined ||
    u.warnEvttypes !== undefined || u.skipIfUnknownFilter !== undefined;
}
