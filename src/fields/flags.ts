/**
 * Renderers for the numeric syscall arguments that Falco shows as names (open flags, chmod modes,
 * errno values, socket families, ptrace requests, bpf commands).
 *
 * Why: replay files and live sources may carry the raw numbers the kernel saw, while Falco rules
 * test the rendered text (`evt.arg.flags contains O_TRUNC`, `evt.arg.mode contains "S_ISUID"`,
 * `evt.res = ENOENT`). Numbers here are the Linux (x86-64 / asm-generic) values, not Falco's
 * internal PPM encoding; the output text follows Falco's: names in Falco's table order joined by
 * "|", modes printed in octal with a leading 0.
 */

/** A name and the bits that must all be set for it to be shown. */
type FlagEntry = readonly [name: string, bits: number];

/** Render `value` as the names whose bits it contains, in table order; each match clears its bits. */
function renderBits(value: number, table: readonly FlagEntry[]): string {
  let rest = value >>> 0;
  const names: string[] = [];
  for (const [name, bits] of table) {
    if (bits !== 0 && (rest & bits) === bits) {
      names.push(name);
      rest &= ~bits;
    }
  }
  return names.join('|');
}

// ---------------------------------------------------------------------------------------------
// open(2) flags

/** Linux open(2) flag bits (octal, as in <asm-generic/fcntl.h>). */
const O = {
  ACCMODE: 0o3,
  WRONLY: 0o1,
  RDWR: 0o2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DSYNC: 0o10000,
  DIRECT: 0o40000,
  LARGEFILE: 0o100000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  NOATIME: 0o1000000,
  CLOEXEC: 0o2000000,
  SYNC_BIT: 0o4000000, // __O_SYNC: O_SYNC is this plus O_DSYNC
  PATH: 0o10000000,
  TMPFILE_BIT: 0o20000000, // __O_TMPFILE: O_TMPFILE is this plus O_DIRECTORY
} as const;

/**
 * Falco's order for open flags (libs driver/flags_table.c, `file_flags`). The access mode is not a
 * bit set in Linux (O_RDONLY is 0), so it is decoded separately and slotted in where Falco puts it.
 */
const OPEN_FLAGS_BEFORE_ACCMODE: readonly FlagEntry[] = [
  ['O_LARGEFILE', O.LARGEFILE],
  ['O_DIRECTORY', O.DIRECTORY],
  ['O_DIRECT', O.DIRECT],
  ['O_TRUNC', O.TRUNC],
  ['O_SYNC', O.SYNC_BIT],
  ['O_NONBLOCK', O.NONBLOCK],
  ['O_EXCL', O.EXCL],
  ['O_DSYNC', O.DSYNC],
  ['O_APPEND', O.APPEND],
  ['O_CREAT', O.CREAT],
];
const OPEN_FLAGS_AFTER_ACCMODE: readonly FlagEntry[] = [
  ['O_CLOEXEC', O.CLOEXEC],
  ['O_TMPFILE', O.TMPFILE_BIT],
  // Falco's driver drops these four; we keep them, last, so no Falco-visible name moves.
  ['O_NOCTTY', O.NOCTTY],
  ['O_NOFOLLOW', O.NOFOLLOW],
  ['O_NOATIME', O.NOATIME],
  ['O_PATH', O.PATH],
];

/** "O_WRONLY|O_CREAT|O_TRUNC"-style text for Linux open(2) flags. */
export function renderOpenFlags(flags: number): string {
  const v = flags >>> 0;
  const acc = v & O.ACCMODE;
  // 3 is not a valid access mode for files; Falco's driver maps it like O_RDWR.
  const accName = acc === 0 ? 'O_RDONLY' : acc === O.WRONLY ? 'O_WRONLY' : 'O_RDWR';
  return [renderBits(v, OPEN_FLAGS_BEFORE_ACCMODE), accName, renderBits(v, OPEN_FLAGS_AFTER_ACCMODE)]
    .filter((s) => s !== '')
    .join('|');
}

