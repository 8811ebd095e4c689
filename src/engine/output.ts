/**
 * Falco output strings and the two wire shapes of an alert, Falco's text line and Falco's JSON
 * object, as libs' sinsp_evt_formatter and Falco's falco_formats make them:
 *
 * - `%proc.name`, `%proc.aname[2]`, `%evt.arg.mode`; a width, `%20proc.name`, pads the value with
 *   spaces or cuts it to 20 characters; transformers, `%toupper(proc.name)`, nest; a leading `*`
 *   is read (Falco always formats as if it were there: a missing value prints `<NA>`).
 *   `%(proc.name)` is also read (minewatch's older spelling).
 * - `%container.info` expands to nothing, with a warning (Falco dropped it with its container plugin).
 * - The output is trimmed of surrounding white space, as Falco's rules reader does.
 * - JSON values are libs' tojson: numbers and times are integers (the evt.time family is the
 *   event time in ns), list fields arrays, a field under a transformer its plain value.
 * - Falco's append_output (extra_output, extra_fields, suggested_output) on top of a rule's output.
 */
import type { Event } from '../events.js';
import type { EventMemo } from '../fields/memo.js';
import type { FieldRegistry } from '../fields/registry.js';
import { FieldResolveError } from '../fields/registry.js';
import { iso8601, timeOfDay } from '../fields/syscall.js';
import type { Extracted, Extractor, FieldType } from '../fields/types.js';
import { CompileError, type Locator } from './compiler.js';
import { toJsonText } from './json.js';
import { specialize } from './specialize.js';
import { TRANSFORMERS, type TransformerName, transformer } from './transformers.js';
import { type Match, type OutputScalar, type OutputValue, type Position, priorityLabel } from './types.js';

export type { OutputScalar, OutputValue } from './types.js';

const NA = '<NA>';

interface FieldPart {
  /** The JSON key: the field as written, without transformers ("proc.aname[2]"). */
  key: string;
  /** No transformer, no width, JSON value as extracted for text, numbers and booleans: render's short way. */
  simple: boolean;
  get: Extractor;
  /** The value printed: the transformers applied to get's value, innermost first. */
  shown: (v: Extracted) => Extracted;
  /** libs' token length: 0, or the width the text is padded or cut to. */
  width: number;
  json: (v: Extracted, ev: Event) => OutputValue;
}
type Part = string | FieldPart;

/** A field of append_output's extra_fields: a key with a format, or a field by its own name. */
export interface ExtraField {
  key: string;
  /** `format` gives text (the format rendered); `raw` the field's JSON value. */
  format?: string;
  raw?: boolean;
}

/** Matches a field name with an optional [argument] at the current position. */
const FIELD_AT = /[a-zA-Z][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_]+)+(?:\[[^\]]*\])?/y;

/** libs' evt.time family: text in outputs, the event time in ns in JSON (sinsp_filter_check_gen_event::extract_as_js). */
const EVENT_TIME_TEXT = new Set(['evt.time', 'evt.time.s', 'evt.time.iso8601', 'evt.datetime', 'evt.datetime.s']);
const INTEGER_TYPES: ReadonlySet<FieldType> = new Set(['int64', 'uint64', 'port', 'reltime', 'abstime']);

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
}

/** One value as libs prints it; undefined when missing. */
function textOf(v: Extracted): string | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.length ? `(${v.map(String).join(',')})` : undefined;
  return typeof v === 'string' ? v : String(v);
}

function scalarJson(v: string | number | bigint | boolean, integer: boolean): OutputScalar {
  if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
  if (integer && typeof v === 'string' && /^-?\d+$/.test(v)) return scalarJson(BigInt(v), true);
  return v;
}

/** A field's value in Falco's JSON (libs' tojson), by the field's type. */
function jsonOf(name: string, type: FieldType): (v: Extracted, ev: Event) => OutputValue {
  if (EVENT_TIME_TEXT.has(name)) return (v, ev) => (v === undefined ? null : scalarJson(ev.ts, true));
  const integer = INTEGER_TYPES.has(type);
  return (v) => {
    if (v === undefined) return null;
    if (Array.isArray(v)) return v.length ? v.map((x) => scalarJson(x, integer)) : null;
    return scalarJson(v, integer);
  };
}

