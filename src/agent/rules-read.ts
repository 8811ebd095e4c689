/**
 * Whether the loaded rules read a field, so that a source can skip work no rule needs (the process
 * table: proc.cwd fresh from /proc on each kernel-described exec; the proc connector: loginuid).
 * Judged from the compiled conditions (macros and lists expanded), the outputs and the config's
 * append_output, once per engine: a reload builds a new engine, and the answer follows it.
 */
import type { Engine } from '../engine/index.js';

/** A field's name as a whole word: `user.loginuid`, not `user.loginuidx` or `x.user.loginuid`. */
function fieldPattern(field: string): RegExp {
  return new RegExp(`(^|[^\\w.])${field.replace(/\./g, '\\.')}(?![\\w.])`);
}

/** Whether a value (a config section: alert group keys, say) names any of these fields, by its JSON. */
export function configNamesField(value: unknown, fields: readonly string[]): boolean {
  const text = JSON.stringify(value ?? {});
  return fields.some((f) => fieldPattern(f).test(text));
}

function mentions(engine: Engine, field: string): boolean {
  const re = fieldPattern(field);
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

/** A function answering "do the current rules read `field`?", re-judged when the engine changes. */
export function rulesReadField(engine: () => Engine, field: string): () => boolean {
  let seen: Engine | undefined;
  let answer = false;
  return () => {
    const e = engine();
    if (e !== seen) {
      seen = e;
      answer = mentions(e, field);
    }
    return answer;
  };
}
