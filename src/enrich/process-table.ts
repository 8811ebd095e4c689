/**
 * The process table: pid → ProcessInfo with `parent` links, so proc.aname[N], proc.apid[N],
 * proc.pcmdline and friends work, plus each process's container and pod.
 *
 * It is seeded from all of /proc at start and then kept current by ProcNotices (proc connector or
 * poller): a fork adds the child as its parent's image (what a forked child is until it execs;
 * built only if read before the exec replaces it: table-entry.ts),
 * an exec re-reads /proc/PID and yields the `execve` event, an exit removes the entry after a short
 * grace so the late lookups that follow a death (a connection or CPU sample of a process that just
 * ended) still resolve. Other sources ask `lookup(pid)` / `describe(pid)`, which read /proc on a
 * miss.
 *
 * Ground rules:
 * - Nothing here throws on account of a process: every read may race with an exit, and a process
 *   that is gone before it was read gives a minimal event (pid and what the table knew) or none.
 * - Notices for one pid are handled one after another (a fork and the exec that follows it must
 *   not overtake each other), notices for different pids concurrently.
 * - A pid is a process only together with its start time: a pid seen again with another start
 *   time is a new process (the old one's exit was missed), never the old one's ancestry.
 * - The table is bounded (`maxEntries`); evictions are counted.
 *
 * Ancestry: each ProcessInfo's `parent` points at the parent's current ProcessInfo. An exec or a
 * uid change gives the process a new ProcessInfo object (so an event already emitted keeps what
 * was true when it happened); children's links are brought up to date when they next appear in an
 * event or lookup (`link`), which also follows reparenting to a reaper when a parent is gone.
 */
import type { ContainerInfo, K8sInfo, ProcessInfo, SyscallEvent } from '../events.js';
import type { KernelExec, KernelExecFacts, ProcNotice } from '../events.js';
import { ContainerResolver, hostContainer, type CgroupContainer } from './containers.js';
import { ExeIdentity } from './exe-identity.js';
import { exeFileKey, infoFromKernelExec } from './kernel-exec.js';
import {
  buildProcess,
  capsToText,
  fetchProcessSync,
  listPidsSync,
  parseLoginuid,
  parseStat,
  parseStatus,
  readlinkQuiet,
  readProcessSync,
  readSmallSync,
  readStatSync,
  bootTimeNs,
  clockTicks,
  startTsFromTicks,
  type ProcFiles,
  type ProcRead,
  type ProcStat,
  type ProcStatus,
} from '../platform/procfs.js';
import { UserDb, type UserScope } from './users.js';
import { sharedEnv } from './shared-env.js';
import { forkSettled } from './proc-fork.js';
import { clearLeaders, Entry } from './table-entry.js';
import { ExitQueue } from './exit-queue.js';
import { PidMap } from './pid-map.js';

export interface ProcessTableOptions {
  /** Where procfs is mounted (default '/proc'). */
  procRoot?: string;
  clkTck?: number;
  /** Most processes kept (default 65536). */
  maxEntries?: number;
  /** How long an exited process stays resolvable (default 5000 ms). */
  exitGraceMs?: number;
  /** The agent's own pid, for isSelf (default process.pid). */
  selfPid?: number;
  /** uid/gid names; false to skip (default: a UserDb on the host's /etc). */
  users?: UserDb | false;
  /** Container metadata (default: a resolver with no runtime clients: ids from cgroups only). */
  containers?: ContainerResolver;
  /** Executable facts and hashes; false to skip (default: an ExeIdentity on procRoot). */
  exe?: ExeIdentity | false;
  /** Compute mw.proc.exe_sha256 (default true). */
  hash?: boolean;
  /** Read the environment of exec'd processes (default true: mw.wallet.* looks there). */
  readEnv?: boolean;
  /** Read the environment of every process at seed time (default false: memory). */
  seedEnv?: boolean;
  /** How long an exec event waits for the container runtime's answer (default 0: never). */
  containerWaitMs?: number;
  /** How long an exec event waits for the exe hash (default 0: never; later events carry it). */
  hashWaitMs?: number;
  /** Check the start time on lookup() so a reused pid is not mistaken for the old process (default true). */
  verifyLookups?: boolean;
  /** Clock in ms for the exit grace (default Date.now). */
  now?: () => number;
  /**
   * Whether events need proc.cwd fresh from /proc on an exec the kernel described (a rule reads
   * it); otherwise the forked entry's is kept (an exec does not change it). Default: never.
   */
  wantCwd?: () => boolean;
  /**
   * Take an exec the kernel described whole (eBPF) without reading /proc (default true).
   */
  kernelExecs?: boolean;
}

/** A process with the container and pod it runs in: what an event needs besides the syscall. */
export interface ProcessContext {
  proc: ProcessInfo;
  container: ContainerInfo;
  k8s?: K8sInfo;
}

export interface ProcessTableStats {
  entries: number;
  /** Entries dropped to stay under maxEntries. */
  evictions: number;
  execs: number;
  forks: number;
  exits: number;
  /** Execs of processes that were gone before they could be read. */
  vanished: number;
  /** Execs dropped: the process exec'd again through every re-read of its /proc files. */
  unsettled: number;
  /** Execs the kernel described whole: built without reading /proc. */
  described: number;
  /** Pids found reused (a new start time under a known pid). */
  reused: number;
  /** Lookups that had to read /proc. */
  lookupMisses: number;
  /** Notices that failed in an unexpected way (a bug, not a race): counted, never thrown. */
  errors: number;
}

const MAX_DEPTH = 256;
/** A host process's context: one object for every event (nothing writes to an event's container). */
const HOST_CONTEXT: { readonly container: ContainerInfo } = Object.freeze({ container: Object.freeze(hostContainer()) });
/** applyNow() sweeps exited entries past their grace once per this many notices. */
const SWEEP_EVERY = 32;
const last = (a: number[] | undefined): number | undefined => (a && a.length > 0 ? a[a.length - 1] : undefined);

/**
 * What a process's status says that an exec read without it (KernelExecFacts.statusUnread) left
 * unknown or guessed in `info`: the capability sets it lacks, and a vpid or vtid other than its
 * guess. undefined when there is nothing new, or status names no capabilities.
 */
function statusNews(st: ProcStatus, info: ProcessInfo): Partial<ProcessInfo> | undefined {
  if (st.capEff === undefined) return undefined;
  const vpid = last(st.nstgid);
  const vtid = last(st.nspid);
  const news: Partial<ProcessInfo> = {
    ...(vpid !== undefined && vpid !== info.vpid ? { vpid } : {}),
    ...(vtid !== undefined && vtid !== info.vtid ? { vtid } : {}),
    ...(info.cap_effective === undefined ? { cap_effective: capsToText(st.capEff) } : {}),
    ...(st.capPrm !== undefined && info.cap_permitted === undefined ? { cap_permitted: capsToText(st.capPrm) } : {}),
    ...(st.capInh !== undefined && info.cap_inheritable === undefined ? { cap_inheritable: capsToText(st.capInh) } : {}),
  };
  return Object.keys(news).length > 0 ? news : undefined;
}