/** Width in libs' sense: the text cut to, or padded with spaces to, `width` characters. */
function fit(s: string, width: number): string {
  return s.length >= width ? s.slice(0, width) : s + ' '.repeat(width - s.length);
}

/**
 * The same text as a property key the runtime has already seen (internalized): storing under it
 * needs no lookup of the key in the runtime's string table on every render.
 */
function internalized(key: string): string {
  return Object.keys({ [key]: null })[0]!;
}

export interface CompileOptions {
  /** Warnings found (%container.info), with where they are. */
  warn?: (message: string, pos: Position) => void;
  /** The engine's per-event cache: fields that share a parse of the event (mw.*) reuse the conditions'. */
  memo?: EventMemo;
}

export class OutputFormat {
  private constructor(
    private readonly parts: Part[],
    /** The fields the output names, as written (JSON keys), in order. */
    readonly fieldNames: string[],
    /** Keys and values for output_fields only (append_output's extra_fields). */
    private readonly extras: { key: string; value: (ev: Event) => OutputValue }[] = [],
  ) {}

  /** Compile an output string; an unknown field is an error at its place in the file. */
  static compile(fmt: string, registry: FieldRegistry, source: string, locate: Locator, opts: CompileOptions = {}): OutputFormat {
    const parts: Part[] = [];
    const names: string[] = [];
    let start = 0;
    let end = fmt.length;
    while (start < end && isSpace(fmt[start])) start++;
    while (end > start && isSpace(fmt[end - 1])) end--;
    // Falco formats with a leading '*' (print <NA> for what is missing) and adds one when absent.
    if (fmt[start] === '*') start++;
    const fail = (msg: string, at: number, snippet?: string): never => {
      throw new CompileError(`output: ${msg}`, locate(at), snippet);
    };
    let lit = '';
    for (let i = start; i < end; i++) {
      const c = fmt[i]!;
      if (c !== '%') {
        lit += c;
        continue;
      }
      if (i === end - 1) fail('an output cannot end with a %; write the field after it, e.g. %proc.name', i, '%');
      let j = i + 1;
      let width = 0;
      while (j < end && fmt[j]! >= '0' && fmt[j]! <= '9') width = width * 10 + Number(fmt[j++]);
      if (j > i + 1 && j === end) fail('an output cannot end with a width; write the field after it, e.g. %20proc.name', i, fmt.slice(i, end));
      // Transformers, outermost first: toupper(tolower(proc.name)).
      const fns: TransformerName[] = [];
      for (;;) {
        const fn = TRANSFORMERS.find((t) => fmt.startsWith(`${t}(`, j));
        if (!fn) break;
        fns.push(fn);
        j += fn.length + 1;
      }
      // minewatch's older %(field) spelling.
      const paren = fns.length === 0 && fmt[j] === '(';
      if (paren) j++;
      FIELD_AT.lastIndex = j;
      const m = j < end ? FIELD_AT.exec(fmt) : null;
      if (!m || m.index + m[0].length > end) {
        const shown = fmt.slice(i, j) + /^\s*[^\s%]*/.exec(fmt.slice(j, end))![0];
        fail(`'${shown}' is not a field: a % starts a field, e.g. %proc.name (see \`minewatch fields\`); libs has no way to print a lone %`, j, shown);
      }
      const token = m![0];
      const at = j;
      j += token.length;
      for (let k = 0; k < fns.length + (paren ? 1 : 0); k++) {
        if (fmt[j] !== ')') fail(`missing ')' after '${token}'`, j, fmt.slice(i, j + 1));
        j++;
      }
      i = j - 1;
      if (token === 'container.info' && fns.length === 0) {
        // Falco's loader drops %container.info (rule_loader_compiler.cpp) with this warning.
        opts.warn?.('%container.info is deprecated and expands to nothing (as in Falco); name the container fields you want, e.g. %container.id %container.name', locate(at));
        continue;
      }
      const br = token.indexOf('[');
      const name = br < 0 ? token : token.slice(0, br);
      const arg = br < 0 ? undefined : token.slice(br + 1, -1);
      let get: Extractor;
      let type: FieldType;
      let fieldName: string;
      try {
        const r = registry.resolve(source, name, arg, opts.memo);
        get = r.extract;
        type = r.def.type;
        fieldName = r.def.name;
      } catch (e) {
        if (e instanceof FieldResolveError) throw new CompileError(`output: ${e.message}`, locate(at), token);
        throw e;
      }
      const chain = fns.map(transformer).reverse();
      const shown = chain.length === 0 ? (v: Extracted) => v : (v: Extracted) => chain.reduce((x, f) => f(x), v);
      if (lit) parts.push(lit);
      lit = '';
      const jsonName = arg === undefined ? fieldName : token;
      const simple = fns.length === 0 && width === 0 && !EVENT_TIME_TEXT.has(jsonName) && !INTEGER_TYPES.has(type);
      parts.push({ key: internalized(token), simple, get, shown, width, json: jsonOf(jsonName, type) });
      if (!names.includes(token)) names.push(token);
    }
    if (lit) parts.push(lit);
    return new OutputFormat(parts, names);
  }

