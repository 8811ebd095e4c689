/**
 * Reading cryptnono's config files, whatever kind each one is: cryptnono's own standalone JSON
 * config (`{"bannedCommandStrings": […], "allowedCommandPatterns": […]}`, its example/config.json,
 * loaded as one execwhacker config named after the file), cryptnono's chart values (or a parent
 * chart's with cryptnono as a subchart), a minewatch config (checked whole), or a bare `detectors`
 * mapping (execwhacker, monero, tcpflowkiller). Several files merge in order, as cryptnono merges
 * the files Helm passes it. Every problem names its file, line and key path.
 * `minewatch whack test|check-config` reads files through here.
 */
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../config/problems.js';
import { type Raw, isObj } from './chart-keys.js';
import { DETECTOR_NAMES, type DetectorsConfig, type DetectorsInput, detectorsInput, detectorsWithDefaults, dropNulls, mergeDetectorsInput } from './config.js';
import { ENABLED_NOTE, EXEC_CONFIG_ENTRY_KEYS, execConfigEntryInput } from './execwhacker/config.js';
import { detectorModules } from './registry.js';
import { YamlFile } from '../config/yaml-file.js';

/** Top-level keys of cryptnono's chart values besides `detectors`: skipped with a note when a values file is loaded. */
/**
 * How a whole minewatch config is checked when a detectors file turns out to be one (config/load.ts
 * gives it: the config layer sits above the detectors, so it is handed down, not imported).
 */
export interface WholeConfigCheck {
  /** The config's section names, to tell a minewatch config from cryptnono's files. */
  names(): string[];
  /** Parse and validate it all; throws ConfigError naming file and line. */
  parse(text: string, file: string): { warnings: ConfigProblem[] };
}

const CHART_KEYS = new Set([
  'image', 'imagePullSecrets', 'nameOverride', 'fullnameOverride', 'podAnnotations', 'podLabels', 'podSecurityContext',
  'containerSecurityContext', 'nodeSelector', 'tolerations', 'affinity', 'priorityClassName', 'fetchKernelHeaders',
  'serviceAccount', 'updateStrategy', 'resources', 'env', 'global',
]);

// ---- standalone files ----------------------------------------------------------------------------

/** What a standalone file turned out to be. */
export type DetectorsFileKind = 'cryptnono-config' | 'chart-values' | 'minewatch-config' | 'detectors' | 'empty';

export interface LoadedDetectors {
  /** The files merged, defaults not yet filled in (merge more, or call detectorsWithDefaults). */
  input: DetectorsInput;
  /** Merged, with defaults. Its `notes` are also in `warnings`, with their file and line. */
  detectors: DetectorsConfig;
  warnings: ConfigProblem[];
  files: { file: string; kind: DetectorsFileKind }[];
}

/** Keys a user may have meant, per place, for "unknown key" messages: each detector knows its own. */
function knownKeys(path: (string | number)[]): string[] | undefined {
  const p = path.map(String);
  const i = p.lastIndexOf('detectors');
  const rel = i >= 0 ? p.slice(i + 1) : p;
  if (rel.length === 0) return i >= 0 ? [...DETECTOR_NAMES] : EXEC_CONFIG_ENTRY_KEYS;
  return detectorModules().find(([name]) => name === rel[0])?.[1].knownKeys(rel.slice(1));
}

function unknownKeyMessage(parent: (string | number)[]): string {
  const known = knownKeys(parent);
  return `unknown key; ${known ? `known keys here: ${known.join(', ')}` : 'check its spelling'}`;
}

function zodProblems(ctx: YamlFile, issues: z.core.$ZodIssue[], prefix: (string | number)[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(ctx.problem([...path, key], unknownKeyMessage(path)));
    } else out.push(ctx.problem(path, issue.message));
  }
  return out;
}

const MINEWATCH_ONLY_KEYS = new Set(['json_output', 'stdout_output', 'file_output', 'priority', 'rule_matching']);

