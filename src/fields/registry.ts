/**
 * Looks up field names across the catalogs of the loaded sources. Knows the two ways Falco
 * spells an argument: `name[arg]` and `name.arg` (evt.arg.flags is evt.arg with key "flags").
 */
import type { EventMemo } from './memo.js';
import type { AnyOf, FieldCatalog, FieldDef, Extractor } from './types.js';

export interface ResolvedField {
  def: FieldDef;
  arg: string | undefined;
  /** The name as written, with its argument, e.g. "proc.aname[2]". */
  text: string;
  /** When proc.aname has no index: every ancestor is a candidate value. */
  anyOf: boolean;
  /** Several values: a list field, except an anyWhenNoArg field given an index (proc.aname[2]). */
  multi: boolean;
  extract: Extractor;
  /** extract without its guard, when the field has one (a throw means a missing value). */
  unguarded?: Extractor;
  /** With anyOf, when the field has one: its values walked without an array. */
  any?: AnyOf;
}

export class FieldResolveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FieldResolveError';
  }
}

export class FieldRegistry {
  private readonly bySource = new Map<string, Map<string, FieldDef>>();
  /** Field-name prefixes (up to the first dot) known in any source: tells unknown fields from typos. */
  private readonly classes = new Set<string>();

  constructor(catalogs: FieldCatalog[] = []) {
    for (const c of catalogs) this.add(c);
  }

  add(catalog: FieldCatalog): void {
    let m = this.bySource.get(catalog.source);
    if (!m) this.bySource.set(catalog.source, (m = new Map<string, FieldDef>()));
    for (const f of catalog.fields) {
      m.set(f.name, f);
      this.classes.add(f.name.split('.')[0]!);
    }
  }

  hasSource(source: string): boolean {
    return this.bySource.has(source);
  }

  sources(): string[] {
    return [...this.bySource.keys()];
  }

  list(source?: string): FieldDef[] {
    const out: FieldDef[] = [];
    for (const [s, m] of this.bySource) if (!source || s === source) out.push(...m.values());
    return out;
  }

  /** The fields of `source` marked as suggested output, in their order. */
  suggested(source: string): FieldDef[] {
    const m = this.bySource.get(source);
    if (!m) return [];
    return [...m.values()].filter((f) => f.suggestedOutput !== undefined).sort((a, b) => a.suggestedOutput! - b.suggestedOutput!);
  }

  /**
   * Resolve `name` (without brackets) and an optional bracket argument for `source`.
   * `evt.arg.mode` resolves to evt.arg with key "mode": the longest registered prefix that takes a
   * key wins. Throws FieldResolveError with a message that names the field. `memo` (the engine's)
   * lets fields that share a parse of the event do it once per event.
   */
  resolve(source: string, name: string, bracketArg?: string, memo?: EventMemo): ResolvedField {
    const m = this.bySource.get(source);
    if (!m) throw new FieldResolveError(`no fields are known for source '${source}'`);
    let def = m.get(name);
    let arg = bracketArg;
    if (!def) {
      // name.key form: try progressively shorter prefixes.
      const parts = name.split('.');
      for (let i = parts.length - 1; i >= 2 && !def; i--) {
        const prefix = parts.slice(0, i).join('.');
        const cand = m.get(prefix);
        if (cand && cand.arg === 'key' && bracketArg === undefined) {
          def = cand;
          arg = parts.slice(i).join('.');
        }
      }
    }
    const text = bracketArg === undefined ? name : `${name}[${bracketArg}]`;
    if (!def) throw new FieldResolveError(`unknown field '${text}'`);
    const kind = def.arg ?? 'none';
    if (kind === 'none' && arg !== undefined) throw new FieldResolveError(`field '${def.name}' takes no argument, got '${text}'`);
    if (kind !== 'none' && arg === undefined && !def.argOptional) {
      throw new FieldResolveError(`field '${def.name}' needs an argument, e.g. ${def.name}[${kind === 'index' ? '1' : 'key'}]`);
    }
    if (kind === 'index' && arg !== undefined && !/^\d+$/.test(arg)) {
      throw new FieldResolveError(`field '${def.name}' takes a numeric index, got '[${arg}]'`);
    }
    const anyOf = !!def.anyWhenNoArg && arg === undefined;
    const multi = anyOf || (!!def.isList && !(def.anyWhenNoArg && arg !== undefined));
    return { def, arg, text, anyOf, multi, extract: def.bind(arg, memo), unguarded: def.bindUnguarded?.(arg, memo), any: anyOf && def.bindAny ? def.bindAny() : undefined };
  }
}
