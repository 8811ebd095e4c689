/**
 * Which processes live in which network namespace.
 *
 * Every pod (every container with its own network) has its own network namespace, with its own
 * socket tables: /proc/net/tcp of the agent shows only the agent's namespace. Reading
 * /proc/<pid>/net/tcp shows the tables of <pid>'s namespace, so one pid per namespace is enough
 * to see every socket on the node. This module groups pids by namespace (the inode of
 * /proc/PID/ns/net) and keeps the grouping cheap to refresh: only pids it has not seen before are
 * looked up, because a process almost never changes namespace, and so are pids the kernel may
 * have handed out again since the last listing: pids go out in a cycle, so /proc/loadavg's last
 * pid before each listing bounds the ones that can be new processes (handedOutBetween). The few
 * processes that do move (setns, unshare) are caught by a rolling re-read: each refresh re-reads
 * the next share of the known pids, so that every one is read again within `revalidateMs` (five
 * minutes). It was a full re-read every 10 s, then every minute: 1,000 readlinks of a cold /proc
 * took 16–28 ms each time, in one stall (issue 16); rolling, it is a few per poll.
 */
import { readlinkSync } from 'node:fs';
import { listPids as listPidsAsync, listPidsSync, readRecordSync } from '../platform/procfs.js';

/**
 * What /proc/loadavg says of the tasks: their number and the last pid handed out ("1/2345 67890"
 * → "2345 67890"). Both unchanged since an earlier read means no task was created (the last pid
 * would have moved) and none ended (the number would have dropped) in between: /proc still lists
 * the same pids. Undefined when the file cannot be read or parsed (a fake procfs in tests).
 */
export function taskMark(procRoot = '/proc'): string | undefined {
  // One open and one read into a shared buffer: readFileSync's fstat, its second read to find
  // the end and its own buffer made this read a visible part of the idle poller (issue 16).
  const text = readRecordSync(`${procRoot}/loadavg`);
  if (text === undefined) return undefined;
  const f = text.trim().split(/\s+/);
  const slash = f[3]?.indexOf('/') ?? -1;
  if (f.length < 5 || slash < 0) return undefined;
  return `${f[3]!.slice(slash + 1)} ${f[4]}`;
}

/** The last pid handed out, from a taskMark ("2345 67890" → 67890). */
export function lastPidOf(mark: string | undefined): number | undefined {
  const v = mark === undefined ? NaN : Number(mark.slice(mark.indexOf(' ') + 1));
  return Number.isInteger(v) && v >= 0 ? v : undefined;
}

/**
 * Whether `pid` may have been handed out while the last pid handed out went from `from` to `to`.
 * The kernel hands pids out in a cycle (each after the last, wrapping at pid_max), so only pids
 * after `from`, up to `to`, can be new or reused since; none when they are equal.
 */
export function handedOutBetween(pid: number, from: number, to: number): boolean {
  return to >= from ? pid > from && pid <= to : pid > from || pid <= to;
}

/**
 * /proc's pids, listed again only when a task was created or ended since the last listing
 * (taskMark), and at least every `maxAgeMs` whatever it says: on a quiet host most polls skip the
 * readdir of /proc (about 1 ms per 2,000 processes; issue 16's idle cost). The connections poller
 * and the CPU sampler each keep one.
 */
export class PidList {
  private mark: string | undefined;
  private at = -Infinity;
  private pids: number[] = [];
  /** Whether `pids` may be handed out again: an empty listing (procfs unreadable for a moment) never is. */
  private reusable = false;
  /**
   * The last pids handed out before the listing before this one and before this one: pids
   * outside that range (handedOutBetween) are the same processes as then. Undefined when a mark
   * was missing.
   */
  handedOut: { from: number; to: number } | undefined;

  constructor(private readonly procRoot = '/proc', private readonly maxAgeMs = 10_000, private readonly nowMs: () => number = () => performance.now()) {}

  /** The live pids, and whether they were listed anew (false: the same array as last time). */
  get(): { pids: number[]; listed: boolean } {
    const same = this.reuse();
    return same ? { pids: same, listed: false } : { pids: this.keep(listPidsSync(this.procRoot)), listed: true };
  }

  /** get()'s pids, a new listing read off the event loop. */
  async getAsync(): Promise<number[]> {
    return this.reuse() ?? this.keep(await listPidsAsync(this.procRoot));
  }

  /** The last listing while it holds; else undefined, the mark taken now (before the new listing, so a task created or ended while it runs moves the mark for next time). */
  private reuse(): number[] | undefined {
    const mark = taskMark(this.procRoot);
    const now = this.nowMs();
    if (this.reusable && mark !== undefined && mark === this.mark && now - this.at < this.maxAgeMs) return this.pids;
    const from = lastPidOf(this.mark);
    const to = lastPidOf(mark);
    this.handedOut = from !== undefined && to !== undefined ? { from, to } : undefined;
    this.mark = mark;
    this.at = now;
    return undefined;
  }

  private keep(pids: number[]): number[] {
    this.pids = pids;
    this.reusable = pids.length > 0;
    return pids;
  }
}

/** The index of the first pid above `pid` in an ascending list (its length when none is). */
function firstAbove(pids: number[], pid: number): number {
  let lo = 0;
  let hi = pids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pids[mid]! > pid) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** "net:[4026531840]" → "4026531840"; undefined when the link cannot be read (gone, no access). */
