/**
 * What every detector's config section shares: cryptnono's chart keys that only shape its
 * Kubernetes deployment (accepted under each detector so a cryptnono values file loads unchanged,
 * noted, skipped), and the notes a section's defaults produce.
 */
import { z } from 'zod';

/** cryptnono chart keys that only shape the Kubernetes deployment: accepted under each detector, noted, skipped. */
export const DEPLOYMENT_KEYS = [
  'resources', 'env', 'metrics', 'threadpoolSize', 'containerdHostPath', 'dockerHostPath', 'bannedIpv4ConfigMaps',
  'lookupContainer', 'image', 'nodeSelector', 'tolerations', 'affinity', 'podAnnotations', 'priorityClassName',
] as const;

/** Spread into a detector's strictObject: the deployment keys, any value. */
export const deploymentShape = Object.fromEntries(DEPLOYMENT_KEYS.map((k) => [k, z.unknown().optional()])) as Record<(typeof DEPLOYMENT_KEYS)[number], z.ZodOptional<z.ZodUnknown>>;

/** Keys accepted for cryptnono's sake that do nothing here, and other things worth a warning; paths relative to `detectors`. */
export type SectionNotes = { path: string; message: string }[];

export type Raw = Record<string, unknown>;
export const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A note for each deployment-only key set in `v` (a detector's section, at `at`). */
export function deploymentNotes(v: Raw | undefined, at: string, notes: SectionNotes, keys: readonly string[] = DEPLOYMENT_KEYS): void {
  if (!v) return;
  for (const k of keys) {
    if (v[k] !== undefined) notes.push({ path: `${at}.${k}`, message: "cryptnono's deployment setting; minewatch has no use for it here: skipped" });
  }
}

/** How knownKeys describes the deployment keys in "unknown key" messages. */
export const DEPLOYMENT_HINT = `(and cryptnono's deployment keys: ${DEPLOYMENT_KEYS.join(', ')})`;