/** Read and write intent of open flags, given as a number or as already rendered text. */
export interface OpenAccess {
  read: boolean;
  write: boolean;
  create: boolean;
  tmpfile: boolean;
}

/** Rendered flag strings repeat endlessly on a busy host: each is split into names once. */
const accessByText = new Map<string, OpenAccess>();

export function openAccess(flags: number | string): OpenAccess {
  if (typeof flags === 'string') {
    let a = accessByText.get(flags);
    if (!a) {
      if (accessByText.size >= 4096) accessByText.clear();
      accessByText.set(flags, (a = computeOpenAccess(flags)));
    }
    return a;
  }
  return computeOpenAccess(flags);
}

function computeOpenAccess(flags: number | string): OpenAccess {
  if (typeof flags === 'string' && /^\d+$/.test(flags.trim())) flags = Number(flags.trim());
  if (typeof flags === 'number') {
    const v = flags >>> 0;
    const acc = v & O.ACCMODE;
    return {
      read: acc === 0 || acc === O.RDWR,
      write: acc === O.WRONLY || acc === O.RDWR,
      create: (v & O.CREAT) !== 0,
      tmpfile: (v & O.TMPFILE_BIT) !== 0,
    };
  }
  const names = new Set(flags.split(/[^A-Z0-9_]+/));
  return {
    read: names.has('O_RDONLY') || names.has('O_RDWR'),
    write: names.has('O_WRONLY') || names.has('O_RDWR'),
    create: names.has('O_CREAT'),
    tmpfile: names.has('O_TMPFILE'),
  };
}

// ---------------------------------------------------------------------------------------------
// File modes

/** Permission bits in Falco's order (`chmod_mode`); the values are the POSIX ones. */
const MODE_BITS: readonly FlagEntry[] = [
  ['S_IXOTH', 0o1],
  ['S_IWOTH', 0o2],
  ['S_IROTH', 0o4],
  ['S_IXGRP', 0o10],
  ['S_IWGRP', 0o20],
  ['S_IRGRP', 0o40],
  ['S_IXUSR', 0o100],
  ['S_IWUSR', 0o200],
  ['S_IRUSR', 0o400],
  ['S_ISVTX', 0o1000],
  ['S_ISGID', 0o2000],
  ['S_ISUID', 0o4000],
];

/** File type values (an enumeration inside S_IFMT, not independent bits), for mknod. */
const S_IFMT = 0o170000;
const FILE_TYPES: Readonly<Record<number, string>> = {
  0o100000: 'S_IFREG',
  0o020000: 'S_IFCHR',
  0o060000: 'S_IFBLK',
  0o010000: 'S_IFIFO',
  0o140000: 'S_IFSOCK',
};

/** Octal with a leading zero, as Falco prints a mode ("0755"; zero stays "0"). */
export function modeOctal(mode: number): string {
  const v = mode >>> 0;
  return v === 0 ? '0' : '0' + v.toString(8);
}

/** "S_IXOTH|S_IROTH|…|S_ISUID" for a chmod(2) mode; '' when no bit is set (then show the octal). */
export function renderChmodMode(mode: number): string {
  return renderBits(mode & 0o7777, MODE_BITS);
}

/** A mknod(2) mode: permission names, then the file type name. */
export function renderMknodMode(mode: number): string {
  const type = FILE_TYPES[(mode >>> 0) & S_IFMT];
  return [renderChmodMode(mode), type ?? ''].filter((s) => s !== '').join('|');
}

/** True when a mode (number, octal text or rendered names) grants execute to anyone. */
export function modeHasExec(mode: number | string): boolean {
  if (typeof mode === 'string') {
    const t = mode.trim();
    if (/^0[0-7]*$/.test(t)) return (parseInt(t, 8) & 0o111) !== 0;
    if (/^\d+$/.test(t)) return (Number(t) & 0o111) !== 0;
    return /\bS_IX(USR|GRP|OTH)\b/.test(t);
  }
  return ((mode >>> 0) & 0o111) !== 0;
}

// ---------------------------------------------------------------------------------------------
// errno

