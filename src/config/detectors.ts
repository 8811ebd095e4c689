/**
 * The `detectors` section: cryptnono's Helm chart values, as they are, so a cryptnono user's values
 * file works unchanged (ARCHITECTURE.md, "One config file").
 *
 *   detectors:
 *     execwhacker:
 *       enabled: false          # minewatch's killers are off until you turn them on
 *       debug: false
 *       configs:                # names only group strings (one file per name in cryptnono's chart)
 *         <name>:
 *           bannedCommandStrings: [xmrig, …]
 *           allowedCommandPatterns: ['^(/usr/bin/)?ls.*$']   # Python regexes, re.match, ignoring case
 *       rescan_interval_s: 10   # ours: rescan running processes this often (0: off)
 *       default_list: true      # ours: include rules/execwhacker-banned.yaml's strings
 *       spare_readers: false    # ours: spare grep/less/git log… whose banned strings are only operands
 *     monero:
 *       enabled: false          # true: kill what the RandomX rule names (its alert is on regardless)
 *     tcpflowkiller:
 *       enabled: false
 *       config:
 *         FlowKiller:           # cryptnono's traitlets config, same names and defaults
 *           banned_ipv4_file_globs: []
 *           lookback_duration_seconds: 30
 *           unique_destinations_threshold: 15
 *           log_connects: false
 *           log_container_info: true
 *       exempt_cidrs: [10.0.0.0/8, …]   # ours: never counted or killed for (private, special-purpose)
 *
 * The chart's deployment-only keys (resources, env, metrics, threadpoolSize, containerdHostPath,
 * dockerHostPath, bannedIpv4ConfigMaps, image, nodeSelector, tolerations, …) are accepted, noted
 * and skipped. Several files (or `configs` entries) merge as cryptnono merges the files Helm
 * passes it: the lists of a config name concatenate (duplicates dropped), later scalars win.
 * cryptnono's own standalone JSON config (`{"bannedCommandStrings": […], "allowedCommandPatterns":
 * […]}`, its example/config.json) loads too, as one config named after the file.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { basename, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, isMap, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { compileAllowedPattern } from '../response/execwhacker/pyregex.js';
import { ConfigError, type ConfigProblem, parseConfig } from './load.js';
import type { ConfigRegistry } from './registry.js';

/** The banned list minewatch ships (detectors format, `enabled: false`). */
export const DEFAULT_BANNED_FILE = fileURLToPath(new URL('../../../rules/execwhacker-banned.yaml', import.meta.url));
/** The name its config entry carries. */
export const DEFAULT_BANNED_CONFIG = 'minewatch-default';

/**
 * Private and special-purpose ranges: never counted as scan destinations by default. Python's
 * `ipaddress` `is_private` (what cryptnono skips) plus 100.64.0.0/10 (carrier-grade NAT) and
 * multicast. The same list as src/response/tcpflowkiller.ts's DEFAULT_EXEMPT_CIDRS (keep one).
 */
export const DEFAULT_EXEMPT_CIDRS: readonly string[] = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
  '192.0.0.0/24', '192.0.2.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24',
  '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4', '255.255.255.255/32',
  '::/128', '::1/128', '100::/64', '2001::/23', '2001:db8::/32', '2001:10::/28', 'fc00::/7',
  'fe80::/10', 'ff00::/8',
];

/** cryptnono chart keys that only shape the Kubernetes deployment: accepted under each detector, noted, skipped. */
const DEPLOYMENT_KEYS = [
  'resources', 'env', 'metrics', 'threadpoolSize', 'containerdHostPath', 'dockerHostPath', 'bannedIpv4ConfigMaps',
  'lookupContainer', 'image', 'nodeSelector', 'tolerations', 'affinity', 'podAnnotations', 'priorityClassName',
] as const;

/** Top-level keys of cryptnono's chart values besides `detectors`: skipped with a note when a values file is loaded. */
const CHART_KEYS = new Set([
  'image', 'imagePullSecrets', 'nameOverride', 'fullnameOverride', 'podAnnotations', 'podLabels', 'podSecurityContext',
  'containerSecurityContext', 'nodeSelector', 'tolerations', 'affinity', 'priorityClassName', 'fetchKernelHeaders',
  'serviceAccount', 'updateStrategy', 'resources', 'env', 'global',
]);

