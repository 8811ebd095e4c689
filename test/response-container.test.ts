/**
 * `kill_container` on real cgroups the test makes: a cgroup v1 freezer cgroup named like a
 * container (…/<64 hex id>) with two `sleep`s moved into it — frozen, both SIGKILLed through
 * pidfds, thawed; and, where this host also mounts the v2 hierarchy with cgroup.kill, the same
 * through cgroup.kill. The test removes its cgroups afterwards. Plus the refusals: a process on the
 * host, a cgroup that does not name the container, the agent or an allow-listed process inside.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readStartTs } from '../src/platform/procfs.js';
import { cgroupDir, cgroupMounts, KillContainerAction, parseCgroupFile } from '../src/response/kill-container.js';
import { AllowList, Safety } from '../src/response/safety.js';
import type { ActionRequest, Target } from '../src/response/types.js';
import { isRoot, killAll, sleep } from './helpers/live.js';

const children: ChildProcess[] = [];
const made: string[] = [];

after(async () => {
  killAll(children);
  // Deepest first; a cgroup can be removed once its processes have gone.
  for (const d of made.reverse()) {
    for (let i = 0; i < 100 && existsSync(d); i++) {
      try {
        if (existsSync(join(d, 'freezer.state'))) writeFileSync(join(d, 'freezer.state'), 'THAWED');
        rmdirSync(d);
      } catch {
        await sleep(20);
      }
    }
  }
});

const testSafety = (allow?: AllowList, isSelf?: (pid: number) => boolean): Safety =>
  new Safety({ isSelf: isSelf ?? ((pid) => pid === process.pid), allow });

function spawnChild(cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: 'ignore' });
  children.push(c);
  return c;
}

function exited(c: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve({ code: c.exitCode, signal: c.signalCode });
  return new Promise((r) => c.once('exit', (code, signal) => r({ code, signal })));
}

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

async function waitComm(pid: number, comm: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm) return;
    } catch {
      return;
    }
    await sleep(5);
  }
}

/** A cgroup named like a runc container (…/minewatch-test-PID/<64 hex>) under a hierarchy's mount. */
function makeCgroup(mount: string): { dir: string; id: string } {
  const id = randomBytes(32).toString('hex');
  const parent = join(mount, `minewatch-test-${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(parent);
  made.push(parent);
  const dir = join(parent, id);
  mkdirSync(dir);
  made.push(dir);
  return { dir, id };
}

/** Two members moved into the cgroup: a sleep and a tail (different executables). */
async function populate(dir: string): Promise<[ChildProcess, ChildProcess]> {
  const a = spawnChild('sleep', ['1000']);
  const b = spawnChild('tail', ['-f', '/dev/null']);
  await waitComm(a.pid!, 'sleep');
  await waitComm(b.pid!, 'tail');
  writeFileSync(join(dir, 'cgroup.procs'), String(a.pid));
  writeFileSync(join(dir, 'cgroup.procs'), String(b.pid));
  const procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number).sort();
  assert.deepEqual(procs, [a.pid!, b.pid!].sort(), 'both moved in');
  return [a, b];
}

const req = (target: Target, mode: 'dryrun' | 'enforce' = 'enforce'): ActionRequest => ({ action: 'kill_container', target, trigger: 'test', mode });

const members = (dir: string): number[] => readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').filter(Boolean).map(Number);

// ---- unit ------------------------------------------------------------------------------------------

describe('kill_container: cgroup files', () => {
  test('mountinfo: the v2 hierarchy and the v1 freezer', () => {
    const text = [
      '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
      '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
      '37 31 0:34 /docker/abc /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
    ].join('\n');
    const m = cgroupMounts(text);
    assert.deepEqual(m.freezer, { root: '/docker/abc', mountpoint: '/sys/fs/cgroup/freezer' });
    assert.deepEqual(m.v2, { root: '/', mountpoint: '/sys/fs/cgroup/unified' });
    // A mount that shows only part of the hierarchy (inside a container) maps paths below its root.
    assert.equal(cgroupDir(m.freezer!, '/docker/abc/sub'), '/sys/fs/cgroup/freezer/sub');
    assert.equal(cgroupDir(m.freezer!, '/elsewhere'), undefined);
    assert.equal(cgroupDir(m.v2!, '/system.slice/docker-1.scope'), '/sys/fs/cgroup/unified/system.slice/docker-1.scope');
  });

  test('/proc/PID/cgroup: the v2 line and the freezer line', () => {
    const text = '9:name=systemd:/x\n6:freezer:/docker/0123\n4:memory:/m\n0::/system.slice/docker-0123.scope\n';
    assert.deepEqual(parseCgroupFile(text), { v2: '/system.slice/docker-0123.scope', freezer: '/docker/0123' });
    assert.deepEqual(parseCgroupFile('0::/\n'), { v2: '/' });
  });
});

// ---- live -------------------------------------------------------------------------------------------

const mounts = cgroupMounts(existsSync('/proc/self/mountinfo') ? readFileSync('/proc/self/mountinfo', 'utf8') : '');
const v1Skip = !isRoot()
  ? 'SKIPPED: making cgroups needs root'
  : !mounts.freezer || mounts.freezer.root !== '/'
    ? 'SKIPPED: no cgroup v1 freezer hierarchy mounted here (at its root)'
    : false;

describe('kill_container: cgroup v1 freezer (root)', { skip: v1Skip }, () => {
  const mount = mounts.freezer?.mountpoint ?? '';

  test('freeze, SIGKILL both members, thaw: both die by SIGKILL, the cgroup is thawed and empty', async () => {
    const { dir, id } = makeCgroup(mount);
    const [a, b] = await populate(dir);
    const target: Target = { pid: a.pid!, startTs: readStartTs(a.pid!), container: { id: id.slice(0, 12), full_id: id } };
    const action = new KillContainerAction({ safety: testSafety(), strategy: 'v1' });
    let frozen: { state: string; members: number[] } | undefined;
    const watched = new KillContainerAction({
      safety: testSafety(),
      strategy: 'v1',
      onFrozen: (m) => void (frozen = { state: readFileSync(join(dir, 'freezer.state'), 'utf8').trim(), members: [...m].sort() }),
    });
    // A dry run first: it names both members and touches nothing.
    const d = await action.run(req(target, 'dryrun'));
    assert.equal(d.outcome, 'dryrun', d.reason);
    assert.match(d.reason!, /would kill the 2 process\(es\) of cgroup .* \(freeze, SIGKILL each, thaw\)/);
    assert.ok(d.reason!.includes(String(a.pid)) && d.reason!.includes(String(b.pid)));
    assert.ok(alive(a) && alive(b));

    const r = await watched.run(req(target));
    assert.equal(r.outcome, 'done', r.reason);
    assert.match(r.reason!, /killed the 2 process\(es\) of cgroup .*froze, SIGKILL each through (a pidfd|kill\(2\)), thawed/);
    assert.deepEqual(frozen, { state: 'FROZEN', members: [a.pid!, b.pid!].sort() }, 'killed while frozen, both members listed');
    assert.deepEqual(await exited(a), { code: null, signal: 'SIGKILL' });
    assert.deepEqual(await exited(b), { code: null, signal: 'SIGKILL' });
    assert.equal(readFileSync(join(dir, 'freezer.state'), 'utf8').trim(), 'THAWED');
    assert.deepEqual(members(dir), []);
    rmdirSync(dir);
    assert.equal(existsSync(dir), false, 'the cgroup could be removed');
  });

  test('a frozen member cannot escape: a member that forks while being killed is killed too', async () => {
    const { dir, id } = makeCgroup(mount);
    // A shell that starts a new sleep every 10 ms, once it has been moved into the cgroup (it
    // waits for a line on stdin first): all its children are born in the cgroup.
    const sh = spawn('sh', ['-c', 'read go; while :; do sleep 1000 & sleep 0.01; done'], { stdio: ['pipe', 'ignore', 'ignore'] });
    children.push(sh);
    await waitComm(sh.pid!, 'sh');
    writeFileSync(join(dir, 'cgroup.procs'), String(sh.pid));
    sh.stdin!.write('go\n');
    await sleep(100);
    assert.ok(members(dir).length > 2, 'the shell has children in the cgroup');
    const r = await new KillContainerAction({ safety: testSafety(), strategy: 'v1' }).run(req({ pid: sh.pid!, startTs: readStartTs(sh.pid!), container: { id: id.slice(0, 12), full_id: id } }));
    assert.equal(r.outcome, 'done', r.reason);
    assert.deepEqual(await exited(sh), { code: null, signal: 'SIGKILL' });
    const deadline = Date.now() + 3000;
    while (members(dir).length && Date.now() < deadline) await sleep(20);
    assert.deepEqual(members(dir), [], 'nothing left in the cgroup');
  });

  test('refused: a process on the host, a cgroup that does not name the container, the agent inside, an allow-listed process inside', async () => {
    const { dir, id } = makeCgroup(mount);
    const [a, b] = await populate(dir);
    const t: Target = { pid: a.pid!, startTs: readStartTs(a.pid!), container: { id: id.slice(0, 12), full_id: id } };

    const host = await new KillContainerAction({ safety: testSafety() }).run(req({ ...t, container: { id: 'host' } }));
    assert.equal(host.outcome, 'spared');
    assert.match(host.reason!, /not in a container/);
    const none = await new KillContainerAction({ safety: testSafety() }).run(req({ pid: t.pid, startTs: t.startTs }));
    assert.equal(none.outcome, 'spared');

    const other = await new KillContainerAction({ safety: testSafety(), strategy: 'v1' }).run(req({ ...t, container: { id: 'fedcba987654' } }));
    assert.equal(other.outcome, 'spared');
    assert.match(other.reason!, /does not name container fedcba987654/);

    // Pretend b is the agent: nothing in the cgroup is touched.
    const agentInside = await new KillContainerAction({ safety: testSafety(undefined, (pid) => pid === process.pid || pid === b.pid), strategy: 'v1' }).run(req(t));
    assert.equal(agentInside.outcome, 'spared');
    assert.match(agentInside.reason!, new RegExp(`agent or its child \\(pid ${b.pid}\\) is in this cgroup`));

    const allowInside = await new KillContainerAction({ safety: testSafety(new AllowList({ exe_paths: ['*/tail'] })), strategy: 'v1' }).run(req(t));
    assert.equal(allowInside.outcome, 'spared');
    assert.match(allowInside.reason!, /allow-listed executable .*tail/);

    // The target itself gone: missed.
    const gone = await new KillContainerAction({ safety: testSafety(), strategy: 'v1' }).run(req({ ...t, startTs: (t.startTs ?? 0n) - 10_000_000n }));
    assert.equal(gone.outcome, 'missed');

    await sleep(50);
    assert.ok(alive(a) && alive(b), 'both still running');
    assert.equal(readFileSync(join(dir, 'freezer.state'), 'utf8').trim(), 'THAWED');
  });
});

const v2Kill = mounts.v2 && mounts.v2.root === '/' && existsSync(join(mounts.v2.mountpoint, 'cgroup.procs'));
const v2Skip = !isRoot()
  ? 'SKIPPED: making cgroups needs root'
  : !v2Kill
    ? 'SKIPPED: no cgroup v2 hierarchy mounted here'
    : false;

describe('kill_container: cgroup v2 cgroup.kill (root)', { skip: v2Skip }, () => {
  test('both members die by SIGKILL through cgroup.kill', async (t) => {
    const { dir, id } = makeCgroup(mounts.v2!.mountpoint);
    if (!existsSync(join(dir, 'cgroup.kill'))) return t.skip('this kernel has no cgroup.kill (Linux < 5.14)');
    let a: ChildProcess;
    let b: ChildProcess;
    try {
      [a, b] = await populate(dir);
    } catch (e) {
      // A v2 hierarchy with controllers enabled in this subtree may refuse processes in inner nodes.
      return t.skip(`cannot move processes into a v2 cgroup here: ${(e as Error).message}`);
    }
    const r = await new KillContainerAction({ safety: testSafety() }).run(req({ pid: a.pid!, startTs: readStartTs(a.pid!), container: { id: id.slice(0, 12), full_id: id } }));
    assert.equal(r.outcome, 'done', r.reason);
    assert.match(r.reason!, /with cgroup\.kill/);
    assert.deepEqual(await exited(a), { code: null, signal: 'SIGKILL' });
    assert.deepEqual(await exited(b), { code: null, signal: 'SIGKILL' });
    assert.deepEqual(members(dir), []);
  });
});
