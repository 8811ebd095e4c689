/**
 * src/enrich/exe-identity.ts: mountinfo, upper-layer detection (on a fake tree and on a REAL
 * overlay mount when run as root), writability, and exe hashing through /proc/PID/exe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ExeIdentity, exeWritable, findMount, isOnUpperLayer, parseMountinfo, pathInFilesystem, superOption, unescapeMount,
} from '../src/enrich/exe-identity.js';
import { readProcessSync } from '../src/platform/procfs.js';
import { ProcessTable } from '../src/enrich/process-table.js';
import { defaultRegistry } from '../src/fields/index.js';
import type { SyscallEvent } from '../src/events.js';

/** The real sleep binary (GNU coreutils: a copy under another name still works). */
const SLEEP = realpathSync(spawnSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).stdout.trim() || '/bin/sleep');
const sha256File = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
const isRoot = process.geteuid?.() === 0;

const DOCKER_MOUNTINFO = [
  '1589 1402 0:389 / / rw,relatime master:653 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/1f2e/diff,workdir=/var/lib/docker/overlay2/1f2e/work',
  '1590 1589 0:392 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
  '1591 1589 0:393 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755',
  '1597 1589 254:0 /var/lib/docker/volumes/data/_data /data ro,relatime - ext4 /dev/vda rw',
  '1598 1589 254:0 /home/alice/My\\040Tools /opt/my\\040tools rw,relatime - ext4 /dev/vda rw',
  '1599 1589 0:400 / /usr/local/bin rw,relatime - overlay overlay ro,lowerdir=/a:/b',
  'garbage line',
  '',
].join('\n');

test('mountinfo: fields, escapes, bind roots, longest prefix', () => {
  const mounts = parseMountinfo(DOCKER_MOUNTINFO);
  assert.equal(mounts.length, 6);
  assert.equal(unescapeMount('a\\040b\\011c\\134d'), 'a b\tc\\d');
  const root = findMount(mounts, '/usr/bin/xmrig')!;
  assert.equal(root.mountPoint, '/');
  assert.equal(root.fstype, 'overlay');
  assert.equal(superOption(root, 'upperdir'), '/var/lib/docker/overlay2/1f2e/diff');
  assert.equal(findMount(mounts, '/data/x')!.root, '/var/lib/docker/volumes/data/_data');
  assert.equal(pathInFilesystem(findMount(mounts, '/data/x')!, '/data/x'), '/var/lib/docker/volumes/data/_data/x');
  assert.equal(findMount(mounts, '/database')!.mountPoint, '/', '/data is not a prefix of /database');
  assert.equal(findMount(mounts, '/opt/my tools/run')!.root, '/home/alice/My Tools');
  assert.equal(findMount(mounts, '/data')!.options.includes('ro'), true);
});

test('mountinfo: the last mount on a point is the one on top', () => {
  const mounts = parseMountinfo([
    '1 0 8:1 / / rw - ext4 /dev/sda1 rw',
    '2 1 0:50 / /srv rw - ext4 /dev/sdb1 rw',
    '3 2 0:51 / /srv rw - tmpfs tmpfs rw',
  ].join('\n'));
  assert.equal(findMount(mounts, '/srv/x')!.id, 3);
});

test('upper layer on a fake tree: present, absent, whiteout-free lower file, read-only overlay', () => {
  const hostRoot = mkdtempSync(join(tmpdir(), 'mw-upper-'));
  try {
    const upper = join(hostRoot, 'var/lib/docker/overlay2/1f2e/diff');
    mkdirSync(join(upper, 'tmp/.x'), { recursive: true });
    writeFileSync(join(upper, 'tmp/.x/xmrig'), 'ELF');
    mkdirSync(join(upper, 'usr/bin'), { recursive: true });
    const mounts = parseMountinfo(DOCKER_MOUNTINFO);
    assert.deepEqual(isOnUpperLayer(mounts, '/tmp/.x/xmrig', hostRoot), { upper: true, reason: 'in /var/lib/docker/overlay2/1f2e/diff' });
    assert.equal(isOnUpperLayer(mounts, '/usr/bin/nginx', hostRoot).upper, false, 'an image file');
    assert.equal(isOnUpperLayer(mounts, '/usr/bin', hostRoot).upper, false, 'a directory is not an executable');
    assert.equal(isOnUpperLayer(mounts, '/data/run.sh', hostRoot).upper, false, 'a volume is not an overlay');
    assert.equal(isOnUpperLayer(mounts, '/usr/local/bin/tool', hostRoot).reason, 'read-only overlay (no upperdir)');
  } finally {
    rmSync(hostRoot, { recursive: true, force: true });
  }
});

