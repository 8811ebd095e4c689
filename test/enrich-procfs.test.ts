/** src/enrich/procfs.ts: parsers, a fake /proc tree, and the real /proc with a real child. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  forEachCgroupLine,
  CAPABILITY_NAMES, capsToText, parseExeLink, parseLoginuid, parseStat, parseStatus, readProcess,
  readProcessSync, readStartTs, splitNul,
} from '../src/platform/procfs.js';
import { FAKE_BTIME, FakeProc, statLine } from './helpers/fakeproc.js';

test('stat: fields counted from the last parenthesis', () => {
  const s = parseStat(statLine({ pid: 42, comm: 'a) b (c', ppid: 7, starttime: 12345, pgrp: 40, session: 30 }));
  assert.ok(s);
  assert.equal(s.pid, 42);
  assert.equal(s.comm, 'a) b (c');
  assert.equal(s.state, 'S');
  assert.equal(s.ppid, 7);
  assert.equal(s.pgrp, 40);
  assert.equal(s.session, 30);
  assert.equal(s.tty_nr, 0);
  assert.equal(s.starttime, 12345);
  assert.equal(s.utime, 7);
  assert.equal(s.stime, 3);
});

test('stat: a real kernel line, with a comm holding spaces and ")"', () => {
  const line = '3174 (Web Content)) S 2921 2710 2710 0 -1 4194560 172370 0 1 0 3541 735 0 0 20 0 27 0 12010 2974736384 60540 18446744073709551615 1 1 0 0 0 0 0 16781312 1082131708 0 0 0 17 3 0 0 0 0 0 0 0 0 0 0 0 0 0';
  const s = parseStat(line);
  assert.ok(s);
  assert.equal(s.comm, 'Web Content)');
  assert.equal(s.ppid, 2921);
  assert.equal(s.starttime, 12010);
  assert.equal(s.num_threads, 27);
});

test('stat: garbage and truncated text give undefined, never a throw', () => {
  for (const bad of ['', 'garbage', '12 (x', '12 (x) S 1 2', 'x (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20', '\0\0\0', '12 (x) S a b c d e f g h i j k l m n o p q r s t u v w']) {
    assert.equal(parseStat(bad), undefined, JSON.stringify(bad));
  }
});

test('status: ids, namespaces and capability masks', () => {
  const st = parseStatus([
    'Name:\tnginx', 'Tgid:\t4133', 'PPid:\t4120', 'Uid:\t1000\t0\t0\t0', 'Gid:\t1000\t1001\t1001\t1001',
    'Groups:\t4 27 1000 ', 'NStgid:\t4133\t9', 'NSpid:\t4133\t9', 'NSpgid:\t4120\t7', 'NSsid:\t4100\t1',
    'CapInh:\t0000000000000000', 'CapPrm:\t00000000a80425fb', 'CapEff:\t00000000a80425fb', 'junk line', 'Weird:',
  ].join('\n'));
  assert.equal(st.name, 'nginx');
  assert.equal(st.tgid, 4133);
  assert.equal(st.ppid, 4120);
  assert.deepEqual(st.uids, [1000, 0, 0, 0]);
  assert.deepEqual(st.gids, [1000, 1001, 1001, 1001]);
  assert.deepEqual(st.groups, [4, 27, 1000]);
  assert.deepEqual(st.nspid, [4133, 9]);
  assert.deepEqual(st.nssid, [4100, 1]);
  assert.equal(st.capEff, 0xa80425fbn);
  assert.equal(st.capInh, 0n);
});

test("capabilities in Falco's text form, bit numbers as in linux/capability.h", () => {
  assert.equal(capsToText(0n), '');
  assert.equal(capsToText(1n), 'CAP_CHOWN');
  assert.equal(capsToText(3n), 'CAP_CHOWN CAP_DAC_OVERRIDE');
  assert.equal(capsToText(1n << 21n), 'CAP_SYS_ADMIN');
  assert.equal(capsToText(1n << 40n), 'CAP_CHECKPOINT_RESTORE');
  // Docker's default capability set.
  assert.equal(capsToText(0xa80425fbn),
    'CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID CAP_SETUID CAP_SETPCAP ' +
    'CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_SYS_CHROOT CAP_MKNOD CAP_AUDIT_WRITE CAP_SETFCAP');
  const spot: Record<number, string> = { 7: 'CAP_SETUID', 12: 'CAP_NET_ADMIN', 13: 'CAP_NET_RAW', 16: 'CAP_SYS_MODULE', 19: 'CAP_SYS_PTRACE', 24: 'CAP_SYS_RESOURCE', 31: 'CAP_SETFCAP', 37: 'CAP_AUDIT_READ', 38: 'CAP_PERFMON', 39: 'CAP_BPF' };
  for (const [bit, name] of Object.entries(spot)) assert.equal(CAPABILITY_NAMES[Number(bit)], name);
  // Bits past the last known capability are left out, not invented.
  assert.equal(capsToText(1n << 45n), '');
});

test('capability names agree with capsh --decode', (t) => {
  const probe = spawnSync('capsh', ['--decode=000001ffffffffff'], { encoding: 'utf8' });
  if (probe.status !== 0 || !probe.stdout.includes('=')) {
    t.skip('capsh is not installed');
    return;
  }
  const theirs = probe.stdout.trim().split('=')[1]!.split(',').map((s) => s.toUpperCase());
  assert.deepEqual(capsToText(0x1ffffffffffn).split(' '), theirs);
});

test('cmdline, exe link and loginuid helpers', () => {
  assert.deepEqual(splitNul(Buffer.from('xmrig\0-o\0pool:3333\0')), ['xmrig', '-o', 'pool:3333']);
  assert.deepEqual(splitNul(Buffer.from('a\0\0b\0')), ['a', '', 'b']);
  assert.deepEqual(splitNul(Buffer.alloc(0)), []);
  // setproctitle-style: one string, no NULs.
  assert.deepEqual(splitNul(Buffer.from('nginx: worker process')), ['nginx: worker process']);
  assert.deepEqual(parseExeLink('/tmp/x (deleted)'), { exepath: '/tmp/x', deleted: true, memfd: false });
  assert.deepEqual(parseExeLink('/memfd:payload (deleted)'), { exepath: '/memfd:payload', deleted: true, memfd: true });
  assert.deepEqual(parseExeLink('/usr/bin/sleep'), { exepath: '/usr/bin/sleep', deleted: false, memfd: false });
  assert.equal(parseLoginuid('4294967295'), -1);
  assert.equal(parseLoginuid('1000\n'), 1000);
  assert.equal(parseLoginuid('junk'), undefined);
});

test('a fake /proc tree: every field, env only when asked', async () => {
  const fp = new FakeProc();
  try {
    fp.add({
      pid: 4133, ppid: 4120, comm: 'x m)rig', argv: ['./xmrig', '-o', 'stratum+tcp://pool:3333'], exe: '/tmp/.x/xmrig (deleted)',
      cwd: '/tmp/.x', uid: 1000, gid: 1000, starttime: 250, loginuid: 1000, environ: ['WALLET=abc'],
      cgroup: ['12:pids:/docker/3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e', '0::/'], nspid: [4133, 9],
    });
    const sync = readProcessSync(4133, { procRoot: fp.root, clkTck: 100 });
    const r = await readProcess(4133, { procRoot: fp.root, clkTck: 100, env: true });
    for (const x of [sync, r]) {
      assert.ok(x);
      assert.equal(x.comm, 'x m)rig');
      assert.equal(x.stat.comm, 'x m)rig');
      assert.deepEqual(x.argv, ['./xmrig', '-o', 'stratum+tcp://pool:3333']);
      assert.equal(x.exepath, '/tmp/.x/xmrig');
      assert.equal(x.exeDeleted, true);
      assert.equal(x.exeFromMemfd, false);
      assert.equal(x.cwd, '/tmp/.x');
      assert.equal(x.loginuid, 1000);
      assert.deepEqual(x.status?.nspid, [4133, 9]);
      assert.equal(x.cgroups?.length, 2);
      // btime + 250 ticks at 100 Hz = btime + 2.5 s.
      assert.equal(x.startTs, BigInt(FAKE_BTIME) * 1_000_000_000n + 2_500_000_000n);
    }
    assert.equal(sync!.env, undefined, 'environ is read only when asked');
    assert.deepEqual(r!.env, ['WALLET=abc']);
  } finally {
    fp.cleanup();
  }
});

test('a fake /proc tree: vanished, garbage and half-missing entries', async () => {
  const fp = new FakeProc();
  try {
    fp.add({ pid: 10, ppid: 1, comm: 'bad', statText: 'this is not a stat line' });
    fp.add({ pid: 11, ppid: 1, comm: 'half', omit: ['status', 'cmdline', 'comm', 'exe', 'cwd', 'loginuid', 'cgroup'] });
    fp.add({ pid: 12, ppid: 2, comm: 'kworker/0:1', argv: [] });
    fp.add({ pid: 13, ppid: 1, comm: 'liar', statText: statLine({ pid: 99, comm: 'liar', ppid: 1 }) });
    assert.equal(readProcessSync(10, { procRoot: fp.root }), undefined);
    assert.equal(await readProcess(10, { procRoot: fp.root }), undefined);
    assert.equal(await readProcess(999, { procRoot: fp.root }), undefined, 'no such pid');
    assert.equal(readProcessSync(13, { procRoot: fp.root }), undefined, 'stat of another pid');
    const half = await readProcess(11, { procRoot: fp.root });
    assert.ok(half);
    assert.equal(half.comm, 'half', 'comm from stat when /proc/PID/comm is missing');
    assert.equal(half.argv, undefined);
    assert.equal(half.exepath, undefined);
    assert.equal(half.status, undefined);
    const kt = readProcessSync(12, { procRoot: fp.root });
    assert.deepEqual(kt?.argv, []);
    assert.equal(kt?.comm, 'kworker/0:1');
    assert.equal(await readProcess(1, { procRoot: join(fp.root, 'nope') }), undefined, 'no proc root at all');
  } finally {
    fp.cleanup();
  }
});

test('the real /proc: a child we spawned, read back', async () => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'mw-procfs-')));
  const child = spawn('sleep', ['5'], { cwd: dir, stdio: 'ignore' });
  try {
    await new Promise<void>((res, rej) => {
      child.once('spawn', () => res());
      child.once('error', rej);
    });
    const pid = child.pid!;
    // spawn resolves after fork, possibly before exec: wait until the new image shows.
    let r = await readProcess(pid, { env: true });
    for (let i = 0; i < 200 && r?.comm !== 'sleep'; i++) {
      await new Promise((res) => setTimeout(res, 10));
      r = await readProcess(pid, { env: true });
    }
    assert.ok(r, 'child readable');
    assert.equal(r.comm, 'sleep');
    assert.deepEqual(r.argv, ['sleep', '5']);
    assert.match(r.exepath ?? '', /\/sleep$/);
    assert.equal(r.exeDeleted, false);
    assert.equal(r.cwd, dir);
    assert.equal(r.stat.ppid, process.pid);
    assert.equal(r.status?.ppid, process.pid);
    assert.equal(r.status?.uids?.[1], process.geteuid!());
    assert.ok(r.env && r.env.length > 0);
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const diff = r.startTs > nowNs ? r.startTs - nowNs : nowNs - r.startTs;
    assert.ok(diff < 30_000_000_000n, `start_ts within seconds of now (off by ${diff} ns)`);
    assert.equal(readStartTs(pid), r.startTs, 'start time is stable across reads');
    assert.ok(r.cgroups && r.cgroups.length > 0);
    assert.ok(r.mntns?.startsWith('mnt:['));
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the real /proc: an exited process (a zombie) read the short way gives what the full read gives', async () => {
  // A child that has exited and that nobody has reaped yet: sh starts `sleep`, which exits at
  // once, and sh sleeps on without waiting for it.
  const parent = spawn('sh', ['-c', 'true & exec sleep 5'], { stdio: 'ignore' });
  try {
    await new Promise<void>((res, rej) => {
      parent.once('spawn', () => res());
      parent.once('error', rej);
    });
    let zombie: number | undefined;
    for (let i = 0; i < 200 && zombie === undefined; i++) {
      await new Promise((res) => setTimeout(res, 10));
      const children = spawnSync('ps', ['-o', 'pid=,stat=', '--ppid', String(parent.pid)], { encoding: 'utf8' }).stdout;
      const z = children.split('\n').map((l) => l.trim().split(/\s+/)).find(([, st]) => st?.startsWith('Z'));
      if (z) zombie = Number(z[0]);
    }
    assert.ok(zombie, 'a zombie child to read');
    const full = readProcessSync(zombie, { env: true });
    const short = readProcessSync(zombie, { env: true, exited: true });
    assert.ok(full && short);
    assert.equal(short.comm, full.comm);
    assert.equal(short.stat.state, 'Z');
    assert.deepEqual(short.argv, full.argv, 'a zombie has no command line left');
    assert.deepEqual(short.env, full.env);
    assert.equal(full.exepath, undefined, 'nor an exe');
    assert.equal(full.cwd, undefined, 'nor a cwd');
    assert.deepEqual(short.status?.uids, full.status?.uids);
    assert.equal(short.loginuid, full.loginuid);
    assert.deepEqual(short.cgroups, full.cgroups);
    assert.equal(short.startTs, full.startTs);
    assert.equal(readProcessSync(4_000_000, { exited: true }), undefined, 'reaped: nothing');
  } finally {
    parent.kill('SIGKILL');
  }
});

test('forEachCgroupLine: each line as hierarchy, controllers and the whole path (colons kept); lines without two colons skipped', () => {
  const seen: string[][] = [];
  const text = '12:cpu,cpuacct:/kubepods/pod1/abc\n0::/system.slice/a:b.scope\nnot a cgroup line\n3:name=systemd:/user.slice\n\n';
  forEachCgroupLine(text, (h, c, p) => seen.push([h, c, p]));
  assert.deepEqual(seen, [
    ['12', 'cpu,cpuacct', '/kubepods/pod1/abc'],
    ['0', '', '/system.slice/a:b.scope'],
    ['3', 'name=systemd', '/user.slice'],
  ]);
});
