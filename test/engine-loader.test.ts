/**
 * Rules files: every error with its exact file:line:col and snippet, warnings, several files
 * (append, override, replace, enable/disable), exceptions, and how rules are matched and indexed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Event } from '../src/events.js';
import { ev } from './helpers/catalog.js';
import { assertProblem, codes, fired, load, loadFail, oneError, rule, show, y } from './helpers/rules.js';

const bash = ev({ proc: { name: 'bash', pid: 100 } });
const head = (name = 'R') => ['- rule: ' + name, '  desc: d'];
const tail = ['  output: o', '  priority: WARNING'];

/** A rule R with this condition fails to load with one LOAD_ERR_COMPILE_CONDITION, at `where`, on `snippet`. */
function conditionError(condition: string, where: string, snippet?: string): void {
  assertProblem(oneError(rule('R', condition)), where, 'LOAD_ERR_COMPILE_CONDITION', snippet);
}

describe('errors: YAML and file shape', () => {
  test('a YAML syntax error', () => {
    // The flow sequence opened on line 4 is still open where line 5 begins.
    const p = oneError(y('- list: a', '  items: [x]', '- rule: R', '  desc: [unclosed', '  output: o'));
    assertProblem(p, 'x.yaml:5:3', 'LOAD_ERR_YAML_PARSE');
  });

  test('an unterminated YAML quote is found where the document ends', () => {
    // The yaml parser only notices the missing quote at the end of the text (see the report).
    const p = oneError(y('- rule: R', '  desc: d', '  condition: "unterminated', '  output: o'));
    assertProblem(p, 'x.yaml:5:1', 'LOAD_ERR_YAML_PARSE');
  });

  test('the top level must be a sequence', () => {
    const p = oneError(y('rule: R', 'desc: d'));
    assertProblem(p, 'x.yaml:1:1', 'LOAD_ERR_YAML_VALIDATE');
  });

  test('each item must be a mapping', () => {
    const p = oneError(y('- list: a', '  items: [x]', '- just a string', '- list: b', '  items: [y]'));
    assertProblem(p, 'x.yaml:3:3', 'LOAD_ERR_YAML_VALIDATE');
  });

  test('an empty file loads, with nothing in it', () => {
    const e = load('');
    assert.equal(e.ruleset.rules.length, 0);
    assert.equal(load('# only a comment\n').ruleset.rules.length, 0);
  });
});

describe('errors: condition syntax, placed through YAML folding', () => {
  test('an unterminated quote on the 2nd line of a folded condition', () => {
    const p = oneError(y(...head(), '  condition: >', '    evt.type = execve', '    and proc.name = "bash', ...tail));
    assertProblem(p, 'x.yaml:5:21', 'LOAD_ERR_COMPILE_CONDITION', '"bash');
    assert.equal(p.item, 'R');
  });

  test("a missing ')' on the 3rd line is reported where the text ends", () => {
    const p = oneError(y(...head(), '  condition: >', '    evt.type = execve and', '    (proc.name = bash or', '    proc.name = sh', ...tail));
    assert.match(p.message, /expected '\)'/);
    assert.equal(p.snippet, '<end>');
    // The condition ends right after "sh" on line 6; the error must not point into another line.
    assert.equal(`${p.pos.line}:${p.pos.col}`, '6:19', show([p]));
  });

  test('an unknown operator on the 3rd line', () => {
    const p = oneError(y(...head(), '  condition: >', '    evt.type = execve and', '    proc.name = bash and', '    fd.name like /tmp', ...tail));
    assertProblem(p, 'x.yaml:6:13', 'LOAD_ERR_COMPILE_CONDITION', 'like');
  });

  test('trailing text after a complete expression', () => {
    const p = oneError(y(...head(), '  condition: >', '    evt.type = execve and', '    proc.name = bash)', ...tail));
    assertProblem(p, 'x.yaml:5:21', 'LOAD_ERR_COMPILE_CONDITION', ')');
  });

  test('an error in a more-indented line of a folded scalar (its newline is kept)', () => {
    const p = oneError(y(...head(), '  condition: >', '    evt.type = execve and', '      (proc.name = bash', '    or proc.name = "x', ...tail));
    assertProblem(p, 'x.yaml:6:20', 'LOAD_ERR_COMPILE_CONDITION', '"x');
  });

  test('an error in a plain multi-line scalar', () => {
    const p = oneError(y(...head(), '  condition: evt.type = execve', '    and proc.name ~ bash', ...tail));
    assertProblem(p, 'x.yaml:4:19', 'LOAD_ERR_COMPILE_CONDITION', '~');
  });

  test('an error in a double-quoted scalar with escapes before it', () => {
    const p = oneError(y(...head(), '  condition: "proc.name = \\"x\\" and and"', ...tail));
    // The two escaped quotes before it shift the column by two.
    assertProblem(p, 'x.yaml:3:37', 'LOAD_ERR_COMPILE_CONDITION', 'and');
  });

  test('an empty condition is refused by the reader (decode_val: "Value must be non-empty")', () => {
    const p = oneError(y(...head(), '  condition: ""', ...tail));
    assertProblem(p, 'x.yaml:3:14', 'LOAD_ERR_YAML_VALIDATE');
  });

  // A macro that does not parse is also undefined for the rules using it: a second error follows.
  test('a syntax error in a macro names the macro and its place', () => {
    const { errors } = loadFail(y('- macro: m', '  condition: >', '    proc.name = bash and', '    (fd.name = x', rule('R', 'm')));
    assertProblem(errors[0]!, 'x.yaml:4:17', 'LOAD_ERR_COMPILE_CONDITION', '<end>');
    assert.equal(errors[0]!.item, 'm');
    // The rule using the broken macro adds no error of its own.
    assert.equal(errors.length, 1, show(errors));
  });

  test('a syntax error in a macro on the first line', () => {
    const { errors } = loadFail(y('- macro: m', '  condition: proc.name in (a, b', rule('R', 'm')));
    assertProblem(errors[0]!, 'x.yaml:2:32', 'LOAD_ERR_COMPILE_CONDITION', '<end>');
  });
});