  /**
   * This output with Falco's append_output applied: each extra output appended after a space
   * (one whose fields this output already prints is left out, so no field prints twice), and the
   * extra fields added to output_fields.
   */
  withExtras(
    extraOutputs: readonly string[], extraFields: readonly ExtraField[], registry: FieldRegistry, source: string, locate: Locator,
    memo?: EventMemo,
  ): OutputFormat {
    let parts = this.parts;
    const names = [...this.fieldNames];
    for (const text of extraOutputs) {
      const extra = OutputFormat.compile(text, registry, source, locate, { memo });
      if (extra.fieldNames.length > 0 && extra.fieldNames.every((n) => names.includes(n))) continue;
      if (extra.parts.length === 0) continue;
      parts = [...parts, ' ', ...extra.parts];
      for (const n of extra.fieldNames) if (!names.includes(n)) names.push(n);
    }
    const extras = [...this.extras];
    for (const f of extraFields) {
      if (f.raw) {
        const one = OutputFormat.compile(`%${f.key}`, registry, source, locate, { memo }).parts[0] as FieldPart;
        extras.push({ key: f.key, value: (ev) => one.json(one.get(ev), ev) });
      } else {
        const fmt = OutputFormat.compile(f.format ?? '', registry, source, locate, { memo });
        extras.push({ key: f.key, value: (ev) => fmt.render(ev).text });
      }
    }
    return new OutputFormat(joinLiterals(parts), names, extras);
  }

  /** render() written out for this format (see specialized()), made on its first use. */
  private fast: ((ev: Event) => { text: string; fields: Record<string, OutputValue> }) | undefined;
  /** Formats rendered this many times get their own render function. */
  private renders = 0;

  render(ev: Event): { text: string; fields: Record<string, OutputValue> } {
    if (this.fast) return this.fast(ev);
    if (++this.renders === SPECIALIZE_AFTER) this.fast = specialized(this.parts, this.extras, (ev) => this.renderLoop(ev));
    return this.renderLoop(ev);
  }

  /** render() as a loop over the parts: for formats rendered once or twice, and for very long ones. */
  private renderLoop(ev: Event): { text: string; fields: Record<string, OutputValue> } {
    let text = '';
    const fields: Record<string, OutputValue> = {};
    const parts = this.parts;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (typeof p === 'string') {
        text += p;
        continue;
      }
      let v: Extracted;
      let shown: string;
      try {
        v = p.get(ev);
        if (p.simple) {
          // Most fields: text, a safe number or a boolean, printed and kept as they are.
          if (typeof v === 'string') {
            fields[p.key] = v;
            text += v;
            continue;
          }
          if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) {
            fields[p.key] = v;
            text += String(v);
            continue;
          }
        }
        shown = textOf(p.shown(v)) ?? NA;
      } catch {
        v = undefined; // an extractor must never take the engine down with it
        shown = NA;
      }
      fields[p.key] = p.json(v, ev);
      text += p.width === 0 ? shown : fit(shown, p.width);
    }
    for (const x of this.extras) {
      try {
        fields[x.key] = x.value(ev);
      } catch {
        fields[x.key] = null;
      }
    }
    return { text, fields };
  }
}

