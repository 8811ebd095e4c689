/**
 * Sustained CPU use, per process and per container.
 *
 * Every `intervalMs` it reads each process's CPU time (utime + stime of /proc/PID/stat, in clock
 * ticks; all threads of the process included) and each container's (cgroup v1 cpuacct.usage in
 * ns, or cgroup v2 cpu.stat usage_usec, at the container's cgroup path from /proc/PID/cgroup).
 * The rate over an interval is in cores (1.0 = one CPU busy for the whole interval).
 *
 * A process or container whose rate stays above `threshold` × its base for `durationMs` without a
 * break yields ONE `cpu_sustained` event; it re-arms only once its rate drops below
 * `rearmThreshold` × base (hysteresis: a miner that runs for a week is one event, not one per
 * sample). The base is one core, or the CPU limit when the cgroup has one (v1
 * cpu.cfs_quota_us / cpu.cfs_period_us, v2 cpu.max; the lowest limit on the way up to the root
 * counts, as the kernel enforces every level):
 *  - container: base = its limit, or one core when it has none;
 *  - process: base = min(one core, its cgroup's limit): a process limited to half a core can only
 *    ever reach half a core, and a single-threaded miner in a container allowed 8 cores is still
 *    a process burning a whole core.
 *
 * The event's `cpu` figures are what mw.cpu.* read: percent (of one core; above 100 on several),
 * limit_percent (percent of the limit, when there is one), duration (ns above the threshold),
 * scope ('process' | 'container'); also `limit` (the limit in percent of one core) for outputs.
 * For a container the event's proc is its busiest process in the last interval.
 *
 * Cost: one small read per process per sample (open/read/close with a shared buffer); a process's
 * /proc/PID/cgroup is read only while it uses CPU, and again at most every `cgroupRefreshMs`;
 * one usage read per container per sample; limits are cached for `limitRefreshMs`. A sample
 * while the whole machine is quiet reads none of that (see "A quiet machine" below).
 *
 * A quiet machine: no process can use more CPU than all the machine's CPUs were busy. So when the
 * machine was busy less, over the interval, than `rearmThreshold` × the smallest base any process
 * or container can have (one core, or the smallest CPU limit of any cgroup on the host, found by
 * walking the hierarchy that holds the limits every `limitRefreshMs`), every run is broken and
 * re-armed without reading a single process: only processes new since the last listing of /proc
 * are read, to learn their start. A process read next after a quiet sample starts its
 * measurement again (its CPU time over the quiet stretch says nothing of its rate now), so a run
 * that begins as the machine turns busy is counted from the second sample after. Reading every
 * process's stat, and every sleeper again once its back-off ran out, was most of the sampler's
 * share of an idle agent (issue 16).
 *
 * How busy the machine was must bound what /proc/PID/stat will say, which the kernel scales to
 * each task's exact run time: so it is the largest of /proc/stat's busy ticks (user, nice,
 * system, irq, softirq), the CPUs' time less their idle and iowait (exact where idle is
 * accounted tickless, every mainstream kernel's default; steal counts as busy, as a task's time
 * may include it), and the root's cpuacct.usage where cgroup v1 cpuacct is mounted (exact). A
 * kernel booted with nohz=off and without cpuacct has only tick-sampled figures, which a process
 * that sleeps across every tick would escape: there the machine is never taken for quiet.
 *
 * A source, not a detector (src/detectors/): it turns /proc and cgroup figures into events and
 * decides nothing; the rules judge its cpu_sustained events (mw.cpu.*) and the response section
 * acts on their matches. A detector reads events and answers with action requests.
 */
import { PollLoop } from './poll-loop.js';
import { closeSync, existsSync, openSync, readdirSync, readSync, type Dirent } from 'node:fs';
import { posix } from 'node:path';
import type { ContainerInfo, Event, ProcessInfo, SyscallEvent } from '../events.js';
import { PidList } from './netns.js';
import { setImmediate as turn } from 'node:timers/promises';
import type { Source } from './types.js';
import { forEachCgroupLine } from '../platform/procfs.js';

export type CpuScope = 'process' | 'container';

