/**
 * What process() runs per event type (src/engine/plan.ts): conditions specialized to the type,
 * guards shared by rules that open with the same test, and the value index. None of it may change
 * an answer: process() must report exactly the rules whose own predicates (the condition built
 * for all the rule's types at once) hold, in load order, with the same output.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ConditionCompiler, type Pred } from '../src/engine/compiler.js';
import { Engine, RulesEngine, type CompiledRule } from '../src/engine/index.js';
import { generateCode } from '../src/engine/specialize.js';
import type { Match } from '../src/engine/types.js';
import type { Event, ProcessInfo, SyscallEvent } from '../src/events.js';
import { FieldRegistry } from '../src/fields/registry.js';
import type { FieldDef } from '../src/fields/types.js';
import { ev, testFields } from './helpers/catalog.js';
import { FALCO_CORPUS, ROOT } from './helpers/paths.js';
import { rule, y } from './helpers/rules.js';

/** Each rule's own predicate: its condition for all its types, without the plans' guards and index. */
const ownPreds = new WeakMap<CompiledRule, Pred>();
function ownPred(r: CompiledRule): Pred {
  let p = ownPreds.get(r);
  // As closures (buildClosures), not the generated functions process() runs: the plain reading.
  if (!p) ownPreds.set(r, (p = ConditionCompiler.buildClosures(ConditionCompiler.simplify(r.condition, r.evttypes))));
  return p;
}

/** The plain reading of the rules: every rule for the event's type, its own predicate, in order. */
function reference(e: RulesEngine, event: Event, all: boolean): Array<{ rule: string; output: string; fields: unknown }> {
  const out: Array<{ rule: string; output: string; fields: unknown }> = [];
  for (const r of e.rulesFor(event.source, event.type)) {
    let hit = false;
    try {
      hit = ownPred(r)(event);
    } catch {
      hit = false;
    }
    if (!hit) continue;
    const { text, fields } = r.output.render(event);
    out.push({ rule: r.def.name, output: text, fields });
    if (!all) break;
  }
  return out;
}

const brief = (ms: Match[]) => ms.map((m) => ({ rule: m.rule, output: m.output, fields: m.outputFields }));

// ---- a random event stream over the values the rules name -------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const TYPES = ['execve', 'openat', 'open', 'connect', 'sendto', 'accept', 'rename', 'unlinkat', 'chmod', 'creat', 'setuid', 'ptrace', 'mkdir', 'bpf', 'symlinkat', 'read'];

function events(lists: Iterable<string[]>, n: number, seed: number): SyscallEvent[] {
  const r = rng(seed);
  const vals = [...new Set([...lists].flat())].map((v) => v.replace(/^"|"$/g, ''));
  vals.push('/etc/shadow', '/etc/passwd', '/usr/bin/ls', '/dev/shm/x', '10.1.2.3', '127.0.0.1', '169.254.169.254', 'O_WRONLY|O_CREAT|O_TRUNC', 'O_RDONLY', '');
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const val = (): unknown => (r() < 0.85 ? pick(vals) : pick([undefined, 0, 42, -1, true, ['a', 'b'], 'x', 1n]));
  const out: SyscallEvent[] = [];
  for (let i = 0; i < n; i++) {
    const grand: ProcessInfo = { pid: 1, name: pick(vals) };
    const parent: ProcessInfo = { pid: 2, name: pick(vals), exe: pick(vals), args: [pick(vals)], parent: grand };
    const proc: ProcessInfo = {
      pid: 3, vpid: r() < 0.2 ? 1 : 7, name: pick(vals), exe: pick(vals), exepath: pick(vals), args: [pick(vals), pick(vals)], cwd: pick(vals),
      env: r() < 0.3 ? [`LD_PRELOAD=${pick(vals)}`] : ['PATH=/bin'], tty: r() < 0.3 ? 34816 : 0, uid: r() < 0.5 ? 0 : 1000, user: pick(vals),
      loginuid: r() < 0.5 ? -1 : 1000, exe_upper_layer: r() < 0.3, exe_from_memfd: r() < 0.1, parent: r() < 0.9 ? parent : undefined,
    };
    if (r() < 0.2) (proc as unknown as Record<string, unknown>)[pick(['name', 'exe', 'args', 'env'])] = val();
    const e: SyscallEvent = { source: 'syscall', type: pick(TYPES), ts: 1_764_000_000_000_000_000n + BigInt(i), num: i + 1, res: r() < 0.8 ? 3 : -2, proc };
    if (r() < 0.6) e.container = { id: r() < 0.3 ? 'host' : 'abcdef012345', image_repository: pick(vals), privileged: r() < 0.3, name: 'c' };
    if (r() < 0.8) {
      e.fd = r() < 0.5
        ? { num: 5, type: 'file', name: pick(vals) }
        : { num: 6, type: r() < 0.9 ? 'ipv4' : 'ipv6', l4proto: r() < 0.7 ? 'tcp' : 'udp', sockfamily: 'ip', cip: '10.0.0.2', cport: 40000, sip: pick(['10.1.2.3', '127.0.0.1', '198.51.100.7', '169.254.169.254', pick(vals)]), sport: pick([22, 53, 443, 3333, 8080]), sip_name: pick(vals) };
      if (r() < 0.1) (e.fd as Record<string, unknown>)[pick(['name', 'type', 'sip', 'sport'])] = val();
    }
    e.args = { name: pick(vals), flags: pick(['O_RDONLY', 'O_WRONLY|O_CREAT|O_TRUNC', 'O_RDWR', 'O_WRONLY']), newpath: pick(vals), mode: pick([0, 0o4755, 'S_ISUID']) } as never;
    out.push(e);
  }
  return out;
}