describe('errors: names that do not resolve', () => {
  test('an unknown macro', () => {
    const p = oneError(rule('R', 'evt.type = execve and no_such_macro'));
    assertProblem(p, 'x.yaml:4:27', 'LOAD_ERR_VALIDATE', 'no_such_macro');
  });

  test("a list named where a macro goes: Falco puts the list's items there (resolve_list), so they are the undefined macro", () => {
    const p = oneError(y('- list: shells', '  items: [sh]', rule('R', 'shells')));
    assertProblem(p, 'x.yaml:6:5', 'LOAD_ERR_VALIDATE', 'sh');
  });

  test('a bare name after in that is no list is one value, as libs parses it', () => {
    const e = load(rule('R', 'evt.type = execve and proc.name in undefined_list'));
    assert.deepEqual(fired(e, ev({ type: 'execve', proc: { name: 'undefined_list', pid: 1 } })), ['R']);
    assert.deepEqual(fired(e, ev({ type: 'execve', proc: { name: 'sh', pid: 1 } })), []);
  });

  test('an unknown field', () => {
    const p = oneError(rule('R', 'evt.type = execve and proc.nmae = bash'));
    assertProblem(p, 'x.yaml:4:27', 'LOAD_ERR_COMPILE_CONDITION', 'proc.nmae');
  });

  test('an unknown field inside a macro is placed in the macro', () => {
    const p = oneError(y('- macro: m', '  condition: proc.name = a or fd.nme = b', rule('R', 'evt.type = execve and m')));
    assertProblem(p, 'x.yaml:2:31', 'LOAD_ERR_COMPILE_CONDITION', 'fd.nme');
    assert.equal(p.item, 'R');
  });

  test('field argument errors', () => {
    conditionError('proc.aname[x] = a', 'x.yaml:4:5', 'proc.aname[x]');
    conditionError('proc.name[1] = a', 'x.yaml:4:5', 'proc.name[1]');
    conditionError('evt.type = execve and evt.arg = a', 'x.yaml:4:27', 'evt.arg');
    conditionError('proc.aname[] = a', 'x.yaml:4:16');
    conditionError('proc.aname[1 = a', 'x.yaml:4:17');
  });
});

describe('errors: keys and values of a rule', () => {
  test('a bad priority', () => {
    const p = oneError(y(...head(), '  condition: proc.name = a', '  output: o', '  priority: SEVERE'));
    assertProblem(p, 'x.yaml:5:13', 'LOAD_ERR_YAML_VALIDATE', 'SEVERE');
  });

  test('priority spellings Falco accepts (parse_priority: the eight names in any case, and info)', () => {
    const e = load(['info', 'Warning', 'CRITICAL', 'error', 'emergency', 'Informational', 'notice', 'debug', 'alert']
      .map((p, i) => y(`- rule: R${i}`, '  desc: d', '  condition: proc.name = a', '  output: o', `  priority: ${p}`)).join(''));
    assert.deepEqual(e.ruleset.rules.map((r) => r.priority),
      ['INFORMATIONAL', 'WARNING', 'CRITICAL', 'ERROR', 'EMERGENCY', 'INFORMATIONAL', 'NOTICE', 'DEBUG', 'ALERT']);
    for (const bad of ['Warn', 'CRIT', 'err', 'emerg', ' warning']) {
      assert.equal(oneError(y('- rule: R', '  desc: d', '  condition: proc.name = a', '  output: o', `  priority: "${bad}"`)).code, 'LOAD_ERR_YAML_VALIDATE', bad);
    }
  });

  test('a value of the wrong type for the field', () => {
    conditionError('evt.type = execve and proc.pid = abc', 'x.yaml:4:38', 'abc');
    conditionError('evt.is_open_write = maybe', 'x.yaml:4:25', 'maybe');
    conditionError('fd.net = notanip', 'x.yaml:4:14', 'notanip');
    conditionError('fd.sip in (1.2.3.4, 300.1.1.1)', 'x.yaml:4:25', '300.1.1.1');
    conditionError('fd.net = "10.0.0.0/33"', 'x.yaml:4:14', '10.0.0.0/33');
    conditionError('fd.sport in (80, nosuchservice)', 'x.yaml:4:22', 'nosuchservice');
    conditionError('evt.buffer bcontains 6g', 'x.yaml:4:26', '6g');
    conditionError('evt.buffer bcontains abc', 'x.yaml:4:26', 'abc');
  });

  test('a numeric operator needs a number', () => {
    conditionError('proc.pid > abc', 'x.yaml:4:16', 'abc');
  });

  test('a rule with some of condition, output, desc, priority: the first missing key is the error (decode_val)', () => {
    const { errors } = loadFail(y('- list: a', '  items: [x]', '- rule: Empty', '  enabled: true', '  desc: d'));
    assert.deepEqual(codes(errors), ['LOAD_ERR_YAML_VALIDATE']);
    assert.equal(`${errors[0]!.pos.line}:${errors[0]!.pos.col} ${errors[0]!.snippet}`, '3:3 condition');
  });

  test('a rule missing only its condition', () => {
    const p = oneError(y('- rule: R', '  desc: d', '  output: o', '  priority: INFO'));
    assertProblem(p, 'x.yaml:1:3', 'LOAD_ERR_YAML_VALIDATE', 'condition');
  });

  test('an operator that does not apply to the field type (flt_is_comparable)', () => {
    conditionError('evt.type = execve and proc.pid contains 1', 'x.yaml:4:36', 'contains');
    conditionError('evt.is_open_write startswith true', 'x.yaml:4:23', 'startswith');
    conditionError('fd.sip contains 10.0.0.1', 'x.yaml:4:12', 'contains');
    conditionError('proc.pid glob 1', 'x.yaml:4:14', 'glob');
    conditionError('tolower(proc.pid) = 1', 'x.yaml:4:5', 'tolower(proc.pid)');
  });

  test('an invalid regular expression', () => {
    const p = oneError(rule('R', 'evt.type = execve and proc.name regex "(("'));
    assertProblem(p, 'x.yaml:4:43', 'LOAD_ERR_COMPILE_CONDITION', '((');
  });

  test('a macro sees only macros defined before it: itself, or a later one, is undefined; an append can loop', () => {
    const self = oneError(y('- macro: a', '  condition: proc.name = x or a', rule('R', 'a')));
    assertProblem(self, 'x.yaml:2:31', 'LOAD_ERR_VALIDATE', 'a');
    const { errors } = loadFail(y('- macro: a', '  condition: b', '- macro: b', '  condition: proc.name = x and a', rule('R', 'a')));
    assert.deepEqual(codes(errors), ['LOAD_ERR_VALIDATE'], show(errors));
    assert.equal(`${errors[0]!.pos.line}:${errors[0]!.pos.col} ${errors[0]!.item}`, '2:14 a');
    const loop = oneError(y('- macro: a', '  condition: proc.name = x', '- macro: a', '  condition: or a', '  override:', '    condition: append', rule('R', 'evt.type = execve and a')));
    assertProblem(loop, 'x.yaml:4:17', 'LOAD_ERR_VALIDATE', 'a');
    assert.match(loop.message, /reference loop in macro 'a'/);
  });

  test('a list naming a list defined before it takes its items, one level deep (compile_list_infos)', () => {
    const abc = load(y('- list: a', '  items: [x, b]', '- list: b', '  items: [a]', '- list: c', '  items: [b, z]') + rule('R', 'evt.type = execve and proc.name in (a, c)'));
    // a names b, defined after it: b stays a name. b names a: its items. c names b: b's items as read, [a].
    assert.deepEqual([abc.ruleset.lists.get('a'), abc.ruleset.lists.get('b'), abc.ruleset.lists.get('c')], [['x', 'b'], ['x', 'b'], ['a', 'z']]);
    // A list naming only itself is not a cycle: the name is an ordinary item.
    const e = load(y('- list: a', '  items: [x, a]') + rule('R', 'evt.type = execve and proc.name in (a)'));
    assert.deepEqual(e.ruleset.lists.get('a'), ['x', 'a']);
  });
});

