/**
 * What a detector's folder exports for the registry: its config section (schema as written,
 * defaults, how its lists merge, its keys for "unknown key" messages) and how to build it.
 * registry.ts lists one of these per detector; the `detectors` config section and the running
 * detectors are both made from that list, so adding a detector is its folder and one line there.
 */
import type { z } from 'zod';
import type { ContainerInfo, ProcessInfo } from '../events.js';
import type { SectionNotes } from './chart-keys.js';
import type { Detector } from './types.js';

/** What detectors need from the layers below them, given by whoever builds them (the agent). */
export interface DetectorContext {
  /** The agent's own processes and their children: never looked at. */
  isSelf(pid: number): boolean;
  /** The process table's entry for a pid, when it has one. */
  lookup(pid: number): ProcessInfo | undefined;
  containerOf(pid: number): ContainerInfo | undefined;
  log: {
    info(fields: Record<string, unknown>, msg: string): void;
    warn(fields: Record<string, unknown>, msg: string): void;
    debug(fields: Record<string, unknown>, msg: string): void;
  };
  /**
   * The eBPF driver's: the RandomX rule has judged this process, send fewer of its FPU events.
   * Absent (or a no-op) under other drivers.
   */
  fpuJudged?(pid: number, startTs: bigint | undefined): void;
}

export interface DetectorModule<I extends z.ZodType, S, D extends Detector = Detector> {
  readonly name: string;
  /** The section as written: every key optional, so files can be merged before defaults fill in. */
  readonly input: I;
  /** Defaults filled in; notes (paths relative to `detectors`) for keys that do nothing here. */
  withDefaults(input: z.infer<I> | undefined, notes: SectionNotes, opts: { enabledNote: boolean }): S;
  /** Whether the list at this path (relative to the section) concatenates when files merge; else the later file's replaces it. */
  concatenates?(path: readonly string[]): boolean;
  /** Keys a user may have meant at this path (relative to the section), for "unknown key" messages. */
  knownKeys(path: readonly string[]): string[] | undefined;
  /**
   * The running detector, or undefined while it is off. `previous` is the one this replaces on a
   * reload (same name), to keep whom it has already acted on.
   */
  build(settings: S, ctx: DetectorContext, previous: Detector | undefined): D | undefined;
}

/** Keeps the module's types (the registry derives the config's types from them). */
export function defineDetector<I extends z.ZodType, S, D extends Detector>(m: DetectorModule<I, S, D>): DetectorModule<I, S, D> {
  return m;
}
