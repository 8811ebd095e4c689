/**
 * Load results in the JSON shape `falco -V FILE… -o json_output=true` prints
 * (falco userspace/engine/rule_loader.cpp, result::as_json and context::as_json), so rules CI
 * written against Falco reads ours unchanged:
 *   {"falco_load_results": [{"name", "successful", "errors": [...], "warnings": [...]}]}
 * each problem {"context": {"locations": [...], "snippet"}, "code", "codedesc", "message"}.
 * Positions are 0-based lines and columns with a character offset, as yaml-cpp marks are.
 */
import type { RuleProblem } from '../types.js';
import { ERROR_CODES, type ErrorCode, WARNING_CODES, type WarningCode } from './codes.js';

export interface FalcoPosition {
  name: string;
  line: number;
  column: number;
  offset: number;
}

export interface FalcoLocation {
  item_type: string;
  item_name: string;
  position: FalcoPosition;
}

export interface FalcoProblem {
  context: { locations: FalcoLocation[]; snippet: string };
  code: string;
  codedesc: string;
  message: string;
}

export interface FalcoLoadResult {
  name: string;
  successful: boolean;
  errors: FalcoProblem[];
  warnings: FalcoProblem[];
}

/** Characters of context on each side of the position in a snippet (Falco's snippet_width / 2). */
const HALF_WIDTH = 80;

/** Offset of a 1-based line and column in `text`. */
function offsetOf(text: string, line: number, col: number): number {
  let off = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', off);
    if (nl < 0) return text.length;
    off = nl + 1;
  }
  return Math.min(text.length, off + Math.max(0, col - 1));
}

/** The line holding `pos` (cut to HALF_WIDTH characters each side), then a caret under the position. */
function snippetAt(text: string, pos: number): string {
  if (text === '') return '<No context available>\n';
  let p = Math.min(pos, text.length - 1);
  while (p > 0 && text[p] === '\n') p--;
  let from = p;
  while (from > 0 && text[from - 1] !== '\n' && p - from < HALF_WIDTH) from--;
  let to = p;
  while (to < text.length - 1 && text[to + 1] !== '\n' && to - p < HALF_WIDTH) to++;
  let line = text.slice(from, to + 1);
  if (text[from] === '\n') line = line.slice(1);
  if (p - from >= HALF_WIDTH) line = '...' + line.slice(3);
  if (to - p >= HALF_WIDTH) line = line.slice(0, -3) + '...';
  return `${line}\n${' '.repeat(Math.max(0, p - from))}^\n`;
}

/** The kind of the item a problem belongs to, for the second location (rule, macro or list). */
function rootType(itemType: string | undefined): string {
  if (!itemType) return 'rule';
  if (itemType.startsWith('macro')) return 'macro';
  if (itemType.startsWith('list')) return 'list';
  if (itemType.startsWith('required')) return itemType;
  return 'rule';
}

function problemJson(p: RuleProblem, contents: ReadonlyMap<string, string>, kind: 'error' | 'warning'): FalcoProblem {
  const text = contents.get(p.pos.file) ?? '';
  const offset = p.pos.line > 0 ? offsetOf(text, p.pos.line, p.pos.col) : 0;
  const here: FalcoPosition = { name: p.pos.file, line: Math.max(0, p.pos.line - 1), column: Math.max(0, p.pos.col - 1), offset };
  const locations: FalcoLocation[] = [{ item_type: 'rules content', item_name: '', position: { name: p.pos.file, line: 0, column: 0, offset: 0 } }];
  if (p.item !== undefined) locations.push({ item_type: rootType(p.itemType), item_name: p.item, position: here });
  if (p.itemType && p.itemType !== rootType(p.itemType) && p.itemType !== 'rules content') locations.push({ item_type: p.itemType, item_name: '', position: here });
  if (locations.length === 1) locations[0] = { ...locations[0]!, position: here };
  const code = p.code ?? (kind === 'error' ? 'LOAD_ERR_VALIDATE' : 'LOAD_UNKNOWN_ITEM');
  const codedesc = kind === 'error' ? ERROR_CODES[code as ErrorCode] ?? '' : WARNING_CODES[code as WarningCode] ?? '';
  return { context: { locations, snippet: p.pos.line > 0 ? snippetAt(text, offset) : '<No context available>\n' }, code, codedesc, message: p.message };
}

export function loadResultJson(
  r: { path: string; successful: boolean; errors: readonly RuleProblem[]; warnings: readonly RuleProblem[] },
  contents: ReadonlyMap<string, string>,
): FalcoLoadResult {
  return {
    name: r.path,
    successful: r.successful,
    errors: r.errors.map((e) => problemJson(e, contents, 'error')),
    warnings: r.warnings.map((w) => problemJson(w, contents, 'warning')),
  };
}