describe('errors: append and override', () => {
  test('append to a rule that does not exist', () => {
    const p = oneError(y('- rule: Ghost', '  condition: and proc.name = x', '  append: true'));
    assertProblem(p, 'x.yaml:1:3', 'LOAD_ERR_VALIDATE', 'Ghost');
  });

  test('append to a list or macro that does not exist', () => {
    assertProblem(oneError(y('- list: nol', '  items: [x]', '  append: true')), 'x.yaml:1:3', 'LOAD_ERR_VALIDATE', 'nol');
    assertProblem(oneError(y('- macro: nom', '  condition: or x', '  append: true')), 'x.yaml:1:3', 'LOAD_ERR_VALIDATE', 'nom');
  });

  test('override of a rule that does not exist', () => {
    const p = oneError(y('- rule: Ghost', '  output: new', '  override:', '    output: replace'));
    assertProblem(p, 'x.yaml:1:3', 'LOAD_ERR_VALIDATE', 'Ghost');
  });

  test('an appended item that comes before its definition (later in the same file) still fails', () => {
    const p = oneError(y('- rule: R', '  condition: and proc.name = x', '  append: true', rule('R', 'proc.name = y')));
    assertProblem(p, 'x.yaml:1:3', 'LOAD_ERR_VALIDATE');
  });

  test('override and append together', () => {
    const p = oneError(rule('R', 'proc.name = a') + y('- rule: R', '  condition: or proc.name = b', '  append: true', '  override:', '    condition: append'));
    assertProblem(p, 'x.yaml:7:3', 'LOAD_ERR_YAML_VALIDATE', 'override');
  });

  test('an override of a key that cannot be overridden that way', () => {
    const p = oneError(rule('R', 'proc.name = a') + y('- rule: R', '  priority: ERROR', '  override:', '    priority: append'));
    assertProblem(p, 'x.yaml:10:5', 'LOAD_ERR_YAML_VALIDATE', 'priority');
    const l = oneError(y('- list: l', '  items: [a]', '- list: l', '  items: [b]', '  override:', '    desc: append'));
    assertProblem(l, 'x.yaml:6:5', 'LOAD_ERR_YAML_VALIDATE', 'desc');
  });

  test('an override mode other than append or replace', () => {
    const p = oneError(rule('R', 'proc.name = a') + y('- rule: R', '  output: x', '  override:', '    output: merge'));
    assertProblem(p, 'x.yaml:10:13', 'LOAD_ERR_YAML_VALIDATE', 'merge');
  });

  test('an override naming a key the item does not have', () => {
    const p = oneError(rule('R', 'proc.name = a') + y('- rule: R', '  output: x', '  override:', '    output: replace', '    condition: append'));
    assertProblem(p, 'x.yaml:10:5', 'LOAD_ERR_YAML_VALIDATE', 'condition');
  });

  test('a key set beside override that override does not mention', () => {
    const p = oneError(rule('R', 'proc.name = a') + y('- rule: R', '  output: x', '  desc: new', '  override:', '    output: replace'));
    assertProblem(p, 'x.yaml:9:9', 'LOAD_ERR_YAML_VALIDATE', 'desc');
  });

  test('an enabled-only toggle of an unknown rule', () => {
    const p = oneError(rule('R', 'proc.name = a') + y('- rule: Other', '  enabled: false'));
    assertProblem(p, 'x.yaml:7:3', 'LOAD_ERR_VALIDATE', 'Other');
  });
});

describe('errors: exceptions', () => {
  const withExc = (...lines: string[]) => rule('R', 'evt.type = execve', ['exceptions:', ...lines.map((l) => '  ' + l)]);

  test('fields and comps of different lengths', () => {
    const p = oneError(withExc('- name: e', '  fields: [proc.name, fd.name]', '  comps: [=]', '  values: [[a, b]]'));
    assertProblem(p, 'x.yaml:8:7', 'LOAD_ERR_VALIDATE');
    assert.equal(p.item, 'R');
  });

  test('a value tuple of the wrong length', () => {
    const p = oneError(withExc('- name: e', '  fields: [proc.name, fd.name]', '  values: [[a, b], [c]]'));
    assertProblem(p, 'x.yaml:8:7', 'LOAD_ERR_VALIDATE');
  });

  test('an unknown comparison operator, an unknown field, a missing name', () => {
    assertProblem(oneError(withExc('- name: e', '  fields: [proc.name]', '  comps: [like]', '  values: [[a]]')), 'x.yaml:8:7', 'LOAD_ERR_VALIDATE', 'like');
    assertProblem(oneError(withExc('- name: e', '  fields: [proc.nmae]', '  values: [[a]]')), 'x.yaml:8:7', 'LOAD_ERR_VALIDATE', 'proc.nmae');
    assertProblem(oneError(withExc('- fields: [proc.name]', '  values: [[a]]')), 'x.yaml:8:7', 'LOAD_ERR_YAML_VALIDATE', 'name');
    assertProblem(oneError(withExc('- name: e', '  fields: proc.name', '  comps: "="', '  values: [a]')), 'x.yaml:8:7', 'LOAD_ERR_VALIDATE', '=');
  });
});