export interface CpuSamplerOptions {
  /** Sampling interval, ms (default 5000). */
  intervalMs?: number;
  /** Fraction of the base (one core, or the CPU limit) counted as high (default 0.9). */
  threshold?: number;
  /** Re-arm once the rate is below this fraction of the base (default: threshold). */
  rearmThreshold?: number;
  /** How long the rate must stay above the threshold, ms (default 300000: 5 minutes). */
  durationMs?: number;
  /** USER_HZ: the unit of utime/stime in /proc/PID/stat (default 100, Linux on every common arch). */
  clockTicks?: number;
  /** Where procfs is mounted (default /proc). */
  procRoot?: string;
  /** Where the cgroup hierarchies are mounted (default /sys/fs/cgroup): v1 per-controller, v2 unified, or hybrid. */
  cgroupRoot?: string;
  /** Which scopes to watch (default both). */
  scopes?: CpuScope[];
  /** CPU limits are re-read this often, ms (default 30000). */
  limitRefreshMs?: number;
  /** A busy process's /proc/PID/cgroup is re-read this often, ms (default 60000). */
  cgroupRefreshMs?: number;
  /** Monotonic clock in ns (tests drive time with it); default process.hrtime.bigint. */
  nowNs?: () => bigint;
  /**
   * Most samples a sleeping process (CPU time unchanged since the last read) is passed over
   * before it is read again (default: a fifth of durationMs, at most 12 samples). Most processes
   * on a host sleep: reading them every time was most of the agent's idle cost (issue 16). A
   * process found asleep is passed over between three quarters of this and all of it (by pid), so
   * the re-reads of a host's sleepers spread over several samples instead of all falling in one.
   * A process first seen having slept nearly all its life (under LIFE_ASLEEP of a core since it
   * started, at least a second ago; procRoot/uptime says how long) is passed over from its first
   * sight the same way: the sample after the agent's start read every sleeper of the host again
   * only to learn it was still asleep (issue 16, the start's tail in the idle figure).
   */
  quietCap?: number;
  /** Called with unexpected errors; the sampler keeps running. */
  onError?: (err: unknown) => void;
}

export interface CpuSamplerStats {
  samples: number;
  events: number;
  /** Processes and containers measured in the last sample. */
  processes: number;
  containers: number;
  /** Duration of the last and of the slowest sample, ms. */
  lastSampleMs: number;
  maxSampleMs: number;
  /** /proc/PID/stat files read since start (a sleeping process is read less and less often). */
  statReads: number;
  /** Samples that found the whole machine quiet and read no process they knew (see "A quiet machine"). */
  quietSamples: number;
  /** Walks of the cgroup hierarchy for its smallest CPU limit. */
  limitSurveys: number;
}

// ---- procfs and cgroup files -------------------------------------------------------------------

const BUF = Buffer.allocUnsafe(64 * 1024);

/**
 * A small file's text via one shared buffer: procfs and cgroup files are read thousands of times
 * per sample, and readFileSync's fstat, allocation and final empty read per call roughly double
 * the cost (measured: 14.5 vs 7.5 ms for 1000 /proc/PID/stat). These are seq_files: a read returns
 * a full page unless the output has ended, so a read shorter than 3 KiB is the end and the
 * read(2) that would return 0 is skipped.
 */
function readSmall(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    let len = 0;
    for (;;) {
      const n = readSync(fd, BUF, len, BUF.length - len, null);
      if (n <= 0) break;
      len += n;
      if (n < 3072 || len === BUF.length) break;
    }
    return BUF.toString('latin1', 0, len);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** What /proc/stat says of all the CPUs together, in clock ticks. */
export interface MachineTimes {
  /** user + nice + system + irq + softirq (guest time is inside user). */
  busy: number;
  /** idle + iowait. */
  idle: number;
  /** The CPUs it lists one by one (the online ones). */
  cpus: number;
}

/** /proc/stat's aggregate line and its count of per-CPU lines; undefined when the line is not there. */
export function parseMachineTimes(text: string): MachineTimes | undefined {
  if (!text.startsWith('cpu ')) return undefined;
  const end = text.indexOf('\n');
  const f = text.slice(4, end < 0 ? undefined : end).trim().split(/\s+/).map(Number);
  if (f.length < 7) return undefined;
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]!;
  const idle = f[3]! + f[4]!;
  let cpus = 0;
  for (let at = text.indexOf('\ncpu'); at >= 0; at = text.indexOf('\ncpu', at + 4)) {
    const c = text.charCodeAt(at + 4);
    if (c >= 48 && c <= 57) cpus++;
  }
  return Number.isFinite(busy) && Number.isFinite(idle) && cpus > 0 ? { busy, idle, cpus } : undefined;
}

export interface ProcStat {
  comm: string;
  ppid: number;
  /** utime + stime, clock ticks. */
  ticks: number;
  /** Start time after boot, clock ticks: with the pid, the process's identity. */
  starttime: number;
}

/** Parse /proc/PID/stat. The comm may hold spaces and parentheses: fields start after the last ')'. */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): utime is field 14, stime 15, starttime 22.
  if (f.length < 20) return undefined;
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const starttime = Number(f[19]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || !Number.isFinite(starttime)) return undefined;
  return { comm: text.slice(open + 1, close), ppid: Number(f[1]), ticks: utime + stime, starttime };
}

/** A process's cgroup paths, as /proc/PID/cgroup gives them. */
export interface CgroupPaths {
  /** v1 path of the cpuacct controller (usage). */
  cpuacct?: string;
  /** v1 path of the cpu controller (limits). */
  cpu?: string;
  /** v2 (unified) path: the "0::" line. */
  unified?: string;
}

export function parseCgroupFile(text: string): CgroupPaths {
  const out: CgroupPaths = {};
  forEachCgroupLine(text, (id, controllers, raw) => {
    // A cgroup removed while the process lived in it shows as "/path (deleted)" on v2.
    const path = raw.replace(/ \(deleted\)$/, '');
    if (id === '0' && controllers === '') {
      out.unified = path;
      return;
    }
    for (const c of controllers.split(',')) {
      if (c === 'cpuacct') out.cpuacct = path;
      else if (c === 'cpu') out.cpu = path;
    }
  });
  return out;
}

