/**
 * Reading one process out of /proc, robustly.
 *
 * Every read here races with the process exiting (ENOENT, ESRCH), being replaced by exec, or being
 * unreadable to us (EACCES on another user's process when not root). None of that is exceptional
 * for an agent watching a whole host, so nothing here throws: a file that cannot be read is simply
 * missing from the result, and a process whose stat cannot be read at all is `undefined`.
 *
 * The work is split in two so the same parsers serve a synchronous reader and an asynchronous one:
 * `fetch*` gather raw file contents, `parse*` and `buildProcess` turn them into values. The agent
 * reads synchronously, at start and on the exec path alike: a /proc file is made by the kernel on
 * the spot and never waits on a disk, and through fs/promises each file is an open, reads and a
 * close, each a trip through libuv's thread pool. One process read that way cost ~960 µs of CPU,
 * read synchronously into one scratch buffer ~150 µs (issue 16). The one read that can wait is
 * cmdline or environ of a process whose memory map is locked (the kernel takes that lock to copy
 * them out); the thread pool's four threads were no real shelter from that either.
 *
 * `procRoot` (default '/proc') lets tests point the reader at a fake tree in a temp dir.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readlinkSync, readSync, readdirSync, statSync } from 'node:fs';
import { open as openAsync, readlink as readlinkAsync, readdir as readdirAsync, stat as statAsync } from 'node:fs/promises';

export interface ProcfsOptions {
  /** Where procfs is mounted (default '/proc'). */
  procRoot?: string;
  /** Clock ticks per second for /proc/PID/stat times (default: `getconf CLK_TCK`, else 100). */
  clkTck?: number;
}

/** What /proc/PID/stat says, in the fields we use. Times are in clock ticks. */
export interface ProcStat {
  pid: number;
  /** The comm inside the parentheses (it may itself contain spaces and parentheses). */
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  tty_nr: number;
  /** Field 14, 15: user and system CPU time in clock ticks. */
  utime: number;
  stime: number;
  num_threads: number;
  /** Field 22: start time in clock ticks after boot. */
  starttime: number;
}

/** What /proc/PID/status says, in the fields we use. */
export interface ProcStatus {
  name?: string;
  tgid?: number;
  ppid?: number;
  /** Real, effective, saved, filesystem uid / gid. */
  uids?: [number, number, number, number];
  gids?: [number, number, number, number];
  /** Supplementary groups. */
  groups?: number[];
  /** NSpid / NStgid / NSpgid / NSsid: the id in each pid namespace, outermost first. */
  nspid?: number[];
  nstgid?: number[];
  nspgid?: number[];
  nssid?: number[];
  /** Capability sets as 64-bit masks. */
  capInh?: bigint;
  capPrm?: bigint;
  capEff?: bigint;
  capBnd?: bigint;
  capAmb?: bigint;
}

/** Raw /proc/PID files: undefined where the read failed. */
export interface ProcFiles {
  pid: number;
  stat?: string;
  status?: string;
  cmdline?: Buffer;
  /** /proc/PID/comm; the fetchers leave it out, stat names the same task (see ImageMark). */
  comm?: string;
  exe?: string;
  cwd?: string;
  root?: string;
  loginuid?: string;
  environ?: Buffer;
  cgroup?: string;
  /** readlink of ns/mnt, e.g. "mnt:[4026531841]": the key for per-namespace caches. */
  mntns?: string;
  /** stat() of /proc/PID/exe taken by the closing image mark: ExeIdentity.inspect needs no stat of its own. */
  exeStat?: ExeStat;
  /**
   * The process exec'd again during every re-read (see fetchProcess): nothing else is set, since
   * the files would mix two images.
   */
  unsettled?: true;
}

/** Everything procfs tells us about one process, parsed. */
export interface ProcRead {
  pid: number;
  stat: ProcStat;
  status?: ProcStatus;
  /** Kernel comm (proc.name). Falls back to stat's comm when /proc/PID/comm is unreadable. */
  comm: string;
  /** NUL-split command line; [] for kernel threads and zombies. */
  argv?: string[];
  /** The /proc/PID/exe target without the " (deleted)" suffix. */
  exepath?: string;
  exeDeleted?: boolean;
  exeFromMemfd?: boolean;
  cwd?: string;
  /** The process's root as seen from here ("/" unless chrooted or in another mount namespace). */
  root?: string;
  /** Audit login uid; -1 when unset (4294967295). */
  loginuid?: number;
  env?: string[];
  /** Lines of /proc/PID/cgroup ("hierarchy:controllers:path"). */
  cgroups?: string[];
  mntns?: string;
  /** See ProcFiles.exeStat. */
  exeStat?: ExeStat;
  /** Start time, ns since the epoch. */
  startTs: bigint;
}