describe('errors: engine and plugin requirements', () => {
  test('required_engine_version: an integer N means 0.N.0', () => {
    const e = load(y('- required_engine_version: 15') + rule('R', 'proc.name = a'));
    assert.equal(e.ruleset.files[0]!.requiredEngineVersion, '0.15.0');
    assert.equal(load(y("- required_engine_version: '0.57.0'")).ruleset.files[0]!.requiredEngineVersion, '0.57.0');
  });

  test('required_engine_version above ours fails, in both forms', () => {
    const semver = oneError(y('- list: a', '  items: [x]', '- required_engine_version: 0.99.0'));
    assertProblem(semver, 'x.yaml:3:28', 'LOAD_ERR_VALIDATE', '0.99.0');
    assert.match(semver.message, /require engine version 0\.99\.0, but engine version is 0\.57\.0/);
    const int = oneError(y('- required_engine_version: 58'));
    assertProblem(int, 'x.yaml:1:28', 'LOAD_ERR_VALIDATE', '58');
    assertProblem(oneError(y('- required_engine_version: soon')), 'x.yaml:1:28', 'LOAD_ERR_YAML_VALIDATE', 'soon');
  });

  test('required_plugin_versions: one we lack, with alternatives', () => {
    const p = oneError(y(
      '- required_plugin_versions:',
      '  - name: container',
      '    version: 0.2.0',
      '  - name: gcpaudit',
      '    version: 0.7.0',
      '    alternatives:',
      '      - name: k8saudit-gke',
      '        version: 0.4.0',
    ));
    // Falco's own words for this one (check_rules_plugin_requirements), which users search for.
    assertProblem(p, 'x.yaml:4:5', 'Plugin requirement not satisfied, must load one of: gcpaudit (>= 0.7.0), k8saudit-gke (>= 0.4.0)', 'gcpaudit');
    assert.equal(p.code, 'LOAD_ERR_VALIDATE');
  });

  test('required_plugin_versions: a plugin we have, but too new a version or another major', () => {
    const newer = oneError(y('- required_plugin_versions:', '  - name: container', '    version: 0.9.0'));
    assertProblem(newer, 'x.yaml:2:5', 'Plugin requirement not satisfied, must load one of: container (>= 0.9.0) (minewatch has container 0.4.0)');
    const major = oneError(y('- required_plugin_versions:', '  - name: container', '    version: 1.0.0'));
    assertProblem(major, 'x.yaml:2:5', 'must load one of: container (>= 1.0.0)');
    // An alternative we have satisfies the requirement.
    load(y('- required_plugin_versions:', '  - name: nope', '    version: 1.0.0', '    alternatives:', '      - name: container', '        version: 0.1.0'));
  });
});

describe('one error anywhere fails the whole load', () => {
  test('an error in the 2nd file: the load throws and reports the 2nd file', () => {
    const files = [
      { path: 'a.yaml', text: rule('A', 'evt.type = execve and proc.name = bash') },
      { path: 'b.yaml', text: y('- list: l', '  items: [x]') + rule('B', 'proc.name in (l) and') },
    ];
    const { errors } = loadFail(files);
    assert.equal(errors.length, 1, show(errors));
    assertProblem(errors[0]!, 'b.yaml:6:25', 'LOAD_ERR_COMPILE_CONDITION', '<end>');
  });

  test('every error of every file is reported, not only the first', () => {
    const files = [
      { path: 'a.yaml', text: y('- rule: A', '  desc: d', '  condition: proc.name = a', '  output: o', '  priority: HUGE') },
      { path: 'b.yaml', text: y('- list: l', '  items: [x]', '  append: true') },
    ];
    const { errors } = loadFail(files);
    assert.deepEqual(errors.map((e) => `${e.pos.file}:${e.pos.line}:${e.pos.col}`), ['a.yaml:5:13', 'b.yaml:1:3']);
  });

  test('semantic errors in several rules are all reported', () => {
    const { errors } = loadFail(rule('A', 'proc.nope = 1') + rule('B', 'fd.name = x and m'));
    assert.deepEqual(errors.map((e) => `${e.pos.line}:${e.pos.col} ${e.item}`), ['4:5 A', '10:21 B']);
  });
});

describe('warnings', () => {
  test('an unknown top-level item is a warning, not an error', () => {
    const e = load(y('- rule: R', '  desc: d', '  condition: evt.type = execve', '  output: o', '  priority: INFO', '- foo: bar', '  baz: 1'));
    const w = e.warnings.find((x) => x.code === 'LOAD_UNKNOWN_ITEM');
    assert.ok(w, show(e.warnings));
    assertProblem(w, 'x.yaml:6:3', 'LOAD_UNKNOWN_ITEM');
    assert.equal(e.ruleset.rules.length, 1);
  });

  test('an unknown key in a rule is read by nothing, as in Falco (its load result has no warning for it)', () => {
    const e = load(rule('R', 'evt.type = execve', ['colour: red']));
    assert.deepEqual(codes(e.warnings), [], show(e.warnings));
    assert.deepEqual(fired(e, bash), ['R']);
  });

  test('a rule for a source that is not loaded is skipped', () => {
    const e = load(rule('K', 'ka.verb = create', ['source: k8s_audit']) + rule('R', 'evt.type = execve'));
    const w = e.warnings.find((x) => x.item === 'K');
    assert.ok(w, show(e.warnings));
    assertProblem(w, 'x.yaml:1:3', 'LOAD_UNKNOWN_SOURCE', 'k8s_audit');
    assert.deepEqual(e.active.map((r) => r.def.name), ['R']);
  });

  test('skip-if-unknown-filter turns an unknown field into a warning and skips the rule', () => {
    const e = load(rule('S', 'evt.type = execve and proc.future_field = 1', ['skip-if-unknown-filter: true']) + rule('R', 'evt.type = execve'));
    const w = e.warnings.find((x) => x.item === 'S');
    assert.ok(w, show(e.warnings));
    assertProblem(w, 'x.yaml:4:27', 'LOAD_UNKNOWN_FILTER', 'proc.future_field');
    assert.deepEqual(fired(e, bash), ['R']);
    // Without the flag, the same rule fails the load.
    assertProblem(oneError(rule('S', 'evt.type = execve and proc.future_field = 1')), 'x.yaml:4:27', 'LOAD_ERR_COMPILE_CONDITION');
  });

  test('skip-if-unknown-filter does not excuse other errors', () => {
    const p = oneError(rule('S', 'proc.pid = abc', ['skip-if-unknown-filter: true']));
    assertProblem(p, 'x.yaml:4:16', 'LOAD_ERR_COMPILE_CONDITION');
  });

  test('unused macros and lists', () => {
    const e = load(y('- list: used', '  items: [a]', '- list: unused_l', '  items: [b]', '- macro: unused_m', '  condition: proc.name = x',
      '- list: inner', '  items: [c]', '- list: outer', '  items: [inner]') + rule('R', 'evt.type = execve and proc.name in (used, outer)'));
    const unused = e.warnings.filter((w) => w.code === 'LOAD_UNUSED_MACRO' || w.code === 'LOAD_UNUSED_LIST');
    assert.deepEqual(unused.map((w) => `${w.pos.line}:${w.pos.col} ${w.code} ${w.item}`), [
      '5:3 LOAD_UNUSED_MACRO unused_m',
      '3:3 LOAD_UNUSED_LIST unused_l',
    ]);
  });

  test('a rule with no evt.type test', () => {
    const e = load(rule('Wide', 'proc.name = xmrig') + rule('Narrow', 'evt.type = execve and proc.name = xmrig') + rule('Quiet', 'proc.name = x', ['warn_evttypes: false']));
    const w = e.warnings.filter((x) => x.code === 'LOAD_NO_EVTTYPE');
    assert.deepEqual(w.map((x) => `${x.pos.line}:${x.pos.col} ${x.item}`), ['1:3 Wide']);
  });

  test('warnings travel with a failed load too', () => {
    const { warnings } = loadFail(y('- foo: 1') + rule('R', 'proc.nope = 1'));
    assert.ok(warnings.some((w) => w.code === 'LOAD_UNKNOWN_ITEM'), show(warnings));
  });
});

