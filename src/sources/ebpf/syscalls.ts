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

const BY_NR = new Map(SYSCALLS.map((d) => [d.nr, d]));

/** Every event type the driver can produce (syscalls, and the detector's own). */
export const EBPF_EVENT_TYPES: readonly string[] = [...new Set(SYSCALLS.map((d) => d.type)), 'mw_fpu_rounding'];

/**
 * The kernel-side filter: which syscalls to report. `wanted` says whether the loaded rules can use
 * an event type; the ones the agent itself needs are reported regardless.
 */
export function sysFlags(wanted: (type: string) => boolean = () => true): Uint8Array {
  const flags = new Uint8Array(512);
  for (const d of SYSCALLS) if (d.always || wanted(d.type)) flags[d.nr] = d.flags;
  return flags;
}

export function syscallType(nr: number): string | undefined {
  return BY_NR.get(nr)?.type;
}

/** A syscall argument as Falco shows it: a signed 32-bit int (fds, dirfd, ids where -1 matters). */
const i32 = (v: bigint): number => Number(BigInt.asIntN(32, v));
const u32 = (v: bigint): number => Number(BigInt.asUintN(32, v));
/** Flags and modes stay within 32 bits. */
const num = (v: bigint): number => Number(BigInt.asUintN(32, v));

const AT_FDCWD = -100;

function socketFd(r: SysRecord, num: number): FdInfo {
  const fd: FdInfo = {
    num,
    type: r.family === 10 ? 'ipv6' : 'ipv4',
    l4proto: r.proto === 6 ? 'tcp' : r.proto === 17 ? 'udp' : 'raw',
    sockfamily: 'ip',
    cip: r.saddr,
    cport: r.sport,
    sip: r.daddr,
    sport: r.dport,
    connected: true,
  };
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
  const type = syscallType(r.nr);
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
