/**
 * The `kill` action and the safety checks, on real processes: SIGKILL through a pidfd (and through
 * kill(2) without one), dry runs, everything that is never killed (the host's pid 1, the agent,
 * kernel threads, allow-listed processes), a container's pid 1 that is, and lost races: a process
 * already gone, and a pid handed to a new process between the match and the kill — forced through
 * the fault-injection hooks and, as root, by making the kernel give the pid to a new process
 * (/proc/sys/kernel/ns_last_pid).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { clockTicks, readStartTs } from '../src/platform/procfs.js';
import { KillAction, nativePidfd } from '../src/response/kill.js';
import { AllowList, imageRepositoryForms, INIT_PID_NS, isKernelThread, Safety, statFlags } from '../src/response/safety.js';
import type { ActionRequest, Target } from '../src/response/types.js';
import { haveCommand, isRoot, killAll, sleep } from './helpers/live.js';

const children: ChildProcess[] = [];
after(() => killAll(children));

/** Safety as the agent would have it, except that this test's children are not "the agent's". */
const testSafety = (allow?: AllowList): Safety => new Safety({ isSelf: (pid) => pid === process.pid, allow });

function spawnSleep(cmd = 'sleep', args = ['1000']): ChildProcess {
  const c = spawn(cmd, args, { stdio: 'ignore' });
  children.push(c);
  return c;
}

/** Resolves with how a child ended. */
function exited(c: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve({ code: c.exitCode, signal: c.signalCode });
  return new Promise((r) => c.once('exit', (code, signal) => r({ code, signal })));
}

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

/** The target of a child: its pid and start time, once it has exec'd. */
async function targetOf(c: ChildProcess, comm?: string): Promise<Target> {
  const pid = c.pid!;
  const deadline = Date.now() + 5000;
  // Wait for exec, so the identity is that of the program, as a match would see it.
  while (comm && Date.now() < deadline) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm) break;
    } catch {
      break;
    }
    await sleep(5);
  }
  const startTs = readStartTs(pid);
  assert.ok(startTs !== undefined, `start time of ${pid}`);
  return { pid, startTs };
}

const req = (target: Target, mode: 'dryrun' | 'enforce' = 'enforce'): ActionRequest => ({ action: 'kill', target, trigger: 'test', mode });

const pidfdMissing = nativePidfd().error;
/**
 * /proc/PID/stat gives start times in clock ticks (USER_HZ, 100 a second): two processes started
 * in the same tick have the same start time. Tests that make B take A's pid wait over a tick first
 * (in life, the host's pid space would have to wrap around within one tick).
 */
const TICK_MS = Math.ceil(2000 / clockTicks()) + 5;

// ---- unit: safety helpers -------------------------------------------------------------------------

describe('safety: helpers', () => {
  test('stat flags (field 9) are counted after the last parenthesis', () => {
    const kthreadd = '2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 24 0 0 18446744073709551615 0 0';
    assert.equal(statFlags(kthreadd), 2129984);
    assert.ok((2129984 & 0x00200000) !== 0, 'PF_KTHREAD set');
    assert.equal(statFlags('77 (a) b) (c) S 1 77 77 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 99 0 0'), 4194560);
  });

  test('kernel threads: PF_KTHREAD, kthreadd itself, or no command line under kthreadd', () => {
    const stat = (pid: number, ppid: number, comm = 'x') => ({ pid, comm, state: 'S', ppid, pgrp: 0, session: 0, tty_nr: 0, utime: 0, stime: 0, num_threads: 1, starttime: 1 });
    assert.equal(isKernelThread({ pid: 50, flags: 0x00200040, stat: stat(50, 2), noCmdline: true }), true);
    assert.equal(isKernelThread({ pid: 2, flags: 0, stat: stat(2, 0, 'kthreadd'), noCmdline: true }), true);
    assert.equal(isKernelThread({ pid: 51, flags: 0, stat: stat(51, 2), noCmdline: true }), true);
    assert.equal(isKernelThread({ pid: 52, flags: 0x400100, stat: stat(52, 1), noCmdline: false }), false);
    // A zombie has no command line either, but its parent is not kthreadd.
    assert.equal(isKernelThread({ pid: 53, flags: 0, stat: stat(53, 700), noCmdline: true }), false);
  });

  test('image repositories are compared in docker\'s normalized forms', () => {
    assert.deepEqual(imageRepositoryForms('nginx:1.25').sort(), ['docker.io/library/nginx', 'library/nginx', 'nginx'].sort());
    assert.ok(imageRepositoryForms('docker.io/library/redis@sha256:abc').includes('redis'));
    assert.deepEqual(imageRepositoryForms('ghcr.io/acme/tool:v1'), ['ghcr.io/acme/tool']);
    assert.ok(imageRepositoryForms('localhost:5000/x/y:1').includes('localhost:5000/x/y'));
    const allow = new AllowList({ images: ['nginx', 'ghcr.io/acme/*'], namespaces: ['kube-*'], exe_paths: ['/opt/render/*'] });
    const c = (image: string) => ({ pid: 9, container: { id: 'abcdefabcdef', image } });
    assert.match(allow.targetReason(c('docker.io/library/nginx:latest')) ?? '', /allow-listed image/);
    assert.match(allow.targetReason(c('ghcr.io/acme/miner-detector:2')) ?? '', /allow-listed image/);
    assert.equal(allow.targetReason(c('ghcr.io/other/nginx:1')), undefined);
    assert.equal(allow.targetReason(c('nginxx')), undefined);
    assert.match(allow.targetReason({ pid: 9, k8s: { ns_name: 'kube-system' } }) ?? '', /allow-listed namespace kube-system/);
    assert.equal(allow.targetReason({ pid: 9, k8s: { ns_name: 'default' } }), undefined);
    assert.match(allow.targetReason({ pid: 9, exepath: '/opt/render/bin/blender' }) ?? '', /allow-listed executable/);
    // The host's "container" has no image to allow.
    assert.equal(new AllowList({ images: ['*'] }).targetReason({ pid: 9, container: { id: 'host', image: 'x' } }), undefined);
  });

  test('the host\'s pid namespace is the initial one', () => {
    const s = new Safety();
    const ours = (() => {
      try {
        return readFileSync('/proc/self/status', 'utf8');
      } catch {
        return '';
      }
    })();
    // When we run in the initial namespace (as the agent does), that is what the check compares with.
    if (/^NSpid:\s+\d+\s*$/m.test(ours)) assert.equal(s.hostPidNamespace(), INIT_PID_NS);
    const self = s.read(process.pid)!;
    assert.equal(s.isHostInit(self), false);
  });
});

