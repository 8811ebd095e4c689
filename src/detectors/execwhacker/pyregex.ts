/**
 * cryptnono's allowedCommandPatterns are Python regular expressions, tried with
 * `re.match(pattern, cmdline, re.IGNORECASE)`: anchored at the start, not at the end. This module
 * translates Python's syntax and semantics into an equivalent JS RegExp (flags `iu`), so a
 * cryptnono user's patterns keep their meaning:
 *
 * - Python-only syntax: `(?P<name>…)`, `(?P=name)`, `\A`, `\Z`, `{,n}`, `(?#comment)`, verbose
 *   mode `(?x)`, inline flags (global `(?aimsux)` at the start, scoped `(?s:…)`), octal escapes,
 *   `\U0001F600`, and escapes of any punctuation (`\:`, `\#`, `\ `), which JS's `u` mode refuses.
 * - Python's meanings where JS differs: `\w \W \b \B \d \D \s \S` are Unicode-aware for str
 *   patterns (JS's are ASCII), `.` excludes only `\n` (JS also excludes `\r \u2028 \u2029`), `$`
 *   also matches before a final `\n`, a `{` that does not start a repeat is a literal, a `]` first
 *   in a set is a literal.
 * - Not supported (refused with a clear message, never silently changed): conditional groups
 *   `(?(1)…)`, atomic groups `(?>…)`, possessive quantifiers `a*+`, `\N{NAME}`, turning
 *   case-insensitivity off in a group `(?-i:…)`, the `L` flag.
 *
 * Case-insensitivity is JS's Unicode simple case folding (`iu`), which agrees with Python's
 * re.IGNORECASE except for a handful of characters; the text it sees is already case-folded.
 */

export class PyRegexError extends Error {
  constructor(message: string, readonly pos?: number) {
    super(pos === undefined ? message : `${message} at position ${pos}`);
    this.name = 'PyRegexError';
  }
}

interface Flags {
  /** DOTALL */
  s: boolean;
  /** MULTILINE */
  m: boolean;
  /** VERBOSE */
  x: boolean;
  /** ASCII: \w \d \s \b are ASCII-only */
  a: boolean;
}

const W_UNI = '\\p{L}\\p{N}_';
const W_ASCII = 'a-zA-Z0-9_';
const D_UNI = '\\p{Nd}';
const D_ASCII = '0-9';
/** str.isspace(): what Python's `\s` matches in a str pattern. */
const S_UNI = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const S_ASCII = '\\t-\\r\\x20';
const VERBOSE_WS = new Set([' ', '\t', '\n', '\r', '\v', '\f']);
const OCT = /[0-7]/;
const DIGIT = /[0-9]/;
const HEX = /^[0-9a-fA-F]+$/;
const IDENT = /^[\p{ID_Start}_][\p{ID_Continue}]*$/u;

/** A code point as a JS regex atom that means exactly that character, in or out of a class. */
function lit(cp: number): string {
  if ((cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a)) return String.fromCharCode(cp);
  return `\\u{${cp.toString(16)}}`;
}

type ClassAtom = { kind: 'char'; cp: number } | { kind: 'set'; body: string; neg: boolean };

class Translator {
  private i = 0;
  private out = '';
  private readonly groups: { flags: Flags; pos: number }[] = [];

  constructor(private readonly p: string) {}

  private err(message: string, pos = this.i): never {
    throw new PyRegexError(message, pos);
  }

  private shorthand(c: string, f: Flags): { body: string; neg: boolean } | undefined {
    switch (c) {
      case 'w': return { body: f.a ? W_ASCII : W_UNI, neg: false };
      case 'W': return { body: f.a ? W_ASCII : W_UNI, neg: true };
      case 'd': return { body: f.a ? D_ASCII : D_UNI, neg: false };
      case 'D': return { body: f.a ? D_ASCII : D_UNI, neg: true };
      case 's': return { body: f.a ? S_ASCII : S_UNI, neg: false };
      case 'S': return { body: f.a ? S_ASCII : S_UNI, neg: true };
      default: return undefined;
    }
  }

  /** The code point at i (a whole surrogate pair), advancing past it. */
  private takeCodePoint(): number {
    const cp = this.p.codePointAt(this.i)!;
    this.i += cp > 0xffff ? 2 : 1;
    return cp;
  }

  private hexEscape(kind: string, len: number, start: number): number {
    const h = this.p.slice(this.i, this.i + len);
    if (h.length !== len || !HEX.test(h)) this.err(`incomplete escape \\${kind}${h}`, start);
    this.i += len;
    const cp = parseInt(h, 16);
    if (cp > 0x10ffff) this.err(`bad escape \\${kind}${h}`, start);
    return cp;
  }

