/**
 * Each process's open file descriptors, learned from its syscall events in order, as libs keeps
 * them in its thread table: so that a read, a write, a close or a connect (which name only a
 * number) resolve fd.name, fd.type, fd.typechar and the rest as they do in Falco, and so that a
 * path relative to a directory fd (openat, linkat, symlinkat…) can be made absolute.
 *
 * Learned from: open, openat, openat2, creat, socket, connect, accept, accept4, dup, dup2, dup3,
 * fcntl(F_DUPFD), memfd_create; dropped on close, on exec (close-on-exec fds) and when the
 * process is gone (forget). chdir and fchdir move the process's cwd, as libs does.
 *
 * Bounded: at most `maxProcs` processes (the least recently seen goes) and `maxFds` fds each (a
 * process that opens more keeps its first ones): an attacker opening fds forever costs memory
 * only up to that.
 */
import { posix as posixPath } from 'node:path';
import type { FdInfo, FdType, SyscallEvent } from '../events.js';

const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const SOCK_CLOEXEC = 0o2000000;
const AT_FDCWD = -100;
const F_DUPFD = 0;
const F_DUPFD_CLOEXEC = 1030;
const EINPROGRESS = -115;

/** An fd as the table keeps it: what fd.* reads, and whether an exec closes it. */
interface Entry {
  info: FdInfo;
  cloexec: boolean;
}

interface ProcFds {
  /** Start time of the process the fds belong to: a reused pid starts empty. */
  start: bigint | undefined;
  fds: Map<number, Entry>;
}

export interface FdTableOptions {
  maxProcs?: number;
  maxFds?: number;
}

/** Events whose `fd` argument is an fd the process already had (not one the call made). */
const USES_FD = new Set([
  'read', 'readv', 'pread', 'preadv', 'write', 'writev', 'pwrite', 'pwritev', 'sendto', 'sendmsg', 'sendmmsg',
  'recvfrom', 'recvmsg', 'recvmmsg', 'connect', 'bind', 'listen', 'close', 'fchmod', 'fchdir', 'setns',
  'finit_module', 'fstat', 'fcntl', 'ioctl', 'shutdown', 'getsockopt', 'setsockopt', 'splice', 'sendfile', 'mmap',
]);

/** fd-typed arguments other than `fd` that name an fd the process already had, by event type. */
const DIR_FD_ARGS: Readonly<Record<string, readonly string[]>> = {
  openat: ['dirfd'], openat2: ['dirfd'], mkdirat: ['dirfd'], unlinkat: ['dirfd'], fchmodat: ['dirfd'], execveat: ['dirfd'],
  renameat: ['olddirfd', 'newdirfd'], renameat2: ['olddirfd', 'newdirfd'], linkat: ['olddir', 'newdir'], symlinkat: ['linkdirfd'],
  dup: ['oldfd'], dup2: ['oldfd'], dup3: ['oldfd'],
};

