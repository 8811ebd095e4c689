/**
 * The compiler's fast paths give the plain answers: single-closure tests on single-valued fields
 * (text, numbers, booleans, addresses), equality and text tests fused inside an `or`, empty lists,
 * transformers memoized per event, list fields walked without arrays, and the IPv4 parser that
 * skips parseIp. Each is checked against the general path (the same field declared as a list, whose
 * tests go through the scalar tests one value at a time) or against a plain implementation.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConditionCompiler, type IR } from '../src/engine/compiler.js';
import { RulesEngine } from '../src/engine/engine.js';
import { netContains, parseIp, parseNet, parseV4Number } from '../src/platform/ip.js';
import { parseCondition } from '../src/engine/parser.js';
import type { Event, SyscallEvent } from '../src/events.js';
import { FieldRegistry } from '../src/fields/registry.js';
import type { AnyOf, FieldDef, FieldType, FieldValue } from '../src/fields/types.js';
import { ev, testFields } from './helpers/catalog.js';
import { rule, y } from './helpers/rules.js';

/**
 * x.<type>: the event's args.v as a single value; xl.<type>: the same declared as a list whose
 * tests hold when any value passes (as proc.aname), so every operator of the type applies to it.
 */
function probeFields(): FieldDef[] {
  const types: FieldType[] = ['charbuf', 'int64', 'bool', 'ipaddr', 'ipnet'];
  const get = (e: Event) => (e as SyscallEvent).args?.v as never;
  return types.flatMap((t): FieldDef[] => [
    { name: `x.${t}`, type: t, desc: 'probe', bind: () => get },
    { name: `xl.${t}`, type: t, desc: 'probe as a list', isList: true, anyWhenNoArg: true, bind: () => get },
  ]);
}

function engineFor(conditions: string[], fields: FieldDef[] = []): RulesEngine {
  const text = conditions.map((c, i) => rule(`R${i}`, c)).join('');
  const registry = new FieldRegistry([{ source: 'syscall', fields: [...testFields, ...probeFields(), ...fields] }]);
  return new RulesEngine([{ path: 'x.yaml', text }], { registry, ruleMatching: 'all', hostname: 'h' });
}

/** Which of the conditions hold for each value of args.v. */
function verdicts(conditions: string[], values: unknown[], fields: FieldDef[] = []): boolean[][] {
  const e = engineFor(conditions, fields);
  return values.map((v) => {
    const hits = new Set(e.process(ev({ args: { v } as never })).map((m) => m.rule));
    return conditions.map((_c, i) => hits.has(`R${i}`));
  });
}

const show = (v: unknown): string => (typeof v === 'bigint' ? `${v}n` : JSON.stringify(v) ?? String(v));

/** Each condition on x.T agrees with the same condition on xl.T for values that are not lists. */
function agreeWithGeneralPath(type: FieldType, conditions: string[], values: unknown[]): void {
  const single = verdicts(conditions.map((c) => c.replaceAll('$F', `x.${type}`)), values);
  const general = verdicts(conditions.map((c) => c.replaceAll('$F', `xl.${type}`)), values);
  const wrong: string[] = [];
  values.forEach((v, i) => {
    conditions.forEach((c, j) => {
      const want = Array.isArray(v) ? false : general[i]![j]!;
      if (single[i]![j] !== want) wrong.push(`${c} on ${show(v)}: fast ${single[i]![j]}, general ${want}`);
    });
  });
  assert.deepEqual(wrong, []);
}

const ODD: unknown[] = [undefined, null, '', 0, 1, -1, 42, 3.5, 10n, true, false, [], ['a'], ['1', '2'], { a: 1 }, 'NaN'];