/**
 * Linux errno names by number (asm-generic/errno-base.h and errno.h, plus the kernel-internal
 * 512+ codes a syscall can leak, which Falco also names).
 */
const ERRNO_NAMES: readonly string[] = [
  '', 'EPERM', 'ENOENT', 'ESRCH', 'EINTR', 'EIO', 'ENXIO', 'E2BIG', 'ENOEXEC', 'EBADF', 'ECHILD',
  'EAGAIN', 'ENOMEM', 'EACCES', 'EFAULT', 'ENOTBLK', 'EBUSY', 'EEXIST', 'EXDEV', 'ENODEV', 'ENOTDIR',
  'EISDIR', 'EINVAL', 'ENFILE', 'EMFILE', 'ENOTTY', 'ETXTBSY', 'EFBIG', 'ENOSPC', 'ESPIPE', 'EROFS',
  'EMLINK', 'EPIPE', 'EDOM', 'ERANGE', 'EDEADLK', 'ENAMETOOLONG', 'ENOLCK', 'ENOSYS', 'ENOTEMPTY', 'ELOOP',
  '', 'ENOMSG', 'EIDRM', 'ECHRNG', 'EL2NSYNC', 'EL3HLT', 'EL3RST', 'ELNRNG', 'EUNATCH', 'ENOCSI',
  'EL2HLT', 'EBADE', 'EBADR', 'EXFULL', 'ENOANO', 'EBADRQC', 'EBADSLT', '', 'EBFONT', 'ENOSTR',
  'ENODATA', 'ETIME', 'ENOSR', 'ENONET', 'ENOPKG', 'EREMOTE', 'ENOLINK', 'EADV', 'ESRMNT', 'ECOMM',
  'EPROTO', 'EMULTIHOP', 'EDOTDOT', 'EBADMSG', 'EOVERFLOW', 'ENOTUNIQ', 'EBADFD', 'EREMCHG', 'ELIBACC', 'ELIBBAD',
  'ELIBSCN', 'ELIBMAX', 'ELIBEXEC', 'EILSEQ', 'ERESTART', 'ESTRPIPE', 'EUSERS', 'ENOTSOCK', 'EDESTADDRREQ', 'EMSGSIZE',
  'EPROTOTYPE', 'ENOPROTOOPT', 'EPROTONOSUPPORT', 'ESOCKTNOSUPPORT', 'EOPNOTSUPP', 'EPFNOSUPPORT', 'EAFNOSUPPORT', 'EADDRINUSE', 'EADDRNOTAVAIL', 'ENETDOWN',
  'ENETUNREACH', 'ENETRESET', 'ECONNABORTED', 'ECONNRESET', 'ENOBUFS', 'EISCONN', 'ENOTCONN', 'ESHUTDOWN', 'ETOOMANYREFS', 'ETIMEDOUT',
  'ECONNREFUSED', 'EHOSTDOWN', 'EHOSTUNREACH', 'EALREADY', 'EINPROGRESS', 'ESTALE', 'EUCLEAN', 'ENOTNAM', 'ENAVAIL', 'EISNAM',
  'EREMOTEIO', 'EDQUOT', 'ENOMEDIUM', 'EMEDIUMTYPE', 'ECANCELED', 'ENOKEY', 'EKEYEXPIRED', 'EKEYREVOKED', 'EKEYREJECTED', 'EOWNERDEAD',
  'ENOTRECOVERABLE', 'ERFKILL', 'EHWPOISON',
];
const KERNEL_ERRNO_NAMES: Readonly<Record<number, string>> = {
  512: 'ERESTARTSYS', 513: 'ERESTARTNOINTR', 514: 'ERESTARTNOHAND', 515: 'ENOIOCTLCMD',
  516: 'ERESTART_RESTARTBLOCK', 521: 'EBADHANDLE', 522: 'ENOTSYNC', 523: 'EBADCOOKIE', 524: 'ENOTSUPP',
  525: 'ETOOSMALL', 526: 'ESERVERFAULT', 527: 'EBADTYPE', 528: 'EJUKEBOX', 529: 'EIOCBQUEUED', 530: 'EIOCBRETRY',
};

