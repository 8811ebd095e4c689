/**
 * The syscalls the eBPF driver reports, and how each becomes a Falco-shaped SyscallEvent: Falco's
 * event type names, its argument names (evt.arg.*), and fd.* filled from what the kernel knew at
 * the call (the socket's addresses, the opened file's full path, device and inode).
 */
import type { FdInfo, ProcessInfo, SyscallEvent } from '../../events.js';
import type { SysRecord } from './decode.js';

/** Flags of native/ebpf/minewatch.h (MW_SYS_*). */
export const SYS_ON = 1;
export const SYS_SOCK_SEND = 2;
export const SYS_SOCK_DNS = 4;
export const SYS_OPEN = 8;
export const SYS_EXEC = 16;
export const SYS_GENERIC = 32;
/** The generic path's descriptor bits (MW_DESC_* in minewatch.h). */
const DESC_FD_SHIFT = 8;
const DESC_FD_RET = 7;
const DESC_CWD = 0x1000;

interface SyscallDef {
  nr: number;
  /** Falco's event type. */
  type: string;
  flags: number;
  /**
   * Needed whatever the rules say: the process table (exec, setuid), the detectors (connect for
   * tcpflowkiller, sends for the stratum detector) and the DNS cache (answers).
   */
  always?: boolean;
}

export const SYSCALLS: readonly SyscallDef[] = [
  { nr: 59, type: 'execve', flags: SYS_ON | SYS_EXEC, always: true },
  { nr: 322, type: 'execveat', flags: SYS_ON | SYS_EXEC, always: true },
  { nr: 2, type: 'open', flags: SYS_ON | SYS_OPEN },
  { nr: 257, type: 'openat', flags: SYS_ON | SYS_OPEN },
  { nr: 437, type: 'openat2', flags: SYS_ON | SYS_OPEN },
  { nr: 85, type: 'creat', flags: SYS_ON | SYS_OPEN },
  { nr: 90, type: 'chmod', flags: SYS_ON },
  { nr: 91, type: 'fchmod', flags: SYS_ON },
  { nr: 268, type: 'fchmodat', flags: SYS_ON },
  // fchmodat2 (Linux 6.6) is fchmodat with flags: Falco's rules know it as fchmodat.
  { nr: 452, type: 'fchmodat', flags: SYS_ON },
  { nr: 42, type: 'connect', flags: SYS_ON, always: true },
  { nr: 1, type: 'write', flags: SYS_ON | SYS_SOCK_SEND, always: true },
  { nr: 20, type: 'writev', flags: SYS_ON | SYS_SOCK_SEND, always: true },
  { nr: 44, type: 'sendto', flags: SYS_ON | SYS_SOCK_SEND, always: true },
  { nr: 46, type: 'sendmsg', flags: SYS_ON | SYS_SOCK_SEND, always: true },
  // glibc sends a lookup's A and AAAA questions in one sendmmsg: the DNS answers are matched to them.
  { nr: 307, type: 'sendmmsg', flags: SYS_ON | SYS_SOCK_SEND, always: true },
  { nr: 45, type: 'recvfrom', flags: SYS_ON | SYS_SOCK_DNS, always: true },
  { nr: 47, type: 'recvmsg', flags: SYS_ON | SYS_SOCK_DNS, always: true },
  { nr: 101, type: 'ptrace', flags: SYS_ON },
  { nr: 319, type: 'memfd_create', flags: SYS_ON },
  { nr: 105, type: 'setuid', flags: SYS_ON, always: true },
  { nr: 117, type: 'setresuid', flags: SYS_ON, always: true },
];

/**
 * Where one of a generic event's parameters comes from, as `source`:
 *   r        the return value
 *   iN / uN  argument N as a signed / unsigned 32-bit number (fds, pids, flags, modes)
 *   lN / xN  argument N as a signed / unsigned 64-bit number (as a JS number)
 *   sN       argument N, a user string (a path, a name), copied at the exit
 *   tuple    the socket's addresses, "cip:cport->sip:sport" (the fd the event acts on)
 *   addr     the socket's own address after the call, "ip:port" (bind)
 */