export function netnsOf(pid: number, procRoot = '/proc'): string | undefined {
  try {
    const link = readlinkSync(`${procRoot}/${pid}/ns/net`);
    const open = link.indexOf('[');
    const close = link.lastIndexOf(']');
    return open >= 0 && close > open ? link.slice(open + 1, close) : undefined;
  } catch {
    return undefined;
  }
}

/** The longest a listing of /proc is used again while /proc/loadavg says nothing changed (a safety net). */
const LIST_MAX_AGE_MS = 60_000;

export interface NetnsIndexOptions {
  procRoot?: string;
  /**
   * Every known pid's namespace is read again within this long (ms; default 300000), a share of
   * them at each refresh; besides, only pids new or handed out again since the last listing are read.
   */
  revalidateMs?: number;
  /** Monotonic clock in ms (tests). */
  nowMs?: () => number;
  /**
   * A refresh that needs no new pid now (`refresh(false)`) lists /proc at most this often, ms
   * (default 1000; 0: whenever a task was created or ended).
   */
  listMinMs?: number;
}

export class NetnsIndex {
  private readonly procRoot: string;
  private readonly revalidateMs: number;
  private readonly nowMs: () => number;
  /** pid → namespace id; null when it could not be read (kept so it is not retried every poll). */
  private readonly nsByPid = new Map<number, string | null>();
  private lastListed = -Infinity;
  /** The pids of the last listing (ascending, as /proc lists them): the rolling re-read goes through them in turn. */
  private order: number[] = [];
  /**
   * The pid the rolling re-read did last: it goes on with the first pid above it, so a new listing
   * (pids gone below it, new ones) skips none.
   */
  private lastRead = 0;
  /** Re-reads owed to the rolling re-read (a fraction carried over), and since when they are counted. */
  private owed = 0;
  private owedSince: number | undefined;
  private readonly listMinMs: number;
  /** Pids that appeared in the last refresh (not known to the one before). */
  readonly newPids = new Set<number>();
  /** Namespace links read since start (new pids, reused ones, the rolling re-read). */
  linkReads = 0;
  /** Namespace → its live pids, ascending, as of the last refresh. */
  groups = new Map<string, number[]>();
  private readonly pidList: PidList;

  constructor(opts: NetnsIndexOptions = {}) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.revalidateMs = opts.revalidateMs ?? 300_000;
    this.nowMs = opts.nowMs ?? (() => performance.now());
    this.pidList = new PidList(this.procRoot, LIST_MAX_AGE_MS, this.nowMs);
    this.listMinMs = opts.listMinMs ?? 1000;
  }

  /**
   * Re-list /proc and regroup; returns the groups (also kept in `groups`). `fresh` false: the
   * caller can wait for pids new since the last listing (none of its sockets awaits an owner),
   * and /proc is listed at most every `listMinMs`. On a host where some task starts every few
   * hundred ms (that is, any host), listing ~1,000 pids at every poll was most of the poller's
   * idle cost (issue 16); a namespace new since is then found up to listMinMs later.
   */
  refresh(fresh = true): Map<string, number[]> {
    const now = this.nowMs();
    const moved = this.revalidateSome(now);
    if (!fresh && !moved && now - this.lastListed < this.listMinMs) {
      this.newPids.clear();
      return this.groups;
    }
    this.lastListed = now;
    const { pids, listed } = this.pidList.get();
    // No task created or ended since the last refresh, none moved: the same pids in the same namespaces.
    if (!listed && !moved) {
      this.newPids.clear();
      return this.groups;
    }
    this.order = pids;
    const live = new Set(pids);
    for (const pid of this.nsByPid.keys()) if (!live.has(pid)) this.nsByPid.delete(pid);
    this.newPids.clear();
    // Pids handed out since the last listing may belong to new processes that reused them.
    const handedOut = listed ? this.pidList.handedOut : undefined;
    const groups = new Map<string, number[]>();
    for (const pid of pids) {
      let ns = this.nsByPid.get(pid);
      const reused = ns !== undefined && handedOut !== undefined && handedOutBetween(pid, handedOut.from, handedOut.to);
      if (ns === undefined || reused) {
        this.newPids.add(pid);
        this.linkReads++;
        ns = netnsOf(pid, this.procRoot) ?? null;
        this.nsByPid.set(pid, ns);
      }
      if (ns === null) continue;
      let g = groups.get(ns);
      if (!g) groups.set(ns, (g = []));
      g.push(pid);
    }
    this.groups = groups;
    return groups;
  }

  /**
   * The rolling re-read: the namespaces of the next known pids, as many as are owed for the time
   * since the last refresh (all of them per revalidateMs). True when one changed (moved, or gone).
   */
  private revalidateSome(now: number): boolean {
    const order = this.order;
    if (this.owedSince === undefined || order.length === 0) {
      this.owedSince = now;
      return false;
    }
    this.owed = Math.min(order.length, this.owed + (order.length * (now - this.owedSince)) / this.revalidateMs);
    this.owedSince = now;
    let moved = false;
    for (; this.owed >= 1; this.owed--) {
      const next = firstAbove(order, this.lastRead);
      const pid = order[next < order.length ? next : 0]!;
      this.lastRead = pid;
      const was = this.nsByPid.get(pid);
      // Forgotten since the listing (gone): nothing to re-read.
      if (was === undefined) continue;
      this.linkReads++;
      const ns = netnsOf(pid, this.procRoot) ?? null;
      if (ns !== was) {
        this.nsByPid.set(pid, ns);
        moved = true;
      }
    }
    return moved;
  }

  /** The namespace of a pid as of the last refresh. */
  nsOf(pid: number): string | undefined {
    return this.nsByPid.get(pid) ?? undefined;
  }
}