/** What a stat() of /proc/PID/exe says of the executable (a BigIntStats has all of it). */
export interface ExeStat {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mode: bigint;
  uid: bigint;
  gid: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface ReadOptions extends ProcfsOptions {
  /** Read /proc/PID/environ too (it can be large, so only when asked). */
  env?: boolean;
  /** Most bytes read from cmdline and environ each (default 1 MiB; ARG_MAX is typically 2 MiB). */
  maxArgBytes?: number;
  /**
   * The process has exited already (its exit notice came): it is a zombie at best, whose memory,
   * files and namespaces the kernel has let go, so only stat, status, loginuid and cgroup can
   * still say anything and only they are read (cmdline reads empty and environ not at all, as a
   * zombie's do).
   */
  exited?: boolean;
  /** Tests: called after the files and before the closing image mark (a fake /proc execs here). */
  betweenReads?: () => void;
}

/** Re-reads of a process whose image changed while its files were read, before it is dropped. */
export const MAX_IMAGE_REREADS = 3;

/** Counts for /metrics and the agent's stats: reads redone, and reads dropped, for a mid-read exec. */
export const procReadStats = { imageRereads: 0, imageUnsettled: 0 };

const DEFAULT_PROC = '/proc';
const SMALL_FILE = 64 * 1024;
const DEFAULT_MAX_ARG_BYTES = 1024 * 1024;

// ---- clock ---------------------------------------------------------------------------------------

let cachedClkTck: number | undefined;

/** USER_HZ: 100 on every mainstream architecture, but ask getconf once rather than assume. */
export function clockTicks(): number {
  if (cachedClkTck === undefined) {
    cachedClkTck = 100;
    try {
      const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      if (Number.isInteger(v) && v > 0) cachedClkTck = v;
    } catch {
      // no getconf: keep 100
    }
  }
  return cachedClkTck;
}

const bootTimes = new Map<string, bigint>();

/**
 * Boot time (btime in /proc/stat) in ns since the epoch, read once per proc root. Cached because
 * the kernel recomputes btime from the wall clock on every read: a clock step would otherwise move
 * every process's start time, and start time is what tells a reused pid from the original.
 */
export function bootTimeNs(procRoot = DEFAULT_PROC): bigint | undefined {
  const hit = bootTimes.get(procRoot);
  if (hit !== undefined) return hit;
  const text = readSmallSync(`${procRoot}/stat`);
  const m = text === undefined ? null : /^btime\s+(\d+)\s*$/m.exec(text);
  if (!m) return undefined;
  const ns = BigInt(m[1]!) * 1_000_000_000n;
  bootTimes.set(procRoot, ns);
  return ns;
}

/** Start time in ns since the epoch from stat's starttime (clock ticks after boot). */
export function startTsFromTicks(ticks: number, btimeNs: bigint, clkTck: number): bigint {
  return btimeNs + (BigInt(ticks) * 1_000_000_000n) / BigInt(clkTck);
}

// ---- parsers --------------------------------------------------------------------------------------

/** The last stat field parseStat reads (starttime). */
const STAT_LAST_FIELD = 22;

const isBlank = (c: number): boolean => c === 32 || c === 10 || c === 9 || c === 13;

/**
 * The first `count` whitespace-separated fields of `text` from `from`, or undefined when it has
 * fewer. A scan rather than a split of the whole line: a stat line has 52 fields and parseStat
 * wants the first 20 after the comm, once per exec under the proc connector (issue 16).
 */
function statFields(text: string, from: number, count: number): string[] | undefined {
  const out = new Array<string>(count);
  const len = text.length;
  let pos = from;
  for (let i = 0; i < count; i++) {
    while (pos < len && isBlank(text.charCodeAt(pos))) pos++;
    if (pos >= len) return undefined;
    let end = pos + 1;
    while (end < len && !isBlank(text.charCodeAt(end))) end++;
    out[i] = text.slice(pos, end);
    pos = end;
  }
  return out;
}

/**
 * Parse /proc/PID/stat. The comm sits in parentheses and may contain anything, ')' and spaces
 * included, so the fields are counted from the LAST ')'. Returns undefined when the text does not
 * have the shape (a truncated or garbage file).
 */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  // rest[0] is field 3 (state); field N is rest[N - 3]. We need up to field 22 (starttime).
  const rest = statFields(text, close + 1, STAT_LAST_FIELD - 2);
  if (!Number.isInteger(pid) || pid <= 0 || rest === undefined) return undefined;
  const num = (field: number): number => Number(rest[field - 3]);
  const out: ProcStat = {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0]!,
    ppid: num(4),
    pgrp: num(5),
    session: num(6),
    tty_nr: num(7),
    utime: num(14),
    stime: num(15),
    num_threads: num(20),
    starttime: num(22),
  };
  for (const k of ['ppid', 'pgrp', 'session', 'tty_nr', 'starttime'] as const) {
    if (!Number.isFinite(out[k])) return undefined;
  }
  return out;
}

