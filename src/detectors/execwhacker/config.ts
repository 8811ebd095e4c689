/**
 * `detectors.execwhacker`: cryptnono's chart values for its execwhacker, plus three keys of ours.
 *
 *   execwhacker:
 *     enabled: false          # minewatch's killers are off until you turn them on
 *     debug: false
 *     configs:                # names only group strings (one file per name in cryptnono's chart)
 *       <name>:
 *         bannedCommandStrings: [xmrig, …]
 *         allowedCommandPatterns: ['^(/usr/bin/)?ls.*$']   # Python regexes, re.match, ignoring case
 *     rescan_interval_s: 10   # ours: rescan running processes this often (0: off)
 *     default_list: true      # ours: include rules/execwhacker-banned.yaml's strings
 *     spare_readers: false    # ours: spare grep/less/git log… whose banned strings are only operands
 */
import { z } from 'zod';
import { DEPLOYMENT_HINT, deploymentNotes, deploymentShape, isObj, type SectionNotes } from '../chart-keys.js';
import { compileAllowedPattern } from './pyregex.js';

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
export type ExecConfigEntryInput = z.infer<typeof execConfigEntryInput>;
/** The keys of one config entry (and of cryptnono's config.json). */
export const EXEC_CONFIG_ENTRY_KEYS = ['bannedCommandStrings', 'allowedCommandPatterns'];

export const execwhackerInput = z.strictObject({
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
export type ExecwhackerInput = z.infer<typeof execwhackerInput>;

export interface ExecConfigEntry {
  bannedCommandStrings: string[];
  allowedCommandPatterns: string[];
}

export interface ExecwhackerSettings {
  enabled: boolean;
  debug: boolean;
  /** Rescan every running process this often, seconds; 0 turns the rescan off. */
  rescan_interval_s: number;
  /** Include minewatch's shipped banned list (rules/execwhacker-banned.yaml). */
  default_list: boolean;
  /**
   * Spare system readers and searchers (grep, less, git log, find…) whose banned strings are only
   * in operands (readers.ts). Off: cryptnono's behaviour, they die too.
   */
  spare_readers: boolean;
  configs: Record<string, ExecConfigEntry>;
}

export const ENABLED_NOTE =
  "enabled is not set, so execwhacker is off: cryptnono's chart turns it on by default, minewatch's killers stay off until you set enabled: true";

/**
 * Defaults filled in; empty banned strings and deployment-only keys become notes, and so does an
 * `enabled` left unset beside configs (when `enabledNote`).
 */
export function execwhackerWithDefaults(input: ExecwhackerInput | undefined, notes: SectionNotes, opts: { enabledNote: boolean }): ExecwhackerSettings {
  const ew = input ?? {};
  const configs: ExecwhackerSettings['configs'] = {};
  for (const [name, c] of Object.entries(ew.configs ?? {})) {
    const banned = c.bannedCommandStrings ?? [];
    banned.forEach((b, i) => {
      if (b === '') notes.push({ path: `execwhacker.configs.${name}.bannedCommandStrings.${i}`, message: 'an empty banned string matches nothing (cryptnono ignores it too): skipped' });
    });
    configs[name] = { bannedCommandStrings: banned.filter((b) => b !== ''), allowedCommandPatterns: [...(c.allowedCommandPatterns ?? [])] };
  }
  if (opts.enabledNote && ew.enabled === undefined && Object.keys(configs).length > 0) notes.push({ path: 'execwhacker', message: ENABLED_NOTE });
  deploymentNotes(input, 'execwhacker', notes);
  return {
    enabled: ew.enabled ?? false,
    debug: ew.debug ?? false,
    rescan_interval_s: ew.rescan_interval_s ?? 10,
    default_list: ew.default_list ?? true,
    spare_readers: ew.spare_readers ?? false,
    configs,
  };
}

/** The lists of one config name concatenate when files merge (cryptnono merges its files so). */
export const execwhackerConcatenates = (path: readonly string[]): boolean => path[0] === 'configs' && path.length === 3;

export function execwhackerKnownKeys(path: readonly string[]): string[] | undefined {
  if (path.length === 0) return ['enabled', 'debug', 'configs', 'rescan_interval_s', 'default_list', DEPLOYMENT_HINT];
  if (path.length === 2 && path[0] === 'configs') return EXEC_CONFIG_ENTRY_KEYS;
  return undefined;
}
