/**
 * Output strings and the two alert shapes (Falco's text line and JSON), then the engine's fast
 * paths checked against plain semantics: many `contains` fused into one Aho-Corasick pass, the
 * automaton itself, and IP address / CIDR parsing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AhoCorasick } from '../src/engine/aho.js';
import { ConditionCompiler, type IR } from '../src/engine/compiler.js';
import { netContains, parseIp, parseNet } from '../src/platform/ip.js';
import { fromJsonText } from '../src/engine/json.js';
import { clockTime, falcoJsonLine, formatText, isoTime, toFalcoJson } from '../src/engine/output.js';
import { parseCondition } from '../src/engine/parser.js';
import type { Match } from '../src/engine/types.js';
import type { SyscallEvent } from '../src/events.js';
import { ev, testRegistry } from './helpers/catalog.js';
import { assertProblem, load, oneError, y } from './helpers/rules.js';

const TS = 1_764_000_000_123_456_789n; // 2025-11-24T16:00:00.123456789Z

function outRule(output: string, priority = 'WARNING', extra: string[] = []): string {
  return y('- rule: Out', '  desc: d', '  condition: evt.type in (execve, openat)', `  output: ${output}`, `  priority: ${priority}`, ...extra);
}

function only(text: string, event: SyscallEvent): Match {
  const ms = load(text).process(event);
  assert.equal(ms.length, 1);
  return ms[0]!;
}

const tree = ev({
  ts: TS,
  proc: { name: 'xmrig', pid: 300, args: ['--donate-level', '1'], parent: { pid: 200, name: 'sshd', parent: { pid: 1, name: 'systemd' } } },
});

describe('output strings', () => {
  test('%field, %(field), %proc.aname[N] and evt.arg keys', () => {
    const e = ev({ ts: TS, args: { mode: '0755' }, proc: tree.proc });
    const m = only(outRule('"miner %proc.name (%(proc.pid)) parent=%proc.aname[1] gp=%proc.aname[2] mode=%evt.arg.mode/%evt.arg[mode] cmd=%proc.cmdline"'), e);
    assert.equal(m.output, 'miner xmrig (300) parent=sshd gp=systemd mode=0755/0755 cmd=xmrig --donate-level 1');
    assert.deepEqual(m.outputFields, {
      'proc.name': 'xmrig', 'proc.pid': 300, 'proc.aname[1]': 'sshd', 'proc.aname[2]': 'systemd',
      'evt.arg.mode': '0755', 'evt.arg[mode]': '0755', 'proc.cmdline': 'xmrig --donate-level 1',
    });
  });

  test('missing values print <NA> and are null in output_fields', () => {
    const m = only(outRule('file=%fd.name port=%fd.sport gp=%proc.aname[5] w=%evt.is_open_write'), ev({ ts: TS, proc: { name: 'bash', pid: 1 } }));
    assert.equal(m.output, 'file=<NA> port=<NA> gp=<NA> w=<NA>');
    assert.deepEqual(m.outputFields, { 'fd.name': null, 'fd.sport': null, 'proc.aname[5]': null, 'evt.is_open_write': null });
  });

  test('a format rendered many times (its own render function after a few) renders as the first time', () => {
    // Text, a number, a boolean, a list, a missing value, a width and a transformer, plus Falco's
    // append_output fields, over two events in turn: renders 1-2 run the loop, later ones the
    // format's own function (output.ts, specialized()).
    const engine = load(outRule('"n=%proc.name p=%proc.pid w=%evt.is_open_write t=%fd.types gp=%proc.aname[5] pad=%8proc.name up=%toupper(proc.name) f=%fd.name"'));
    const events = [
      ev({ ts: TS, type: 'openat', args: { w: 1 }, fd: { type: 'ipv4', name: '/x', sport: 3333 }, proc: tree.proc }),
      ev({ ts: TS + 1n, type: 'execve', proc: { name: 'a-rather-long-name', pid: 7 } }),
    ];
    const first = events.map((e) => engine.process(e)[0]!);
    assert.equal(first[0]!.output, 'n=xmrig p=300 w=true t=(ipv4,file) gp=<NA> pad=xmrig    up=XMRIG f=/x');
    assert.equal(first[1]!.output, 'n=a-rather-long-name p=7 w=<NA> t=<NA> gp=<NA> pad=a-rather up=A-RATHER-LONG-NAME f=<NA>');
    for (let round = 0; round < 6; round++) {
      events.forEach((e, i) => {
        const m = engine.process(e)[0]!;
        assert.equal(m.output, first[i]!.output, `round ${round}, event ${i}`);
        assert.deepEqual(m.outputFields, first[i]!.outputFields, `round ${round}, event ${i}`);
        assert.deepEqual(Object.keys(m.outputFields), Object.keys(first[i]!.outputFields), 'the keys in the same order');
      });
    }
  });

  test('types of output values: numbers, booleans, lists', () => {
    const e = ev({ ts: TS, type: 'openat', args: { w: 1 }, fd: { type: 'ipv4', name: '/x', sport: 3333 } });
    const m = only(outRule('"%fd.sport %evt.is_open_write %fd.types"'), e);
    assert.equal(m.output, '3333 true (ipv4,file)');
    // libs' tojson: a list field is a JSON array.
    assert.deepEqual(m.outputFields, { 'fd.sport': 3333, 'evt.is_open_write': true, 'fd.types': ['ipv4', 'file'] });
  });

  test('punctuation around fields and a field named twice', () => {
    const m = only(outRule('"sure: %proc.name, %proc.name. (%proc.pid)"'), tree);
    assert.equal(m.output, 'sure: xmrig, xmrig. (300)');
    assert.deepEqual(Object.keys(m.outputFields), ['proc.name', 'proc.pid']);
  });

  test('a % that starts no field is a load error, as in libs (invalid formatting token)', () => {
    assertProblem(oneError(outRule('"100% sure: %proc.name"')), 'x.yaml:4:16', "'% sure:' is not a field");
    assertProblem(oneError(outRule('"cpu at 100%"')), 'x.yaml:4:22', 'cannot end with a %');
    assertProblem(oneError(outRule('"%20"')), 'x.yaml:4:12', 'cannot end with a width');
    assertProblem(oneError(outRule('"%toupper(proc.name"')), 'x.yaml:4:30', "missing ')'");
  });

  test('an unknown field in an output is a load error at its line:col', () => {
    const p = oneError(outRule('"proc=%proc.name file=%fd.nope"'));
    assertProblem(p, 'x.yaml:4:34', "output: unknown field 'fd.nope'", 'fd.nope');
    const q = oneError(y('- rule: Out', '  desc: d', '  condition: evt.type = execve', '  output: >', '    first line %proc.name', '    second %(proc.bogus)', '  priority: INFO'));
    assertProblem(q, 'x.yaml:6:14', "output: unknown field 'proc.bogus'", 'proc.bogus');
    assertProblem(oneError(outRule('"%proc.aname[x]"')), 'x.yaml:4:13', "takes a numeric index", 'proc.aname[x]');
  });
});

describe('alert shapes', () => {
  test('formatText: HH:MM:SS.nnnnnnnnn (UTC): Priority output', () => {
    const m = only(outRule('"miner %proc.name"', 'CRITICAL'), tree);
    assert.equal(formatText(m), '16:00:00.123456789: Critical miner xmrig');
    assert.equal(formatText(m, { iso8601: true }), '2025-11-24T16:00:00.123456789+0000: Critical miner xmrig');
    const info = only(outRule('x', 'INFO'), tree);
    assert.equal(formatText(info), '16:00:00.123456789: Informational x');
  });

  test('times keep every nanosecond and pad them', () => {
    assert.equal(isoTime(1_764_003_723_000_000_007n), '2025-11-24T17:02:03.000000007Z');
    assert.equal(clockTime(1_764_003_723_000_000_007n), '17:02:03.000000007');
    assert.equal(isoTime(0n), '1970-01-01T00:00:00.000000000Z');
    // Past 2^53 ns a JS number would lose the last digits; bigint does not.
    assert.equal(isoTime(9_007_199_254_740_993_001n), '2255-06-05T23:47:34.740993001Z');
  });

  test("toFalcoJson has exactly Falco's keys", () => {
    const m = only(outRule('"miner %proc.name %fd.name"', 'CRITICAL', ['  tags: [mitre_execution, T1496]']), tree);
    const j = toFalcoJson(m);
    assert.deepEqual(Object.keys(j), ['hostname', 'output', 'output_fields', 'priority', 'rule', 'source', 'tags', 'time']);
    assert.deepEqual(j, {
      hostname: 'testhost',
      output: '16:00:00.123456789: Critical miner xmrig <NA>',
      // Falco's keys are sorted; its prefix adds evt.time, the event time in ns.
      output_fields: { 'evt.time': TS, 'fd.name': null, 'proc.name': 'xmrig' },
      priority: 'Critical',
      rule: 'Out',
      source: 'syscall',
      tags: ['T1496', 'mitre_execution'], // a set, as Falco keeps tags: sorted, each once
      time: '2025-11-24T16:00:00.123456789Z',
    });
    assert.match(j.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    // The line keeps every digit of the ns time, past what a JS number holds.
    assert.equal(falcoJsonLine(m), JSON.stringify(j, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)).replace('1764000000123456800', '1764000000123456789'));
    assert.deepEqual(fromJsonText(falcoJsonLine(m)), j);
  });

  test('priority labels of every priority', () => {
    const labels = ['EMERGENCY', 'ALERT', 'CRITICAL', 'ERROR', 'WARNING', 'NOTICE', 'INFORMATIONAL', 'DEBUG']
      .map((p) => toFalcoJson(only(outRule('x', p), tree)).priority);
    assert.deepEqual(labels, ['Emergency', 'Alert', 'Critical', 'Error', 'Warning', 'Notice', 'Informational', 'Debug']);
  });

  test("the event's own hostname wins over the engine's", () => {
    const m = only(outRule('x'), { ...tree, hostname: 'node-7' });
    assert.equal(toFalcoJson(m).hostname, 'node-7');
    assert.equal(m.time, TS);
    assert.equal((m.event as SyscallEvent).proc.pid, 300);
  });
});

// ---- contains fusion ---------------------------------------------------------------------------

/** A small deterministic PRNG so the event set is the same on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const NEEDLES = ['xmrig', 'stratum+tcp', '--donate-level', 'pool.minexmr', 'rig', 'tcp://', 'XMR', 'abab', 'bab'];
const FRAGMENTS = ['xm', 'rig', 'x', 'mrig', 'stratum', '+tcp', 'tcp:', '//', '--donate', '-level', 'pool.', 'minexmr', 'XM', 'R', 'xmr',
  'ab', 'a', 'b', ' ', '/usr/bin/', 'python', 'XMRIG', 'StRaTuM+TCP', 'ba'];

function haystacks(n: number): string[] {
  const r = rng(42);
  const out = ['', 'xmrig', 'x', 'abab', 'bab', 'ababab', 'tcp:/', 'tcp://', 'zzzz'];
  for (let i = 0; i < n; i++) {
    let s = '';
    const k = Math.floor(r() * 6);
    for (let j = 0; j < k; j++) s += FRAGMENTS[Math.floor(r() * FRAGMENTS.length)];
    out.push(s);
  }
  return out;
}

const cmdEvent = (cmd: string) => ev({ proc: { name: 'p', pid: 1, args: [cmd] } }); // proc.cmdline = "p " + cmd

/** Count the leaves of the compiled IR of a condition (to see that fusion happened). */
function leaves(condition: string): number {
  const compiler = new ConditionCompiler({ registry: testRegistry(), source: 'syscall', macros: new Map() });
  const ir = ConditionCompiler.simplify(compiler.toIR(parseCondition(condition), () => ({ file: 'c', line: 1, col: 1 })), undefined);
  const count = (x: IR): number => (x.k === 'leaf' ? 1 : x.k === 'const' ? 0 : x.k === 'not' ? count(x.x) : x.k === 'macro' ? count(x.ir) : x.items.reduce((a, b) => a + count(b), 0));
  return count(ir);
}

