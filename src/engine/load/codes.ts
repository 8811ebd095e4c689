/**
 * The codes every load problem carries: Falco's falco::load_result error and warning codes
 * (falco userspace/engine/falco_load_result.h), so scripts written against `falco -V` output read
 * ours unchanged. Tests assert these codes, not message text.
 */
import type { Position, RuleProblem } from '../types.js';

export const ERROR_CODES = {
  LOAD_ERR_FILE_READ: 'File read error',
  LOAD_ERR_YAML_PARSE: 'YAML parse error',
  LOAD_ERR_YAML_VALIDATE: 'Error validating internal structure of YAML file',
  LOAD_ERR_COMPILE_CONDITION: 'Error compiling condition',
  LOAD_ERR_COMPILE_OUTPUT: 'Error compiling output',
  LOAD_ERR_VALIDATE: 'Error validating rule/macro/list/exception objects',
  LOAD_ERR_EXTENSION: 'Error in extension item',
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export const WARNING_CODES = {
  LOAD_UNKNOWN_SOURCE: 'A rule names an event source that is not loaded; the rule is skipped.',
  LOAD_UNSAFE_NA_CHECK: 'A condition compares a field with <NA>; test for the field with the exists operator instead.',
  LOAD_NO_EVTTYPE: 'A condition does not narrow the event types (or names more than 100): it runs for nearly every event.',
  LOAD_UNKNOWN_FILTER: 'A condition or output names a field or event type that does not exist; with skip-if-unknown-filter the rule is skipped instead of failing the load.',
  LOAD_UNUSED_MACRO: 'A macro is defined but no rule or macro uses it.',
  LOAD_UNUSED_LIST: 'A list is defined but no rule, macro or list uses it.',
  LOAD_UNKNOWN_ITEM: 'A top-level item is none of rule, macro, list or version requirement; it is ignored.',
  LOAD_DEPRECATED_ITEM: 'A list, macro or rule uses a deprecated form.',
  LOAD_WARNING_EXTENSION: 'An extension item has a warning.',
  LOAD_APPEND_NO_VALUES: 'An exception is appended to or overridden with no values.',
  LOAD_EXCEPTION_NAME_NOT_UNIQUE: 'A rule defines several exceptions with the same name.',
  LOAD_INVALID_MACRO_NAME: 'A macro name is not an identifier.',
  LOAD_INVALID_LIST_NAME: 'A list name is not a bare string.',
  LOAD_COMPILE_CONDITION: 'A condition or output was compiled with a warning.',
} as const;
export type WarningCode = keyof typeof WARNING_CODES;

/** What kind of thing a problem is in (Falco's rule_loader::context item types). */
export type ItemType =
  | 'rules content' | 'rules content item' | 'required_engine_version' | 'required plugin versions'
  | 'required plugin versions entry' | 'required plugin versions alternative' | 'list' | 'list item' | 'macro' | 'macro condition' | 'rule'
  | 'rule condition' | 'condition expression' | 'rule output' | 'rule priority' | 'exceptions'
  | 'exception' | 'exception values' | 'exception value' | 'overrides' | 'value for';

/** A load problem: a RuleProblem with its code and the kind of item it is in. */
export interface LoadProblem extends RuleProblem {
  code: ErrorCode | WarningCode;
  itemType?: ItemType;
}

/** Where problems of one load go; the load fails when `errors` is not empty. */
export class Problems {
  readonly errors: LoadProblem[] = [];
  readonly warnings: LoadProblem[] = [];

  error(code: ErrorCode, pos: Position, message: string, where: { snippet?: string; item?: string; itemType?: ItemType } = {}): void {
    this.errors.push({ pos, message, code, ...clean(where) });
  }

  warn(code: WarningCode, pos: Position, message: string, where: { snippet?: string; item?: string; itemType?: ItemType } = {}): void {
    this.warnings.push({ pos, message, code, ...clean(where) });
  }
}

function clean(w: { snippet?: string; item?: string; itemType?: ItemType }): { snippet?: string; item?: string; itemType?: ItemType } {
  const out: { snippet?: string; item?: string; itemType?: ItemType } = {};
  if (w.snippet !== undefined) out.snippet = w.snippet;
  if (w.item !== undefined) out.item = w.item;
  if (w.itemType !== undefined) out.itemType = w.itemType;
  return out;
}

/** A problem thrown out of a stage: the stage stops that item and records it. */
export class LoadFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly pos: Position,
    readonly snippet?: string,
    readonly itemType?: ItemType,
  ) {
    super(message);
    this.name = 'LoadFailure';
  }
}