/** FlowKiller traitlets that only matter to cryptnono's process (its metrics port, its config file path). */
const FLOWKILLER_DEPLOYMENT_KEYS = ['metrics_port', 'config_file'] as const;

const deploymentShape = Object.fromEntries(DEPLOYMENT_KEYS.map((k) => [k, z.unknown().optional()])) as Record<(typeof DEPLOYMENT_KEYS)[number], z.ZodOptional<z.ZodUnknown>>;

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

function isCidr(s: string): boolean {
  const [addr, bits, extra] = s.split('/');
  if (extra !== undefined || !addr) return false;
  const v = isIP(addr);
  if (v === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (v === 4 ? 32 : 128);
}

const allowedPattern = z.string().superRefine((s, ctx) => {
  try {
    compileAllowedPattern(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `does not compile as a regular expression: ${(e as Error).message}: ${JSON.stringify(s)}` });
  }
});

/** One `configs.<name>` entry, and cryptnono's standalone JSON config. */
export const execConfigEntryInput = z.strictObject({
  bannedCommandStrings: z.array(z.string()).optional(),
  allowedCommandPatterns: z.array(allowedPattern).optional(),
});

const execwhackerInput = z.strictObject({
  enabled: z.boolean().optional(),
  debug: z.boolean().optional(),
  configs: z
    .unknown()
    .superRefine((v, ctx) => {
      // zod's record would drop this key without a word.
      if (isObj(v) && Object.hasOwn(v, '__proto__')) ctx.addIssue({ code: 'custom', path: ['__proto__'], message: 'reserved name: choose another config name' });
    })
    .pipe(z.record(z.string(), execConfigEntryInput))
    .optional(),
  rescan_interval_s: z.number().min(0).optional(),
  default_list: z.boolean().optional(),
  spare_readers: z.boolean().optional(),
  ...deploymentShape,
});

const moneroInput = z.strictObject({
  enabled: z.boolean().optional(),
  ...deploymentShape,
});

const flowKillerInput = z.strictObject({
  banned_ipv4_file_globs: z.array(z.string().min(1)).optional(),
  lookback_duration_seconds: z.number().int().positive().optional(),
  unique_destinations_threshold: z.number().int().min(0).optional(),
  log_connects: z.boolean().optional(),
  log_container_info: z.boolean().optional(),
  debug: z.boolean().optional(),
  metrics_port: z.unknown().optional(),
  config_file: z.unknown().optional(),
});

const tcpflowkillerInput = z.strictObject({
  enabled: z.boolean().optional(),
  debug: z.boolean().optional(),
  config: z.strictObject({ FlowKiller: flowKillerInput.optional() }).optional(),
  exempt_cidrs: z.array(z.string().refine(isCidr, { message: 'not a CIDR: write address/prefix, e.g. 10.0.0.0/8 or fd00::/8' })).optional(),
  ...deploymentShape,
});

/** The section as written: every key optional, so files can be merged before defaults fill in. */
export const detectorsInput = z.strictObject({
  execwhacker: execwhackerInput.optional(),
  monero: moneroInput.optional(),
  tcpflowkiller: tcpflowkillerInput.optional(),
});

export type DetectorsInput = z.infer<typeof detectorsInput>;
export type ExecConfigEntryInput = z.infer<typeof execConfigEntryInput>;

export interface ExecwhackerSettings {
  enabled: boolean;
  debug: boolean;
  /** Rescan every running process this often, seconds; 0 turns the rescan off. */
  rescan_interval_s: number;
  /** Include minewatch's shipped banned list (rules/execwhacker-banned.yaml). */
  default_list: boolean;
  /**
   * Spare system readers and searchers (grep, less, git log, find…) whose banned strings are only
   * in operands (response/execwhacker/readers.ts). Off: cryptnono's behaviour, they die too.
   */
  spare_readers: boolean;
  configs: Record<string, { bannedCommandStrings: string[]; allowedCommandPatterns: string[] }>;
}

