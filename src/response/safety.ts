/**
 * The checks every response action runs before it touches a process (ARCHITECTURE.md, "Safe by
 * default"). Each refusal carries the reason it is reported with:
 *
 * - never the host's pid 1. A container's pid 1 may well be the miner, so "pid 1" means the init
 *   of the host's (initial) pid namespace: the target's own pid namespace is compared with the
 *   host's and its pid inside that namespace (the last NSpid) with 1.
 * - never the agent or one of its descendants (`isSelf`, given by the agent; by default this
 *   process and everything it started).
 * - never a kernel thread (PF_KTHREAD in /proc/PID/stat field 9; or, where flags cannot be read,
 *   no command line and kthreadd, pid 2, for parent).
 * - never a process the user allow-listed: by executable path (glob), container image repository
 *   (glob) or Kubernetes namespace (glob).
 *
 * `staticReason` looks only at the request (no /proc reads): it runs first and is all that applies
 * to a process that is already gone. `liveReason` looks at the process as /proc shows it now; the
 * kill runs it after it has pinned the process with a pidfd and checked its start time, so the
 * process examined is the one that will be signalled.
 */
import { globToRegExp } from '../platform/glob.js';
import { parseImageRef } from '../enrich/containers.js';
import { bootTimeNs, clockTicks, parseStat, parseStatus, type ProcStat, readSmallSync, readlinkQuiet, startTsFromTicks } from '../platform/procfs.js';
import type { Target } from './types.js';

/** PF_KTHREAD from include/linux/sched.h: the task is a kernel thread. */
export const PF_KTHREAD = 0x00200000;
/** The inode of the initial pid namespace (PROC_PID_INIT_INO, fixed since Linux 3.8). */
export const INIT_PID_NS = 'pid:[4026531836]';

/** What the user never wants acted on: globs, as the `response.allow` config section lists them. */
export interface AllowListConfig {
  /** Executable paths ("/usr/bin/ffmpeg", "/opt/render/*"). `*` crosses '/'. */
  exe_paths?: readonly string[];
  /** Image repositories ("docker.io/library/nginx", "registry.example.com/ml/*"); "nginx" and
   * "library/nginx" name Docker Hub's docker.io/library/nginx, as docker does. Tags and digests
   * are ignored on both sides. */
  images?: readonly string[];
  /** Kubernetes namespaces ("kube-system", "ci-*"). */
  namespaces?: readonly string[];
}

function globs(patterns: readonly string[] | undefined): RegExp[] {
  return (patterns ?? []).filter((p) => p.trim() !== '').map((p) => globToRegExp(p.trim()));
}

/**
 * The forms an image repository is known by: as written, and normalized the way docker
 * normalizes Docker Hub names (nginx → docker.io/library/nginx; library/nginx; index.docker.io).
 */
export function imageRepositoryForms(repoOrRef: string): string[] {
  const repo = parseImageRef(repoOrRef).repository;
  const out = new Set<string>([repo]);
  const first = repo.split('/')[0]!;
  const hasRegistry = repo.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  let full: string;
  if (!hasRegistry) full = repo.includes('/') ? `docker.io/${repo}` : `docker.io/library/${repo}`;
  else if (first === 'index.docker.io' || first === 'registry-1.docker.io') full = `docker.io/${repo.slice(first.length + 1)}`;
  else full = repo;
  out.add(full);
  if (full.startsWith('docker.io/')) {
    const rest = full.slice('docker.io/'.length);
    out.add(rest);
    if (rest.startsWith('library/')) out.add(rest.slice('library/'.length));
  }
  return [...out];
}

export class AllowList {
  private readonly exe: RegExp[];
  private readonly images: RegExp[];
  private readonly namespaces: RegExp[];

  constructor(cfg: AllowListConfig = {}) {
    this.exe = globs(cfg.exe_paths);
    // Each image pattern is compared in its own normalized forms too: "nginx" allows
    // docker.io/library/nginx and the other way round.
    this.images = (cfg.images ?? []).filter((p) => p.trim() !== '').flatMap((p) => imageRepositoryForms(p.trim()).map((f) => globToRegExp(f)));
    this.namespaces = globs(cfg.namespaces);
  }

