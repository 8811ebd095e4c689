/**
 * Python's str.casefold() and `\w`, for matching command lines as cryptnono does.
 *
 * JS's toLowerCase() is not case folding: it leaves `ß`, `ẞ`, the ligatures `ﬀ ﬁ ﬂ …`, `ŉ`, the
 * Greek iota-subscript letters (`ᾀ` → `ἀι`) and a hundred others as they are where casefold()
 * expands them to several characters; it maps final `ς` in context where casefold() always gives
 * `σ`; it keeps `µ ſ ϐ ϑ ϕ ϖ ϰ ϱ ϵ ẛ ι` (U+0345, U+1FBE …) that casefold() maps to their plain
 * letters; and it lowers Cherokee where casefold() raises it. So we carry Python's own table
 * (casefold-data.ts, Unicode 14.0 as Python 3.11 has it) and fold per code point with it.
 *
 * Lengths change (`ß` → `ss`): the matcher works on the folded text, as cryptnono does, and judges
 * word boundaries there too. `casefoldWithOffsets` maps folded positions back to the original for
 * display.
 *
 * Word characters are Python's `\w` for str patterns: `str.isalnum()` or `_`, i.e. Unicode letters
 * (L*) and numbers (N*) and the underscore. JS's `[\p{L}\p{N}_]` is exactly that set for every
 * character Python 3.11 knows (checked over all code points); characters assigned after Unicode
 * 14 count as word characters here (a newer Python would agree).
 */
import { CASEFOLD_DATA } from './casefold-data.js';

/** BMP code unit → its single-unit fold (identity when it has none). */
export const FOLD_BMP = new Uint16Array(0x10000);
/**
 * 1 for BMP code units that cannot be folded unit by unit: surrogates (their code point folds as
 * a pair) and characters whose fold is several units long (`ß` → `ss`).
 */
export const FOLD_SPECIAL = new Uint8Array(0x10000);
/** Code point → fold, for every fold that is not a single BMP unit (multi-character or astral). */
const FOLD_LONG = new Map<number, string>();

for (let u = 0; u < 0x10000; u++) FOLD_BMP[u] = u;
for (let u = 0xd800; u <= 0xdfff; u++) FOLD_SPECIAL[u] = 1;
for (const entry of CASEFOLD_DATA.split(' ')) {
  const colon = entry.indexOf(':');
  const cp = parseInt(entry.slice(0, colon), 16);
  const to = String.fromCodePoint(...entry.slice(colon + 1).split('.').map((h) => parseInt(h, 16)));
  if (cp < 0x10000 && to.length === 1) FOLD_BMP[cp] = to.charCodeAt(0);
  else {
    FOLD_LONG.set(cp, to);
    if (cp < 0x10000) FOLD_SPECIAL[cp] = 1;
  }
}

// Any code unit past 0x7f (written as a range from 0x80 so no control character is in the pattern).
const NON_ASCII = /[\u0080-\uffff]/;

/** Python's `s.casefold()`. Lone surrogates are kept as they are, as Python keeps them. */
export function casefold(s: string): string {
  if (!NON_ASCII.test(s)) return s.toLowerCase();
  let out = '';
  let last = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const u = s.charCodeAt(i);
    if (FOLD_SPECIAL[u] === 0) {
      const f = FOLD_BMP[u]!;
      if (f !== u) {
        out += s.slice(last, i) + String.fromCharCode(f);
        last = i + 1;
      }
      continue;
    }
    let cp = u;
    let w = 1;
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < n) {
      const lo = s.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = ((u - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
        w = 2;
      }
    }
    const f = FOLD_LONG.get(cp);
    if (f !== undefined) {
      out += s.slice(last, i) + f;
      last = i + w;
    }
    i += w - 1;
  }
  return last === 0 ? s : out + s.slice(last);
}

/**
 * casefold(s) and, for each UTF-16 unit of the result, the index in `s` of the character it came
 * from (`offsets[folded.length]` is `s.length`), so a match in the folded text can be shown under
 * the original.
 */
export function casefoldWithOffsets(s: string): { folded: string; offsets: Int32Array } {
  const parts: string[] = [];
  const offs: number[] = [];
  for (let i = 0; i < s.length; ) {
    const cp = s.codePointAt(i)!;
    const w = cp > 0xffff ? 2 : 1;
    const f = casefold(String.fromCodePoint(cp));
    parts.push(f);
    for (let k = 0; k < f.length; k++) offs.push(i);
    i += w;
  }
  offs.push(s.length);
  return { folded: parts.join(''), offsets: Int32Array.from(offs) };
}

const WORD_RE = /[\p{L}\p{N}_]/u;

/** Python's `\w` (str patterns) for one code point. */
export function isWordCodePoint(cp: number): boolean {
  if (cp < 0x80) return (cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp === 0x5f;
  return WORD_RE.test(String.fromCodePoint(cp));
}

let wordBmp: Uint8Array | undefined;

/**
 * For every BMP code unit: 1 if it is a word character, 0 if not, 2 for surrogates (the code
 * point decides: see wordAt/wordBefore). Built once, on first use.
 */
export function wordTableBmp(): Uint8Array {
  if (wordBmp) return wordBmp;
  const t = new Uint8Array(0x10000);
  const units = new Uint16Array(0x10000);
  for (let u = 0; u < 0x10000; u++) units[u] = u >= 0xd800 && u <= 0xdfff ? 0x20 : u;
  // One pass of the regex over every BMP character at once: far faster than 65,536 tests.
  let all = '';
  for (let u = 0; u < 0x10000; u += 0x1000) all += String.fromCharCode(...units.subarray(u, u + 0x1000));
  for (const m of all.matchAll(/[\p{L}\p{N}_]/gu)) t[m.index!] = 1;
  for (let u = 0xd800; u <= 0xdfff; u++) t[u] = 2;
  wordBmp = t;
  return t;
}

/** Is the character that starts at `i` a word character? (False past the end.) */
export function wordAt(s: string, i: number): boolean {
  if (i >= s.length) return false;
  const cp = s.codePointAt(i)!;
  return isWordCodePoint(cp);
}

/** Is the character that ends just before `i` a word character? (False at the start.) */
export function wordBefore(s: string, i: number): boolean {
  if (i <= 0) return false;
  let cp = s.charCodeAt(i - 1);
  if (cp >= 0xdc00 && cp <= 0xdfff && i >= 2) {
    const hi = s.charCodeAt(i - 2);
    if (hi >= 0xd800 && hi <= 0xdbff) cp = ((hi - 0xd800) << 10) + (cp - 0xdc00) + 0x10000;
  }
  return isWordCodePoint(cp);
}
