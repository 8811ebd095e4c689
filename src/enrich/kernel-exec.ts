/**
 * An exec the kernel described whole (the eBPF driver's exec record: ids, caps, tty, cgroup, the
 * exe's file identity and layer, the environment) turned into what the process table keeps, with
 * no read of /proc (issue 16). What the kernel record leaves out is what an exec does not change:
 * the session, process group, supplementary groups, root and mount namespace stay the forked
 * entry's (the process table's `prior`).
 *
 * The per-exec work is a few object fields; the costly parts are cached by what names them: the
 * container by cgroup id, capability texts by mask, the exe hash by file version (exe-identity.ts),
 * user names by uid (users.ts).
 */
import type { ProcessInfo } from '../events.js';
import { EXE_DELETED, EXE_MEMFD, EXE_OVERLAY, EXE_RDONLY, EXE_UPPER, type KernelExec, type KernelExecFacts } from '../events.js';
import { exeWritable } from './exe-identity.js';
import { sharedEnv } from './shared-env.js';
import { capsToText, readExePath } from '../platform/procfs.js';

/** The hash cache's key of the exe's file version (exe-identity.ts fileKey: dev:ino:mtime:size). */
export function exeFileKey(f: KernelExecFacts): string {
  const k = lastKey;
  // The same file as the last exec's (a storm of one command): no four numbers to print again.
  if (f.exeIno === k.ino && f.exeDev === k.dev && f.exeMtimeNs === k.mtime && f.exeSize === k.size) return k.key;
  const key = `${f.exeDev}:${f.exeIno}:${f.exeMtimeNs}:${f.exeSize}`;
  lastKey = { dev: f.exeDev, ino: f.exeIno, mtime: f.exeMtimeNs, size: f.exeSize, key };
  return key;
}

let lastKey = { dev: -1n, ino: -1n, mtime: -1n, size: -1n, key: '' };

/** What an exec keeps of the process it replaces (the table's forked image: table-entry.ts execBase). */
export type ExecBase = Pick<ProcessInfo, 'sid' | 'vpgid' | 'cwd' | 'env'>;

/**
 * The ProcessInfo of a kernel-described exec. `prior` is what the table's entry for the pid (the
 * forked image) keeps through an exec, `groups` its supplementary groups (exe writability).
 */
export function infoFromKernelExec(pid: number, k: KernelExec, f: KernelExecFacts, prior: ExecBase | undefined, groups: readonly number[] | undefined): ProcessInfo {
  const info: ProcessInfo = {
    pid,
    tid: pid,
    ppid: k.ppid,
    vpid: f.vpid,
    vtid: f.vpid,
    sid: prior?.sid,
    vpgid: prior?.vpgid,
    name: k.comm,
    tty: f.tty,
    start_ts: k.startTs,
    // An empty argv gives exe "" and no args, as /proc's empty cmdline does.
    exe: k.argv[0] ?? '',
    args: k.argv.slice(1),
  };
  // The kernel's path walk names no file outside the mount tree (a memfd, an unlinked file's
  // anonymous inode): then, and only then, ask /proc, as `proc.exepath` shows it (/memfd:NAME).
  const exepath = k.exepath || readExePath(pid);
  if (exepath) {
    info.exepath = exepath;
    info.exe_deleted = (f.exeFlags & EXE_DELETED) !== 0;
  }
  // From the kernel's view of the file, whether or not it could be named.
  info.exe_from_memfd = (f.exeFlags & EXE_MEMFD) !== 0;
  // An exec keeps the working directory: the forked entry's (its parent's, read from /proc).
  if (prior?.cwd !== undefined) info.cwd = prior.cwd;
  // Mostly the forked image's environment unchanged: then its array, not a copy (shared-env.ts).
  if (f.env !== undefined) info.env = sharedEnv(f.env, prior?.env);
  info.uid = f.euid;
  info.gid = f.egid;
  info.loginuid = f.loginuid ?? -1;
  info.cap_permitted = capsToText(f.capPrm);
  info.cap_effective = capsToText(f.capEff);
  info.cap_inheritable = capsToText(f.capInh);
  // The file: an in-memory one is on no layer; the kernel knows the overlay's upper dentry even for
  // a deleted file, which /proc cannot tell.
  info.exe_upper_layer = (f.exeFlags & EXE_MEMFD) === 0 && (f.exeFlags & EXE_OVERLAY) !== 0 && (f.exeFlags & EXE_UPPER) !== 0;
  const w = exeWritable({ uid: f.exeUid, gid: f.exeGid, mode: f.exeMode }, { uid: f.euid, gid: f.egid, groups, capEff: f.capEff }, (f.exeFlags & EXE_RDONLY) !== 0);
  if (w !== undefined) info.exe_writable = w;
  info.exe_ino = Number(f.exeIno);
  info.exe_ino_ctime = f.exeCtimeNs;
  info.exe_ino_mtime = f.exeMtimeNs;
  return info;
}

