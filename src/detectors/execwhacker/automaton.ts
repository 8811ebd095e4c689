/**
 * The banned-strings automaton: Aho–Corasick over case-folded UTF-16 code units, in flat typed
 * arrays, built once per config load and never changed (a reload builds a new one and swaps it in).
 *
 * Layout, for tens of thousands of strings at a few ns per character:
 * - Alphabet compression: only code units that occur in some (folded) banned string get a class
 *   (1…K-1); every other unit is class 0, which always leads back to the root.
 * - States are numbered in breadth-first order, so a state's children have consecutive numbers
 *   (`childStart[s] … childStart[s+1]-1`, their edge classes ascending in `label`) and every
 *   state's failure link points to a smaller number.
 * - The first M states (the shallow ones, where a scan spends nearly all its time) have a dense
 *   row of K fully resolved transitions (goto and failure folded together), each 16 bits:
 *   `t << 1 | (a string ends at t)`, so one read per character gives the next state and whether to
 *   look at outputs, and the hot rows take half the cache. M is the longest breadth-first prefix
 *   within `denseEntries` (default 4 Mi) whose targets all fit (below 32,768). Deeper states look
 *   up their few children and follow failure links until they reach a dense state. Small automata
 *   (every state dense, at most 512 Ki transitions) get 32-bit entries with the row offset
 *   premultiplied instead, which saves the multiplication on every step.
 *   With 50,000 pool-domain-like strings: ~400,000 states, ~12,000 of them dense, ~11 MiB.
 * - Outputs: `outHead[s]` is the first state on s's failure chain (s included) where a banned
 *   string ends, `dictNext[t]` the next one after t: the strings ending at a position are listed
 *   longest first without walking failure links that end nothing.
 *
 * Case folding is built into the tables: `clsFast` maps a code unit of the *original* text to the
 * class of its fold, and `wordFast` tells whether its fold is a word character, so a command line
 * whose characters each fold to one BMP unit (all ASCII, and nearly every real command line) is
 * scanned as it is, without building a folded copy. A command line with a character that folds to
 * several units (`ß` → `ss`) or a surrogate pair is folded first (Python's casefold) and scanned
 * with `clsRaw`/the word table for folded text.
 *
 * A banned string occurrence is *standalone* when it does not extend a word: the character before
 * it is not a word character (or the string's own first character is not one), and the character
 * after it is not a word character (or the string's own last character is not one). See
 * matcher.ts for why the string's own edges count.
 */
import { FOLD_BMP, FOLD_SPECIAL, casefold, wordAt, wordBefore, wordTableBmp } from './casefold.js';

export interface AutomatonOptions {
  /** Budget of dense transitions (K per dense state). Tests set it small to exercise sparse states. */
  denseEntries?: number;
}

/** Scan outcome: `hit` is the id of the first standalone occurrence (−1: none), `any` the first occurrence at all. */
export interface ScanResult {
  hit: number;
  any: number;
  /** Where the hit ends, in the scanned text (`folded` if set, else the original). */
  end: number;
  /** The folded text, when the scan had to fold first. */
  folded?: string;
}

const SLOW = -1;
/** Encoded dense transitions are 16 bits: `state << 1 | ends`. */
const MAX_ENCODED = 0x8000;
/** Automata with at most this many transitions in all get the wide (32-bit, premultiplied) table. */
const WIDE_ENTRIES = 1 << 19;
const BAIL = -2;
const DEFAULT_DENSE = 1 << 22;

let wordFastTable: Uint8Array | undefined;
/** Word-ness of each BMP unit's fold (2: decide on the folded text). */
function wordFast(): Uint8Array {
  if (wordFastTable) return wordFastTable;
  const raw = wordTableBmp();
  const t = new Uint8Array(0x10000);
  for (let u = 0; u < 0x10000; u++) t[u] = FOLD_SPECIAL[u] ? 2 : raw[FOLD_BMP[u]!]!;
  wordFastTable = t;
  return t;
}

