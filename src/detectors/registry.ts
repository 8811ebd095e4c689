/**
 * Every detector, one line each. The `detectors` config section (config.ts) and the running
 * detectors (buildDetectors) are both made from this list: adding a detector is its folder
 * (config section, logic, a class implementing Detector; see module.ts) and one line here.
 * The order is the order of the config's notes and of the detectors on each event.
 *
 * The CPU sampler is not here: it is a source (sources/cpu-sampler.ts) whose cpu_sustained events
 * the rules judge; it asks for no action itself.
 */
import type { z } from 'zod';
import type { SectionNotes } from './chart-keys.js';
import { execwhacker } from './execwhacker/index.js';
import type { DetectorContext, DetectorModule } from './module.js';
import { monero } from './monero/index.js';
import { tcpflowkiller } from './tcpflowkiller/index.js';
import type { Detector } from './types.js';

export const DETECTOR_MODULES = {
  execwhacker,
  monero,
  tcpflowkiller,
} as const;

type Modules = typeof DETECTOR_MODULES;
export type DetectorName = keyof Modules;

/** The `detectors` section as written: every key optional, so files can be merged before defaults fill in. */
export type DetectorsInput = { [K in DetectorName]?: z.infer<Modules[K]['input']> };

/** The `detectors` section with defaults: each detector's settings, and the notes to print as warnings. */
export type DetectorsConfig = { [K in DetectorName]: ReturnType<Modules[K]['withDefaults']> } & {
  /**
   * Keys accepted for cryptnono's sake that do nothing here (deployment-only chart keys), and other
   * things worth a warning; paths are relative to the section. Print them as warnings.
   */
  notes: SectionNotes;
};

/** A module with its types forgotten, for code that goes through all of them. */
export type AnyDetectorModule = DetectorModule<z.ZodType, unknown>;

/** The modules in order, by name. */
export function detectorModules(): [DetectorName, AnyDetectorModule][] {
  return Object.entries(DETECTOR_MODULES) as unknown as [DetectorName, AnyDetectorModule][];
}

/**
 * The detectors a config turns on. `previous` are the ones these replace on a reload: each new
 * one may keep its predecessor's memory of whom it has acted on. Nothing is replaced when one
 * cannot be built (those built so far are closed and the error is thrown); the caller closes the
 * previous ones once it has swapped.
 */
export function buildDetectors(cfg: Omit<DetectorsConfig, 'notes'>, ctx: DetectorContext, previous: readonly Detector[] = []): Detector[] {
  const built: Detector[] = [];
  try {
    for (const [name, m] of detectorModules()) {
      const d = m.build(cfg[name], ctx, previous.find((p) => p.name === name));
      if (d) built.push(d);
    }
  } catch (e) {
    for (const d of built) d.close?.();
    throw e;
  }
  return built;
}
