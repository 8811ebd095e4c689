/**
 * Grouping by what ran, end to end: the real agent (`minewatch run --json`, default rules, the
 * default group keys, `alerts.throttle.window_s: 30`) watching this machine, and what it writes on
 * standard output, one alert a line:
 *  - 18 different miner binaries (copies of a harmless stand-in under miner names, each with a
 *    miner's command line) started one after another give one alert line each;
 *  - 1,000 restarts of one binary give one line, and when the window closes one summary with the
 *    count 1,000;
 *  - a miner renaming itself at every respawn (30 names) gives 20 lines, then one line for a group
 *    that counts the other 10 (alerts.throttle.max_new_groups);
 *  - the same miner in each of two hand-made containers (mount and pid namespaces, a network
 *    namespace of its own, an overlay root, a cgroup named as docker's systemd driver names it:
 *    system.slice/docker-<64 hex>.scope) gives two lines.
 * The stand-in (test/fixtures/agent/fake-miner.c) makes no connection when it is given no pool
 * address: it only waits. Each part runs its own agent, so the parts do not share a window or a
 * place's budget of new groups (alerts.throttle.max_new_groups). Other processes on this machine
 * may alert too: alerts are told apart by the executable's path (under this test's own folder) or
 * the container's id. A test-only marker rule, on a fresh copy of the stand-in each time (a new
 * executable is a new group), proves the agent has caught up: its queue is first in, first out.
 *
 * Needs root (namespaces, cgroups, the agent's drivers) and `cc`; the container part also needs
 * `ip`, a static libc (`cc -static`) and a cgroup hierarchy. Each part skips with the reason.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Alert, AgentRun, compileC, dockerCgroupDirs, sleep, writeConfig } from './helpers/agent-run.js';
import { makeEmptyNetns, removeNetns } from './helpers/netns.js';
import { haveCommand, isRoot, run } from './helpers/live.js';
import { FIXTURES } from './helpers/paths.js';
import { WALLET } from './helpers/miner.js';

const WINDOW_S = 30;
const DEADLINE = 20_000;
const MARK_RULE = 'Grouping Test Marker';

/** An alert line as the agent writes it with --json: Falco's alert and the group beside it. */
type GroupAlert = Alert & { minewatch?: { kind: 'first' | 'summary'; count: number; uuid: string } };

const NO_ROOT = isRoot() ? undefined : 'needs root: the agent\'s drivers read every process on this machine, and the containers need namespaces and cgroups';
const NO_CC = haveCommand('cc') ? undefined : 'needs a C compiler (`cc`) for the stand-in miner';
const skip = NO_ROOT ?? NO_CC;

let WORK = '';
let MINER = '';
let RESPAWN = '';
let RUNTIME = '';
let markSeq = 0;

before(() => {
  if (skip) return;
  WORK = mkdtempSync(join(tmpdir(), 'mw-grp-e2e-'));
  chmodSync(WORK, 0o755);
  MINER = join(WORK, 'fake-miner');
  compileC(join(FIXTURES, 'agent/fake-miner.c'), MINER, { static: true });
  RESPAWN = join(WORK, 'respawn');
  compileC(join(FIXTURES, 'grouping/respawn.c'), RESPAWN);
  RUNTIME = join(WORK, 'fake-runtime');
  compileC(join(FIXTURES, 'agent/fake-runtime.c'), RUNTIME);
  writeFileSync(join(WORK, 'marker.yaml'), `- rule: ${MARK_RULE}
  desc: a test-only rule; it matches only the marker copies this test starts
  condition: evt.type in (execve, execveat) and proc.name startswith grpmark
  output: grouping test marker (cmdline=%proc.cmdline exepath=%proc.exepath)
  priority: DEBUG
  tags: [test]
`);
  chmodSync(join(WORK, 'marker.yaml'), 0o644);
});

after(() => {
  if (WORK) rmSync(WORK, { recursive: true, force: true });
});

/** An agent with the default rules and keys, grouping in 30 s windows. */
async function startAgent(t: { diagnostic(m: string): void }, name: string): Promise<AgentRun> {
  const agent = new AgentRun(writeConfig(join(WORK, `${name}.yaml`), {
    rules_files: ['default', join(WORK, 'marker.yaml')],
    alerts: { throttle: { window_s: WINDOW_S } },
  }));
  const started = await agent.started();
  t.diagnostic(`driver: ${String(started.driver)}`);
  return agent;
}