/** cgroup v2 cpu.max ("max 100000" | "50000 100000") → cores, or null for no limit. */
export function parseCpuMax(text: string): number | null {
  const [q, p] = text.trim().split(/\s+/);
  if (q === undefined || q === 'max') return null;
  const quota = Number(q);
  const period = Number(p ?? 100000);
  return quota > 0 && period > 0 ? quota / period : null;
}

/** Where each hierarchy is mounted under cgroupRoot. */
export interface CgroupMounts {
  cpuacct?: string;
  cpu?: string;
  unified?: string;
}

/**
 * Find the hierarchies: pure v2 (cgroup.controllers at the root), hybrid (v2 under "unified"),
 * and v1 controllers mounted alone ("cpuacct") or together ("cpu,cpuacct", "cpuacct,cpu").
 */
export function discoverCgroupMounts(root: string): CgroupMounts {
  const out: CgroupMounts = {};
  if (existsSync(`${root}/cgroup.controllers`)) {
    out.unified = root;
    return out;
  }
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    return out;
  }
  for (const name of names) {
    if (name === 'unified' && existsSync(`${root}/unified/cgroup.controllers`)) {
      out.unified = `${root}/unified`;
      continue;
    }
    const cs = name.split(',');
    // A directory named exactly for one controller wins over a combined one (they are the same mount).
    if (cs.includes('cpuacct') && (out.cpuacct === undefined || name === 'cpuacct')) out.cpuacct = `${root}/${name}`;
    if (cs.includes('cpu') && (out.cpu === undefined || name === 'cpu')) out.cpu = `${root}/${name}`;
  }
  return out;
}

const join = (mount: string, path: string): string => (path === '/' ? mount : mount + path);

/** The deepest path that is an ancestor (or equal) of all. */
function commonAncestor(paths: string[]): string {
  let parts = paths[0]!.split('/').filter(Boolean);
  for (const p of paths.slice(1)) {
    const q = p.split('/').filter(Boolean);
    let i = 0;
    while (i < parts.length && i < q.length && parts[i] === q[i]) i++;
    parts = parts.slice(0, i);
  }
  return '/' + parts.join('/');
}

/** A cgroup's own CPU limit in cores (v1 cfs quota / period, v2 cpu.max), or null for none. */
function ownLimit(kind: 'v1' | 'v2', dir: string): number | null {
  if (kind === 'v2') {
    const t = readSmall(`${dir}/cpu.max`);
    return t === undefined ? null : parseCpuMax(t);
  }
  const q = readSmall(`${dir}/cpu.cfs_quota_us`);
  const quota = q === undefined ? -1 : Number(q.trim());
  // No quota (-1, the usual case): the period says nothing more.
  if (!(quota > 0)) return null;
  const p = readSmall(`${dir}/cpu.cfs_period_us`);
  const period = p === undefined ? 0 : Number(p.trim());
  return period > 0 ? quota / period : null;
}

/** A walk of the hierarchy that holds the CPU limits, for its smallest (see "A quiet machine"). */
interface LimitSurvey {
  kind: 'v1' | 'v2';
  /** Cgroup directories still to read. */
  dirs: string[];
  smallest: number | null;
  /** When the walk began, and the directories it has read. */
  at: bigint;
  seen: number;
}

/** Cgroups the walk of the limits reads in one sample at most (it goes on at the next). */
const SURVEY_PER_SAMPLE = 2000;
/** A hierarchy this large is not walked to its end: no sample is quiet then. */
const SURVEY_MAX_DIRS = 100_000;

// ---- the sampler -------------------------------------------------------------------------------

/** Above-threshold tracking for one process or container. */
interface Run {
  /** Start of the first interval of the current unbroken run above the threshold. */
  since?: bigint;
  armed: boolean;
}

interface ProcState {
  starttime: number;
  ticks: number;
  at: bigint;
  comm: string;
  ppid: number;
  run: Run;
  cg?: CgroupPaths;
  cgAt?: bigint;
  /** Rate in the last interval, cores (undefined on the first sight). */
  rate?: number;
  /** Samples still to pass over before it is read again (see quietCap). */
  skip?: number;
  /** A quiet sample came since its last read: it is measured again from its next read. */
  stale?: boolean;
}

interface ContainerState {
  info: ContainerInfo;
  usage?: bigint;
  at?: bigint;
  run: Run;
  /** The cgroup whose usage is read, as chosen last sample; a change restarts the measurement. */
  key?: string;
}

/** One sample's walk over the pids listed at its start. */
interface Walk {
  /** The whole machine was quiet over the interval: known processes are not read (see "A quiet machine"). */
  quiet: boolean;
  /** False when a quiet sample found the very listing of the last sample: no pid is visited. */
  walked: boolean;
  pids: number[];
  /** Index of the next pid to measure. */
  next: number;
  /** Seconds since boot (procRoot/uptime) at the walk's first first sight; null: not readable. */
  uptime?: number | null;
  live: Set<number>;
  /** Container id → its members this sample. */
  groups: Map<string, { info: ContainerInfo; pids: number[] }>;
  measured: number;
}