test('writability follows Falco: owner, read-only mounts, mode bits, CAP_DAC_OVERRIDE', () => {
  const file = { uid: 1000, gid: 1000, mode: 0o100755 };
  assert.equal(exeWritable(file, { uid: 1000 }, false), true, 'the owner can chmod it');
  assert.equal(exeWritable(file, { uid: 1000 }, true), true, 'even on a read-only mount (Falco checks owner first)');
  assert.equal(exeWritable(file, { uid: 1001, gid: 1001, capEff: 0n }, false), false);
  assert.equal(exeWritable({ ...file, mode: 0o100775 }, { uid: 1001, gid: 1000, capEff: 0n }, false), true, 'group-writable, same group');
  assert.equal(exeWritable({ ...file, mode: 0o100775 }, { uid: 1001, gid: 5, groups: [1000], capEff: 0n }, false), true, 'supplementary group');
  assert.equal(exeWritable({ ...file, mode: 0o100757 }, { uid: 1001, gid: 1000, capEff: 0n }, false), false, 'in the group: group bits decide');
  assert.equal(exeWritable({ ...file, mode: 0o100757 }, { uid: 1001, gid: 1001, capEff: 0n }, false), true, 'world-writable');
  assert.equal(exeWritable(file, { uid: 0, gid: 0, capEff: 0x1ffffffffffn }, false), true, 'root');
  assert.equal(exeWritable(file, { uid: 0, gid: 0, capEff: 0x1ffffffffffn }, true), false, 'root, read-only mount');
  assert.equal(exeWritable(file, { uid: 0, gid: 0, capEff: 0n }, false), false, 'root without CAP_DAC_OVERRIDE');
  assert.equal(exeWritable(file, { uid: 0, gid: 0 }, false), true, 'root, caps unknown');
  assert.equal(exeWritable(file, {}, false), undefined);
});

async function startAndWait(path: string, args: string[]): Promise<ChildProcess> {
  const child = spawn(path, args, { stdio: 'ignore' });
  await new Promise<void>((res, rej) => {
    child.once('spawn', () => res());
    child.once('error', rej);
  });
  // spawn resolves after fork; wait for the exec to show in /proc.
  for (let i = 0; i < 300; i++) {
    const r = readProcessSync(child.pid!);
    if (r?.exepath === path || r?.exepath?.endsWith(path.split('/').pop()!)) break;
    await new Promise((res) => setTimeout(res, 10));
  }
  return child;
}

function inspectPid(ei: ExeIdentity, pid: number) {
  const r = readProcessSync(pid)!;
  assert.ok(r, `pid ${pid} readable`);
  return {
    r,
    facts: ei.inspect({
      pid, exepath: r.exepath, deleted: r.exeDeleted, memfd: r.exeFromMemfd, root: r.root, mntns: r.mntns,
      uid: r.status?.uids?.[1], gid: r.status?.gids?.[1], groups: r.status?.groups, capEff: r.status?.capEff,
    }),
  };
}