describe('several files', () => {
  const f = (path: string, ...texts: string[]) => ({ path, text: texts.join('') });
  const sh = ev({ proc: { name: 'sh', pid: 1 } });
  const zsh = ev({ proc: { name: 'zsh', pid: 1 } });

  test('a later file appends to a list (legacy append: true and override: items: append)', () => {
    const base = f('a.yaml', y('- list: shells', '  items: [bash]'), rule('R', 'evt.type = execve and proc.name in (shells)'));
    const legacy = load([base, f('b.yaml', y('- list: shells', '  items: [sh]', '  append: true'))]);
    const over = load([base, f('b.yaml', y('- list: shells', '  items: [sh]', '  override:', '    items: append'))]);
    for (const e of [legacy, over]) {
      assert.deepEqual(e.ruleset.lists.get('shells'), ['bash', 'sh']);
      assert.deepEqual(fired(e, bash), ['R']);
      assert.deepEqual(fired(e, sh), ['R']);
      assert.deepEqual(fired(e, zsh), []);
    }
  });

  test('a later file replaces a list (plain redefinition and override: items: replace)', () => {
    const base = f('a.yaml', y('- list: shells', '  items: [bash]'), rule('R', 'evt.type = execve and proc.name in (shells)'));
    const plain = load([base, f('b.yaml', y('- list: shells', '  items: [sh]'))]);
    const over = load([base, f('b.yaml', y('- list: shells', '  items: [sh]', '  override:', '    items: replace'))]);
    for (const e of [plain, over]) {
      assert.deepEqual(e.ruleset.lists.get('shells'), ['sh']);
      assert.deepEqual(fired(e, bash), []);
      assert.deepEqual(fired(e, sh), ['R']);
    }
  });

  test('a list appended to after a rule that uses it is seen by that rule (lists resolve at the end)', () => {
    const e = load([f('a.yaml', rule('R', 'evt.type = execve and proc.name in (shells)'), y('- list: shells', '  items: [bash]')),
      f('b.yaml', y('- list: shells', '  items: [zsh]', '  append: true'))]);
    assert.deepEqual(fired(e, zsh), ['R']);
  });

  test('a later file appends to and replaces a macro', () => {
    const base = f('a.yaml', y('- macro: shell', '  condition: proc.name = bash'), rule('R', 'evt.type = execve and shell'));
    const legacy = load([base, f('b.yaml', y('- macro: shell', '  condition: or proc.name = sh', '  append: true'))]);
    const over = load([base, f('b.yaml', y('- macro: shell', '  condition: or proc.name = sh', '  override:', '    condition: append'))]);
    for (const e of [legacy, over]) {
      assert.deepEqual(fired(e, bash), ['R']);
      assert.deepEqual(fired(e, sh), ['R']);
      assert.deepEqual(fired(e, zsh), []);
    }
    const replaced = load([base, f('b.yaml', y('- macro: shell', '  condition: proc.name = zsh'))]);
    assert.deepEqual(fired(replaced, bash), []);
    assert.deepEqual(fired(replaced, zsh), ['R']);
    const replaced2 = load([base, f('b.yaml', y('- macro: shell', '  condition: proc.name = zsh', '  override:', '    condition: replace'))]);
    assert.deepEqual(fired(replaced2, zsh), ['R']);
  });

  test("appending to a rule's condition joins the text with a space: Falco's precedence pitfall", () => {
    // R: A or B.  Appended: "and C".  The text becomes "A or B and C" = A or (B and C), not (A or B) and C.
    const base = f('a.yaml', rule('R', 'evt.type = execve and proc.name = bash or evt.type = execve and proc.name = sh'));
    const e = load([base, f('b.yaml', y('- rule: R', '  condition: and proc.pid = 42', '  append: true'))]);
    const bash1 = ev({ proc: { name: 'bash', pid: 1 } });
    const sh1 = ev({ proc: { name: 'sh', pid: 1 } });
    const sh42 = ev({ proc: { name: 'sh', pid: 42 } });
    assert.deepEqual(fired(e, bash1), ['R'], 'the first alternative is untouched by the appended "and"');
    assert.deepEqual(fired(e, sh1), []);
    assert.deepEqual(fired(e, sh42), ['R']);
    // The same append through override behaves identically.
    const o = load([base, f('b.yaml', y('- rule: R', '  condition: and proc.pid = 42', '  override:', '    condition: append'))]);
    assert.deepEqual([fired(o, bash1), fired(o, sh1), fired(o, sh42)], [['R'], [], ['R']]);
    // Parenthesised in the base, the append applies to the whole.
    const safe = load([f('a.yaml', rule('R', '(evt.type = execve and proc.name in (bash, sh))')), f('b.yaml', y('- rule: R', '  condition: and proc.pid = 42', '  append: true'))]);
    assert.deepEqual([fired(safe, bash1), fired(safe, sh42)], [[], ['R']]);
  });

  test('override replaces a condition', () => {
    const e = load([f('a.yaml', rule('R', 'evt.type = execve and proc.name = bash')),
      f('b.yaml', y('- rule: R', '  condition: evt.type = execve and proc.name = sh', '  override:', '    condition: replace'))]);
    assert.deepEqual([fired(e, bash), fired(e, sh)], [[], ['R']]);
  });

  test('override of output, priority, tags, desc: append and replace', () => {
    const base = f('a.yaml', rule('R', 'evt.type = execve', ['tags: [a, b]']));
    const appended = load([base, f('b.yaml', y('- rule: R', '  output: more %proc.name', '  desc: too', '  tags: [c]', '  override:', '    output: append', '    desc: append', '    tags: append'))]);
    const r1 = appended.ruleset.rules[0]!;
    assert.equal(r1.output, 'o more %proc.name');
    assert.equal(r1.desc, 'd too');
    assert.deepEqual(r1.tags, ['a', 'b', 'c']);
    assert.equal(appended.process(bash)[0]!.output, 'o more bash');
    const replaced = load([base, f('b.yaml', y('- rule: R', '  output: new %proc.pid', '  desc: nd', '  priority: CRITICAL', '  tags: [z]', '  override:', '    output: replace', '    desc: replace', '    priority: replace', '    tags: replace'))]);
    const r2 = replaced.ruleset.rules[0]!;
    assert.deepEqual([r2.output, r2.desc, r2.priority, r2.tags], ['new %proc.pid', 'nd', 'CRITICAL', ['z']]);
    const m = replaced.process(bash)[0]!;
    assert.deepEqual([m.output, m.priority, m.tags], ['new 100', 'CRITICAL', ['z']]);
  });

  test('legacy append reads only condition and exceptions, and is deprecated (a warning)', () => {
    const e = load([f('a.yaml', rule('R', 'evt.type = execve')), f('b.yaml', y('- rule: R', '  condition: and proc.name = bash', '  priority: DEBUG', '  append: true'))]);
    assert.equal(e.ruleset.rules[0]!.priority, 'WARNING');
    const w = e.warnings.find((x) => x.code === 'LOAD_DEPRECATED_ITEM');
    assert.ok(w, show(e.warnings));
    assertProblem(w, 'b.yaml:1:3', 'LOAD_DEPRECATED_ITEM');
  });

  test('append: true with neither condition nor exceptions is an error (collector::append)', () => {
    const p = oneError([f('a.yaml', rule('R', 'evt.type = execve')), f('b.yaml', y('- rule: R', '  output: more', '  append: true'))]);
    assertProblem(p, 'b.yaml:1:3', 'LOAD_ERR_VALIDATE', 'R');
  });

  test('override of enabled; an enabled-only item toggles; enabled: true re-enables', () => {
    const base = f('a.yaml', rule('R', 'evt.type = execve'), rule('Off', 'evt.type = execve', ['enabled: false']));
    assert.deepEqual(fired(load([base]), bash), ['R']);
    const toggled = load([base, f('b.yaml', y('- rule: R', '  enabled: false', '- rule: Off', '  enabled: true'))]);
    assert.deepEqual(fired(toggled, bash), ['Off']);
    assert.deepEqual(toggled.ruleset.rules.map((r) => [r.name, r.enabled]), [['R', false], ['Off', true]]);
    const over = load([base, f('b.yaml', y('- rule: R', '  enabled: false', '  override:', '    enabled: replace'))]);
    assert.deepEqual(fired(over, bash), []);
    // Toggled off and back on across three files.
    const thrice = load([base, f('b.yaml', y('- rule: R', '  enabled: false')), f('c.yaml', y('- rule: R', '  enabled: true'))]);
    assert.deepEqual(fired(thrice, bash), ['R']);
  });

  test('a disabled rule is still compiled: its errors are reported', () => {
    const p = oneError(rule('R', 'proc.nope = 1', ['enabled: false']));
    assertProblem(p, 'x.yaml:4:5', 'LOAD_ERR_COMPILE_CONDITION', 'proc.nope');
  });

  test('redefining a rule without append replaces it in place', () => {
    const a = f('a.yaml', rule('First', 'evt.type = execve and proc.name = sh'), rule('Second', 'evt.type = execve'));
    const b = f('b.yaml', y('- rule: First', '  desc: new', '  condition: evt.type = execve and proc.name = bash', '  output: replaced %proc.name', '  priority: ERROR'));
    const e = load([a, b], { ruleMatching: 'first' });
    assert.deepEqual(e.ruleset.rules.map((r) => r.name), ['First', 'Second']);
    const m = e.process(bash);
    assert.deepEqual(m.map((x) => [x.rule, x.output, x.priority]), [['First', 'replaced bash', 'ERROR']]);
    assert.deepEqual(fired(e, sh), ['Second']);
    assert.equal(e.ruleset.rules[0]!.pos.file, 'b.yaml');
  });

  test('a macro and a list defined in file 1 are used in file 2', () => {
    const e = load([f('a.yaml', y('- list: miners', '  items: [xmrig]', '- macro: spawned', '  condition: evt.type = execve')),
      f('b.yaml', rule('R', 'spawned and proc.name in (miners)'))]);
    assert.deepEqual(fired(e, ev({ proc: { name: 'xmrig', pid: 1 } })), ['R']);
    assert.deepEqual(fired(e, bash), []);
  });

  test("errors in text appended by file 2 point at file 2's line and column", () => {
    const base = f('a.yaml', y('- list: pad', '  items: [x]'), rule('R', 'evt.type = execve and proc.name in (pad)'));
    const syntax = oneError([base, f('b.yaml', y('# comment', '- rule: R', '  condition: >', '    and proc.name', '    = "x', '  append: true'))]);
    assertProblem(syntax, 'b.yaml:5:7', 'LOAD_ERR_COMPILE_CONDITION', '"x');
    const field = oneError([base, f('b.yaml', y('- rule: R', '  condition: and fd.nope = 1', '  append: true'))]);
    assertProblem(field, 'b.yaml:2:18', 'LOAD_ERR_COMPILE_CONDITION', 'fd.nope');
    const macro = loadFail([f('a.yaml', y('- macro: m', '  condition: proc.name = a'), rule('R', 'evt.type = execve and m')),
      f('b.yaml', y('', '- macro: m', '  condition: or proc.name in (b', '  append: true'))]).errors[0]!;
    assertProblem(macro, 'b.yaml:3:32', 'LOAD_ERR_COMPILE_CONDITION', '<end>');
    // And an error in the base text still points at file 1.
    const first = oneError([f('a.yaml', rule('R', 'evt.type = execve and proc.nope = 1')), f('b.yaml', y('- rule: R', '  condition: and proc.name = x', '  append: true'))]);
    assertProblem(first, 'a.yaml:4:27', 'LOAD_ERR_COMPILE_CONDITION', 'proc.nope');
  });

  test('an unknown output field in an appended output points at file 2', () => {
    const p = oneError([f('a.yaml', rule('R', 'evt.type = execve')), f('b.yaml', y('- rule: R', '  output: x=%proc.nope', '  override:', '    output: append'))]);
    assertProblem(p, 'b.yaml:2:14', 'LOAD_ERR_COMPILE_OUTPUT', 'proc.nope');
    // And an unknown field in the first part still points at the first file.
    const q = oneError([f('a.yaml', y('- rule: R', '  desc: d', '  condition: evt.type = execve', '  output: x %fd.nope', '  priority: INFO')),
      f('b.yaml', y('- rule: R', '  output: more %proc.name', '  override:', '    output: append'))]);
    assertProblem(q, 'a.yaml:4:14', 'LOAD_ERR_COMPILE_OUTPUT', 'fd.nope');
  });
});

