/**
 * Falco's filter language, parsed by recursive descent with Falco's precedence:
 * `or` binds loosest, then `and`, then `not`; parentheses group. Token shapes follow libsinsp's
 * grammar (field names need a dot; identifiers are macro names; bare values stop at blanks,
 * parentheses, commas, '=' and quotes).
 */
import {
  type Expr, type FieldOperand, type Literal, type Op, type Operand, type Transformer,
  LIST_OPS, NUM_OPS, STR_OPS, TRANSFORMERS,
} from './ast.js';

export class ConditionSyntaxError extends Error {
  constructor(message: string, readonly at: number, readonly snippet: string) {
    super(message);
    this.name = 'ConditionSyntaxError';
  }
}

/**
 * Falco parses rules with libs' parser at max depth 1000 (rule_loader_compiler.cpp, set_max_depth),
 * which counts five levels per parenthesis where this parser counts three: 600 allows as deep a
 * nesting (some 200 parentheses).
 */
const MAX_DEPTH = 600;
/** libs' lex_blank: space, tab, backspace, CR, LF (not form feed or vertical tab). */
const BLANK = /[ \t\b\r\n]/;
const FIELD_NAME = /[a-zA-Z][a-zA-Z0-9_]*(?:\.[a-zA-Z][a-zA-Z0-9_]*)+/y;
const IDENT = /[a-zA-Z][a-zA-Z0-9_]*/y;
/** libs' RGX_FIELDARGBARESTR and RGX_BARESTR; [[:space:]] is space, \t \n \v \f \r. */
const FIELD_ARG_BARE = /[^\]["' \t\n\v\f\r]+/y;
const BARE_STR = /[^()"' \t\n\v\f\r=,]+/y;
/** libs' RGX_HEXNUM, then RGX_NUMBER (an exponent needs its sign): the longest match is taken. */
const NUMBER = /0[xX][0-9a-fA-F]+|[+-]?[0-9]+\.?[0-9]*(?:[eE][+-][0-9]+)?/y;
const WORD_CHAR = /[a-zA-Z0-9_]/;

/** A quoted string's escape that libs refuses: the message, and the offset of its backslash in the body. */
class EscapeError extends Error {
  constructor(message: string, readonly at: number) {
    super(message);
  }
}

/**
 * Decode a quoted string's body as libs' unescape_str does (libsinsp filter/escaping.cpp):
 * \\ \/ \b \f \n \r \t, the other quote's escape only inside its own kind of quotes, and
 * "\ " as a lone backslash (kept by libs for rules written before escaping was strict, such as
 * the sandbox rule "Sudo Potential Privilege Escalation"). Any other escape, \x included, is an
 * error. A backslash at the very end is dropped.
 */
function unescapeQuoted(body: string, quote: '"' | "'" = '"'): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    if (++i >= body.length) break;
    const n = body[i]!;
    switch (n) {
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case ' ': case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case '"': case "'":
        if (n !== quote) throw new EscapeError(`invalid \\${n} escape in a ${quote}-quoted string`, i - 1);
        out += n;
        break;
      default:
        throw new EscapeError(`unsupported string escape sequence: \\${n}`, i - 1);
    }
  }
  return out;
}

