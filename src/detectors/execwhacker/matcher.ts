/**
 * execwhacker's decision, as cryptnono makes it and faster: should the process with this argv die?
 *
 * 1. The command line is `shlex.join(argv)` (Python's quoting, shlex.ts), case-folded as Python's
 *    `str.casefold()` does (casefold.ts).
 * 2. One automaton over every banned string of every config finds the first *standalone*
 *    occurrence: one that does not extend a word. A word character is a Unicode letter or number
 *    or `_` (Python's `\w`). The character before the occurrence must not be a word character
 *    unless the banned string itself starts with a non-word character, and likewise after it: so
 *    `xmrig` kills `xmrig -o …` and `/tmp/xmrig` but not `libxmrig_docs`, and `stratum+tcp://`
 *    kills `-o stratum+tcp://pool:3333` (it ends in `/`, so the `p` after it does not matter).
 *    Each occurrence is judged on its own: one standalone occurrence is enough.
 * 3. If there is one, the process dies unless an allowed pattern matches the folded command line
 *    from its start (`re.match`: anchored at the start, not at the end; patterns are Python
 *    regexes, pyregex.ts). Allowed patterns apply whichever config listed them, as in cryptnono,
 *    which pools every file's banned strings and patterns.
 *
 * Differences from cryptnono (see the README): cryptnono stops at the first occurrence its
 * automaton reports and spares the process if that string touches a word character *anywhere* in
 * the command line (it searches `\w` + string and string + `\w` over the whole line), so
 * `xmrig_docs; xmrig -o pool` is spared there and killed here; and cryptnono requires the word
 * boundary even on a side where the banned string's own edge is punctuation, so its
 * `stratum+tcp://` never kills `stratum+tcp://pool…`.
 *
 * Length: the whole command line is scanned, however long: a cut would let a miner hide its pool
 * URL behind padding. (cryptnono's matcher does not cut either, but its exec hook hands it at most
 * 128 arguments, each cut to 127 bytes; only its rescan, every 600 s by default, sees the whole
 * argv.) The scan is linear in the length, plus the strings ending at positions followed by a
 * non-word character; the kernel caps one argument at 128 KiB and a whole argv at a quarter of the
 * stack limit (2 MiB by default). Allowed patterns run only when a standalone banned string is
 * found; a pattern with catastrophic backtracking is the config author's risk, as in cryptnono.
 */
import { BannedAutomaton, type AutomatonOptions } from './automaton.js';
import { casefold, casefoldWithOffsets } from './casefold.js';
import { compileAllowedPattern } from './pyregex.js';
import { shlexJoin } from './shlex.js';

/** One named config, as cryptnono's chart values have it under `execwhacker.configs.<name>`. */
export interface ExecConfigEntry {
  name: string;
  bannedCommandStrings: readonly string[];
  allowedCommandPatterns: readonly string[];
}

export type SpareReason = 'allowed' | 'word_boundary' | 'no_match';

export interface MatchResult {
  /** True when the process should be killed. */
  kill: boolean;
  /** The config whose banned string matched (the first that lists it). */
  config?: string;
  /** The banned string as written in that config. */
  banned?: string;
  /** The allowed pattern that spared the process. */
  allowedBy?: string;
  /** The config that listed that pattern. */
  allowedConfig?: string;
  /** Why the process lives: an allowed pattern, only non-standalone occurrences, or no banned string at all. */
  spared?: SpareReason;
}

export interface Explanation extends MatchResult {
  cmdline: string;
  /** The case-folded command line the strings and patterns were matched against. */
  folded: string;
  /** Where the reported banned string occurs in `cmdline` (UTF-16 offsets), when one is reported. */
  at?: { start: number; end: number };
}

export interface MatcherStats {
  configs: number;
  /** Banned strings as listed, all configs together. */
  bannedStrings: number;
  /** Distinct non-empty strings after case folding: the automaton's size in strings. */
  distinctStrings: number;
  allowedPatterns: number;
  states: number;
  denseStates: number;
  classes: number;
  bytes: number;
  buildMs: number;
}

interface Allowed {
  source: string;
  config: string;
  re: RegExp;
}

const NO_MATCH: MatchResult = Object.freeze({ kill: false, spared: 'no_match' as const });

export class ExecMatcher {
  private readonly automaton: BannedAutomaton;
  /** Per pattern id: the config and the string as written that it reports. */
  private readonly source: { config: string; banned: string }[];
  private readonly allowed: Allowed[];
  readonly stats: MatcherStats;

