/**
 * The parameters of Falco's syscall exit events (libs driver/event_table.c): their names, in
 * order, with the type and print format that decide how evt.arg, evt.arg[N] and evt.args show
 * them. Drivers hand over raw numbers under these names (SyscallEvent.args); this table is what
 * turns `flags: 577` into `O_TRUNC|O_CREAT|O_WRONLY` and `request: 16` into `PTRACE_ATTACH`.
 *
 * Only the exit events: Falco's modern probe puts every parameter of a syscall on its exit event
 * (enter events are empty or legacy), and rules read exits.
 */
import {
  bpfCommandName, CLONE_FLAGS, EXECVEAT_FLAGS, FINIT_MODULE_FLAGS, type FlagTable, LINKAT_FLAGS, MEMFD_CREATE_FLAGS,
  MOUNT_FLAGS, OPENAT2_RESOLVE_FLAGS, PRCTL_OPTIONS, ptraceRequestName, RENAMEAT2_FLAGS, socketFamilyName, UMOUNT_FLAGS,
  UNLINKAT_FLAGS,
} from './flags.js';

/**
 * libs' parameter types, folded to how they print:
 * - fd: the number; resolved `<typechar[proto]>name` from the fd table, AT_FDCWD, or an errno.
 * - errno: the number; resolved the errno name when negative.
 * - path: a path as the process gave it; resolved made absolute when it was relative (against
 *   the cwd, or for `dirfd` params against that directory fd).
 * - flags / enum: the number; resolved the names from `table` (open flags use openflags).
 * - openflags: open(2)'s flags (libs' file_flags, with its access-mode mapping).
 * - mode: chmod's PT_MODE: octal; resolved the permission bit names.
 * - uid / gid: the number (-1 as "-1"); resolved the user or group name ("<NONE>" for -1).
 * - pid: the number; resolved the process's name.
 * - int: a plain number in `fmt` (dec, hex: upper case without 0x, oct: with a leading 0).
 * - text: a string as it is (charbuf, bytebuf, socket tuples and addresses).
 */
export type ParamKind = 'fd' | 'errno' | 'path' | 'flags' | 'enum' | 'openflags' | 'mode' | 'uid' | 'gid' | 'pid' | 'int' | 'text';

export interface ParamDef {
  name: string;
  kind: ParamKind;
  fmt?: 'dec' | 'hex' | 'oct';
  /** flags and enum: the name table; enum tables may also be a lookup function. */
  table?: FlagTable | ((n: number) => string | undefined);
  /** path params relative to a directory fd: the name of that fd param (libs' DIRFD_PARAM). */
  dirfd?: string;
}

const fd = (name: string): ParamDef => ({ name, kind: 'fd' });
const res: ParamDef = { name: 'res', kind: 'errno' };
const path = (name: string, dirfd?: string): ParamDef => (dirfd ? { name, kind: 'path', dirfd } : { name, kind: 'path' });
const text = (name: string): ParamDef => ({ name, kind: 'text' });
const int = (name: string, fmt: ParamDef['fmt'] = 'dec'): ParamDef => ({ name, kind: 'int', fmt });
const flags = (name: string, table: FlagTable): ParamDef => ({ name, kind: 'flags', table });
const uid = (name: string): ParamDef => ({ name, kind: 'uid' });
const gid = (name: string): ParamDef => ({ name, kind: 'gid' });
const openFlags: ParamDef = { name: 'flags', kind: 'openflags' };
const chmodMode: ParamDef = { name: 'mode', kind: 'mode' };
const dev = int('dev', 'hex');
const ino = int('ino');
const tuple = text('tuple');

const openAt = (name: string): ParamDef[] => [fd('fd'), fd('dirfd'), path(name, 'dirfd'), openFlags, int('mode', 'oct')];

