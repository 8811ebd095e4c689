/**
 * One process of the process table (process-table.ts): its ProcessInfo and what the table keeps
 * beside it (container, supplementary groups, caps, root, mount namespace, exit grace).
 *
 * A forked child is its parent's image until it execs, and most children exec a fraction of a
 * millisecond after the fork (an exec storm: fork, exec, exit per command). Copying the parent's
 * whole ProcessInfo (some 35 fields) per fork was the largest item of the agent's main thread under
 * an exec storm (issue 16), for an object the exec replaces before anything reads it. So a child
 * forked without a /proc read of its own holds only what is its own (pid, ppid, start time, pid in
 * its namespace) and the parent's ProcessInfo as it was at the fork; its full ProcessInfo is built
 * on first read (`info`), and an exec replaces it without ever building it (`execBase`).
 *
 * Sound because the table never changes a ProcessInfo's image in place: an exec or a uid change
 * gives the process a new object, so the parent's object at fork time is what the child copied.
 * The in-place changes made to a ProcessInfo are covered: a hash set later is of the same file (the
 * child's too), the ancestry walk's ppid and parent links are the child's own, and a chdir the fd
 * table applies to the parent after the fork (fd-table.ts) is not the child's: the cwd is kept from
 * fork time. A child of a lazy child reads its parent's `info`,
 * which builds it: a chain of forks never looks through more than one image.
 */
import type { ProcessInfo } from '../events.js';
import type { CgroupContainer } from './containers.js';
import type { ExecBase } from './kernel-exec.js';

/** What a child forked without a read of its own is, besides its parent's image. */
export interface ForkImage {
  /** The parent's ProcessInfo at the fork. */
  of: ProcessInfo;
  pid: number;
  ppid: number;
  /** Its start time: the kernel's, /proc's, or the fork notice's time when neither said. */
  startTs: bigint;
  /** Pid in its namespace, when the kernel said (eBPF). */
  vpid: number | undefined;
  /** The parent's cwd at the fork (the parent's object may be given a later chdir). */
  cwd: string | undefined;
}

/** The table's facts beside the ProcessInfo. */
export interface EntryFacts {
  /** Container per the cgroup path; undefined for a host process. */
  cgroup?: CgroupContainer;
  /** True when start_ts came from /proc or the kernel (not estimated from a notice time). */
  exactStart: boolean;
  /** Supplementary groups and effective caps, for exe writability. */
  groups?: number[];
  capEff?: bigint;
  root?: string;
  mntns?: string;
}

export class Entry implements EntryFacts {
  cgroup: CgroupContainer | undefined;
  exactStart: boolean;
  groups: number[] | undefined;
  capEff: bigint | undefined;
  root: string | undefined;
  mntns: string | undefined;
  /** When the exit grace ends (ms), for an exited process. */
  exitAt: number | undefined = undefined;
  hashing = false;
  /**
   * The ancestry walk's stamp (process-table.ts walkAncestry): the walk from this entry to the root
   * was whole at this link epoch.
   */
  linkedAt = -1;
  /** Some entry's `parent` pointed at this one's info: replacing or dropping it changes ancestries. */
  isParent = false;
  /** isSelf() found this process outside the agent's tree (process-table.ts isSelf). */
  outsideSelf = false;
  /** No longer the table's entry for its pid: replaced, dropped or evicted (process-table.ts). */
  left = false;
  private own: ProcessInfo | undefined = undefined;
  private fork: ForkImage | undefined = undefined;

  constructor(info: ProcessInfo | undefined, facts: EntryFacts) {
    this.own = info;
    this.cgroup = facts.cgroup;
    this.exactStart = facts.exactStart;
    this.groups = facts.groups;
    this.capEff = facts.capEff;
    this.root = facts.root;
    this.mntns = facts.mntns;
  }

  /**
   * A child forked without a read of its own: its parent's image (`image.of`, as it is now),
   * built when first read; the table's facts are the parent's.
   */
  static forked(image: ForkImage, parent: Entry, exactStart: boolean): Entry {
    const e = new Entry(undefined, parent);
    e.fork = image;
    e.exactStart = exactStart;
    return e;
  }

  get info(): ProcessInfo {
    return this.own ?? this.build();
  }

  set info(info: ProcessInfo) {
    this.own = info;
    this.fork = undefined;
  }

  /** A forked child whose image has not been built (nor replaced by an exec) yet. */
  get unbuilt(): boolean {
    return this.fork !== undefined;
  }

  /** The pid, without building a forked child's image. */
  get pid(): number {
    return this.own !== undefined ? this.own.pid : this.fork!.pid;
  }

  /** The start time, without building a forked child's image. */
  get startTs(): bigint | undefined {
    return this.own !== undefined ? this.own.start_ts : this.fork?.startTs;
  }

  /** The parent pid, without building a forked child's image. */
  get ppid(): number | undefined {
    return this.own !== undefined ? this.own.ppid : this.fork?.ppid;
  }

  /**
   * What an exec keeps of the process (session, process group, cwd, environment: read by
   * kernel-exec.ts infoFromKernelExec): for a forked child not yet built, its parent's object
   * when that says the same, so the exec that replaces the child builds nothing.
   */
  execBase(): ExecBase {
    const f = this.fork;
    if (this.own !== undefined || f === undefined) return this.info;
    if (f.of.cwd !== f.cwd || vpgidHidden(f)) return this.info;
    return f.of;
  }

  private build(): ProcessInfo {
    const f = this.fork!;
    const p = f.of;
    // A forked child is its parent's image: same name, argv, cwd, exe and its facts, container.
    // A plain copy, then stores: a spread literal that redefines the keys it copied takes V8's slow
    // path (CloneObjectIC_Slow, CreateDataProperty). Keys that are someone else's to compute are
    // deleted only where present.
    const info: ProcessInfo = { ...p };
    info.pid = f.pid;
    info.tid = f.pid;
    info.ppid = f.ppid;
    info.parent = p;
    info.start_ts = f.startTs;
    if (info.cwd !== f.cwd) info.cwd = f.cwd;
    clearLeaders(info);
    if (f.vpid !== undefined) {
      info.vpid = f.vpid;
      info.vtid = f.vpid;
      if (vpgidHidden(f)) info.vpgid = undefined;
    } else {
      info.vpid = p.vpid === p.pid ? f.pid : undefined;
      info.vtid = info.vpid;
    }
    this.own = info;
    this.fork = undefined;
    return info;
  }
}

/** In a pid namespace of its own (CLONE_NEWPID), the parent's process group is not in its view. */
function vpgidHidden(f: ForkImage): boolean {
  return f.vpid !== undefined && (f.vpid === f.pid) !== (f.of.vpid === f.of.pid);
}

/** Session and group leadership are the leader's own facts, not copied to a child. */
export function clearLeaders(info: ProcessInfo): void {
  if (info.is_sid_leader !== undefined) delete info.is_sid_leader;
  if (info.is_vpgid_leader !== undefined) delete info.is_vpgid_leader;
  if (info.session_leader !== undefined) delete info.session_leader;
  if (info.vpgid_leader !== undefined) delete info.vpgid_leader;
}
