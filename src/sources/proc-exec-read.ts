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
  parseLoginuid,
  parseStat,
  splitNul,
  startTsFromTicks,
} from '../platform/procfs.js';

/** Record tags of a read (native/proc_exec_read.h). */
export const ExecRec = {
  stat: 1, statusFields: 2, cmdline: 3, environ: 4, loginuid: 5, cgroup: 6, exeLink: 7, exeStat: 8, exeFs: 9, rootLink: 10, mntnsLink: 11,
} as const;

/** statfs f_type of overlayfs, and the read-only mount flag (ST_RDONLY) of f_flags. */
const OVERLAYFS_MAGIC = 0x794c7630n;
const ST_RDONLY = 1n;

/** The records of a read, by tag (the bytes are views into the read). */
export function splitRecords(blob: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let o = 0; o + 8 <= blob.length; ) {
    const tag = blob.readUInt32LE(o);
    const len = blob.readUInt32LE(o + 4);
    if (o + 8 + len > blob.length) break;
    out.set(tag, blob.subarray(o + 8, o + 8 + len));
    o += 8 + ((len + 3) & ~3);
  }
  return out;
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

export interface ExecReadContext {
  /** For the layer of an exe on an overlay (its mount table, cached per namespace and root). */
  exe: ExeIdentity;
  /** Stable ids of cgroup paths: the table caches containers by them. */
  cgroupIds: Map<string, bigint>;
  /** The last /proc/PID/cgroup text and what it gave (a storm from one shell repeats it). */
  lastCgroup?: { text: string; v2: string; v1: string; id: bigint; id1: bigint };
  /**
   * cmdline and environ split, kept by their bytes (the eBPF decoder's cache): a storm of one
   * command from one shell repeats both, and the same array lets the table share them
   * (kernel-exec.ts argsOf, shared-env.ts) instead of keeping a copy per exec. Nothing writes to
   * a ProcessInfo's args or env, so one array may serve many.
   */
  argvs: BytesCache<string[]>;
  envs: BytesCache<string[]>;
}

const splitArea = (b: Buffer, from: number, to: number): string[] => splitNul(b.subarray(from, to));

export function newExecReadContext(): ExecReadContext {
  return { exe: new ExeIdentity(), cgroupIds: new Map(), argvs: new BytesCache(splitArea), envs: new BytesCache(splitArea) };
}

/** A path's id: the table caches the container by (id, id1), and a path names one cgroup for as long as it exists. */
function idOf(ctx: ExecReadContext, path: string): bigint {
  let id = ctx.cgroupIds.get(path);
  if (id === undefined) {
    if (ctx.cgroupIds.size >= 65536) ctx.cgroupIds.clear();
    // Never 0n: the table takes 0n for "no id" and then identifies the container on every exec.
    id = BigInt(ctx.cgroupIds.size + 1) | (1n << 62n);
    ctx.cgroupIds.set(path, id);
  }
  return id;
}

const u64 = (b: Buffer, i: number): bigint => b.readBigUInt64LE(i * 8);

function cgroupOf(ctx: ExecReadContext, text: string): NonNullable<ExecReadContext['lastCgroup']> {
  if (ctx.lastCgroup?.text === text) return ctx.lastCgroup;
  const { v2, v1 } = cgroupPaths(text);
  ctx.lastCgroup = { text, v2, v1, id: v2 ? idOf(ctx, `2:${v2}`) : 0n, id1: v1 ? idOf(ctx, `1:${v1}`) : 0n };
  return ctx.lastCgroup;
}

/** The status fields the addon parsed (MW_REC_STATUS_FIELDS): word index of each, and the mask word. */
const SF = { ppid: 0, ruid: 1, euid: 2, rgid: 3, egid: 4, vpid: 5, capInh: 6, capPrm: 7, capEff: 8, found: 9 } as const;
/** Fields an exec cannot do without: the ids and the capability sets. */
const SF_NEEDED = (1 << SF.ruid) | (1 << SF.euid) | (1 << SF.rgid) | (1 << SF.egid) | (1 << SF.capInh) | (1 << SF.capPrm) | (1 << SF.capEff);