/** The longest a listing of /proc's pids is used again while the task mark says nothing changed. */
const PIDS_MAX_AGE_MS = 30_000;

/**
 * A process first seen with less CPU than this (cores) on average since it started is taken for
 * asleep (quietCap). Passing a process over never hides a run that was already going: when it is
 * read again, its rate covers the whole time since its last read (unless a quiet sample came
 * between: then it is measured from that read), and a run counts from there.
 */
const LIFE_ASLEEP = 0.01;
/** ...and only if it started at least this long ago (s): a process's first second says little. */
const LIFE_MIN_S = 1;

/** Pids measured (or cgroups surveyed) per turn of the event loop in a sliced sample (some 0.3 ms of work). */
const SLICE = 100;

interface LimitEntry {
  cores: number | null;
  at: bigint;
}

function epochNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

export class CpuSampler implements Source {
  readonly name = 'cpu-sampler';
  private readonly intervalMs: number;
  private readonly threshold: number;
  private readonly rearm: number;
  private readonly durationNs: bigint;
  private readonly ticksPerSec: number;
  private readonly procRoot: string;
  private readonly cgroupRoot: string;
  private readonly watchProcess: boolean;
  private readonly watchContainer: boolean;
  private readonly limitRefreshNs: bigint;
  private readonly cgroupRefreshNs: bigint;
  private readonly nowNs: () => bigint;
  private readonly onError: (err: unknown) => void;
  private readonly quietCap: number;
  private readonly quietSpread: number;
  private mounts?: CgroupMounts;
  private readonly procs = new Map<number, ProcState>();
  private readonly containers = new Map<string, ContainerState>();
  private readonly limits = new Map<string, LimitEntry>();
  private emit?: (ev: Event) => void;
  private loop: PollLoop | undefined;
  private seq = 0;
  /** /proc's pids, listed again only when the task mark moved (or PIDS_MAX_AGE_MS passed). */
  private readonly pidList: PidList;
  /** Counts stop() calls: a sliced sample under way when the sampler stops is dropped. */
  private stops = 0;
  /** The pids the last sample walked: the same array again means /proc was not listed anew. */
  private lastPids: number[] | undefined;
  /** What /proc/stat (and the root's cpuacct.usage, in ns, where mounted) said at the last sample. */
  private machine: { times: MachineTimes; cpuacct: bigint | undefined; at: bigint } | undefined;
  /** Only tick-sampled figures on this kernel (nohz=off, no cpuacct): never quiet. Read once. */
  private ticksOnly: boolean | undefined;
  /** The smallest CPU limit of any cgroup (null: none has one), and when its walk began. */
  private smallest: { cores: number | null; at: bigint } | undefined;
  private survey: LimitSurvey | undefined;
  readonly stats: CpuSamplerStats = {
    samples: 0, events: 0, processes: 0, containers: 0, lastSampleMs: 0, maxSampleMs: 0, statReads: 0, quietSamples: 0, limitSurveys: 0,
  };

  constructor(
    private readonly lookup: (pid: number) => ProcessInfo | undefined,
    private readonly containerOf: (pid: number) => ContainerInfo | undefined,
    opts: CpuSamplerOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 5000;
    this.threshold = opts.threshold ?? 0.9;
    this.rearm = opts.rearmThreshold ?? this.threshold;
    this.durationNs = BigInt(Math.round((opts.durationMs ?? 300_000) * 1e6));
    this.ticksPerSec = opts.clockTicks ?? 100;
    this.procRoot = opts.procRoot ?? '/proc';
    this.pidList = new PidList(this.procRoot, PIDS_MAX_AGE_MS);
    this.cgroupRoot = opts.cgroupRoot ?? '/sys/fs/cgroup';
    const scopes = opts.scopes ?? ['process', 'container'];
    this.watchProcess = scopes.includes('process');
    this.watchContainer = scopes.includes('container');
    this.limitRefreshNs = BigInt(Math.round((opts.limitRefreshMs ?? 30_000) * 1e6));
    this.cgroupRefreshNs = BigInt(Math.round((opts.cgroupRefreshMs ?? 60_000) * 1e6));
    this.nowNs = opts.nowNs ?? (() => process.hrtime.bigint());
    this.onError = opts.onError ?? (() => {});
    // Backing off delays the start of a run by at most the cap: keep that a small part of durationMs.
    this.quietCap = Math.max(0, Math.floor(opts.quietCap ?? Math.min(12, (opts.durationMs ?? 300_000) / this.intervalMs / 5)));
    this.quietSpread = Math.max(1, Math.ceil(this.quietCap / 4));
    if (!(this.threshold > 0)) throw new RangeError(`cpu sampler threshold must be above 0 (got ${opts.threshold})`);
    if (this.rearm > this.threshold) throw new RangeError(`cpu sampler rearmThreshold (${this.rearm}) must not exceed threshold (${this.threshold})`);
  }

