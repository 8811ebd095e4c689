/**
 * Field transformers (libs' tolower, toupper, b64, basename, len): one meaning for conditions
 * (`tolower(proc.name) = bash`) and outputs (`%toupper(proc.name)`).
 */
import type { Extracted, FieldType } from '../fields/types.js';
import { TRANSFORMERS, type Transformer as TransformerName } from './ast.js';
import { lastCall } from '../platform/last-call.js';

export { TRANSFORMERS, type TransformerName };

/** The text transformers, on one value. */
const TEXT: Record<Exclude<TransformerName, 'len'>, (s: string) => string> = {
  tolower: (s) => s.toLowerCase(),
  toupper: (s) => s.toUpperCase(),
  b64: (s) => Buffer.from(s, 'base64').toString('latin1'),
  basename: (s) => (s.endsWith('/') ? '' : s.slice(s.lastIndexOf('/') + 1)),
};

/** Field types the text transformers apply to. */
export const TEXT_TYPES: ReadonlySet<FieldType> = new Set(['charbuf', 'bytebuf', 'flags', 'mode']);

/** The type of a transformer's result. */
export function transformedType(fn: TransformerName): FieldType {
  return fn === 'len' ? 'uint64' : fn === 'b64' ? 'bytebuf' : 'charbuf';
}

/** A transformer over extracted values: a list's values one by one (len: the list's length). */
export function transformer(fn: TransformerName): (v: Extracted) => Extracted {
  if (fn === 'len') {
    return (v) => (v === undefined ? undefined : Array.isArray(v) ? v.length : String(v).length);
  }
  const f = TEXT[fn];
  // The last value's result kept (each use of a transformer in the rules has its own): a storm's
  // events repeat the same name and path, often the very same string, and the transformers are
  // pure, so the text is not sliced or case-mapped again per event.
  const last = lastCall(f);
  const one = (x: unknown): string => last(String(x));
  return (v) => (v === undefined ? undefined : Array.isArray(v) ? v.map(one) : one(v));
}