/** The errno name for `n` (2 or -2 → "ENOENT"), or undefined when unknown. */
export function errnoName(n: number): string | undefined {
  const code = Math.abs(Math.trunc(n));
  const name = ERRNO_NAMES[code] || KERNEL_ERRNO_NAMES[code];
  return name ? name : undefined;
}

/** Falco's evt.res text: "SUCCESS" for a non-negative result, else the errno name (or the number). */
export function renderResult(res: number): string {
  if (res >= 0) return 'SUCCESS';
  return errnoName(res) ?? String(res);
}

// ---------------------------------------------------------------------------------------------
// Enumerations (exact values): socket families, ptrace requests, bpf commands

/**
 * Address families by Linux number. Where two names share a number, both are shown in Falco's
 * order ("AF_LOCAL|AF_UNIX", "AF_ROUTE|AF_NETLINK").
 */
const SOCKET_FAMILIES: Readonly<Record<number, string>> = {
  0: 'AF_UNSPEC', 1: 'AF_LOCAL|AF_UNIX', 2: 'AF_INET', 3: 'AF_AX25', 4: 'AF_IPX', 5: 'AF_APPLETALK',
  6: 'AF_NETROM', 7: 'AF_BRIDGE', 8: 'AF_ATMPVC', 9: 'AF_X25', 10: 'AF_INET6', 11: 'AF_ROSE',
  12: 'AF_DECnet', 13: 'AF_NETBEUI', 14: 'AF_SECURITY', 15: 'AF_KEY', 16: 'AF_ROUTE|AF_NETLINK',
  17: 'AF_PACKET', 18: 'AF_ASH', 19: 'AF_ECONET', 20: 'AF_ATMSVC', 21: 'AF_RDS', 22: 'AF_SNA',
  23: 'AF_IRDA', 24: 'AF_PPPOX', 25: 'AF_WANPIPE', 26: 'AF_LLC', 27: 'AF_IB', 28: 'AF_MPLS',
  29: 'AF_CAN', 30: 'AF_TIPC', 31: 'AF_BLUETOOTH', 32: 'AF_IUCV', 33: 'AF_RXRPC', 34: 'AF_ISDN',
  35: 'AF_PHONET', 36: 'AF_IEEE802154', 37: 'AF_CAIF', 38: 'AF_ALG', 39: 'AF_NFC', 40: 'AF_VSOCK',
  41: 'AF_KCM', 42: 'AF_QIPCRTR', 43: 'AF_SMC', 44: 'AF_XDP', 45: 'AF_MCTP',
};

/** ptrace(2) requests by Linux number (x86-64 numbering for the arch-specific ones). */
const PTRACE_REQUESTS: Readonly<Record<number, string>> = {
  0: 'PTRACE_TRACEME', 1: 'PTRACE_PEEKTEXT', 2: 'PTRACE_PEEKDATA', 3: 'PTRACE_PEEKUSR',
  4: 'PTRACE_POKETEXT', 5: 'PTRACE_POKEDATA', 6: 'PTRACE_POKEUSR', 7: 'PTRACE_CONT', 8: 'PTRACE_KILL',
  9: 'PTRACE_SINGLESTEP', 12: 'PTRACE_GETREGS', 13: 'PTRACE_SETREGS', 14: 'PTRACE_GETFPREGS',
  15: 'PTRACE_SETFPREGS', 16: 'PTRACE_ATTACH', 17: 'PTRACE_DETACH', 18: 'PTRACE_GETFPXREGS',
  19: 'PTRACE_SETFPXREGS', 24: 'PTRACE_SYSCALL', 25: 'PTRACE_GET_THREAD_AREA',
  26: 'PTRACE_SET_THREAD_AREA', 30: 'PTRACE_ARCH_PRCTL', 31: 'PTRACE_SYSEMU',
  32: 'PTRACE_SYSEMU_SINGLESTEP', 33: 'PTRACE_SINGLEBLOCK', 0x4200: 'PTRACE_SETOPTIONS',
  0x4201: 'PTRACE_GETEVENTMSG', 0x4202: 'PTRACE_GETSIGINFO', 0x4203: 'PTRACE_SETSIGINFO',
  0x4204: 'PTRACE_GETREGSET', 0x4205: 'PTRACE_SETREGSET', 0x4206: 'PTRACE_SEIZE',
  0x4207: 'PTRACE_INTERRUPT', 0x4208: 'PTRACE_LISTEN', 0x4209: 'PTRACE_PEEKSIGINFO',
  0x420a: 'PTRACE_GETSIGMASK', 0x420b: 'PTRACE_SETSIGMASK',
};