// ---- the kill -------------------------------------------------------------------------------------

describe('kill: real processes', () => {
  test('the native addon exports the pidfd functions', { skip: pidfdMissing ? `SKIPPED: no pidfd functions: ${pidfdMissing}` : false }, () => {
    const { pidfd } = nativePidfd();
    assert.ok(pidfd);
    assert.throws(() => pidfd.pidfdOpen(0x3fffffff), (e: NodeJS.ErrnoException) => e.code === 'ESRCH' && e.syscall === 'pidfd_open' && e.errno === -3);
    const fd = pidfd.pidfdOpen(process.pid);
    assert.ok(fd >= 0);
    pidfd.pidfdSendSignal(fd, 0); // a probe
    pidfd.closeFd(fd);
    assert.throws(() => pidfd.closeFd(fd), (e: NodeJS.ErrnoException) => e.code === 'EBADF');
    assert.throws(() => pidfd.pidfdOpen(-5), /pid must be a positive integer/);
  });

  test('enforce: SIGKILL through a pidfd', { skip: pidfdMissing ? `SKIPPED: no pidfd functions: ${pidfdMissing}` : false }, async () => {
    const c = spawnSleep();
    const t = await targetOf(c, 'sleep');
    const kill = new KillAction({ safety: testSafety() });
    assert.equal(kill.method, 'pidfd');
    const r = await kill.run(req(t));
    assert.equal(r.outcome, 'done', r.reason);
    assert.match(r.reason!, /SIGKILL to pid \d+ \(sleep.*through a pidfd/);
    assert.deepEqual(await exited(c), { code: null, signal: 'SIGKILL' });
  });

  test('enforce without a pidfd: start time checked, then kill(2)', async () => {
    const c = spawnSleep();
    const t = await targetOf(c, 'sleep');
    const kill = new KillAction({ safety: testSafety(), pidfd: null });
    assert.equal(kill.method, 'kill');
    const r = await kill.run(req(t));
    assert.equal(r.outcome, 'done', r.reason);
    assert.match(r.reason!, /with kill\(2\)/);
    assert.deepEqual(await exited(c), { code: null, signal: 'SIGKILL' });
  });

  test('dryrun: says what it would do and leaves the process alive', async () => {
    const c = spawnSleep();
    const t = await targetOf(c, 'sleep');
    const r = await new KillAction({ safety: testSafety() }).run(req(t, 'dryrun'));
    assert.equal(r.outcome, 'dryrun');
    assert.match(r.reason!, new RegExp(`would send SIGKILL to pid ${t.pid} \\(sleep`));
    await sleep(100);
    assert.ok(alive(c), 'still running');
    c.kill('SIGKILL');
  });

  test('spared: the host\'s pid 1, the agent itself, a kernel thread', async (t) => {
    const kill = new KillAction({ safety: testSafety() });
    const pid1 = await kill.run(req({ pid: 1, startTs: readStartTs(1) ?? 1n }));
    assert.equal(pid1.outcome, 'spared');
    assert.match(pid1.reason!, /pid 1/);

    const self = await kill.run(req({ pid: process.pid, startTs: readStartTs(process.pid) }));
    assert.equal(self.outcome, 'spared');
    assert.match(self.reason!, /agent itself/);

    const comm2 = existsSync('/proc/2/comm') ? readFileSync('/proc/2/comm', 'utf8').trim() : '';
    if (comm2 === 'kthreadd') {
      const r = await kill.run(req({ pid: 2, startTs: readStartTs(2) }));
      assert.equal(r.outcome, 'spared');
      assert.match(r.reason!, /kernel thread kthreadd/);
      // …in dry runs too: a dry run says what enforce would do.
      const d = await kill.run(req({ pid: 2, startTs: readStartTs(2) }, 'dryrun'));
      assert.equal(d.outcome, 'spared');
    } else {
      t.diagnostic('no kthreadd visible as pid 2 here: the kernel thread case was not checked');
    }
  });

  test('spared: a child of the agent (default safety: this process and its descendants)', async () => {
    const c = spawnSleep();
    const t = await targetOf(c, 'sleep');
    const r = await new KillAction().run(req(t));
    assert.equal(r.outcome, 'spared');
    assert.match(r.reason!, /child of the minewatch agent/);
    assert.ok(alive(c));
    c.kill('SIGKILL');
  });

  test('spared: an allow-listed executable (by glob), image or namespace; the process lives', async () => {
    const c = spawnSleep();
    const t = await targetOf(c, 'sleep');
    const byExe = await new KillAction({ safety: testSafety(new AllowList({ exe_paths: ['/usr/*/sleep', '/bin/sleep'] })) }).run(req(t));
    assert.equal(byExe.outcome, 'spared');
    assert.match(byExe.reason!, /allow-listed executable .*sleep/);

    const allow = new AllowList({ images: ['docker.io/library/busybox'], namespaces: ['ci-*'] });
    const byImage = await new KillAction({ safety: testSafety(allow) }).run(req({ ...t, container: { id: 'abcdefabcdef', image: 'busybox:1.36' } }));
    assert.equal(byImage.outcome, 'spared');
    assert.match(byImage.reason!, /allow-listed image busybox/);
    const byNs = await new KillAction({ safety: testSafety(allow) }).run(req({ ...t, k8s: { ns_name: 'ci-runners' } }));
    assert.equal(byNs.outcome, 'spared');
    assert.match(byNs.reason!, /allow-listed namespace ci-runners/);

    await sleep(50);
    assert.ok(alive(c), 'still running');
    c.kill('SIGKILL');
  });

  test('no start time in the request: the identity cannot be checked, nothing is killed', async () => {
    const c = spawnSleep();
    const r = await new KillAction({ safety: testSafety() }).run(req({ pid: c.pid! }));
    assert.equal(r.outcome, 'spared');
    assert.match(r.reason!, /no start time/);
    assert.ok(alive(c));
    c.kill('SIGKILL');
  });

  test('missed: the process had already exited', async () => {
    const c = spawnSleep('sleep', ['1000']);
    const t = await targetOf(c, 'sleep');
    c.kill('SIGKILL');
    await exited(c);
    for (const pidfd of [undefined, null] as const) {
      const r = await new KillAction({ safety: testSafety(), pidfd }).run(req(t));
      assert.equal(r.outcome, 'missed', r.reason);
      assert.match(r.reason!, /process gone|start time changed/);
    }
  });

  test('missed: the request names B\'s pid with A\'s start time (B is another process); B lives', async () => {
    const a = spawnSleep();
    const ta = await targetOf(a, 'sleep');
    a.kill('SIGKILL');
    await exited(a);
    await sleep(TICK_MS); // start times count clock ticks: B must start in a later one
    const b = spawnSleep();
    const tb = await targetOf(b, 'sleep');
    assert.notEqual(tb.startTs, ta.startTs);
    for (const pidfd of [undefined, null] as const) {
      const r = await new KillAction({ safety: testSafety(), pidfd }).run(req({ pid: b.pid!, startTs: ta.startTs }));
      assert.equal(r.outcome, 'missed');
      assert.match(r.reason!, /start time changed: pid \d+ is another process now/);
    }
    await sleep(50);
    assert.ok(alive(b), 'B still running');
    b.kill('SIGKILL');
  });

  test('missed: the process dies between the checks and the signal (beforeSignal hook)', { skip: pidfdMissing ? `SKIPPED: no pidfd functions: ${pidfdMissing}` : false }, async () => {
    const a = spawnSleep();
    const t = await targetOf(a, 'sleep');
    const kill = new KillAction({
      safety: testSafety(),
      hooks: {
        beforeSignal: async () => {
          a.kill('SIGKILL');
          await exited(a);
        },
      },
    });
    const r = await kill.run(req(t));
    assert.equal(r.outcome, 'missed');
    assert.match(r.reason!, /pidfd says it exited/);
  });
});

// ---- real pid reuse ------------------------------------------------------------------------------

const NS_LAST_PID = '/proc/sys/kernel/ns_last_pid';
const reuseSkip = !isRoot()
  ? 'SKIPPED: forcing a pid to be reused needs root (writes /proc/sys/kernel/ns_last_pid)'
  : pidfdMissing
    ? `SKIPPED: no pidfd functions: ${pidfdMissing}`
    : false;

/** Spawn `sleep` as pid `want` (free now): set ns_last_pid just below it and fork; retry if another fork got there first. */
async function spawnAsPid(want: number): Promise<ChildProcess | undefined> {
  for (let i = 0; i < 100; i++) {
    writeFileSync(NS_LAST_PID, String(want - 1));
    const c = spawn('sleep', ['1000'], { stdio: 'ignore' });
    children.push(c);
    if (c.pid === want) return c;
    c.kill('SIGKILL');
    await exited(c);
  }
  return undefined;
}

/**
 * Kill A, with the pid handed to a new process B at the hook's moment (A dies, B gets A's pid):
 * the kill must report "missed" with `reason`, and B must live.
 */
async function killWhilePidIsReused(t: { skip(msg: string): void }, hook: 'afterPidfd' | 'beforeSignal', reason: RegExp, why: string): Promise<void> {
  const a = spawnSleep();
  const ta = await targetOf(a, 'sleep');
  let b: ChildProcess | undefined;
  const kill = new KillAction({
    safety: testSafety(),
    hooks: {
      [hook]: async (pid: number) => {
        a.kill('SIGKILL');
        await exited(a);
        await sleep(TICK_MS);
        b = await spawnAsPid(pid);
      },
    },
  });
  const r = await kill.run(req(ta));
  if (!b) return t.skip('could not get the kernel to reuse the pid (a busy host)');
  assert.equal(b.pid, ta.pid, 'B has A\'s pid');
  assert.equal(r.outcome, 'missed');
  assert.match(r.reason!, reason);
  await sleep(50);
  assert.ok(alive(b), why);
  b.kill('SIGKILL');
}

describe('kill: a pid really reused by another process (root)', { skip: reuseSkip }, () => {
  test('A is pinned, dies, B gets its pid before the start-time check (afterPidfd hook): missed, B lives', (t) =>
    killWhilePidIsReused(t, 'afterPidfd', /start time changed/, 'B, the new owner of the pid, is alive'));

  test('A passes every check, then dies and B gets its pid before the signal (beforeSignal hook): the pidfd still names A; B lives', (t) =>
    killWhilePidIsReused(t, 'beforeSignal', /pidfd says it exited/, 'B is alive: the signal went to A\'s pidfd, not to the pid'));
});

// ---- a container's pid 1 is fair game ------------------------------------------------------------

const unshareSkip = !isRoot() ? 'SKIPPED: a pid namespace needs root (unshare --pid)' : !haveCommand('unshare') ? 'SKIPPED: no unshare (util-linux)' : false;

describe('kill: pid 1 of another pid namespace (a container\'s init) is not the host\'s', { skip: unshareSkip }, () => {
  test('it is killed; the host init is not', async () => {
    const u = spawn('unshare', ['--pid', '--fork', '--kill-child', 'sleep', '1000'], { stdio: 'ignore' });
    children.push(u);
    // The sleep is unshare's child: pid 1 inside, some other pid here.
    let inner: number | undefined;
    const deadline = Date.now() + 5000;
    while (!inner && Date.now() < deadline) {
      try {
        const kids = readFileSync(`/proc/${u.pid}/task/${u.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        for (const k of kids) if (readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'sleep') inner = k;
      } catch {
        // not there yet
      }
      if (!inner) await sleep(10);
    }
    assert.ok(inner, 'found the namespace\'s init');
    const status = readFileSync(`/proc/${inner}/status`, 'utf8');
    assert.match(status, new RegExp(`^NSpid:\\s+${inner}\\s+1\\s*$`, 'm'), 'pid 1 in its own namespace');
    const safety = testSafety();
    assert.equal(safety.isHostInit(safety.read(inner)!), false);
    const r = await new KillAction({ safety }).run(req({ pid: inner, startTs: readStartTs(inner) }));
    assert.equal(r.outcome, 'done', r.reason);
    await exited(u);
    assert.equal(existsSync(`/proc/${inner}`), false, 'the namespace init is gone');
  });
});