export class BannedAutomaton {
  /** The distinct folded banned strings, sorted: pattern ids index this. */
  readonly patterns: readonly string[];
  readonly states: number;
  readonly denseStates: number;
  readonly classes: number;
  readonly patLen: Int32Array;
  private readonly patFirstWord: Uint8Array;
  private readonly patLastWord: Uint8Array;
  private readonly clsFast: Int32Array;
  private readonly clsRaw: Int32Array;
  /** The dense transitions while building (plain state numbers); dropped afterwards. */
  private dense: Int32Array;
  private building = true;
  /** The dense transitions, encoded for the scan: `t << 1 | (a string ends at t)`. */
  private readonly enc: Uint16Array;
  /** For small automata (every state dense): `(t·K) << 1 | ends` per transition. */
  private readonly wide: Int32Array | undefined;
  private readonly childStart: Int32Array;
  private readonly label: Int32Array;
  private readonly fail: Int32Array;
  private readonly outHead: Int32Array;
  private readonly dictNext: Int32Array;
  private readonly termPat: Int32Array;
  private readonly wordFast: Uint8Array;
  private readonly wordRaw: Uint8Array;

  /** `folded`: distinct, non-empty, already case-folded strings. */
  constructor(folded: readonly string[], opts: AutomatonOptions = {}) {
    const pats = [...new Set(folded)].filter((p) => p.length > 0).sort();
    this.patterns = pats;
    const P = pats.length;
    this.wordFast = wordFast();
    this.wordRaw = wordTableBmp();

    // Alphabet: classes in ascending code unit order, so sorted strings give sorted child labels.
    const seen = new Uint8Array(0x10000);
    let total = 0;
    for (const p of pats) {
      total += p.length;
      for (let i = 0; i < p.length; i++) seen[p.charCodeAt(i)] = 1;
    }
    const clsRaw = new Int32Array(0x10000);
    let K = 1;
    for (let u = 0; u < 0x10000; u++) if (seen[u]) clsRaw[u] = K++;
    const clsFast = new Int32Array(0x10000);
    for (let u = 0; u < 0x10000; u++) clsFast[u] = FOLD_SPECIAL[u] ? SLOW : clsRaw[FOLD_BMP[u]!]!;
    this.clsRaw = clsRaw;
    this.clsFast = clsFast;
    this.classes = K;

    this.patLen = new Int32Array(P);
    this.patFirstWord = new Uint8Array(P);
    this.patLastWord = new Uint8Array(P);
    for (let i = 0; i < P; i++) {
      const p = pats[i]!;
      this.patLen[i] = p.length;
      this.patFirstWord[i] = wordAt(p, 0) ? 1 : 0;
      this.patLastWord[i] = wordBefore(p, p.length) ? 1 : 0;
    }

    // Trie, breadth first, straight from the sorted strings: a state is the range [lo, hi) of
    // strings sharing its prefix of length depth; its children split that range by the next unit.
    const cap = total + 1;
    let lo = new Int32Array(cap);
    let hi = new Int32Array(cap);
    let depth = new Int32Array(cap);
    let label = new Int32Array(cap);
    let childStart = new Int32Array(cap + 1);
    let termPat = new Int32Array(cap).fill(-1);
    hi[0] = P;
    let n = 1;
    for (let s = 0; s < n; s++) {
      const d = depth[s]!;
      let a = lo[s]!;
      const b = hi[s]!;
      if (a < b && pats[a]!.length === d) termPat[s] = a++;
      childStart[s] = n;
      while (a < b) {
        const u = pats[a]!.charCodeAt(d);
        let k = a + 1;
        while (k < b && pats[k]!.charCodeAt(d) === u) k++;
        lo[n] = a;
        hi[n] = k;
        depth[n] = d + 1;
        label[n] = clsRaw[u]!;
        n++;
        a = k;
      }
    }
    childStart[n] = n;
    lo = hi = depth = new Int32Array(0);
    label = label.slice(0, n);
    childStart = childStart.slice(0, n + 1);
    termPat = termPat.slice(0, n);
    this.states = n;
    this.label = label;
    this.childStart = childStart;
    this.termPat = termPat;

    // Failure links, dense rows and outputs, in breadth-first order (a failure link always points
    // to a smaller state, whose row and outputs are done).
    const budget = opts.denseEntries ?? DEFAULT_DENSE;
    // Dense states: a breadth-first prefix, within the budget, whose transitions all lead to states
    // below 32,768 (so an encoded transition fits 16 bits: the hot rows take half the cache).
    let M = Math.max(1, Math.min(n, Math.floor(budget / K)));
    while (M > 0 && childStart[M]! > MAX_ENCODED) M--;
    this.denseStates = M;
    const dense = new Int32Array(M * K);
    const fail = new Int32Array(n);
    const outHead = new Int32Array(n);
    const dictNext = new Int32Array(n);
    this.dense = dense;
    this.fail = fail;
    this.outHead = outHead;
    this.dictNext = dictNext;
    for (let s = 0; s < n; s++) {
      const f = fail[s]!;
      if (s === 0) {
        outHead[0] = termPat[0]! >= 0 ? 0 : -1;
        dictNext[0] = -1;
      } else {
        dictNext[s] = outHead[f]!;
        outHead[s] = termPat[s]! >= 0 ? s : outHead[f]!;
      }
      const c0 = childStart[s]!;
      const c1 = childStart[s + 1]!;
      if (s < M) {
        const row = s * K;
        if (s !== 0) dense.copyWithin(row, f * K, f * K + K);
        for (let t = c0; t < c1; t++) dense[row + label[t]!] = t;
      }
      for (let t = c0; t < c1; t++) fail[t] = s === 0 ? 0 : this.delta(f, label[t]!);
    }
    const enc = new Uint16Array(M * K);
    for (let i = 0; i < enc.length; i++) {
      const t = dense[i]!;
      enc[i] = (t << 1) | (outHead[t]! >= 0 ? 1 : 0);
    }
    this.enc = enc;
    if (M === n && n * K <= WIDE_ENTRIES) {
      const wide = new Int32Array(M * K);
      for (let i = 0; i < wide.length; i++) {
        const t = dense[i]!;
        wide[i] = ((t * K) << 1) | (outHead[t]! >= 0 ? 1 : 0);
      }
      this.wide = wide;
    }
    this.building = false;
    this.dense = new Int32Array(0);
  }

