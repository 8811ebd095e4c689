/** Shapes shared by the engine's stages: positions, errors, priorities, rules and matches. */
import type { Event } from '../events.js';

/** A place in a rules file, 1-based, as editors count. */
export interface Position {
  file: string;
  line: number;
  col: number;
}

/** Falco's priorities, most severe first; the index is the severity rank (0 = emergency). */
export const PRIORITIES = ['EMERGENCY', 'ALERT', 'CRITICAL', 'ERROR', 'WARNING', 'NOTICE', 'INFORMATIONAL', 'DEBUG'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** Spellings Falco accepts besides the canonical names (any case). */
const PRIORITY_ALIASES: Record<string, Priority> = {
  EMERGENCY: 'EMERGENCY', ALERT: 'ALERT', CRITICAL: 'CRITICAL', ERROR: 'ERROR', WARNING: 'WARNING',
  NOTICE: 'NOTICE', INFORMATIONAL: 'INFORMATIONAL', DEBUG: 'DEBUG',
  INFO: 'INFORMATIONAL', WARN: 'WARNING', CRIT: 'CRITICAL', ERR: 'ERROR', EMERG: 'EMERGENCY',
};

export function parsePriority(s: string): Priority | undefined {
  return PRIORITY_ALIASES[s.trim().toUpperCase()];
}

/** "Critical", "Informational": how Falco prints a priority in text and JSON alerts. */
export function priorityLabel(p: Priority): string {
  return p[0] + p.slice(1).toLowerCase();
}

export function priorityRank(p: Priority): number {
  return PRIORITIES.indexOf(p);
}

/** One problem found while loading rules: where, what, and the text at fault. */
export interface RuleProblem {
  pos: Position;
  message: string;
  /** The source text at fault (a token, a key), when there is one. */
  snippet?: string;
  /** The rule, macro or list the problem belongs to. */
  item?: string;
  /** Falco's load code (LOAD_ERR_COMPILE_CONDITION, LOAD_UNUSED_MACRO, …): see engine/load/codes.ts. */
  code?: string;
  /** The kind of item the problem is in (rule, macro condition, exception, …), as Falco names it. */
  itemType?: string;
}

export function formatProblem(p: RuleProblem, kind: 'error' | 'warning' = 'error'): string {
  const at = `${p.pos.file}:${p.pos.line}:${p.pos.col}`;
  const what = p.item ? ` (${p.item})` : '';
  const snip = p.snippet !== undefined ? `: '${p.snippet}'` : '';
  const code = p.code ? ` [${p.code}]` : '';
  return `${at}: ${kind}${what}: ${p.message}${snip}${code}`;
}

/** Thrown by the loader when any file fails: the load is all or nothing. */
export class RulesLoadError extends Error {
  constructor(readonly errors: RuleProblem[], readonly warnings: RuleProblem[] = []) {
    super(errors.map((e) => formatProblem(e)).join('\n'));
    this.name = 'RulesLoadError';
  }
}

/** One value in an alert's output_fields: bigint only past 2^53 (nanosecond times). */
export type OutputScalar = string | number | bigint | boolean;
/** A field's value in Falco's JSON: a scalar, an array for list fields, null when missing. */
export type OutputValue = OutputScalar | OutputScalar[] | null;

/** What the engine emits for every event a rule matches (ARCHITECTURE.md, "Matches, alerts, actions"). */
export interface Match {
  rule: string;
  priority: Priority;
  source: string;
  /** The rule's tags, sorted and each once (as Falco keeps them). */
  tags: string[];
  /** The rule's output string with its fields filled in (no time or priority prefix). */
  output: string;
  /**
   * Every field the output names, by its name as written (without transformers), null where
   * missing, typed as Falco's JSON types it; plus append_output's extra_fields.
   */
  outputFields: Record<string, OutputValue>;
  /** Event time, ns since the epoch. */
  time: bigint;
  hostname: string;
  /** The event itself: pid, process start time, container and pod are always at hand. */
  event: Event;
}
