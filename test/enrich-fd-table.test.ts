/**
 * The per-process fd table (src/enrich/fd-table.ts): fds learned from opens, sockets, connects,
 * accepts and dups fill fd.* on later reads, writes and closes as in Falco; closes, exec's
 * close-on-exec and pid reuse drop them; the table stays bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProcessInfo, SyscallEvent } from '../src/events.js';
import { FdTable } from '../src/enrich/fd-table.js';
import { nameArgs } from '../src/enrich/arg-names.js';
import { FieldRegistry } from '../src/fields/registry.js';
import { syscallFields } from '../src/fields/syscall.js';

const registry = new FieldRegistry([{ source: 'syscall', fields: syscallFields }]);
const get = (field: string, ev: SyscallEvent) => {
  const m = /^([^[]+)(?:\[(.*)\])?$/.exec(field)!;
  return registry.resolve('syscall', m[1]!, m[2]).extract(ev);
};

const proc = (pid = 40, start = 100n): ProcessInfo => ({ pid, name: 'cat', cwd: '/home/bob', start_ts: start });
const ev = (p: ProcessInfo, type: string, res: number, args: Record<string, string | number>, extra: Partial<SyscallEvent> = {}): SyscallEvent =>
  ({ source: 'syscall', type, ts: 1n, res, args, proc: p, ...extra });

const O_RDONLY = 0;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;

test('an opened file names the fd on the reads and the close that follow', () => {
  const t = new FdTable();
  const p = proc();
  const open = ev(p, 'openat', 3, { fd: 3, dirfd: -100, name: '/etc/shadow', flags: O_RDONLY, mode: 0 });
  t.apply(open);
  assert.equal(get('fd.name', open), '/etc/shadow');
  const read = ev(p, 'read', 10, { res: 10, fd: 3, size: 4096 });
  t.apply(read);
  assert.equal(get('fd.name', read), '/etc/shadow');
  assert.equal(get('fd.typechar', read), 'f');
  assert.equal(get('fd.num', read), 3);
  assert.equal(get('fd.directory', read), '/etc');
  assert.equal(get('evt.arg.fd', read), '<f>/etc/shadow');
  const close = ev(p, 'close', 0, { res: 0, fd: 3 });
  t.apply(close);
  assert.equal(get('evt.arg.fd', close), '<f>/etc/shadow', 'the close still names what it closed');
  const after = ev(p, 'read', -9, { res: -9, fd: 3 });
  t.apply(after);
  assert.equal(get('fd.name', after), undefined, 'closed: gone');
});

test('paths relative to the cwd or to a directory fd are made absolute; fd.nameraw keeps them as given', () => {
  const t = new FdTable();
  const p = proc();
  const dir = ev(p, 'openat', 4, { fd: 4, dirfd: -100, name: '/etc', flags: O_DIRECTORY | O_CLOEXEC, mode: 0 });
  t.apply(dir);
  assert.equal(get('fd.typechar', dir), 'd');
  const rel = ev(p, 'openat', 5, { fd: 5, dirfd: 4, name: 'ssh/../shadow', flags: O_RDONLY, mode: 0 });
  t.apply(rel);
  assert.equal(get('fd.name', rel), '/etc/shadow');
  assert.equal(get('fd.nameraw', rel), 'ssh/../shadow');
  assert.equal(get('evt.arg.dirfd', rel), '<d>/etc');
  assert.equal(get('evt.arg.name', rel), '/etc/shadow', "libs resolves an FSRELPATH against its dirfd");
  const cwdRel = ev(p, 'open', 6, { fd: 6, name: '../alice/.ssh/id_rsa', flags: O_RDONLY, mode: 0 });
  t.apply(cwdRel);
  assert.equal(get('fd.name', cwdRel), '/home/alice/.ssh/id_rsa');
  const sym = ev(p, 'symlinkat', 0, { res: 0, target: '/etc/shadow', linkdirfd: 4, linkpath: 'x' });
  t.apply(sym);
  assert.equal(get('evt.arg.linkpath', sym), '/etc/x');
});

test('sockets: the connect tuple names later writes; dup2 onto stdout carries it; typechar and proto', () => {
  const t = new FdTable();
  const p = proc();
  const s = ev(p, 'socket', 7, { fd: 7, domain: 2, type: 1, proto: 0 });
  t.apply(s);
  assert.equal(get('fd.typechar', s), '4');
  assert.equal(get('fd.l4proto', s), 'tcp');
  const c = ev(p, 'connect', 0, { res: 0, fd: 7 }, { fd: { num: 7, type: 'ipv4', l4proto: 'tcp', cip: '10.0.0.1', cport: 40000, sip: '198.51.100.7', sport: 2222 } });
  t.apply(c);
  const w = ev(p, 'write', 5, { res: 5, fd: 7, size: 5 });
  t.apply(w);
  assert.equal(get('fd.sport', w), 2222);
  assert.equal(get('fd.name', w), '10.0.0.1:40000->198.51.100.7:2222');
  const d = ev(p, 'dup2', 1, { res: 1, oldfd: 7, newfd: 1 });
  t.apply(d);
  assert.equal(get('evt.arg.oldfd', d), '<4t>10.0.0.1:40000->198.51.100.7:2222');
  const out = ev(p, 'write', 1, { res: 1, fd: 1, size: 1 });
  t.apply(out);
  assert.equal(get('fd.rport', out), 2222, 'a reverse shell: stdout is the socket');
  const pkt = ev(p, 'socket', 8, { fd: 8, domain: 17, type: 3, proto: 768 });
  t.apply(pkt);
  assert.equal(get('evt.arg.domain', pkt), 'AF_PACKET');
  assert.equal(get('fd.num', pkt), 8);
});

test('exec closes close-on-exec fds only; a reused pid starts empty', () => {
  const t = new FdTable();
  const p = proc();
  t.apply(ev(p, 'openat', 3, { fd: 3, dirfd: -100, name: '/etc/keep', flags: O_RDONLY }));
  t.apply(ev(p, 'openat', 4, { fd: 4, dirfd: -100, name: '/etc/gone', flags: O_RDONLY | O_CLOEXEC }));
  t.apply(ev(p, 'execve', 0, { res: 0 }));
  assert.equal(t.lookup(40, 3)?.name, '/etc/keep');
  assert.equal(t.lookup(40, 4), undefined);
  const reused = proc(40, 999n);
  const r = ev(reused, 'read', 1, { res: 1, fd: 3 });
  t.apply(r);
  assert.equal(r.fd, undefined, 'another process under the same pid never sees the old fds');
});

test('bounded: fds per process and processes', () => {
  const t = new FdTable({ maxProcs: 2, maxFds: 2 });
  const p = proc();
  for (let i = 3; i < 10; i++) t.apply(ev(p, 'openat', i, { fd: i, dirfd: -100, name: `/tmp/f${i}`, flags: 0 }));
  assert.ok(t.lookup(40, 3) && t.lookup(40, 4));
  assert.equal(t.lookup(40, 5), undefined);
  t.apply(ev(proc(41), 'close', 0, { fd: 1 }));
  t.apply(ev(proc(42), 'close', 0, { fd: 1 }));
  assert.equal(t.size, 2);
  assert.equal(t.lookup(40, 3), undefined, 'the least recently seen process went');
});

test('chdir moves proc.cwd; uid and pid arguments get names', () => {
  const t = new FdTable();
  const p = proc();
  t.apply(ev(p, 'chdir', 0, { res: 0, path: '../../dev/shm' }));
  assert.equal(p.cwd, '/dev/shm');
  const su = ev(p, 'setuid', 0, { res: 0, uid: 65534 });
  nameArgs(su, { user: (u) => (u === 65534 ? 'nobody' : undefined), group: () => undefined, comm: () => undefined });
  assert.equal(get('evt.arg.uid', su), 'nobody');
  const pt = ev(p, 'ptrace', 0, { res: 0, request: 16, pid: 77 });
  nameArgs(pt, { user: () => undefined, group: () => undefined, comm: (pid) => (pid === 77 ? 'sleep' : undefined) });
  assert.equal(get('evt.arg.pid', pt), 'sleep');
});

test('an unconnected UDP socket: each send names its peer; fd.name_changed when the peer is new', () => {
  const t = new FdTable();
  const p = proc();
  t.apply(ev(p, 'socket', 9, { fd: 9, domain: 2, type: 2, proto: 0 }));
  const to = (port: number) => ev(p, 'sendto', 1, { res: 1, fd: 9, size: 1 }, { fd: { num: 9, type: 'ipv4', l4proto: 'udp', cip: '10.0.0.1', cport: 5000, sip: '198.51.100.7', sport: port, connected: true } });
  const first = to(53);
  t.apply(first);
  assert.equal(get('fd.name_changed', first), true);
  assert.equal(get('fd.connected', first), false, 'never connected, whatever the driver guessed');
  const again = to(53);
  t.apply(again);
  assert.equal(get('fd.name_changed', again), false);
  const other = to(9999);
  t.apply(other);
  assert.equal(get('fd.name_changed', other), true);
  assert.equal(get('fd.sport', other), 9999);
});