type ParamSource = 'r' | 'tuple' | 'addr' | `${'i' | 'u' | 'l' | 'x' | 's'}${0 | 1 | 2 | 3 | 4 | 5}`;

interface GenericDef {
  nr: number;
  type: string;
  /** Falco's parameter names for the event (libs' event table: the exit event's, then the enter-only ones), each with its source. */
  params: ReadonlyArray<readonly [string, ParamSource]>;
  /** The file descriptor the event acts on (fd.*): an argument's, or the return value. */
  fd?: 0 | 1 | 2 | 3 | 4 | 5 | 'r';
  /** fd.* of an accepted connection: this process is the server. */
  server?: boolean;
}

const P = (text: string): Array<readonly [string, ParamSource]> =>
  text.split(' ').filter(Boolean).map((t) => {
    const [name, src] = t.split(':');
    return [name!, (src ?? 'r') as ParamSource] as const;
  });

/**
 * The syscalls of the generic path: captured when a loaded rule names their event type, with their
 * parameters under libs' names (driver/event_table.c, the newest version of each event), as raw
 * values: numbers for fds, flags, modes and requests; strings for paths and names. x86-64 numbers.
 */
export const GENERIC_SYSCALLS: readonly GenericDef[] = [
  { nr: 86, type: 'link', params: P('res oldpath:s0 newpath:s1') },
  { nr: 265, type: 'linkat', params: P('res olddir:i0 oldpath:s1 newdir:i2 newpath:s3 flags:u4') },
  { nr: 88, type: 'symlink', params: P('res target:s0 linkpath:s1') },
  { nr: 266, type: 'symlinkat', params: P('res target:s0 linkdirfd:i1 linkpath:s2') },
  { nr: 87, type: 'unlink', params: P('res path:s0') },
  { nr: 263, type: 'unlinkat', params: P('res dirfd:i0 name:s1 flags:u2') },
  { nr: 82, type: 'rename', params: P('res oldpath:s0 newpath:s1') },
  { nr: 264, type: 'renameat', params: P('res olddirfd:i0 oldpath:s1 newdirfd:i2 newpath:s3') },
  { nr: 316, type: 'renameat2', params: P('res olddirfd:i0 oldpath:s1 newdirfd:i2 newpath:s3 flags:u4') },
  { nr: 83, type: 'mkdir', params: P('res path:s0 mode:u1') },
  { nr: 258, type: 'mkdirat', params: P('res dirfd:i0 path:s1 mode:u2') },
  { nr: 84, type: 'rmdir', params: P('res path:s0') },
  { nr: 165, type: 'mount', params: P('res dev:s0 dir:s1 type:s2 flags:u3') },
  { nr: 166, type: 'umount2', params: P('res name:s0 flags:u1') },
  { nr: 161, type: 'chroot', params: P('res path:s0') },
  { nr: 80, type: 'chdir', params: P('res path:s0') },
  { nr: 81, type: 'fchdir', params: P('res fd:i0'), fd: 0 },
  { nr: 92, type: 'chown', params: P('res path:s0 uid:u1 gid:u2') },
  { nr: 94, type: 'lchown', params: P('res path:s0 uid:u1 gid:u2') },
  { nr: 93, type: 'fchown', params: P('res fd:i0 uid:u1 gid:u2'), fd: 0 },
  { nr: 260, type: 'fchownat', params: P('res dirfd:i0 pathname:s1 uid:u2 gid:u3 flags:u4') },
  { nr: 308, type: 'setns', params: P('res fd:i0 nstype:u1'), fd: 0 },
  { nr: 272, type: 'unshare', params: P('res flags:u0') },
  { nr: 41, type: 'socket', params: P('fd:r domain:u0 type:u1 proto:u2'), fd: 'r' },
  { nr: 53, type: 'socketpair', params: P('res domain:u0 type:u1 proto:u2') },
  { nr: 49, type: 'bind', params: P('res addr:addr fd:i0'), fd: 0, server: true },
  { nr: 50, type: 'listen', params: P('res fd:i0 backlog:i1'), fd: 0, server: true },
  { nr: 43, type: 'accept', params: P('fd:r tuple:tuple'), fd: 'r', server: true },
  { nr: 288, type: 'accept4', params: P('fd:r tuple:tuple flags:i3'), fd: 'r', server: true },
  { nr: 48, type: 'shutdown', params: P('res fd:i0 how:u1'), fd: 0 },
  { nr: 32, type: 'dup', params: P('res oldfd:i0'), fd: 0 },
  { nr: 33, type: 'dup2', params: P('res oldfd:i0 newfd:i1'), fd: 0 },
  { nr: 292, type: 'dup3', params: P('res oldfd:i0 newfd:i1 flags:u2'), fd: 0 },
  { nr: 22, type: 'pipe', params: P('res') },
  { nr: 293, type: 'pipe2', params: P('res flags:u1') },
  { nr: 284, type: 'eventfd', params: P('res initval:x0') },
  { nr: 290, type: 'eventfd2', params: P('res flags:u1 initval:x0') },
  { nr: 283, type: 'timerfd_create', params: P('res clockid:u0 flags:u1') },
  { nr: 253, type: 'inotify_init', params: P('res') },
  { nr: 294, type: 'inotify_init1', params: P('res flags:u0') },
  { nr: 282, type: 'signalfd', params: P('res fd:i0') },
  { nr: 289, type: 'signalfd4', params: P('res flags:u3 fd:i0') },
  { nr: 321, type: 'bpf', params: P('fd:r cmd:u0') },
  { nr: 323, type: 'userfaultfd', params: P('res flags:u0') },
  { nr: 175, type: 'init_module', params: P('res length:x1 uargs:s2') },
  { nr: 313, type: 'finit_module', params: P('res fd:i0 uargs:s1 flags:u2'), fd: 0 },
  { nr: 176, type: 'delete_module', params: P('res name:s0 flags:u1') },
  { nr: 62, type: 'kill', params: P('res pid:i0 sig:u1') },
  { nr: 200, type: 'tkill', params: P('res tid:i0 sig:u1') },
  { nr: 234, type: 'tgkill', params: P('res pid:i0 tid:i1 sig:u2') },
  { nr: 106, type: 'setgid', params: P('res gid:u0') },
  { nr: 119, type: 'setresgid', params: P('res rgid:u0 egid:u1 sgid:u2') },
  { nr: 113, type: 'setreuid', params: P('res ruid:u0 euid:u1') },
  { nr: 114, type: 'setregid', params: P('res rgid:u0 egid:u1') },
  { nr: 112, type: 'setsid', params: P('res') },
  { nr: 109, type: 'setpgid', params: P('res pid:i0 pgid:i1') },
  { nr: 157, type: 'prctl', params: P('res option:u0 arg2_int:l1') },
  { nr: 10, type: 'mprotect', params: P('res addr:x0 length:x1 prot:u2') },
  { nr: 9, type: 'mmap', params: P('res addr:x0 length:x1 prot:u2 flags:u3 fd:i4 offset:x5') },
  { nr: 434, type: 'pidfd_open', params: P('fd:r pid:i0 flags:u1') },
  { nr: 438, type: 'pidfd_getfd', params: P('fd:r pid_fd:i0 target_fd:i1 flags:u2') },
  { nr: 310, type: 'process_vm_readv', params: P('res pid:i0') },
  { nr: 311, type: 'process_vm_writev', params: P('res pid:i0') },
  { nr: 425, type: 'io_uring_setup', params: P('res entries:u0') },
  { nr: 317, type: 'seccomp', params: P('res op:x0 flags:x1') },
  { nr: 304, type: 'open_by_handle_at', params: P('fd:r mountfd:i0 flags:u2'), fd: 'r' },
  { nr: 126, type: 'capset', params: P('res') },
  { nr: 56, type: 'clone', params: P('res flags:u0') },
  { nr: 57, type: 'fork', params: P('res') },
  { nr: 58, type: 'vfork', params: P('res') },
  { nr: 435, type: 'clone3', params: P('res') },
];