  /** An escape that stands for one character (shared by sets and the outside), or undefined. */
  private charEscape(c: string, start: number): number | undefined {
    switch (c) {
      case 'a': return 7;
      case 'f': return 12;
      case 'n': return 10;
      case 'r': return 13;
      case 't': return 9;
      case 'v': return 11;
      case 'x': return this.hexEscape('x', 2, start);
      case 'u': return this.hexEscape('u', 4, start);
      case 'U': return this.hexEscape('U', 8, start);
      case 'N': this.err('\\N{…} named characters are not supported; write the character itself', start);
    }
    return undefined;
  }

  private octal(first: string, start: number): number {
    let digits = first;
    while (digits.length < 3 && this.i < this.p.length && OCT.test(this.p[this.i]!)) digits += this.p[this.i++];
    const v = parseInt(digits, 8);
    if (v > 0o377) this.err(`octal escape value \\${digits} outside of range 0-0o377`, start);
    return v;
  }

  private classAtom(f: Flags): ClassAtom {
    const start = this.i;
    if (this.p[this.i] !== '\\') return { kind: 'char', cp: this.takeCodePoint() };
    this.i++;
    if (this.i >= this.p.length) this.err('bad escape (end of pattern)', start);
    const c = this.p[this.i]!;
    const sh = this.shorthand(c, f);
    if (sh) {
      this.i++;
      return { kind: 'set', ...sh };
    }
    if (c === 'b') {
      this.i++;
      return { kind: 'char', cp: 8 };
    }
    if (OCT.test(c)) {
      this.i++;
      return { kind: 'char', cp: this.octal(c, start) };
    }
    if (/[A-Za-z0-9]/.test(c)) {
      this.i++;
      const cp = this.charEscape(c, start);
      if (cp === undefined) this.err(`bad escape \\${c}`, start);
      return { kind: 'char', cp };
    }
    return { kind: 'char', cp: this.takeCodePoint() };
  }

  private charClass(f: Flags): string {
    const open = this.i - 1;
    let negated = false;
    if (this.p[this.i] === '^') {
      negated = true;
      this.i++;
    }
    let items = '';
    const negSets: string[] = [];
    let first = true;
    for (;;) {
      if (this.i >= this.p.length) this.err('unterminated character set', open);
      if (this.p[this.i] === ']' && !first) {
        this.i++;
        break;
      }
      first = false;
      const a = this.classAtom(f);
      const dash = this.p[this.i] === '-' && this.i + 1 < this.p.length && this.p[this.i + 1] !== ']';
      if (a.kind === 'set') {
        if (dash) this.err('bad character range', this.i);
        if (a.neg) negSets.push(a.body);
        else items += a.body;
        continue;
      }
      if (!dash) {
        items += lit(a.cp);
        continue;
      }
      const dashAt = this.i;
      this.i++;
      const b = this.classAtom(f);
      if (b.kind !== 'char' || b.cp < a.cp) this.err('bad character range', dashAt);
      items += `${lit(a.cp)}-${lit(b.cp)}`;
    }
    if (negSets.length === 0) return negated ? `[^${items}]` : `[${items}]`;
    const alts = [...(items ? [`[${items}]`] : []), ...negSets.map((b) => `[^${b}]`)].join('|');
    return negated ? `(?:(?!${alts})[\\s\\S])` : `(?:${alts})`;
  }