/** The parsed status fields, or undefined when one the exec needs is missing. */
export function statusFields(b: Buffer | undefined): { ppid?: number; ruid: number; euid: number; rgid: number; egid: number; vpid?: number; capInh: bigint; capPrm: bigint; capEff: bigint } | undefined {
  if (!b || b.length < 80) return undefined;
  const found = Number(u64(b, SF.found));
  if ((found & SF_NEEDED) !== SF_NEEDED) return undefined;
  const num = (i: number): number => Number(u64(b, i));
  return {
    ppid: found & (1 << SF.ppid) ? num(SF.ppid) : undefined,
    ruid: num(SF.ruid),
    euid: num(SF.euid),
    rgid: num(SF.rgid),
    egid: num(SF.egid),
    vpid: found & (1 << SF.vpid) ? num(SF.vpid) : undefined,
    capInh: u64(b, SF.capInh),
    capPrm: u64(b, SF.capPrm),
    capEff: u64(b, SF.capEff),
  };
}

/** The exec of `pid` from the addon's read, or undefined when the read is not whole (see the top). */
export function execFromRead(pid: number, blob: Buffer, ctx: ExecReadContext): KernelExec | undefined {
  const r = splitRecords(blob);
  const statB = r.get(ExecRec.stat);
  const status = statusFields(r.get(ExecRec.statusFields));
  const cmdline = r.get(ExecRec.cmdline);
  const link = r.get(ExecRec.exeLink);
  const st = r.get(ExecRec.exeStat);
  const fs = r.get(ExecRec.exeFs);
  const cgroupB = r.get(ExecRec.cgroup);
  if (!statB || !status || !cmdline || !link || !st || st.length < 64 || !fs || fs.length < 16 || !cgroupB) return undefined;
  const stat = parseStat(statB.toString('utf8'));
  if (!stat || stat.pid !== pid) return undefined;
  const btime = bootTimeNs();
  if (btime === undefined) return undefined;
  const exe = parseExeLink(link.toString('utf8'));
  const env = r.get(ExecRec.environ);
  const loginuid = r.get(ExecRec.loginuid);
  const lu = loginuid ? parseLoginuid(loginuid.toString('latin1')) : undefined;
  const cg = cgroupOf(ctx, cgroupB.toString('utf8'));
  const exeStat = { dev: u64(st, 0), ino: u64(st, 1), mode: u64(st, 2), uid: u64(st, 3), gid: u64(st, 4), size: u64(st, 5), mtimeNs: u64(st, 6), ctimeNs: u64(st, 7) };
  let flags = EXE_KNOWN;
  if (exe.deleted) flags |= EXE_DELETED;
  if (exe.memfd) flags |= EXE_MEMFD;
  if ((u64(fs, 1) & ST_RDONLY) !== 0n) flags |= EXE_RDONLY;
  if (u64(fs, 0) === OVERLAYFS_MAGIC && !exe.memfd) {
    flags |= EXE_OVERLAY;
    // Which layer: as the table's own read decides it (exe-identity.ts), from the mount table.
    const root = r.get(ExecRec.rootLink)?.toString('utf8');
    const mntns = r.get(ExecRec.mntnsLink)?.toString('utf8');
    if (root === undefined || mntns === undefined) return undefined;
    const f = ctx.exe.inspect({
      pid, exepath: exe.exepath, deleted: exe.deleted, memfd: exe.memfd, root, mntns, exeStat,
      uid: status.euid, gid: status.egid, capEff: status.capEff,
    });
    // Unknown (a deleted file on an overlay, an unreadable mount table): the table's read would not know either.
    if (f.upperLayer === undefined) return undefined;
    if (f.upperLayer) flags |= EXE_UPPER;
  }
  const argv = ctx.argvs.get(cmdline, 0, cmdline.length);
  const facts: KernelExecFacts = {
    ruid: status.ruid,
    euid: status.euid,
    rgid: status.rgid,
    egid: status.egid,
    loginuid: lu === undefined || lu < 0 ? undefined : lu,
    vpid: status.vpid ?? pid,
    tty: stat.tty_nr,
    exeFlags: flags,
    exeDev: exeStat.dev,
    exeIno: exeStat.ino,
    exeMtimeNs: exeStat.mtimeNs,
    exeCtimeNs: exeStat.ctimeNs,
    exeSize: exeStat.size,
    exeMode: Number(exeStat.mode),
    exeUid: Number(exeStat.uid),
    exeGid: Number(exeStat.gid),
    cgroupId: cg.id,
    cgroupPath: cg.v2,
    cgroup1Id: cg.id1,
    cgroup1Path: cg.v1,
    capEff: status.capEff,
    capPrm: status.capPrm,
    capInh: status.capInh,
    env: env ? ctx.envs.get(env, 0, env.length) : undefined,
  };
  return {
    type: 'execve',
    comm: stat.comm,
    argv,
    exepath: exe.exepath,
    uid: status.euid,
    ppid: status.ppid ?? stat.ppid,
    startTs: startTsFromTicks(stat.starttime, btime, clockTicks()),
    facts,
  };
}
