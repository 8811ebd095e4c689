/**
 * The event pipeline live (issue 14), with `minewatch run` and `minewatch replay` as child
 * processes:
 *  - SIGHUP reloads the whole config file with the flags over it again: a bad file changes nothing
 *    and the error names its file and line; a good one changes the rules files and the response
 *    live, and a section read at start only (sources) is named in a warning;
 *  - `run --record FILE` of a fake miner (the live e2e fixture, connected to a stand-in pool in a
 *    namespace made here) gives a 0600 file without environment, and replaying it gives the same
 *    (rule, pid) matches;
 *  - replay runs the detectors and the response stage, but only records: a recorded pid that a
 *    live process holds now is not killed.
 * Needs root, `ip` and `cc` for the miner part; each part skips with the reason.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readStartTs } from '../src/platform/procfs.js';
import { RECORD_ONLY_REASON } from '../src/response/record-only.js';
import { type Alert, AgentRun, compileC, Marker, markerRules, MARKER_RULE, writeConfig } from './helpers/agent-run.js';
import { makePoolNetns, type PoolNetns, type PoolServer, removePoolNetns, startPool } from './helpers/netns.js';
import { haveCommand, isRoot } from './helpers/live.js';
import { CLI, FIXTURES, ROOT } from './helpers/paths.js';
import { MINER_RULES, WALLET } from './helpers/miner.js';

const DEADLINE = 15_000;
const POOL_NAME = 'pool.minexmr.com';
const POOL_ADDR = '198.51.100.7';
const POOL_PORT = 4444;
const NO_CC = haveCommand('cc') ? undefined : 'needs a C compiler (`cc`) for the fake miner fixture';
const NO_ROOT = isRoot() ? undefined : 'needs root (the kernel drivers, network namespaces)';
const NO_IP = haveCommand('ip') ? undefined : 'needs iproute2 (`ip`): apt-get install -y iproute2';

let WORK = '';
let MINER = '';
const children: ChildProcess[] = [];
const agents: AgentRun[] = [];

before(() => {
  WORK = mkdtempSync(join(tmpdir(), 'mw-p14pipe-e2e-'));
  chmodSync(WORK, 0o755);
  if (NO_CC) return;
  MINER = join(WORK, 'xmrig');
  compileC(join(FIXTURES, 'agent/fake-miner.c'), MINER, { static: true });
});

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const a of agents) a.kill();
  rmSync(WORK, { recursive: true, force: true });
});

function agent(config: string, args: string[] = []): AgentRun {
  const a = new AgentRun(config, { args });
  agents.push(a);
  return a;
}

/** Every default rule's output with the pid appended, so each alert names its process. */
function pidRules(): string {
  const names = [...readFileSync(join(ROOT, 'rules/minewatch_rules.yaml'), 'utf8').matchAll(/^- rule: (.+)$/gm)].map((m) => m[1]!.trim());
  return markerRules(`\n${names.map((r) => `- rule: ${r}\n  output: pid=%proc.pid\n  override:\n    output: append\n`).join('\n')}`);
}

/** `minewatch replay` as a child: its alerts (JSON lines) and its standard error. */
function replay(args: string[]): { alerts: Alert[]; err: string; code: number } {
  try {
    const out = execFileSync(process.execPath, [CLI, 'replay', '--json', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { alerts: out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Alert), err: '', code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; status: number };
    return { alerts: x.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Alert), err: x.stderr, code: x.status };
  }
}