  /** Takes the baseline sample at once, then samples every intervalMs. */
  async start(emit: (ev: Event) => void): Promise<void> {
    if (this.loop?.running) return;
    this.emit = emit;
    // The baseline in one go (it says whether procfs is there at all); later samples in slices.
    this.sample();
    if (this.stats.processes === 0) {
      throw new Error(`cpu sampler: no process readable under ${this.procRoot}; is procfs mounted there?`);
    }
    this.loop = new PollLoop(() => this.sampleSliced(), this.intervalMs, { delayFirst: true });
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.loop?.stop();
    this.stops++;
    // A walk of the limits cut short is not finished later as if it were fresh.
    this.survey = undefined;
  }

  /** Take one sample and emit what it concludes, in one go. Tests call it directly. */
  sample(): void {
    const t0 = performance.now();
    try {
      const pids = this.pidList.get().pids;
      const { now, rate } = this.machineNow();
      if (this.surveyDue(rate, now)) this.surveyStep(now, SURVEY_PER_SAMPLE);
      const walk = this.beginWalk(pids, rate, now);
      this.visit(walk, walk.pids.length);
      this.endWalk(walk);
    } catch (e) {
      this.onError(e);
    }
    this.finishStats(performance.now() - t0);
  }

  /**
   * The same sample as sample(), with the same results, but the pids listed off the event loop
   * and walked SLICE at a time with a turn of the loop between slices: one synchronous walk of a
   * host's thousand processes held every event behind it for 3–4 ms every interval (the tail of
   * the exec → alert latency, issue 16). The survey of the limits goes SLICE cgroups at a time the
   * same way. The time counted in the stats is the walk's own, not the turns between.
   */
  async sampleSliced(): Promise<void> {
    let busy = 0;
    const stops = this.stops;
    try {
      const pids = await this.pidList.getAsync();
      if (this.stops !== stops) return;
      let t0 = performance.now();
      const { now, rate } = this.machineNow();
      if (this.surveyDue(rate, now)) {
        // At most SURVEY_PER_SAMPLE cgroups a sample: a hierarchy that keeps growing ahead of the
        // walk holds up no sample (until the walk is over, no sample is quiet).
        for (let done = 0; done < SURVEY_PER_SAMPLE && !this.surveyStep(now, SLICE); done += SLICE) {
          busy += performance.now() - t0;
          await turn();
          if (this.stops !== stops) return;
          t0 = performance.now();
        }
      }
      const walk = this.beginWalk(pids, rate, now);
      while (walk.next < walk.pids.length) {
        this.visit(walk, SLICE);
        if (walk.next >= walk.pids.length) break;
        busy += performance.now() - t0;
        await turn();
        if (this.stops !== stops) return;
        t0 = performance.now();
      }
      this.endWalk(walk);
      busy += performance.now() - t0;
    } catch (e) {
      this.onError(e);
    }
    this.finishStats(busy);
  }

  private finishStats(ms: number): void {
    this.stats.samples++;
    this.stats.lastSampleMs = ms;
    if (ms > this.stats.maxSampleMs) this.stats.maxSampleMs = ms;
  }

  /** A sample's start: the clock, and how busy the machine was since the last (machineRate). */
  private machineNow(): { now: bigint; rate: number | undefined } {
    this.mounts ??= discoverCgroupMounts(this.cgroupRoot);
    const now = this.nowNs();
    return { now, rate: this.machineRate(now) };
  }

  /**
   * How busy all the machine's CPUs were since the last sample, in cores: the largest of the
   * figures that bound a process's own (see "A quiet machine"); undefined on the first sample,
   * without /proc/stat, or on a kernel that has only tick-sampled figures.
   */
  private machineRate(now: bigint): number | undefined {
    const text = readSmall(`${this.procRoot}/stat`);
    const times = text === undefined ? undefined : parseMachineTimes(text);
    const acct = this.mounts?.cpuacct !== undefined ? readSmall(`${this.mounts.cpuacct}/cpuacct.usage`) : undefined;
    let cpuacct: bigint | undefined;
    try {
      cpuacct = acct === undefined ? undefined : BigInt(acct.trim());
    } catch {
      cpuacct = undefined;
    }
    const prev = this.machine;
    this.machine = times === undefined ? undefined : { times, cpuacct, at: now };
    if (times === undefined || prev === undefined) return undefined;
    this.ticksOnly ??= cpuacct === undefined && /(^|\s)nohz=off(\s|$)/.test(readSmall(`${this.procRoot}/cmdline`) ?? '');
    if (this.ticksOnly) return undefined;
    const dt = Number(now - prev.at) / 1e9;
    if (!(dt > 0)) return undefined;
    const ticks = (times.busy - prev.times.busy) / this.ticksPerSec / dt;
    const notIdle = Math.min(times.cpus, prev.times.cpus) - (times.idle - prev.times.idle) / this.ticksPerSec / dt;
    const exact = cpuacct !== undefined && prev.cpuacct !== undefined ? Number(cpuacct - prev.cpuacct) / 1e9 / dt : 0;
    return Math.max(ticks, notIdle, exact);
  }

