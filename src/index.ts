/**
 * minewatch as a library (package.json `main`): the Falco-compatible rules engine over minewatch's
 * field catalogs, for a program that brings its own events (a replay tool, a CI check). The agent,
 * the server and the CLI are not part of it; they are run as `minewatch`.
 */
export {
  DEFAULT_RULES_DIR, DEFAULT_RULES_FILES, Engine, type EngineOptions, PRIORITIES, RulesLoadError, formatProblem,
  parsePriority, priorityLabel, resolveRulesPaths,
} from './engine/index.js';
export type { Match, Priority, RuleProblem, Ruleset } from './engine/index.js';
export type { Event, PluginEvent, SyscallEvent } from './events.js';