describe('an or of many contains on one field (one Aho-Corasick pass) gives the plain answers', () => {
  const events = haystacks(600);
  const check = (condition: string, naive: (cmdline: string) => boolean, mixed = true) => {
    const e = load(y('- rule: R', '  desc: d', '  condition: >-', `    evt.type = execve and (${condition})`, '  output: o', '  priority: INFO'));
    const wrong: string[] = [];
    let hits = 0;
    for (const h of events) {
      const want = naive('p ' + h);
      if (want) hits++;
      const got = e.process(cmdEvent(h)).length === 1;
      if (got !== want) wrong.push(`${JSON.stringify(h)}: expected ${want}`);
    }
    assert.deepEqual(wrong, []);
    // The set exercises both answers.
    if (mixed) assert.ok(hits > 20 && hits < events.length - 20, `hits ${hits} of ${events.length}`);
  };
  const q = (s: string) => JSON.stringify(s);

  test('contains', () => {
    const cond = NEEDLES.map((n) => `proc.cmdline contains ${q(n)}`).join(' or ');
    assert.equal(leaves(cond), 1, 'the contains tests were fused');
    check(cond, (c) => NEEDLES.some((n) => c.includes(n)));
  });

  test('icontains', () => {
    const cond = NEEDLES.map((n) => `proc.cmdline icontains ${q(n)}`).join(' or ');
    assert.equal(leaves(cond), 1);
    check(cond, (c) => NEEDLES.some((n) => c.toLowerCase().includes(n.toLowerCase())));
  });

  test('mixed with other tests, icontains beside contains, and two fields', () => {
    const cs = NEEDLES.slice(0, 5).map((n) => `proc.cmdline contains ${q(n)}`);
    const ics = ['ABAB', 'Minexmr', '//', 'python', 'py'].map((n) => `proc.cmdline icontains ${q(n)}`);
    const names = ['a', 'b', 'c', 'd', 'e'].map((n) => `proc.name contains ${n}`); // never true: proc.name is "p"
    const cond = [cs[0], 'proc.pid = 999', ...ics.slice(0, 2), ...names, ...cs.slice(1), ...ics.slice(2), 'proc.name = nope'].join(' or ');
    assert.equal(leaves(cond), 5, 'one automaton per field and case, plus the two plain tests');
    check(cond, (c) => NEEDLES.slice(0, 5).some((n) => c.includes(n)) || ['abab', 'minexmr', '//', 'python', 'py'].some((n) => c.toLowerCase().includes(n)));
  });

  test('under not, and with a transformer', () => {
    const cond = 'not (' + NEEDLES.map((n) => `proc.cmdline contains ${q(n)}`).join(' or ') + ')';
    check(cond, (c) => !NEEDLES.some((n) => c.includes(n)));
    const lower = NEEDLES.map((n) => `tolower(proc.cmdline) contains ${q(n.toLowerCase())}`).join(' or ');
    assert.equal(leaves(lower), 1);
    check(lower, (c) => NEEDLES.some((n) => c.toLowerCase().includes(n.toLowerCase())));
  });

  test('a fused test on a missing field is false, and its negation true', () => {
    const cond = ['a', 'b', 'c', 'd', 'e'].map((n) => `fd.name contains ${n}`).join(' or ');
    const e = load(y('- rule: Pos', '  desc: d', `  condition: evt.type = execve and (${cond})`, '  output: o', '  priority: INFO',
      '- rule: Neg', '  desc: d', `  condition: evt.type = execve and not (${cond})`, '  output: o', '  priority: INFO'));
    assert.deepEqual(e.process(cmdEvent('abcde')).map((m) => m.rule), ['Neg']);
    assert.deepEqual(e.process(ev({ fd: { name: '/tmp/e' } })).map((m) => m.rule), ['Pos']);
  });

  test('an empty needle matches every present value', () => {
    const cond = ['', 'zz1', 'zz2', 'zz3', 'zz4'].map((n) => `proc.cmdline contains ${q(n)}`).join(' or ');
    check(cond, () => true, false);
  });
});