/** Exit-event parameters by Falco event type. */
export const EXIT_PARAMS: Readonly<Record<string, readonly ParamDef[]>> = {
  open: [fd('fd'), path('name'), openFlags, int('mode', 'oct'), dev, ino],
  openat: [...openAt('name'), dev, ino],
  openat2: [...openAt('name'), flags('resolve', OPENAT2_RESOLVE_FLAGS), dev, ino],
  creat: [fd('fd'), path('name'), int('mode', 'oct'), dev, ino],
  close: [res, fd('fd')],
  socket: [fd('fd'), { name: 'domain', kind: 'enum', table: socketFamilyName }, int('type'), int('proto')],
  socketpair: [res, fd('fd1'), fd('fd2'), int('source', 'hex'), int('peer', 'hex'), { name: 'domain', kind: 'enum', table: socketFamilyName }, int('type'), int('proto')],
  bind: [res, text('addr'), fd('fd')],
  connect: [res, tuple, fd('fd'), text('addr')],
  listen: [res, fd('fd'), int('backlog')],
  accept: [fd('fd'), tuple, int('queuepct'), int('queuelen'), int('queuemax')],
  accept4: [fd('fd'), tuple, int('queuepct'), int('queuelen'), int('queuemax'), int('flags', 'hex')],
  sendto: [res, text('data'), fd('fd'), int('size'), tuple],
  sendmsg: [res, text('data'), fd('fd'), int('size'), tuple],
  recvfrom: [res, text('data'), tuple, fd('fd'), int('size')],
  recvmsg: [res, int('size'), text('data'), tuple, text('msgcontrol'), fd('fd')],
  read: [res, text('data'), fd('fd'), int('size')],
  write: [res, text('data'), fd('fd'), int('size')],
  dup: [fd('res'), fd('oldfd')],
  dup2: [fd('res'), fd('oldfd'), fd('newfd')],
  dup3: [fd('res'), fd('oldfd'), fd('newfd'), openFlags],
  chdir: [res, text('path')],
  fchdir: [res, fd('fd')],
  mkdir: [res, path('path'), int('mode', 'hex')],
  mkdirat: [res, fd('dirfd'), path('path', 'dirfd'), int('mode', 'hex')],
  rmdir: [res, path('path')],
  unlink: [res, path('path')],
  unlinkat: [res, fd('dirfd'), path('name', 'dirfd'), flags('flags', UNLINKAT_FLAGS)],
  rename: [res, path('oldpath'), path('newpath')],
  renameat: [res, fd('olddirfd'), path('oldpath', 'olddirfd'), fd('newdirfd'), path('newpath', 'newdirfd')],
  renameat2: [res, fd('olddirfd'), path('oldpath', 'olddirfd'), fd('newdirfd'), path('newpath', 'newdirfd'), flags('flags', RENAMEAT2_FLAGS)],
  link: [res, path('oldpath'), path('newpath')],
  linkat: [res, fd('olddir'), path('oldpath', 'olddir'), fd('newdir'), path('newpath', 'newdir'), flags('flags', LINKAT_FLAGS)],
  symlink: [res, text('target'), path('linkpath')],
  symlinkat: [res, text('target'), fd('linkdirfd'), path('linkpath', 'linkdirfd')],
  chmod: [res, path('filename'), chmodMode],
  fchmod: [res, fd('fd'), chmodMode],
  fchmodat: [res, fd('dirfd'), path('filename', 'dirfd'), chmodMode],
  ptrace: [res, text('addr'), text('data'), { name: 'request', kind: 'enum', table: ptraceRequestName }, { name: 'pid', kind: 'pid' }],
  memfd_create: [fd('fd'), text('name'), flags('flags', MEMFD_CREATE_FLAGS)],
  setuid: [res, uid('uid')],
  setgid: [res, gid('gid')],
  setresuid: [res, uid('ruid'), uid('euid'), uid('suid')],
  setresgid: [res, gid('rgid'), gid('egid'), gid('sgid')],
  setns: [res, fd('fd'), flags('nstype', CLONE_FLAGS)],
  unshare: [res, flags('flags', CLONE_FLAGS)],
  mount: [res, text('dev'), path('dir'), text('type'), flags('flags', MOUNT_FLAGS)],
  umount2: [res, path('name'), flags('flags', UMOUNT_FLAGS)],
  bpf: [fd('fd'), { name: 'cmd', kind: 'enum', table: bpfCommandName }],
  prctl: [res, { name: 'option', kind: 'enum', table: PRCTL_OPTIONS }, text('arg2_str'), int('arg2_int')],
  userfaultfd: [res, openFlags],
  init_module: [res, text('img'), int('length'), text('uargs')],
  finit_module: [res, fd('fd'), text('uargs'), flags('flags', FINIT_MODULE_FLAGS)],
  execveat: [res, fd('dirfd'), path('pathname', 'dirfd'), flags('flags', EXECVEAT_FLAGS)],
};

const BY_TYPE = new Map<string, ReadonlyMap<string, ParamDef>>(
  Object.entries(EXIT_PARAMS).map(([t, ps]) => [t, new Map(ps.map((p) => [p.name, p]))]),
);

/** The parameter `name` of a `type` event, when libs' table has it. */
export function paramDef(type: string, name: string): ParamDef | undefined {
  return BY_TYPE.get(type)?.get(name);
}

/** The parameters of a `type` event in libs' order, when the table has the type. */
export function paramsOf(type: string): readonly ParamDef[] | undefined {
  return PARAMS.get(type);
}

/** EXIT_PARAMS as a Map: asked per event, and a Map lookup beats hasOwn plus a keyed load. */
const PARAMS = new Map<string, readonly ParamDef[]>(Object.entries(EXIT_PARAMS));

/** A number as libs' print format shows it: %#o, %X or %d. */
export function formatInt(n: number, fmt: ParamDef['fmt'] = 'dec'): string {
  if (fmt === 'oct') return n === 0 ? '0' : '0' + (n >>> 0).toString(8);
  if (fmt === 'hex') return (n < 0 ? BigInt.asUintN(64, BigInt(n)) : BigInt(n)).toString(16).toUpperCase();
  return String(n);
}