describe('single-closure tests agree with the general path', () => {
  test('text operators', () => {
    const values = [...ODD, 'bash', 'Bash', '/etc/shadow', '/etc', '/etc/', 'x/etc/shadow', 'shadow', '42', 'true', 'ab*cd', 'abXcd', '../../x', 'c:\\d'];
    agreeWithGeneralPath('charbuf', [
      '$F = bash', '$F != bash', '$F = 42', '$F != 42', '$F in (bash, sh, 42, "")', '$F intersects (bash, true)',
      '$F contains etc', '$F icontains BASH', '$F startswith /etc', '$F endswith shadow', '$F glob "ab*cd"', '$F iglob "AB*"',
      '$F regex "[0-9]+"', '$F pmatch (/etc, /var/log)', '$F = ""', '$F != ""',
    ], values);
  });

  test('numeric operators', () => {
    const values = [...ODD, 5, 10, 11, 9.99, '10', ' 10 ', '0x10', 16, 10n, 11n, -0, Infinity];
    agreeWithGeneralPath('int64', ['$F = 10', '$F != 10', '$F < 10', '$F <= 10', '$F > 10', '$F >= 10', '$F in (10, 16, 0)', '$F = 0', '$F != 0'], values);
  });

  test('boolean operators', () => {
    agreeWithGeneralPath('bool', ['$F = true', '$F = false', '$F != true', '$F != false', '$F in (true)', '$F in (true, false)'], [...ODD, 'true', 'false', 'TRUE']);
  });

  test('address operators, IPv4 and IPv6', () => {
    const values = [...ODD, '10.0.0.1', '10.255.255.255', '11.0.0.1', '127.0.0.1', '0.0.0.0', '::1', '::ffff:10.1.2.3', 'fd00::1',
      '010.0.0.1', '10.0.0', '10.0.0.1.', '1.2.3.256', '169.254.169.254', ' 10.0.0.1', '10.0.0.1 ', 'x'];
    // Addresses on address fields, networks on network fields (libs refuses the other way round).
    agreeWithGeneralPath('ipaddr', ['$F = 10.0.0.1', '$F != 10.0.0.1', '$F in (::1, 10.0.0.1)', '$F = 0.0.0.0', '$F != 0.0.0.0', '$F = ::ffff:10.1.2.3'], values);
    agreeWithGeneralPath('ipnet', ['$F in (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)', '$F = 127.0.0.0/8', '$F != 127.0.0.0/8',
      '$F in (::1/128, fd00::/8)', '$F in (::ffff:10.0.0.0/104)', '$F = 0.0.0.0/0'], values);
    // Both paths share the address test: check it against parseIp and netContains themselves.
    const plain: Array<[string, string[], boolean]> = [
      ['x.ipaddr = 10.0.0.1', ['10.0.0.1'], true], ['x.ipnet in (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'], true],
      ['x.ipnet != 127.0.0.0/8', ['127.0.0.0/8'], false], ['x.ipnet in (::1/128, fd00::/8)', ['::1/128', 'fd00::/8'], true], ['x.ipnet = 0.0.0.0/0', ['0.0.0.0/0'], true],
    ];
    const got = verdicts(plain.map((x) => x[0]), values);
    const wrong: string[] = [];
    values.forEach((v, i) => plain.forEach(([c, nets, eq], j) => {
      const ip = v === undefined || v === null || Array.isArray(v) ? undefined : parseIp(String(v));
      const inside = ip !== undefined && nets.some((n) => netContains(parseNet(n)!, ip));
      const want = v !== undefined && !Array.isArray(v) && inside === eq;
      if (got[i]![j] !== want) wrong.push(`${c} on ${show(v)}: got ${got[i]![j]}`);
    }));
    assert.deepEqual(wrong, []);
  });
});

describe('parseV4Number', () => {
  test('agrees with parseIp on dotted quads, and refuses everything else', () => {
    const cases = ['0.0.0.0', '255.255.255.255', '10.0.3.7', '010.001.000.009', '1.2.3.4', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.',
      '1.2.3.4 ', ' 1.2.3.4', '1.2.3.04', '1234.1.1.1', '1.2.3.a', '::1', '::ffff:1.2.3.4', '', 'x', '１.2.3.4', '1.2.3.4/8', '99.99.99.99'];
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      let s = '';
      const n = 1 + (i % 17);
      for (let j = 0; j < n; j++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        s += '0123456789.'[seed % 11];
      }
      cases.push(s);
    }
    for (const s of cases) {
      const p = parseIp(s);
      const want = p && !p.v6 && !s.includes(':') ? p.n4 : -1;
      assert.equal(parseV4Number(s), want, JSON.stringify(s));
    }
  });
});