  get empty(): boolean {
    return this.exe.length === 0 && this.images.length === 0 && this.namespaces.length === 0;
  }

  /** Why an executable path is allow-listed, or undefined. */
  exeReason(exepath: string | undefined): string | undefined {
    if (!exepath) return undefined;
    return this.exe.some((re) => re.test(exepath)) ? `allow-listed executable ${exepath}` : undefined;
  }

  private imageAllowed(image: string): boolean {
    return imageRepositoryForms(image).some((f) => this.images.some((re) => re.test(f)));
  }

  /** Why a target is allow-listed by what the request says of it (exe path, image, namespace). */
  targetReason(t: Target): string | undefined {
    const byExe = this.exeReason(t.exepath);
    if (byExe) return byExe;
    const c = t.container;
    if (this.images.length && c && c.id !== 'host') {
      const names = [c.image_repository, c.image].filter((s): s is string => !!s);
      for (const n of names) {
        if (this.imageAllowed(n)) return `allow-listed image ${n}`;
      }
    }
    // An API object (a k8s_audit match) is spared only when every image it runs is allowed: an
    // allowed sidecar does not shield a miner container next to it.
    const images = t.object?.images ?? [];
    if (this.images.length && images.length && images.every((n) => this.imageAllowed(n))) return `allow-listed image${images.length > 1 ? 's' : ''} ${images.join(', ')}`;
    const ns = t.k8s?.ns_name;
    if (ns && this.namespaces.some((re) => re.test(ns))) return `allow-listed namespace ${ns}`;
    return undefined;
  }
}

/** What /proc says about a process, in the fields the checks need. */
export interface LiveProcess {
  pid: number;
  stat: ProcStat;
  /** Field 9 of /proc/PID/stat. */
  flags: number;
  startTs: bigint;
  /** NSpid from /proc/PID/status: the pid in each namespace, ours first, its own last. */
  nspid?: number[];
  /** readlink of /proc/PID/ns/pid, e.g. "pid:[4026532201]". */
  pidns?: string;
  exepath?: string;
  /** /proc/PID/cmdline is empty (kernel threads, zombies). */
  noCmdline: boolean;
}

export interface SafetyOptions {
  /** The agent and its children. Default: this process and its descendants (walking ppids). */
  isSelf?: (pid: number) => boolean;
  allow?: AllowList;
  procRoot?: string;
}

/** Field 9 (flags) of a stat line, counted after the last ')' as parseStat does. */
export function statFlags(text: string): number | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const v = Number(rest[9 - 3]);
  return Number.isInteger(v) ? v : undefined;
}

/** Whether a process is a kernel thread: PF_KTHREAD, or no command line under kthreadd. */
export function isKernelThread(p: Pick<LiveProcess, 'pid' | 'flags' | 'stat' | 'noCmdline'>): boolean {
  if ((p.flags & PF_KTHREAD) !== 0) return true;
  if (p.pid === 2 && p.stat.comm === 'kthreadd') return true;
  return p.noCmdline && p.stat.ppid === 2;
}

export class Safety {
  readonly allow: AllowList;
  private readonly procRoot: string;
  private readonly isSelfFn: (pid: number) => boolean;
  private hostPidNs: string | undefined;

  constructor(opts: SafetyOptions = {}) {
    this.allow = opts.allow ?? new AllowList();
    this.procRoot = opts.procRoot ?? '/proc';
    this.isSelfFn = opts.isSelf ?? ((pid) => this.isDescendantOf(pid, process.pid));
  }

  isSelf(pid: number): boolean {
    try {
      return this.isSelfFn(pid);
    } catch {
      return true; // cannot tell: do not risk it
    }
  }

  /** True when pid is ancestor or one of its descendants (ppid chain, as /proc shows it now). */
  isDescendantOf(pid: number, ancestor: number): boolean {
    let p = pid;
    for (let depth = 0; depth < 256 && p > 1; depth++) {
      if (p === ancestor) return true;
      const text = readSmallSync(`${this.procRoot}/${p}/stat`);
      const st = text === undefined ? undefined : parseStat(text);
      if (!st) return false;
      p = st.ppid;
    }
    return p === ancestor;
  }

