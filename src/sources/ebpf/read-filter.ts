/**
 * Which opens for reading only the eBPF driver ships to user space, derived from the loaded rules.
 *
 * A busy host opens files for reading all the time; the rules that read those events (Falco's
 * "Read sensitive file untrusted" and its kin) look at a few places: `fd.name startswith /etc`,
 * `fd.name in (sensitive_file_names)`, `fd.directory in (/etc/sudoers.d, …)`. From each rule's
 * condition, specialized to the open family, this finds a set of path prefixes such that the
 * condition can only be true when fd.name starts with one of them. The kernel then ships a
 * read-only open only when its path starts with one (an LPM trie lookup), or when its text cannot
 * be judged (relative, or with "/./", "/../" or "//" in it).
 *
 * The derivation over-approximates and never under-approximates: `a and b` needs what either
 * needs (the smaller set is kept), `a or b` needs the union, and anything it cannot read (a `not`,
 * fd.filename, a transformer, pmatch) needs every path. A rule whose open-read condition needs
 * every path is named, and every read-only open is shipped while it is loaded.
 */
import { ConditionCompiler, type IR } from '../../engine/compiler.js';
import type { CompiledRule } from '../../engine/loader.js';

/** The open family as Falco's rules name it. */
export const OPEN_TYPES = ['open', 'openat', 'openat2'] as const;

/**
 * What one rule needs of read-only opens: none, every one, or those whose path starts with one of
 * `prefixes` or whose process's comm is one of `comms` (either is enough). Both empty: only the
 * opens the kernel ships because their text cannot be judged (relative, "/../" and the like).
 */
export type ReadNeed = { k: 'none' } | { k: 'all'; why: string; neutral?: true } | { k: 'some'; prefixes: Set<string>; comms: Set<string> };

export interface ReadFilter {
  /** none: no read-only open is shipped; all: every one; prefix: those under `prefixes` or by `comms`. */
  mode: 'none' | 'all' | 'prefix';
  prefixes: string[];
  /** Process names (comm, at most 15 bytes) whose read-only opens are all shipped. */
  comms: string[];
  /** Rules whose open-read condition names no path or process the kernel can test, with why. */
  unbounded: Array<{ rule: string; why: string }>;
  /** Rules that read opens for reading (whatever their prefixes). */
  readers: string[];
}

const NONE: ReadNeed = { k: 'none' };
const all = (why: string): ReadNeed => ({ k: 'all', why });

/** O_* flags a read-only open never carries: a test that the flags contain one is false on it. */
const WRITE_FLAGS = new Set(['O_WRONLY', 'O_RDWR', 'O_CREAT', 'O_TRUNC', 'O_TMPFILE', 'O_APPEND']);
/** The prefix the kernel compares is at most this long (MW_PREFIX_MAX in minewatch.h, less one). */
const PREFIX_MAX = 255;

/** fd.directory = D holds for paths under "D/" (and "/" itself is every absolute path's). */
function dirPrefix(d: string): string {
  return d.endsWith('/') ? d : `${d}/`;
}

type Some = Extract<ReadNeed, { k: 'some' }>;
const some = (prefixes: Iterable<string> = [], comms: Iterable<string> = []): Some => ({ k: 'some', prefixes: new Set(prefixes), comms: new Set(comms) });
const size = (n: Some): number => n.prefixes.size + n.comms.size;

