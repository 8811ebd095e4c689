/**
 * The RandomX detector live, in the real agent (`minewatch run`), as root with the eBPF driver:
 *   - with the default config, a real RandomX hasher (Debian's librandomx, light mode, one thread,
 *     no pool, no arguments) renamed systemd-journald-helper gives the CRITICAL alert, and is left
 *     running: killing is opt-in;
 *   - the false-alarm stand-ins give none, though the detector watched them: interval arithmetic
 *     flat out, a simulation that sets a rounding mode now and then, a numeric library's test
 *     program cycling all four modes, a compile, and node (a JIT) in a floating-point loop;
 *   - with detectors.monero.enabled the hasher is killed (cryptnono's monero detector), through
 *     the identity-checked kill, and the kill is an alert of its own.
 * Skipped with the reason where it cannot run: not root, no eBPF build, no BTF, no librandomx-dev,
 * or (said by the agent) no x86_fpu_regs_deactivated tracepoint.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Alert, AgentRun, compileC, exitOf as exited, Marker, markerRules, sleep, writeConfig } from './helpers/agent-run.js';
import { killAll } from './helpers/live.js';
import { FIXTURES } from './helpers/paths.js';
import { buildHasher, buildStandins, NODE_NUMERIC_LOOP, noLiveRandomx } from './helpers/randomx.js';

const RULE = 'RandomX Floating-Point Rounding Pattern';
/** The test-only rule that shows every mw_fpu_rounding event: proof the detector watched a stand-in. */
const SEEN_RULE = 'Test RandomX Detector Saw';
/** Generous: the default rule needs 10 s of the pattern; CI machines are slow and shared. */
const ALERT_WAIT = 90_000;
const STANDIN_SECONDS = 33; // past the rule's 30 s for threads that do not hold a core

const SKIP = noLiveRandomx();

let WORK = '';
let HASHER = '';
let STANDINS: ReturnType<typeof buildStandins>;
let MARKER_MINER = '';

before(() => {
  WORK = mkdtempSync(join(tmpdir(), 'mw-rx-e2e-'));
  chmodSync(WORK, 0o755);
  if (SKIP) return;
  HASHER = buildHasher(WORK);
  STANDINS = buildStandins(WORK);
  MARKER_MINER = join(WORK, 'fake-miner');
  compileC(join(FIXTURES, 'agent/fake-miner.c'), MARKER_MINER);
  // The RandomX rule's output also names the pid; a DEBUG rule shows every mw_fpu_rounding event.
  writeFileSync(join(WORK, 'marker.yaml'), markerRules(`
- rule: ${RULE}
  output: pid=%proc.pid
  override:
    output: append

- rule: ${SEEN_RULE}
  desc: test only; every event of the RandomX detector
  condition: evt.type = mw_fpu_rounding
  output: seen pid=%proc.pid count=%mw.fpu.rounding_count rarest=%mw.fpu.rounding_rarest percent=%mw.fpu.rounding_percent seconds=%mw.fpu.seconds
  priority: DEBUG
  tags: [test]
`));
  chmodSync(join(WORK, 'marker.yaml'), 0o644);
});

after(() => {
  if (WORK) rmSync(WORK, { recursive: true, force: true });
});

const byPid = (rule: string, pid: number | undefined) => (a: Alert): boolean => a.rule === rule && a.output_fields['proc.pid'] === pid;

/** Start a program, output ignored, among the children the describe's after() kills. */
function startChild(children: ChildProcess[], cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: 'ignore' });
  children.push(c);
  return c;
}

/** Start the agent; resolves with its "RandomX detector …" line, or skips the test when the tracepoint is missing. */
async function startAgent(name: string, config: Record<string, unknown>): Promise<{ agent: AgentRun; state: Record<string, unknown> }> {
  const agent = new AgentRun(writeConfig(join(WORK, `${name}.yaml`), { rules_files: ['default', join(WORK, 'marker.yaml')], ...config }));
  const started = await agent.started(60_000);
  assert.equal(started.driver, 'ebpf', agent.tail());
  const state = await agent.waitLog((l) => /^RandomX detector (attached|not attached)$/.test(l.msg), 5_000, 'the RandomX detector\'s state');
  return { agent, state };
}