export class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly src: string) {}

  /** Parse a whole condition; anything left over is an error. */
  parse(): Expr {
    this.blanks();
    if (this.pos >= this.src.length) this.fail('empty condition', this.pos);
    const e = this.parseOr();
    this.blanks();
    if (this.pos < this.src.length) this.fail(`unexpected text after a complete expression`, this.pos);
    return e;
  }

  /** Parse a field name with its optional argument (exceptions' `fields` use this). */
  parseFieldOnly(): FieldOperand {
    this.blanks();
    const f = this.parseFieldOrTransformer();
    this.blanks();
    if (!f || this.pos < this.src.length) this.fail('expected a field name such as proc.name or proc.aname[2]', 0);
    return f!;
  }

  // ---- helpers -------------------------------------------------------------------------------

  private fail(msg: string, at: number): never {
    const snippet = this.src.slice(at).split(/[\s]/, 1)[0]!.slice(0, 40) || (at >= this.src.length ? '<end>' : this.src[at]!);
    throw new ConditionSyntaxError(msg, at, snippet);
  }

  private blanks(): boolean {
    const start = this.pos;
    while (this.pos < this.src.length && BLANK.test(this.src[this.pos]!)) this.pos++;
    return this.pos > start;
  }

  private match(re: RegExp): string | undefined {
    re.lastIndex = this.pos;
    const m = re.exec(this.src);
    if (!m) return undefined;
    this.pos += m[0].length;
    return m[0];
  }

  private peekWord(word: string): boolean {
    if (!this.src.startsWith(word, this.pos)) return false;
    const next = this.src[this.pos + word.length];
    return next === undefined || !WORD_CHAR.test(next);
  }

  /** A keyword (and, or, not) counts only when a blank or '(' follows it. */
  private keyword(word: string): boolean {
    if (!this.src.startsWith(word, this.pos)) return false;
    const next = this.src[this.pos + word.length];
    if (next === undefined || BLANK.test(next) || next === '(') {
      this.pos += word.length;
      return true;
    }
    return false;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) this.fail(`expression nests deeper than ${MAX_DEPTH} levels`, this.pos);
  }

  // ---- grammar -------------------------------------------------------------------------------

  private parseOr(): Expr {
    this.enter();
    const at = this.pos;
    const items = [this.parseAnd()];
    for (;;) {
      const save = this.pos;
      this.blanks();
      if (!this.keyword('or')) {
        this.pos = save;
        break;
      }
      this.blanks();
      items.push(this.parseAnd());
    }
    this.depth--;
    return items.length === 1 ? items[0]! : { kind: 'or', items, at };
  }

  private parseAnd(): Expr {
    this.enter();
    const at = this.pos;
    const items = [this.parseNot()];
    for (;;) {
      const save = this.pos;
      this.blanks();
      if (!this.keyword('and')) {
        this.pos = save;
        break;
      }
      this.blanks();
      items.push(this.parseNot());
    }
    this.depth--;
    return items.length === 1 ? items[0]! : { kind: 'and', items, at };
  }

  private parseNot(): Expr {
    this.enter();
    const at = this.pos;
    let e: Expr;
    if (this.keyword('not')) {
      this.blanks();
      e = { kind: 'not', expr: this.parseNot(), at };
    } else {
      e = this.parseCheck();
    }
    this.depth--;
    return e;
  }

  private parseCheck(): Expr {
    const at = this.pos;
    if (this.src[this.pos] === '(') {
      this.pos++;
      this.blanks();
      const e = this.parseOr();
      this.blanks();
      if (this.src[this.pos] !== ')') this.fail(`expected ')' to close the '(' at offset ${at}`, this.pos);
      this.pos++;
      return e;
    }
    const field = this.parseFieldOrTransformer();
    if (field) return this.parseCondition(field, at);
    const ident = this.match(IDENT);
    if (ident !== undefined) {
      if (ident === 'and' || ident === 'or') this.fail(`'${ident}' needs an expression before it`, at);
      return { kind: 'ref', name: ident, at };
    }
    if (this.pos >= this.src.length) this.fail('expression ends too early: expected a field, a macro name, "not" or "("', this.pos);
    this.fail('expected a field, a macro name, "not" or "("', this.pos);
  }

  /** field, field[arg], or tolower(field) and the like; undefined when neither is here. */
  private parseFieldOrTransformer(): FieldOperand | undefined {
    const at = this.pos;
    for (const fn of TRANSFORMERS) {
      if (this.src.startsWith(fn + '(', this.pos)) {
        this.pos += fn.length + 1;
        // Transformers nest (tolower(basename(fd.name))): bounded like every other nesting.
        this.enter();
        this.blanks();
        const inner = this.parseFieldOrTransformer();
        if (!inner) this.fail(`${fn}() takes a field`, this.pos);
        this.blanks();
        if (this.src[this.pos] !== ')') this.fail(`expected ')' to close ${fn}(`, this.pos);
        this.pos++;
        this.depth--;
        return { kind: 'transform', fn: fn as Transformer, arg: inner!, at };
      }
    }
    const name = this.match(FIELD_NAME);
    if (name === undefined) return undefined;
    let arg: string | undefined;
    if (this.src[this.pos] === '[') {
      this.pos++;
      const q = this.src[this.pos];
      if (q === '"' || q === "'") arg = this.quoted().value;
      else {
        arg = this.match(FIELD_ARG_BARE);
        if (arg === undefined) this.fail(`empty argument for field '${name}'`, this.pos);
      }
      if (this.src[this.pos] !== ']') this.fail(`expected ']' after the argument of '${name}'`, this.pos);
      this.pos++;
    }
    return { kind: 'field', name, arg, at };
  }

  private parseCondition(left: FieldOperand, at: number): Expr {
    this.blanks();
    const opAt = this.pos;
    if (this.peekWord('exists')) {
      this.pos += 6;
      return { kind: 'cmp', left, op: 'exists', at, opAt };
    }
    for (const op of NUM_OPS) {
      if (this.src.startsWith(op, this.pos)) {
        this.pos += op.length;
        this.blanks();
        return { kind: 'cmp', left, op, right: this.numValueOrField(), at, opAt };
      }
    }
    for (const op of STR_OPS) {
      const symbolic = !/^[a-z]/.test(op);
      if (symbolic ? this.src.startsWith(op, this.pos) : this.src.startsWith(op, this.pos) && BLANK.test(this.src[this.pos + op.length] ?? '')) {
        this.pos += op.length;
        this.blanks();
        return { kind: 'cmp', left, op, right: this.strValueOrField(), at, opAt };
      }
    }
    // List operators need no blank after them: `in(a, b)` is a list test, as in libs.
    for (const op of LIST_OPS) {
      if (this.src.startsWith(op, this.pos)) {
        this.pos += op.length;
        this.blanks();
        return { kind: 'cmp', left, op, right: this.listValueOrField(), at, opAt };
      }
    }
    const name = left.kind === 'field' ? left.name : `${left.fn}(...)`;
    if (this.pos >= this.src.length) this.fail(`expected an operator after '${name}'`, this.pos);
    this.fail(`unknown operator after '${name}'`, this.pos);
  }

  /**
   * A quoted string as libs' lex_quoted_str reads it: it ends at the first quote of its kind not
   * right after a backslash (so "a\\\\" does not end at its last quote), then its escapes decode.
   */
  private quoted(): Literal {
    const at = this.pos;
    const q = this.src[this.pos]! as '"' | "'";
    let i = this.pos + 1;
    while (i < this.src.length && !(this.src[i] === q && this.src[i - 1] !== '\\')) i++;
    if (i >= this.src.length) this.fail(`unterminated string: no closing ${q}`, at);
    const body = this.src.slice(this.pos + 1, i);
    let value: string;
    try {
      value = unescapeQuoted(body, q);
    } catch (e) {
      if (!(e instanceof EscapeError)) throw e;
      this.fail(e.message, this.pos + 1 + e.at);
    }
    this.pos = i + 1;
    return { value, quoted: true, at };
  }

  private tryFieldValue(): Operand | undefined {
    const at = this.pos;
    if (this.src.startsWith('val(', this.pos)) {
      this.pos += 4;
      this.blanks();
      const f = this.parseFieldOrTransformer();
      if (!f) this.fail('val() takes a field', this.pos);
      this.blanks();
      if (this.src[this.pos] !== ')') this.fail("expected ')' to close val(", this.pos);
      this.pos++;
      return { kind: 'fieldval', field: f!, at };
    }
    if (TRANSFORMERS.some((t) => this.src.startsWith(t + '(', this.pos))) {
      return { kind: 'fieldval', field: this.parseFieldOrTransformer()!, at };
    }
    return undefined;
  }

  private numValueOrField(): Operand {
    const fv = this.tryFieldValue();
    if (fv) return fv;
    // libs takes only a number token after <, <=, > and >= (no quoted string).
    const at = this.pos;
    const n = this.match(NUMBER);
    if (n === undefined) this.fail('expected a number value', at);
    return { kind: 'value', lit: { value: n!, quoted: false, at } };
  }

  private strValueOrField(): Operand {
    const fv = this.tryFieldValue();
    if (fv) return fv;
    return { kind: 'value', lit: this.strValue() };
  }

  private strValue(): Literal {
    const at = this.pos;
    const q = this.src[this.pos];
    if (q === '"' || q === "'") return this.quoted();
    const s = this.match(BARE_STR);
    if (s === undefined) this.fail('expected a value', at);
    return { value: s!, quoted: false, at };
  }

  private listValueOrField(): Operand {
    const fv = this.tryFieldValue();
    if (fv) return fv;
    const at = this.pos;
    if (this.src[this.pos] === '(') {
      this.pos++;
      const items: Literal[] = [];
      this.blanks();
      if (this.src[this.pos] === ')') {
        this.pos++;
        return { kind: 'list', items, at };
      }
      for (;;) {
        this.blanks();
        items.push(this.strValue());
        this.blanks();
        const c = this.src[this.pos];
        if (c === ',') {
          this.pos++;
          continue;
        }
        if (c === ')') {
          this.pos++;
          break;
        }
        this.fail("expected ',' or ')' in a list of values", this.pos);
      }
      return { kind: 'list', items, at };
    }
    // A bare name after `in`: the loader has already put every list's items in place of its
    // name, so what is left is one value (libs parses it as a value, not a list).
    const ident = this.match(IDENT);
    if (ident !== undefined) return { kind: 'list', items: [{ value: ident, quoted: false, at }], at };
    this.fail("expected a list of values in parentheses, e.g. (a, b), or a list name", at);
  }
}

export function parseCondition(src: string): Expr {
  return new Parser(src).parse();
}

export function parseFieldName(src: string): FieldOperand {
  return new Parser(src).parseFieldOnly();
}

export type { Op };