describe('exceptions', () => {
  const ex = (...lines: string[]) => ['exceptions:', ...lines.map((l) => '  ' + l)];
  const e1 = (name: string, file: string) => ev({ type: 'openat', proc: { name, pid: 1 }, fd: { name: file } });

  test('tuple form: default comps are =, all fields of a tuple must match', () => {
    const e = load(rule('R', 'evt.type = openat', ex('- name: known', '  fields: [proc.name, fd.name]', '  values:', '    - [bash, /tmp/a]', '    - [sh, /tmp/b]')));
    assert.deepEqual(fired(e, e1('bash', '/tmp/a')), []);
    assert.deepEqual(fired(e, e1('sh', '/tmp/b')), []);
    assert.deepEqual(fired(e, e1('bash', '/tmp/b')), ['R'], 'values of different tuples do not combine');
    assert.deepEqual(fired(e, e1('zsh', '/tmp/a')), ['R']);
    // = is exact, not a prefix.
    assert.deepEqual(fired(e, e1('bash', '/tmp/a/x')), ['R']);
  });

  test('with the default comps (=), a value that names a list becomes its items, as Falco writes exceptions out as text', () => {
    // `proc.name = shells` with shells = [bash] reads `proc.name = bash` (resolve_list runs on the whole text).
    const e = load(y('- list: shells', '  items: [bash]') + rule('R', 'evt.type = openat and not proc.name in (zsh)', ex('- name: n', '  fields: [proc.name, fd.name]', '  values: [[shells, /x]]')));
    assert.deepEqual(fired(e, e1('bash', '/x')), []);
    assert.deepEqual(fired(e, e1('shells', '/x')), ['R']);
    // A list value where = expects one value writes `proc.name = (a, b)`, which does not parse.
    const p = oneError(rule('R', 'evt.type = openat', ex('- name: n', '  fields: [proc.name, fd.name]', '  values: [[[a, b], /x]]')));
    assertProblem(p, 'x.yaml:8:7', 'LOAD_ERR_COMPILE_CONDITION');
  });

  test('comps with in: inline lists and list names inside the tuple', () => {
    const prelude = y('- list: shells', '  items: [bash, sh]');
    const e = load(prelude + rule('R', 'evt.type = openat', ex('- name: known', '  fields: [proc.name, fd.name]', '  comps: [in, =]', '  values:', '    - [[python, node], /tmp/a]', '    - [shells, /tmp/b]', '    - [[shells, perl], /tmp/c]')));
    assert.deepEqual(fired(e, e1('node', '/tmp/a')), []);
    assert.deepEqual(fired(e, e1('bash', '/tmp/a')), ['R']);
    assert.deepEqual(fired(e, e1('sh', '/tmp/b')), []);
    assert.deepEqual(fired(e, e1('perl', '/tmp/b')), ['R']);
    assert.deepEqual(fired(e, e1('perl', '/tmp/c')), []);
    assert.deepEqual(fired(e, e1('bash', '/tmp/c')), []);
    // A list used only by an exception is not reported unused.
    assert.ok(!e.warnings.some((w) => w.code === 'LOAD_UNUSED_LIST'), show(e.warnings));
  });

  test('single-field form: comps default to in, values are a flat list', () => {
    const e = load(rule('R', 'evt.type = openat', ex('- name: procs', '  fields: proc.name', '  values: [bash, sh]')));
    assert.deepEqual(fired(e, e1('bash', '/x')), []);
    assert.deepEqual(fired(e, e1('sh', '/x')), []);
    assert.deepEqual(fired(e, e1('zsh', '/x')), ['R']);
  });

  test('single-field form with pmatch', () => {
    const e = load(rule('R', 'evt.type = openat', ex('- name: dirs', '  fields: fd.name', '  comps: pmatch', '  values: [/tmp/hello, /var/lib]')));
    assert.deepEqual(fired(e, e1('bash', '/tmp/hello/x')), []);
    assert.deepEqual(fired(e, e1('bash', '/var/lib')), []);
    assert.deepEqual(fired(e, e1('bash', '/tmp/hello_world')), ['R']);
  });

  test('tuple form with pmatch and other operators', () => {
    const e = load(rule('R', 'evt.type = openat', ex('- name: mixed', '  fields: [proc.name, fd.name]', '  comps: [startswith, pmatch]', '  values:', '    - [py, [/opt/app, /srv]]')));
    assert.deepEqual(fired(e, e1('python3', '/opt/app/x.py')), []);
    assert.deepEqual(fired(e, e1('python3', '/srv')), []);
    assert.deepEqual(fired(e, e1('python3', '/opt/application')), ['R']);
    assert.deepEqual(fired(e, e1('perl', '/srv/x')), ['R']);
  });

  test('exceptions with no values have no effect', () => {
    const e = load(rule('R', 'evt.type = openat', ex('- name: later', '  fields: [proc.name, fd.name]', '- name: later2', '  fields: proc.name', '  values: []')));
    assert.deepEqual(fired(e, e1('bash', '/x')), ['R']);
  });

  test('exception values appended by a later file (legacy append and override append)', () => {
    const base = { path: 'a.yaml', text: rule('R', 'evt.type = openat', ex('- name: known', '  fields: [proc.name, fd.name]', '  values:', '    - [bash, /tmp/a]')) };
    const legacy = { path: 'b.yaml', text: y('- rule: R', '  exceptions:', '    - name: known', '      values:', '        - [sh, /tmp/b]', '  append: true') };
    const over = { path: 'b.yaml', text: y('- rule: R', '  exceptions:', '    - name: known', '      values:', '        - [sh, /tmp/b]', '  override:', '    exceptions: append') };
    for (const later of [legacy, over]) {
      const e = load([base, later]);
      assert.deepEqual(fired(e, e1('bash', '/tmp/a')), [], 'the first file\'s value still applies');
      assert.deepEqual(fired(e, e1('sh', '/tmp/b')), [], 'the appended value applies');
      assert.deepEqual(fired(e, e1('sh', '/tmp/a')), ['R']);
    }
  });

  test('a new exception appended by a later file, and exceptions replaced', () => {
    const base = { path: 'a.yaml', text: rule('R', 'evt.type = openat', ex('- name: known', '  fields: [proc.name]', '  values: [[bash]]')) };
    const added = load([base, { path: 'b.yaml', text: y('- rule: R', '  exceptions:', '    - name: dirs', '      fields: fd.name', '      comps: pmatch', '      values: [/tmp]', '  append: true') }]);
    assert.deepEqual([fired(added, e1('bash', '/x')), fired(added, e1('sh', '/tmp/x')), fired(added, e1('sh', '/x'))], [[], [], ['R']]);
    const replaced = load([base, { path: 'b.yaml', text: y('- rule: R', '  exceptions:', '    - name: other', '      fields: [proc.name]', '      values: [[sh]]', '  override:', '    exceptions: replace') }]);
    assert.deepEqual([fired(replaced, e1('bash', '/x')), fired(replaced, e1('sh', '/x'))], [['R'], []]);
  });

  test('an exception applies to the whole condition, however it is written', () => {
    // Without grouping, a textual "cond and not exc" would bind to the last alternative only.
    const e = load(rule('R', 'evt.type = openat and fd.name = /a or evt.type = openat and fd.name = /b', ex('- name: n', '  fields: proc.name', '  values: [bash]')));
    assert.deepEqual(fired(e, e1('bash', '/a')), []);
    assert.deepEqual(fired(e, e1('bash', '/b')), []);
    assert.deepEqual(fired(e, e1('sh', '/a')), ['R']);
  });
});