const BY_NR = new Map(SYSCALLS.map((d) => [d.nr, d]));
const GENERIC_BY_NR = new Map(GENERIC_SYSCALLS.map((d) => [d.nr, d]));

/** Per generic syscall, built once: argument number → its place among the record's user strings (they come in argument order, one per `sN` parameter). */
const STR_INDEX = new Map(GENERIC_SYSCALLS.map((d) => {
  const argNos = [...new Set(d.params.filter(([, src]) => src[0] === 's').map(([, src]) => Number(src.slice(1))))].sort((x, y) => x - y);
  return [d.nr, new Map(argNos.map((n, k) => [n, k]))];
}));

/** A generic syscall's event type, as Falco's rules name it (libs names each syscall after itself). */

/** Every event type the driver can produce (syscalls, and the detector's own). */
export const EBPF_EVENT_TYPES: readonly string[] = [...new Set([...SYSCALLS.map((d) => d.type), ...GENERIC_SYSCALLS.map((d) => d.type)]), 'mw_fpu_rounding'];

/**
 * The kernel-side filter: which syscalls to report. `wanted` says whether the loaded rules can use
 * an event type; the ones the agent itself needs are reported regardless.
 */
export function sysFlags(wanted: (type: string) => boolean = () => true): Uint8Array {
  const flags = new Uint8Array(512);
  for (const d of SYSCALLS) if (d.always || wanted(d.type)) flags[d.nr] = d.flags;
  for (const d of GENERIC_SYSCALLS) if (wanted(d.type)) flags[d.nr] = SYS_ON | SYS_GENERIC;
  return flags;
}

