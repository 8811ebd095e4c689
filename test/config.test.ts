/** The one config file: defaults, Falco's keys, and errors that name the key and its line. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ConfigError, defaultConfig, parseConfig } from '../src/config/load.js';
import { ROOT } from './helpers/paths.js';

test('the example config in deploy/ is valid and equals the defaults', () => {
  const { config, warnings } = parseConfig(readFileSync(`${ROOT}deploy/minewatch.yaml`, 'utf8'), 'minewatch.yaml');
  assert.deepEqual(warnings, []);
  assert.deepEqual(config, defaultConfig());
});

test('defaults fill in whatever a file leaves out', () => {
  const { config } = parseConfig('sources:\n  cpu:\n    threshold: 0.5\n', 'c.yaml');
  assert.equal(config.sources.cpu.threshold, 0.5);
  assert.equal(config.sources.cpu.duration_s, 300);
  assert.equal(config.sources.driver, 'auto');
  assert.deepEqual(config.rules_files, ['default']);
  assert.equal(config.sources.ebpf.gather_ms, 2);
  assert.equal(config.sources.ebpf.quiet_ms, 20);
  assert.equal(parseConfig('sources:\n  ebpf:\n    quiet_ms: 0\n', 'c.yaml').config.sources.ebpf.quiet_ms, 0, 'off');
  assert.throws(() => parseConfig('sources:\n  ebpf:\n    quiet_ms: 5000\n', 'c.yaml'), /quiet_ms/);
  assert.equal(config.sources.proc.quiet_ms, 50, 'the proc connector has quiet execs too');
  assert.equal(config.sources.connections.idle_interval_ms, 1000, 'the socket poller slows to 1 s at idle');
  assert.equal(parseConfig('sources:\n  proc:\n    quiet_ms: 0\n', 'c.yaml').config.sources.proc.quiet_ms, 0);
  assert.throws(() => parseConfig('sources:\n  proc:\n    quiet_ms: 5000\n', 'c.yaml'), /sources\.proc\.quiet_ms/);
});

test('sources.ebpf.gather_ms: a number of ms from 0 to 100, else refused naming the key', () => {
  assert.equal(parseConfig('sources:\n  ebpf:\n    gather_ms: 0.5\n', 'c.yaml').config.sources.ebpf.gather_ms, 0.5);
  for (const bad of ['-1', '101', 'soon']) {
    assert.throws(() => parseConfig(`sources:\n  ebpf:\n    gather_ms: ${bad}\n`, 'c.yaml'), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(e.problems.map((p) => `${p.file}:${p.line}:${p.col} ${p.path}`), ['c.yaml:3:5 sources.ebpf.gather_ms']);
      return true;
    });
  }
});

test("Falco's keys are translated; Falco-only settings are warnings", () => {
  const { config, warnings } = parseConfig(
    'json_output: true\npriority: warning\nfile_output:\n  enabled: true\n  filename: /tmp/a.txt\nstdout_output:\n  enabled: false\nlog_level: info\nrules_files: [/etc/falco/falco_rules.yaml]\n',
    'falco.yaml',
  );
  assert.equal(config.outputs.stdout.format, 'json');
  assert.equal(config.outputs.stdout.enabled, false);
  assert.deepEqual(config.outputs.file, { enabled: true, path: '/tmp/a.txt', format: 'json' });
  assert.equal(config.engine.priority, 'warning');
  assert.deepEqual(config.rules_files, ['/etc/falco/falco_rules.yaml']);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]!.path, 'log_level');
  assert.equal(warnings[0]!.line, 8);
});

test('every problem names its key path and file:line:col, and all are reported at once', () => {
  const text = ['sources:', '  cpu:', '    threshold: -1', '    tresh: 2', 'foo: 1', 'priority: bogus', 'outputs:', '  stdout:', '    format: xml', ''].join('\n');
  assert.throws(() => parseConfig(text, 'c.yaml'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    const got = e.problems.map((p) => `${p.file}:${p.line}:${p.col} ${p.path}`).sort();
    assert.deepEqual(got, [
      'c.yaml:3:5 sources.cpu.threshold',
      'c.yaml:4:5 sources.cpu.tresh',
      'c.yaml:5:1 foo',
      'c.yaml:6:1 engine.priority',
      'c.yaml:9:5 outputs.stdout.format',
    ].sort());
    assert.match(e.message, /c\.yaml:5:1: foo: unknown section; known sections: rules_files, engine, sources, outputs/);
    return true;
  });
});

test('invalid YAML and a non-mapping file are refused clearly', () => {
  assert.throws(() => parseConfig('sources: [1, 2\n', 'bad.yaml'), /bad\.yaml:\d+:\d+: invalid YAML/);
  assert.throws(() => parseConfig('- a\n- b\n', 'list.yaml'), /list\.yaml:1:1: the config file must be a YAML mapping/);
});

test("Falco's append_output is read (top level or under engine); its default is Falco's suggested_output", () => {
  assert.deepEqual(parseConfig('', 'c.yaml').config.engine.append_output, [{ suggested_output: true }]);
  const { config, warnings } = parseConfig('append_output:\n  - match: {source: syscall, tags: [T1496]}\n    extra_output: "on cpu %evt.cpu"\n    extra_fields:\n      - home: "${HOME}"\n      - evt.hostname\n', 'falco.yaml');
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.engine.append_output, [{ match: { source: 'syscall', tags: ['T1496'] }, extra_output: 'on cpu %evt.cpu', extra_fields: [{ home: '${HOME}' }, 'evt.hostname'] }]);
  assert.throws(() => parseConfig('append_output:\n  - extra_outptu: x\n', 'falco.yaml'), /falco\.yaml:2:5: engine\.append_output\.0\.extra_outptu: unknown key/);
});