const ints = (s: string): number[] =>
  s.trim().split(/\s+/).filter((x) => x !== '').map(Number).filter((n) => Number.isInteger(n));

function hexMask(s: string): bigint | undefined {
  const t = s.trim();
  return /^[0-9a-fA-F]{1,16}$/.test(t) ? BigInt('0x' + t) : undefined;
}

const STATUS_KEYS = new Set(['Name', 'Tgid', 'PPid', 'Uid', 'Gid', 'Groups', 'NSpid', 'NStgid', 'NSpgid', 'NSsid', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']);

/** Parse /proc/PID/status ("Key:\tvalue" lines); unknown or malformed lines are skipped. */
export function parseStatus(text: string): ProcStatus {
  const out: ProcStatus = {};
  // Line by line without splitting the whole text: only the values of the keys we use are cut out,
  // and CapAmb is the last line we use (the kernel prints it after the others; on a kernel
  // without it the scan simply runs to the end).
  for (let pos = 0; pos < text.length; ) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', pos);
    const key = colon > pos && colon < end ? text.slice(pos, colon) : '';
    const val = key === '' || !STATUS_KEYS.has(key) ? '' : text.slice(colon + 1, end);
    pos = end + 1;
    switch (key) {
      case 'Name': out.name = val.trim(); break;
      case 'Tgid': { const n = ints(val); if (n.length) out.tgid = n[0]; break; }
      case 'PPid': { const n = ints(val); if (n.length) out.ppid = n[0]; break; }
      case 'Uid': { const n = ints(val); if (n.length === 4) out.uids = n as [number, number, number, number]; break; }
      case 'Gid': { const n = ints(val); if (n.length === 4) out.gids = n as [number, number, number, number]; break; }
      case 'Groups': out.groups = ints(val); break;
      case 'NSpid': out.nspid = ints(val); break;
      case 'NStgid': out.nstgid = ints(val); break;
      case 'NSpgid': out.nspgid = ints(val); break;
      case 'NSsid': out.nssid = ints(val); break;
      case 'CapInh': out.capInh = hexMask(val); break;
      case 'CapPrm': out.capPrm = hexMask(val); break;
      case 'CapEff': out.capEff = hexMask(val); break;
      case 'CapBnd': out.capBnd = hexMask(val); break;
      case 'CapAmb': out.capAmb = hexMask(val); return out;
      default: break;
    }
  }
  return out;
}

/** Capability names by bit number, as in linux/capability.h (Falco prints these names). */
export const CAPABILITY_NAMES: readonly string[] = [
  'CAP_CHOWN', // 0
  'CAP_DAC_OVERRIDE', // 1
  'CAP_DAC_READ_SEARCH', // 2
  'CAP_FOWNER', // 3
  'CAP_FSETID', // 4
  'CAP_KILL', // 5
  'CAP_SETGID', // 6
  'CAP_SETUID', // 7
  'CAP_SETPCAP', // 8
  'CAP_LINUX_IMMUTABLE', // 9
  'CAP_NET_BIND_SERVICE', // 10
  'CAP_NET_BROADCAST', // 11
  'CAP_NET_ADMIN', // 12
  'CAP_NET_RAW', // 13
  'CAP_IPC_LOCK', // 14
  'CAP_IPC_OWNER', // 15
  'CAP_SYS_MODULE', // 16
  'CAP_SYS_RAWIO', // 17
  'CAP_SYS_CHROOT', // 18
  'CAP_SYS_PTRACE', // 19
  'CAP_SYS_PACCT', // 20
  'CAP_SYS_ADMIN', // 21
  'CAP_SYS_BOOT', // 22
  'CAP_SYS_NICE', // 23
  'CAP_SYS_RESOURCE', // 24
  'CAP_SYS_TIME', // 25
  'CAP_SYS_TTY_CONFIG', // 26
  'CAP_MKNOD', // 27
  'CAP_LEASE', // 28
  'CAP_AUDIT_WRITE', // 29
  'CAP_AUDIT_CONTROL', // 30
  'CAP_SETFCAP', // 31
  'CAP_MAC_OVERRIDE', // 32
  'CAP_MAC_ADMIN', // 33
  'CAP_SYSLOG', // 34
  'CAP_WAKE_ALARM', // 35
  'CAP_BLOCK_SUSPEND', // 36
  'CAP_AUDIT_READ', // 37
  'CAP_PERFMON', // 38
  'CAP_BPF', // 39
  'CAP_CHECKPOINT_RESTORE', // 40
];

export const CAP_DAC_OVERRIDE = 1;

/** capsToText's answers: a host has a handful of distinct sets, and every exec read asks for three. */
const capTexts = new Map<bigint, string>();

/**
 * A capability mask in Falco's text form: the names of the set bits, lowest bit first, separated
 * by single spaces ("" for the empty set). Bits newer than CAP_CHECKPOINT_RESTORE have no name
 * here and are left out, as Falco's own table leaves out what it does not know.
 */
export function capsToText(mask: bigint): string {
  const hit = capTexts.get(mask);
  if (hit !== undefined) return hit;
  const names: string[] = [];
  for (let bit = 0; bit < CAPABILITY_NAMES.length; bit++) {
    if ((mask >> BigInt(bit)) & 1n) names.push(CAPABILITY_NAMES[bit]!);
  }
  const text = names.join(' ');
  if (capTexts.size >= 256) capTexts.clear();
  capTexts.set(mask, text);
  return text;
}

export function hasCap(mask: bigint | undefined, bit: number): boolean | undefined {
  return mask === undefined ? undefined : ((mask >> BigInt(bit)) & 1n) === 1n;
}

/** NUL-separated strings (cmdline, environ), without the empty string the trailing NUL leaves. */
export function splitNul(buf: Buffer): string[] {
  if (buf.length === 0) return [];
  const text = buf.toString('utf8');
  const parts = text.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/**
 * Each line of /proc/PID/cgroup ("hierarchy:controllers:path") handed to `visit` in order: the v2
 * line is hierarchy "0" with no controllers, a v1 line names its controllers comma-separated. The
 * path is everything after the second colon, as the kernel wrote it (it may hold colons); a line
 * without two colons is skipped. One parser for every reader of the file, each picking its lines.
 */
export function forEachCgroupLine(text: string, visit: (hierarchy: string, controllers: string, path: string) => void): void {
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    visit(line.slice(0, a), line.slice(a + 1, b), line.slice(b + 1));
  }
}

/** Split an exe link target into path and flags. */
export function parseExeLink(target: string): { exepath: string; deleted: boolean; memfd: boolean } {
  const deleted = target.endsWith(' (deleted)');
  const exepath = deleted ? target.slice(0, -' (deleted)'.length) : target;
  return { exepath, deleted, memfd: exepath.startsWith('/memfd:') };
}

/** loginuid text → number; the unset value (4294967295, i.e. (uid_t)-1) becomes -1. */
export function parseLoginuid(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return n === 4294967295 ? -1 : n;
}

/** Turn raw files into a ProcRead; undefined when stat is missing or garbage. */
export function buildProcess(files: ProcFiles, opts: ProcfsOptions = {}): ProcRead | undefined {
  if (files.stat === undefined) return undefined;
  const stat = parseStat(files.stat);
  if (!stat || stat.pid !== files.pid) return undefined;
  const procRoot = opts.procRoot ?? DEFAULT_PROC;
  const btime = bootTimeNs(procRoot);
  const clk = opts.clkTck ?? clockTicks();
  const out: ProcRead = {
    pid: files.pid,
    stat,
    comm: files.comm !== undefined ? files.comm.replace(/\n$/, '') : stat.comm,
    // Without btime we cannot place the start on the wall clock; ticks since boot still give a
    // stable identity, which is what pid-reuse detection needs.
    startTs: btime !== undefined ? startTsFromTicks(stat.starttime, btime, clk) : BigInt(stat.starttime),
  };
  if (files.status !== undefined) out.status = parseStatus(files.status);
  if (files.cmdline !== undefined) out.argv = splitNul(files.cmdline);
  if (files.exe !== undefined) {
    const e = parseExeLink(files.exe);
    out.exepath = e.exepath;
    out.exeDeleted = e.deleted;
    out.exeFromMemfd = e.memfd;
  }
  if (files.cwd !== undefined) out.cwd = files.cwd;
  if (files.root !== undefined) out.root = files.root;
  if (files.loginuid !== undefined) out.loginuid = parseLoginuid(files.loginuid);
  if (files.environ !== undefined) out.env = splitNul(files.environ);
  if (files.cgroup !== undefined) out.cgroups = files.cgroup.split('\n').filter((l) => l !== '');
  if (files.mntns !== undefined) out.mntns = files.mntns;
  if (files.exeStat !== undefined) out.exeStat = files.exeStat;
  return out;
}

// ---- raw reads ------------------------------------------------------------------------------------

/**
 * One scratch buffer for every synchronous read: the event loop runs one at a time. A fresh
 * 64 KiB buffer per read (and another for the read that finds EOF) is external memory to V8, and
 * at a few hundred reads per second it kept the agent in external-memory-pressure collections
 * (Mark-Compact every ~40 ms), which showed as a 10–20 ms tail on exec → SIGKILL.
 */
const SCRATCH = Buffer.allocUnsafe(65536);
/** First buffer of an asynchronous read: under Buffer.poolSize / 2, so it comes from the shared pool. */
const FIRST_ASYNC_CHUNK = 4095;

/**
 * `fn()`, or undefined when it throws. A failed open is the common case on the exec path (a
 * short-lived command is gone before we look), and the error's stack trace, which nobody reads,
 * is most of what it costs: it is not captured.
 */
function quietly<T>(fn: () => T): T | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return fn();
  } catch {
    return undefined;
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * Read up to `max` bytes of a file into SCRATCH (a bigger buffer only past 64 KiB) and hand them
 * to `take`, which must copy what it keeps. procfs files report size 0, so read until EOF (or,
 * `wholeAtOnce`, until a read leaves room in the buffer).
 */
function readSyncWith<T>(path: string, max: number, take: (buf: Buffer, length: number) => T, wholeAtOnce = false): T | undefined {
  const fd = quietly(() => openSync(path, 'r'));
  if (fd === undefined) return undefined;
  try {
    return readFdWith(fd, max, take, wholeAtOnce, false);
  } finally {
    try {
      closeSync(fd);
    } catch {
      // already gone
    }
  }
}

/**
 * readSyncWith() on an open fd: from its current position, or (`fromStart`) from offset 0 with
 * pread, which makes a procfs file print itself afresh (a held /proc/PID/stat read again).
 */
function readFdWith<T>(fd: number, max: number, take: (buf: Buffer, length: number) => T, wholeAtOnce: boolean, fromStart: boolean): T | undefined {
  try {
    let buf = SCRATCH;
    let total = 0;
    while (total < max) {
      if (total === buf.length) {
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 4, max));
        buf.copy(bigger, 0, 0, total);
        buf = bigger;
      }
      const room = Math.min(buf.length, max) - total;
      const n = readSync(fd, buf, total, room, fromStart ? total : null);
      if (n <= 0) break;
      total += n;
      // A file printed whole on the first read (readRecordSync): room left means the end.
      if (wholeAtOnce && n < room) break;
    }
    return take(buf, total);
  } catch {
    // ESRCH and friends mid-read: the process went away.
    return undefined;
  }
}

