/**
 * fnmatch-style globs for the `glob`/`iglob` operators (`*` crosses '/', as Falco's glob does)
 * and path-prefix tables for `pmatch` (there a wildcard stays inside one path component).
 */

function globBody(pattern: string, star: string, any: string): string {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += star;
    else if (c === '?') re += any;
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += '[' + cls.replace(/\\/g, '\\\\') + ']';
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) {
      re += '\\' + pattern[++i];
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return re;
}

export function globToRegExp(pattern: string, ignoreCase = false): RegExp {
  return new RegExp('^' + globBody(pattern, '[\\s\\S]*', '[\\s\\S]') + '$', ignoreCase ? 'i' : '');
}

const HAS_WILDCARD = /[*?[]/;

/** pmatch: true when the path equals one of the prefixes or lies below it. */
export class PathPrefixMatcher {
  private readonly exact = new Set<string>();
  private readonly wild: RegExp[] = [];

  constructor(prefixes: string[]) {
    for (let p of prefixes) {
      if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
      if (HAS_WILDCARD.test(p)) this.wild.push(new RegExp('^' + globBody(p, '[^/]*', '[^/]') + '(?:/|$)'));
      else this.exact.add(p);
    }
  }

  test(path: string): boolean {
    if (this.exact.size) {
      if (this.exact.has(path)) return true;
      if (this.exact.has('/') && path.startsWith('/')) return true;
      // Walk up the path one component at a time: a set lookup per '/'.
      for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
        if (this.exact.has(path.slice(0, i))) return true;
      }
    }
    for (const re of this.wild) if (re.test(path)) return true;
    return false;
  }
}
