/**
 * The fields a Falco rules file reads: in rule and macro conditions (through the condition
 * parser, so lists and operators are never taken for fields), in rule outputs (%field) and in
 * exception field lists. Written as the rules write them, arguments included (proc.aname[2],
 * evt.arg.flags).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Expr, FieldOperand } from '../../src/engine/ast.js';
import { parseCondition } from '../../src/engine/parser.js';

/** field text → the rules and macros that read it. */
export type FieldUses = Map<string, Set<string>>;

function add(uses: FieldUses, field: string, where: string): void {
  let s = uses.get(field);
  if (!s) uses.set(field, (s = new Set()));
  s.add(where);
}

function walkField(f: FieldOperand, uses: FieldUses, where: string): void {
  if (f.kind === 'transform') return walkField(f.arg, uses, where);
  add(uses, f.arg !== undefined ? `${f.name}[${f.arg}]` : f.name, where);
}

function walk(e: Expr, uses: FieldUses, where: string): void {
  switch (e.kind) {
    case 'and':
    case 'or':
      for (const x of e.items) walk(x, uses, where);
      return;
    case 'not':
      return walk(e.expr, uses, where);
    case 'cmp':
      walkField(e.left, uses, where);
      if (e.right?.kind === 'fieldval') walkField(e.right.field, uses, where);
      return;
    default:
      return;
  }
}

/** Every field the files read, for items of `source` (syscall when an item names none). */
export function fieldsReadBy(files: string[], source = 'syscall'): FieldUses {
  const uses: FieldUses = new Map();
  for (const file of files) {
    const doc = parseYaml(readFileSync(file, 'utf8')) as Array<Record<string, unknown>> | null;
    for (const item of doc ?? []) {
      if (item.source !== undefined && item.source !== source) continue;
      const name = String(item.rule ?? item.macro ?? '');
      if (!name) continue;
      if (typeof item.condition === 'string') walk(parseCondition(item.condition), uses, name);
      if (typeof item.output === 'string') {
        for (const m of item.output.matchAll(/%([a-z0-9_]+\.[A-Za-z0-9_.]+(?:\[[^\]]*\])?)/g)) add(uses, m[1]!, name);
      }
      for (const ex of (item.exceptions as Array<Record<string, unknown>> | undefined) ?? []) {
        const fields = Array.isArray(ex.fields) ? ex.fields : ex.fields === undefined ? [] : [ex.fields];
        for (const f of fields) if (typeof f === 'string') add(uses, f, name);
      }
    }
  }
  return uses;
}