const copyBytes = (buf: Buffer, n: number): Buffer => (buf === SCRATCH ? Buffer.from(buf.subarray(0, n)) : buf.subarray(0, n));

/**
 * Up to `max` bytes of /proc/PID/cmdline or environ: the kernel copies out of the process's memory
 * until the request is filled or the area ends (get_mm_cmdline, environ_read loop over pages), so
 * a read that leaves room in the buffer has reached the end and no read is made to find EOF.
 */
function readArgAreaSync(path: string, max: number): Buffer | undefined {
  return readSyncWith(path, max, copyBytes, true);
}

async function readBytesAsync(path: string, max: number): Promise<Buffer | undefined> {
  let fh;
  try {
    fh = await openAsync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    // Most /proc files fit the small first buffer; it grows only when full, and the read that
    // finds EOF uses the space left instead of a new buffer.
    let buf = Buffer.allocUnsafe(Math.min(FIRST_ASYNC_CHUNK, max));
    let total = 0;
    while (total < max) {
      if (total === buf.length) {
        const bigger = Buffer.allocUnsafe(Math.min(Math.max(buf.length * 4, 65536), max));
        buf.copy(bigger, 0, 0, total);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, total, buf.length - total, null);
      if (bytesRead <= 0) break;
      total += bytesRead;
    }
    return buf.subarray(0, total);
  } catch {
    return undefined;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

export function readSmallSync(path: string): string | undefined {
  return readSyncWith(path, SMALL_FILE, (buf, n) => buf.toString('utf8', 0, n));
}

/**
 * readSmallSync() of a /proc file the kernel prints whole on the first read (stat, status,
 * cgroup, loginuid, loadavg: single_open or a plain buffer): a read that leaves room in the buffer has
 * reached the end, so no second read is made to find EOF. Not for multi-record files such as
 * mountinfo, whose reads stop at a page.
 */
export function readRecordSync(path: string): string | undefined {
  return readSyncWith(path, SMALL_FILE, (buf, n) => buf.toString('utf8', 0, n), true);
}

export async function readSmall(path: string): Promise<string | undefined> {
  return (await readBytesAsync(path, SMALL_FILE))?.toString('utf8');
}

export function readlinkQuiet(path: string): string | undefined {
  return quietly(() => readlinkSync(path));
}

/** stat() of the file a /proc/PID/exe link names; undefined when unreadable. */
function exeIdSync(path: string): ExeStat | undefined {
  return quietly(() => statSync(path, { bigint: true, throwIfNoEntry: false }));
}

/** A process's executable path as /proc/PID/exe names it (/memfd:NAME for a memfd); undefined when it is gone. */
export function readExePath(pid: number, procRoot = DEFAULT_PROC): string | undefined {
  const link = readlinkQuiet(`${procRoot}/${pid}/exe`);
  return link === undefined ? undefined : parseExeLink(link).exepath;
}

export async function readlinkQuietAsync(path: string): Promise<string | undefined> {
  try {
    return await readlinkAsync(path);
  } catch {
    return undefined;
  }
}

/**
 * Which image a process runs: the executable's device and inode (stat of /proc/PID/exe, which
 * follows the kernel's link to the very file), comm, and where the kernel mapped the image (stat
 * fields startcode, endcode, startstack). An exec keeps the pid and the start time, so nothing
 * else tells a read of one image from a read of the next; the addresses, randomised afresh by
 * every exec, also tell A → B → A apart from A (the same file and comm twice over). Comm is the
 * one in stat (the kernel prints the same task name there as in /proc/PID/comm), so a mark is two
 * reads, and stat comes first: when it is missing the process is gone and nothing else is read.
 */
interface ImageMark {
  key: string;
  /** The exe's stat the key was made from (synchronous reads only). */
  exe?: ExeStat;
  /** The stat text the mark was taken from: the one the read returns (undefined: the process is gone). */
  stat?: string;
}

const GONE: ImageMark = { key: '' };

function markOf(exe: ExeStat | { dev: bigint; ino: bigint } | undefined, stat: string): ImageMark {
  // An unreadable exe (another user's process, a kernel thread) leaves comm and the addresses to tell.
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  const comm = open >= 0 && close > open ? stat.slice(open + 1, close) : '-';
  // Fields 26-28 (startcode, endcode, startstack) are rest[23..25] after the comm.
  const layout = close > 0 ? stat.slice(close + 2).split(' ').slice(23, 26).join(',') : '-';
  return { key: `${exe ? `${exe.dev}:${exe.ino}` : '-'}|${layout}|${comm}`, stat };
}

/** The image mark through the process's held stat fd (see settledSync). */
function imageMarkSync(dir: string, statFd: number): ImageMark {
  const stat = readFdWith(statFd, SMALL_FILE, (buf, n) => (n > 0 ? buf.toString('utf8', 0, n) : undefined), true, true);
  if (stat === undefined) return GONE;
  const exe = exeIdSync(`${dir}/exe`);
  const mark = markOf(exe, stat);
  if (exe) mark.exe = exe;
  return mark;
}

async function imageMark(dir: string): Promise<ImageMark> {
  const stat = await readSmall(`${dir}/stat`);
  return stat === undefined ? GONE : markOf(await statAsync(`${dir}/exe`, { bigint: true }).catch(() => undefined), stat);
}

/**
 * The files of one image: the image is marked before and after the other files are read; when
 * the marks differ the process exec'd in between (a chain of execs in one pid), and the files
 * could pair one image's comm with the next one's exe. Then it is read again, up to
 * MAX_IMAGE_REREADS times, and at last dropped (`unsettled`) and counted. The opening mark's stat
 * is the files' own (read once, not again between the marks); comm is stat's.
 */
type RestOfFiles = Omit<ProcFiles, 'pid' | 'comm' | 'stat'>;

/** After one read between two marks: the files to return, or undefined to read again. */
function settle(pid: number, before: ImageMark & { stat: string }, after: ImageMark, rest: RestOfFiles, attempt: number): ProcFiles | undefined {
  if (after.key === before.key) return { pid, stat: before.stat, ...rest };
  // Gone in between: an exit, not an exec; a re-read would find nothing.
  if (after.stat === undefined) return { pid };
  if (attempt === MAX_IMAGE_REREADS) {
    procReadStats.imageUnsettled++;
    return { pid, unsettled: true };
  }
  procReadStats.imageRereads++;
  return undefined;
}

const hasStat = (m: ImageMark): m is ImageMark & { stat: string } => m.stat !== undefined;

/**
 * Both marks read stat through one fd held for the whole read, at offset 0 (the kernel prints it
 * afresh each time): the closing mark costs a read, not another lookup, open and close of a file
 * of a pid just born (issue 16). The fd names the process, not the pid: once the process is
 * reaped it reads ESRCH, never a newcomer under the same pid.
 */
function settledSync(pid: number, opts: ReadOptions, readRest: (dir: string) => RestOfFiles): ProcFiles {
  const dir = `${opts.procRoot ?? DEFAULT_PROC}/${pid}`;
  // No stat: it is gone, and nothing else is worth reading.
  const statFd = quietly(() => openSync(`${dir}/stat`, 'r'));
  if (statFd === undefined) return { pid };
  try {
    for (let attempt = 0; ; attempt++) {
      const before = imageMarkSync(dir, statFd);
      if (!hasStat(before)) return { pid };
      const rest = readRest(dir);
      opts.betweenReads?.();
      const after = imageMarkSync(dir, statFd);
      const done = settle(pid, before, after, rest, attempt);
      // The closing mark's stat of the exe is the freshest: the caller's inspection reuses it.
      if (done && done.stat !== undefined && after.exe !== undefined) done.exeStat = after.exe;
      if (done) return done;
    }
  } finally {
    try {
      closeSync(statFd);
    } catch {
      // already gone
    }
  }
}

/**
 * The files of a process whose exit was noticed (ReadOptions.exited): no image marks, since a
 * process that has exited cannot exec again, and nothing its exit took away (memory, exe, cwd,
 * root, namespaces). Reaped already: one failed open of stat.
 */
function exitedSync(pid: number, opts: ReadOptions): ProcFiles {
  const dir = `${opts.procRoot ?? DEFAULT_PROC}/${pid}`;
  // Most often reaped already. existsSync() does not throw: a failed openSync() costs the Error
  // Node builds for it (~10 µs; under the proc connector, a storm of short commands makes one per
  // exec whose exit came with it, issue 16). The process may still go after the check: the read
  // stays guarded.
  const stat = existsSync(`${dir}/stat`) ? readRecordSync(`${dir}/stat`) : undefined;
  if (stat === undefined) return { pid };
  return {
    pid,
    stat,
    status: readRecordSync(`${dir}/status`),
    cmdline: EMPTY,
    loginuid: readRecordSync(`${dir}/loginuid`),
    // A zombie's environ does not even open: it stays undefined, as the full read leaves it.
    cgroup: readRecordSync(`${dir}/cgroup`),
  };
}

const EMPTY = Buffer.alloc(0);

async function settled(pid: number, opts: ReadOptions, readRest: (dir: string) => Promise<RestOfFiles>): Promise<ProcFiles> {
  const dir = `${opts.procRoot ?? DEFAULT_PROC}/${pid}`;
  for (let attempt = 0; ; attempt++) {
    // No stat: it is gone (most of a storm of short commands), and nothing else is worth reading.
    const before = await imageMark(dir);
    if (!hasStat(before)) return { pid };
    const rest = await readRest(dir);
    opts.betweenReads?.();
    const done = settle(pid, before, await imageMark(dir), rest, attempt);
    if (done) return done;
  }
}

/** Gather the raw files of one process, synchronously. */
export function fetchProcessSync(pid: number, opts: ReadOptions = {}): ProcFiles {
  if (opts.exited) return exitedSync(pid, opts);
  const max = opts.maxArgBytes ?? DEFAULT_MAX_ARG_BYTES;
  return settledSync(pid, opts, (dir) => ({
    status: readRecordSync(`${dir}/status`),
    cmdline: readArgAreaSync(`${dir}/cmdline`, max),
    exe: readlinkQuiet(`${dir}/exe`),
    cwd: readlinkQuiet(`${dir}/cwd`),
    root: readlinkQuiet(`${dir}/root`),
    loginuid: readRecordSync(`${dir}/loginuid`),
    environ: opts.env ? readArgAreaSync(`${dir}/environ`, max) : undefined,
    cgroup: readRecordSync(`${dir}/cgroup`),
    mntns: readlinkQuiet(`${dir}/ns/mnt`),
  }));
}

/** Gather the raw files of one process: the image mark (stat), then the others in parallel, then the mark again. */
export function fetchProcess(pid: number, opts: ReadOptions = {}): Promise<ProcFiles> {
  const max = opts.maxArgBytes ?? DEFAULT_MAX_ARG_BYTES;
  return settled(pid, opts, async (dir) => {
    const [status, cmdline, exe, cwd, root, loginuid, environ, cgroup, mntns] = await Promise.all([
      readSmall(`${dir}/status`),
      readBytesAsync(`${dir}/cmdline`, max),
      readlinkQuietAsync(`${dir}/exe`),
      readlinkQuietAsync(`${dir}/cwd`),
      readlinkQuietAsync(`${dir}/root`),
      readSmall(`${dir}/loginuid`),
      opts.env ? readBytesAsync(`${dir}/environ`, max) : Promise.resolve(undefined),
      readSmall(`${dir}/cgroup`),
      readlinkQuietAsync(`${dir}/ns/mnt`),
    ]);
    return { status, cmdline, exe, cwd, root, loginuid, environ, cgroup, mntns };
  });
}

/** Read and parse one process synchronously; undefined when it is gone (or never was). */
export function readProcessSync(pid: number, opts: ReadOptions = {}): ProcRead | undefined {
  return buildProcess(fetchProcessSync(pid, opts), opts);
}

/** Read and parse one process; undefined when it is gone (or never was). Never rejects. */
export async function readProcess(pid: number, opts: ReadOptions = {}): Promise<ProcRead | undefined> {
  try {
    return buildProcess(await fetchProcess(pid, opts), opts);
  } catch {
    return undefined;
  }
}

/** Only stat, for the cheap questions: is it still the same process (start time), who is its parent. */
export function readStatSync(pid: number, opts: ProcfsOptions = {}): { stat: ProcStat; startTs: bigint } | undefined {
  const text = readSmallSync(`${opts.procRoot ?? DEFAULT_PROC}/${pid}/stat`);
  const stat = text === undefined ? undefined : parseStat(text);
  if (!stat || stat.pid !== pid) return undefined;
  const btime = bootTimeNs(opts.procRoot ?? DEFAULT_PROC);
  const startTs = btime !== undefined ? startTsFromTicks(stat.starttime, btime, opts.clkTck ?? clockTicks()) : BigInt(stat.starttime);
  return { stat, startTs };
}

/** The start time (ns since the epoch) of a pid as procfs reports it now; undefined when gone. */
export function readStartTs(pid: number, opts: ProcfsOptions = {}): bigint | undefined {
  return readStatSync(pid, opts)?.startTs;
}

/**
 * The pids among /proc's entry names (numeric ones: processes; threads are not listed at the top
 * level). A char-code test, not a regular expression: most of /proc's other entries start with a
 * letter, and the CPU sampler and the connections poller list /proc often on a busy host.
 */
function pidsOf(names: string[]): number[] {
  const out: number[] = [];
  for (const n of names) {
    const c = n.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(n);
    if (Number.isInteger(pid) && pid > 0) out.push(pid);
  }
  return out;
}

/** Every pid under procRoot, in no particular order. */
export function listPidsSync(procRoot = DEFAULT_PROC): number[] {
  try {
    return pidsOf(readdirSync(procRoot));
  } catch {
    return [];
  }
}

export async function listPids(procRoot = DEFAULT_PROC): Promise<number[]> {
  try {
    return pidsOf(await readdirAsync(procRoot));
  } catch {
    return [];
  }
}