export class ProcessTable {
  private readonly procRoot: string;
  private readonly clkTck: number | undefined;
  private readonly maxEntries: number;
  private readonly grace: number;
  private readonly selfPid: number;
  private readonly users: UserDb | undefined;
  readonly containers: ContainerResolver;
  private readonly exe: ExeIdentity | undefined;
  private readonly hashEnabled: boolean;
  private readonly readEnv: boolean;
  private readonly seedEnv: boolean;
  private readonly containerWaitMs: number;
  private readonly hashWaitMs: number;
  private readonly verifyLookups: boolean;
  private readonly now: () => number;
  private readonly wantCwd: () => boolean;
  private readonly kernelExecs: boolean;
  /** Container by cgroup id, for kernel-described execs (a cgroup's path never changes its container). */
  private readonly cgroupIds = new Map<string, CgroupContainer | undefined>();
  /** walkAncestry()'s pids seen and entries linked (synchronous, so one array each serves every walk). */
  private readonly seenScratch: number[] = [];
  private readonly pathScratch: Entry[] = [];
  /**
   * Changes whenever an entry some child was linked to leaves the table, gives way to another or
   * takes a new ProcessInfo: an ancestry walked whole at the current epoch (Entry.linkedAt) is
   * still right, and a walk that meets it stops there (an exec storm's commands share a parent).
   */
  private linkEpoch = 0;
  /** Notices applyNow() took since it last swept (see there). */
  private unswept = 0;
  private lastCgroup: { id: bigint; id1: bigint; c: CgroupContainer | undefined } = { id: -1n, id1: -1n, c: undefined };
  /** The last fork read put off (readForkLater): they run in order, so awaiting it awaits them all. */
  private forkReads: Promise<void> | undefined;

  /** pid → Entry, with the pids looked up lately a slot away (pid-map.ts). */
  private readonly entries = new PidMap<Entry>();
  /** Per-pid tail of the notice queue. */
  private readonly chains = new Map<number, Promise<void>>();
  /** Numbers the notices in arrival order (see exitedSince). */
  private noticeSeq = 0;
  /** Per pid, the number of the last exit notice that arrived and is not yet applied. */
  private readonly exitNoticed = new Map<number, number>();
  /** Per pid, the number of the last exec notice that arrived and is not yet applied. */
  private readonly execNoticed = new Map<number, number>();
  /** Exited entries waiting out the full grace: parents (their children's ancestry), or every one. */
  private readonly exiting = new ExitQueue<Entry>();
  /** Exited entries no child was linked to, waiting out the leaf grace (setLeafGrace). */
  private readonly leaving = new ExitQueue<Entry>();
  private leafGrace: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly counters = { evictions: 0, execs: 0, forks: 0, exits: 0, vanished: 0, unsettled: 0, described: 0, reused: 0, lookupMisses: 0, errors: 0 };