test('a REAL overlay mount: a binary dropped in the upper layer is told from an image binary', async (t) => {
  if (!isRoot) {
    t.skip('not root: mounting an overlay needs root (run the tests as root to cover upper-layer detection)');
    return;
  }
  const base = mkdtempSync(join(tmpdir(), 'mw-ovl-'));
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(base, d));
  for (const d of [lower, upper, work, merged]) mkdirSync(d!);
  copyFileSync(SLEEP, join(lower!, 'imgsleep'));
  copyFileSync(SLEEP, join(lower!, 'touched'));
  copyFileSync(SLEEP, join(lower!, 'gone'));
  copyFileSync(SLEEP, join(upper!, 'dropped'));
  for (const f of ['imgsleep', 'touched', 'gone']) chmodSync(join(lower!, f), 0o755);
  chmodSync(join(upper!, 'dropped'), 0o755);
  const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged!], { encoding: 'utf8' });
  if (m.status !== 0) {
    rmSync(base, { recursive: true, force: true });
    t.skip(`cannot mount an overlay here: ${m.stderr.trim()}`);
    return;
  }
  const children: ChildProcess[] = [];
  try {
    // chmod of an image file copies it up: Falco counts that as the upper layer too.
    chmodSync(join(merged!, 'touched'), 0o750);
    // Deleting an image file leaves a whiteout in the upper layer.
    unlinkSync(join(merged!, 'gone'));

    const img = await startAndWait(join(merged!, 'imgsleep'), ['30']);
    const dropped = await startAndWait(join(merged!, 'dropped'), ['30']);
    const touched = await startAndWait(join(merged!, 'touched'), ['30']);
    children.push(img, dropped, touched);

    const ei = new ExeIdentity();
    const a = inspectPid(ei, img.pid!);
    assert.equal(a.r.exepath, join(merged!, 'imgsleep'));
    assert.equal(a.facts.upperLayer, false, 'image (lower layer) binary');
    const b = inspectPid(ei, dropped.pid!);
    assert.equal(b.facts.upperLayer, true, 'binary dropped in the upper layer');
    assert.equal(b.facts.writable, true, 'root may write it');
    assert.ok(b.facts.ino! > 0);
    const c = inspectPid(ei, touched.pid!);
    assert.equal(c.facts.upperLayer, true, 'copied up by chmod');

    const mounts = ei.mounts(img.pid!, a.r.mntns)!;
    assert.deepEqual(isOnUpperLayer(mounts, join(merged!, 'gone')), { upper: false, reason: 'whiteout in upper layer' });

    // The hash of the upper-layer binary, read through /proc/PID/exe, is the file's.
    assert.equal(await ei.sha256(dropped.pid!), sha256File(SLEEP));

    // And through the process table, as rules see it.
    const table = new ProcessTable({ hashWaitMs: 10_000 });
    const ev = (await table.onNotice({ kind: 'exec', pid: dropped.pid!, tid: dropped.pid!, ts: 1n })) as SyscallEvent;
    table.close();
    const reg = defaultRegistry();
    assert.equal(reg.resolve('syscall', 'proc.is_exe_upper_layer').extract(ev), true);
    assert.equal(reg.resolve('syscall', 'mw.proc.exe_sha256').extract(ev), sha256File(SLEEP));
    const ev2 = (await table.onNotice({ kind: 'exec', pid: img.pid!, tid: img.pid!, ts: 2n })) as SyscallEvent;
    assert.equal(reg.resolve('syscall', 'proc.is_exe_upper_layer').extract(ev2), false);
  } finally {
    for (const ch of children) ch.kill('SIGKILL');
    await Promise.all(children.map((ch) => new Promise((res) => (ch.exitCode !== null || ch.signalCode !== null ? res(undefined) : ch.once('exit', res)))));
    for (let i = 0; i < 5 && spawnSync('umount', [merged!]).status !== 0; i++) await new Promise((res) => setTimeout(res, 100));
    rmSync(base, { recursive: true, force: true });
  }
});