/** bpf(2) commands by number (enum bpf_cmd in <linux/bpf.h>). */
const BPF_COMMANDS: readonly string[] = [
  'BPF_MAP_CREATE', 'BPF_MAP_LOOKUP_ELEM', 'BPF_MAP_UPDATE_ELEM', 'BPF_MAP_DELETE_ELEM',
  'BPF_MAP_GET_NEXT_KEY', 'BPF_PROG_LOAD', 'BPF_OBJ_PIN', 'BPF_OBJ_GET', 'BPF_PROG_ATTACH',
  'BPF_PROG_DETACH', 'BPF_PROG_TEST_RUN', 'BPF_PROG_GET_NEXT_ID', 'BPF_MAP_GET_NEXT_ID',
  'BPF_PROG_GET_FD_BY_ID', 'BPF_MAP_GET_FD_BY_ID', 'BPF_OBJ_GET_INFO_BY_FD', 'BPF_PROG_QUERY',
  'BPF_RAW_TRACEPOINT_OPEN', 'BPF_BTF_LOAD', 'BPF_BTF_GET_FD_BY_ID', 'BPF_TASK_FD_QUERY',
  'BPF_MAP_LOOKUP_AND_DELETE_ELEM', 'BPF_MAP_FREEZE', 'BPF_BTF_GET_NEXT_ID', 'BPF_MAP_LOOKUP_BATCH',
  'BPF_MAP_LOOKUP_AND_DELETE_BATCH', 'BPF_MAP_UPDATE_BATCH', 'BPF_MAP_DELETE_BATCH',
  'BPF_LINK_CREATE', 'BPF_LINK_UPDATE', 'BPF_LINK_GET_FD_BY_ID', 'BPF_LINK_GET_NEXT_ID',
  'BPF_ENABLE_STATS', 'BPF_ITER_CREATE', 'BPF_LINK_DETACH', 'BPF_PROG_BIND_MAP',
];

export function socketFamilyName(n: number): string | undefined {
  return SOCKET_FAMILIES[n];
}
export function ptraceRequestName(n: number): string | undefined {
  return PTRACE_REQUESTS[n];
}
export function bpfCommandName(n: number): string | undefined {
  return BPF_COMMANDS[n];
}

// ---------------------------------------------------------------------------------------------
// Per-event argument rendering

/** An argument as Falco shows it: the raw text and, when it has one, the resolved form. */
export interface RenderedArg {
  raw: string;
  resolved?: string;
}

const OPEN_EVENTS = new Set(['open', 'openat', 'openat2', 'open_by_handle_at']);
const CREAT_EVENTS = new Set(['creat']);
const CHMOD_EVENTS = new Set(['chmod', 'fchmod', 'fchmodat']);
const MKNOD_EVENTS = new Set(['mknod', 'mknodat']);

/**
 * How Falco would print argument `key` of a `type` event holding `value`. Strings are taken as
 * already rendered and pass through; numbers get names where Falco has a table for them.
 */