// ---- Aho-Corasick ------------------------------------------------------------------------------

function naiveMatches(needles: string[], text: string): string[] {
  const out: string[] = [];
  for (let end = 1; end <= text.length; end++) {
    needles.forEach((n, id) => {
      if (n.length > 0 && end >= n.length && text.slice(end - n.length, end) === n) out.push(`${id}@${end}`);
    });
  }
  return out.sort();
}

describe('AhoCorasick', () => {
  test('overlapping needles: every occurrence, with its end', () => {
    const needles = ['he', 'she', 'his', 'hers'];
    const ac = new AhoCorasick(needles);
    const got = [...ac.matches('ushers')].map((m) => `${needles[m.id]}@${m.end}`).sort();
    assert.deepEqual(got, ['he@4', 'hers@6', 'she@4']);
    assert.equal(ac.test('ushers'), true);
    assert.equal(ac.test('hi s'), false);
  });

  test('a needle inside another, repeated letters', () => {
    const needles = ['a', 'aa', 'aaa'];
    const got = [...new AhoCorasick(needles).matches('aaaa')].map((m) => `${m.id}@${m.end}`).sort();
    assert.deepEqual(got, naiveMatches(needles, 'aaaa'));
    assert.equal(got.length, 4 + 3 + 2);
  });

  test('a needle at the very end, at the very start, and the whole text', () => {
    const ac = new AhoCorasick(['xmrig']);
    assert.equal(ac.test('/usr/bin/xmrig'), true);
    assert.equal(ac.test('xmrig --opts'), true);
    assert.equal(ac.test('xmrig'), true);
    assert.equal(ac.test('xmri'), false);
    assert.equal(ac.test('mrig'), false);
    assert.equal(ac.test('xmrxmri'), false);
    assert.equal(ac.test('xmxmrig'), true); // a failure link back into the middle
  });

  test('an empty haystack, an empty needle, no needles', () => {
    assert.equal(new AhoCorasick(['a', 'b']).test(''), false);
    assert.deepEqual([...new AhoCorasick(['a']).matches('')], []);
    assert.equal(new AhoCorasick(['', 'zz']).test(''), true);
    assert.equal(new AhoCorasick(['', 'zz']).test('abc'), true);
    assert.equal(new AhoCorasick([]).test('anything'), false);
    assert.equal(new AhoCorasick([]).isBuilt, true);
  });

  test('non-ASCII text and case sensitivity', () => {
    const ac = new AhoCorasick(['mineur', 'ü', '矿']);
    assert.equal(ac.test('crypto-MINEUR'), false);
    assert.equal(ac.test('grün'), true);
    assert.equal(ac.test('挖矿程序'), true);
  });

  test('agrees with a naive search on many random texts', () => {
    const r = rng(7);
    const alphabet = 'abc';
    const word = (max: number) => Array.from({ length: 1 + Math.floor(r() * max) }, () => alphabet[Math.floor(r() * 3)]).join('');
    for (let round = 0; round < 200; round++) {
      const needles = Array.from({ length: 1 + Math.floor(r() * 6) }, () => word(4));
      const text = Math.floor(r() * 5) === 0 ? '' : word(20);
      const ac = new AhoCorasick(needles);
      const want = naiveMatches(needles, text);
      assert.deepEqual([...ac.matches(text)].map((m) => `${m.id}@${m.end}`).sort(), want, `${JSON.stringify(needles)} in ${text}`);
      assert.equal(ac.test(text), want.length > 0);
    }
  });
});