  constructor(opts: ProcessTableOptions = {}) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.clkTck = opts.clkTck;
    this.maxEntries = Math.max(16, opts.maxEntries ?? 65536);
    this.grace = opts.exitGraceMs ?? 5000;
    this.leafGrace = this.grace;
    this.selfPid = opts.selfPid ?? process.pid;
    this.users = opts.users === false ? undefined : (opts.users ?? new UserDb());
    this.containers = opts.containers ?? new ContainerResolver();
    this.exe = opts.exe === false ? undefined : (opts.exe ?? new ExeIdentity({ procRoot: this.procRoot }));
    this.hashEnabled = (opts.hash ?? true) && this.exe !== undefined;
    this.readEnv = opts.readEnv ?? true;
    this.seedEnv = opts.seedEnv ?? false;
    this.containerWaitMs = opts.containerWaitMs ?? 0;
    this.hashWaitMs = opts.hashWaitMs ?? 0;
    this.verifyLookups = opts.verifyLookups ?? true;
    this.now = opts.now ?? Date.now;
    this.wantCwd = opts.wantCwd ?? (() => false);
    this.kernelExecs = opts.kernelExecs ?? true;
  }

  get size(): number {
    return this.entries.size;
  }

  get stats(): ProcessTableStats {
    return { entries: this.entries.size, ...this.counters };
  }

  /** Stop the background sweep timer (entries stay). */
  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  // ---- building entries ------------------------------------------------------------------------

  private procOpts(env: boolean, exited = false) {
    return { procRoot: this.procRoot, clkTck: this.clkTck, env, exited };
  }

  private scopeFor(pid: number, cgroup: CgroupContainer | undefined): UserScope | undefined {
    return cgroup ? { key: cgroup.full_id, root: `${this.procRoot}/${pid}/root` } : undefined;
  }

  /** user, group, homedir, shell, loginname from the ids on `info`, in the process's container. */
  private nameUsers(info: ProcessInfo, scope: UserScope | undefined): void {
    if (!this.users) return;
    // One answer for all five (users.ts names()): an exec storm's commands share it.
    const n = this.users.names(info.uid, info.gid, info.loginuid, scope);
    info.user = n.user;
    info.homedir = n.homedir;
    info.shell = n.shell;
    info.group = n.group;
    info.loginname = n.loginname;
  }

  /** A fresh entry from a full /proc read. */
  private entryFromRead(r: ProcRead): Entry {
    const st: ProcStatus = r.status ?? {};
    const argv = r.argv;
    const info: ProcessInfo = {
      pid: r.pid,
      tid: r.pid,
      ppid: st.ppid ?? r.stat.ppid,
      vpid: last(st.nstgid) ?? last(st.nspid) ?? r.pid,
      vtid: last(st.nspid) ?? r.pid,
      // Falco's proc.sid is the session id from stat; vpgid is the group id in the process's pid ns.
      sid: r.stat.session,
      vpgid: last(st.nspgid) ?? r.stat.pgrp,
      name: r.comm,
      tty: r.stat.tty_nr,
      start_ts: r.startTs,
    };
    // An empty cmdline (kernel thread, zombie) gives exe "" and no args, as in Falco.
    if (argv !== undefined) {
      info.exe = argv[0] ?? '';
      info.args = argv.slice(1);
    }
    if (r.exepath !== undefined) {
      info.exepath = r.exepath;
      info.exe_deleted = r.exeDeleted;
      info.exe_from_memfd = r.exeFromMemfd;
    }
    if (r.cwd !== undefined) info.cwd = r.cwd;
    if (r.env !== undefined) info.env = r.env;
    // Falco reports the effective ids (libscap keeps euid/egid from the Uid:/Gid: lines).
    if (st.uids) info.uid = st.uids[1];
    if (st.gids) info.gid = st.gids[1];
    if (r.loginuid !== undefined) info.loginuid = r.loginuid;
    if (st.capPrm !== undefined) info.cap_permitted = capsToText(st.capPrm);
    if (st.capEff !== undefined) info.cap_effective = capsToText(st.capEff);
    if (st.capInh !== undefined) info.cap_inheritable = capsToText(st.capInh);

    const cgroup = this.containers.identify(r.cgroups);
    const entry = new Entry(info, { cgroup, exactStart: true, groups: st.groups, capEff: st.capEff, root: r.root, mntns: r.mntns });
    this.nameUsers(info, this.scopeFor(r.pid, cgroup));
    if (this.exe && r.exepath !== undefined) {
      const f = this.exe.inspect({
        pid: r.pid, exepath: r.exepath, deleted: r.exeDeleted, memfd: r.exeFromMemfd, root: r.root, mntns: r.mntns, exeStat: r.exeStat,
        uid: info.uid, gid: info.gid, groups: st.groups, capEff: st.capEff,
      });
      if (f.upperLayer !== undefined) info.exe_upper_layer = f.upperLayer;
      if (f.writable !== undefined) info.exe_writable = f.writable;
      if (f.ino !== undefined) info.exe_ino = f.ino;
      if (f.ctimeNs !== undefined) info.exe_ino_ctime = f.ctimeNs;
      if (f.mtimeNs !== undefined) info.exe_ino_mtime = f.mtimeNs;
      // A file version hashed before needs no open of /proc/PID/exe to hash it again.
      const hash = this.hashEnabled && f.key !== undefined ? this.exe.cachedHash(f.key) : undefined;
      if (hash !== undefined) info.exe_sha256 = hash;
    }
    return entry;
  }

  /** Put an entry in the table, evicting the least recently set ones beyond maxEntries (an exec that replaces its fork's image counts as set at the fork). */
  private put(pid: number, e: Entry): void {
    this.replace(pid, e, this.entries.get(pid));
  }

  /** put() when the caller has the pid's entry at hand (`old`, undefined: none): one lookup fewer per exec. */
  private replace(pid: number, e: Entry, old: Entry | undefined): void {
    if (old !== undefined) {
      if (old !== e) this.leaves(old);
      // An exec that replaces the image its fork put (a moment ago, as a rule) keeps the fork's
      // place: a delete and a set would take one more slot of the map's table per exec, which
      // then grows and is rebuilt twice as often (garbage per exec, issue 16).
      if (!old.unbuilt) this.entries.delete(pid);
    }
    this.entries.set(pid, e);
    if (this.entries.size > this.maxEntries) this.sweep(true);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined || oldest === pid) break;
      const gone = this.entries.get(oldest);
      if (gone) this.leaves(gone);
      this.entries.delete(oldest);
      this.counters.evictions++;
    }
  }

  /** Drop an entry from the table. */
  private drop(pid: number, e: Entry): void {
    this.leaves(e);
    this.entries.delete(pid);
  }

  /** `e` is no longer the table's entry for its pid (replaced, dropped or evicted). */
  private leaves(e: Entry): void {
    this.unlinked(e);
    e.left = true;
  }

  /** `e` leaves the table, gives way to another entry or takes a new ProcessInfo (see linkEpoch). */
  private unlinked(e: Entry): void {
    if (e.isParent) this.linkEpoch++;
  }

  // ---- seeding ---------------------------------------------------------------------------------

  /** Read every process in /proc into the table; returns how many were added. */
  seed(): number {
    let n = 0;
    for (const pid of listPidsSync(this.procRoot)) {
      const r = readProcessSync(pid, this.procOpts(this.seedEnv));
      if (!r) continue;
      const e = this.entryFromRead(r);
      this.put(pid, e);
      if (e.cgroup) this.containers.get(e.cgroup);
      n++;
    }
    // Link after reading everything: parents are not listed before their children in general.
    for (const e of this.entries.values()) {
      const p = e.info.ppid !== undefined ? this.entries.get(e.info.ppid) : undefined;
      if (p && p !== e) e.info.parent = p.info;
    }
    this.startSweeper();
    return n;
  }

  /**
   * A shorter grace for an exited process no child was linked to (a leaf: an exec storm's
   * commands), where every late lookup comes in one ordered stream with the exit (the eBPF
   * driver's: no poller looks up a pid seconds later). Its entry then dies young: held the full
   * 5 s, each of an exec storm's entries lived through two scavenges and went to V8's old
   * generation, which then needed a full mark-compact every few thousand execs (issue 16). A leaf
   * that becomes a parent meanwhile (a child linked to it late) waits out the full grace.
   */
  setLeafGrace(ms: number): void {
    this.leafGrace = Math.max(0, Math.min(ms, this.grace));
    if (this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
      this.startSweeper();
    }
  }

  private startSweeper(): void {
    if (this.sweepTimer || this.grace <= 0) return;
    // The leaf grace is never longer than the grace (0: leaves go at their exit, nothing to tick for).
    this.sweepTimer = setInterval(() => this.sweep(false), Math.max(250, Math.min(this.leafGrace || this.grace, 5000)));
    this.sweepTimer.unref();
  }

  /** Whether an exited entry waits out a grace. */
  private get anyExited(): boolean {
    return this.leaving.waiting || this.exiting.waiting;
  }

  /** Drop exited entries whose grace is over (all exited ones when `force`, to make room). */
  private sweep(force: boolean): void {
    const now = this.now();
    this.leaving.takeDue(now, force, force ? this.dropExited : this.leafDue);
    this.exiting.takeDue(now, force, this.dropExited);
  }

  /**
   * An exited entry's grace is over: dropped, unless the pid already belongs to a new process
   * (`left`: no lookup of a pid last seen seconds ago, in a table of thousands). Made once, not a
   * closure per sweep (one every SWEEP_EVERY notices under an exec storm).
   */
  private readonly dropExited = (e: Entry): void => {
    if (!e.left) this.drop(e.pid, e);
  };

  /** A leaf's grace is over: dropped, or, if a child was linked to it since its exit, the rest of the full grace for that child. */
  private readonly leafDue = (e: Entry): void => {
    if (e.left || !e.isParent) return this.dropExited(e);
    e.exitAt = e.exitAt! + this.grace - this.leafGrace;
    this.exiting.push(e);
  };

  // ---- notices ---------------------------------------------------------------------------------

  /** Run `fn` after every earlier notice for `pid` has been handled. */
  private serial<T>(pid: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(pid) ?? Promise.resolve();
    const next = prev.then(fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(pid, tail);
    void tail.then(() => {
      if (this.chains.get(pid) === tail) this.chains.delete(pid);
    });
    return next;
  }

  /**
   * Apply a lifecycle notice. Resolves with the `execve` event for an exec, undefined otherwise.
   * Never rejects.
   */
  onNotice(n: ProcNotice): Promise<SyscallEvent | undefined> {
    this.startSweeper();
    if (this.anyExited) this.sweep(false);
    const seq = ++this.noticeSeq;
    // Known at once, before the queue gets to it: an exec or fork still waiting can skip reading
    // /proc for a process that is already gone (a storm of short-lived commands).
    if (n.kind === 'exit' && n.tid === n.pid) {
      if (this.exitNoticed.size >= 65536) this.exitNoticed.clear();
      this.exitNoticed.set(n.pid, seq);
    }
    // Likewise an exec on its way makes a fork's read of the child redundant: the exec reads it whole.
    if (n.kind === 'exec') {
      if (this.execNoticed.size >= 65536) this.execNoticed.clear();
      this.execNoticed.set(n.pid, seq);
    }
    return this.serial(n.pid, async () => {
      try {
        switch (n.kind) {
          case 'exec':
            if (this.execNoticed.get(n.pid) === seq) this.execNoticed.delete(n.pid);
            return await this.onExec(n, seq);
          case 'fork':
            await this.onFork(n, seq);
            return undefined;
          case 'exit':
            if (this.exitNoticed.get(n.pid) === seq) this.exitNoticed.delete(n.pid);
            this.onExit(n);
            return undefined;
          case 'uid':
            this.onUid(n);
            return undefined;
          default:
            return undefined;
        }
      } catch {
        this.counters.errors++;
        return undefined;
      }
    });
  }

  /**
   * Apply a notice at once, with no promise and no turn of the event loop, when nothing of its pid
   * is pending and it needs no read of /proc: an exit, a uid change, a fork or an exec the kernel
   * described whole (eBPF) of a process whose ancestors the table has. That is every notice of an
   * exec storm; a promise chain per notice was a large part of the agent's cost per exec (issue 16).
   * Returns the exec event for an exec, null for the others, undefined when the notice must go
   * through onNotice() instead (which orders it after what is pending). The exec event is the
   * kernel's view already: its process was built from the exec record alone.
   */
  applyNow(n: ProcNotice): SyscallEvent | null | undefined {
    // (The size first: under an exec storm no pid has a notice pending, and a lookup per notice in an empty map is not free.)
    if (this.chains.size !== 0 && this.chains.has(n.pid)) return undefined;
    this.startSweeper();
    // A look at the clock every SWEEP_EVERY notices, not each: under an exec storm there is always
    // an exited entry waiting out its grace, and reading the time was a visible part of a notice.
    // Those past their grace go a few notices later (or at the sweeper's tick).
    if (this.anyExited && ++this.unswept >= SWEEP_EVERY) {
      this.unswept = 0;
      this.sweep(false);
    }
    try {
      switch (n.kind) {
        case 'exit':
          this.noticeSeq++;
          this.onExit(n);
          return null;
        case 'uid':
          this.noticeSeq++;
          this.onUid(n);
          return null;
        case 'fork':
          if (!this.forkNow(n) && !this.forkLater(n, this.noticeSeq + 1, this.entries.get(n.pid))) return undefined;
          this.noticeSeq++;
          return null;
        case 'exec':
          // Reaped before the driver could read it: nothing to read here either, no need to wait.
          if (!n.exec && n.reaped) return this.reapedExec(n);
          return this.execNow(n);
        default:
          return undefined;
      }
    } catch {
      this.counters.errors++;
      return null;
    }
  }

  /** applyNow() of an exec: only one the kernel described, whose ancestry needs no read. */
  private execNow(n: ProcNotice): SyscallEvent | undefined {
    const k = n.exec;
    if (!k?.facts || !this.kernelExecs) return undefined;
    const prior = this.entries.get(n.pid);
    const e = this.describedEntry(n.pid, k, k.facts, prior);
    // A host process has no container to wait for, nor has one the runtime already answered for:
    // only an exec into a container whose lookup is in flight waits (containerWaitMs) on onNotice.
    if (e.cgroup && !this.containers.answersNow(e.cgroup, this.containerWaitMs)) return undefined;
    if (!this.linkNow(e)) return undefined;
    this.noticeSeq++;
    this.counters.execs++;
    this.counters.described++;
    // Nothing since the lookup above changed the table (linkNow reads nothing in).
    this.replace(n.pid, e, prior);
    // A new version of the file: hash it unless the process is gone by the time the notices that
    // came with this one are applied (a short-lived command: no read of its exe).
    if (e.info.exe_sha256 === undefined && this.hashEnabled) {
      setImmediate(() => {
        if (e.exitAt === undefined) void this.ensureHash(e);
      });
    }
    return this.execEvent(n, e.info, this.contextNow(e));
  }

  /**
   * True when the process that a notice (number `seq`) is about has exited since: the first exit
   * notice of its pid after it can only be its own (a pid is reused only after an exit).
   */
  private exitedSince(pid: number, seq: number): boolean {
    const exit = this.exitNoticed.get(pid);
    return exit !== undefined && exit > seq;
  }

  /** True when an exec notice of `pid` arrived after notice number `seq` and waits behind it. */
  private execPending(pid: number, seq: number): boolean {
    const exec = this.execNoticed.get(pid);
    return exec !== undefined && exec > seq;
  }

  private async onExec(n: ProcNotice, seq = 0): Promise<SyscallEvent | undefined> {
    this.counters.execs++;
    const prior = this.entries.get(n.pid);
    if (n.exec?.facts && this.kernelExecs) return this.describedExec(n, seq, n.exec, n.exec.facts, prior);
    // An exec the kernel described (eBPF: argv, comm, exe path) of a process already gone: /proc
    // would give nothing more (at best a zombie's empty files), so it is not read.
    if (n.exec && this.exitedSince(n.pid, seq)) {
      this.counters.vanished++;
      return this.vanishedExec(n, prior);
    }
    // Exited already (its exit notice is queued behind this one): a zombie at best, of which only
    // stat, status, loginuid and cgroup still say anything (procfs.ts ReadOptions.exited).
    const opts = this.procOpts(this.readEnv, this.exitedSince(n.pid, seq));
    // Synchronous (see procfs.ts): a /proc read never waits on a disk, and a process already gone
    // costs one failed open of its stat.
    let files: ProcFiles;
    try {
      files = fetchProcessSync(n.pid, opts);
    } catch {
      files = { pid: n.pid };
    }
    if (files.unsettled) {
      // It exec'd again through every re-read (procReadStats counts it): no event beats one that
      // pairs one image's comm with the next one's exe. Its next exec brings an event of its own;
      // with eBPF the kernel's record of this exec is whole without /proc.
      this.counters.unsettled++;
      return n.exec ? this.vanishedExec(n, prior) : undefined;
    }
    const r = buildProcess(files, opts);
    if (!r) {
      this.counters.vanished++;
      return this.vanishedExec(n, prior);
    }
    if (prior?.exactStart && prior.startTs !== undefined && prior.startTs !== r.startTs) this.counters.reused++;
    const e = this.entryFromRead(r);
    if (e.info.env) e.info.env = sharedEnv(e.info.env, prior?.info.env);
    this.put(n.pid, e);
    this.link(e);
    // No inode: its exe could not be stat'ed (gone since, or not ours to read), nor opened to hash.
    const hash = e.info.exe_ino !== undefined ? this.ensureHash(e) : undefined;
    const ctx = await this.contextOf(e, this.containerWaitMs);
    if (hash && this.hashWaitMs > 0) await waitFor(hash, this.hashWaitMs);
    const ev: SyscallEvent = { source: 'syscall', type: 'execve', ts: n.ts, res: 0, proc: e.info, container: ctx.container };
    if (ctx.k8s) ev.k8s = ctx.k8s;
    return ev;
  }

  /**
   * An exec the kernel described whole (kernel-exec.ts): no read of /proc unless a cache misses
   * (a new exe version to hash, a parent the table lacks) or a rule wants proc.cwd fresh.
   */
  private async describedExec(n: ProcNotice, seq: number, k: KernelExec, f: KernelExecFacts, prior: Entry | undefined): Promise<SyscallEvent> {
    this.counters.described++;
    const e = this.describedEntry(n.pid, k, f, prior);
    this.put(n.pid, e);
    this.link(e);
    // Process gone (a short-lived command) or hashed already: no read of its exe.
    if (e.info.exe_sha256 === undefined && !this.exitedSince(n.pid, seq)) void this.ensureHash(e);
    return this.execEvent(n, e.info, await this.contextOf(e, this.containerWaitMs));
  }

  /** The entry of a kernel-described exec; the table is not changed. */
  private describedEntry(pid: number, k: KernelExec, f: KernelExecFacts, prior: Entry | undefined): Entry {
    const info = infoFromKernelExec(pid, k, f, prior?.execBase(), prior?.groups);
    if (this.wantCwd()) {
      // Gone already: the forked entry's stays.
      const cwd = readlinkQuiet(`${this.procRoot}/${pid}/cwd`);
      if (cwd !== undefined) info.cwd = cwd;
    }
    const cgroup = this.cgroupOf(f);
    const e = new Entry(info, { cgroup, exactStart: true, groups: prior?.groups, capEff: f.capEff, root: prior?.root, mntns: prior?.mntns });
    this.nameUsers(info, this.scopeFor(pid, cgroup));
    const hash = this.exe?.cachedHash(exeFileKey(f));
    if (hash !== undefined) info.exe_sha256 = hash;
    return e;
  }

  /** The exec event; a described exec's says which call (execve or execveat) the kernel saw. */
  private execEvent(n: ProcNotice, proc: ProcessInfo, ctx: { container: ContainerInfo; k8s?: K8sInfo }): SyscallEvent {
    const ev: SyscallEvent = { source: 'syscall', type: n.exec?.facts ? n.exec.type : 'execve', ts: n.ts, res: 0, proc, container: ctx.container };
    if (ctx.k8s) ev.k8s = ctx.k8s;
    if (n.exec?.sig && !n.exec.quiet) ev.execSig = n.exec.sig;
    return ev;
  }

  /** The container of the kernel's cgroup paths (v2, and a v1 controller's on hybrid hosts), cached by the cgroups' ids. */
  private cgroupOf(f: KernelExecFacts): CgroupContainer | undefined {
    if (f.cgroupId === 0n && f.cgroup1Id === 0n) return this.containers.identify(f.cgroupPath ? cgroupLines(f) : undefined);
    // The last exec's cgroups again (a storm from one shell): no key to build.
    if (f.cgroupId === this.lastCgroup.id && f.cgroup1Id === this.lastCgroup.id1) return this.lastCgroup.c;
    const key = `${f.cgroupId}:${f.cgroup1Id}`;
    const c = this.cgroupIds.has(key) ? this.cgroupIds.get(key) : this.identifyCgroups(key, cgroupLines(f));
    this.lastCgroup = { id: f.cgroupId, id1: f.cgroup1Id, c };
    return c;
  }

  private identifyCgroups(key: string, lines: string[]): CgroupContainer | undefined {
    const c = this.containers.identify(lines);
    if (this.cgroupIds.size >= 4096) this.cgroupIds.clear();
    this.cgroupIds.set(key, c);
    return c;
  }

  /**
   * An exec whose process was gone before /proc could be read (a short-lived command). What the
   * table knew from the fork is the parent's image, not the new one, so only identity and
   * ancestry are kept: pid, parent, start time, ids, container. When the kernel described the exec
   * (eBPF), its view of the new image joins them and replaces the forked image in the table, so
   * that children it forked before it went name it as their parent (`sh -c 'miner &'`).
   */
  private vanishedExec(n: ProcNotice, prior: Entry | undefined): SyscallEvent {
    const info = this.vanishedInfo(n, prior);
    // As known now: a vanished exec never waited for the runtime.
    const ctx: { container: ContainerInfo; k8s?: K8sInfo } = prior ? this.contextNow(prior) : HOST_CONTEXT;
    const ev: SyscallEvent = { source: 'syscall', type: 'execve', ts: n.ts, res: 0, proc: info, container: ctx.container };
    if (ctx.k8s) ev.k8s = ctx.k8s;
    return ev;
  }

  /** applyNow() of an exec whose process was reaped before anything could read it: vanishedExec() at once. */
  private reapedExec(n: ProcNotice): SyscallEvent {
    this.noticeSeq++;
    this.counters.execs++;
    this.counters.vanished++;
    return this.vanishedExec(n, this.entries.get(n.pid));
  }

  /** The ProcessInfo of a vanished exec (vanishedExec), entered in the table when the kernel described it. */
  private vanishedInfo(n: ProcNotice, prior: Entry | undefined): ProcessInfo {
    const info: ProcessInfo = { pid: n.pid, tid: n.tid, name: '' };
    if (prior) {
      const p = prior.info;
      Object.assign(info, { ppid: p.ppid, vpid: p.vpid, sid: p.sid, vpgid: p.vpgid, start_ts: p.start_ts, uid: p.uid, gid: p.gid, user: p.user, group: p.group, loginuid: p.loginuid, loginname: p.loginname });
      this.link(prior);
      info.parent = prior.info.parent;
    }
    const k = n.exec;
    if (k) {
      info.name = k.comm;
      if (k.argv.length > 0) {
        info.exe = k.argv[0];
        info.args = k.argv.slice(1);
      }
      if (k.exepath) info.exepath = k.exepath;
      info.ppid ??= k.ppid;
      info.uid ??= k.uid;
      info.start_ts = k.startTs;
      this.put(n.pid, new Entry(info, { ...prior, exactStart: true }));
    }
    return info;
  }

  private async onFork(n: ProcNotice, seq = 0): Promise<void> {
    // Thread creation shares the process; only new processes get entries.
    if (n.tid !== n.pid || n.ppid === undefined || n.ppid === n.pid) return;
    this.counters.forks++;
    const prior = this.entries.get(n.pid);
    const parent = this.entries.get(n.ppid) ?? this.load(n.ppid);
    // Nothing to read for a child already gone (it stays its parent's image), nor for one the
    // kernel described (eBPF: start time and pid in its namespace; sid, pgrp and tty are the
    // parent's at fork, the tracepoint fires before the child first runs), nor for one whose exec
    // is already noticed: that exec, applied right after this, reads stat and status itself (a
    // fork, exec and exit of a short command often arrive together).
    const described = parent !== undefined && n.startTs !== undefined && n.vpid !== undefined;
    const skipRead = described || this.exitedSince(n.pid, seq) || (parent !== undefined && this.execPending(n.pid, seq));
    if (!skipRead && this.forkLater(n, seq, prior, false)) return;
    const child = skipRead ? undefined : this.readForked(n.pid);
    const startTs = child?.startTs ?? n.startTs;
    this.countReuse(prior, startTs);

    if (!parent) {
      // Parent unknown and unreadable: read the child as it is now, if it is still there.
      const e = this.load(n.pid, true);
      if (!e) this.put(n.pid, new Entry({ pid: n.pid, tid: n.pid, ppid: n.ppid, name: '', start_ts: n.startTs ?? n.ts }, { exactStart: n.startTs !== undefined }));
      return;
    }
    this.putForked(n, n.ppid, parent, startTs, child?.stat, child?.status);
  }

  /** A forked child's stat and status, and its exact start time when stat names it (undefined: gone). */
  private readForked(pid: number): { stat?: ProcStat; status?: ProcStatus; startTs?: bigint } | undefined {
    const dir = `${this.procRoot}/${pid}`;
    const statText = readSmallSync(`${dir}/stat`);
    if (statText === undefined) return undefined;
    const statusText = readSmallSync(`${dir}/status`);
    const stat = parseStat(statText);
    const btime = bootTimeNs(this.procRoot);
    const startTs = stat && stat.pid === pid && btime !== undefined ? startTsFromTicks(stat.starttime, btime, this.clkTck ?? clockTicks()) : undefined;
    return { stat, status: statusText === undefined ? undefined : parseStatus(statusText), startTs };
  }

  /** Count a pid reused: the table's entry for it is another process (an exact start that differs). */
  private countReuse(prior: Entry | undefined, startTs: bigint | undefined): void {
    if (prior && prior.exactStart && startTs !== undefined && prior.startTs !== startTs) this.counters.reused++;
  }

  /**
   * A fork of a parent the table has, whose read of the child is put off: most children exec (or
   * exit) a moment later, and their notices are on their way. The child is entered as its
   * parent's image now and read later only if still needed (proc-fork.ts). False when the parent
   * is unknown (onFork reads it) or the kernel described the fork (forkNow). `count`: onFork
   * counted it already.
   */
  private forkLater(n: ProcNotice, seq: number, prior: Entry | undefined, count = true): boolean {
    const parent = n.ppid !== undefined ? this.entries.get(n.ppid) : undefined;
    if (!parent || n.ppid === undefined || (n.startTs !== undefined && n.vpid !== undefined)) return false;
    if (count) this.counters.forks++;
    this.putForked(n, n.ppid, parent, undefined);
    const forked = this.entries.get(n.pid);
    this.forkReads = forkSettled().then(() => this.readForkLater(n, seq, parent, forked, prior));
    return true;
  }

  /** Resolves once the fork reads put off so far are done (tests; see proc-fork.ts). */
  async forksRead(): Promise<void> {
    await this.forkReads;
  }

  /**
   * The read onFork() put off: stat and status of a forked child that has neither exec'd nor
   * exited since (its entry is still the forked one), for its session, tty, group, pid in its
   * namespace and exact start time.
   */
  private readForkLater(n: ProcNotice, seq: number, parent: Entry, forked: Entry | undefined, prior: Entry | undefined): void {
    try {
      if (!forked || this.entries.get(n.pid) !== forked || forked.exitAt !== undefined) return;
      if (this.exitedSince(n.pid, seq) || this.execPending(n.pid, seq) || n.ppid === undefined) return;
      const child = this.readForked(n.pid);
      if (child?.startTs === undefined) return;
      this.countReuse(prior, child.startTs);
      const { status } = child;
      this.putForked(n, n.ppid, parent, child.startTs, child.stat, status);
      // A uid change since the fork (onUid, a daemon dropping privileges) is the child's own, not
      // its parent's: status says what it is now.
      const e = this.entries.get(n.pid);
      const euid = status?.uids?.[1];
      if (e && euid !== undefined && e.info.uid !== euid) {
        e.info.uid = euid;
        this.nameUsers(e.info, this.scopeFor(n.pid, e.cgroup));
      }
    } catch {
      this.counters.errors++;
    }
  }

  /** A kernel-described fork (start time, pid in its namespace) of a parent the table has: no read. */
  private forkNow(n: ProcNotice): boolean {
    if (n.tid !== n.pid || n.ppid === undefined || n.ppid === n.pid) return true;
    const parent = this.entries.get(n.ppid);
    if (!parent || n.startTs === undefined || n.vpid === undefined) return false;
    this.counters.forks++;
    const prior = this.entries.get(n.pid);
    this.countReuse(prior, n.startTs);
    this.putForkImage(n, n.ppid, parent, n.startTs, prior);
    return true;
  }

  /**
   * The forked child's entry: its parent's image, with what /proc said of the child where it was
   * read. Without a read, the image is built only when something reads it (table-entry.ts): most
   * children exec first, and the exec replaces it.
   */
  private putForked(n: ProcNotice, ppid: number, parent: Entry, startTs: bigint | undefined, stat?: ProcStat, status?: ProcStatus): void {
    if (!stat && !status) return this.putForkImage(n, ppid, parent, startTs, this.entries.get(n.pid));
    const p = parent.info;
    // A plain copy, then stores (see Entry's build()).
    const info: ProcessInfo = { ...p };
    info.pid = n.pid;
    info.tid = n.pid;
    info.ppid = ppid;
    info.parent = p;
    info.start_ts = startTs ?? n.ts;
    clearLeaders(info);
    if (stat) {
      info.sid = stat.session;
      info.tty = stat.tty_nr;
      info.vpgid = last(status?.nspgid) ?? stat.pgrp;
    }
    if (!status && n.vpid !== undefined) {
      info.vpid = n.vpid;
      info.vtid = n.vpid;
      // In a pid namespace of its own (CLONE_NEWPID), the parent's group is not in its view.
      if ((n.vpid === n.pid) !== (p.vpid === p.pid)) info.vpgid = undefined;
    } else {
      info.vpid = last(status?.nstgid) ?? (p.vpid === p.pid ? n.pid : undefined);
      info.vtid = last(status?.nspid) ?? info.vpid;
    }
    this.put(n.pid, new Entry(info, { ...parent, exactStart: startTs !== undefined }));
  }

  /** putForked() without a read of the child: its parent's image, built if ever read (table-entry.ts); `old` is the pid's entry now. */
  private putForkImage(n: ProcNotice, ppid: number, parent: Entry, startTs: bigint | undefined, old: Entry | undefined): void {
    const p = parent.info;
    const image = { of: p, pid: n.pid, ppid, startTs: startTs ?? n.ts, vpid: n.vpid, cwd: p.cwd };
    this.replace(n.pid, Entry.forked(image, parent, startTs !== undefined), old);
  }

  private onExit(n: ProcNotice): void {
    if (n.tid !== n.pid) return;
    this.counters.exits++;
    const e = this.entries.get(n.pid);
    if (!e || e.exitAt !== undefined) return;
    const leaf = !e.isParent && this.leafGrace < this.grace;
    const grace = leaf ? this.leafGrace : this.grace;
    if (grace <= 0) {
      this.drop(n.pid, e);
      return;
    }
    e.exitAt = this.now() + grace;
    (leaf ? this.leaving : this.exiting).push(e);
  }

  private onUid(n: ProcNotice): void {
    const e = this.entries.get(n.pid);
    if (!e || n.euid === undefined) return;
    // A new object: events already emitted keep the uid they happened under.
    const info: ProcessInfo = { ...e.info, uid: n.euid };
    this.nameUsers(info, this.scopeFor(n.pid, e.cgroup));
    this.unlinked(e);
    e.info = info;
  }

  // ---- lookups ---------------------------------------------------------------------------------

  /** Read a process from /proc into the table, synchronously (see procfs.ts: no read is in flight to share). */
  private load(pid: number, env = false): Entry | undefined {
    const r = readProcessSync(pid, this.procOpts(env));
    if (!r) return undefined;
    const e = this.entryFromRead(r);
    this.put(pid, e);
    return e;
  }

  /** Point each ancestor's `parent` at the current entry of its parent pid, following reparenting. */
  private link(e: Entry): void {
    this.walkAncestry(e, true);
  }

  /**
   * link() when it needs no read of /proc (every ancestor in the table): true once linked; false,
   * the walk given up, when it would read (what it set so far is right, and link() does the rest).
   */
  private linkNow(e: Entry): boolean {
    return this.walkAncestry(e, false);
  }

  /**
   * The ancestry walk of link() and linkNow(). `read`: read an ancestor the table lacks (and a
   * reparented child's stat) from /proc; without it, stop there and return false.
   */
  private walkAncestry(e: Entry, read: boolean): boolean {
    const epoch = this.linkEpoch;
    if (e.linkedAt === epoch) return true;
    // The common case first: the parent walked whole already (the next command of a shell or a
    // make), one step and no scratch arrays.
    const first = e.info.ppid;
    if (first !== undefined && first > 0 && first !== e.info.pid) {
      const p = this.entries.get(first);
      if (p !== undefined && p !== e && p.linkedAt === epoch && !startedAfter(p, e)) {
        if (e.info.parent !== p.info) e.info.parent = p.info;
        p.isParent = true;
        e.linkedAt = epoch;
        return true;
      }
    }
    let cur = e;
    // The ancestry is a handful of pids: a linear search of those seen is cheaper than a Set per
    // exec. One array serves every walk (nothing in a walk starts another).
    const seen = this.seenScratch;
    seen.length = 0;
    seen.push(cur.info.pid);
    const path = this.pathScratch;
    path.length = 0;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      let ppid = cur.info.ppid;
      if (ppid === undefined || ppid <= 0 || seen.includes(ppid)) {
        if (ppid === undefined || ppid <= 0) {
          if (cur.info.parent !== undefined) cur.info.parent = undefined;
          // The root reached: every entry on the way is linked as the table stands.
          path.push(cur);
          this.stamp(path, epoch);
        }
        return true;
      }
      let p = this.entries.get(ppid);
      // A parent always started before its child: a later start means the parent pid was reused
      // by an unrelated process after the real parent died.
      if (!read && (!p || startedAfter(p, cur))) return false;
      p ??= this.load(ppid);
      if (p && startedAfter(p, cur)) p = undefined;
      if (!p) {
        // The parent is gone: the kernel has reparented this process (to init or a subreaper),
        // and its stat says to whom.
        const now = readStatSync(cur.info.pid, { procRoot: this.procRoot, clkTck: this.clkTck });
        if (now && now.stat.ppid !== ppid) {
          ppid = now.stat.ppid;
          cur.info.ppid = ppid;
          if (ppid <= 0 || seen.includes(ppid)) {
            cur.info.parent = undefined;
            return true;
          }
          p = this.entries.get(ppid) ?? this.load(ppid);
          if (p && startedAfter(p, cur)) p = undefined;
        }
      }
      // Not stamped: a parent the table lacks may be entered later.
      if (!p) {
        cur.info.parent = undefined;
        return true;
      }
      if (cur.info.parent !== p.info) cur.info.parent = p.info;
      p.isParent = true;
      path.push(cur);
      // The rest of the way was walked whole since the last change: nothing more to link.
      if (p.linkedAt === epoch) {
        this.stamp(path, epoch);
        return true;
      }
      seen.push(ppid);
      cur = p;
    }
    return true;
  }

  /** Mark the entries of a whole walk linked at `epoch`, unless the table changed during the walk (a read). */
  private stamp(path: Entry[], epoch: number): void {
    if (this.linkEpoch !== epoch) return;
    for (let i = 0; i < path.length; i++) path[i]!.linkedAt = epoch;
  }

  /** Start hashing the executable unless its hash is known or on its way. */
  private ensureHash(e: Entry): Promise<void> | undefined {
    if (!this.hashEnabled || !this.exe || e.info.exe_sha256 !== undefined || e.hashing || e.info.exepath === undefined) return undefined;
    e.hashing = true;
    const info = e.info;
    return this.exe.hashExe(info.pid).then((h) => {
      e.hashing = false;
      // Only if it is still the same file: the process may have exec'd something else meanwhile.
      if (h && (info.exe_ino === undefined || info.exe_ino === h.ino)) {
        info.exe_sha256 = h.sha256;
        // The entry may hold a newer object for the same image (a uid change): give it the hash too.
        if (e.info !== info && e.info.exe_ino === h.ino && e.info.exe_sha256 === undefined) e.info.exe_sha256 = h.sha256;
      }
    }, () => {
      // A failed read leaves the hash unknown, to be tried again; never an unhandled rejection.
      e.hashing = false;
    });
  }

  private async contextOf(e: Entry, waitMs: number): Promise<{ container: ContainerInfo; k8s?: K8sInfo }> {
    if (!e.cgroup || waitMs <= 0) return this.contextNow(e);
    const r = await this.containers.resolve(e.cgroup, waitMs);
    return r.k8s ? { container: r.container, k8s: r.k8s } : { container: r.container };
  }

  /** The container and pod as known now (no wait for the runtime). */
  private contextNow(e: Entry): { container: ContainerInfo; k8s?: K8sInfo } {
    if (!e.cgroup) return HOST_CONTEXT;
    const r = this.containers.get(e.cgroup);
    return r.k8s ? { container: r.container, k8s: r.k8s } : { container: r.container };
  }

  private async current(pid: number): Promise<Entry | undefined> {
    let e = this.entries.get(pid);
    if (e && this.verifyLookups && e.exactStart && e.exitAt === undefined) {
      const now = readStatSync(pid, { procRoot: this.procRoot, clkTck: this.clkTck });
      if (now && now.startTs !== e.startTs) {
        // A new process under an old pid: the old one's exit notice never came.
        this.counters.reused++;
        this.drop(pid, e);
        e = undefined;
      }
    }
    if (!e) {
      this.counters.lookupMisses++;
      e = this.load(pid, this.readEnv);
    }
    return e;
  }

  /**
   * Read each live process's loginuid again, for a source that read it with execs only while
   * something wanted it (the proc connector: ProcConnectorSource.setReadLoginuid) and now must: the
   * entries made meanwhile kept their forked parent's, which a login since may have changed.
   * Returns how many changed.
   */
  refreshLoginuids(): number {
    return this.refreshEach('loginuid', (text, info) => {
      const l = parseLoginuid(text);
      return l === undefined || info.loginuid === l ? undefined : { loginuid: l };
    });
  }

  /**
   * Read each live process's status again (its vpid and capabilities), for a source that read it
   * with execs only while something wanted it (the proc connector: ProcConnectorSource
   * .setReadStatus): the entries made meanwhile have no capabilities and a guessed vpid. Returns
   * how many changed.
   */
  refreshStatus(): number {
    return this.refreshEach('status', (text, info, e) => {
      const st = parseStatus(text);
      if (st.capEff !== undefined) e.capEff ??= st.capEff;
      return statusNews(st, info);
    });
  }

  /**
   * Fill in, in place, what an exec read without /proc/PID/status left unknown (the capability
   * sets, the vpid: KernelExecFacts.statusUnread) for the process an alert is about and its
   * ancestors, from their status now, where each is still the process it was: for the alert's
   * stored event (API, dashboard). No rule read these (status would have been read with the exec),
   * and a match is rare beside the execs the skipped file saves. Values are what the process holds
   * now; a process that changed its capabilities since its exec shows the new ones.
   */
  completeStatus(info: ProcessInfo | undefined): void {
    for (let p = info, depth = 0; p && depth < 64; p = p.parent, depth++) {
      if (p.cap_effective !== undefined || p.start_ts === undefined) continue;
      const text = readSmallSync(`${this.procRoot}/${p.pid}/status`);
      // Read before the start time: a pid is not handed out again while its process lives, so a
      // start time still the same after the read says the read was of this process.
      const now = text === undefined ? undefined : readStatSync(p.pid, { procRoot: this.procRoot, clkTck: this.clkTck });
      if (!text || !now || now.startTs !== p.start_ts) continue;
      const news = statusNews(parseStatus(text), p);
      if (news) Object.assign(p, news);
    }
  }

  /**
   * For each live process, /proc/PID/FILE given to `fresh`, whose answer (undefined: nothing
   * changed) goes into a new ProcessInfo, as a uid change does: events already emitted keep what
   * they happened under. Returns how many changed.
   */
  private refreshEach(file: string, fresh: (text: string, info: ProcessInfo, e: Entry) => Partial<ProcessInfo> | undefined): number {
    let changed = 0;
    for (const pid of this.entries.keys()) {
      const e = this.entries.get(pid);
      if (!e || e.exitAt !== undefined) continue;
      const text = readSmallSync(`${this.procRoot}/${pid}/${file}`);
      const f = text === undefined ? undefined : fresh(text, e.info, e);
      if (f === undefined) continue;
      const info: ProcessInfo = { ...e.info, ...f };
      this.nameUsers(info, this.scopeFor(pid, e.cgroup));
      this.unlinked(e);
      e.info = info;
      changed++;
    }
    return changed;
  }

  /** The table's entry for a pid, without reading /proc (undefined when unknown). */
  get(pid: number): ProcessInfo | undefined {
    return this.entries.get(pid)?.info;
  }

  /** The container of a pid the table knows, without waiting on the runtime (host when none). */
  containerOf(pid: number): ContainerInfo | undefined {
    const e = this.entries.get(pid);
    if (!e) return undefined;
    return e.cgroup ? this.containers.get(e.cgroup).container : hostContainer();
  }

  /**
   * The container of a pid the table knows, waiting up to `waitMs` for a runtime lookup in flight
   * (a process seeded at start, or one whose container was first seen a moment ago): a rule that
   * reads the image must not judge the container before the runtime has named it.
   */
  async containerSettled(pid: number, waitMs = this.containerWaitMs): Promise<ContainerInfo | undefined> {
    const e = this.entries.get(pid);
    if (!e) return undefined;
    return e.cgroup ? (await this.containers.resolve(e.cgroup, waitMs)).container : hostContainer();
  }

  /** The current ProcessInfo of a pid with its ancestry, reading /proc when the table lacks it. */
  async lookup(pid: number): Promise<ProcessInfo | undefined> {
    try {
      const e = await this.current(pid);
      if (!e) return undefined;
      this.link(e);
      void this.ensureHash(e);
      return e.info;
    } catch {
      this.counters.errors++;
      return undefined;
    }
  }

  /** lookup() plus the container and pod, for sources that build their own events. */
  async describe(pid: number, containerWaitMs = this.containerWaitMs): Promise<ProcessContext | undefined> {
    try {
      const e = await this.current(pid);
      if (!e) return undefined;
      this.link(e);
      void this.ensureHash(e);
      const ctx = await this.contextOf(e, containerWaitMs);
      return { proc: e.info, ...ctx };
    } catch {
      this.counters.errors++;
      return undefined;
    }
  }

  /**
   * True for the agent itself and the processes it spawned (any descendant), so the agent can
   * leave its own activity out. Decided from the table, reading /proc for a pid it lacks.
   */
  isSelf(pid: number): boolean {
    if (pid === this.selfPid) return true;
    let cur = pid;
    let parent: Entry | undefined;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const e = this.entries.get(cur);
      // An ancestor found not to be ours before: nor is anything below it whose walk got here
      // without meeting the agent (an exec storm's commands share their parent: a step, not the
      // whole ancestry, per event). Each parent remembers for itself: a host's several busy
      // parents (shells, build tools, the storms of issue 16) do not take turns at one memo.
      if (e !== undefined && e.outsideSelf) return false;
      if (depth === 1) parent = e;
      const ppid = e?.ppid ?? readStatSync(cur, { procRoot: this.procRoot, clkTck: this.clkTck })?.stat.ppid;
      // Unknown: a hole in the ancestry, nothing to remember.
      if (ppid === undefined) return false;
      if (ppid <= 0) break;
      if (ppid === this.selfPid) return true;
      if (ppid === cur) return false;
      cur = ppid;
    }
    // Sound to remember: a process outside the agent's tree never enters it (the agent is no
    // subreaper, so nothing is reparented to it), and a new process under the pid is a new Entry.
    if (parent) parent.outsideSelf = true;
    return false;
  }
}

/** The kernel's cgroup paths as /proc/PID/cgroup lines (v2, and a v1 controller's on hybrid hosts). */
function cgroupLines(f: KernelExecFacts): string[] {
  return f.cgroup1Id !== 0n ? [`0::${f.cgroupPath || '/'}`, `0:v1:${f.cgroup1Path}`] : [`0::${f.cgroupPath || '/'}`];
}

/** True when `a` started after `b`, judged only on start times both read from /proc. */
function startedAfter(a: Entry, b: Entry): boolean {
  const x = a.startTs;
  const y = b.startTs;
  return a.exactStart && b.exactStart && x !== undefined && y !== undefined && x > y;
}

/** Wait for `p` at most `ms`; never rejects. */
async function waitFor(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((res) => (timer = setTimeout(res, ms)))]);
  clearTimeout(timer);
}