describe('rule matching and selection', () => {
  const three = rule('A', 'evt.type = execve', ['tags: [t1, shared]'])
    + y('- rule: B', '  desc: d', '  condition: evt.type = execve', '  output: o', '  priority: CRITICAL', '  tags: [t2, shared]')
    + y('- rule: C miner', '  desc: d', '  condition: proc.name = bash', '  output: o', '  priority: NOTICE', '  tags: [t3]');

  test("ruleMatching 'first' (the default) stops at the first matching rule in load order", () => {
    const e = load(three, { ruleMatching: undefined });
    assert.deepEqual(fired(e, bash), ['A']);
    assert.deepEqual(fired(load(three, { ruleMatching: 'first' }), bash), ['A']);
    // The first *matching* rule: A does not match openat, C (any type) does.
    assert.deepEqual(fired(e, ev({ type: 'openat', proc: { name: 'bash', pid: 1 } })), ['C miner']);
  });

  test("ruleMatching 'all' returns every match, in load order, typed and untyped rules interleaved", () => {
    const e = load(rule('Any1', 'proc.pid > 0') + three + rule('Any2', 'proc.pid > 0'));
    assert.deepEqual(fired(e, bash), ['Any1', 'A', 'B', 'C miner', 'Any2']);
  });

  test('minPriority keeps rules at least that severe', () => {
    assert.deepEqual(fired(load(three, { minPriority: 'WARNING' }), bash), ['A', 'B']);
    assert.deepEqual(fired(load(three, { minPriority: 'CRITICAL' }), bash), ['B']);
    assert.deepEqual(fired(load(three, { minPriority: 'EMERGENCY' }), bash), []);
    assert.deepEqual(fired(load(three, { minPriority: 'DEBUG' }), bash), ['A', 'B', 'C miner']);
  });

  test('enabledTags, disabledTags and disabledRules', () => {
    assert.deepEqual(fired(load(three, { enabledTags: ['t2', 't3'] }), bash), ['B', 'C miner']);
    assert.deepEqual(fired(load(three, { disabledTags: ['shared'] }), bash), ['C miner']);
    assert.deepEqual(fired(load(three, { disabledRules: ['miner'] }), bash), ['A', 'B']);
    assert.deepEqual(fired(load(three, { enabledTags: ['shared'], disabledRules: ['B'] }), bash), ['A']);
    assert.deepEqual(load(three, { enabledTags: ['shared'] }).active.map((r) => r.def.name), ['A', 'B']);
  });

  test('the event-type index', () => {
    const e = load(
      rule('Open', 'evt.type in (openat) and fd.name = /x')
      + rule('NotExec', 'not evt.type = execve and proc.name = bash')
      + rule('NotIn', 'not evt.type in (execve, openat) and proc.name = bash')
      + rule('Untyped', 'proc.name = bash')
      + rule('Both', 'evt.type = connect or (evt.type = execve and proc.name = bash)')
      + rule('Macro', 'is_open', [])
      + y('- macro: is_open', '  condition: evt.type = openat or evt.type = openat2'),
    );
    const names = (t: string) => e.rulesFor('syscall', t).map((r) => r.def.name);
    assert.deepEqual(names('openat'), ['Open', 'NotExec', 'Untyped', 'Macro']);
    assert.deepEqual(names('execve'), ['Untyped', 'Both']);
    assert.deepEqual(names('connect'), ['NotExec', 'NotIn', 'Untyped', 'Both']);
    assert.deepEqual(names('openat2'), ['NotExec', 'NotIn', 'Untyped', 'Macro']);
    assert.deepEqual(names('read'), ['NotExec', 'NotIn', 'Untyped']);
    assert.deepEqual(e.rulesFor('k8s_audit', 'openat'), []);
    const byName = new Map(e.active.map((r) => [r.def.name, r.evttypes]));
    assert.deepEqual([...byName.get('Open')!], ['openat']);
    assert.deepEqual([...byName.get('Both')!].sort(), ['connect', 'execve']);
    assert.deepEqual([...byName.get('Macro')!].sort(), ['openat', 'openat2']);
    assert.equal(byName.get('Untyped'), undefined);
    // And the index agrees with evaluation.
    const forType = (t: string) => fired(e, { ...bash, type: t } as Event);
    assert.deepEqual(forType('execve'), ['Untyped', 'Both']);
    assert.deepEqual(forType('connect'), ['NotExec', 'NotIn', 'Untyped', 'Both']);
  });

  test('evt.type != and not evt.type in (...) keep a rule out of those buckets only', () => {
    const e = load(rule('Ne', 'evt.type != execve and proc.name = bash') + rule('NotIn', 'not (evt.type in (execve, connect) or proc.name = x)'));
    const names = (t: string) => e.rulesFor('syscall', t).map((r) => r.def.name);
    assert.deepEqual(names('execve'), []);
    assert.deepEqual(names('connect'), ['Ne']);
    assert.deepEqual(names('openat'), ['Ne', 'NotIn']);
    assert.deepEqual([...e.active[1]!.excludedTypes!].sort(), ['connect', 'execve']);
  });

  test('a rule whose condition can never match any type is warned about', () => {
    const e = load(rule('Never', 'evt.type = execve and evt.type = openat'));
    assert.ok(e.warnings.some((w) => w.item === 'Never' && w.message.includes('can never match')), show(e.warnings));
    assert.deepEqual(e.rulesFor('syscall', 'execve').map((r) => r.def.name), []);
    assert.deepEqual(e.rulesFor('syscall', 'openat').map((r) => r.def.name), []);
  });

  test('a disabled rule is neither indexed nor evaluated', () => {
    const e = load(rule('Off', 'evt.type = execve', ['enabled: false']) + rule('On', 'evt.type = execve'));
    assert.deepEqual(e.rulesFor('syscall', 'execve').map((r) => r.def.name), ['On']);
    assert.equal(e.ruleset.rules.length, 2);
  });
});

test('an operator that does not fit the field type is named before its value is judged', () => {
  // `t` is no boolean either, but the operator is the mistake to report.
  conditionError('evt.is_open_write startswith t', 'x.yaml:4:23', 'startswith');
  conditionError('proc.pid glob 1*', 'x.yaml:4:14', 'glob');
});
