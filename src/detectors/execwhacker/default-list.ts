/**
 * minewatch's shipped banned list (rules/execwhacker-banned.yaml, in the `detectors` format with
 * `enabled: false`), and the configs the execwhacker matches: that list first when `default_list`
 * is on (its `enabled` does not count: only its configs are taken), then the section's own.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../config/problems.js';
import { YamlFile } from '../../config/yaml-file.js';
import { type ExecConfigEntry, type ExecwhackerSettings, execwhackerInput, execwhackerWithDefaults } from './config.js';

/** The banned list minewatch ships. */
export const DEFAULT_BANNED_FILE = fileURLToPath(new URL('../../../../rules/execwhacker-banned.yaml', import.meta.url));
/** The name its config entry carries. */
export const DEFAULT_BANNED_CONFIG = 'minewatch-default';

let defaultConfigs: Record<string, ExecConfigEntry> | undefined;

/** The shipped list's configs, parsed once. Throws ConfigError (file, line) if the shipped file is broken. */
export function defaultBannedConfigs(): Record<string, ExecConfigEntry> {
  if (defaultConfigs) return defaultConfigs;
  const f = new YamlFile(readFileSync(DEFAULT_BANNED_FILE, 'utf8'), DEFAULT_BANNED_FILE);
  if (f.doc.errors.length) throw new ConfigError(f.syntaxProblems());
  const raw = f.doc.toJSON() as { detectors?: { execwhacker?: unknown } } | null;
  const r = execwhackerInput.safeParse(raw?.detectors?.execwhacker ?? {});
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => f.problem(['detectors', 'execwhacker', ...(i.path as (string | number)[])], i.message)));
  defaultConfigs = execwhackerWithDefaults({ configs: r.data.configs ?? {} }, [], { enabledNote: false }).configs;
  return defaultConfigs;
}

/** Configs of one name merge as cryptnono merges its files: the lists concatenate, duplicates dropped. */
function mergeConfigs(a: Record<string, ExecConfigEntry>, b: Record<string, ExecConfigEntry>): Record<string, ExecConfigEntry> {
  const out: Record<string, ExecConfigEntry> = { ...a };
  for (const [name, c] of Object.entries(b)) {
    const was = out[name];
    out[name] = was
      ? {
          bannedCommandStrings: [...new Set([...was.bannedCommandStrings, ...c.bannedCommandStrings])],
          allowedCommandPatterns: [...new Set([...was.allowedCommandPatterns, ...c.allowedCommandPatterns])],
        }
      : c;
  }
  return out;
}

/** The execwhacker configs to match, in order: the shipped list first when `default_list` is on, then the section's own. */
export function effectiveExecConfigs(d: { execwhacker: Pick<ExecwhackerSettings, 'configs' | 'default_list'> }): ({ name: string } & ExecConfigEntry)[] {
  const ew = d.execwhacker;
  const configs = ew.default_list ? mergeConfigs(defaultBannedConfigs(), ew.configs) : ew.configs;
  return Object.entries(configs).map(([name, c]) => ({
    name,
    bannedCommandStrings: [...c.bannedCommandStrings],
    allowedCommandPatterns: [...c.allowedCommandPatterns],
  }));
}