/** Renders before a format gets a function of its own: most rules match rarely or never. */
const SPECIALIZE_AFTER = 3;
/** Formats with more parts than this keep the loop (a bounded generated source). */
const SPECIALIZE_MAX_PARTS = 256;

/**
 * OutputFormat's render loop written out for one format, in a function of its own
 * (specialize.ts): each field part has call sites of its own for its getter, its transformers
 * and its JSON value, and a store to one key, instead of megamorphic calls in a loop shared by
 * every rule's format. Exactly the loop's steps per part, in order. The source holds only part
 * numbers: literals and keys are read from the parts.
 */
function specialized(
  parts: readonly Part[],
  extras: readonly { key: string; value: (ev: Event) => OutputValue }[],
  loop: (ev: Event) => { text: string; fields: Record<string, OutputValue> },
): ((ev: Event) => { text: string; fields: Record<string, OutputValue> }) | undefined {
  if (parts.length > SPECIALIZE_MAX_PARTS) return undefined;
  const decl: string[] = [];
  const body: string[] = [];
  parts.forEach((p, i) => {
    decl.push(`const p${i} = parts[${i}];`);
    if (typeof p === 'string') {
      body.push(`text += p${i};`);
      return;
    }
    decl.push(`const k${i} = p${i}.key, get${i} = p${i}.get, shown${i} = p${i}.shown, json${i} = p${i}.json, width${i} = p${i}.width;`);
    const simple = p.simple
      ? `if (typeof v === 'string') { fields[k${i}] = v; text += v; done = true; }
      else if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) { fields[k${i}] = v; text += String(v); done = true; }
      else `
      : '';
    body.push(`{
    let v, shown, done = false;
    try {
      v = get${i}(ev);
      ${simple}shown = textOf(shown${i}(v)) ?? NA;
    } catch {
      v = undefined;
      shown = NA;
    }
    if (!done) { fields[k${i}] = json${i}(v, ev); text += width${i} === 0 ? shown : fit(shown, width${i}); }
  }`);
  });
  return specialize(['parts', 'extras', 'textOf', 'fit', 'NA'], [parts, extras, textOf, fit, NA], `${decl.join('\n  ')}
  return function render(ev) {
    let text = '';
    const fields = {};
    ${body.join('\n    ')}
    for (const x of extras) {
      try {
        fields[x.key] = x.value(ev);
      } catch {
        fields[x.key] = null;
      }
    }
    return { text, fields };
  };`, () => loop);
}

function joinLiterals(parts: Part[]): Part[] {
  const out: Part[] = [];
  for (const p of parts) {
    const last = out[out.length - 1];
    if (typeof p === 'string' && typeof last === 'string') out[out.length - 1] = last + p;
    else out.push(p);
  }
  return out;
}

/** Falco's append_output entry (falco.yaml). */
export interface AppendOutput {
  match?: { source?: string; tags?: string[]; rule?: string };
  extra_output?: string;
  extra_fields?: (string | Record<string, string>)[];
  suggested_output?: boolean;
}

/** Falco's default: falco.yaml 0.42 has `append_output: [{suggested_output: true}]`. */
export const FALCO_DEFAULT_APPEND_OUTPUT: readonly AppendOutput[] = Object.freeze([{ suggested_output: true }]);

/**
 * What append_output adds to one rule, in Falco's order: per entry its extra_output, then its
 * suggested fields (`container_id=%container.id`…); extra_fields by key (a later one wins).
 */
export function appendFor(
  entries: readonly AppendOutput[], rule: { name: string; source: string; tags: readonly string[] }, registry: FieldRegistry,
): { outputs: string[]; fields: ExtraField[] } {
  const outputs: string[] = [];
  const fields = new Map<string, ExtraField>();
  for (const e of entries) {
    const m = e.match ?? {};
    if (m.source && m.source !== rule.source) continue;
    if (m.rule && m.rule !== rule.name) continue;
    if (m.tags && !m.tags.every((t) => rule.tags.includes(t))) continue;
    if (e.extra_output) outputs.push(e.extra_output);
    if (e.suggested_output) {
      for (const f of registry.suggested(rule.source)) outputs.push(`${f.name.replace(/\./g, '_')}=%${f.name}`);
    }
    for (const f of e.extra_fields ?? []) {
      if (typeof f === 'string') fields.set(f, { key: f, raw: true });
      else for (const [key, format] of Object.entries(f)) fields.set(key, { key, format });
    }
  }
  return { outputs, fields: [...fields.values()] };
}