/** Leaves of a condition's IR once simplified (fusion happens in simplify). */
function leafTexts(condition: string): string[] {
  const registry = new FieldRegistry([{ source: 'syscall', fields: [...testFields, ...probeFields()] }]);
  const compiler = new ConditionCompiler({ registry, source: 'syscall', macros: new Map() });
  const ir = ConditionCompiler.simplify(compiler.toIR(parseCondition(condition), () => ({ file: 'c', line: 1, col: 1 })), undefined);
  const out: string[] = [];
  const walk = (x: IR): void => {
    if (x.k === 'leaf') out.push(x.text ?? '?');
    else if (x.k === 'not') walk(x.x);
    else if (x.k === 'and' || x.k === 'or') x.items.forEach(walk);
    else if (x.k === 'macro') walk(x.ir);
  };
  walk(ir);
  return out;
}

describe('tests on one field inside an or are fused, with the same answers', () => {
  const values = [...ODD, 'a', 'b', 'c', 'abc', 'cba', '/dev/sda', '/dev/nvme0', '/dev/x', 'x.pool.org', 'pool.org', 'POOL.ORG', 'b.c', '4', '6'];

  test('equalities become one set; startswith, endswith, contains one pass each', () => {
    assert.equal(leafTexts('x.charbuf = a or x.charbuf = b or x.charbuf in (c, abc)').length, 1);
    assert.equal(leafTexts('x.charbuf startswith /dev/sd or x.charbuf startswith /dev/nvme or x.charbuf = a').length, 2);
    assert.equal(leafTexts('x.charbuf endswith .org or x.charbuf endswith .com or x.charbuf icontains POOL or x.charbuf icontains x').length, 2);
    // Different fields, operators or a single test stay apart.
    assert.equal(leafTexts('x.charbuf = a or proc.name = a or x.charbuf contains a').length, 3);
  });

  test('fused answers equal the plain ones (and under not)', () => {
    // Each test as the reference writes it: inside an `and` of its own, which nothing fuses.
    const p = (t: string): string => `(${t} and proc.pid != -12345)`;
    const pairs: Array<[fused: string, plain: string]> = [
      ['x.charbuf = a or x.charbuf = b or x.charbuf in (c, abc, 4)', `${p('x.charbuf = a')} or ${p('x.charbuf = b')} or ${p('x.charbuf in (c, abc, 4)')}`],
      ['x.charbuf startswith /dev/sd or x.charbuf startswith /dev/nvme or x.charbuf startswith a',
        `${p('x.charbuf startswith /dev/sd')} or ${p('x.charbuf startswith /dev/nvme')} or ${p('x.charbuf startswith a')}`],
      ['x.charbuf endswith .org or x.charbuf endswith c or x.charbuf endswith 6', `${p('x.charbuf endswith .org')} or ${p('x.charbuf endswith c')} or ${p('x.charbuf endswith 6')}`],
      ['x.charbuf contains b or x.charbuf contains dev', `${p('x.charbuf contains b')} or ${p('x.charbuf contains dev')}`],
      ['x.charbuf icontains POOL or x.charbuf icontains B.C', `${p('x.charbuf icontains POOL')} or ${p('x.charbuf icontains B.C')}`],
      ['not (x.charbuf = a or x.charbuf = b)', `not (${p('x.charbuf = a')} or ${p('x.charbuf = b')})`],
      ['not (x.charbuf endswith .org or x.charbuf endswith c)', `not (${p('x.charbuf endswith .org')} or ${p('x.charbuf endswith c')})`],
    ];
    assert.equal(leafTexts(pairs[0]![1]).length, 6, 'the reference is not fused');
    const fused = verdicts(pairs.map((x) => x[0]), values);
    assert.deepEqual(fused, verdicts(pairs.map((x) => x[1]), values));
    assert.ok(fused.flat().includes(true) && fused.flat().includes(false));
  });

  test('many contains needles use one automaton, with the same answers', () => {
    const needles = Array.from({ length: 30 }, (_v, i) => `n${i}x`);
    const cond = needles.map((n) => `x.charbuf contains ${n}`).join(' or ');
    assert.equal(leafTexts(cond).length, 1);
    const vs = ['', 'n1x', 'zzn29xzz', 'n30x', 'n3', 'xn12', 'n12x', 42, undefined, ['n1x']];
    const want = vs.map((v) => typeof v === 'string' && needles.some((n) => v.includes(n)) ? [true] : typeof v === 'number' ? [false] : [false]);
    assert.deepEqual(verdicts([cond], vs), want);
  });
});

