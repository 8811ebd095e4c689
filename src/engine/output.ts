/**
 * Falco output strings: `%proc.cmdline`, `%(proc.name)`, `%proc.aname[2]`, `<NA>` for missing
 * values; and the two wire shapes of an alert, Falco's text line and Falco's JSON object.
 */
import type { Event } from '../events.js';
import type { FieldRegistry } from '../fields/registry.js';
import { FieldResolveError } from '../fields/registry.js';
import type { Extracted, Extractor } from '../fields/types.js';
import { CompileError, type Locator } from './compiler.js';
import { type Match, priorityLabel } from './types.js';

type Part = string | { text: string; get: Extractor };

const FIELD_AT = /[a-zA-Z][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_]+)+(?:\[[^\]]*\])?/y;

export type OutputValue = string | number | boolean | null;

function toOutputValue(v: Extracted): OutputValue {
  if (v === undefined) return null;
  if (Array.isArray(v)) return v.length ? `(${v.map(String).join(',')})` : null;
  if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
  return v;
}

/**
 * The same text as a property key the runtime has already seen (internalized): storing under it
 * needs no lookup of the key in the runtime's string table on every render.
 */
function internalized(key: string): string {
  return Object.keys({ [key]: null })[0]!;
}

export class OutputFormat {
  private constructor(private readonly parts: Part[], readonly fieldNames: string[]) {}

  /** Compile an output string; an unknown field is an error at its place in the file. */
  static compile(fmt: string, registry: FieldRegistry, source: string, locate: Locator): OutputFormat {
    const parts: Part[] = [];
    const names: string[] = [];
    let lit = '';
    for (let i = 0; i < fmt.length; i++) {
      const c = fmt[i]!;
      if (c !== '%') {
        lit += c;
        continue;
      }
      let token: string | undefined;
      let at = i;
      if (fmt[i + 1] === '(') {
        const close = fmt.indexOf(')', i + 2);
        if (close > 0) {
          token = fmt.slice(i + 2, close).trim();
          at = i + 2;
          i = close;
        }
      } else {
        FIELD_AT.lastIndex = i + 1;
        const m = FIELD_AT.exec(fmt);
        if (m) {
          token = m[0];
          at = i + 1;
          i += m[0].length;
        }
      }
      if (token === undefined) {
        lit += c;
        continue;
      }
      const br = token.indexOf('[');
      const name = br < 0 ? token : token.slice(0, br);
      const arg = br < 0 ? undefined : token.slice(br + 1, -1);
      let get: Extractor;
      try {
        get = registry.resolve(source, name, arg).extract;
      } catch (e) {
        if (e instanceof FieldResolveError) throw new CompileError(`output: ${e.message}`, locate(at), token);
        throw e;
      }
      if (lit) parts.push(lit);
      lit = '';
      parts.push({ text: internalized(token), get });
      if (!names.includes(token)) names.push(token);
    }
    if (lit) parts.push(lit);
    return new OutputFormat(parts, names);
  }

  render(ev: Event): { text: string; fields: Record<string, OutputValue> } {
    let text = '';
    const fields: Record<string, OutputValue> = {};
    const parts = this.parts;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (typeof p === 'string') {
        text += p;
        continue;
      }
      let v: OutputValue;
      try {
        v = toOutputValue(p.get(ev));
      } catch {
        v = null; // an extractor must never take the engine down with it
      }
      fields[p.text] = v;
      text += v === null ? '<NA>' : typeof v === 'string' ? v : String(v);
    }
    return { text, fields };
  }
}

/** ns since the epoch → "2026-11-25T20:16:35.123456789Z" (Falco's JSON time). */
export function isoTime(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const frac = (ns % 1_000_000_000n + 1_000_000_000n) % 1_000_000_000n;
  return new Date(ms).toISOString().slice(0, 19) + '.' + frac.toString().padStart(9, '0') + 'Z';
}

/** "20:16:35.123456789" in UTC: Falco's default text time (time_format_iso_8601: false). */
export function clockTime(ns: bigint): string {
  return isoTime(ns).slice(11, 29);
}

export interface TextOptions {
  iso8601?: boolean;
}

/** Falco's text line: "<time>: <Priority> <output>". */
export function formatText(m: Match, opts: TextOptions = {}): string {
  const t = opts.iso8601 ? isoTime(m.time).replace('Z', '+0000') : clockTime(m.time);
  return `${t}: ${priorityLabel(m.priority)} ${m.output}`;
}

/** Falco's JSON alert. Field order follows Falco's, so line-oriented tools see what they expect. */
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

export function toFalcoJson(m: Match, opts: TextOptions = {}): FalcoJsonAlert {
  return {
    hostname: m.hostname,
    output: formatText(m, opts),
    output_fields: m.outputFields,
    priority: priorityLabel(m.priority),
    rule: m.rule,
    source: m.source,
    tags: m.tags,
    time: isoTime(m.time),
  };
}
