/**
 * An exec as the proc connector's reader thread read it from /proc (native/proc_exec_read.c),
 * turned into the KernelExec the process table takes without reading /proc itself (issue 16).
 * The kernel's notice gives only the pid; the addon read the files the moment it arrived, between
 * two image marks, so the files are of one image and, for all but the shortest commands, of a
 * process still running.
 *
 * What an exec does not change stays the forked entry's in the table (session, process group,
 * supplementary groups, root, mount namespace, cwd, which the table re-reads when a rule wants
 * proc.cwd), as with the eBPF driver's record. Anything missing that the table would have filled
 * from its own read (status, cmdline, cgroup, the exe's stat) gives no KernelExec: the table then
 * reads /proc as before, so nothing a rule reads goes missing from the event.
 */
import { EXE_DELETED, EXE_KNOWN, EXE_MEMFD, EXE_OVERLAY, EXE_RDONLY, EXE_UPPER, type KernelExec, type KernelExecFacts } from '../events.js';
import { ExeIdentity } from '../enrich/exe-identity.js';
import { BytesCache } from '../platform/bytes-cache.js';
import {
  bootTimeNs,
  clockTicks,
  forEachCgroupLine,
  parseExeLink,
  splitNul,
  startTsFromTicks,
} from '../platform/procfs.js';

/** Record tags of a read (native/proc_exec_read.h). */
export const ExecRec = {
  stat: 1, statusFields: 2, cmdline: 3, environ: 4, loginuid: 5, cgroup: 6, exeLink: 7, exeStat: 8, exeFs: 9, rootLink: 10, mntnsLink: 11,
} as const;

/** statfs f_type of overlayfs, and the read-only mount flag (ST_RDONLY) of f_flags. */
const OVERLAYFS_MAGIC = 0x794c7630;
const ST_RDONLY = 1;

/** The highest record tag recordSpans keeps. */
const TAG_MAX = 15;

/** Where each record of a read lies, by tag: its bytes from at[tag] to end[tag]; at[tag] -1 when absent. */
export interface RecordSpans {
  at: Int32Array;
  end: Int32Array;
}

export function newSpans(): RecordSpans {
  return { at: new Int32Array(TAG_MAX + 1), end: new Int32Array(TAG_MAX + 1) };
}

/**
 * Where each record of the read in blob[from, to) lies (its bytes, without the head): a scan into
 * reused arrays, not a Map and a view per record (those were the largest allocations of an exec
 * under the proc connector, issue 16). A torn record at the end is left out; of two with one
 * tag, the last counts.
 */
export function recordSpans(blob: Buffer, from: number, to: number, spans: RecordSpans): RecordSpans {
  spans.at.fill(-1);
  for (let o = from; o + 8 <= to; ) {
    const tag = blob.readUInt32LE(o);
    const len = blob.readUInt32LE(o + 4);
    if (o + 8 + len > to) break;
    if (tag <= TAG_MAX) {
      spans.at[tag] = o + 8;
      spans.end[tag] = o + 8 + len;
    }
    o += 8 + ((len + 3) & ~3);
  }
  return spans;
}

/** Container paths of /proc/PID/cgroup: the v2 one ("0::"), and a v1 cpu (else memory) controller's not at its root. */
export function cgroupPaths(text: string): { v2: string; v1: string } {
  let v2 = '';
  let cpu = '';
  let memory = '';
  forEachCgroupLine(text, (id, controllers, path) => {
    if (id === '0' && controllers === '') v2 = path;
    else if (controllers.split(',').includes('cpu')) cpu = path;
    else if (controllers.split(',').includes('memory')) memory = path;
  });
  const v1 = cpu && cpu !== '/' ? cpu : memory && memory !== '/' ? memory : '';
  return { v2, v1 };
}

/** What the table takes of a cgroup file: the container paths and their ids. */
interface CgroupsRead {
  v2: string;
  v1: string;
  id: bigint;
  id1: bigint;
}

