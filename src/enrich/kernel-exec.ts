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
import { lastCall } from '../platform/last-call.js';

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

/**
 * argv[1..] of the last exec's argv, shared: the decoder gives the same command line one array
 * (decode.ts BytesCache), and under a storm of one command each exec'd entry kept a copy of its own
 * for its exit grace. Nothing writes to a ProcessInfo's args.
 */
const argsOf = lastCall((argv: string[]): string[] => argv.slice(1));

/**
 * capsToText() with the last mask of each set kept: execs repeat the same three masks, and a
 * bigint compare is cheaper than capsToText's map lookup (which hashes the bigint) three times an exec.
 */
const permittedText = lastCall(capsToText);
const effectiveText = lastCall(capsToText);
const inheritableText = lastCall(capsToText);

/** What an exec keeps of the process it replaces (the table's forked image: table-entry.ts execBase). */
export type ExecBase = Pick<ProcessInfo, 'pid' | 'vpid' | 'sid' | 'vpgid' | 'cwd' | 'env' | 'loginuid'>;

/**
 * The vpid of an exec whose status was not read (KernelExecFacts.vpid undefined): its pid where the
 * forked entry (or the parent it still shares its image with) sees itself by its own pid, the
 * agent's pid namespace, which a fork keeps; unknown otherwise, or with no entry to go by.
 */
function guessedVpid(pid: number, prior: ExecBase | undefined): number | undefined {
  return prior !== undefined && prior.vpid === prior.pid ? pid : undefined;
}

/**
 * The ProcessInfo of a kernel-described exec. `prior` is what the table's entry for the pid (the
 * forked image) keeps through an exec, `groups` its supplementary groups (exe writability).
 */
export function infoFromKernelExec(pid: number, k: KernelExec, f: KernelExecFacts, prior: ExecBase | undefined, groups: readonly number[] | undefined): ProcessInfo {
  // The kernel's path walk names no file outside the mount tree (a memfd, an unlinked file's
  // anonymous inode): then, and only then, ask /proc, as `proc.exepath` shows it (/memfd:NAME).
  const exepath = k.exepath || readExePath(pid);
  const flags = f.exeFlags;
  // Every key in one literal, those the table fills in later too (user names, hash, parent): one
  // object of one shape per exec. Added one by one, the keys past the literal's went to a property
  // array that grew, and was copied, several times per exec (garbage under an exec storm, issue
  // 16). A key left undefined reads, and serializes, as one never set.
  return {
    pid,
    tid: pid,
    ppid: k.ppid,
    vpid: f.vpid ?? guessedVpid(pid, prior),
    vtid: f.vpid ?? guessedVpid(pid, prior),
    sid: prior?.sid,
    vpgid: prior?.vpgid,
    name: k.comm,
    tty: f.tty,
    start_ts: k.startTs,
    // An empty argv gives exe "" and no args, as /proc's empty cmdline does.
    exe: k.argv[0] ?? '',
    args: argsOf(k.argv),
    exepath: exepath || undefined,
    exe_deleted: exepath ? (flags & EXE_DELETED) !== 0 : undefined,
    // From the kernel's view of the file, whether or not it could be named.
    exe_from_memfd: (flags & EXE_MEMFD) !== 0,
    // An exec keeps the working directory: the forked entry's (its parent's, read from /proc).
    cwd: prior?.cwd,
    // Mostly the forked image's environment unchanged: then its array, not a copy (shared-env.ts).
    env: f.env !== undefined ? sharedEnv(f.env, prior?.env) : undefined,
    uid: f.euid,
    gid: f.egid,
    // Not read (KernelExecFacts.loginuidUnread): the forked entry's, as an exec leaves it.
    loginuid: f.loginuidUnread ? (prior?.loginuid ?? -1) : (f.loginuid ?? -1),
    user: undefined,
    group: undefined,
    loginname: undefined,
    homedir: undefined,
    shell: undefined,
    // Not read (statusUnread): unknown.
    cap_permitted: f.capPrm === undefined ? undefined : permittedText(f.capPrm),
    cap_effective: f.capEff === undefined ? undefined : effectiveText(f.capEff),
    cap_inheritable: f.capInh === undefined ? undefined : inheritableText(f.capInh),
    // The file: an in-memory one is on no layer; the kernel knows the overlay's upper dentry even
    // for a deleted file, which /proc cannot tell.
    exe_upper_layer: (flags & EXE_MEMFD) === 0 && (flags & EXE_OVERLAY) !== 0 && (flags & EXE_UPPER) !== 0,
    exe_writable: exeWritable({ uid: f.exeUid, gid: f.exeGid, mode: f.exeMode }, { uid: f.euid, gid: f.egid, groups, capEff: f.capEff }, (flags & EXE_RDONLY) !== 0),
    exe_sha256: undefined,
    exe_ino: Number(f.exeIno),
    exe_ino_ctime: f.exeCtimeNs,
    exe_ino_mtime: f.exeMtimeNs,
    parent: undefined,
  };
}

