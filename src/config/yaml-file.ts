/**
 * A YAML (or JSON) file kept with its line counter, so a problem found in the parsed value can
 * name the file, line and column of the key at fault. The config loader and the detectors' file
 * reader (detectors/cryptnono-files.ts) both locate keys through it.
 */
import { LineCounter, isMap, parseDocument, type Document } from 'yaml';
import type { ConfigProblem } from './problems.js';

export class YamlFile {
  readonly lc = new LineCounter();
  readonly doc: Document;
  constructor(readonly text: string, readonly file: string) {
    this.doc = parseDocument(text, { lineCounter: this.lc, prettyErrors: false });
  }

  /** Where a key path is: the key itself when it exists, else the nearest ancestor that does. */
  at(path: (string | number)[]): { line: number; col: number } {
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      if (n > 0) {
        const parent = n > 1 ? this.doc.getIn(sub.slice(0, -1), true) : this.doc.contents;
        if (isMap(parent)) {
          const pair = parent.items.find((it) => (it.key as { value?: unknown } | null)?.value === sub[n - 1]);
          const off = (pair?.key as { range?: [number, number, number] } | undefined)?.range?.[0];
          if (off !== undefined && n === path.length) return this.lc.linePos(off);
        }
      }
      const node = this.doc.getIn(sub, true) as { range?: [number, number, number] } | undefined;
      const off = node?.range?.[0];
      if (off !== undefined) return this.lc.linePos(off);
    }
    return { line: 1, col: 1 };
  }

  problem(path: (string | number)[], message: string): ConfigProblem {
    return { path: path.join('.'), message, file: this.file, ...this.at(path) };
  }

  /** The parser's own errors, one problem each; `what` names what the file should have been. */
  syntaxProblems(what = 'YAML/JSON'): ConfigProblem[] {
    return this.doc.errors.map((e) => {
      const lp = e.linePos?.[0] ?? this.lc.linePos(e.pos[0]);
      return { path: '', message: `invalid ${what}: ${e.message.split('\n')[0]}`, file: this.file, line: lp.line, col: lp.col };
    });
  }
}