function fromLeaf(ir: Extract<IR, { k: 'leaf' }>): ReadNeed {
  if (ir.inner) return need(ir.inner);
  const f = ir.fuse;
  if (f && (f.field === 'fd.name' || f.field === 'fd.nameraw') && (f.kind === 'eq' || f.kind === 'startswith')) {
    // A value that is no absolute path (a relative fd.nameraw) cannot be tested by prefix.
    if (f.values.some((v) => !v.startsWith('/'))) return all(`${ir.text ?? f.field} names a path that is not absolute`);
    return some(f.values.map((v) => v.slice(0, PREFIX_MAX)));
  }
  if (f && f.field === 'fd.directory' && f.kind === 'eq') {
    if (f.values.some((v) => !v.startsWith('/'))) return all(`${ir.text ?? f.field} names a directory that is not absolute`);
    return some(f.values.map((v) => dirPrefix(v).slice(0, PREFIX_MAX)));
  }
  // The kernel's comm is proc.name: at most 15 bytes (a longer name can never equal it).
  if (f && f.field === 'proc.name' && f.kind === 'eq') return some([], f.values.filter((v) => Buffer.byteLength(v) <= 15));
  // Paths with "/../" in them are shipped whatever the prefixes (the kernel cannot judge them).
  if (f && f.field === 'fd.nameraw' && f.kind === 'contains' && f.values.every((v) => v === '../' || v === '/../')) return some();
  const text = (ir.text ?? '').replace(/\s+/g, ' ');
  // A glob's literal head is a prefix: "fd.name glob /home/*/.ssh/*" needs "/home/".
  const glob = /^fd\.name glob (\/[^*?[\\]*)/.exec(text);
  if (glob) return some([glob[1]!.slice(0, PREFIX_MAX)]);
  // Read-only opens: is_open_write false, is_open_read true, no write flag.
  if (/^evt\.is_open_write (=|==) true$/.test(text) || /^evt\.is_open_read (=|==) false$/.test(text)) return NONE;
  // Tests every read-only open of a file passes: they narrow nothing, and are no reason why not.
  if (/^(evt\.is_open_read (=|==) true|evt\.is_open_write (=|==) false|fd\.typechar .*|fd\.num .*|evt\.(raw)?res .*)$/.test(text)) {
    return { k: 'all', why: 'its condition names no path prefix or process name', neutral: true };
  }
  const flags = /^evt\.arg(?:\.flags|\[(?:flags|2)\]) contains (\S+)$/.exec(text);
  if (flags && WRITE_FLAGS.has(flags[1]!)) return NONE;
  return all(`it tests ${text || 'a field'} and names no path prefix or process name`);
}

/** What a condition (specialized to one open type) needs of read-only opens. */
export function need(ir: IR): ReadNeed {
  switch (ir.k) {
    case 'const':
      return ir.v ? all('its condition is true for every open') : NONE;
    case 'leaf':
      return fromLeaf(ir);
    case 'macro':
      return need(ir.ir);
    case 'not':
      return all('a negation names no path');
    case 'and': {
      // Every item must hold: what any one needs is enough; keep the narrowest.
      let best: Some | undefined;
      let loose: ReadNeed | undefined;
      for (const x of ir.items) {
        const n = need(x);
        if (n.k === 'none') return NONE;
        if (n.k === 'some') {
          if (!best || size(n) < size(best)) best = n;
        } else if (!loose || (loose.k === 'all' && loose.neutral && !(n.k === 'all' && n.neutral))) loose = n;
      }
      return best ?? loose ?? all('an empty and');
    }
    case 'or': {
      const out = some();
      let any = false;
      for (const x of ir.items) {
        const n = need(x);
        if (n.k === 'all') return n;
        if (n.k === 'some') {
          any = true;
          merge(out, n);
        }
      }
      return any ? out : NONE;
    }
  }
}

/** Adds what `b` lets through to `a` (in place). */
function merge(a: Some, b: Some): void {
  for (const p of b.prefixes) a.prefixes.add(p);
  for (const c of b.comms) a.comms.add(c);
}

function either(a: ReadNeed, b: ReadNeed): ReadNeed {
  if (a.k === 'all' || b.k === 'none') return a;
  if (b.k === 'all' || a.k === 'none') return b;
  const out = some();
  merge(out, a);
  merge(out, b);
  return out;
}

/**
 * The filter for the rules that may see an open event (`rulesFor(type)`: the engine's rules for
 * one event type of the open family).
 */
export function deriveReadFilter(rulesFor: (type: string) => readonly CompiledRule[]): ReadFilter {
  const perRule = new Map<CompiledRule, ReadNeed>();
  for (const t of OPEN_TYPES) {
    const only = new Set([t]);
    for (const r of rulesFor(t)) {
      const n = need(ConditionCompiler.simplify(r.condition, only));
      perRule.set(r, either(perRule.get(r) ?? NONE, n));
    }
  }
  const prefixes = new Set<string>();
  const comms = new Set<string>();
  const unbounded: ReadFilter['unbounded'] = [];
  const readers: string[] = [];
  for (const [r, n] of perRule) {
    if (n.k === 'none') continue;
    readers.push(r.def.name);
    if (n.k === 'all') unbounded.push({ rule: r.def.name, why: n.why });
    else {
      for (const p of n.prefixes) prefixes.add(p);
      for (const c of n.comms) comms.add(c);
    }
  }
  // A prefix under another one adds nothing.
  const sorted = [...prefixes].sort();
  const kept: string[] = [];
  for (const p of sorted) if (!kept.some((q) => p.startsWith(q))) kept.push(p);
  const mode = unbounded.length > 0 ? 'all' : readers.length > 0 ? 'prefix' : 'none';
  return { mode, prefixes: mode === 'prefix' ? kept : [], comms: mode === 'prefix' ? [...comms].sort() : [], unbounded, readers };
}

/**
 * Whether the kernel ships a read-only open of `path` by a process named `comm` under `filter`:
 * the decision of read_wanted() in minewatch.bpf.c, for tests and tools that explain it.
 */
export function readShipped(filter: Pick<ReadFilter, 'mode' | 'prefixes' | 'comms'>, path: string, comm: string): boolean {
  if (filter.mode !== 'prefix') return filter.mode === 'all';
  if (filter.comms.includes(comm.slice(0, 15))) return true;
  if (!path.startsWith('/')) return true;
  const head = path.slice(0, PREFIX_MAX);
  if (filter.prefixes.some((p) => head.startsWith(p))) return true;
  return /\/\/|\/\.\.?(\/|$)/.test(head);
}