  private child(s: number, c: number): number {
    const label = this.label;
    let a = this.childStart[s]!;
    let b = this.childStart[s + 1]!;
    if (b - a <= 8) {
      for (; a < b; a++) {
        const l = label[a]!;
        if (l === c) return a;
        if (l > c) return -1;
      }
      return -1;
    }
    while (a < b) {
      const m = (a + b) >>> 1;
      const l = label[m]!;
      if (l === c) return m;
      if (l < c) a = m + 1;
      else b = m;
    }
    return -1;
  }

  /** The resolved transition from s on class c. */
  private delta(s: number, c: number): number {
    if (c === 0) return 0;
    const M = this.denseStates;
    const K = this.classes;
    for (;;) {
      if (s < M) {
        return this.building ? this.dense[s * K + c]! : this.enc[s * K + c]! >> 1;
      }
      const t = this.child(s, c);
      if (t >= 0) return t;
      if (s === 0) return 0;
      s = this.fail[s]!;
    }
  }

  /**
   * Find the first standalone occurrence of a banned string in `text` (matched as Python's
   * `text.casefold()`), and the first occurrence of any kind.
   */
  scan(text: string): ScanResult {
    const r = this.run(text, this.clsFast, this.wordFast, true);
    if (r !== undefined) return r;
    const folded = casefold(text);
    const f = this.run(folded, this.clsRaw, this.wordRaw, false)!;
    f.folded = folded;
    return f;
  }