describe('process() agrees with the rules\' own predicates', () => {
  const corpus = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'].map((f) => FALCO_CORPUS + f);
  const files = [...(corpus.every((f) => existsSync(f)) ? corpus : []), `${ROOT}rules/minewatch_rules.yaml`];

  for (const matching of ['all', 'first'] as const) {
    test(`Falco's rules and ours, ruleMatching ${matching}`, () => {
      const e = Engine.fromFiles(files, { ruleMatching: matching, hostname: 'h' });
      const evs = events(e.ruleset.lists.values(), 6000, matching === 'all' ? 1 : 2);
      const wrong: string[] = [];
      let hits = 0;
      for (const event of evs) {
        const got = brief(e.process(event));
        const want = reference(e, event, matching === 'all');
        hits += want.length;
        if (JSON.stringify(got) !== JSON.stringify(want) && wrong.length < 5) wrong.push(`${event.type} #${event.num}: got ${got.map((m) => m.rule)} want ${want.map((m) => m.rule)}`);
      }
      assert.deepEqual(wrong, []);
      assert.ok(hits > 300, `the stream exercises the rules (${hits} matches)`);
    });
  }

  test('without generated functions (Node run with --disallow-code-generation-from-strings) the answers are the same', () => {
    generateCode(false);
    let plain: Engine;
    try {
      plain = Engine.fromFiles(files, { ruleMatching: 'all', hostname: 'h' });
    } finally {
      generateCode(true);
    }
    const e = Engine.fromFiles(files, { ruleMatching: 'all', hostname: 'h' });
    let hits = 0;
    // Several rounds: outputs rendered often get their own render function in `e` only.
    for (let round = 0; round < 3; round++) {
      for (const event of events(e.ruleset.lists.values(), 2000, 3)) {
        const got = brief(e.process(event));
        hits += got.length;
        assert.deepEqual(got, brief(plain.process(event)), `${event.type} #${event.num}`);
      }
    }
    assert.ok(hits > 100, `the stream exercises the rules (${hits} matches)`);
  });

  test('Node run with --disallow-code-generation-from-strings still loads rules and matches', () => {
    const engineUrl = new URL('../src/engine/index.js', import.meta.url).href;
    const script = `import { Engine } from ${JSON.stringify(engineUrl)};
      const e = Engine.fromFiles([${JSON.stringify(`${ROOT}rules/minewatch_rules.yaml`)}], { hostname: 'h' });
      const ev = { source: 'syscall', type: 'execve', ts: 1n, num: 1, res: 0, args: {}, proc: { pid: 9, name: 'xmrig', exepath: '/tmp/xmrig', args: ['-o', 'stratum+tcp://198.51.100.1:3333'], env: [] } };
      let rules = [];
      for (let i = 0; i < 5; i++) rules = e.process(ev).map((m) => m.rule);
      console.log(JSON.stringify(rules));`;
    const out = execFileSync(process.execPath, ['--disallow-code-generation-from-strings', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const rules = JSON.parse(out) as string[];
    assert.ok(rules.length > 0, `a miner launch matches a rule (${out.trim()})`);
  });
});

// ---- guards and the value index on small, controlled rule sets ---------------------------------

/** proc.name as the test catalog has it, plus fields that throw or count their calls. */
function registry(extra: FieldDef[] = []): FieldRegistry {
  return new FieldRegistry([{ source: 'syscall', fields: [...testFields, ...extra] }]);
}

function engine(text: string, extra: FieldDef[] = [], matching: 'all' | 'first' = 'all'): RulesEngine {
  return new RulesEngine([{ path: 'x.yaml', text }], { registry: registry(extra), ruleMatching: matching, hostname: 'h' });
}

const fired = (e: RulesEngine, event: Event): string[] => e.process(event).map((m) => m.rule);

describe('guards', () => {
  const macro = y('- macro: is_bash', '  condition: proc.name = bash');
  const rules = macro + rule('A', 'evt.type = execve and is_bash and proc.pid = 1') + rule('B', 'evt.type = execve and proc.pid = 2')
    + rule('C', 'evt.type = execve and is_bash and proc.pid = 3') + rule('D', 'evt.type = execve and is_bash and not proc.pid = 1');

  test('a shared leading test skips the rules it opens when false, and only those', () => {
    const e = engine(rules);
    assert.deepEqual(fired(e, ev({ proc: { pid: 1, name: 'bash' } })), ['A']);
    assert.deepEqual(fired(e, ev({ proc: { pid: 2, name: 'bash' } })), ['B', 'D']);
    assert.deepEqual(fired(e, ev({ proc: { pid: 3, name: 'sh' } })), []);
    assert.deepEqual(fired(e, ev({ proc: { pid: 2, name: 'sh' } })), ['B']);
    const first = engine(rules, [], 'first');
    assert.deepEqual(fired(first, ev({ proc: { pid: 2, name: 'bash' } })), ['B']);
    assert.deepEqual(fired(first, ev({ proc: { pid: 3, name: 'bash' } })), ['C']);
  });

  test('a guard that throws: the rules it opens do not match, the others do', () => {
    let boom = true;
    const flaky: FieldDef = { name: 'f.flaky', type: 'charbuf', desc: 'throws', bind: () => () => { if (boom) throw new Error('bad data'); return 'ok'; } };
    const text = rule('A', 'evt.type = execve and f.flaky = ok and proc.pid = 1') + rule('B', 'evt.type = execve and f.flaky = ok')
      + rule('C', 'evt.type = execve and not f.flaky = ok') + rule('D', 'evt.type = execve and not f.flaky = ok and proc.pid = 1') + rule('E', 'evt.type = execve');
    const e = engine(text, [flaky]);
    assert.deepEqual(fired(e, ev({ proc: { pid: 1, name: 'x' } })), ['E']);
    boom = false;
    assert.deepEqual(fired(e, ev({ proc: { pid: 1, name: 'x' } })), ['A', 'B', 'E']);
  });

  test('a guard is evaluated once per event, however many rules it opens', () => {
    let calls = 0;
    const counted: FieldDef = { name: 'f.counted', type: 'charbuf', desc: 'counted', bind: () => (x) => (calls++, (x as SyscallEvent).proc.name) };
    const text = ['A', 'B', 'C', 'D'].map((n) => rule(n, `evt.type = execve and f.counted != skip and proc.pid = ${n.charCodeAt(0)}`)).join('');
    const e = engine(text, [counted]);
    fired(e, ev({ proc: { pid: 66, name: 'x' } }));
    assert.equal(calls, 1);
    calls = 0;
    assert.deepEqual(fired(e, ev({ proc: { pid: 66, name: 'skip' } })), []);
    assert.equal(calls, 1);
  });
});

describe('the value index', () => {
  const text = rule('Shell', 'evt.type = execve and proc.name in (bash, sh, 42)') + rule('Any', 'evt.type = execve and proc.pid = 7')
    + rule('Net', 'evt.type = execve and ((proc.name = nc and proc.pid = 7) or (proc.name = ncat and proc.pid = 8))')
    + rule('Grep', 'evt.type = execve and proc.pid > 0 and proc.name in (grep, egrep) and proc.name != egrep')
    + rule('NotShell', 'evt.type = execve and not proc.name in (bash, sh)');

  test('runs the rules whose values include the event\'s, and those that do not ask', () => {
    const e = engine(text);
    const plan = (e as unknown as { planFor(s: string, t: string): { indexed?: unknown } }).planFor('syscall', 'execve');
    assert.ok(plan.indexed, 'proc.name is indexed');
    assert.deepEqual(fired(e, ev({ proc: { pid: 7, name: 'bash' } })), ['Shell', 'Any']);
    assert.deepEqual(fired(e, ev({ proc: { pid: 7, name: 'nc' } })), ['Any', 'Net', 'NotShell']);
    assert.deepEqual(fired(e, ev({ proc: { pid: 8, name: 'ncat' } })), ['Net', 'NotShell']);
    assert.deepEqual(fired(e, ev({ proc: { pid: 7, name: 'ncat' } })), ['Any', 'NotShell']);
    assert.deepEqual(fired(e, ev({ proc: { pid: 1, name: 'grep' } })), ['Grep', 'NotShell']);
    assert.deepEqual(fired(e, ev({ proc: { pid: 1, name: 'egrep' } })), ['NotShell']);
    assert.deepEqual(fired(e, ev({ proc: { pid: 7, name: 'zsh' } })), ['Any', 'NotShell']);
  });

  test('values that are not text compare as their text; a missing value or a list matches no value', () => {
    const e = engine(text);
    assert.deepEqual(fired(e, ev({ proc: { pid: 7, name: 42 as unknown as string } })), ['Shell', 'Any', 'NotShell']);
    // A missing name is in no list, so `not proc.name in (…)` holds; a list on a single-valued
    // field compares as missing.
    assert.deepEqual(fired(e, ev({ proc: { pid: 7, name: undefined as unknown as string } })), ['Any', 'NotShell']);
    assert.deepEqual(fired(e, ev({ proc: { pid: 7, name: ['bash'] as unknown as string } })), ['Any', 'NotShell']);
  });

  test('when the indexed field throws, only the rules that do not need it can match', () => {
    let boom = false;
    const flaky: FieldDef = { name: 'f.name', type: 'charbuf', desc: 'throws', bind: () => (x) => { if (boom) throw new Error('bad data'); return (x as SyscallEvent).proc.name; } };
    const t = rule('A', 'evt.type = execve and f.name in (a, b)') + rule('B', 'evt.type = execve and f.name = c') + rule('C', 'evt.type = execve and f.name = d')
      + rule('D', 'evt.type = execve and proc.pid = 1') + rule('E', 'evt.type = execve and not f.name = a');
    const e = engine(t, [flaky]);
    assert.deepEqual(fired(e, ev({ proc: { pid: 1, name: 'a' } })), ['A', 'D']);
    boom = true;
    assert.deepEqual(fired(e, ev({ proc: { pid: 1, name: 'a' } })), ['D']);
  });
});

describe('specialization by event type', () => {
  test('evt.type tests fold per type; a rule that cannot match a type is not run for it', () => {
    const text = rule('Mixed', 'evt.type in (execve, openat) and (evt.type = execve or fd.name = /etc/shadow)')
      + rule('Never', 'evt.type in (execve, openat) and evt.type = connect') + rule('AnyType', 'not evt.type = openat and proc.pid = 1');
    const e = engine(text);
    assert.deepEqual(fired(e, ev({ proc: { pid: 1, name: 'x' } })), ['Mixed', 'AnyType']);
    assert.deepEqual(fired(e, ev({ type: 'openat', fd: { name: '/etc/shadow' }, proc: { pid: 1, name: 'x' } })), ['Mixed']);
    assert.deepEqual(fired(e, ev({ type: 'openat', fd: { name: '/etc/hosts' }, proc: { pid: 1, name: 'x' } })), []);
    assert.deepEqual(fired(e, ev({ type: 'connect', proc: { pid: 1, name: 'x' } })), ['AnyType']);
    assert.ok(e.warnings.some((w) => w.item === 'Never' && w.code === 'LOAD_NO_EVTTYPE'));
  });
});

describe('event types no rule names', () => {
  test('share one plan, answer as the rules do, and do not pile up', () => {
    const text = rule('NotOpen', 'not evt.type in (openat, execve) and proc.pid = 1') + rule('NotFoo', 'evt.type != fchmod and proc.pid = 2')
      + rule('Exec', 'evt.type = execve and proc.pid = 1');
    const e = engine(text);
    const types = Array.from({ length: 5000 }, (_v, i) => `t${i}`);
    for (const t of types) {
      assert.deepEqual(fired(e, ev({ type: t, proc: { pid: 1, name: 'x' } })), ['NotOpen']);
      assert.deepEqual(fired(e, ev({ type: t, proc: { pid: 2, name: 'x' } })), ['NotFoo']);
    }
    assert.deepEqual(fired(e, ev({ type: 'fchmod', proc: { pid: 2, name: 'x' } })), []);
    assert.deepEqual(fired(e, ev({ type: 'fchmod', proc: { pid: 1, name: 'x' } })), ['NotOpen']);
    assert.deepEqual(fired(e, ev({ type: 'execve', proc: { pid: 1, name: 'x' } })), ['Exec']);
    assert.deepEqual(fired(e, ev({ type: 'openat', proc: { pid: 1, name: 'x' } })), []);
    const si = (e as unknown as { index: Map<string, { plans: Map<string, unknown> }> }).index.get('syscall')!;
    assert.ok(si.plans.size <= 4096 + 3, `${si.plans.size} plans`);
    assert.equal(new Set(types.map((t) => si.plans.get(t)).filter((p) => p)).size, 1, 'one plan for all of them');
  });
});