/** An absolute path with no `.`, `..` or doubled slashes: already what normalize would give. */
const CLEAN_PATH = /^(?:\/[^/.][^/]*|\/\.[^/.][^/]*)*\/?$/;
const OPEN_TYPES = new Set(['open', 'openat', 'openat2', 'creat']);
/** Calls that carry a peer address of their own: on an unconnected socket, each may name a new peer. */
const DATAGRAM_TYPES = new Set(['sendto', 'sendmsg', 'sendmmsg', 'recvfrom', 'recvmsg', 'recvmmsg']);
/** Events that neither use nor make an fd, only drop them: with no fds known they change nothing. */
const NO_NEW_FDS = new Set(['execve', 'execveat', 'procexit']);
const NO_ARGS: Readonly<Record<string, string | number>> = Object.freeze({});
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** fd.type of a socket by its domain (socket(2)'s first argument). */
function socketType(domain: number | undefined): FdType | undefined {
  switch (domain) {
    case 2: return 'ipv4';
    case 10: return 'ipv6';
    case 1: return 'unix';
    case 16: return 'netlink';
    default: return undefined;
  }
}

/** Transport of an IP socket by socket(2)'s type argument (its low bits). */
function socketProto(type: number | undefined): FdInfo['l4proto'] | undefined {
  switch ((type ?? 0) & 0xf) {
    case 1: return 'tcp';
    case 2: return 'udp';
    case 3: return 'raw';
    default: return undefined;
  }
}

export class FdTable {
  private readonly procs = new Map<number, ProcFds>();
  private readonly maxProcs: number;
  private readonly maxFds: number;
  private lastPid = -1;

  constructor(opts: FdTableOptions = {}) {
    this.maxProcs = opts.maxProcs ?? 4096;
    this.maxFds = opts.maxFds ?? 1024;
  }

  /** How many processes the table holds fds for (tests, stats). */
  get size(): number {
    return this.procs.size;
  }

  /** The process is gone: its fds with it. */
  forget(pid: number): void {
    this.procs.delete(pid);
  }

  /** What the table knows of `pid`'s fd `n` (a copy). */
  lookup(pid: number, n: number): FdInfo | undefined {
    const e = this.procs.get(pid)?.fds.get(n);
    return e ? { ...e.info } : undefined;
  }

  /**
   * Fill the event's fd and argument fds from what the process's earlier events opened, then
   * learn what this event opened, moved or closed. Events must come in the order they happened.
   * Never throws on malformed events.
   */
  apply(ev: SyscallEvent): void {
    const pid = ev.proc?.pid;
    if (typeof pid !== 'number') return;
    const a = ev.args ?? NO_ARGS;
    // An exec or exit of a process with no fds known: nothing to fill or learn, and no entry to
    // make (an exec storm's commands are mostly gone before any other event of theirs).
    if (NO_NEW_FDS.has(ev.type) && !this.has(pid, ev.proc.start_ts)) return;
    const p = this.procFor(pid, ev.proc.start_ts);
    this.fill(ev, p, a);
    this.learn(ev, p, a);
  }

  /** Whether the table holds fds of this process (a stale entry of an earlier one under the pid goes). */
  private has(pid: number, start: bigint | undefined): boolean {
    const p = this.procs.get(pid);
    if (!p) return false;
    if (p.start !== undefined && start !== undefined && p.start !== start) {
      this.procs.delete(pid);
      return false;
    }
    return true;
  }

  private procFor(pid: number, start: bigint | undefined): ProcFds {
    let p = this.procs.get(pid);
    if (p && p.start !== undefined && start !== undefined && p.start !== start) p = undefined;
    // The same process as the last event's (the common case): already the most recent.
    if (p && pid === this.lastPid) return p;
    this.lastPid = pid;
    if (p) {
      // Most recently seen last: the first key is the one to drop.
      this.procs.delete(pid);
    } else {
      p = { start, fds: new Map() };
      if (this.procs.size >= this.maxProcs) this.procs.delete(this.procs.keys().next().value!);
    }
    this.procs.set(pid, p);
    return p;
  }

  private fill(ev: SyscallEvent, p: ProcFds, a: Record<string, string | number>): void {
    const n = num(a.fd);
    if (n !== undefined && n >= 0 && USES_FD.has(ev.type)) {
      const known = p.fds.get(n);
      if (known && ev.fd && DATAGRAM_TYPES.has(ev.type) && known.info.connected !== true) this.peerOf(known, ev.fd);
      // What the driver saw at the call wins; the table adds what it could not see (a path).
      else if (known) ev.fd = ev.fd ? { ...known.info, ...ev.fd, num: n } : { ...known.info };
    }
    const dirArgs = Object.hasOwn(DIR_FD_ARGS, ev.type) ? DIR_FD_ARGS[ev.type]! : undefined;
    if (!dirArgs) return;
    for (const name of dirArgs) {
      const d = num(a[name]);
      const known = d !== undefined && d >= 0 ? p.fds.get(d) : undefined;
      if (known) (ev.argFds ??= {})[name] = { ...known.info };
    }
    // A dup acts on its old fd: libs' fd.* on dup events describe it (a socket dup'd onto stdout).
    const old = ev.argFds?.oldfd;
    if (old && !ev.fd && ev.type.startsWith('dup')) ev.fd = { ...old };
  }

  private learn(ev: SyscallEvent, p: ProcFds, a: Record<string, string | number>): void {
    const res = ev.res ?? num(a.res) ?? num(a.fd);
    const t = ev.type;
    if (OPEN_TYPES.has(t)) {
      const fd = num(a.fd) ?? res;
      if (fd === undefined || fd < 0) return;
      const flags = num(a.flags) ?? 0;
      const raw = str(a.name) ?? str(a.path) ?? str(a.pathname);
      const name = ev.fd?.name ?? (raw !== undefined ? this.absolute(ev, p, raw, num(a.dirfd)) : undefined);
      const info: FdInfo = { ...ev.fd, num: fd, type: ev.fd?.type ?? ((flags & O_DIRECTORY) !== 0 ? 'directory' : 'file') };
      if (name !== undefined) info.name = name;
      if (raw !== undefined && info.nameraw === undefined) info.nameraw = raw;
      this.put(p, fd, { ...info }, (flags & O_CLOEXEC) !== 0);
      ev.fd = info;
      return;
    }
    switch (t) {
      case 'socket': {
        if (res === undefined || res < 0) return;
        const type = socketType(num(a.domain));
        const info: FdInfo = { ...ev.fd, num: res };
        if (type && !info.type) info.type = type;
        const proto = type === 'ipv4' || type === 'ipv6' ? socketProto(num(a.type)) : undefined;
        if (proto && !info.l4proto) info.l4proto = proto;
        if (type === 'unix') info.sockfamily = 'unix';
        else if (type === 'ipv4' || type === 'ipv6') info.sockfamily = 'ip';
        this.put(p, res, { ...info }, ((num(a.type) ?? 0) & SOCK_CLOEXEC) !== 0);
        ev.fd = info;
        return;
      }
      case 'connect': {
        const n = num(a.fd);
        if (n === undefined || !ev.fd || (res !== undefined && res < 0 && res !== EINPROGRESS)) return;
        const was = p.fds.get(n);
        this.put(p, n, { ...was?.info, ...ev.fd, num: n }, was?.cloexec ?? false);
        return;
      }
      case 'accept':
      case 'accept4': {
        if (res === undefined || res < 0 || !ev.fd) return;
        this.put(p, res, { ...ev.fd, num: res, is_server: ev.fd.is_server ?? true }, false);
        return;
      }
      case 'memfd_create': {
        if (res === undefined || res < 0) return;
        const info: FdInfo = ev.fd ?? { num: res, type: 'memfd', name: `memfd:${str(a.name) ?? ''}` };
        this.put(p, res, { ...info }, ((num(a.flags) ?? 0) & 1) !== 0);
        ev.fd ??= info;
        return;
      }
      case 'dup':
      case 'dup2':
      case 'dup3':
        return this.dup(p, num(a.oldfd) ?? num(a.fd), res, t === 'dup3' && ((num(a.flags) ?? 0) & O_CLOEXEC) !== 0);
      case 'fcntl': {
        const cmd = num(a.cmd);
        if (cmd === F_DUPFD || cmd === F_DUPFD_CLOEXEC) this.dup(p, num(a.fd), res, cmd === F_DUPFD_CLOEXEC);
        return;
      }
      case 'close': {
        const n = num(a.fd);
        if (n !== undefined) p.fds.delete(n);
        return;
      }
      case 'execve':
      case 'execveat':
        if (res === 0) for (const [n, e] of p.fds) if (e.cloexec) p.fds.delete(n);
        return;
      case 'procexit':
        this.procs.delete(ev.proc.pid);
        return;
      case 'chdir': {
        const path = str(a.path);
        if (res === 0 && path !== undefined) ev.proc.cwd = ev.proc.cwd ? posixPath.resolve(ev.proc.cwd, path) : path.startsWith('/') ? path : ev.proc.cwd;
        return;
      }
      case 'fchdir': {
        const dir = ev.fd?.name;
        if (res === 0 && dir?.startsWith('/')) ev.proc.cwd = dir;
        return;
      }
    }
  }

  /**
   * A send or receive on a socket that was never connected (UDP sendto): the tuple is this
   * datagram's, and fd.name_changed says whether the peer differs from the last one, as libs
   * renames the fd on each new peer.
   */
  private peerOf(known: Entry, fd: FdInfo): void {
    const tuple = (f: FdInfo) => (f.sip === undefined ? f.name : `${f.cip}:${f.cport}->${f.sip}:${f.sport}`);
    const before = tuple(known.info);
    Object.assign(fd, { ...known.info, ...fd, connected: false, name_changed: tuple(fd) !== before });
    const { name_changed: _changed, ...keep } = fd;
    known.info = keep;
  }

  private dup(p: ProcFds, from: number | undefined, to: number | undefined, cloexec: boolean): void {
    if (from === undefined || to === undefined || to < 0) return;
    const e = p.fds.get(from);
    if (e) this.put(p, to, { ...e.info, num: to }, cloexec);
    else p.fds.delete(to);
  }

  private put(p: ProcFds, n: number, info: FdInfo, cloexec: boolean): void {
    if (!p.fds.has(n) && p.fds.size >= this.maxFds) return;
    p.fds.set(n, { info, cloexec });
  }

  /** A path made absolute against the cwd or the directory fd, as libs names the opened file. */
  private absolute(ev: SyscallEvent, p: ProcFds, path: string, dirfd: number | undefined): string | undefined {
    if (path.startsWith('/')) return CLEAN_PATH.test(path) ? path : posixPath.normalize(path);
    const base = dirfd === undefined || dirfd === AT_FDCWD ? ev.proc.cwd : p.fds.get(dirfd)?.info.name;
    return base ? posixPath.resolve(base, path) : undefined;
  }
}