/** The generic path's descriptors for the kernel (sys_desc): which arguments are strings, which fd to describe. */
export function sysDescriptors(): Uint32Array {
  const desc = new Uint32Array(512);
  for (const d of GENERIC_SYSCALLS) {
    let v = 0;
    for (const [, src] of d.params) if (src[0] === 's') v |= 1 << Number(src.slice(1));
    if (d.fd !== undefined) v |= (d.fd === 'r' ? DESC_FD_RET : d.fd + 1) << DESC_FD_SHIFT;
    // Paths without an fd: the working directory a relative one is relative to (proc.cwd).
    else if (v & 0x3f) v |= DESC_CWD;
    desc[d.nr] = v;
  }
  return desc;
}


/** A syscall argument as Falco shows it: a signed 32-bit int (fds, dirfd, ids where -1 matters). */
const i32 = (v: bigint): number => Number(BigInt.asIntN(32, v));
const u32 = (v: bigint): number => Number(BigInt.asUintN(32, v));
/** Flags and modes stay within 32 bits. */
const num = (v: bigint): number => Number(BigInt.asUintN(32, v));

const AT_FDCWD = -100;

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;

/**
 * A socket's fd.* from the kernel's view of it. `server`: this process is the server side (accept,
 * bind, listen), so the local address is the server's (fd.sip) and the peer the client's.
 */
function socketFd(r: SysRecord, num: number, server = false): FdInfo {
  if (r.family === AF_UNIX) {
    const fd: FdInfo = { num, type: 'unix', sockfamily: 'unix' };
    if (r.ino) fd.ino = r.ino;
    return fd;
  }
  // Packet, netlink and the other families: the number and the inode, no addresses.
  if (r.family !== AF_INET && r.family !== AF_INET6) return r.ino ? { num, ino: r.ino } : { num };
  const fd: FdInfo = {
    num,
    type: r.family === AF_INET6 ? 'ipv6' : 'ipv4',
    l4proto: r.proto === 6 ? 'tcp' : r.proto === 17 ? 'udp' : 'raw',
    sockfamily: 'ip',
    cip: server ? r.daddr : r.saddr,
    cport: server ? r.dport : r.sport,
    sip: server ? r.saddr : r.daddr,
    sport: server ? r.sport : r.dport,
    connected: true,
  };
  if (server) {
    fd.is_server = true;
    fd.connected = r.dport !== 0;
  }
  if (r.netns) fd.netns = r.netns;
  if (r.ino) fd.ino = r.ino;
  return fd;
}

