/**
 * The engine version minewatch's rules language matches, and the Falco plugins it provides
 * built-in equivalents of. Rules files state what they need (required_engine_version,
 * required_plugin_versions); a need minewatch cannot meet fails the load, as in Falco.
 */

/** The Falco engine version whose rules language (fields, operators, keys) minewatch matches. */
export const ENGINE_VERSION = '0.57.0';

export interface BuiltinPlugin {
  name: string;
  version: string;
  /** What provides it here. */
  provides: string;
}

/**
 * Built-in equivalents of Falco plugins. `container` is the container.* field set of the syscall
 * source; k8saudit and json are the k8s_audit source's fields. github joins when its source exists.
 */
export const BUILTIN_PLUGINS: BuiltinPlugin[] = [
  { name: 'container', version: '0.4.0', provides: 'container.* fields (syscall source)' },
  { name: 'k8saudit', version: '0.18.0', provides: 'ka.* fields and the k8s_audit source (audit webhook, audit log file)' },
  { name: 'json', version: '0.7.0', provides: 'json.* and jevt.* fields (k8s_audit source)' },
  { name: 'github', version: '0.10.0', provides: 'github source: POST /github webhook, github.* fields (src/fields/github.ts)' },
];

/** Falco's integer engine versions (e.g. 15) mean 0.15.0. */
export function parseEngineVersion(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return `0.${v}.0`;
  if (typeof v === 'string') {
    const t = v.trim();
    if (/^\d+$/.test(t)) return `0.${Number(t)}.0`;
    if (/^\d+\.\d+\.\d+$/.test(t)) return t;
  }
  return undefined;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Semver compatibility as Falco checks it: same major, and at least the required version. */
export function pluginSatisfies(plugins: readonly BuiltinPlugin[], name: string, required: string): boolean {
  const p = plugins.find((x) => x.name === name);
  if (!p) return false;
  const [ma] = p.version.split('.');
  const [mb] = required.split('.');
  return ma === mb && compareVersions(p.version, required) >= 0;
}