  /**
   * The host's pid namespace: pid 1's, when we can read it and pid 1 is in the initial
   * namespace's view (its NSpid has one entry); else the initial namespace's fixed inode.
   */
  hostPidNamespace(): string {
    if (this.hostPidNs === undefined) {
      const ns1 = readlinkQuiet(`${this.procRoot}/1/ns/pid`);
      const st1 = readSmallSync(`${this.procRoot}/1/status`);
      const nspid = st1 === undefined ? undefined : parseStatus(st1).nspid;
      this.hostPidNs = ns1 && nspid && nspid.length === 1 ? ns1 : INIT_PID_NS;
    }
    return this.hostPidNs;
  }

  /** Read what the checks need of a process; undefined when it is gone. */
  read(pid: number): LiveProcess | undefined {
    const dir = `${this.procRoot}/${pid}`;
    const text = readSmallSync(`${dir}/stat`);
    const stat = text === undefined ? undefined : parseStat(text);
    if (!stat || stat.pid !== pid || text === undefined) return undefined;
    const btime = bootTimeNs(this.procRoot);
    const startTs = btime !== undefined ? startTsFromTicks(stat.starttime, btime, clockTicks()) : BigInt(stat.starttime);
    const status = readSmallSync(`${dir}/status`);
    const cmdline = readSmallSync(`${dir}/cmdline`) ?? '';
    let exepath: string | undefined;
    const exe = readlinkQuiet(`${dir}/exe`);
    if (exe !== undefined) exepath = exe.endsWith(' (deleted)') ? exe.slice(0, -' (deleted)'.length) : exe;
    return {
      pid,
      stat,
      flags: statFlags(text) ?? 0,
      startTs,
      nspid: status === undefined ? undefined : parseStatus(status).nspid,
      pidns: readlinkQuiet(`${dir}/ns/pid`),
      exepath,
      noCmdline: cmdline.length === 0,
    };
  }

  /** Whether a live process is the host's init: pid 1 of the host's pid namespace. */
  isHostInit(p: LiveProcess): boolean {
    if (p.pid === 1) return true; // pid 1 as this agent sees it: the host's, or our own container's
    const vpid = p.nspid && p.nspid.length > 0 ? p.nspid[p.nspid.length - 1] : undefined;
    if (vpid !== 1) return false;
    // An init of some pid namespace: spare it only when that namespace is the host's. When the
    // namespace cannot be read, a one-level NSpid means it lives in our own (host) namespace.
    if (p.pidns === undefined) return p.nspid!.length === 1;
    return p.pidns === this.hostPidNamespace();
  }

  /** Refusals that need no /proc reads: they apply even to a process that is already gone. */
  staticReason(t: Target): string | undefined {
    if (!Number.isInteger(t.pid) || t.pid <= 0) return `not a process id: ${String(t.pid)}`;
    if (t.pid === 1) return 'pid 1 (the host init)';
    if (t.pid === process.pid) return 'the minewatch agent itself';
    return this.allow.targetReason(t);
  }

  /** Refusals that look at the process as it is now. */
  liveReason(p: LiveProcess): string | undefined {
    if (this.isHostInit(p)) return 'pid 1 (the host init)';
    if (isKernelThread(p)) return `kernel thread ${p.stat.comm}`;
    if (this.isSelf(p.pid)) return p.pid === process.pid ? 'the minewatch agent itself' : 'a child of the minewatch agent';
    const byExe = this.allow.exeReason(p.exepath);
    if (byExe) return byExe;
    return undefined;
  }

  /** Both, for callers that do not pin the process first (dry runs, block_destination). */
  check(t: Target): { reason?: string; live?: LiveProcess } {
    const s = this.staticReason(t);
    if (s) return { reason: s };
    const live = this.read(t.pid);
    if (!live) return {};
    return { reason: this.liveReason(live), live };
  }
}

