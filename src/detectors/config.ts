/**
 * The `detectors` section: cryptnono's Helm chart values, as they are, so a cryptnono user's values
 * file works unchanged (ARCHITECTURE.md, "One config file"). Each detector's own keys and defaults
 * are in its folder (<name>/config.ts); this puts them together from the registry's list.
 *
 * The chart's deployment-only keys (resources, env, metrics, threadpoolSize, containerdHostPath,
 * dockerHostPath, bannedIpv4ConfigMaps, image, nodeSelector, tolerations, …) are accepted, noted
 * and skipped. Several files (or `configs` entries) merge as cryptnono merges the files Helm
 * passes it: the lists of a config name concatenate (duplicates dropped), later scalars win.
 * Reading cryptnono's own files is cryptnono-files.ts's.
 */
import { z } from 'zod';
import { type Raw, type SectionNotes, isObj } from './chart-keys.js';
import { type DetectorName, type DetectorsConfig, type DetectorsInput, detectorModules } from './registry.js';

export type { DetectorsConfig, DetectorsInput };

/** The section as written: every key optional, so files can be merged before defaults fill in. */
export const detectorsInput = z.strictObject(Object.fromEntries(detectorModules().map(([name, m]) => [name, m.input.optional()]))) as unknown as z.ZodType<DetectorsInput>;

/** The detectors' names, in order. */
export const DETECTOR_NAMES: readonly DetectorName[] = detectorModules().map(([name]) => name);

/** Helm's meaning of null: the key is unset. */
export function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (!isObj(v)) return v;
  const out: Raw = {};
  for (const [k, x] of Object.entries(v)) {
    // An own `__proto__` key (YAML allows it) must stay a key, so validation can refuse it.
    if (x !== null) Object.defineProperty(out, k, { value: dropNulls(x), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Lists that concatenate when files merge (the rest are replaced by the later file): each detector says which of its own. */
function concatenates(path: string[]): boolean {
  const m = detectorModules().find(([name]) => name === path[0])?.[1];
  return m?.concatenates?.(path.slice(1)) ?? false;
}

function mergeAt(a: unknown, b: unknown, path: string[]): unknown {
  if (b === undefined) return a;
  if (a === undefined) return b;
  if (isObj(a) && isObj(b)) {
    const out: Raw = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = mergeAt(a[k], v, [...path, k]);
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b) && concatenates(path)) return [...new Set<unknown>([...(a as unknown[]), ...(b as unknown[])])];
  return b;
}

/** Merge two inputs as cryptnono merges its files: lists of one config name concatenate, later scalars win. */
export function mergeDetectorsInput(a: DetectorsInput, b: DetectorsInput): DetectorsInput {
  return mergeAt(a, b, []) as DetectorsInput;
}

/**
 * Defaults filled in; deployment-only keys and empty banned strings become notes, and so does an
 * `execwhacker.enabled` left unset beside configs (unless `enabledNote` is false).
 */
export function detectorsWithDefaults(input: DetectorsInput, enabledNote = true): DetectorsConfig {
  const notes: SectionNotes = [];
  const out: Record<string, unknown> = {};
  for (const [name, m] of detectorModules()) out[name] = m.withDefaults(input[name], notes, { enabledNote });
  return { ...out, notes } as DetectorsConfig;
}

/** The section's schema, registered in config/sections.ts: validates, then fills defaults. */
export const detectorsSection = z.preprocess(dropNulls, detectorsInput).transform((v) => detectorsWithDefaults(v));