export function renderArg(type: string, key: string, value: string | number): RenderedArg {
  if (typeof value !== 'number') return { raw: String(value) };
  const named = (resolved: string | undefined): RenderedArg =>
    resolved ? { raw: String(value), resolved } : { raw: String(value) };
  switch (key) {
    case 'flags':
      if (OPEN_EVENTS.has(type)) return named(renderOpenFlags(value));
      break;
    case 'mode':
      if (CHMOD_EVENTS.has(type)) return { raw: modeOctal(value), ...optional(renderChmodMode(value)) };
      if (MKNOD_EVENTS.has(type)) return { raw: modeOctal(value), ...optional(renderMknodMode(value)) };
      // open/openat/creat print their mode in octal, without names.
      if (OPEN_EVENTS.has(type) || CREAT_EVENTS.has(type)) return { raw: modeOctal(value) };
      break;
    case 'res':
      return value < 0 ? named(errnoName(value)) : { raw: String(value) };
    case 'domain':
      if (type === 'socket' || type === 'socketpair') return named(socketFamilyName(value));
      break;
    case 'request':
      if (type === 'ptrace') return named(ptraceRequestName(value));
      break;
    case 'cmd':
      if (type === 'bpf') return named(bpfCommandName(value));
      break;
  }
  return { raw: String(value) };
}

function optional(resolved: string): { resolved?: string } {
  return resolved ? { resolved } : {};
}

// ---------------------------------------------------------------------------------------------
// The other flag and enumeration tables of libs' driver/flags_table.c that syscall rules can read.
// Names and their order are libs'; the values are Linux's (the raw numbers our driver captures),
// not libs' PPM encoding.

/** A libs flag table: `exact` tables are enumerations (PT_ENUMFLAGS: every entry equal to the value). */
export interface FlagTable {
  readonly entries: readonly FlagEntry[];
  readonly exact?: boolean;
}

/**
 * libs' rendering of a flags value (sinsp_evt::get_param_as_str, PT_FLAGS and PT_ENUMFLAGS): for
 * bit sets, each entry whose bits are all set is named and its bits cleared, an entry of value 0
 * names only a zero value, and the walk stops once an entry equals the whole value; for
 * enumerations, every entry equal to the value is named. '' when nothing matches.
 */
export function renderFlagTable(value: number, table: FlagTable): string {
  const initial = value >>> 0;
  const names: string[] = [];
  if (table.exact) {
    for (const [name, v] of table.entries) if (v >>> 0 === initial) names.push(name);
    return names.join('|');
  }
  let rest = initial;
  for (const [name, bits] of table.entries) {
    const b = bits >>> 0;
    if ((b === 0 && initial === 0) || (b !== 0 && rest !== 0 && (rest & b) >>> 0 === b)) {
      names.push(name);
      rest = (rest & ~b) >>> 0;
      if (b === initial) break;
    }
  }
  return names.join('|');
}