describe('empty lists', () => {
  test('nothing is in an empty list: the test is false, for any value, also under not', () => {
    const conds = ['x.charbuf in ()', 'not x.charbuf in ()', 'xl.charbuf in ()', 'x.int64 in ()', 'x.charbuf pmatch ()', 'x.charbuf intersects ()', 'proc.aname in ()'];
    for (const row of verdicts(conds, ODD)) assert.deepEqual(row, [false, true, false, false, false, false, false]);
  });

  test('folding an empty list changes no rule event types and adds no warning', () => {
    const text = y('- list: none', '  items: []') + rule('R', 'evt.type = execve and proc.name in (none)');
    const e = new RulesEngine([{ path: 'x.yaml', text }], { registry: new FieldRegistry([{ source: 'syscall', fields: testFields }]), hostname: 'h' });
    assert.deepEqual(e.warnings.filter((w) => !/not used/.test(w.message)), []);
    assert.deepEqual([...e.active[0]!.evttypes!], ['execve']);
    assert.deepEqual(e.process(ev({ proc: { pid: 9, name: 'bash' } })), []);
  });
});

describe('list fields walked without arrays (FieldDef.bindAny)', () => {
  /** a.name: ancestors' names (like proc.aname), with an AnyOf that counts its calls. */
  function walkers(): { fields: FieldDef[]; walks: { n: number } } {
    const walks = { n: 0 };
    const names = (e: Event): string[] => {
      const out: string[] = [];
      for (let p = (e as SyscallEvent).proc.parent; p; p = p.parent) out.push(p.name);
      return out;
    };
    const any: AnyOf = (e, t) => {
      walks.n++;
      return names(e).some((v) => t(v as FieldValue));
    };
    return {
      walks,
      fields: [{ name: 'a.name', type: 'charbuf', desc: 'ancestors', arg: 'index', argOptional: true, isList: true, anyWhenNoArg: true, bind: () => names as never, bindAny: () => any }],
    };
  }

  test('comparisons use the walk; exists too; the answers are the array ones', () => {
    const { fields, walks } = walkers();
    const conds = ['a.name = sshd', 'a.name in (cron, init)', 'a.name startswith ss', 'a.name != sshd', 'a.name exists', 'not a.name = sshd'];
    const tree = ev({ proc: { pid: 3, name: 'x', parent: { pid: 2, name: 'sshd', parent: { pid: 1, name: 'init' } } } });
    const orphan = ev({ proc: { pid: 3, name: 'x' } });
    const e = engineFor(conds, fields);
    assert.deepEqual(e.process(tree).map((m) => m.rule), ['R0', 'R1', 'R2', 'R3', 'R4']);
    assert.deepEqual(e.process(orphan).map((m) => m.rule), ['R5']);
    assert.ok(walks.n >= 10, `walked ${walks.n} times`);
  });
});

describe('transformers', () => {
  test('one extraction per event for a transformer used by several rules', () => {
    let calls = 0;
    const counted: FieldDef = { name: 'c.name', type: 'charbuf', desc: 'counted', bind: () => (e) => (calls++, (e as SyscallEvent).proc.name) };
    const e = engineFor(['tolower(c.name) = bash', 'tolower(c.name) startswith ba', 'tolower(c.name) in (sh, bash)', 'basename(c.name) = BASH'], [counted]);
    assert.deepEqual(e.process(ev({ proc: { pid: 9, name: 'BASH' } })).map((m) => m.rule), ['R0', 'R1', 'R2', 'R3']);
    assert.equal(calls, 1);
  });
});

describe('per-event memo, owned by each engine', () => {
  test('two engines interleaved, and an event changed and processed again, are answered afresh', () => {
    const a = engineFor(['proc.name = xmrig']);
    const b = engineFor(['proc.name = xmrig', 'proc.name = bash']);
    const e = ev({ proc: { name: 'xmrig', pid: 1 } });
    assert.deepEqual(a.process(e).map((m) => m.rule), ['R0']);
    assert.deepEqual(b.process(e).map((m) => m.rule), ['R0']);
    e.proc.name = 'bash'; // the same object, changed: a new event for both engines
    assert.deepEqual(a.process(e).map((m) => m.rule), []);
    assert.deepEqual(b.process(e).map((m) => m.rule), ['R1']);
    assert.deepEqual(a.process(ev({ proc: { name: 'xmrig', pid: 2 } })).map((m) => m.rule), ['R0']);
  });
});