  /** A `{…}` repeat at i (just past `{`), Python's way: `{m}`, `{m,}`, `{,n}`, `{m,n}`; else undefined. */
  private repeat(): string | undefined {
    const m = /^(\d*)(,(\d*))?\}/.exec(this.p.slice(this.i, this.i + 64));
    if (!m || m[0] === '}') return undefined;
    const lo = m[1] ?? '';
    const hasComma = m[2] !== undefined;
    const hi = m[3] ?? '';
    if (lo && hi && Number(hi) < Number(lo)) this.err('min repeat greater than max repeat', this.i);
    this.i += m[0].length;
    if (!hasComma) return `{${lo}}`;
    return `{${lo || '0'},${hi}}`;
  }

  /** After a quantifier: `?` makes it lazy; `+` (possessive) is refused. */
  private quantifierSuffix(): void {
    if (this.p[this.i] === '?') {
      this.out += '?';
      this.i++;
    } else if (this.p[this.i] === '+') {
      this.err('possessive quantifiers (*+ ++ ?+ {m,n}+) are not supported');
    }
  }

  private wordBoundary(f: Flags, negated: boolean): string {
    const w = `[${f.a ? W_ASCII : W_UNI}]`;
    return negated ? `(?:(?<=${w})(?=${w})|(?<!${w})(?!${w}))` : `(?:(?<=${w})(?!${w})|(?<!${w})(?=${w}))`;
  }

  private escape(f: Flags): void {
    const start = this.i;
    this.i++;
    if (this.i >= this.p.length) this.err('bad escape (end of pattern)', start);
    const c = this.p[this.i]!;
    const sh = this.shorthand(c, f);
    if (sh) {
      this.i++;
      this.out += `[${sh.neg ? '^' : ''}${sh.body}]`;
      return;
    }
    switch (c) {
      case 'b':
      case 'B':
        this.i++;
        this.out += this.wordBoundary(f, c === 'B');
        return;
      case 'A':
        this.i++;
        this.out += '(?<![\\s\\S])';
        return;
      case 'Z':
        this.i++;
        this.out += '(?![\\s\\S])';
        return;
    }
    if (c === '0') {
      this.i++;
      let digits = '0';
      while (digits.length < 3 && this.i < this.p.length && OCT.test(this.p[this.i]!)) digits += this.p[this.i++];
      this.out += lit(parseInt(digits, 8));
      return;
    }
    if (DIGIT.test(c)) {
      // Python: three octal digits make an octal escape; otherwise one or two digits are a group.
      this.i++;
      let digits = c;
      if (this.i < this.p.length && DIGIT.test(this.p[this.i]!)) {
        digits += this.p[this.i++];
        if (OCT.test(digits[0]!) && OCT.test(digits[1]!) && this.i < this.p.length && OCT.test(this.p[this.i]!)) {
          digits += this.p[this.i++];
          const v = parseInt(digits, 8);
          if (v > 0o377) this.err(`octal escape value \\${digits} outside of range 0-0o377`, start);
          this.out += lit(v);
          return;
        }
      }
      this.out += `(?:\\${Number(digits)})`;
      return;
    }
    if (/[A-Za-z]/.test(c)) {
      this.i++;
      const cp = this.charEscape(c, start);
      if (cp === undefined) this.err(`bad escape \\${c}`, start);
      this.out += lit(cp);
      return;
    }
    this.out += lit(this.takeCodePoint());
  }

  private parseFlags(s: string, pos: number): { add: Set<string>; del: Set<string> } {
    const [a = '', d] = s.split('-');
    const add = new Set(a);
    const del = new Set(d ?? '');
    for (const ch of add) if (!'aiLmsux'.includes(ch)) this.err(`unknown flag '${ch}'`, pos);
    for (const ch of del) if (!'imsx'.includes(ch)) this.err(`bad inline flag: cannot turn off flag '${ch}'`, pos);
    if (d !== undefined && d === '') this.err('missing flag', pos);
    if (add.has('L')) this.err("bad inline flag: cannot use 'L' flag with a str pattern", pos);
    if (add.has('a') && add.has('u')) this.err("bad inline flag: flags 'a', 'u' and 'L' are incompatible", pos);
    if (del.has('i')) this.err('turning case-insensitive matching off ((?-i:…)) is not supported: cryptnono matches ignoring case', pos);
    for (const ch of add) if (del.has(ch)) this.err('bad inline flag: flag turned on and off', pos);
    return { add, del };
  }

  private applyFlags(f: Flags, add: Set<string>, del: Set<string>): Flags {
    const g: Flags = { ...f };
    for (const k of ['s', 'm', 'x', 'a'] as const) {
      if (add.has(k)) g[k] = true;
      if (del.has(k)) g[k] = false;
    }
    if (add.has('u')) g.a = false;
    return g;
  }

  private group(f: Flags): Flags | undefined {
    const start = this.i;
    const p = this.p;
    if (p[this.i + 1] !== '?') {
      this.i++;
      this.out += '(';
      this.groups.push({ flags: f, pos: start });
      return f;
    }
    this.i += 2;
    const rest = p.slice(this.i);
    const c = p[this.i];
    if (c === ':' || c === '=' || c === '!') {
      this.i++;
      this.out += `(?${c}`;
      this.groups.push({ flags: f, pos: start });
      return f;
    }
    if (rest.startsWith('<=') || rest.startsWith('<!')) {
      this.out += `(?${rest.slice(0, 2)}`;
      this.i += 2;
      this.groups.push({ flags: f, pos: start });
      return f;
    }
    if (c === 'P') {
      const named = /^P<([^>]*)>/.exec(rest);
      if (named) {
        if (!IDENT.test(named[1]!)) this.err(`bad character in group name '${named[1]}'`, start);
        this.i += named[0].length;
        this.out += `(?<${named[1]}>`;
        this.groups.push({ flags: f, pos: start });
        return f;
      }
      const ref = /^P=([^)]*)\)/.exec(rest);
      if (ref) {
        if (!IDENT.test(ref[1]!)) this.err(`bad character in group name '${ref[1]}'`, start);
        this.i += ref[0].length;
        this.out += `(?:\\k<${ref[1]}>)`;
        return undefined;
      }
      this.err('unknown extension ?P', start);
    }
    if (c === '#') {
      const end = p.indexOf(')', this.i);
      if (end < 0) this.err('missing ), unterminated comment', start);
      this.i = end + 1;
      return undefined;
    }
    if (c === '(') this.err('conditional groups (?(…)…) are not supported', start);
    if (c === '>') this.err('atomic groups (?>…) are not supported', start);
    const fl = /^([aiLmsux]*(?:-[a-zA-Z]*)?)([:)])/.exec(rest);
    if (fl && fl[1]) {
      const { add, del } = this.parseFlags(fl[1], start);
      if (fl[2] === ')') this.err('global flags not at the start of the expression', start);
      this.i += fl[0].length;
      const g = this.applyFlags(f, add, del);
      this.out += '(?:';
      this.groups.push({ flags: f, pos: start });
      return g;
    }
    this.err(`unknown extension ?${c ?? ''}`, start);
  }

  translate(): string {
    const p = this.p;
    let f: Flags = { s: false, m: false, x: false, a: false };
    // Global inline flags: only at the very start (Python 3.11), possibly several groups.
    for (;;) {
      const g = /^\(\?([aiLmsux]+)\)/.exec(p.slice(this.i));
      if (!g) break;
      const { add, del } = this.parseFlags(g[1]!, this.i);
      f = this.applyFlags(f, add, del);
      this.i += g[0].length;
    }
    while (this.i < p.length) {
      const c = p[this.i]!;
      if (f.x) {
        if (VERBOSE_WS.has(c)) {
          this.i++;
          continue;
        }
        if (c === '#') {
          const nl = p.indexOf('\n', this.i);
          this.i = nl < 0 ? p.length : nl + 1;
          continue;
        }
      }
      switch (c) {
        case '\\':
          this.escape(f);
          break;
        case '[':
          this.i++;
          this.out += this.charClass(f);
          break;
        case '(': {
          const g = this.group(f);
          if (g) f = g;
          break;
        }
        case ')': {
          const top = this.groups.pop();
          if (!top) this.err('unbalanced parenthesis');
          this.i++;
          this.out += ')';
          f = top.flags;
          break;
        }
        case '.':
          this.i++;
          this.out += f.s ? '[\\s\\S]' : '[^\\n]';
          break;
        case '^':
          this.i++;
          this.out += f.m ? '(?<![^\\n])' : '^';
          break;
        case '$':
          this.i++;
          this.out += f.m ? '(?=\\n|(?![\\s\\S]))' : '(?=\\n?(?![\\s\\S]))';
          break;
        case '|':
          this.i++;
          this.out += '|';
          break;
        case '*':
        case '+':
        case '?':
          this.i++;
          this.out += c;
          this.quantifierSuffix();
          break;
        case '{': {
          this.i++;
          const r = this.repeat();
          if (r === undefined) this.out += '\\{';
          else {
            this.out += r;
            this.quantifierSuffix();
          }
          break;
        }
        default:
          this.out += lit(this.takeCodePoint());
      }
    }
    if (this.groups.length) this.err('missing ), unterminated subpattern', this.groups[this.groups.length - 1]!.pos);
    return this.out;
  }
}

/** The JS source (for flags `iu`) that means what the Python pattern means. Throws PyRegexError. */
export function translatePyRegex(pattern: string): string {
  return new Translator(pattern).translate();
}

/**
 * An allowedCommandPattern as cryptnono applies it: `re.match(p, cmdline, re.IGNORECASE)`, i.e.
 * anchored at the start of the command line and not at its end. Throws PyRegexError when the
 * pattern is not a valid Python regex, or uses what JS cannot express.
 */
export function compileAllowedPattern(pattern: string): RegExp {
  const src = translatePyRegex(pattern);
  try {
    return new RegExp(`^(?:${src})`, 'iu');
  } catch (e) {
    throw new PyRegexError(((e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')));
  }
}