/**
 * XMRig's usual command line: pool host:port, wallet, algorithm, donate level. The pool is only a
 * name (the stand-in never connects without an address). No stratum+tcp:// URL: other tests' fake
 * miners use one, and with Falco's rule_matching `first` they then alert under the pool URL rule,
 * not under the rules these alert under (Known Miner Program Launched by name, else Miner Options
 * in Command Line), so they cannot spend this test's budget of new groups on this host.
 */
const minerArgs = (pool: string, extra: string[] = []): string[] => ['-o', `${pool}:443`, '-u', WALLET, '-p', 'x', '-a', 'rx/0', '--donate-level', '1', '-k', ...extra];
const MINER_RULES = ['Known Miner Program Launched', 'Miner Options in Command Line'];

function spawnQuiet(cmd: string, args: string[]): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.on('error', (e) => (err += `spawn error: ${e.message}`));
  return { child, out: () => out, err: () => err };
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/**
 * How long each stand-in lives. The eBPF driver reads an exec in the kernel; the proc connector
 * and the /proc poller read /proc after the fact and miss a process that is already gone, so each
 * lives long enough for those drivers too.
 */
const HOLD = ['--hold-ms', '1500'];

/** Copy the stand-in to `path` (its name is the file name) and start it; resolves when it ends. */
function startCopy(path: string, args: string[]): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  copyFileSync(MINER, path);
  chmodSync(path, 0o755);
  const p = spawnQuiet(path, args);
  return exited(p.child).then((code) => assert.equal(code, 0, `${path} failed: ${p.err()}`));
}

/** Start each copy 50 ms after the one before (the agent sees them in this order); wait for all to end. */
async function startInTurn(paths: string[], args: (i: number) => string[]): Promise<void> {
  const ends: Promise<void>[] = [];
  for (const [i, path] of paths.entries()) {
    ends.push(startCopy(path, args(i)));
    await sleep(50);
  }
  await Promise.all(ends);
}

/**
 * Start a marker (a fresh copy of the stand-in: a new executable, so a new group) and wait for
 * its alert. Everything the agent saw before it has then been evaluated and written.
 */
async function catchUp(agent: AgentRun): Promise<number> {
  const seq = ++markSeq;
  const path = join(WORK, `mark-${seq}`, `grpmark${seq}`);
  const from = agent.alerts.length;
  await startCopy(path, HOLD);
  const a = await agent.waitAlert((x) => x.rule === MARK_RULE && String(x.output_fields['proc.exepath']) === path, DEADLINE, `marker ${seq}`, from);
  return agent.alerts.indexOf(a);
}

const kindOf = (a: GroupAlert): string => a.minewatch?.kind ?? 'first';
const exeOf = (a: Alert): string => String(a.output_fields['proc.exepath'] ?? '');
const lines = (alerts: GroupAlert[]): string => alerts.map((a) => `${kindOf(a)} ${a.rule}: ${a.output}`).join('\n');

