/**
 * The engine's front door: the rules engine with minewatch's built-in field catalogs and default
 * rules. Knows nothing of where events come from or where matches go.
 */
import { fileURLToPath } from 'node:url';
import { defaultRegistry } from '../fields/index.js';
import { type EngineOptions as CoreOptions, RulesEngine, readRulesFiles } from './engine.js';
import type { RulesFileInput } from './loader.js';

export { RulesLoadError, formatProblem, PRIORITIES, parsePriority, priorityLabel } from './types.js';
export type { Match, Priority, RuleProblem, Position } from './types.js';
export type { Ruleset, CompiledRule, RuleDef, RulesFileInput } from './loader.js';
export { RulesEngine, readRulesFiles } from './engine.js';

/** minewatch's own default rules, shipped in the package's rules/ folder. */
export const DEFAULT_RULES_DIR = fileURLToPath(new URL('../../../rules/', import.meta.url));
export const DEFAULT_RULES_FILES = [
  fileURLToPath(new URL('../../../rules/minewatch_rules.yaml', import.meta.url)),
  fileURLToPath(new URL('../../../rules/minewatch_k8s_rules.yaml', import.meta.url)),
];

/** Rules paths in order; the word `default` stands for minewatch's own rules. None: the defaults. */
export function resolveRulesPaths(rules: readonly string[] | undefined): string[] {
  if (!rules || rules.length === 0) return [...DEFAULT_RULES_FILES];
  return rules.flatMap((r) => (r === 'default' ? DEFAULT_RULES_FILES : [r]));
}

export type EngineOptions = Omit<CoreOptions, 'registry'> & { registry?: CoreOptions['registry'] };

/** The rules engine over the built-in catalogs unless a registry is given. */
export class Engine extends RulesEngine {
  constructor(files: RulesFileInput[], options: EngineOptions = {}) {
    super(files, { ...options, registry: options.registry ?? defaultRegistry() });
  }

  static fromFiles(paths: string[], options: EngineOptions = {}): Engine {
    return new Engine(readRulesFiles(paths), options);
  }
}
