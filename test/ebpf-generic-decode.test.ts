/**
 * The generic syscall path's user-space half (src/sources/ebpf/syscalls.ts): a record as the
 * kernel sends it becomes Falco's event type with libs' parameter names, raw values, and the fd it
 * acts on; the descriptors tell the kernel which arguments are strings and which fd to describe.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProcessInfo } from '../src/events.js';
import type { SysRecord } from '../src/sources/ebpf/decode.js';
import { SYS_GENERIC, SYS_ON, sysDescriptors, sysFlags, toSyscallEvent } from '../src/sources/ebpf/syscalls.js';

const proc: ProcessInfo = { pid: 7, name: 'x' };

function rec(nr: number, over: Partial<SysRecord>): SysRecord {
  return {
    kind: 'sys', pid: 7, tid: 7, uid: 0, ts: 1n, start: 0n, comm: 'x', nr, ret: 0, args: [0n, 0n, 0n, 0n, 0n, 0n],
    str: '', strs: [], path: '', buf: undefined, family: 0, proto: 0, sport: 0, dport: 0, saddr: '', daddr: '', dev: 0, ino: 0, netns: 0, ruid: 0, euid: 0,
    ...over,
  };
}

test('linkat: both paths in argument order, dirfds signed, flags raw; the cwd of a relative path', () => {
  const ev = toSyscallEvent(rec(265, { args: [0xffffff9cn, 1n, 5n, 3n, 0x400n, 0n], strs: ['/etc/shadow', 'x'], path: '/home/u' }), proc)!;
  assert.equal(ev.type, 'linkat');
  assert.deepEqual(ev.args, { res: 0, olddir: -100, oldpath: '/etc/shadow', newdir: 5, newpath: 'x', flags: 0x400 });
  assert.equal(ev.proc.cwd, '/home/u');
  assert.equal(proc.cwd, undefined, 'the table\'s entry is not changed');
});

test('socket: the returned fd described by its family; a packet socket has no addresses', () => {
  const packet = toSyscallEvent(rec(41, { ret: 4, args: [17n, 3n, 0x300n, 0n, 0n, 0n], family: 17, ino: 99 }), proc)!;
  assert.deepEqual(packet.args, { fd: 4, domain: 17, type: 3, proto: 0x300 });
  assert.deepEqual(packet.fd, { num: 4, ino: 99 });
  const unix = toSyscallEvent(rec(41, { ret: 5, args: [1n, 1n, 0n, 0n, 0n, 0n], family: 1 }), proc)!;
  assert.equal(unix.fd?.type, 'unix');
});

test('accept4: this process is the server; the tuple reads client to server', () => {
  const ev = toSyscallEvent(rec(288, { ret: 6, args: [3n, 0n, 0n, 0x80000n, 0n, 0n], family: 2, proto: 6, saddr: '10.0.0.1', sport: 22, daddr: '10.0.0.9', dport: 40000 }), proc)!;
  assert.deepEqual(ev.args, { fd: 6, tuple: '10.0.0.9:40000->10.0.0.1:22', flags: 0x80000 });
  assert.deepEqual([ev.fd?.cip, ev.fd?.cport, ev.fd?.sip, ev.fd?.sport, ev.fd?.is_server], ['10.0.0.9', 40000, '10.0.0.1', 22, true]);
});

test('the kernel is told which arguments are strings and which fd to describe, and only for named types', () => {
  const desc = sysDescriptors();
  assert.equal(desc[265]! & 0x3f, 0b1010); // linkat: oldpath (arg 1), newpath (arg 3)
  assert.equal((desc[41]! >> 8) & 7, 7); // socket: the return value
  assert.equal((desc[32]! >> 8) & 7, 1); // dup: argument 0
  const flags = sysFlags((t) => t === 'linkat');
  assert.equal(flags[265], SYS_ON | SYS_GENERIC);
  assert.equal(flags[86], 0, 'link: no rule names it, so it stays in the kernel');
});

test('minewatch\'s default rules keep today\'s kernel filter: no generic syscall, no open for reading', async () => {
  const { Engine, DEFAULT_RULES_FILES } = await import('../src/engine/index.js');
  const { GENERIC_SYSCALLS } = await import('../src/sources/ebpf/syscalls.js');
  const { deriveReadFilter } = await import('../src/sources/ebpf/read-filter.js');
  const e = Engine.fromFiles([...DEFAULT_RULES_FILES]);
  const flags = sysFlags((t) => e.rulesFor('syscall', t).length > 0);
  assert.deepEqual(GENERIC_SYSCALLS.filter((d) => flags[d.nr] !== 0).map((d) => d.type), []);
  assert.equal(deriveReadFilter((t) => e.rulesFor('syscall', t)).mode, 'none');
});