// ---- times --------------------------------------------------------------------------------------

/** ns since the epoch → "2026-11-25T20:16:35.123456789Z" (Falco's JSON time). */
export function isoTime(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const frac = (ns % 1_000_000_000n + 1_000_000_000n) % 1_000_000_000n;
  return new Date(ms).toISOString().slice(0, 19) + '.' + frac.toString().padStart(9, '0') + 'Z';
}

/** "20:16:35.123456789" in UTC. */
export function clockTime(ns: bigint): string {
  return isoTime(ns).slice(11, 29);
}

export interface TextOptions {
  /** Falco's time_format_iso_8601: the text alert opens with %evt.time.iso8601 instead of %evt.time. */
  iso8601?: boolean;
}

/**
 * The time that opens a text alert, as Falco prints it: its %evt.time ("HH:MM:SS.nnnnnnnnn",
 * local), or with time_format_iso_8601 its %evt.time.iso8601 (UTC, +0000): the fields' own text.
 */
export function prefixTime(ns: bigint, opts: TextOptions = {}): string {
  return opts.iso8601 ? iso8601(ns) : timeOfDay(ns);
}

/**
 * What an alert line is made of: a match, or a stored alert group at one of its times (the
 * alerts pipeline writes its groups through the same functions).
 */
export type AlertParts = Pick<Match, 'hostname' | 'output' | 'outputFields' | 'priority' | 'rule' | 'source' | 'tags' | 'time'>;

/** Falco's text line: "<time>: <Priority> <output>". */
export function formatText(m: Pick<AlertParts, 'time' | 'priority' | 'output'>, opts: TextOptions = {}): string {
  return `${prefixTime(m.time, opts)}: ${priorityLabel(m.priority)} ${m.output}`;
}

// ---- Falco's JSON -------------------------------------------------------------------------------

/** Falco's JSON alert. Keys in Falco's order (it writes every object with sorted keys). */
export interface FalcoJsonAlert {
  hostname: string;
  output: string;
  output_fields: Record<string, OutputValue>;
  priority: string;
  rule: string;
  source: string;
  tags: string[];
  time: string;
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Tags as Falco keeps them (a std::set): sorted, each once. */
export function falcoTags(tags: readonly string[]): string[] {
  return [...new Set(tags)].sort(byCodeUnits);
}

/**
 * output_fields as Falco writes them: the rule's fields plus the prefix's time field (evt.time,
 * or evt.time.iso8601 with time_format_iso_8601) as the event time in ns, keys sorted.
 */
export function falcoOutputFields(fields: Record<string, OutputValue>, time: bigint, opts: TextOptions = {}): Record<string, OutputValue> {
  const all: Record<string, OutputValue> = { ...fields, [opts.iso8601 ? 'evt.time.iso8601' : 'evt.time']: scalarJson(time, true) };
  const out: Record<string, OutputValue> = {};
  for (const k of Object.keys(all).sort(byCodeUnits)) out[k] = all[k]!;
  return out;
}

export function toFalcoJson(m: AlertParts, opts: TextOptions = {}): FalcoJsonAlert {
  return {
    hostname: m.hostname,
    output: formatText(m, opts),
    output_fields: falcoOutputFields(m.outputFields, m.time, opts),
    priority: priorityLabel(m.priority),
    rule: m.rule,
    source: m.source,
    tags: falcoTags(m.tags),
    time: isoTime(m.time),
  };
}

/** One JSON alert line as Falco writes it (integers exact, past 2^53 too), without its newline. */
export function falcoJsonLine(m: Match, opts: TextOptions = {}): string {
  return toJsonText(toFalcoJson(m, opts));
}