test('hashing: through /proc/PID/exe, once per file version, deleted files too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-hash-'));
  const children: ChildProcess[] = [];
  try {
    const bin = join(dir, 'doomed');
    copyFileSync(SLEEP, bin);
    chmodSync(bin, 0o755);
    const a = await startAndWait(bin, ['30']);
    const b = await startAndWait(bin, ['30']);
    children.push(a, b);
    unlinkSync(bin);
    const ei = new ExeIdentity({ hashConcurrency: 1 });
    const r = readProcessSync(a.pid!)!;
    assert.equal(r.exeDeleted, true);
    assert.equal(r.exepath, bin);
    const want = sha256File(SLEEP);
    const [h1, h2] = await Promise.all([ei.sha256(a.pid!), ei.sha256(b.pid!)]);
    assert.equal(h1, want, 'a deleted file is still hashed');
    assert.equal(h2, want);
    assert.equal(await ei.sha256(a.pid!), want);
    assert.equal(ei.hashStats.hashed, 1, 'one file version, hashed once');
    assert.equal(ei.hashStats.cacheHits, 2);
    const facts = inspectPid(ei, a.pid!).facts;
    assert.equal(facts.upperLayer, false, 'deleted from a plain filesystem: not an overlay');

    const small = new ExeIdentity({ hashMaxBytes: 1000 });
    assert.equal(await small.sha256(a.pid!), undefined);
    assert.equal(small.hashStats.tooLarge, 1);

    assert.equal(await ei.sha256(999_999_999), undefined, 'no such process');
    assert.equal(ei.hashStats.failures, 1);
  } finally {
    for (const ch of children) ch.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a cached mount table is not reused once its namespace number may belong to another namespace', () => {
  const root = mkdtempSync(join(tmpdir(), 'mw-mntns-'));
  const proc = (pid: number, line: string): void => {
    mkdirSync(join(root, String(pid), 'ns'), { recursive: true });
    writeFileSync(join(root, String(pid), 'mountinfo'), line + '\n');
    symlinkSync('mnt:[4026532999]', join(root, String(pid), 'ns', 'mnt'));
    symlinkSync('/', join(root, String(pid), 'root'));
  };
  proc(100, '1 0 0:1 / / rw - overlay overlay rw,upperdir=/u1');
  proc(200, '1 0 0:2 / / rw - ext4 /dev/sda1 rw');
  const exe = new ExeIdentity({ procRoot: root, mountCacheMs: 60_000 });
  assert.equal(exe.mounts(100, 'mnt:[4026532999]')?.[0]?.fstype, 'overlay');
  // Same namespace, reader still alive: the cached table serves.
  assert.equal(exe.mounts(200, 'mnt:[4026532999]')?.[0]?.fstype, 'overlay');
  // The reader is gone: the number may now name a new namespace, so the table is read again.
  rmSync(join(root, '100'), { recursive: true });
  assert.equal(exe.mounts(200, 'mnt:[4026532999]')?.[0]?.fstype, 'ext4');
  rmSync(root, { recursive: true });
});

test('the agent\'s own mount namespace: its table serves after the process that read it is gone', () => {
  const root = mkdtempSync(join(tmpdir(), 'mw-mntns-self-'));
  const proc = (pid: number | 'self', line: string): void => {
    mkdirSync(join(root, String(pid), 'ns'), { recursive: true });
    writeFileSync(join(root, String(pid), 'mountinfo'), line + '\n');
    symlinkSync('mnt:[4026531841]', join(root, String(pid), 'ns', 'mnt'));
    symlinkSync('/', join(root, String(pid), 'root'));
  };
  proc('self', '1 0 0:3 / / rw - xfs /dev/sdb1 rw');
  proc(100, '1 0 0:1 / / rw - overlay overlay rw,upperdir=/u1');
  proc(200, '1 0 0:2 / / rw - ext4 /dev/sda1 rw');
  const exe = new ExeIdentity({ procRoot: root, mountCacheMs: 60_000 });
  assert.equal(exe.mounts(100, 'mnt:[4026531841]', '/')?.[0]?.fstype, 'overlay');
  // A short-lived command read it and is gone; the namespace is ours, so it is the same one.
  rmSync(join(root, '100'), { recursive: true });
  assert.equal(exe.mounts(200, 'mnt:[4026531841]', '/')?.[0]?.fstype, 'overlay', 'served from the cache');
  // Another namespace whose reader is gone is still read again.
  rmSync(join(root, '200', 'ns', 'mnt'));
  symlinkSync('mnt:[4026532999]', join(root, '200', 'ns', 'mnt'));
  mkdirSync(join(root, '300', 'ns'), { recursive: true });
  writeFileSync(join(root, '300', 'mountinfo'), '1 0 0:4 / / rw - btrfs /dev/sdc1 rw\n');
  symlinkSync('mnt:[4026532999]', join(root, '300', 'ns', 'mnt'));
  symlinkSync('/', join(root, '300', 'root'));
  assert.equal(exe.mounts(300, 'mnt:[4026532999]')?.[0]?.fstype, 'btrfs');
  rmSync(join(root, '300'), { recursive: true });
  assert.equal(exe.mounts(200, 'mnt:[4026532999]')?.[0]?.fstype, 'ext4', 'read again: its reader is gone');
  rmSync(root, { recursive: true });
});
