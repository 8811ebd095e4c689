/**
 * Whether the loaded rules read a field, so that a source can skip work no rule needs (the process
 * table: proc.cwd fresh from /proc on each kernel-described exec; the proc connector: loginuid, and
 * status).
 * Judged from the compiled conditions (macros and lists expanded), the outputs and the config's
 * append_output, once per engine: a reload builds a new engine, and the answer follows it.
 */
import type { Engine } from '../engine/index.js';

/** Any of these fields' names as a whole word: `user.loginuid`, not `user.loginuidx` or `x.user.loginuid`. */
function fieldPattern(fields: string | readonly string[]): RegExp {
  const names = (typeof fields === 'string' ? [fields] : fields).map((f) => f.replace(/\./g, '\\.'));
  return new RegExp(`(^|[^\\w.])(${names.join('|')})(?![\\w.])`);
}

/** The fields behind /proc/PID/loginuid: the proc connector's reads skip it while no rule reads either. */
export const LOGINUID_FIELDS = ['user.loginuid', 'user.loginname'] as const;

/**
 * The fields only /proc/PID/status gives the proc connector (the vpid, and the capability sets
 * the exe's writability takes too): its reads skip that file while no rule reads any of them.
 */
export const STATUS_FIELDS = [
  'proc.vpid', 'proc.pvpid', 'thread.vtid', 'proc.is_sid_leader', 'proc.is_vpgid_leader',
  'proc.is_exe_writable', 'thread.cap_permitted', 'thread.cap_effective', 'thread.cap_inheritable',
] as const;

/** Whether a value (a config section: alert group keys, say) names any of these fields, by its JSON. */
export function configNamesField(value: unknown, fields: readonly string[]): boolean {
  return fieldPattern(fields).test(JSON.stringify(value ?? {}));
}

function mentions(engine: Engine, fields: string | readonly string[]): boolean {
  const re = fieldPattern(fields);
  // The config's append_output adds fields to every output it matches.
  if (re.test(JSON.stringify(engine.options.appendOutput ?? []))) return true;
  for (const c of engine.ruleset.compiled) {
    if (re.test(c.def.output)) return true;
    try {
      if (re.test(JSON.stringify(c.condition, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)))) return true;
    } catch {
      return true; // Cannot tell: say yes, the safe side.
    }
  }
  return false;
}

/** A function answering "do the current rules read `field` (or any of `fields`)?", re-judged when the engine changes. */
export function rulesReadField(engine: () => Engine, fields: string | readonly string[]): () => boolean {
  let seen: Engine | undefined;
  let answer = false;
  return () => {
    const e = engine();
    if (e !== seen) {
      seen = e;
      answer = mentions(e, fields);
    }
    return answer;
  };
}