/** The exe's stat (MW_REC_EXE_STAT). */
interface ExeStat {
  dev: bigint;
  ino: bigint;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface ExecReadContext {
  /** For the layer of an exe on an overlay (its mount table, cached per namespace and root). */
  exe: ExeIdentity;
  /** Stable ids of cgroup paths: the table caches containers by them. */
  cgroupIds: Map<string, bigint>;
  /** The last id idOf handed out. */
  lastCgroupId: number;
  /**
   * Each record decoded once per distinct bytes (bytes-cache.ts): a storm of one command from one
   * shell repeats all of them but the stat line, and equal bytes give the same value, so the
   * table shares one array, string or bigint among the execs instead of a copy each. Nothing
   * writes to a ProcessInfo's args or env, so one array may serve many.
   */
  argvs: BytesCache<string[]>;
  envs: BytesCache<string[]>;
  comms: BytesCache<string>;
  links: BytesCache<{ exepath: string; deleted: boolean; memfd: boolean }>;
  cgroups: BytesCache<CgroupsRead>;
  exeStats: BytesCache<ExeStat>;
  /** The three capability sets (status words CapInh, CapPrm, CapEff). */
  caps: BytesCache<readonly [bigint, bigint, bigint]>;
  /** recordSpans' arrays, and the parsed status and stat line, reused from exec to exec. */
  spans: RecordSpans;
  status: StatusFields;
  stat: StatHead;
  /**
   * The reads take loginuid (the addon's readLoginuid): a read without it then is one made before
   * (a batch in flight when it was turned on), and is left to the table's own read. While off, an
   * exec's loginuid is not read (KernelExecFacts.loginuidUnread): the table keeps the forked
   * entry's, as an exec does.
   */
  wantLoginuid: boolean;
  /**
   * The reads take /proc/PID/status (the addon's readStatus): as wantLoginuid, a read without it
   * then is left to the table's own read. While off, an exec has no capabilities and its vpid is
   * the table's guess from the forked entry (KernelExecFacts.statusUnread).
   */
  wantStatus: boolean;
}

const splitArea = (b: Buffer, from: number, to: number): string[] => splitNul(b.subarray(from, to));
const utf8 = (b: Buffer, from: number, to: number): string => b.toString('utf8', from, to);
const u64At = (b: Buffer, at: number): bigint => b.readBigUInt64LE(at);
/** A u64 word that holds an id or a mode, as a number (exact below 2^53). */
const numAt = (b: Buffer, at: number): number => b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 2 ** 32;
/** The three capability sets from `at`: CapInh, CapPrm, CapEff. */
const capsAt = (b: Buffer, at: number): readonly [bigint, bigint, bigint] => [u64At(b, at), u64At(b, at + 8), u64At(b, at + 16)];

export function newExecReadContext(): ExecReadContext {
  const ctx: ExecReadContext = {
    exe: new ExeIdentity(),
    cgroupIds: new Map(),
    lastCgroupId: 0,
    argvs: new BytesCache(splitArea),
    envs: new BytesCache(splitArea),
    comms: new BytesCache(utf8),
    links: new BytesCache((b, from, to) => parseExeLink(utf8(b, from, to))),
    cgroups: new BytesCache((b, from, to) => {
      const { v2, v1 } = cgroupPaths(utf8(b, from, to));
      return { v2, v1, id: v2 ? idOf(ctx, `2:${v2}`) : 0n, id1: v1 ? idOf(ctx, `1:${v1}`) : 0n };
    }),
    exeStats: new BytesCache((b, at) => ({
      dev: u64At(b, at), ino: u64At(b, at + 8), mode: numAt(b, at + 16), uid: numAt(b, at + 24), gid: numAt(b, at + 32),
      size: u64At(b, at + 40), mtimeNs: u64At(b, at + 48), ctimeNs: u64At(b, at + 56),
    })),
    caps: new BytesCache(capsAt),
    spans: newSpans(),
    status: { ruid: 0, euid: 0, rgid: 0, egid: 0, capInh: 0n, capPrm: 0n, capEff: 0n },
    stat: { pid: 0, commFrom: 0, commTo: 0, ppid: 0, tty: 0, starttime: 0 },
    wantLoginuid: true,
    wantStatus: true,
  };
  return ctx;
}

/**
 * A path's id: the table caches the container by (id, id1), and a path names one cgroup for as long
 * as it exists. Ids are never handed out twice, even after the map is cleared: the table's cache
 * and ctx.cgroups still hold the old ones, and a reused id would give one cgroup another's
 * container (a user able to make many cgroups could borrow an allow-listed one).
 */
function idOf(ctx: ExecReadContext, path: string): bigint {
  let id = ctx.cgroupIds.get(path);
  if (id === undefined) {
    if (ctx.cgroupIds.size >= 65536) ctx.cgroupIds.clear();
    // Never 0n: the table takes 0n for "no id" and then identifies the container on every exec.
    id = BigInt(++ctx.lastCgroupId) | (1n << 62n);
    ctx.cgroupIds.set(path, id);
  }
  return id;
}

/** The status fields the addon parsed (MW_REC_STATUS_FIELDS): word index of each, and the mask word. */
const SF = { ppid: 0, ruid: 1, euid: 2, rgid: 3, egid: 4, vpid: 5, capInh: 6, capPrm: 7, capEff: 8, found: 9 } as const;
/** Fields an exec cannot do without: the effective ids, and the rest of status when it was read. */
const SF_IDS = (1 << SF.euid) | (1 << SF.egid);
const SF_STATUS = SF_IDS | (1 << SF.ruid) | (1 << SF.rgid) | (1 << SF.capInh) | (1 << SF.capPrm) | (1 << SF.capEff);

export interface StatusFields {
  ppid?: number;
  /** undefined when status was not read. */
  ruid: number | undefined;
  euid: number;
  rgid: number | undefined;
  egid: number;
  vpid?: number;
  /**
   * undefined when status was not read: the read took only the effective ids, from a stat of
   * /proc/PID (the addon's readStatus off: nothing reads the vpid or the capabilities).
   */
  capInh: bigint | undefined;
  capPrm: bigint | undefined;
  capEff: bigint | undefined;
}

/**
 * The parsed status fields in b[from, to), or undefined when one the exec needs is missing. `out`,
 * when given, is filled and returned instead of a new object (execFromRead's, reused per exec).
 */
export function statusFields(
  b: Buffer | undefined,
  from = 0,
  to = b?.length ?? 0,
  caps?: BytesCache<readonly [bigint, bigint, bigint]>,
  out: StatusFields = { ruid: 0, euid: 0, rgid: 0, egid: 0, capInh: 0n, capPrm: 0n, capEff: 0n },
): StatusFields | undefined {
  if (!b || to - from < 80) return undefined;
  const found = b.readUInt32LE(from + SF.found * 8);
  if ((found & SF_IDS) !== SF_IDS) return undefined;
  const read = (found & SF_STATUS) === SF_STATUS;
  // Some of status but not all of what it always has: a broken read, not a choice.
  if (!read && (found & ~SF_IDS) !== 0) return undefined;
  out.ppid = found & (1 << SF.ppid) ? numAt(b, from + SF.ppid * 8) : undefined;
  out.ruid = read ? numAt(b, from + SF.ruid * 8) : undefined;
  out.euid = numAt(b, from + SF.euid * 8);
  out.rgid = read ? numAt(b, from + SF.rgid * 8) : undefined;
  out.egid = numAt(b, from + SF.egid * 8);
  out.vpid = found & (1 << SF.vpid) ? numAt(b, from + SF.vpid * 8) : undefined;
  if (read) {
    const capAt = from + SF.capInh * 8;
    const c = caps ? caps.get(b, capAt, capAt + 24) : capsAt(b, capAt);
    out.capInh = c[0];
    out.capPrm = c[1];
    out.capEff = c[2];
  } else {
    out.capInh = out.capPrm = out.capEff = undefined;
  }
  return out;
}

/** What an exec takes of its stat line, parsed from its bytes (statHead). */
export interface StatHead {
  pid: number;
  /** comm's bytes: from the first '(' to the last ')', both left out (a comm may hold either). */
  commFrom: number;
  commTo: number;
  ppid: number;
  tty: number;
  starttime: number;
}

/** Stat fields statHead reads, by number (proc(5)): ppid, tty_nr, starttime. */
const STAT_PPID = 4;
const STAT_TTY = 7;
const STAT_STARTTIME = 22;

/**
 * pid, comm, ppid, tty_nr and starttime of the stat line in b[from, to), read from the bytes:
 * no string of the line and no array of its fields (parseStat's), once per exec (issue 16).
 * Undefined when the line is not one (no comm, a field that is not a number). `out`, when given, is
 * filled and returned instead of a new object.
 */
export function statHead(b: Buffer, from: number, to: number, out: StatHead = { pid: 0, commFrom: 0, commTo: 0, ppid: 0, tty: 0, starttime: 0 }): StatHead | undefined {
  let open = from;
  while (open < to && b[open] !== 0x28) open++; // '('
  if (open >= to) return undefined;
  let close = to - 1;
  while (close > open && b[close] !== 0x29) close--; // ')'
  if (close <= open) return undefined;
  let pid = 0;
  let digits = 0;
  for (let i = from; i < open; i++) {
    const c = b[i]!;
    if (c >= 0x30 && c <= 0x39) {
      pid = pid * 10 + (c - 0x30);
      digits++;
    } else if (c !== 0x20) return undefined;
  }
  if (digits === 0 || pid <= 0) return undefined;
  let ppid = -1;
  let tty = -1;
  let starttime = -1;
  // Field 3 (state) starts after ") ".
  let field = 3;
  for (let i = close + 1; i < to && field <= STAT_STARTTIME; ) {
    while (i < to && (b[i] === 0x20 || b[i] === 0x0a)) i++;
    if (i >= to) break;
    if (field === STAT_PPID || field === STAT_TTY || field === STAT_STARTTIME) {
      let v = 0;
      let n = 0;
      for (; i < to && b[i]! >= 0x30 && b[i]! <= 0x39; i++, n++) v = v * 10 + (b[i]! - 0x30);
      if (n === 0 || (i < to && b[i] !== 0x20 && b[i] !== 0x0a)) return undefined;
      if (field === STAT_PPID) ppid = v;
      else if (field === STAT_TTY) tty = v;
      else starttime = v;
    } else {
      while (i < to && b[i] !== 0x20 && b[i] !== 0x0a) i++;
    }
    field++;
  }
  if (starttime < 0 || !Number.isSafeInteger(starttime)) return undefined;
  out.pid = pid;
  out.commFrom = open + 1;
  out.commTo = close;
  out.ppid = ppid;
  out.tty = tty;
  out.starttime = starttime;
  return out;
}

/** loginuid's bytes as a number; undefined when unset ((uid_t)-1) or not a number. */
function loginuidAt(b: Buffer, from: number, to: number): number | undefined {
  let v = 0;
  let n = 0;
  let i = from;
  for (; i < to && b[i]! >= 0x30 && b[i]! <= 0x39; i++, n++) v = v * 10 + (b[i]! - 0x30);
  for (; i < to; i++) if (b[i] !== 0x0a && b[i] !== 0x20) return undefined;
  return n === 0 || n > 10 || v === 4294967295 ? undefined : v;
}

/** The start time (ns since the epoch) of stat's starttime: one BigInt where the tick is a whole number of ns. */
function startTsOf(ticks: number, btime: bigint): bigint {
  const clk = clockTicks();
  const nsPerTick = 1e9 / clk;
  const ns = ticks * nsPerTick;
  return Number.isInteger(nsPerTick) && Number.isSafeInteger(ns) ? btime + BigInt(ns) : startTsFromTicks(ticks, btime, clk);
}

/**
 * The exec of `pid` from the addon's read in blob[from, to) (the whole buffer by default), or
 * undefined when the read is not whole (see the top).
 */
export function execFromRead(pid: number, blob: Buffer, ctx: ExecReadContext, from = 0, to = blob.length): KernelExec | undefined {
  const { at, end } = recordSpans(blob, from, to, ctx.spans);
  if (at[ExecRec.stat]! < 0 || at[ExecRec.cmdline]! < 0 || at[ExecRec.exeLink]! < 0 || at[ExecRec.cgroup]! < 0) return undefined;
  if (ctx.wantLoginuid && at[ExecRec.loginuid]! < 0) return undefined;
  if (at[ExecRec.exeStat]! < 0 || end[ExecRec.exeStat]! - at[ExecRec.exeStat]! < 64 || at[ExecRec.exeFs]! < 0 || end[ExecRec.exeFs]! - at[ExecRec.exeFs]! < 16) return undefined;
  // Into the context's objects, reused: only their values are taken from here on.
  const status = at[ExecRec.statusFields]! < 0 ? undefined : statusFields(blob, at[ExecRec.statusFields]!, end[ExecRec.statusFields]!, ctx.caps, ctx.status);
  const unread = status?.capEff === undefined;
  if (!status || (unread && ctx.wantStatus)) return undefined;
  const stat = statHead(blob, at[ExecRec.stat]!, end[ExecRec.stat]!, ctx.stat);
  if (!stat || stat.pid !== pid) return undefined;
  const btime = bootTimeNs();
  if (btime === undefined) return undefined;
  const exe = ctx.links.get(blob, at[ExecRec.exeLink]!, end[ExecRec.exeLink]!);
  const cg = ctx.cgroups.get(blob, at[ExecRec.cgroup]!, end[ExecRec.cgroup]!);
  const exeStat = ctx.exeStats.get(blob, at[ExecRec.exeStat]!, at[ExecRec.exeStat]! + 64);
  const fsAt = at[ExecRec.exeFs]!;
  let flags = EXE_KNOWN;
  if (exe.deleted) flags |= EXE_DELETED;
  if (exe.memfd) flags |= EXE_MEMFD;
  if ((blob.readUInt32LE(fsAt + 8) & ST_RDONLY) !== 0) flags |= EXE_RDONLY;
  if (blob.readUInt32LE(fsAt) === OVERLAYFS_MAGIC && blob.readUInt32LE(fsAt + 4) === 0 && !exe.memfd) {
    flags |= EXE_OVERLAY;
    // Which layer: as the table's own read decides it (exe-identity.ts), from the mount table.
    if (at[ExecRec.rootLink]! < 0 || at[ExecRec.mntnsLink]! < 0) return undefined;
    const root = utf8(blob, at[ExecRec.rootLink]!, end[ExecRec.rootLink]!);
    const mntns = utf8(blob, at[ExecRec.mntnsLink]!, end[ExecRec.mntnsLink]!);
    const f = ctx.exe.inspect({
      pid, exepath: exe.exepath, deleted: exe.deleted, memfd: exe.memfd, root, mntns,
      exeStat: { ...exeStat, mode: BigInt(exeStat.mode), uid: BigInt(exeStat.uid), gid: BigInt(exeStat.gid) },
      uid: status.euid, gid: status.egid, capEff: status.capEff,
    });
    // Unknown (a deleted file on an overlay, an unreadable mount table): the table's read would not know either.
    if (f.upperLayer === undefined) return undefined;
    if (f.upperLayer) flags |= EXE_UPPER;
  }
  const facts: KernelExecFacts = {
    ruid: status.ruid,
    euid: status.euid,
    rgid: status.rgid,
    egid: status.egid,
    loginuid: at[ExecRec.loginuid]! < 0 ? undefined : loginuidAt(blob, at[ExecRec.loginuid]!, end[ExecRec.loginuid]!),
    loginuidUnread: at[ExecRec.loginuid]! < 0,
    vpid: unread ? undefined : (status.vpid ?? pid),
    statusUnread: unread,
    tty: stat.tty,
    exeFlags: flags,
    exeDev: exeStat.dev,
    exeIno: exeStat.ino,
    exeMtimeNs: exeStat.mtimeNs,
    exeCtimeNs: exeStat.ctimeNs,
    exeSize: exeStat.size,
    exeMode: exeStat.mode,
    exeUid: exeStat.uid,
    exeGid: exeStat.gid,
    cgroupId: cg.id,
    cgroupPath: cg.v2,
    cgroup1Id: cg.id1,
    cgroup1Path: cg.v1,
    capEff: status.capEff,
    capPrm: status.capPrm,
    capInh: status.capInh,
    env: at[ExecRec.environ]! < 0 ? undefined : ctx.envs.get(blob, at[ExecRec.environ]!, end[ExecRec.environ]!),
  };
  return {
    type: 'execve',
    comm: ctx.comms.get(blob, stat.commFrom, stat.commTo),
    argv: ctx.argvs.get(blob, at[ExecRec.cmdline]!, end[ExecRec.cmdline]!),
    exepath: exe.exepath,
    uid: status.euid,
    ppid: status.ppid ?? stat.ppid,
    startTs: startTsOf(stat.starttime, btime),
    facts,
  };
}
