/**
 * The field catalog's vocabulary. Each source (syscall, k8s_audit, github) contributes one module
 * of FieldDefs; the compiler resolves a field name once, through the catalog, into an Extractor.
 */
import type { Event } from '../events.js';
import type { EventMemo } from './memo.js';

/**
 * Falco's field types, folded to what comparisons need:
 * - charbuf: text; every string operator applies.
 * - bytebuf: raw bytes (evt.buffer); string operators plus bcontains/bstartswith.
 * - int64, uint64, port, reltime (ns duration), abstime (ns since epoch): numbers.
 * - bool: true/false.
 * - ipaddr: an IP address; compared with addresses or CIDR networks.
 * - ipnet: the event's address compared against networks (fd.net = "10.0.0.0/8").
 * - flags, mode: rendered flag names such as "O_WRONLY|O_CREAT"; `contains` tests a flag.
 */
export type FieldType =
  | 'charbuf' | 'bytebuf' | 'int64' | 'uint64' | 'port' | 'reltime' | 'abstime'
  | 'bool' | 'ipaddr' | 'ipnet' | 'flags' | 'mode';

export type FieldValue = string | number | bigint | boolean;
/** What an extractor returns: a value, an array of values for list fields, or undefined when missing (<NA>). */
export type Extracted = FieldValue | FieldValue[] | undefined;
export type Extractor = (ev: Event) => Extracted;
/**
 * Walks the values of a list field without building its array: true when `test` holds for one of
 * the values the field's extractor would give, false when it gives none (or undefined). Never
 * throws, like an extractor; `test` must not throw either.
 */
export type AnyOf = (ev: Event, test: (v: FieldValue) => boolean) => boolean;

export interface FieldDef {
  /** Full Falco name, e.g. "proc.aname"; arguments come after it as [x] or .x */
  name: string;
  type: FieldType;
  desc: string;
  /**
   * How the field takes an argument:
   * - none: never (proc.name)
   * - index: numeric `[N]` (proc.aname[2]); `optional` says whether it may be omitted
   * - key: text key `[KEY]` or `.KEY` (evt.arg.mode, evt.arg[1], proc.env[HOME])
   */
  arg?: 'none' | 'index' | 'key';
  argOptional?: boolean;
  /** True when the field yields several values (fd.types, ka.req.pod.containers.image). */
  isList?: boolean;
  /**
   * For fields like proc.aname and proc.apid: without an index they yield every ancestor, and a
   * comparison succeeds when any of them satisfies it (Falco's semantics), not all. With an index
   * they yield one value (proc.aname[2]), and compare as a single-valued field.
   */
  anyWhenNoArg?: boolean;
  /**
   * Appended to every rule output of its source as `name_with_underscores=%name` when Falco's
   * append_output has `suggested_output: true` (libs' EPF_FORMAT_SUGGESTED; for syscalls, the
   * container plugin's container and pod fields). The number orders them.
   */
  suggestedOutput?: number;
  /**
   * Build the extractor once, at compile time, with the argument bound. `memo` is the engine's
   * per-event cache, for fields that share a parse of the event (without one, each call parses).
   */
  bind(arg: string | undefined, memo?: EventMemo): Extractor;
  /**
   * The same extractor without its guard against malformed events, for a caller that takes a
   * throw as a missing value itself (the engine's field slots): one call less per extraction.
   */
  bindUnguarded?(arg: string | undefined, memo?: EventMemo): Extractor;
  /**
   * For anyWhenNoArg fields used without an argument: an AnyOf over the same values the extractor
   * gives, so a comparison (any value satisfies it) allocates nothing.
   */
  bindAny?: () => AnyOf;
}

export interface FieldCatalog {
  source: string;
  fields: FieldDef[];
}
