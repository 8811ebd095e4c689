/**
 * Reads the one config file: YAML → sections, each validated by the schema its module registered.
 * Falco's own falco.yaml keys that mean the same thing are accepted and translated. Every problem
 * names the key's path and its file:line:col.
 */
import type { WholeConfigCheck } from '../detectors/cryptnono-files.js';
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import type { ConfigRegistry } from './registry.js';
import { type Config, defaultSections } from './sections.js';
import { ConfigError, type ConfigProblem } from './problems.js';
import { YamlFile } from './yaml-file.js';

export { ConfigError, type ConfigProblem, formatConfigProblem } from './problems.js';

/** Falco keys with no meaning here: accepted with a warning, so a falco.yaml loads. */
const FALCO_IGNORED = new Set([
  'log_level', 'log_stderr', 'log_syslog', 'libs_logger', 'buffered_outputs', 'syscall_event_drops',
  'syscall_event_timeouts', 'metrics', 'watch_config_files', 'time_format_iso_8601', 'webserver', 'grpc', 'grpc_output',
  'syslog_output', 'load_plugins', 'plugins', 'engine_kind', 'base_syscalls', 'falco_libs', 'output_timeout',
  'outputs_queue', 'config_files', 'rules_matching', 'static_fields', 'container_engines',
  'json_include_output_property', 'json_include_tags_property', 'json_include_message_property',
  'json_include_output_fields_property', 'capture', 'plugins_hostinfo',
]);

/** Falco's top-level keys that are settings of our engine section under the same name. */
const FALCO_ENGINE_KEYS: readonly string[] = ['priority', 'rule_matching', 'append_output'];

/** Falco's program_output and http_output keys → ours (outputs.program, outputs.webhook). */
const FALCO_OUTPUT_KEYS: Record<string, Record<string, string>> = {
  program_output: { enabled: 'enabled', keep_alive: 'keep_alive', program: 'program' },
  http_output: {
    enabled: 'enabled', url: 'url', user_agent: 'user_agent', insecure: 'insecure', ca_file: 'ca_cert',
    cert_file: 'client_cert', key_file: 'client_key',
  },
};

/** Translate one Falco output block; keys with no meaning here are returned to be warned about. */
function falcoOutputAlias(key: string, v: Raw): { settings: Raw; ignored: string[] } {
  const map = FALCO_OUTPUT_KEYS[key]!;
  const theirsToOurs = new Map(Object.entries(map).map(([ours, theirs]) => [theirs, ours]));
  const settings: Raw = { enabled: v.enabled ?? false };
  const ignored: string[] = [];
  for (const [k, val] of Object.entries(v)) {
    // falco.yaml spells "not set" as "" (url: "", ca_cert: "").
    if (val === '' || val === null) continue;
    const ours = theirsToOurs.get(k);
    if (ours) settings[ours] = val;
    // Falco's CA bundle is the same file as its ca_cert; mtls only switches client_cert/key on.
    else if (key === 'http_output' && k === 'ca_bundle') settings.ca_file ??= val;
    else if (key === 'http_output' && k === 'mtls') continue;
    // Falco's defaults (echo: false, ca_path: /etc/ssl/certs, …) and disabled outputs: no noise.
    else if (v.enabled === true && val !== false && !(k === 'ca_path' && val === '/etc/ssl/certs') && k !== 'max_consecutive_timeouts') ignored.push(k);
  }
  if (key === 'http_output' && v.mtls !== true) {
    delete settings.cert_file;
    delete settings.key_file;
  }
  return { settings, ignored };
}

interface Raw {
  [k: string]: unknown;
}

function deepMerge(base: Raw, over: Raw): Raw {
  const out: Raw = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = b && v && typeof b === 'object' && typeof v === 'object' && !Array.isArray(b) && !Array.isArray(v) ? deepMerge(b as Raw, v as Raw) : v;
  }
  return out;
}

export interface LoadedConfig {
  config: Config;
  warnings: ConfigProblem[];
}