describe('SIGHUP reloads the whole config file', { skip: NO_CC ?? NO_ROOT }, () => {
  test('a bad file changes nothing (named with its line); a good one brings new rules files and response live; a start-only section is named', async () => {
    const dir = mkdtempSync(join(WORK, 'hup-'));
    chmodSync(dir, 0o755);
    const marker = new Marker(dir, MINER);
    const first = join(dir, 'first.yaml');
    const second = join(dir, 'second.yaml');
    writeFileSync(first, markerRules('', 'Reload Before'));
    writeFileSync(second, markerRules('', 'Reload After'));
    const base = { rules_files: [first], web: { enabled: false }, sources: { cpu: { enabled: false }, connections: { enabled: false }, dns: { hosts_files: [], static: {} } } };
    const cfg = writeConfig(join(dir, 'agent.yaml'), base);
    const a = agent(cfg);
    await a.started();
    await marker.fire(a, 'before any reload', DEADLINE, 'Reload Before');

    // A file that does not parse: refused, named with its line; the running rules stay.
    writeFileSync(cfg, 'rules_files:\n  - x\nsources: [unclosed\n');
    let from = a.logs.length;
    a.child.kill('SIGHUP');
    const refused = await a.waitLog((l) => l.msg.startsWith('config refused on reload'), DEADLINE, 'refused reload', from);
    assert.match(String(refused.err), new RegExp(`${cfg.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+`));
    await marker.fire(a, 'after the bad file', DEADLINE, 'Reload Before');

    // A file that parses but does not validate: refused the same way.
    writeFileSync(cfg, 'rules_files: [x]\nresponse:\n  mode: sometimes\n');
    from = a.logs.length;
    a.child.kill('SIGHUP');
    const invalid = await a.waitLog((l) => l.msg.startsWith('config refused on reload'), DEADLINE, 'invalid config refused', from);
    assert.match(String(invalid.err), /response\.mode|mode/);
    await marker.fire(a, 'after the invalid file', DEADLINE, 'Reload Before');

    // A file whose rules do not load (and whose response would differ): refused whole.
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, '- rule: Broken\n  desc: d\n  condition: evt.type = \n  output: o\n  priority: WARNING\n');
    writeConfig(cfg, { ...base, rules_files: [broken], response: { mode: 'dryrun', actions: [{ rules: ['Reload Before'], do: ['kill'] }] } });
    from = a.logs.length;
    a.child.kill('SIGHUP');
    await a.waitLog((l) => l.msg === 'config refused on reload: its rules do not load; nothing changed', DEADLINE, 'bad rules refused', from);
    const still = await marker.fire(a, 'after the bad rules', DEADLINE, 'Reload Before');

    // A good file: other rules files (taken live), a response action for the new rule, and a
    // change to sources (read at start only: named in a warning).
    writeConfig(cfg, {
      ...base,
      rules_files: [second],
      sources: { ...base.sources, procfs: { interval_ms: 777 } },
      response: { mode: 'dryrun', actions: [{ rules: ['Reload After'], do: ['kill'] }] },
    });
    from = a.logs.length;
    a.child.kill('SIGHUP');
    await a.waitLog((l) => l.msg === 'config reloaded', DEADLINE, 'config reloaded', from);
    const warn = await a.waitLog((l) => l.msg.startsWith('these sections changed but are read at start only'), DEADLINE, 'restart warning', from);
    assert.deepEqual(warn.sections, ['sources']);
    const alert = await marker.fire(a, 'after the good file', DEADLINE, 'Reload After');
    const pid = alert.output_fields['proc.pid'];
    const outcome = await a.waitAlert((x) => x.rule === 'minewatch response: kill' && x.output_fields['proc.pid'] === pid, DEADLINE, 'the dry-run kill the new response section asks for');
    assert.equal(outcome.output_fields['mw.response.outcome'], 'dryrun');
    assert.equal(a.alerts.filter((x) => x.rule === 'Reload Before' && x.time > alert.time).length, 0, 'the old rules file is no longer loaded');
    // By now (a later marker and its outcome are in) an outcome for the earlier one would be too.
    assert.equal(a.alerts.filter((x) => x.rule === 'minewatch response: kill' && x.output_fields['proc.pid'] === still.output_fields['proc.pid']).length, 0, 'the refused file\'s response section did not take over');
    await a.stop();
  });
});