  /**
   * The scan. `fast`: `text` is the original command line, folded unit by unit through `cls` and
   * `word` (undefined is returned when a unit needs real folding); otherwise `text` is folded
   * already and surrogate pairs are decoded for word tests.
   *
   * Narrow tables (large sets): a step in the dense region is one 16-bit read that gives both the
   * next state and whether a string ends there; deeper states take the sparse path (children,
   * then failure links). Wide tables (every state dense, at most WIDE_ENTRIES transitions): one
   * 32-bit read of `(t·K) << 1 | ends`, the row offset premultiplied, nothing else.
   */
  private run(text: string, cls: Int32Array, word: Uint8Array, fast: boolean): ScanResult | undefined {
    const n = text.length;
    const K = this.classes;
    let any = -1;
    const wide = this.wide;
    if (wide !== undefined) {
      let row = 0;
      for (let i = 0; i < n; i++) {
        const c = cls[text.charCodeAt(i)]!;
        if (c < 0) return undefined;
        const v = wide[row + c]!;
        row = v >> 1;
        if ((v & 1) === 0) continue;
        const s = (row / K) | 0;
        const r = this.ending(text, s, i + 1, word, fast);
        if (r === BAIL) return undefined;
        if (any < 0) any = this.termPat[this.outHead[s]!]!;
        if (r >= 0) return { hit: r, any, end: i + 1 };
      }
      return { hit: -1, any, end: -1 };
    }
    const enc = this.enc;
    const outHead = this.outHead;
    const M = this.denseStates;
    let s = 0;
    for (let i = 0; i < n; i++) {
      const c = cls[text.charCodeAt(i)]!;
      if (c < 0) return undefined;
      if (s < M) {
        const v = enc[s * K + c]!;
        s = v >> 1;
        if ((v & 1) === 0) continue;
      } else {
        s = this.delta(s, c);
        if (outHead[s]! < 0) continue;
      }
      const r = this.ending(text, s, i + 1, word, fast);
      if (r === BAIL) return undefined;
      if (any < 0) any = this.termPat[outHead[s]!]!;
      if (r >= 0) return { hit: r, any, end: i + 1 };
    }
    return { hit: -1, any, end: -1 };
  }

  /** Strings end at e (state s): the first that stands alone (longest first), −1 if none, BAIL if the text must be folded first. */
  private ending(text: string, s: number, e: number, word: Uint8Array, fast: boolean): number {
    let after = 0;
    if (e < text.length) {
      after = word[text.charCodeAt(e)]!;
      if (after === 2) {
        if (fast) return BAIL;
        after = wordAt(text, e) ? 1 : 0;
      }
    }
    return this.judge(text, s, e, after, word);
  }

  /** The first string ending at e (state s) that stands alone, or −1. */
  private judge(text: string, s: number, e: number, after: number, word: Uint8Array): number {
    const termPat = this.termPat;
    for (let t = this.outHead[s]!; t >= 0; t = this.dictNext[t]!) {
      const p = termPat[t]!;
      if (after !== 0 && this.patLastWord[p] !== 0) continue;
      const st = e - this.patLen[p]!;
      if (st === 0 || this.patFirstWord[p] === 0) return p;
      let before = word[text.charCodeAt(st - 1)]!;
      if (before === 2) before = wordBefore(text, st) ? 1 : 0;
      if (before === 0) return p;
    }
    return -1;
  }

  /** Bytes held by the tables (an estimate of this automaton's memory). */
  get bytes(): number {
    return (
      this.enc.byteLength + (this.wide?.byteLength ?? 0) + this.fail.byteLength + this.outHead.byteLength + this.dictNext.byteLength +
      this.termPat.byteLength + this.label.byteLength + this.childStart.byteLength + this.clsFast.byteLength +
      this.clsRaw.byteLength + this.patLen.byteLength * 2
    );
  }
}

