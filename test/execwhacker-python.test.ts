/**
 * The pieces of execwhacker that must behave exactly as Python does in cryptnono, checked against
 * Python itself: shlex.join, str.casefold, `\w`, and re.match(pattern, text, re.IGNORECASE) for
 * the regex translation. Skipped (with a message) where python3 is not installed; the fixed
 * expectations below run everywhere.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { casefold, casefoldWithOffsets, isWordCodePoint } from '../src/detectors/execwhacker/casefold.js';
import { PyRegexError, compileAllowedPattern } from '../src/detectors/execwhacker/pyregex.js';
import { shlexJoin, shlexQuote } from '../src/detectors/execwhacker/shlex.js';
import { prng } from './helpers/prng.js';

const PYTHON = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import sys; assert sys.version_info >= (3, 8)']).status === 0);
const skipNoPython = PYTHON ? false : 'python3 (3.8 or later) is not installed: the comparisons with Python are skipped';

/** Run a Python snippet that reads JSON on stdin and prints JSON. */
function python(code: string, input: unknown): unknown {
  const r = spawnSync(PYTHON!, ['-c', `import json, sys\n${code}`], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}


const TRICKY_ARGS = [
  '', ' ', 'plain', 'with space', "it's", '"double"', "'single'", '$HOME', '${x}', '!', 'a!b', '!!', '*.txt', '~', '~user',
  'a\tb', 'line\nbreak', 'é', 'naïve', '中文', '😀', 'ß', '-o', '--donate-level=1', 'stratum+tcp://pool:3333', 'a,b', 'a=b',
  '%s', '@x', 'a;b', 'a|b', 'a&b', '`id`', '$(id)', '\\', 'back\\slash', "''", '"\'"', '#', 'x#y', '[a]', '{a,b}', '(x)',
  '<in', '>out', 'a^b', '\u0000', '\u00a0', 'İ', '\ud800', 'tab\t', 'CR\r',
];

test('shlex: fixed cases', () => {
  assert.equal(shlexJoin(['ls', '-la', '/var/log']), 'ls -la /var/log');
  assert.equal(shlexJoin(['echo', '']), "echo ''");
  assert.equal(shlexJoin(['echo', "it's"]), `echo 'it'"'"'s'`);
  assert.equal(shlexJoin(['echo', '$HOME', '!']), "echo '$HOME' '!'");
  assert.equal(shlexJoin(['echo', 'é']), "echo 'é'");
  assert.equal(shlexJoin(['xmrig', '-o', 'stratum+tcp://pool:3333', '--donate-level=1']), 'xmrig -o stratum+tcp://pool:3333 --donate-level=1');
  assert.equal(shlexJoin([]), '');
  assert.equal(shlexQuote('a b'), "'a b'");
});

test('shlex: join matches Python\'s shlex.join on tricky arguments', { skip: skipNoPython }, () => {
  const r = prng(7);
  const argvs: string[][] = TRICKY_ARGS.map((a) => [a]);
  for (let i = 0; i < 500; i++) argvs.push(Array.from({ length: 1 + Math.floor(r() * 5) }, () => TRICKY_ARGS[Math.floor(r() * TRICKY_ARGS.length)]! + (r() < 0.3 ? TRICKY_ARGS[Math.floor(r() * TRICKY_ARGS.length)]! : '')));
  // Lone surrogates cannot cross JSON into Python's str and back unchanged: leave them to the fixed cases.
  const clean = argvs.filter((a) => !a.some((s) => /[\ud800-\udfff]/.test(s)));
  const want = python('import shlex\nprint(json.dumps([shlex.join(a) for a in json.load(sys.stdin)]))', clean) as string[];
  clean.forEach((a, i) => assert.equal(shlexJoin(a), want[i], JSON.stringify(a)));
});

test('casefold: fixed cases where toLowerCase differs', () => {
  assert.equal(casefold('Straße'), 'strasse');
  assert.equal(casefold('ẞ'), 'ss');
  assert.equal(casefold('ﬀﬁﬂ'), 'fffifl');
  assert.equal(casefold('ΣΊΣΥΦΟΣ'), 'σίσυφοσ');
  assert.equal(casefold('σίσυφος'), 'σίσυφοσ', 'final sigma folds to σ');
  assert.equal(casefold('µ'), 'μ');
  assert.equal(casefold('ſ'), 's');
  assert.equal(casefold('İ'), 'i̇');
  assert.equal(casefold('ı'), 'ı', 'dotless i is its own fold');
  assert.equal(casefold('ᾈ'), 'ἀι');
  assert.equal(casefold('Ꭰ'), 'Ꭰ', 'Cherokee folds to upper case');
  assert.equal(casefold('ꭰ'), 'Ꭰ');
  assert.equal(casefold('𐐀'), '𐐨', 'astral (Deseret), across surrogate pairs');
  assert.equal(casefold('XMRIG'), 'xmrig');
  assert.equal(casefold('\ud800x'), '\ud800x', 'a lone surrogate stays');
  const { folded, offsets } = casefoldWithOffsets('aßb');
  assert.equal(folded, 'assb');
  assert.deepEqual([...offsets], [0, 1, 1, 2, 3]);
});

test('casefold: every code point, and random strings, as Python folds them', { skip: skipNoPython }, () => {
  const all: string[] = [];
  for (let cp = 0; cp < 0x110000; cp++) if (cp < 0xd800 || cp > 0xdfff) all.push(String.fromCodePoint(cp));
  const text = all.join('');
  const want = python('print(json.dumps(json.load(sys.stdin).casefold()))', text) as string;
  assert.ok(casefold(text) === want, 'casefold of all code points at once differs from Python');
  const r = prng(11);
  const strs = Array.from({ length: 300 }, () => Array.from({ length: 1 + Math.floor(r() * 12) }, () => all[Math.floor(r() * all.length)]).join(''));
  const w = python('print(json.dumps([s.casefold() for s in json.load(sys.stdin)]))', strs) as string[];
  strs.forEach((s, i) => assert.equal(casefold(s), w[i]));
});

test("word characters: Python's \\w for every code point Python knows", { skip: skipNoPython }, () => {
  const py = python(
    'import re, unicodedata\nW = re.compile(r"\\w")\n' +
      'print(json.dumps([[c, bool(W.match(chr(c)))] for c in range(0x110000) if not 0xd800 <= c <= 0xdfff and unicodedata.category(chr(c)) != "Cn"]))',
    null,
  ) as [number, boolean][];
  let bad = 0;
  for (const [cp, w] of py) if (isWordCodePoint(cp) !== w) bad++;
  assert.equal(bad, 0, `${bad} assigned code points differ`);
});

// ---- regex translation --------------------------------------------------------------------------

/** Python patterns and the texts to try each on, the texts already case-folded as cryptnono's are. */
const PATTERNS: [string, string[]][] = [
  ['.*allowed\\s+cryptnono\\.banned\\.string1', ['/bin/echo allowed cryptnono.banned.string1', 'allowed\tcryptnono.banned.string1 x', 'allowedcryptnono.banned.string1', 'x\nallowed cryptnono.banned.string1']],
  ['^(/usr/bin/)?ls.*$', ['ls -la', '/usr/bin/ls', '/bin/ls', 'lsof', 'ls\n', 'ls\nx']],
  ['ls', ['ls', 'xls', 'LS']],
  ['a$', ['a', 'a\n', 'a\n\n', 'ab']],
  ['(?m)a$', ['a\nb', 'ba']],
  ['(?m)^b', ['a\nb', 'ab']],
  ['.', ['\n', '\r', '\u2028', 'x']],
  ['(?s).', ['\n']],
  ['(?s:.)x', ['\nx']],
  ['\\w+\\b', ['héllo wörld', 'über', '___', '٣٤', 'a-b']],
  ['\\W', ['é', ' ', '-']],
  ['\\d+', ['٣٤', '12', 'x']],
  ['\\s+x', ['\u00a0x', '\u2003x', '\u200bx', '\ufeffx', '\x1cx']],
  ['(?a)\\w+$', ['abc', 'ébc']],
  ['[\\w.-]+@', ['a.b-c@', 'é@', '!@']],
  ['[^\\W\\d]+', ['abc1', '1abc', 'é']],
  ['[\\s\\S]+', ['any\nthing']],
  ['[]a]+', [']a]', 'b']],
  ['[^]a]', ['b', ']']],
  ['a{2}', ['aa', 'a']],
  ['a{,2}b', ['b', 'aab', 'aaab']],
  ['a{2,}', ['aaa', 'a']],
  ['a{x}', ['a{x}', 'ax']],
  ['a{', ['a{', 'a']],
  ['a{1,2', ['a{1,2', 'a']],
  ['x}', ['x}']],
  ['x]', ['x]']],
  ['(?P<n>ab)(?P=n)', ['abab', 'ab']],
  ['(a)\\1', ['aa', 'ab']],
  ['(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)\\10', ['abcdefghijj']],
  ['\\101', ['a']],
  ['\\0', ['\0']],
  ['\\x41\\u0042\\U00000043', ['abc']],
  ['\\:\\#\\ \\"\\/\\-', [':# "/-']],
  ['\\A/bin/', ['/bin/sh']],
  ['sh\\Z', ['sh', 'sh\n']],
  ['(?x) a  b # comment\n c', ['abc', 'a b c']],
  ['(?x)[ ]a', [' a']],
  ['(?#comment)a', ['a']],
  ['(?i)xmrig', ['xmrig']],
  ['a(?=b)', ['ab', 'ac']],
  ['a(?!b)', ['ab', 'ac']],
  ['(?<=a)b', ['ab']],
  ['.*(?<!x)y', ['ay', 'xy']],
  ['a|b|', ['c', 'b']],
  ['a*?b', ['aab']],
  ['(?:ab)+', ['abab']],
  ['ß|ss', ['ss']],
  ['[a-z]+', ['straße']],
  ['ǆ', ['ǆ']],
  ['k', ['k']],
  ['\\bxmrig\\b', ['xmrig', 'xmrigs']],
  ['.*\\Bmrig', ['xmrig', ' mrig']],
  ['\\$\\(curl', ['$(curl']],
  ['[\\u00e0-\\u00ff]', ['é']],
  ['[\\d\\-z]', ['-', '5', 'z']],
];

const BAD_PATTERNS = ['(', ')', '[a', 'a**', '*a', '\\q', '(?P<1>a)', '(?<n>a)', '\\1', '(?z)', '[b-a]', 'a{3,2}', 'x(?i)', '\\N{BULLET}', '(?>a)', 'a++', '(?(1)a|b)', '(?-i:a)', '[\\d-z]'];

test('regex: Python syntax is translated, unsupported constructs refused', () => {
  for (const p of BAD_PATTERNS) assert.throws(() => compileAllowedPattern(p), PyRegexError, p);
  assert.equal(compileAllowedPattern('^(/usr/bin/)?ls.*$').test('ls -la'), true);
  assert.equal(compileAllowedPattern('foo').test('x foo'), false, 'anchored at the start, as re.match');
  assert.equal(compileAllowedPattern('foo').test('foobar'), true, 'not anchored at the end');
  assert.equal(compileAllowedPattern('FOO').test('foo'), true, 'ignoring case');
});

test('regex: re.match(pattern, text, re.IGNORECASE) and the translation agree', { skip: skipNoPython }, () => {
  const cases = PATTERNS.flatMap(([p, texts]) => texts.map((t) => [p, t] as const));
  const want = python(
    'import re\nout = []\nfor p, t in json.load(sys.stdin):\n    out.append(bool(re.match(p, t, re.IGNORECASE)))\nprint(json.dumps(out))',
    cases,
  ) as boolean[];
  cases.forEach(([p, t], i) => assert.equal(compileAllowedPattern(p).test(t), want[i], `${JSON.stringify(p)} on ${JSON.stringify(t)}`));
  // Every pattern we refuse, Python refuses too — except what Python 3.11 has and JS cannot express.
  const pyRefuses = python(
    'import re\nout = []\nfor p in json.load(sys.stdin):\n    try:\n        re.compile(p, re.IGNORECASE); out.append(False)\n    except re.error:\n        out.append(True)\nprint(json.dumps(out))',
    BAD_PATTERNS,
  ) as boolean[];
  const pythonOnly = new Set(['(?>a)', 'a++', '(?(1)a|b)', '(?-i:a)', '\\N{BULLET}']);
  BAD_PATTERNS.forEach((p, i) => {
    if (!pythonOnly.has(p) && !(p === 'a++' && !pyRefuses[i])) assert.equal(pyRefuses[i], true, `Python accepts ${p}`);
  });
});