/** Parse config text. `file` names it in messages. Throws ConfigError listing every problem. */
export function parseConfig(text: string, file: string, registry: ConfigRegistry = defaultSections()): LoadedConfig {
  const yf = new YamlFile(text, file);
  const doc = yf.doc;
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  // Falco keys translated into ours: report problems at the key the user wrote.
  const aliasOf = new Map<string, (string | number)[]>();
  const at = (path: (string | number)[]): { line: number; col: number } => {
    for (let n = path.length; n > 0; n--) {
      const alias = aliasOf.get(path.slice(0, n).join('.'));
      if (alias) path = [...alias, ...path.slice(n)];
    }
    return yf.at(path);
  };
  const problem = (list: ConfigProblem[], path: (string | number)[], message: string): void => {
    list.push({ path: path.join('.'), message, file, ...at(path) });
  };
  if (doc.errors.length) throw new ConfigError(yf.syntaxProblems('YAML'));
  const raw = (doc.toJSON() ?? {}) as unknown;
  if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) {
    throw new ConfigError([{ path: '', message: 'the config file must be a YAML mapping of sections (rules_files:, sources:, …)', file, line: 1, col: 1 }]);
  }
  let input: Raw = {};
  let falco: Raw = {};
  // Falco's falco.yaml keys that mean what ours mean.
  for (const [k, v] of Object.entries(raw as Raw)) {
    switch (k) {
      case 'json_output':
        falco = deepMerge(falco, { outputs: { stdout: { format: v ? 'json' : 'text' }, file: { format: v ? 'json' : 'text' }, program: { format: v ? 'json' : 'text' } } });
        break;
      case 'stdout_output':
        falco = deepMerge(falco, { outputs: { stdout: { enabled: (v as Raw | null)?.enabled ?? true } } });
        break;
      case 'file_output': {
        const f = (v ?? {}) as Raw;
        falco = deepMerge(falco, { outputs: { file: { enabled: f.enabled ?? false, ...(f.filename ? { path: f.filename } : {}) } } });
        break;
      }
      case 'program_output':
      case 'http_output': {
        const kind = k === 'program_output' ? 'program' : 'webhook';
        const { settings, ignored } = falcoOutputAlias(k, (v ?? {}) as Raw);
        // Falco pipes text lines to its program unless json_output says JSON.
        if (kind === 'program' && (raw as Raw).json_output === undefined) settings.format = 'text';
        falco = deepMerge(falco, { outputs: { [kind]: settings } });
        for (const [ours, theirs] of Object.entries(FALCO_OUTPUT_KEYS[k]!)) aliasOf.set(`outputs.${kind}.${ours}`, [k, theirs]);
        aliasOf.set(`outputs.${kind}`, [k]);
        for (const key of ignored) problem(warnings, [k, key], `Falco setting '${k}.${key}' has no effect in minewatch; ignored`);
        break;
      }
      case 'outputs': {
        // Falco's own `outputs:` holds its rate limiter (rate, max_burst); ours holds the outputs.
        input[k] = v;
        if (!v || typeof v !== 'object' || Array.isArray(v)) break;
        const ours: Raw = (input[k] = { ...(v as Raw) });
        for (const key of ['rate', 'max_burst'].filter((x) => x in ours)) {
          delete ours[key];
          problem(warnings, ['outputs', key], `Falco setting 'outputs.${key}' has no effect in minewatch (repeats are throttled by the alerts section); ignored`);
        }
        break;
      }
      default:
        if (FALCO_ENGINE_KEYS.includes(k)) {
          falco = deepMerge(falco, { engine: { [k]: v } });
          aliasOf.set(`engine.${k}`, [k]);
        } else if (registry.get(k)) input[k] = v;
        else if (FALCO_IGNORED.has(k)) {
          problem(warnings, [k], `Falco setting '${k}' has no effect in minewatch yet; ignored`);
        } else problem(problems, [k], `unknown section; known sections: ${registry.names().join(', ')} (and Falco's json_output, stdout_output, file_output, program_output, http_output, ${FALCO_ENGINE_KEYS.join(', ')})`);
    }
  }
  input = deepMerge(falco, input);
  const config: Raw = {};
  for (const name of registry.names()) {
    const section = registry.get(name)!;
    const r = (section.schema as z.ZodType).safeParse(input[name] ?? section.empty);
    if (r.success) {
      config[name] = r.data;
      continue;
    }
    for (const issue of r.error.issues) {
      const path = [name, ...(issue.path as (string | number)[])];
      if (issue.code === 'unrecognized_keys') {
        for (const key of (issue as { keys: string[] }).keys) problem(problems, [...path, key], 'unknown key; check its spelling against the documentation of this section');
      } else problem(problems, path, issue.message);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  // Sections may note keys they accept but do nothing with (cryptnono's deployment-only chart keys).
  for (const name of registry.names()) {
    const notes = (config[name] as { notes?: { path: string; message: string }[] } | undefined)?.notes;
    if (Array.isArray(notes)) for (const n of notes) problem(warnings, [name, ...n.path.split('.').filter(Boolean)], n.message);
  }
  return { config: config as Config, warnings };
}

export function loadConfigFile(path: string, registry?: ConfigRegistry): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([{ path: '', message: `cannot read config file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the path given to --config`, file: path, line: 0, col: 0 }]);
  }
  return parseConfig(text, path, registry);
}

/** The configuration with every default, as when no --config is given. */
export function defaultConfig(): Config {
  return parseConfig('{}', '<defaults>').config;
}

/** The whole-config check a detectors file that is a minewatch config goes through (detectors/cryptnono-files.ts). */
export function wholeConfigCheck(registry: ConfigRegistry = defaultSections()): WholeConfigCheck {
  return { names: () => registry.names(), parse: (text, file) => parseConfig(text, file, registry) };
}