export interface FlowKillerSettings {
  banned_ipv4_file_globs: string[];
  lookback_duration_seconds: number;
  unique_destinations_threshold: number;
  log_connects: boolean;
  log_container_info: boolean;
  debug: boolean;
}

export interface DetectorsConfig {
  execwhacker: ExecwhackerSettings;
  monero: { enabled: boolean };
  tcpflowkiller: {
    enabled: boolean;
    debug: boolean;
    config: { FlowKiller: FlowKillerSettings };
    /** Destinations never counted or killed for. */
    exempt_cidrs: string[];
  };
  /**
   * Keys accepted for cryptnono's sake that do nothing here (deployment-only chart keys), and other
   * things worth a warning; paths are relative to the section. Print them as warnings.
   */
  notes: { path: string; message: string }[];
}

// ---- defaults and merging ------------------------------------------------------------------------


/** Helm's meaning of null: the key is unset. */
function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (!isObj(v)) return v;
  const out: Raw = {};
  for (const [k, x] of Object.entries(v)) {
    // An own `__proto__` key (YAML allows it) must stay a key, so validation can refuse it.
    if (x !== null) Object.defineProperty(out, k, { value: dropNulls(x), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Lists that concatenate when files merge (the rest are replaced by the later file). */
function concatenates(path: string[]): boolean {
  return (path[0] === 'execwhacker' && path[1] === 'configs' && path.length === 4) || path.join('.') === 'tcpflowkiller.config.FlowKiller.banned_ipv4_file_globs';
}

function mergeAt(a: unknown, b: unknown, path: string[]): unknown {
  if (b === undefined) return a;
  if (a === undefined) return b;
  if (isObj(a) && isObj(b)) {
    const out: Raw = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = mergeAt(a[k], v, [...path, k]);
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b) && concatenates(path)) return [...new Set([...a, ...b])];
  return b;
}

/** Merge two inputs as cryptnono merges its files: lists of one config name concatenate, later scalars win. */
export function mergeDetectorsInput(a: DetectorsInput, b: DetectorsInput): DetectorsInput {
  return mergeAt(a, b, []) as DetectorsInput;
}

const ENABLED_NOTE =
  "enabled is not set, so execwhacker is off: cryptnono's chart turns it on by default, minewatch's killers stay off until you set enabled: true";

function deploymentNotes(v: Raw | undefined, at: string, notes: DetectorsConfig['notes'], keys: readonly string[] = DEPLOYMENT_KEYS): void {
  if (!v) return;
  for (const k of keys) {
    if (v[k] !== undefined) notes.push({ path: `${at}.${k}`, message: "cryptnono's deployment setting; minewatch has no use for it here: skipped" });
  }
}

/**
 * Defaults filled in; deployment-only keys and empty banned strings become notes, and so does an
 * `execwhacker.enabled` left unset beside configs (unless `enabledNote` is false).
 */
export function detectorsWithDefaults(input: DetectorsInput, enabledNote = true): DetectorsConfig {
  const notes: DetectorsConfig['notes'] = [];
  const ew = input.execwhacker ?? {};
  const configs: ExecwhackerSettings['configs'] = {};
  for (const [name, c] of Object.entries(ew.configs ?? {})) {
    const banned = c.bannedCommandStrings ?? [];
    banned.forEach((b, i) => {
      if (b === '') notes.push({ path: `execwhacker.configs.${name}.bannedCommandStrings.${i}`, message: 'an empty banned string matches nothing (cryptnono ignores it too): skipped' });
    });
    configs[name] = { bannedCommandStrings: banned.filter((b) => b !== ''), allowedCommandPatterns: [...(c.allowedCommandPatterns ?? [])] };
  }
  if (enabledNote && ew.enabled === undefined && Object.keys(configs).length > 0) notes.push({ path: 'execwhacker', message: ENABLED_NOTE });
  deploymentNotes(input.execwhacker, 'execwhacker', notes);
  deploymentNotes(input.monero, 'monero', notes);
  deploymentNotes(input.tcpflowkiller, 'tcpflowkiller', notes);
  const fk = input.tcpflowkiller?.config?.FlowKiller ?? {};
  deploymentNotes(fk, 'tcpflowkiller.config.FlowKiller', notes, FLOWKILLER_DEPLOYMENT_KEYS);
  return {
    execwhacker: {
      enabled: ew.enabled ?? false,
      debug: ew.debug ?? false,
      rescan_interval_s: ew.rescan_interval_s ?? 10,
      default_list: ew.default_list ?? true,
      spare_readers: ew.spare_readers ?? false,
      configs,
    },
    monero: { enabled: input.monero?.enabled ?? false },
    tcpflowkiller: {
      enabled: input.tcpflowkiller?.enabled ?? false,
      debug: input.tcpflowkiller?.debug ?? false,
      config: {
        FlowKiller: {
          banned_ipv4_file_globs: [...(fk.banned_ipv4_file_globs ?? [])],
          lookback_duration_seconds: fk.lookback_duration_seconds ?? 30,
          unique_destinations_threshold: fk.unique_destinations_threshold ?? 15,
          log_connects: fk.log_connects ?? false,
          log_container_info: fk.log_container_info ?? true,
          debug: fk.debug ?? false,
        },
      },
      exempt_cidrs: [...(input.tcpflowkiller?.exempt_cidrs ?? DEFAULT_EXEMPT_CIDRS)],
    },
    notes,
  };
}

/** The section's schema, registered in sections.ts: validates, then fills defaults. */
export const detectorsSection = z.preprocess(dropNulls, detectorsInput).transform((v) => detectorsWithDefaults(v));

// ---- the default banned list ---------------------------------------------------------------------

let defaultList: DetectorsInput | undefined;

/** rules/execwhacker-banned.yaml, parsed once. Throws ConfigError if the shipped file is broken. */
export function defaultBannedListInput(): DetectorsInput {
  if (!defaultList) defaultList = loadDetectorsFiles([DEFAULT_BANNED_FILE]).input;
  return defaultList;
}

/**
 * The execwhacker configs to match, in order: the shipped default list first when `default_list`
 * is on (its `enabled: false` does not count: only its configs are taken), then the section's own.
 */
export function effectiveExecConfigs(d: Pick<DetectorsConfig, 'execwhacker'>): { name: string; bannedCommandStrings: string[]; allowedCommandPatterns: string[] }[] {
  let configs = d.execwhacker.configs;
  if (d.execwhacker.default_list) {
    const base = detectorsWithDefaults({ execwhacker: { configs: defaultBannedListInput().execwhacker?.configs ?? {} } }).execwhacker.configs;
    configs = (mergeDetectorsInput({ execwhacker: { configs: base } }, { execwhacker: { configs } }).execwhacker!.configs ?? {}) as ExecwhackerSettings['configs'];
  }
  return Object.entries(configs).map(([name, c]) => ({
    name,
    bannedCommandStrings: [...(c.bannedCommandStrings ?? [])],
    allowedCommandPatterns: [...(c.allowedCommandPatterns ?? [])],
  }));
}

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

/** Keys a user may have meant, per place, for "unknown key" messages. */
function knownKeys(path: (string | number)[]): string[] | undefined {
  const p = path.map(String);
  const i = p.lastIndexOf('detectors');
  const rel = i >= 0 ? p.slice(i + 1) : p;
  const deployment = `(and cryptnono's deployment keys: ${DEPLOYMENT_KEYS.join(', ')})`;
  const key = rel.join('.');
  if (rel.length === 0 && i >= 0) return ['execwhacker', 'monero', 'tcpflowkiller'];
  if (key === 'execwhacker') return ['enabled', 'debug', 'configs', 'rescan_interval_s', 'default_list', deployment];
  if (key === 'monero') return ['enabled', deployment];
  if (key === 'tcpflowkiller') return ['enabled', 'debug', 'config', 'exempt_cidrs', deployment];
  if (key === 'tcpflowkiller.config') return ['FlowKiller'];
  if (key === 'tcpflowkiller.config.FlowKiller') return ['banned_ipv4_file_globs', 'lookback_duration_seconds', 'unique_destinations_threshold', 'log_connects', 'log_container_info', 'debug'];
  if ((rel.length === 3 && rel[0] === 'execwhacker' && rel[1] === 'configs') || (i < 0 && rel.length === 0)) return ['bannedCommandStrings', 'allowedCommandPatterns'];
  return undefined;
}

function unknownKeyMessage(parent: (string | number)[]): string {
  const known = knownKeys(parent);
  return `unknown key; ${known ? `known keys here: ${known.join(', ')}` : 'check its spelling'}`;
}

class FileContext {
  readonly lc = new LineCounter();
  readonly doc: Document;
  constructor(readonly text: string, readonly file: string) {
    this.doc = parseDocument(text, { lineCounter: this.lc, prettyErrors: false });
  }

  at(path: (string | number)[]): { line: number; col: number } {
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      if (n > 0) {
        const parent = n > 1 ? this.doc.getIn(sub.slice(0, -1), true) : this.doc.contents;
        if (isMap(parent)) {
          const pair = parent.items.find((it) => (it.key as { value?: unknown } | null)?.value === sub[n - 1]);
          const off = (pair?.key as { range?: [number, number, number] } | undefined)?.range?.[0];
          if (off !== undefined && n === path.length) return this.lc.linePos(off);
        }
      }
      const node = this.doc.getIn(sub, true) as { range?: [number, number, number] } | undefined;
      const off = node?.range?.[0];
      if (off !== undefined) return this.lc.linePos(off);
    }
    return { line: 1, col: 1 };
  }

  problem(path: (string | number)[], message: string): ConfigProblem {
    return { path: path.join('.'), message, file: this.file, ...this.at(path) };
  }
}

function zodProblems(ctx: FileContext, issues: z.core.$ZodIssue[], prefix: (string | number)[]): ConfigProblem[] {
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
function parseDetectorsFile(text: string, file: string, problems: ConfigProblem[], warnings: ConfigProblem[], registry?: ConfigRegistry): { input: DetectorsInput; kind: DetectorsFileKind } {
  const ctx = new FileContext(text, file);
  const none = { input: {}, kind: 'empty' as const };
  if (ctx.doc.errors.length) {
    for (const e of ctx.doc.errors) {
      const lp = e.linePos?.[0] ?? ctx.lc.linePos(e.pos[0]);
      problems.push({ path: '', message: `invalid YAML/JSON: ${e.message.split('\n')[0]}`, file, line: lp.line, col: lp.col });
    }
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
      // A minewatch config: check all of it as `minewatch run` would.
      try {
        const loaded = parseConfig(text, file, registry);
        warnings.push(...loaded.warnings);
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
  if (keys.every((k) => k === 'execwhacker' || k === 'monero' || k === 'tcpflowkiller')) return { input: validate(raw, []), kind: 'detectors' };
  const bad = keys.find((k) => k !== 'execwhacker' && k !== 'monero' && k !== 'tcpflowkiller')!;
  problems.push(
    ctx.problem(
      [bad],
      'unknown key: expected cryptnono\'s config.json (bannedCommandStrings, allowedCommandPatterns), chart values or a minewatch config (detectors:), or a detectors mapping (execwhacker, monero, tcpflowkiller)',
    ),
  );
  return none;
}

/**
 * Load standalone files in order and merge them (for `minewatch whack`): cryptnono's config.json,
 * cryptnono's chart values (or a parent chart's, with cryptnono: as a subchart), a minewatch
 * config (checked whole), or a bare detectors mapping. Throws ConfigError listing every problem
 * of every file (file, key path, line:col). The default banned list is not added here: see
 * effectiveExecConfigs.
 */
export function loadDetectorsFiles(files: readonly string[], registry?: ConfigRegistry): LoadedDetectors {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const loaded: LoadedDetectors['files'] = [];
  let input: DetectorsInput = {};
  const contexts: { file: string; ctx: FileContext; prefix: (string | number)[]; kind: DetectorsFileKind; input: DetectorsInput }[] = [];
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
    contexts.push({ file, ctx: new FileContext(text, file), prefix: kind === 'chart-values' || kind === 'minewatch-config' ? ['detectors'] : [], kind, input: fileInput });
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