function fileFd(r: SysRecord, num: number, name: string | undefined): FdInfo {
  const fd: FdInfo = { num, type: 'file' };
  if (name !== undefined && name !== '') fd.name = name;
  if (r.str && r.str !== name) fd.nameraw = r.str;
  if (r.dev) fd.dev = r.dev;
  if (r.ino) fd.ino = r.ino;
  return fd;
}

/** A path the kernel could not resolve: the argument made absolute against the cwd or dirfd. */
function absolute(path: string, cwd: string | undefined, dirfd?: number): string | undefined {
  if (path.startsWith('/')) return path;
  if (dirfd !== undefined && dirfd !== AT_FDCWD) return undefined;
  return cwd ? `${cwd.replace(/\/$/, '')}/${path}` : undefined;
}

/**
 * One syscall record as a SyscallEvent for `proc` (the process as the table knows it), or
 * undefined for a record the driver does not turn into an event.
 */
export function toSyscallEvent(r: SysRecord, proc: ProcessInfo): SyscallEvent | undefined {
  const g = GENERIC_BY_NR.get(r.nr);
  if (g) return genericEvent(g, r, proc);
  const type = BY_NR.get(r.nr)?.type;
  if (!type) return undefined;
  const a = r.args;
  const ev: SyscallEvent = { source: 'syscall', type, ts: r.ts, res: r.ret, proc };
  switch (r.nr) {
    case 2: // open(name, flags, mode)
    case 257: // openat(dirfd, name, flags, mode)
    case 437: // openat2(dirfd, name, how) — the driver put how.flags and how.mode in args 2 and 3
    case 85: { // creat(name, mode)
      const at = r.nr === 257 || r.nr === 437;
      const flags = r.nr === 85 ? 0o1101 /* O_CREAT|O_WRONLY|O_TRUNC */ : num(at ? a[2]! : a[1]!);
      const mode = num(r.nr === 85 ? a[1]! : at ? a[3]! : a[2]!);
      const args: Record<string, string | number> = { fd: r.ret };
      if (at) args.dirfd = i32(a[0]!);
      args.name = r.str;
      if (r.nr !== 85) args.flags = flags;
      args.mode = mode;
      if (r.dev) args.dev = r.dev;
      if (r.ino) args.ino = r.ino;
      ev.args = args;
      if (r.ret >= 0) ev.fd = fileFd(r, r.ret, r.path || absolute(r.str, proc.cwd, at ? i32(a[0]!) : undefined));
      return ev;
    }
    case 90: // chmod(filename, mode)
      ev.args = { res: r.ret, filename: r.str, mode: num(a[1]!) };
      return ev;
    case 268: // fchmodat(dirfd, filename, mode)
    case 452:
      ev.args = { res: r.ret, dirfd: i32(a[0]!), filename: r.str, mode: num(a[2]!) };
      return ev;
    case 91: { // fchmod(fd, mode)
      const fd = i32(a[0]!);
      ev.args = { res: r.ret, fd, mode: num(a[1]!) };
      if (r.path) ev.fd = fileFd(r, fd, r.path);
      return ev;
    }
    case 42: { // connect(fd, addr, len)
      const fd = socketFd(r, i32(a[0]!));
      fd.connected = r.ret === 0 || r.ret === -115; // EINPROGRESS: a non-blocking connect under way
      ev.args = { res: r.ret, tuple: `${fd.cip}:${fd.cport}->${fd.sip}:${fd.sport}`, fd: fd.num! };
      ev.fd = fd;
      return ev;
    }
    case 1: // write(fd, buf, size)
    case 20: // writev(fd, iov, cnt)
    case 44: // sendto(fd, buf, size, flags, addr, len)
    case 46: // sendmsg(fd, msg, flags)
    case 307: { // sendmmsg(fd, msgvec, vlen, flags): the driver captured the first messages
      const fd = socketFd(r, i32(a[0]!));
      ev.args = { res: r.ret, fd: fd.num!, size: r.nr === 1 || r.nr === 44 ? Number(a[2]!) : r.ret };
      ev.fd = fd;
      if (r.buf) {
        ev.buffer = r.buf.toString('latin1');
        ev.args.data = ev.buffer;
      }
      return ev;
    }
    case 45: // recvfrom: a DNS answer
    case 47: {
      const fd = socketFd(r, i32(a[0]!));
      ev.args = { res: r.ret, fd: fd.num!, tuple: `${fd.cip}:${fd.cport}->${fd.sip}:${fd.sport}` };
      ev.fd = fd;
      if (r.buf) ev.buffer = r.buf.toString('latin1');
      return ev;
    }
    case 101: // ptrace(request, pid, addr, data)
      ev.args = { res: r.ret, request: i32(a[0]!), pid: i32(a[1]!), addr: `0x${a[2]!.toString(16)}`, data: `0x${a[3]!.toString(16)}` };
      return ev;
    case 319: // memfd_create(name, flags)
      ev.args = { fd: r.ret, name: r.str, flags: u32(a[1]!) };
      if (r.ret >= 0) ev.fd = { num: r.ret, type: 'memfd', name: `memfd:${r.str}` };
      return ev;
    case 105: // setuid(uid)
      ev.args = { res: r.ret, uid: i32(a[0]!) };
      return ev;
    case 117: // setresuid(ruid, euid, suid)
      ev.args = { res: r.ret, ruid: i32(a[0]!), euid: i32(a[1]!), suid: i32(a[2]!) };
      return ev;
    default:
      return undefined;
  }
}

