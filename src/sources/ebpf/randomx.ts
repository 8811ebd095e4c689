/**
 * The RandomX detector's user-space half: what an FPU record from the kernel (minewatch.bpf.c,
 * x86_fpu_regs_deactivated) says about a process, as the mw.fpu.* figures the rules read, and which
 * records become mw_fpu_rounding events.
 *
 * The kernel follows a process once it has left the CPU with a rounding mode other than
 * round-to-nearest, counts its switch-outs per rounding mode, and sends a record at most once a
 * second. The judging is the rules' (rules/minewatch_rules.yaml, mw_fpu_rounding_excessive); this
 * module only turns counts into figures:
 *   rounding_count    switch-outs away from round-to-nearest
 *   rounding_changes  switch-outs in another mode than the one before
 *   rounding_rate     rounding_count per second since the first
 *   rounding_percent  rounding_count in percent of all switch-outs since the first
 *   rounding_rarest   switch-outs in the rarest of the four modes (RandomX uses all four alike)
 *   seconds           since the first sighting
 *   busy_percent      how much of its life the switched-out thread wanted a CPU: running, or
 *                     runnable and waiting for one, in percent of the time since it started. The
 *                     kernel's own counts (se.sum_exec_runtime + sched_info.run_delay): no CPU
 *                     sampler, no /proc read, and a hashing thread shows ~100 from its start
 *                     however loaded the host is (on a busy host it waits, it does not sleep)
 */
import type { FpuRecord } from './decode.js';

/** The events this detector sends (the agent attaches the tracepoint where a rule reads them). */
export const RANDOMX_EVENT = 'mw_fpu_rounding';

export type FpuFigures = Record<
  'rounding_count' | 'rounding_changes' | 'rounding_rate' | 'rounding_percent' | 'rounding_rarest' | 'seconds' | 'busy_percent',
  number
>;

export function fpuFigures(r: FpuRecord): FpuFigures {
  const secs = Math.max(0, Number(r.ts - r.first) / 1e9);
  const life = Number(r.ts - r.tstart);
  return {
    rounding_count: r.count,
    rounding_changes: r.changes,
    // The first second counts as one: a burst is not a rate.
    rounding_rate: Math.round(r.count / Math.max(1, secs)),
    rounding_percent: r.seen > 0 ? Math.round((100 * r.count) / r.seen) : 0,
    rounding_rarest: Math.min(...r.modes),
    seconds: Math.floor(secs),
    busy_percent: life > 0 ? Math.min(100, Math.round((100 * (r.runtime + r.runDelay)) / life)) : 0,
  };
}

/**
 * A busy thread the rules have not judged yet, in its first 20 s: the kernel should look at it more
 * often than the host's own switches would (idle: about twice a second). The source then wakes a
 * thread of its own on that CPU ten times over the next second (EbpfAddon.nudge), so the rule's
 * 16 sightings are there by its 10 s however quiet the host. A few wake-ups a second, for a few
 * suspects at once (the addon runs at most four such threads).
 */
export const NUDGE = { busyPercent: 80, seconds: 20, times: 10, intervalMs: 100 } as const;

export function nudgeWorthy(f: FpuFigures): boolean {
  return f.busy_percent >= NUDGE.busyPercent && f.seconds < NUDGE.seconds;
}

/** How long every record of a process goes on (then only each doubling of its count). */
const JUDGING_NS = 120_000_000_000n;
const MAX_TRACKED = 10_000;

interface Tracked {
  first: bigint;
  /** The count of the last record passed. */
  last: number;
  /** A rule has matched one of its events: from then on, doublings only. */
  judged: boolean;
}

/**
 * Which records become events. While the rules are still making up their mind about a process
 * (its first two minutes, no rule matched yet), every record (the kernel sends one a second at
 * most): a fast hasher is judged as soon as its figures allow. After a match, or after two
 * minutes, a record only when the count has doubled since the last one: a miner running for a
 * week is a few dozen events, not 600,000.
 */
export class FpuGate {
  private readonly procs = new Map<string, Tracked>();

  pass(r: FpuRecord): boolean {
    const key = `${r.pid}:${r.start}`;
    const t = this.procs.get(key);
    if (!t) {
      if (this.procs.size >= MAX_TRACKED) this.procs.clear();
      this.procs.set(key, { first: r.first, last: r.count, judged: false });
      return true;
    }
    const judging = !t.judged && r.ts - t.first < JUDGING_NS;
    if (!judging && r.count < t.last * 2) return false;
    t.last = r.count;
    return true;
  }

  /** Whether no rule has matched this process's events yet. */
  unjudged(r: FpuRecord): boolean {
    return this.procs.get(`${r.pid}:${r.start}`)?.judged !== true;
  }

  /** A rule matched an event of this process (pid and start time, ns): doublings only from now on. */
  judged(pid: number, start: bigint): void {
    const t = this.procs.get(`${pid}:${start}`);
    if (t) t.judged = true;
  }

  /** The process exited (called for every exit: no key is built while nothing is followed). */
  forget(pid: number, start: bigint): void {
    if (this.procs.size > 0) this.procs.delete(`${pid}:${start}`);
  }
}
