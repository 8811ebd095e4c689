/**
 * One config file, one top-level section per module (ARCHITECTURE.md, "One config file"). A module
 * registers its section's schema here; the loader validates each section against it, so a wrong
 * key is reported with its path.
 */
import type { z } from 'zod';

export interface ConfigSection<S extends z.ZodType = z.ZodType> {
  /** Top-level key, e.g. "sources". */
  name: string;
  /** What the section configures, for `minewatch config --help`-style listings. */
  describe: string;
  /** Validates and fills defaults; an absent section parses `{}` (or `undefined` for scalars). */
  schema: S;
  /** What an absent section parses as: `{}` for a mapping, so its defaults fill in. */
  empty?: unknown;
}

export class ConfigRegistry {
  private readonly sections = new Map<string, ConfigSection>();

  register(section: ConfigSection): this {
    if (this.sections.has(section.name)) throw new Error(`config section '${section.name}' registered twice`);
    this.sections.set(section.name, section);
    return this;
  }

  get(name: string): ConfigSection | undefined {
    return this.sections.get(name);
  }

  names(): string[] {
    return [...this.sections.keys()];
  }
}
