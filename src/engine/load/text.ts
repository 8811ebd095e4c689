/**
 * Condition text as Falco builds it before parsing — appended pieces joined with a space,
 * exceptions written out as `and not (…)`, list names replaced by their items — with every
 * character still traceable to its place in a rules file.
 */
import type { Locator } from '../compiler.js';
import type { Position } from '../types.js';

interface Segment {
  /** Where the segment starts in the text. */
  at: number;
  /** Maps an offset inside the segment to a file position. */
  locate: Locator;
  /** Offset into `locate` of the segment's first character. */
  base: number;
  /** The segment stands for one place (inserted text): every offset maps to `base`. */
  fixed: boolean;
}

export class MappedText {
  private constructor(readonly text: string, private readonly segs: readonly Segment[]) {}

  /** Text read from a file: offsets map through `locate`. */
  static of(text: string, locate: Locator): MappedText {
    return new MappedText(text, [{ at: 0, locate, base: 0, fixed: false }]);
  }

  /** Text made up by the loader (exception conditions): every offset maps to `pos`. */
  static at(text: string, pos: Position): MappedText {
    return new MappedText(text, [{ at: 0, locate: () => pos, base: 0, fixed: true }]);
  }

  static concat(parts: readonly MappedText[]): MappedText {
    let text = '';
    const segs: Segment[] = [];
    for (const p of parts) {
      for (const s of p.segs) segs.push({ ...s, at: s.at + text.length });
      text += p.text;
    }
    return new MappedText(text, segs.length ? segs : [{ at: 0, locate: () => ({ file: '', line: 0, col: 0 }), base: 0, fixed: true }]);
  }

  /** Pieces joined by single spaces, as Falco's collector appends conditions and outputs. */
  static join(parts: readonly MappedText[]): MappedText {
    const out: MappedText[] = [];
    parts.forEach((p, i) => {
      if (i > 0) out.push(MappedText.at(' ', p.position(0)));
      out.push(p);
    });
    return MappedText.concat(out);
  }

  slice(start: number, end = this.text.length): MappedText {
    if (start >= end) return new MappedText('', [{ ...this.segFor(start), at: 0, fixed: true, base: this.baseAt(start) }]);
    const segs: Segment[] = [];
    for (let i = 0; i < this.segs.length; i++) {
      const s = this.segs[i]!;
      const sEnd = i + 1 < this.segs.length ? this.segs[i + 1]!.at : this.text.length;
      if (sEnd <= start || s.at >= end) continue;
      const from = Math.max(start, s.at);
      segs.push({ at: from - start, locate: s.locate, base: s.fixed ? s.base : s.base + (from - s.at), fixed: s.fixed });
    }
    return new MappedText(this.text.slice(start, end), segs);
  }

  private segFor(off: number): Segment {
    let lo = 0;
    let hi = this.segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segs[mid]!.at <= off) lo = mid;
      else hi = mid - 1;
    }
    return this.segs[lo]!;
  }

  private baseAt(off: number): number {
    const s = this.segFor(off);
    return s.fixed ? s.base : s.base + Math.max(0, off - s.at);
  }

  /** The file position of an offset into the text. */
  position(off: number): Position {
    const s = this.segFor(Math.max(0, off));
    return s.locate(this.baseAt(Math.max(0, off)));
  }

  get locate(): Locator {
    return (at) => this.position(at);
  }
}

/**
 * Falco's quote_item: an item holding a blank and not starting with a quote gets double quotes
 * around it, nothing escaped; any other item goes in as it is (so an item that carries its own
 * quotes, '"sh -c x"', reads as a quoted filter string, escapes and all).
 */
export function quoteItem(s: string): string {
  return s.includes(' ') && s[0] !== '"' && s[0] !== "'" ? `"${s}"` : s;
}

const BLANKS = ' \t\n\r';
const DELIMS = BLANKS + '(),=';

/**
 * Put a list's items in place of its name, as Falco's resolve_list does (rule_loader_compiler.cpp):
 * wherever the name stands between delimiters (blanks, parentheses, commas, '=' or the ends),
 * quoted strings included, it and the blanks around it become the items joined by ", ". An empty
 * list also takes a comma next to it away. Returns undefined when the name does not occur.
 */
export function substituteList(cond: MappedText, name: string, items: readonly string[]): MappedText | undefined {
  let cur = cond;
  let used = false;
  let start = cur.text.indexOf(name);
  while (start >= 0) {
    const c = cur.text;
    let end = start + name.length;
    if ((start === 0 || DELIMS.includes(c[start - 1]!)) && (end >= c.length || DELIMS.includes(c[end]!))) {
      const namePos = cur.position(start);
      while (start > 0 && BLANKS.includes(c[start - 1]!)) start--;
      while (end < c.length && BLANKS.includes(c[end]!)) end++;
      const sub = items.map(quoteItem).join(', ');
      if (sub === '') {
        if (start > 0 && c[start - 1] === ',') start--;
        else if (end < c.length && c[end] === ',') end++;
      }
      const parts: MappedText[] = [];
      if (start > 0) parts.push(cur.slice(0, start), MappedText.at(' ', namePos));
      parts.push(MappedText.at(sub + ' ', namePos));
      parts.push(cur.slice(end));
      cur = MappedText.concat(parts);
      start += sub.length + 1;
      used = true;
    }
    start = cur.text.indexOf(name, start + 1);
  }
  return used ? cur : undefined;
}