describe('run --record, then replay: the same matches', { skip: NO_CC ?? NO_ROOT ?? NO_IP }, () => {
  let pool: PoolNetns | undefined;
  let server: PoolServer | undefined;
  after(() => {
    if (server?.child.exitCode === null) server.child.kill('SIGKILL');
    if (pool) removePoolNetns(pool);
  });

  test('a live miner recorded (0600, no environment) and replayed gives the same (rule, pid) matches', async (t) => {
    const dir = mkdtempSync(join(WORK, 'rec-'));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'pid.yaml'), pidRules());
    const rules = ['default', join(dir, 'pid.yaml')];
    const cfg = writeConfig(join(dir, 'agent.yaml'), {
      rules_files: rules,
      engine: { rule_matching: 'all' },
      web: { enabled: false },
      sources: { cpu: { enabled: false }, dns: { hosts_files: [], static: { [POOL_NAME]: POOL_ADDR } } },
    });
    const file = join(dir, 'events.jsonl');
    pool = makePoolNetns('p14r');
    server = startPool(pool, POOL_ADDR, POOL_PORT);
    await server.ready;
    const a = agent(cfg, ['--record', file]);
    t.diagnostic(`driver: ${String((await a.started()).driver)}`);
    const miner = spawn(MINER, ['-o', `stratum+tcp://${POOL_NAME}:${POOL_PORT}`, '-u', WALLET, '--donate-level', '1'], {
      stdio: 'ignore',
      env: { ...process.env, FAKE_MINER_CONNECT: POOL_ADDR, FAKE_MINER_BIND_DEV: pool.hostIf, FAKE_MINER_HOLD_MS: '1500', MW_P14_SECRET: 'do-not-record-me' },
    });
    children.push(miner);
    const pid = miner.pid!;
    await Promise.all(MINER_RULES.map((r) => a.waitAlert((x) => x.rule === r && x.output_fields['proc.pid'] === pid, DEADLINE, `${r} (pid ${pid})`)));
    await a.stop();

    assert.equal(statSync(file).mode & 0o777, 0o600, 'the recording is its owner\'s alone');
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /do-not-record-me/, 'no environment in the recording');
    assert.doesNotMatch(text, /"env":/);

    const live = new Set(a.alerts.filter((x) => x.output_fields['proc.pid'] === pid && x.source !== 'minewatch').map((x) => x.rule));
    const r = replay([file, '--all-matches', ...rules.flatMap((f) => ['--rules', f])]);
    assert.equal(r.code, 0, r.err);
    const replayed = new Set(r.alerts.filter((x) => x.output_fields['proc.pid'] === pid && x.source !== 'minewatch').map((x) => x.rule));
    for (const rule of MINER_RULES) assert.ok(live.has(rule), `live: ${rule}`);
    assert.deepEqual([...replayed].sort(), [...live].sort());
  });
});

describe('replay runs the detectors and responses, recording only', () => {
  test('a recorded pid that a live process holds now is not killed, whatever response.mode says', async (t) => {
    if (!existsSync('/proc/self/stat')) return t.skip('needs /proc');
    const dir = mkdtempSync(join(WORK, 'safe-'));
    const victim = spawn('sleep', ['600'], { stdio: 'ignore' });
    children.push(victim);
    const pid = victim.pid!;
    // Its real identity: the kill's pidfd + start-time check would pass if anything were run.
    let startTs: bigint | undefined;
    for (let i = 0; i < 50 && startTs === undefined; i++) {
      startTs = readStartTs(pid);
      if (startTs === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(startTs !== undefined, 'the start time of the live process');
    writeFileSync(join(dir, 'r.yaml'), `- rule: Replay Victim
  desc: t
  condition: evt.type = execve and proc.name = mwvictim
  output: victim pid=%proc.pid
  priority: CRITICAL
`);
    const cfg = writeConfig(join(dir, 'c.yaml'), {
      response: { mode: 'enforce', actions: [{ rules: ['Replay Victim'], do: ['kill'] }] },
      detectors: { execwhacker: { enabled: true, default_list: false, configs: { t: { bannedCommandStrings: ['mwvictim-banned'] } } } },
    });
    const ev = { source: 'syscall', type: 'execve', ts: '1700000000000000000', proc: { pid, name: 'mwvictim', exe: 'mwvictim', args: ['mwvictim-banned'], start_ts: String(startTs) } };
    const file = join(dir, 'e.jsonl');
    writeFileSync(file, JSON.stringify(ev) + '\n');
    const r = replay([file, '--config', cfg, '--rules', join(dir, 'r.yaml')]);
    assert.equal(r.code, 0, r.err);
    const kills = r.alerts.filter((x) => x.rule === 'minewatch response: kill');
    assert.deepEqual(kills.map((k) => k.output_fields['mw.response.trigger']).sort(), ['Replay Victim', 'execwhacker'], 'the rule\'s action and the detector\'s, both through the response stage');
    for (const k of kills) {
      assert.equal(k.output_fields['mw.response.outcome'], 'dryrun');
      assert.equal(k.output_fields['mw.response.reason'], RECORD_ONLY_REASON);
      assert.equal(k.output_fields['proc.pid'], pid);
    }
    assert.ok(r.alerts.some((x) => x.rule === 'Replay Victim'), 'the rule match prints too');
    // The replay has exited: any kill would have been sent by now. (A killed child is a zombie
    // until this process reaps it: read its state, not only whether the pid exists.)
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
    assert.ok(state !== 'Z' && state !== 'X', `the live process holding the recorded pid is alive (state ${state})`);
    await new Promise((r) => setImmediate(r));
    assert.equal(victim.signalCode, null);
  });
});