/** A generic syscall's event: its parameters by libs' names, raw, and the fd it acts on. */
function genericEvent(d: GenericDef, r: SysRecord, proc: ProcessInfo): SyscallEvent {
  // The kernel's working directory at the call (sent with a relative path): proc.cwd as it was
  // then, for a process /proc may no longer show. A copy: the table's entry stays as it is.
  const withCwd = d.fd === undefined && r.path && r.path !== proc.cwd ? { ...proc, cwd: r.path } : proc;
  const ev: SyscallEvent = { source: 'syscall', type: d.type, ts: r.ts, res: r.ret, proc: withCwd };
  let fd: FdInfo | undefined;
  if (d.fd !== undefined) {
    const num = d.fd === 'r' ? r.ret : i32(r.args[d.fd]!);
    if (num >= 0 && r.family) fd = socketFd(r, num, d.server);
    else if (num >= 0 && (r.path || r.ino)) fd = fileFd(r, num, r.path);
    if (fd) ev.fd = fd;
  }
  const strIndex = STR_INDEX.get(d.nr)!;
  const args: Record<string, string | number> = {};
  for (const [name, src] of d.params) {
    if (src === 'r') args[name] = r.ret;
    else if (src === 'tuple') {
      if (fd?.sip !== undefined) args[name] = `${fd.cip}:${fd.cport}->${fd.sip}:${fd.sport}`;
    } else if (src === 'addr') {
      if (fd?.sip !== undefined) args[name] = `${fd.sip}:${fd.sport}`;
    } else {
      const n = Number(src.slice(1));
      const v = r.args[n]!;
      switch (src[0]) {
        case 'i': args[name] = i32(v); break;
        case 'u': args[name] = u32(v); break;
        case 'l': args[name] = Number(BigInt.asIntN(64, v)); break;
        case 'x': args[name] = Number(v); break;
        case 's': args[name] = r.strs[strIndex.get(n)!] ?? ''; break;
      }
    }
  }
  ev.args = args;
  return ev;
}
