/**
 * execwhacker: kill a process whose command line holds a banned string (cryptnono's detector).
 *
 *   const m = execMatcherFromConfig(config.detectors);  // once per config load; swap on reload
 *   const r = m.match(argv);                             // { kill, config, banned, allowedBy, spared }
 *
 * `execwhacker` is the registry's entry: the config section and the Detector the agent runs.
 */
export { ExecMatcher, type ExecConfigEntry, type Explanation, type MatchResult, type MatcherStats, type SpareReason } from './matcher.js';
export { BannedAutomaton, type AutomatonOptions } from './automaton.js';
export { casefold, casefoldWithOffsets, isWordCodePoint } from './casefold.js';
export { shlexJoin, shlexQuote } from './shlex.js';
export { PyRegexError, compileAllowedPattern, translatePyRegex } from './pyregex.js';
export { DEFAULT_BANNED_CONFIG, DEFAULT_BANNED_FILE, effectiveExecConfigs } from './default-list.js';
export { ExecwhackerDetector } from './detector.js';

import { defineDetector } from '../module.js';
import { type ExecwhackerSettings, execwhackerConcatenates, execwhackerInput, execwhackerKnownKeys, execwhackerWithDefaults } from './config.js';
import { effectiveExecConfigs } from './default-list.js';
import { ExecwhackerDetector } from './detector.js';
import { ExecMatcher } from './matcher.js';
import type { AutomatonOptions } from './automaton.js';

/**
 * The matcher for a loaded `detectors` section: minewatch's shipped list first (unless
 * `execwhacker.default_list: false`), then every `execwhacker.configs` entry in order. Built
 * whether or not `execwhacker.enabled` is set: the caller decides whether to act. Build it once
 * per config load, and on reload build the new one before swapping it in (no gap, and a bad
 * config throws before anything changes).
 */
export function execMatcherFromConfig(d: { execwhacker: Pick<ExecwhackerSettings, 'configs' | 'default_list'> }, opts?: AutomatonOptions): ExecMatcher {
  return new ExecMatcher(effectiveExecConfigs(d), opts);
}

export const execwhacker = defineDetector({
  name: 'execwhacker',
  input: execwhackerInput,
  withDefaults: execwhackerWithDefaults,
  concatenates: execwhackerConcatenates,
  knownKeys: execwhackerKnownKeys,
  build: (s: ExecwhackerSettings, ctx, previous) =>
    s.enabled ? new ExecwhackerDetector(execMatcherFromConfig({ execwhacker: s }), s, ctx, previous instanceof ExecwhackerDetector ? previous : undefined) : undefined,
});
