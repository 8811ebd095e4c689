/**
 * The Falco conformance suite (test/falco-conformance/*.yaml): each case a rules file (or files,
 * in order), the load codes Falco 0.42.0 / libs 0.22.1 give for it, and events with the rules they
 * fire, each citing the Falco or libs function that decides it. Also: the two falcosecurity/rules
 * rules whose strings libs reads in its own way, on the published files.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { Engine } from '../src/engine/index.js';
import { RulesEngine } from '../src/engine/engine.js';
import { RulesLoadError, formatProblem, type RuleProblem } from '../src/engine/types.js';
import { decodeEvent, type Event } from '../src/events.js';
import { defaultRegistry } from '../src/fields/index.js';
import { FALCO_CORPUS, ROOT } from './helpers/paths.js';

interface Case {
  case: string;
  decided_by: string;
  rules?: string;
  files?: { name: string; text: string }[];
  load?: { errors?: string[]; warnings?: string[] };
  events?: { event: Record<string, unknown>; fires: string[] }[];
}

const DIR = `${ROOT}test/falco-conformance/`;
const registry = defaultRegistry();

/** An event from the case's shorthand: syscall source, a fixed time and pid 1 unless given. */
function event(e: Record<string, unknown>): Event {
  const proc = (e.proc ?? {}) as Record<string, unknown>;
  return decodeEvent(JSON.stringify({ source: 'syscall', ts: '1764000000000000000', res: 0, ...e, proc: { pid: 1, name: '', ...proc } }));
}

const codes = (ps: readonly RuleProblem[]): string[] => [...new Set(ps.map((p) => `${p.code}`))].sort();

/** Runs one case; returns what differs from the expectation (empty when it conforms). */
function run(c: Case): string[] {
  const files = c.files ?? [{ name: 'rules.yaml', text: c.rules ?? '' }];
  const wantErrors = [...new Set(c.load?.errors ?? [])].sort();
  const wantWarnings = [...new Set(c.load?.warnings ?? [])].sort();
  let engine: RulesEngine | undefined;
  let errors: RuleProblem[] = [];
  let warnings: readonly RuleProblem[] = [];
  try {
    engine = new RulesEngine(files.map((f) => ({ path: f.name, text: f.text })), { registry, ruleMatching: 'all', hostname: 'h' });
    warnings = engine.warnings;
  } catch (e) {
    if (!(e instanceof RulesLoadError)) return [`threw ${String(e)}`];
    errors = e.errors;
    warnings = e.warnings;
  }
  const out: string[] = [];
  const show = (ps: readonly RuleProblem[]) => ps.map((p) => formatProblem(p)).join(' | ');
  if (JSON.stringify(codes(errors)) !== JSON.stringify(wantErrors)) out.push(`errors ${JSON.stringify(codes(errors))}, want ${JSON.stringify(wantErrors)}: ${show(errors)}`);
  if (JSON.stringify(codes(warnings)) !== JSON.stringify(wantWarnings)) out.push(`warnings ${JSON.stringify(codes(warnings))}, want ${JSON.stringify(wantWarnings)}: ${show(warnings)}`);
  if (engine) {
    for (const { event: e, fires } of c.events ?? []) {
      const got = engine.process(event(e)).map((m) => m.rule).sort();
      const want = [...fires].sort();
      if (JSON.stringify(got) !== JSON.stringify(want)) out.push(`event ${JSON.stringify(e)} fires ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
  }
  return out;
}

const suites = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();
const results: { file: string; name: string; wrong: string[] }[] = [];
let total = 0;

for (const file of suites) {
  const cases = parse(readFileSync(DIR + file, 'utf8')) as Case[];
  total += cases.length;
  describe(`conformance: ${file}`, () => {
    for (const c of cases) {
      test(`${c.case} [${c.decided_by.split(' ')[0]}]`, () => {
        assert.ok(c.decided_by, 'each case names the function that decides it');
        const wrong = run(c);
        results.push({ file, name: c.case, wrong });
        assert.deepEqual(wrong, []);
      });
    }
  });
}

test('conformance: the count', () => {
  const passed = results.filter((r) => r.wrong.length === 0).length;
  process.stdout.write(`# falco conformance: ${passed} of ${total} cases pass\n`);
  assert.ok(total >= 80, `${total} cases`);
});

describe('falcosecurity/rules strings, read as libs reads them', () => {
  const FILES = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'].map((f) => FALCO_CORPUS + f);
  const engine = Engine.fromFiles(FILES, { ruleMatching: 'all' });
  const exec = (proc: Record<string, unknown>): Event => event({ type: 'execve', proc: { uid: 1000, loginuid: 1000, user: 'dev', exepath: '/usr/bin/x', tty: 34816, ...proc } });

  test('Sudo Potential Privilege Escalation: "\\ " is a lone backslash (unescape_str), so any backslash in the args fires', () => {
    const rule = 'Sudo Potential Privilege Escalation';
    const fired = (args: string[]) => engine.process(exec({ name: 'sudoedit', exepath: '/usr/bin/sudoedit', args })).map((m) => m.rule).includes(rule);
    assert.equal(fired(['-s', 'a\\b']), true, 'contains "\\" (read as backslash-space before, so it did not fire)');
    assert.equal(fired(['-s', 'x\\']), true, 'endswith \\');
    assert.equal(fired(['-s', 'plain']), false);
  });

  test("Run shell untrusted: known_shell_spawn_cmdlines' item with an escaped quote excludes the command it names", () => {
    const rule = 'Run shell untrusted';
    const shell = (args: string[]) => engine.process(exec({
      name: 'sh', exe: '/bin/sh', exepath: '/bin/sh', args,
      parent: { pid: 2, name: 'nginx', exe: 'nginx', exepath: '/usr/sbin/nginx', args: [] },
    })).map((m) => m.rule).includes(rule);
    // The item '"sh -c node -e \"require(''nan'')\""' reads as sh -c node -e "require('nan')".
    assert.equal(shell(['-c', `node -e "require('nan')"`]), false);
    assert.equal(shell(['-c', `node -e \\"require('nan')\\"`]), true, 'the backslashes are not part of the item');
    assert.equal(shell(['-c', 'node -e evil()']), true);
  });
});