export const LINKAT_FLAGS: FlagTable = { entries: [['AT_SYMLINK_FOLLOW', 0x400], ['AT_EMPTY_PATH', 0x1000]] };
export const UNLINKAT_FLAGS: FlagTable = { entries: [['AT_REMOVEDIR', 0x200]] };
export const RENAMEAT2_FLAGS: FlagTable = { entries: [['RENAME_NOREPLACE', 1], ['RENAME_EXCHANGE', 2], ['RENAME_WHITEOUT', 4]] };
export const MEMFD_CREATE_FLAGS: FlagTable = { entries: [['MFD_CLOEXEC', 1], ['MFD_ALLOW_SEALING', 2], ['MFD_HUGETLB', 4]] };
export const EXECVEAT_FLAGS: FlagTable = { entries: [['AT_EMPTY_PATH', 0x1000], ['AT_SYMLINK_NOFOLLOW', 0x100]] };
export const OPENAT2_RESOLVE_FLAGS: FlagTable = {
  entries: [['RESOLVE_BENEATH', 0x08], ['RESOLVE_IN_ROOT', 0x10], ['RESOLVE_NO_MAGICLINKS', 0x02], ['RESOLVE_NO_SYMLINKS', 0x04], ['RESOLVE_NO_XDEV', 0x01], ['RESOLVE_CACHED', 0x20]],
};
export const FINIT_MODULE_FLAGS: FlagTable = {
  entries: [['MODULE_INIT_IGNORE_MODVERSIONS', 1], ['MODULE_INIT_IGNORE_VERMAGIC', 2], ['MODULE_INIT_COMPRESSED_FILE', 4]],
};
export const UMOUNT_FLAGS: FlagTable = { entries: [['FORCE', 1], ['DETACH', 2], ['EXPIRE', 4], ['NOFOLLOW', 8]] };
/** clone(2) flags, as setns's nstype and unshare's flags show them (libs' clone_flags, its own pseudo-flags left out). */
export const CLONE_FLAGS: FlagTable = {
  entries: [
    ['CLONE_FILES', 0x400], ['CLONE_FS', 0x200], ['CLONE_IO', 0x80000000], ['CLONE_NEWIPC', 0x08000000],
    ['CLONE_NEWNET', 0x40000000], ['CLONE_NEWNS', 0x20000], ['CLONE_NEWPID', 0x20000000], ['CLONE_NEWUTS', 0x04000000],
    ['CLONE_PARENT', 0x8000], ['CLONE_PARENT_SETTID', 0x100000], ['CLONE_PTRACE', 0x2000], ['CLONE_SIGHAND', 0x800],
    ['CLONE_SYSVSEM', 0x40000], ['CLONE_THREAD', 0x10000], ['CLONE_UNTRACED', 0x800000], ['CLONE_VM', 0x100],
    ['CLONE_NEWUSER', 0x10000000], ['CLONE_CHILD_CLEARTID', 0x200000], ['CLONE_CHILD_SETTID', 0x01000000],
    ['CLONE_SETTLS', 0x80000], ['CLONE_VFORK', 0x4000], ['CLONE_NEWCGROUP', 0x02000000],
  ],
};
/** mount(2) flags: libs' names are the MS_ ones without the prefix. */
export const MOUNT_FLAGS: FlagTable = {
  entries: [
    ['RDONLY', 1], ['NOSUID', 2], ['NODEV', 4], ['NOEXEC', 8], ['SYNCHRONOUS', 16], ['REMOUNT', 32], ['MANDLOCK', 64],
    ['DIRSYNC', 128], ['NOATIME', 1024], ['NODIRATIME', 2048], ['BIND', 4096], ['MOVE', 8192], ['REC', 16384],
    ['SILENT', 32768], ['POSIXACL', 1 << 16], ['UNBINDABLE', 1 << 17], ['PRIVATE', 1 << 18], ['SLAVE', 1 << 19],
    ['SHARED', 1 << 20], ['RELATIME', 1 << 21], ['KERNMOUNT', 1 << 22], ['I_VERSION', 1 << 23], ['STRICTATIME', 1 << 24],
    ['LAZYTIME', 1 << 25], ['NOSEC', 1 << 28], ['BORN', 1 << 29], ['ACTIVE', 1 << 30], ['NOUSER', 0x80000000],
  ],
};
/** prctl(2) options libs names (PR_MCE_KILL is in its table twice, so it prints twice). */
export const PRCTL_OPTIONS: FlagTable = {
  exact: true,
  entries: [
    ['PR_GET_DUMPABLE', 3], ['PR_SET_DUMPABLE', 4], ['PR_GET_KEEPCAPS', 7], ['PR_SET_KEEPCAPS', 8], ['PR_SET_NAME', 15],
    ['PR_GET_NAME', 16], ['PR_GET_SECCOMP', 21], ['PR_SET_SECCOMP', 22], ['PR_CAPBSET_READ', 23], ['PR_CAPBSET_DROP', 24],
    ['PR_GET_SECUREBITS', 27], ['PR_SET_SECUREBITS', 28], ['PR_MCE_KILL', 33], ['PR_MCE_KILL', 33], ['PR_SET_MM', 35],
    ['PR_SET_CHILD_SUBREAPER', 36], ['PR_GET_CHILD_SUBREAPER', 37], ['PR_SET_NO_NEW_PRIVS', 38], ['PR_GET_NO_NEW_PRIVS', 39],
    ['PR_GET_TID_ADDRESS', 40], ['PR_SET_THP_DISABLE', 41], ['PR_GET_THP_DISABLE', 42], ['PR_CAP_AMBIENT', 47],
  ],
};