// ---- IP addresses ------------------------------------------------------------------------------

describe('IP addresses and networks', () => {
  const ip = (s: string) => {
    const r = parseIp(s);
    return r && { v6: r.v6, n: r.n.toString(16) };
  };

  test('IPv4', () => {
    assert.deepEqual(ip('1.2.3.4'), { v6: false, n: '1020304' });
    assert.deepEqual(ip('255.255.255.255'), { v6: false, n: 'ffffffff' });
    assert.deepEqual(ip('0.0.0.0'), { v6: false, n: '0' });
    for (const bad of ['1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.-1', '1.2.3.a', '', '1..2.3', ' 1.2.3.4', '1234.1.1.1']) {
      assert.equal(parseIp(bad), undefined, bad);
    }
  });

  test('IPv6, with and without ::', () => {
    assert.deepEqual(ip('::'), { v6: true, n: '0' });
    assert.deepEqual(ip('::1'), { v6: true, n: '1' });
    assert.deepEqual(ip('1::'), { v6: true, n: '1' + '0'.repeat(28) });
    assert.deepEqual(ip('2001:db8::ff00:42:8329'), { v6: true, n: '20010db8000000000000ff0000428329' });
    assert.deepEqual(ip('2001:0db8:0000:0000:0000:ff00:0042:8329'), ip('2001:db8::ff00:42:8329'));
    assert.deepEqual(ip('FE80::ABCD'), ip('fe80::abcd'));
    assert.deepEqual(ip('1:2:3:4:5:6:7::'), { v6: true, n: '10002000300040005000600070000' });
    assert.deepEqual(ip('::2:3:4:5:6:7:8'), { v6: true, n: '2000300040005000600070008' });
    for (const bad of ['1::2::3', ':::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8::', '12345::', 'g::1', '::ffff:1.2.3', '1:2']) {
      assert.equal(parseIp(bad), undefined, bad);
    }
  });

  test('IPv4-mapped IPv6 is the IPv4 address; other embedded forms stay IPv6', () => {
    assert.deepEqual(ip('::ffff:1.2.3.4'), { v6: false, n: '1020304' });
    assert.deepEqual(ip('::ffff:0102:0304'), { v6: false, n: '1020304' });
    assert.deepEqual(ip('::FFFF:10.0.0.1'), { v6: false, n: 'a000001' });
    assert.deepEqual(ip('::1.2.3.4'), { v6: true, n: '1020304' });
    assert.deepEqual(ip('64:ff9b::1.2.3.4'), { v6: true, n: '64ff9b' + '0'.repeat(16) + '01020304' });
  });

  test('CIDR edges: /0, /32, /128, host bits, bad prefixes', () => {
    const inNet = (net: string, addr: string) => netContains(parseNet(net)!, parseIp(addr)!);
    assert.equal(inNet('0.0.0.0/0', '255.1.2.3'), true);
    assert.equal(inNet('0.0.0.0/0', '::1'), false);
    assert.equal(inNet('::/0', 'ffff::1'), true);
    assert.equal(inNet('::/0', '1.2.3.4'), false);
    assert.equal(inNet('1.2.3.4/32', '1.2.3.4'), true);
    assert.equal(inNet('1.2.3.4/32', '1.2.3.5'), false);
    assert.equal(inNet('1.2.3.4', '1.2.3.4'), true); // a bare address is a /32
    assert.equal(inNet('::1/128', '::1'), true);
    assert.equal(inNet('::1/128', '::2'), false);
    assert.equal(inNet('2001:db8::/128', '2001:db8::'), true);
    assert.equal(inNet('10.1.2.3/8', '10.200.0.1'), true); // host bits in the network are ignored
    assert.equal(inNet('10.0.0.0/8', '11.0.0.0'), false);
    assert.equal(inNet('10.0.0.0/8', '9.255.255.255'), false);
    assert.equal(inNet('192.168.0.0/23', '192.168.1.255'), true);
    assert.equal(inNet('192.168.0.0/23', '192.168.2.0'), false);
    assert.equal(inNet('fd00::/8', 'fdff:ffff::1'), true);
    assert.equal(inNet('fd00::/8', 'fe00::'), false);
    // A v4-mapped network is the IPv4 network it maps (/96 + n bits = /n).
    assert.equal(inNet('::ffff:0:0/96', '10.9.9.9'), true);
    assert.equal(inNet('::ffff:0.0.0.0/96', '::ffff:1.1.1.1'), true);
    assert.equal(inNet('::ffff:10.0.0.0/104', '10.9.9.9'), true);
    assert.equal(inNet('::ffff:10.0.0.0/104', '11.0.0.0'), false);
    assert.equal(inNet('::ffff:10.0.0.0/104', '::1'), false);
    assert.deepEqual(parseNet('::ffff:10.0.0.0/104'), { v6: false, base: 0x0a000000n, bits: 8, base4: 0x0a000000, mask4: 0xff000000 });
    assert.deepEqual(parseNet('10.1.2.3/8'), { v6: false, base: 0x0a000000n, bits: 8, base4: 0x0a000000, mask4: 0xff000000 });
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8/8', '10.0.0.0/x', 'nope/8']) {
      assert.equal(parseNet(bad), undefined, bad);
    }
  });
});
