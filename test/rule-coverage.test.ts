/**
 * Which loaded rules a driver can feed (src/sources/coverage.ts): a rule whose event types the
 * driver cannot deliver is named once at load, with those types; the eBPF driver delivers every
 * type Falco's three rules files name; and the agent says so in its log whichever driver it runs.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Engine, DEFAULT_RULES_FILES } from '../src/engine/index.js';
import { coverageWarnings, deliveredTypes, ruleCoverage } from '../src/sources/coverage.js';
import { spawnSync } from 'node:child_process';
import { AgentRun, writeConfig } from './helpers/agent-run.js';
import { CLI, FALCO_CORPUS } from './helpers/paths.js';
import { y } from './helpers/rules.js';

const RULES = y(
  '- rule: Hard link made',
  '  desc: d',
  '  condition: evt.type in (link, linkat) and evt.arg.newpath startswith /tmp',
  '  output: o',
  '  priority: WARNING',
  '- rule: Shell or symlink',
  '  desc: d',
  '  condition: (evt.type = execve and proc.name = sh) or evt.type = symlink',
  '  output: o',
  '  priority: WARNING',
  '- rule: Any exec',
  '  desc: d',
  '  condition: evt.type = execve and proc.name = sh',
  '  output: o',
  '  priority: WARNING',
);

describe('rule coverage', () => {
  const engine = new Engine([{ path: 'r.yaml', text: RULES }]);

  test('the proc connector and the /proc poller name the rules they cannot feed, with the types', () => {
    for (const driver of ['proc', 'procfs'] as const) {
      const w = coverageWarnings(engine.active, driver);
      assert.deepEqual(w.map((x) => [x.rule, x.missing]), [['Hard link made', ['link', 'linkat']], ['Shell or symlink', ['symlink']]]);
      assert.match(w[0]!.message, new RegExp(`"Hard link made" cannot fire with the ${driver} driver: it reads link, linkat events`));
      assert.match(w[1]!.message, /only part of its events .*symlink/);
    }
  });

  test('the eBPF driver feeds them all', () => {
    assert.deepEqual(coverageWarnings(engine.active, 'ebpf'), []);
    assert.deepEqual(ruleCoverage(engine.active, deliveredTypes('ebpf')).map((c) => c.status), ['full', 'full', 'full']);
  });

  test('sources beside the driver count: the socket poller delivers connect', () => {
    const e = new Engine([{ path: 'c.yaml', text: y('- rule: C', '  desc: d', '  condition: evt.type = connect and fd.sport = 4444', '  output: o', '  priority: WARNING') }]);
    assert.equal(coverageWarnings(e.active, 'procfs').length, 1);
    assert.equal(coverageWarnings(e.active, 'procfs', { connections: true }).length, 0);
  });

  const FALCO = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'].map((f) => FALCO_CORPUS + f);
  test('every event type Falco\'s three rules files name is delivered by the eBPF driver', { skip: FALCO.every(existsSync) ? undefined : `Falco's rules are not in ${FALCO_CORPUS}` }, () => {
    const e = Engine.fromFiles([...FALCO, ...DEFAULT_RULES_FILES]);
    const gaps = coverageWarnings(e.active, 'ebpf', { cpu: true });
    assert.deepEqual(gaps.map((g) => `${g.rule}: ${g.missing.join(',')}`), []);
  });
});

describe('the agent at load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-p17-cov-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the /proc poller names each rule it cannot feed once, in its log', async () => {
    writeFileSync(join(dir, 'rules.yaml'), RULES);
    const cfg = writeConfig(join(dir, 'agent.yaml'), { rules_files: [join(dir, 'rules.yaml')], sources: { cpu: { enabled: false }, connections: { enabled: false } } });
    const agent = new AgentRun(cfg, { args: ['--driver', 'procfs'] });
    try {
      await agent.started(60_000);
      const lines = agent.logs.filter((l) => typeof l.rule === 'string' && Array.isArray(l.types));
      assert.deepEqual(lines.map((l) => [l.rule, l.types, l.driver]), [['Hard link made', ['link', 'linkat'], 'procfs'], ['Shell or symlink', ['symlink'], 'procfs']]);
      assert.ok(lines.every((l) => l.level === 40), JSON.stringify(lines));
    } finally {
      await agent.stop();
    }
  });
});

describe('minewatch doctor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-p17-doc-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('lists each loaded rule\'s coverage by the driver run would choose (--json)', () => {
    writeFileSync(join(dir, 'rules.yaml'), RULES);
    const r = spawnSync(process.execPath, [CLI, 'doctor', '--json', '--no-trial', '--driver', 'procfs', '-r', join(dir, 'rules.yaml')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { coverage: { driver: string; rules: Array<{ rule: string; status: string; missing: string[] }> } };
    assert.equal(report.coverage.driver, 'procfs');
    assert.deepEqual(report.coverage.rules.map((c) => [c.rule, c.status, c.missing]), [
      ['Hard link made', 'none', ['link', 'linkat']],
      ['Shell or symlink', 'partial', ['symlink']],
      ['Any exec', 'full', []],
    ]);
    const text = spawnSync(process.execPath, [CLI, 'doctor', '--no-trial', '--driver', 'procfs', '-r', join(dir, 'rules.yaml')], { encoding: 'utf8', timeout: 60_000 }).stdout;
    assert.match(text, /^none {2}Hard link made {2}\(link,linkat; not delivered: link,linkat\)$/m);
  });
});