  /**
   * Build once per config load (50,000 strings take a fraction of a second); the matcher never
   * changes afterwards, so a reload builds a new one and swaps the reference. Throws PyRegexError
   * for an allowed pattern that does not compile (the config loader reports those first, with
   * their file and key).
   */
  constructor(configs: readonly ExecConfigEntry[], opts: AutomatonOptions = {}) {
    const t0 = performance.now();
    const first = new Map<string, { config: string; banned: string }>();
    let listed = 0;
    const allowed: Allowed[] = [];
    const seenAllowed = new Set<string>();
    for (const c of configs) {
      for (const b of c.bannedCommandStrings) {
        listed++;
        const f = casefold(b);
        if (f.length > 0 && !first.has(f)) first.set(f, { config: c.name, banned: b });
      }
      for (const a of c.allowedCommandPatterns) {
        if (seenAllowed.has(a)) continue;
        seenAllowed.add(a);
        allowed.push({ source: a, config: c.name, re: compileAllowedPattern(a) });
      }
    }
    this.automaton = new BannedAutomaton([...first.keys()], opts);
    this.source = this.automaton.patterns.map((p) => first.get(p)!);
    this.allowed = allowed;
    this.stats = {
      configs: configs.length,
      bannedStrings: listed,
      distinctStrings: this.automaton.patterns.length,
      allowedPatterns: allowed.length,
      states: this.automaton.states,
      denseStates: this.automaton.denseStates,
      classes: this.automaton.classes,
      bytes: this.automaton.bytes,
      buildMs: performance.now() - t0,
    };
  }

  /** The decision for a process with this argv (argv[0] included), joined as shlex.join does. */
  match(argv: readonly string[]): MatchResult {
    return this.matchCmdline(shlexJoin(argv));
  }

  /**
   * The decision for a process of the event model: its argv (`exe` is argv[0], `args` the rest),
   * as cryptnono's rescan sees it; and, when the executable's path differs from argv[0], also with
   * the path in argv[0]'s place, as cryptnono's exec hook sees it (it reports the path given to
   * execve, not argv[0]), so `exec -a innocent /tmp/xmrig` is caught either way. The first
   * decision to kill wins; otherwise the more telling of the two (allowed, word boundary, no match).
   */
  matchProcess(p: { exe?: string; exepath?: string; args?: readonly string[] }): MatchResult {
    const args = p.args ?? [];
    const argv0 = p.exe ?? p.exepath ?? '';
    const a = this.match([argv0, ...args]);
    if (a.kill || !p.exepath || p.exepath === argv0) return a;
    const b = this.match([p.exepath, ...args]);
    if (b.kill) return b;
    const rank = (r: MatchResult) => (r.spared === 'allowed' ? 2 : r.spared === 'word_boundary' ? 1 : 0);
    return rank(b) > rank(a) ? b : a;
  }

  /**
   * Whether a standalone banned string is in the command line `argv` joins to, or in the one with
   * `exepath` in argv[0]'s place; allowed patterns aside (spare_readers asks this of a command line
   * with its operands blanked).
   */
  bannedIn(argv: readonly string[], exepath?: string): boolean {
    if (this.automaton.scan(shlexJoin(argv)).hit >= 0) return true;
    return exepath !== undefined && exepath !== argv[0] && this.automaton.scan(shlexJoin([exepath, ...argv.slice(1)])).hit >= 0;
  }

  /** The decision for an already joined command line. */
  matchCmdline(cmdline: string): MatchResult {
    const r = this.automaton.scan(cmdline);
    if (r.hit < 0) {
      if (r.any < 0) return NO_MATCH;
      const s = this.source[r.any]!;
      return { kill: false, spared: 'word_boundary', config: s.config, banned: s.banned };
    }
    const s = this.source[r.hit]!;
    if (this.allowed.length) {
      const folded = r.folded ?? casefold(cmdline);
      for (const a of this.allowed) {
        if (a.re.test(folded)) return { kill: false, spared: 'allowed', config: s.config, banned: s.banned, allowedBy: a.source, allowedConfig: a.config };
      }
    }
    return { kill: true, config: s.config, banned: s.banned };
  }

  /** matchCmdline, with the folded text and where the reported string sits in the original (for `whack test`). */
  explain(cmdline: string): Explanation {
    const res = this.matchCmdline(cmdline);
    const { folded, offsets } = casefoldWithOffsets(cmdline);
    const out: Explanation = { ...res, cmdline, folded };
    if (res.banned !== undefined) {
      const r = this.automaton.scan(cmdline);
      const id = r.hit >= 0 ? r.hit : r.any;
      const pat = this.automaton.patterns[id]!;
      // A hit's end is a position in the folded text (the fast path folds unit for unit, so its
      // positions are the folded ones too); a spared occurrence is the string's first one.
      const start = r.hit >= 0 ? r.end - pat.length : folded.indexOf(pat);
      if (start >= 0) out.at = { start: offsets[start]!, end: offsets[start + pat.length]! };
    }
    return out;
  }

  /** Allowed patterns and their configs, in the order they are tried. */
  get allowedPatterns(): readonly { source: string; config: string }[] {
    return this.allowed.map(({ source, config }) => ({ source, config }));
  }
}