  /** Whether the smallest limit must be found (again), or its walk go on, before a machine this busy can be called quiet. */
  private surveyDue(rate: number | undefined, now: bigint): boolean {
    if (rate === undefined || rate >= this.rearm) return false;
    return this.survey !== undefined || this.smallest === undefined || now - this.smallest.at >= this.limitRefreshNs;
  }

  /**
   * Walk on through the hierarchy that holds the limits (the one limitOf reads), `count` cgroups
   * at most; true once the walk is over and `smallest` says what it found.
   */
  private surveyStep(now: bigint, count: number): boolean {
    if (!this.survey) {
      const m = this.mounts!;
      const root = m.cpu ?? m.unified;
      if (root === undefined) {
        // No hierarchy, no limit anywhere (limitOf finds none either).
        this.smallest = { cores: null, at: now };
        return true;
      }
      this.survey = { kind: m.cpu !== undefined ? 'v1' : 'v2', dirs: [root], smallest: null, at: now, seen: 0 };
      this.stats.limitSurveys++;
    }
    const sv = this.survey;
    for (let i = 0; i < count && sv.dirs.length > 0; i++) {
      if (++sv.seen > SURVEY_MAX_DIRS) {
        // Past any real host's hierarchy: no smallest limit can be vouched for, so no sample is quiet until the next walk.
        this.smallest = { cores: 0, at: sv.at };
        this.survey = undefined;
        return true;
      }
      const dir = sv.dirs.pop()!;
      const own = ownLimit(sv.kind, dir);
      if (own !== null && (sv.smallest === null || own < sv.smallest)) sv.smallest = own;
      let entries: Dirent[] = [];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        // Removed while the walk went on: nothing below it any more.
      }
      for (const e of entries) if (e.isDirectory()) sv.dirs.push(`${dir}/${e.name}`);
    }
    if (sv.dirs.length > 0) return false;
    // Dated from the walk's start: a limit set since may have been passed by it.
    this.smallest = { cores: sv.smallest, at: sv.at };
    this.survey = undefined;
    return true;
  }

  private beginWalk(pids: number[], machineRate: number | undefined, now: bigint): Walk {
    const same = pids === this.lastPids;
    this.lastPids = pids;
    let quiet = false;
    // Only with a finished walk of the limits, recent enough.
    if (machineRate !== undefined && this.smallest !== undefined && this.survey === undefined && now - this.smallest.at < this.limitRefreshNs) {
      // The smallest base any process or container can have (one core, or a smaller limit).
      const base = this.smallest.cores === null ? 1 : Math.min(1, this.smallest.cores);
      quiet = machineRate < this.rearm * base;
    }
    if (quiet) {
      // Every rate was below rearm × its base: every run is broken and re-armed, and each process
      // is measured again from its next read.
      this.stats.quietSamples++;
      for (const ps of this.procs.values()) {
        ps.run.since = undefined;
        ps.run.armed = true;
        ps.stale = true;
      }
    }
    // A quiet sample over the very listing of the last sample has no new process to read and no gone one to forget.
    const walked = !(quiet && same);
    return { quiet, walked, pids, next: walked ? 0 : pids.length, live: new Set<number>(), groups: new Map(), measured: walked ? 0 : this.procs.size };
  }

  /** Measure the walk's next `count` pids. */
  private visit(walk: Walk, count: number): void {
    const { pids, live, groups } = walk;
    const end = Math.min(pids.length, walk.next + count);
    for (; walk.next < end; ) {
      const pid = pids[walk.next++]!;
      let ps = this.procs.get(pid);
      if (ps && walk.quiet) {
        // The machine was quiet, so was this process: not read (see "A quiet machine").
        live.add(pid);
        walk.measured++;
        continue;
      }
      if (ps?.skip) {
        // Asleep at its last reads: passed over this time (its membership still counts).
        ps.skip--;
        live.add(pid);
        walk.measured++;
        this.group(groups, pid);
        continue;
      }
      const text = readSmall(`${this.procRoot}/${pid}/stat`);
      this.stats.statReads++;
      const now = this.nowNs();
      if (text === undefined) continue;
      const st = parseProcStat(text);
      if (!st) continue;
      live.add(pid);
      walk.measured++;
      if (ps && ps.starttime === st.starttime) {
        // Unchanged CPU time: asleep, passed over for (about) quietCap samples at once. Backing
        // off step by step read every sleeper four times in the agent's first minute, for nothing:
        // the delay a waking miner can see is quietCap samples either way.
        ps.skip = st.ticks === ps.ticks ? this.quietCap - (pid % this.quietSpread) : 0;
      }
      if (!ps || ps.starttime !== st.starttime) {
        // First sight, or the pid now names another process: start over.
        ps = { starttime: st.starttime, ticks: st.ticks, at: now, comm: st.comm, ppid: st.ppid, run: { armed: true } };
        if (this.quietCap > 0 && this.asleepAllAlong(walk, st)) ps.skip = this.quietCap - (pid % this.quietSpread);
        this.procs.set(pid, ps);
      } else if (ps.stale) {
        // Read first since a quiet sample: its CPU time over the quiet stretch says nothing of its
        // rate now. It is measured from here.
        ps.ticks = st.ticks;
        ps.at = now;
        ps.comm = st.comm;
        ps.rate = undefined;
        ps.stale = false;
      } else {
        const dt = Number(now - ps.at) / 1e9;
        ps.rate = dt > 0 ? (st.ticks - ps.ticks) / this.ticksPerSec / dt : 0;
        const prevAt = ps.at;
        ps.ticks = st.ticks;
        ps.at = now;
        ps.comm = st.comm;
        if (ps.rate > 0) this.ensureCgroup(pid, ps, now);
        if (this.watchProcess) {
          const limit = ps.cg ? this.limitOf(ps.cg, now) : null;
          const base = limit === null ? 1 : Math.min(1, limit);
          const dur = this.step(ps.run, ps.rate, base, prevAt, now);
          if (dur !== undefined) this.report('process', pid, ps, ps.rate, limit, dur, this.safeContainerOf(pid));
        }
      }
      // In a quiet sample no container is measured (see endWalk).
      if (!walk.quiet) this.group(groups, pid);
    }
  }

  /** At first sight: whether a process has used under LIFE_ASLEEP of a core since it started. */
  private asleepAllAlong(walk: Walk, st: ProcStat): boolean {
    if (walk.uptime === undefined) {
      const text = readSmall(`${this.procRoot}/uptime`);
      const up = text === undefined ? NaN : Number(text.slice(0, text.indexOf(' ')));
      walk.uptime = Number.isFinite(up) && up > 0 ? up : null;
    }
    if (walk.uptime === null) return false;
    const age = walk.uptime - st.starttime / this.ticksPerSec;
    return age >= LIFE_MIN_S && st.ticks / this.ticksPerSec < LIFE_ASLEEP * age;
  }

  /** What follows the walk of every pid: the departed forgotten, the containers measured. */
  private endWalk(walk: Walk): void {
    const { live, groups } = walk;
    if (walk.walked) for (const pid of this.procs.keys()) if (!live.has(pid)) this.procs.delete(pid);
    this.stats.processes = walk.measured;

    if (this.watchContainer) {
      // A quiet sample measures no container: each is forgotten, and measured from the start when
      // busy again (its usage over the quiet stretch says nothing of its rate then).
      for (const [id, g] of groups) this.sampleContainer(id, g.info, g.pids);
      for (const id of this.containers.keys()) if (!groups.has(id)) this.containers.delete(id);
      this.stats.containers = groups.size;
    }
    // Limits of cgroups nobody asked about for a while.
    if (this.limits.size > 0 && this.stats.samples % 64 === 0) {
      const cutoff = this.nowNs() - 4n * this.limitRefreshNs;
      for (const [k, e] of this.limits) if (e.at < cutoff) this.limits.delete(k);
    }
  }

  /** Count a process in its container's group for this sample. */
  private group(groups: Map<string, { info: ContainerInfo; pids: number[] }>, pid: number): void {
    if (!this.watchContainer) return;
    const c = this.safeContainerOf(pid);
    if (c && c.id !== 'host' && c.id !== '') {
      let g = groups.get(c.id);
      if (!g) groups.set(c.id, (g = { info: c, pids: [] }));
      g.pids.push(pid);
    }
  }

  private safeContainerOf(pid: number): ContainerInfo | undefined {
    try {
      return this.containerOf(pid);
    } catch (e) {
      this.onError(e);
      return undefined;
    }
  }

  /** Read /proc/PID/cgroup when not known or stale. */
  private ensureCgroup(pid: number, ps: ProcState, now: bigint): void {
    if (ps.cg && ps.cgAt !== undefined && now - ps.cgAt < this.cgroupRefreshNs) return;
    const text = readSmall(`${this.procRoot}/${pid}/cgroup`);
    if (text === undefined) return;
    ps.cg = parseCgroupFile(text);
    ps.cgAt = now;
  }

  /**
   * Advance a run by one interval; returns the time above the threshold when an event is due.
   * The run starts at the beginning of the first interval above the threshold (prevAt).
   */
  private step(run: Run, rate: number, base: number, prevAt: bigint, now: bigint): bigint | undefined {
    if (rate > this.threshold * base) {
      run.since ??= prevAt;
      const dur = now - run.since;
      if (run.armed && dur >= this.durationNs) {
        run.armed = false;
        return dur;
      }
      return undefined;
    }
    run.since = undefined;
    if (rate < this.rearm * base) run.armed = true;
    return undefined;
  }

  private sampleContainer(id: string, info: ContainerInfo, pids: number[]): void {
    const now0 = this.nowNs();
    let cs = this.containers.get(id);
    if (!cs) this.containers.set(id, (cs = { info, run: { armed: true } }));
    cs.info = info;
    // The container's cgroup: the common ancestor of its members' cgroups (the lowest pid, its
    // init as the node sees it, is always asked so there is at least one).
    const members = pids.slice().sort((a, b) => a - b);
    const first = this.procs.get(members[0]!);
    if (first) this.ensureCgroup(members[0]!, first, now0);
    const cgs: CgroupPaths[] = [];
    for (const pid of members) {
      const cg = this.procs.get(pid)?.cg;
      if (cg) cgs.push(cg);
    }
    if (cgs.length === 0) return;
    const m = this.mounts!;
    let usageFile: string | undefined;
    const pick = (key: 'cpuacct' | 'cpu' | 'unified'): string | undefined => {
      const ps = cgs.map((c) => c[key]).filter((p): p is string => p !== undefined);
      if (ps.length === 0) return undefined;
      const common = commonAncestor(ps);
      // Members scattered across unrelated cgroups would make the root the "container": not that.
      return common === '/' && ps.some((p) => p !== '/') ? cgs[0]![key] : common;
    };
    const acct = m.cpuacct !== undefined ? pick('cpuacct') : undefined;
    const unified = m.unified !== undefined ? pick('unified') : undefined;
    let perNs = 1n;
    if (acct !== undefined) {
      usageFile = `${join(m.cpuacct!, acct)}/cpuacct.usage`;
    } else if (unified !== undefined) {
      usageFile = `${join(m.unified!, unified)}/cpu.stat`;
      perNs = 1000n;
    }
    if (usageFile === undefined) return;
    // Limits from the v1 cpu controller when mounted, else from v2 cpu.max.
    const cpuPath = m.cpu !== undefined ? pick('cpu') : undefined;
    const limitCg: CgroupPaths = cpuPath !== undefined ? { cpu: cpuPath } : unified !== undefined ? { unified } : {};

    const text = readSmall(usageFile);
    const now = this.nowNs();
    if (text === undefined) return;
    let usage: bigint | undefined;
    try {
      if (perNs === 1n) usage = BigInt(text.trim());
      else {
        const mm = /^usage_usec (\d+)/m.exec(text);
        if (mm) usage = BigInt(mm[1]!) * perNs;
      }
    } catch {
      usage = undefined;
    }
    if (usage === undefined) return;

    const prevUsage = cs.usage;
    const prevAt = cs.at;
    const sameCgroup = cs.key === usageFile;
    cs.usage = usage;
    cs.at = now;
    cs.key = usageFile;
    if (prevUsage === undefined || prevAt === undefined || !sameCgroup) return;
    const dt = Number(now - prevAt) / 1e9;
    const rate = dt > 0 ? Number(usage - prevUsage) / 1e9 / dt : 0;
    const limit = this.limitOf(limitCg, now);
    const base = limit === null ? 1 : limit;
    const dur = this.step(cs.run, rate, base, prevAt, now);
    if (dur === undefined) return;
    // Its busiest process in the interval stands for it (proc.* of the event).
    let busiest = members[0]!;
    let best = -1;
    for (const pid of members) {
      const r = this.procs.get(pid)?.rate ?? 0;
      if (r > best) {
        best = r;
        busiest = pid;
      }
    }
    const ps = this.procs.get(busiest);
    if (ps) this.report('container', busiest, ps, rate, limit, dur, info);
  }

  /** Effective CPU limit in cores of a cgroup: the lowest along the path to the root, or null. */
  private limitOf(cg: CgroupPaths, now: bigint): number | null {
    const m = this.mounts!;
    if (cg.cpu !== undefined && m.cpu !== undefined) return this.limitAt('v1', m.cpu, cg.cpu, now);
    if (cg.unified !== undefined && m.unified !== undefined) return this.limitAt('v2', m.unified, cg.unified, now);
    return null;
  }

  private limitAt(kind: 'v1' | 'v2', mount: string, path: string, now: bigint): number | null {
    const key = `${kind}:${mount}:${path}`;
    const hit = this.limits.get(key);
    if (hit && now - hit.at < this.limitRefreshNs) return hit.cores;
    const own = ownLimit(kind, join(mount, path));
    const parent = path === '/' || path === '' ? null : this.limitAt(kind, mount, posix.dirname(path), now);
    const cores = own === null ? parent : parent === null ? own : Math.min(own, parent);
    this.limits.set(key, { cores, at: now });
    return cores;
  }

  private report(scope: CpuScope, pid: number, ps: ProcState, rate: number, limit: number | null, dur: bigint, container?: ContainerInfo): void {
    let proc: ProcessInfo | undefined;
    try {
      proc = this.lookup(pid);
    } catch (e) {
      this.onError(e);
    }
    const cpu: Record<string, number | string> = {
      percent: Math.round(rate * 1000) / 10,
      duration: Number(dur),
      scope,
    };
    if (limit !== null) {
      cpu.limit_percent = Math.round((rate / limit) * 1000) / 10;
      cpu.limit = Math.round(limit * 1000) / 10;
    }
    const ev: SyscallEvent = {
      source: 'syscall',
      type: 'cpu_sustained',
      ts: epochNs(),
      num: ++this.seq,
      res: 0,
      proc: proc ?? { pid, ppid: ps.ppid, name: ps.comm },
      cpu,
    };
    if (container) ev.container = container;
    this.stats.events++;
    try {
      this.emit?.(ev);
    } catch (e) {
      this.onError(e);
    }
  }
}