describe('RandomX detector with the default config (root, eBPF, librandomx)', { skip: SKIP }, () => {
  let agent: AgentRun | undefined;
  let marker: Marker;
  let missing: string | undefined;
  const children: ChildProcess[] = [];

  before(async () => {
    const s = await startAgent('default', {});
    agent = s.agent;
    marker = new Marker(WORK, MARKER_MINER);
    if (s.state.attached !== true) {
      missing = String(s.state.why);
      assert.match(missing, /no x86_fpu:x86_fpu_regs_deactivated tracepoint/, 'only a missing tracepoint excuses a default agent');
      return;
    }
    assert.equal(s.state.kill, 'off', 'killing is opt-in');
  });

  after(async () => {
    killAll(children);
    await agent?.stop();
  });

  test('a real RandomX hasher renamed systemd-journald-helper: the CRITICAL alert, and it keeps running', async (t) => {
    if (missing) return t.skip(missing);
    const rx = startChild(children, HASHER, []);
    const a = await agent!.waitAlert(byPid(RULE, rx.pid), ALERT_WAIT, 'the RandomX alert');
    assert.equal(a.priority, 'Critical');
    assert.equal(a.output_fields['proc.name'], 'systemd-journal');
    assert.equal(a.output_fields['proc.exepath'], HASHER);
    assert.equal(a.output_fields['proc.cmdline'], 'systemd-journal');
    assert.ok(Number(a.output_fields['mw.fpu.rounding_rarest']) >= 2, 'all four rounding modes seen');
    assert.ok(Number(a.output_fields['mw.fpu.seconds']) >= 10, 'the pattern lasted');
    assert.ok(Number(a.output_fields['mw.fpu.busy_percent']) >= 80, 'a hashing thread never sleeps');
    await marker.fire(agent!, 'after the RandomX alert');
    assert.equal(rx.exitCode, null, 'not killed');
    assert.equal(rx.signalCode, null, 'not killed');
    assert.deepEqual(agent!.alerts.filter((x) => x.rule.startsWith('minewatch response')), [], 'no response was asked for');
    rx.kill('SIGKILL');
    await exited(rx);
  });

  test('interval arithmetic, a mode now and then, libm tests, a compile, node in a float loop: watched, no alert', async (t) => {
    if (missing) return t.skip(missing);
    const start = (cmd: string, args: string[]): ChildProcess => startChild(children, cmd, args);
    const interval = start(STANDINS.interval, [String(STANDIN_SECONDS)]);
    const sometimes = start(STANDINS.sometimes, [String(STANDIN_SECONDS)]);
    const libm = start(STANDINS.libmTests, ['6']);
    const node = start(process.execPath, ['-e', NODE_NUMERIC_LOOP(STANDIN_SECONDS - 3)]);
    const compiles: ChildProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const cc = start('cc', ['-O2', '-o', join(WORK, `cc-out-${i}`), join(FIXTURES, 'ebpf/rounding-standins.c'), '-lm']);
      compiles.push(cc);
      assert.deepEqual(await exited(cc), { code: 0, signal: null }, 'the compile');
    }
    for (const c of [interval, sometimes, libm, node]) assert.deepEqual(await exited(c), { code: 0, signal: null });
    // The kernel reports a process at most once a second: wait that out, then let a marker prove
    // that everything before it has been through the rules.
    await sleep(1500);
    await marker.fire(agent!, 'after the stand-ins', 30_000);
    const pids = new Set([interval, sometimes, libm, node, ...compiles].map((c) => c.pid));
    const rxAlerts = agent!.alerts.filter((a) => a.rule === RULE);
    assert.deepEqual(rxAlerts.filter((a) => pids.has(a.output_fields['proc.pid'] as number)).map((a) => a.output), [], 'no RandomX alert for a stand-in');
    assert.deepEqual(rxAlerts.filter((a) => ['cc', 'cc1', 'as', 'ld', 'collect2', 'node'].includes(String(a.output_fields['proc.name']))), [], 'nor for the compiler or node');
    // Not vacuous: the detector followed the two that leave round-to-nearest most of the time.
    const seen = (c: ChildProcess) => agent!.alerts.filter(byPid(SEEN_RULE, c.pid));
    assert.ok(seen(interval).length > 0, 'the detector watched the interval arithmetic');
    assert.ok(seen(libm).length > 0, 'the detector watched the libm tests');
    assert.equal(Math.max(...seen(interval).map((a) => Number(a.output_fields['mw.fpu.rounding_rarest']))), 0, 'interval arithmetic never rounds toward zero');
  });
});

describe('RandomX detector with detectors.monero.enabled: cryptnono\'s kill (root, eBPF, librandomx)', { skip: SKIP }, () => {
  let agent: AgentRun | undefined;
  let missing: string | undefined;
  const children: ChildProcess[] = [];

  before(async () => {
    const s = await startAgent('kill', { detectors: { monero: { enabled: true } } });
    agent = s.agent;
    if (s.state.attached !== true) {
      missing = String(s.state.why);
      return;
    }
    assert.equal(s.state.kill, 'on (detectors.monero.enabled)');
  });

  after(async () => {
    killAll(children);
    await agent?.stop();
  });

  test('the hasher is killed, by pid and start time, and the kill is an alert', async (t) => {
    if (missing) return t.skip(missing);
    const rx = startChild(children, HASHER, []);
    const gone = exited(rx);
    const k = await agent!.waitAlert((a) => a.rule === 'minewatch response: kill' && a.output_fields['proc.pid'] === rx.pid, ALERT_WAIT, 'the kill');
    assert.equal(k.output_fields['mw.response.trigger'], 'monero');
    assert.equal(k.output_fields['mw.response.mode'], 'enforce');
    assert.equal(k.output_fields['mw.response.outcome'], 'done', String(k.output));
    assert.deepEqual(await gone, { code: null, signal: 'SIGKILL' });
    assert.ok(agent!.alerts.some(byPid(RULE, rx.pid)), 'the RandomX alert too');
    // Asked once per process, however many events the hasher left behind.
    await sleep(1500);
    assert.equal(agent!.alerts.filter((a) => a.rule === 'minewatch response: kill' && a.output_fields['proc.pid'] === rx.pid).length, 1);
  });
});
