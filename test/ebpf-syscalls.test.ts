/**
 * The eBPF driver's generic syscall path, live (root, BTF; skipped with the reason otherwise): a
 * child (fixtures/ebpf/syscall-actions.c) makes directories, links, symlinks, renames, unlinks,
 * opens files for reading, opens a listener and accepts on it, dups, setns, unshare, mount and
 * umount2; each arrives as a SyscallEvent of Falco's event type with libs' parameter names and raw
 * values, and the fd it acts on described. Opens for reading are filtered in the kernel by the
 * prefixes and process names given: one under no prefix never arrives.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Event, SyscallEvent } from '../src/events.js';
import { loadEbpfAddon } from '../src/sources/ebpf/addon.js';
import { EbpfSource } from '../src/sources/ebpf/index.js';
import { compileC, sleep } from './helpers/agent-run.js';
import { haveCommand, isRoot } from './helpers/live.js';
import { FIXTURES } from './helpers/paths.js';

const addon = loadEbpfAddon();
const SKIP = (isRoot() ? undefined : 'needs root (loading BPF programs)')
  ?? ('error' in addon ? `the eBPF driver is not built here: ${addon.error}` : undefined)
  ?? (existsSync('/sys/kernel/btf/vmlinux') ? undefined : 'this kernel has no BTF (/sys/kernel/btf/vmlinux)')
  ?? (haveCommand('cc') ? undefined : 'needs cc')
  ?? ('error' in addon || addon.addon.setReadPolicy ? undefined : 'the eBPF addon predates setReadPolicy (rebuild: node scripts/build-ebpf.cjs)');

const TYPES = new Set(['mkdir', 'mkdirat', 'open', 'openat', 'symlink', 'symlinkat', 'link', 'linkat', 'rename', 'renameat2', 'unlink', 'unlinkat', 'rmdir',
  'socket', 'bind', 'listen', 'accept4', 'dup', 'dup2', 'dup3', 'setns', 'unshare', 'mount', 'umount2']);

let WORK = '';
let BIN = '';

before(() => {
  if (SKIP) return;
  WORK = mkdtempSync(join(tmpdir(), 'mw-p17-sys-'));
  chmodSync(WORK, 0o755);
  mkdirSync(join(WORK, 'watched'));
  mkdirSync(join(WORK, 'unwatched'));
  writeFileSync(join(WORK, 'watched', 'secret'), 'x');
  writeFileSync(join(WORK, 'unwatched', 'plain'), 'y');
  BIN = join(WORK, 'syscall-actions');
  compileC(join(FIXTURES, 'ebpf/syscall-actions.c'), BIN);
});

after(() => {
  if (WORK) rmSync(WORK, { recursive: true, force: true });
});

test('link, symlink, unlink, rename, mkdir, open-read, sockets, dup, setns, unshare, mount arrive with libs\' parameters', { skip: SKIP }, async () => {
  const events: SyscallEvent[] = [];
  const src = new EbpfSource({
    lookup: () => undefined,
    containerOf: () => undefined,
    wanted: (t) => TYPES.has(t),
    openRead: 'auto',
    readFilter: { mode: 'prefix', prefixes: [`${WORK}/watched/`], comms: [], unbounded: [], readers: ['test'] },
    onError: (m) => assert.fail(m),
  });
  src.onEvents((ev: Event) => {
    if (ev.source === 'syscall') events.push(ev as SyscallEvent);
  });
  await src.start(() => undefined);
  let out = '';
  let pid = 0;
  try {
    // Through a shell, so its pid is known before its events are read.
    out = execFileSync('/bin/sh', ['-c', `echo pid $$; exec ${BIN} ${WORK}`], { encoding: 'utf8' });
    pid = Number(/^pid (\d+)/m.exec(out)![1]);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !events.some((e) => e.proc.pid === pid && e.type === 'umount2')) await sleep(50);
  } finally {
    await src.stop();
  }
  assert.match(out, /^ok$/m);
  const port = Number(/^port (\d+)/m.exec(out)![1]);
  const mine = events.filter((e) => e.proc.pid === pid);
  const one = (type: string, pred: (e: SyscallEvent) => boolean = () => true): SyscallEvent => {
    const found = mine.filter((e) => e.type === type && pred(e));
    assert.equal(found.length, 1, `${type}: expected one event, got ${found.length} (types seen: ${[...new Set(mine.map((e) => e.type))].join(', ')})`);
    return found[0]!;
  };
  assert.deepEqual(one('mkdir', (e) => e.args?.path === 'd1').args, { res: 0, path: 'd1', mode: 0o750 });
  assert.deepEqual(one('mkdirat').args, { res: 0, dirfd: -100, path: 'd2', mode: 0o700 });
  assert.deepEqual(one('symlink').args, { res: 0, target: 'watched/secret', linkpath: 'sl1' });
  assert.deepEqual(one('symlinkat').args, { res: 0, target: 'watched/secret', linkdirfd: -100, linkpath: 'sl2' });
  assert.deepEqual(one('link').args, { res: 0, oldpath: 'watched/secret', newpath: 'hl1' });
  assert.deepEqual(one('linkat').args, { res: 0, olddir: -100, oldpath: 'watched/secret', newdir: -100, newpath: 'hl2', flags: 0 });
  assert.deepEqual(one('rename').args, { res: 0, oldpath: 'hl1', newpath: 'hl1r' });
  assert.deepEqual(one('renameat2').args, { res: 0, olddirfd: -100, oldpath: 'hl2', newdirfd: -100, newpath: 'hl2r', flags: 1 });
  assert.deepEqual(one('unlink').args, { res: 0, path: 'hl1r' });
  assert.deepEqual(one('unlinkat').args, { res: 0, dirfd: -100, name: 'd2', flags: 0x200 });
  assert.deepEqual(one('rmdir').args, { res: 0, path: 'd1' });
  // Relative paths come with the working directory they are relative to.
  assert.equal(one('link').proc.cwd, WORK);

  // Opens for reading: the relative one and the one under the prefix come; the other does not.
  const reads = mine.filter((e) => (e.type === 'open' || e.type === 'openat') && typeof e.args?.name === 'string' && e.args.name.includes('watched/'));
  assert.deepEqual(reads.map((e) => e.args!.name).sort(), [`${WORK}/watched/secret`, 'watched/secret']);
  const abs = reads.find((e) => e.args!.name === `${WORK}/watched/secret`)!;
  assert.equal(abs.args!.flags, 0);
  assert.equal(abs.fd?.name, `${WORK}/watched/secret`);
  assert.equal(abs.fd?.type, 'file');

  // The listener's socket is the one bound (the client's comes later).
  const bindFd = mine.find((e) => e.type === 'bind')?.args?.fd;
  const sock = one('socket', (e) => e.args?.fd === bindFd);
  assert.deepEqual({ domain: sock.args!.domain, type: sock.args!.type, proto: sock.args!.proto }, { domain: 2, type: 1, proto: 0 });
  const sfd = sock.args!.fd as number;
  assert.ok(sfd >= 0 && sock.fd?.num === sfd && sock.fd?.type === 'ipv4');
  assert.deepEqual(one('bind').args, { res: 0, addr: `127.0.0.1:${port}`, fd: sfd });
  assert.deepEqual(one('listen').args, { res: 0, fd: sfd, backlog: 7 });
  const acc = one('accept4');
  assert.equal(acc.fd?.sip, '127.0.0.1');
  assert.equal(acc.fd?.sport, port);
  assert.equal(acc.fd?.is_server, true);
  assert.equal(acc.args!.tuple, `127.0.0.1:${acc.fd?.cport}->127.0.0.1:${port}`);
  assert.equal(acc.args!.flags, 0o2000000);
  const afd = acc.args!.fd as number;
  const dup = one('dup', (e) => e.args?.oldfd === afd);
  assert.equal(dup.args!.oldfd, afd);
  assert.equal(dup.fd?.num, afd);
  assert.equal(dup.fd?.type, 'ipv4');
  assert.ok((dup.args!.res as number) > afd);
  assert.deepEqual(one('dup2', (e) => e.args?.newfd === 100).args, { res: 100, oldfd: dup.args!.res, newfd: 100 });
  assert.deepEqual(one('dup3', (e) => e.args?.newfd === 101).args, { res: 101, oldfd: dup.args!.res, newfd: 101, flags: 0o2000000 });
  const ns = one('setns');
  assert.equal(ns.args!.nstype, 0x04000000);
  // A namespace file lives in no mounted tree: the kernel gives its inode, not a path (the fd
  // table's open of /proc/self/ns/uts names it).
  assert.equal(ns.fd?.num, ns.args!.fd);
  assert.ok((ns.fd?.ino ?? 0) > 0);
  assert.deepEqual(one('unshare').args, { res: 0, flags: 0x04000000 });
  assert.deepEqual(one('mount').args, { res: 0, dev: 'mwtest', dir: 'mnt', type: 'tmpfs', flags: 2 });
  assert.deepEqual(one('umount2').args, { res: 0, name: 'mnt', flags: 2 });
});

test('opens for reading by a process the rules name come, whatever the path; others do not', { skip: SKIP }, async () => {
  const events: SyscallEvent[] = [];
  const src = new EbpfSource({
    lookup: () => undefined,
    containerOf: () => undefined,
    wanted: (t) => t === 'openat' || t === 'open',
    openRead: 'auto',
    onError: (m) => assert.fail(m),
  });
  src.onEvents((ev: Event) => {
    if (ev.source === 'syscall') events.push(ev as SyscallEvent);
  });
  await src.start(() => undefined);
  const plain = join(WORK, 'unwatched', 'plain');
  const readers = (): string[] => events.filter((e) => e.args?.name === plain).map((e) => e.proc.name).sort();
  try {
    // No filter yet: nothing read is shipped.
    execFileSync('cat', [plain]);
    src.setReadFilter({ mode: 'prefix', prefixes: [], comms: ['cat'], unbounded: [], readers: ['test'] });
    execFileSync('head', ['-c1', plain]);
    execFileSync('cat', [plain]);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && readers().length === 0) await sleep(50);
    // Let a late record of head's (which must not come) arrive before judging.
    await sleep(500);
  } finally {
    await src.stop();
  }
  assert.deepEqual(readers(), ['cat']);
});