describe('grouping end to end: the agent\'s lines on standard output, default keys, 30 s windows', { skip }, () => {
  const agents: AgentRun[] = [];
  const cleanups: Array<() => void | Promise<void>> = [];
  /** The 1,000-restart agent and its binary: its summary is awaited last, while the other parts run. */
  let respawnAgent: AgentRun | undefined;
  let respawnPath = '';

  after(async () => {
    for (const a of agents) await a.stop().catch(() => a.kill());
    for (const f of cleanups.reverse()) {
      try {
        await f();
      } catch {
        /* best effort */
      }
    }
  });

  test('1,000 restarts of one miner binary give one alert line', async (t) => {
    const agent = await startAgent(t, 'respawn');
    agents.push(agent);
    respawnAgent = agent;
    respawnPath = join(WORK, 'respawn-bin', 'xmrig');
    mkdirSync(dirname(respawnPath), { recursive: true });
    copyFileSync(MINER, respawnPath);
    chmodSync(respawnPath, 0o755);
    // 200 at a time, each living 1.5 s: long enough for every exec to be read, short enough for
    // all 1,000 to start well inside one 30 s window.
    const r = spawnQuiet(RESPAWN, ['1000', '200', '--', respawnPath, ...minerArgs('pool.supportxmr.com', HOLD)]);
    assert.equal(await exited(r.child), 0, `respawn: ${r.out()} ${r.err()}`);
    assert.match(r.out(), /^runs=1000 failed=0$/m);
    const upTo = await catchUp(agent);
    const ours = (agent.alerts.slice(0, upTo) as GroupAlert[]).filter((a) => exeOf(a) === respawnPath);
    t.diagnostic(`1,000 restarts: ${ours.length} line(s) on stdout`);
    assert.equal(ours.length, 1, `one line for 1,000 restarts, got:\n${lines(ours)}`);
    assert.equal(kindOf(ours[0]!), 'first');
    assert.equal(ours[0]!.rule, 'Known Miner Program Launched');
    // The group is open and counting (on /metrics, with the other groups open on this machine).
    const metrics = await (await fetch(`${await agent.webUrl()}/metrics`)).text();
    assert.match(metrics, /^minewatch_alert_groups_open [1-9]\d*$/m);
  });

  test('18 different miner binaries started one after another give one alert line each', async (t) => {
    const agent = await startAgent(t, 'eighteen');
    agents.push(agent);
    const names = [
      'xmrig', 'xmr-stak', 'xmr-stak-rx', 'cpuminer', 'cpuminer-opt', 'minerd', 't-rex', 'lolminer', 'nbminer',
      'teamredminer', 'gminer', 'kdevtmpfsi', 'kinsing', 'kworkerd', 'sysupdate', 'networkservice', 'dbused', 'systemd-helper',
    ];
    const pools = ['pool.supportxmr.com', 'gulf.moneroocean.stream', 'xmr.2miners.com', 'pool.hashvault.pro', 'xmr-eu1.nanopool.org', 'mine.c3pool.com'];
    const paths = names.map((n, i) => join(WORK, `eighteen-${i}`, n));
    await startInTurn(paths, (i) => minerArgs(pools[i % pools.length]!, HOLD));
    const upTo = await catchUp(agent);
    const ours = (agent.alerts.slice(0, upTo) as GroupAlert[]).filter((a) => paths.includes(exeOf(a)));
    t.diagnostic(`18 different binaries: ${ours.length} line(s) on stdout`);
    assert.deepEqual(ours.map(exeOf).sort(), [...paths].sort(), `one line per binary, got:\n${lines(ours)}`);
    for (const a of ours) {
      assert.equal(kindOf(a), 'first');
      assert.ok(MINER_RULES.includes(a.rule), `${a.rule}: ${a.output}`);
      assert.ok(!a.output.includes('more than 20 groups'), `not folded: ${a.output}`);
    }
    await agent.stop();
  });

  test('a miner renaming itself at every respawn (30 names) gives 20 lines and one line that counts the rest', async (t) => {
    const agent = await startAgent(t, 'renaming');
    agents.push(agent);
    const paths = Array.from({ length: 30 }, (_, i) => join(WORK, `renamed-${i}`, `kthread-${randomBytes(3).toString('hex')}`));
    await startInTurn(paths, () => minerArgs('xmr.2miners.com', HOLD));
    const upTo = await catchUp(agent);
    const seen = agent.alerts.slice(0, upTo) as GroupAlert[];
    const own = seen.filter((a) => paths.includes(exeOf(a)) && !a.output.includes('more than 20 groups'));
    const folded = seen.filter((a) => paths.includes(exeOf(a)) && a.output.includes('more than 20 groups'));
    t.diagnostic(`30 names: ${own.length} line(s) of their own, ${folded.length} overflow line(s)`);
    assert.deepEqual(own.map(exeOf), paths.slice(0, 20), `the first 20 names have a line each:\n${lines(own)}`);
    assert.equal(folded.length, 1, `one overflow line:\n${lines(folded)}`);
    assert.equal(exeOf(folded[0]!), paths[20], 'the overflow line is the 21st name\'s');
    assert.match(folded[0]!.output, /other values of proc\.exepath are counted in this alert/);
    const metrics = await (await fetch(`${await agent.webUrl()}/metrics`)).text();
    // The 10 folded names (and whatever else on this machine folded meanwhile).
    assert.ok(Number(/^minewatch_alert_matches_folded_total (\d+)$/m.exec(metrics)?.[1]) >= 10, metrics.split('\n').filter((l) => l.includes('folded')).join('\n'));
    await agent.stop();
  });

  test('the same miner in each of two hand-made containers gives two alert lines', async (t) => {
    const why = haveCommand('ip') ? undefined : 'needs iproute2 (`ip`) for the containers\' network namespaces';
    if (why) return t.skip(why);
    // The containers' root is a bare overlay: the miner must need no dynamic loader.
    const staticMiner = join(WORK, 'static-miner');
    try {
      run('cc', ['-static', '-O2', '-o', staticMiner, join(FIXTURES, 'agent/fake-miner.c')]);
    } catch (e) {
      return t.skip(`needs a static libc (cc -static) for a miner in a bare container root: ${(e as Error).message.split('\n')[0]}`);
    }
    const ids = [randomBytes(32).toString('hex'), randomBytes(32).toString('hex')];
    const dirs = ids.map((id) => dockerCgroupDirs(id, ['cpu', 'cpuacct'], 'systemd'));
    if (dirs[0]!.length === 0) return t.skip('no cgroup v1 cpu/cpuacct hierarchy nor cgroup v2 root found under /sys/fs/cgroup');
    const agent = await startAgent(t, 'containers');
    agents.push(agent);
    for (const d of dirs.flat()) {
      const parent = dirname(d);
      const madeParent = !existsSync(parent);
      mkdirSync(d, { recursive: true });
      cleanups.push(async () => {
        await removeCgroupDir(d);
        // The parent may hold another test's containers: it goes only when empty and made here.
        if (madeParent) await removeCgroupDir(parent);
      });
    }
    const runs = ids.map((id, i) => {
      const netns = makeEmptyNetns('grp');
      cleanups.push(() => removeNetns(netns));
      const ct = mkdtempSync(join(WORK, `ct${i}-`));
      for (const d of ['lower/usr/bin', 'upper', 'work', 'rootfs']) mkdirSync(join(ct, d), { recursive: true });
      // In the image (the lower layer), at the same path in both containers.
      copyFileSync(staticMiner, join(ct, 'lower/usr/bin/xmrig'));
      chmodSync(join(ct, 'lower/usr/bin/xmrig'), 0o755);
      return spawnQuiet(RUNTIME, [
        ...dirs[i]!.flatMap((d) => ['--cgroup', d]),
        '--netns', `/run/netns/${netns}`,
        '--lower', join(ct, 'lower'), '--upper', join(ct, 'upper'), '--work', join(ct, 'work'), '--rootfs', join(ct, 'rootfs'),
        '--', '/usr/bin/xmrig', ...minerArgs('pool.supportxmr.com', HOLD),
      ]);
    });
    for (const r of runs) assert.equal(await exited(r.child), 0, `the container failed: ${r.err()}`);
    const upTo = await catchUp(agent);
    const shorts = ids.map((id) => id.slice(0, 12));
    // The miner's lines (the runtime, whose command line carries the miner's, may be seen in the
    // container's cgroup too: another executable, another group).
    const ours = (agent.alerts.slice(0, upTo) as GroupAlert[])
      .filter((a) => shorts.includes(String(a.output_fields['container.id'])) && a.output_fields['proc.name'] === 'xmrig');
    t.diagnostic(`two containers: ${ours.length} line(s) on stdout`);
    assert.deepEqual(ours.map((a) => String(a.output_fields['container.id'])).sort(), [...shorts].sort(), `one line per container, got:\n${lines(ours)}`);
    // One executable (the same path in both images): the container alone tells the groups apart.
    assert.equal(exeOf(ours[0]!), exeOf(ours[1]!));
    t.diagnostic(`the containers' executable: ${exeOf(ours[0]!)}`);
    await agent.stop();
  });

  test('when the window closes, the 1,000 restarts get one summary line with the count 1,000', async (t) => {
    if (!respawnAgent) return t.skip('the 1,000-restart part did not run');
    const agent = respawnAgent;
    const summary = (await agent.waitAlert(
      (a) => exeOf(a) === respawnPath && kindOf(a as GroupAlert) === 'summary',
      (WINDOW_S + 30) * 1000,
      'the summary of the 1,000 restarts',
    )) as GroupAlert;
    const mw = summary.minewatch as { count: number; first_seen?: string; last_seen?: string } | undefined;
    t.diagnostic(`summary: count ${mw?.count}, first ${mw?.first_seen}, last ${mw?.last_seen}`);
    assert.equal(summary.minewatch?.count, 1000);
    assert.match(summary.output, /\(1000 times from /);
    // And nothing else for that binary: the first line and this summary.
    await catchUp(agent);
    const ours = (agent.alerts as GroupAlert[]).filter((a) => exeOf(a) === respawnPath);
    assert.deepEqual(ours.map(kindOf), ['first', 'summary'], lines(ours));
  });
});

/** Remove a cgroup folder once its last process is gone (EBUSY until then), for up to 2 s. */
async function removeCgroupDir(d: string): Promise<void> {
  for (let tries = 0; tries < 20; tries++) {
    try {
      rmdirSync(d);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      await sleep(100);
    }
  }
}