/** Parse one standalone file into a detectors input. Problems are pushed, not thrown. */
function parseDetectorsFile(text: string, file: string, problems: ConfigProblem[], warnings: ConfigProblem[], registry?: WholeConfigCheck): { input: DetectorsInput; kind: DetectorsFileKind } {
  const ctx = new YamlFile(text, file);
  const none = { input: {}, kind: 'empty' as const };
  if (ctx.doc.errors.length) {
    problems.push(...ctx.syntaxProblems());
    return none;
  }
  const raw = dropNulls(ctx.doc.toJSON() ?? {});
  if (!isObj(raw)) {
    problems.push({ path: '', message: 'expected a mapping: cryptnono\'s config.json ({"bannedCommandStrings": […]}), chart values with detectors:, or a minewatch config', file, line: 1, col: 1 });
    return none;
  }
  const keys = Object.keys(raw);
  const validate = (value: unknown, prefix: (string | number)[]): DetectorsInput => {
    const r = detectorsInput.safeParse(value ?? {});
    if (r.success) return r.data;
    problems.push(...zodProblems(ctx, r.error.issues, prefix));
    return {};
  };

  // cryptnono's standalone config.json: one config, named after the file (execwhacker-<name>.json in its chart).
  if ('bannedCommandStrings' in raw || 'allowedCommandPatterns' in raw) {
    const r = execConfigEntryInput.safeParse(raw);
    if (!r.success) {
      problems.push(...zodProblems(ctx, r.error.issues, []));
      return none;
    }
    const name = basename(file, extname(file)).replace(/^execwhacker-/, '') || 'config';
    return { input: { execwhacker: { configs: { [name]: r.data } } }, kind: 'cryptnono-config' };
  }

  if ('detectors' in raw) {
    const sectionNames = new Set((registry?.names() ?? []).filter((n) => n !== 'detectors'));
    const minewatch = keys.some((k) => k !== 'detectors' && !CHART_KEYS.has(k) && (sectionNames.has(k) || MINEWATCH_ONLY_KEYS.has(k) || (!registry && k === 'rules_files')));
    if (minewatch) {
      // A minewatch config: check all of it as `minewatch run` would (when the caller can).
      try {
        if (registry) warnings.push(...registry.parse(text, file).warnings);
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        problems.push(...e.problems);
        return none;
      }
      return { input: validate(raw.detectors, ['detectors']), kind: 'minewatch-config' };
    }
    // cryptnono's chart values.
    for (const k of keys) {
      if (k === 'detectors') continue;
      if (CHART_KEYS.has(k)) warnings.push(ctx.problem([k], "cryptnono's chart setting for its Kubernetes deployment; minewatch has no use for it here: skipped"));
      else problems.push(ctx.problem([k], `unknown key in chart values; known here: detectors (and cryptnono's chart settings: ${[...CHART_KEYS].join(', ')})`));
    }
    return { input: validate(raw.detectors, ['detectors']), kind: 'chart-values' };
  }

  // A parent chart with cryptnono as a subchart (cryptnono: {detectors: …}).
  if (isObj(raw.cryptnono) && 'detectors' in raw.cryptnono) {
    const others = keys.filter((k) => k !== 'cryptnono');
    if (others.length) warnings.push(ctx.problem([others[0]!], `not cryptnono's settings (${others.join(', ')}): skipped`));
    const sub = raw.cryptnono;
    for (const k of Object.keys(sub)) {
      if (k !== 'detectors' && !CHART_KEYS.has(k) && k !== 'enabled') problems.push(ctx.problem(['cryptnono', k], `unknown key in cryptnono's chart values; known here: detectors (and cryptnono's chart settings: ${[...CHART_KEYS].join(', ')})`));
    }
    return { input: validate(sub.detectors, ['cryptnono', 'detectors']), kind: 'chart-values' };
  }

  if (keys.length === 0) return none;
  const isDetector = (k: string): boolean => (DETECTOR_NAMES as readonly string[]).includes(k);
  if (keys.every(isDetector)) return { input: validate(raw, []), kind: 'detectors' };
  const bad = keys.find((k) => !isDetector(k))!;
  problems.push(
    ctx.problem(
      [bad],
      `unknown key: expected cryptnono's config.json (bannedCommandStrings, allowedCommandPatterns), chart values or a minewatch config (detectors:), or a detectors mapping (${DETECTOR_NAMES.join(', ')})`,
    ),
  );
  return none;
}

/**
 * Load standalone files in order and merge them (for `minewatch whack`): cryptnono's config.json,
 * cryptnono's chart values (or a parent chart's, with cryptnono: as a subchart), a minewatch
 * config (checked whole), or a bare detectors mapping. Throws ConfigError listing every problem
 * of every file (file, key path, line:col). The default banned list is not added here: see
 * effectiveExecConfigs (execwhacker/default-list.ts).
 */
export function loadDetectorsFiles(files: readonly string[], registry?: WholeConfigCheck): LoadedDetectors {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const loaded: LoadedDetectors['files'] = [];
  let input: DetectorsInput = {};
  const contexts: { file: string; ctx: YamlFile; prefix: (string | number)[]; kind: DetectorsFileKind; input: DetectorsInput }[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      problems.push({ path: '', message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, file, line: 0, col: 0 });
      continue;
    }
    const before = problems.length;
    const { input: fileInput, kind } = parseDetectorsFile(text, file, problems, warnings, registry);
    if (problems.length > before) continue;
    loaded.push({ file, kind });
    contexts.push({ file, ctx: new YamlFile(text, file), prefix: kind === 'chart-values' || kind === 'minewatch-config' ? ['detectors'] : [], kind, input: fileInput });
    input = mergeDetectorsInput(input, fileInput);
  }
  if (problems.length) throw new ConfigError(problems);
  // Notes per file, so each names its own file and line.
  let lastWithExec: (typeof contexts)[number] | undefined;
  for (const c of contexts) {
    const raw = c.ctx.doc.toJSON() as Raw;
    const prefix = c.kind === 'chart-values' && !('detectors' in raw) ? ['cryptnono', 'detectors'] : c.prefix;
    c.prefix = prefix;
    if (c.kind !== 'cryptnono-config' && c.input.execwhacker?.configs) lastWithExec = c;
    for (const n of detectorsWithDefaults(c.input, false).notes) {
      const rel = n.path.split('.');
      // cryptnono's config.json is one config entry: its paths start at bannedCommandStrings.
      const path = c.kind === 'cryptnono-config' ? rel.slice(3) : [...prefix, ...rel];
      warnings.push(c.ctx.problem(path, n.message));
    }
  }
  const detectors = detectorsWithDefaults(input, false);
  if (lastWithExec && input.execwhacker?.enabled === undefined && Object.keys(detectors.execwhacker.configs).length > 0) {
    const note = { path: 'execwhacker', message: ENABLED_NOTE };
    detectors.notes.push(note);
    warnings.push(lastWithExec.ctx.problem([...lastWithExec.prefix, 'execwhacker'], note.message));
  }
  return { input, detectors, warnings, files: loaded };
}
