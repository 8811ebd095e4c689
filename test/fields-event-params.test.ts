/**
 * evt.arg, evt.arg[N], evt.rawarg and evt.args over the raw numbers and paths a driver captures,
 * rendered by libs' event table (src/fields/event-params.ts): each expected text is libs' exact
 * spelling for that parameter type and flag table (sinsp_evt::get_param_as_str).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SyscallEvent } from '../src/events.js';
import { FieldRegistry } from '../src/fields/registry.js';
import { syscallFields } from '../src/fields/syscall.js';
import { EXIT_PARAMS, formatInt } from '../src/fields/event-params.js';
import { CLONE_FLAGS, renderFlagTable } from '../src/fields/flags.js';

const registry = new FieldRegistry([{ source: 'syscall', fields: syscallFields }]);

function get(field: string, ev: SyscallEvent) {
  const m = /^([^[]+)(?:\[(.*)\])?$/.exec(field)!;
  return registry.resolve('syscall', m[1]!, m[2]).extract(ev);
}

const ev = (type: string, args: Record<string, string | number>, extra: Partial<SyscallEvent> = {}): SyscallEvent => ({
  source: 'syscall', type, ts: 1n, res: typeof args.res === 'number' ? args.res : 0, args,
  proc: { pid: 10, name: 'ln', cwd: '/home/bob', uid: 1000, user: 'bob' }, ...extra,
});

test('link, symlink, rename, unlink and mkdir: paths made absolute as libs resolves them, raw in evt.rawarg', () => {
  const hard = ev('linkat', { res: 0, olddir: -100, oldpath: '/etc/shadow', newdir: -100, newpath: 'sh', flags: 0 });
  assert.equal(get('evt.arg.oldpath', hard), '/etc/shadow');
  assert.equal(get('evt.arg.newpath', hard), '/home/bob/sh', 'relative to the cwd for AT_FDCWD');
  assert.equal(get('evt.rawarg.newpath', hard), 'sh');
  assert.equal(get('evt.arg.flags', hard), '0', 'no name for 0: the number');
  assert.equal(get('evt.arg[2]', hard), '/etc/shadow', 'evt.arg[N] counts in libs order: res, olddir, oldpath');
  assert.equal(get('evt.arg.olddir', hard), 'AT_FDCWD');
  assert.equal(get('evt.args', hard), 'res=0 olddir=-100(AT_FDCWD) oldpath=/etc/shadow newdir=-100(AT_FDCWD) newpath=sh(/home/bob/sh) flags=0');
  assert.equal(get('evt.arg.flags', ev('linkat', { flags: 0x400 })), 'AT_SYMLINK_FOLLOW');
  assert.equal(get('evt.arg.flags', ev('linkat', { flags: 0x1400 })), 'AT_SYMLINK_FOLLOW|AT_EMPTY_PATH');

  // A directory fd the enricher knew: the relative path is made absolute against it.
  const sym = ev('symlinkat', { res: 0, target: '/etc/shadow', linkdirfd: 5, linkpath: 'x/y' }, { argFds: { linkdirfd: { num: 5, type: 'directory', name: '/tmp/d' } } });
  assert.equal(get('evt.arg.target', sym), '/etc/shadow', 'a symlink target is text, never resolved');
  assert.equal(get('evt.arg.linkpath', sym), '/tmp/d/x/y');
  assert.equal(get('evt.arg.linkdirfd', sym), '<d>/tmp/d');
  // An unknown directory fd: no guess, the path as given.
  assert.equal(get('evt.arg.linkpath', { ...sym, argFds: undefined }), 'x/y');
  assert.equal(get('evt.arg.linkpath', ev('symlink', { target: 'a', linkpath: '../b' })), '/home/b', 'resolved like a path: .. folded');

  assert.equal(get('evt.arg.flags', ev('renameat2', { flags: 1 })), 'RENAME_NOREPLACE');
  assert.equal(get('evt.arg.flags', ev('renameat2', { flags: 6 })), 'RENAME_EXCHANGE|RENAME_WHITEOUT');
  assert.equal(get('evt.arg.flags', ev('unlinkat', { flags: 0x200 })), 'AT_REMOVEDIR');
  assert.equal(get('evt.arg.name', ev('unlinkat', { dirfd: -100, name: '.bash_history', flags: 0 })), '/home/bob/.bash_history');
  assert.equal(get('evt.arg.mode', ev('mkdirat', { mode: 0o755 })), '1ED', 'mkdir modes print in hex (PF_HEX), as libs does');
  assert.equal(get('evt.arg.path', ev('mkdir', { path: '/usr/bin/.x' })), '/usr/bin/.x');
});

test('fds: the event fd and argument fds as <typechar>name, AT_FDCWD, errno names on failure', () => {
  const conn = ev('connect', { res: 0, tuple: '10.0.0.1:40000->198.51.100.7:2222', fd: 3 }, {
    fd: { num: 3, type: 'ipv4', l4proto: 'tcp', cip: '10.0.0.1', cport: 40000, sip: '198.51.100.7', sport: 2222 },
  });
  assert.equal(get('evt.arg.fd', conn), '<4t>10.0.0.1:40000->198.51.100.7:2222');
  assert.equal(get('evt.rawarg.fd', conn), 3);
  assert.equal(get('evt.arg.fd', ev('openat', { fd: -13, dirfd: -100, name: '/etc/shadow', flags: 0 })), 'EACCES');
  assert.equal(get('evt.arg.fd', ev('close', { res: 0, fd: 9 })), '9', 'an fd nothing knows: the number');
  const dup = ev('dup2', { res: 1, oldfd: 4, newfd: 1 }, { argFds: { oldfd: { num: 4, type: 'ipv6', l4proto: 'udp', name: '::1:5->::1:53' } } });
  assert.equal(get('evt.arg.oldfd', dup), '<6u>::1:5->::1:53');
});

test('enumerations and flag sets: ptrace, socket, memfd, setns, unshare, mount, umount2, prctl, bpf', () => {
  assert.equal(get('evt.arg.request', ev('ptrace', { request: 0, pid: 0 })), 'PTRACE_TRACEME');
  assert.equal(get('evt.arg.request', ev('ptrace', { request: 16, pid: 77 })), 'PTRACE_ATTACH');
  assert.equal(get('evt.arg.request', ev('ptrace', { request: 4 })), 'PTRACE_POKETEXT');
  assert.equal(get('evt.rawarg.request', ev('ptrace', { request: 16 })), 16);
  assert.equal(get('evt.arg.pid', ev('ptrace', { request: 16, pid: 77 }, { argNames: { pid: 'sleep' } })), 'sleep', "a pid shows the process's name");
  assert.equal(get('evt.arg.domain', ev('socket', { fd: 3, domain: 17, type: 3, proto: 768 })), 'AF_PACKET');
  assert.equal(get('evt.arg.flags', ev('memfd_create', { fd: 3, name: 'x', flags: 3 })), 'MFD_CLOEXEC|MFD_ALLOW_SEALING');
  assert.equal(get('evt.arg.nstype', ev('setns', { res: 0, fd: 3, nstype: 0x40000000 })), 'CLONE_NEWNET');
  assert.equal(get('evt.arg.flags', ev('unshare', { res: 0, flags: 0x40020000 })), 'CLONE_NEWNET|CLONE_NEWNS', "in libs' table order");
  assert.equal(get('evt.arg.flags', ev('mount', { flags: 4096 | 16384 })), 'BIND|REC');
  assert.equal(get('evt.arg.flags', ev('umount2', { flags: 2 })), 'DETACH');
  assert.equal(get('evt.arg.option', ev('prctl', { option: 15 })), 'PR_SET_NAME');
  assert.equal(get('evt.arg.option', ev('prctl', { option: 33 })), 'PR_MCE_KILL|PR_MCE_KILL', "libs' table has it twice");
  assert.equal(get('evt.arg.cmd', ev('bpf', { fd: 3, cmd: 5 })), 'BPF_PROG_LOAD');
  assert.equal(get('evt.arg.flags', ev('openat', { flags: 0o101 })), 'O_CREAT|O_WRONLY');
  assert.equal(get('evt.arg.mode', ev('openat', { mode: 0o600 })), '0600');
  // libs stops at the entry equal to the whole value: CLONE_FS alone, not also later aliases.
  assert.equal(renderFlagTable(0x200, CLONE_FLAGS), 'CLONE_FS');
});

test('uids and gids: the enricher\'s name, the caller\'s own, <NONE> for -1', () => {
  const su = ev('setuid', { res: 0, uid: 65534 }, { argNames: { uid: 'nobody' } });
  assert.equal(get('evt.arg.uid', su), 'nobody');
  assert.equal(get('evt.rawarg.uid', su), 65534);
  assert.equal(get('evt.arg.uid', ev('setuid', { uid: 1000 })), 'bob');
  assert.equal(get('evt.arg.uid', ev('setuid', { uid: -1 })), '<NONE>');
  assert.equal(get('evt.arg.euid', ev('setresuid', { ruid: -1, euid: 0, suid: -1 }, { argNames: { euid: 'root' } })), 'root');
  assert.equal(get('evt.args', ev('setresuid', { res: 0, ruid: -1, euid: 0, suid: -1 }, { argNames: { euid: 'root' } })), 'res=0 ruid=-1(<NONE>) euid=0(root) suid=-1(<NONE>)');
});

test('print formats: %#o, %X and %d as libs', () => {
  assert.equal(formatInt(0o644, 'oct'), '0644');
  assert.equal(formatInt(0, 'oct'), '0');
  assert.equal(formatInt(255, 'hex'), 'FF');
  assert.equal(formatInt(-1, 'dec'), '-1');
  // Every table entry names a parameter once.
  for (const [type, ps] of Object.entries(EXIT_PARAMS)) assert.equal(new Set(ps.map((p) => p.name)).size, ps.length, type);
});
