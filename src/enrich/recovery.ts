/**
 * Nothing hides behind a flood (issue 16). When notices are lost (the eBPF ring buffer or the proc
 * connector overflowed, or the agent's queue refused events), an exec may never have reached the
 * process table: a miner started in the middle of an exec storm would run unseen. So after any
 * drop, /proc is read again for live processes the table does not know as they are now (another
 * start time, or another comm: the fork was seen, the exec was not), and for each the exec event
 * it missed is emitted, flagged `recovered` (mw.exec.recovered).
 *
 * The drop counters are looked at every `checkMs`; a scan runs when they moved since the last
 * look, so there is always one scan after the last drop of a flood. Between floods it costs a
 * counter read per tick. An event whose process the table does not know at all (a connection of a
 * process whose exec was lost) is filled the same way, from /proc, before it goes on (`fill`).
 */
import type { ProcessInfo, SyscallEvent } from '../events.js';
import type { Event, ProcNotice } from '../events.js';
import type { ProcessContext } from './process-table.js';
import { bootTimeNs, clockTicks, listPidsSync, parseStat, readSmallSync, startTsFromTicks } from '../platform/procfs.js';

/** What recovery needs of the process table. */
export interface RecoveryTable {
  get(pid: number): ProcessInfo | undefined;
  isSelf(pid: number): boolean;
  onNotice(n: ProcNotice): Promise<SyscallEvent | undefined>;
  describe(pid: number): Promise<ProcessContext | undefined>;
}

export interface ExecRecoveryOptions {
  /** Notices and events lost so far, every counter summed. */
  drops: () => number;
  /** Where recovered exec events go (the agent's queue). */
  emit: (ev: SyscallEvent) => void;
  /** How often the drop counters are looked at, ms (default 500). */
  checkMs?: number;
  procRoot?: string;
  clkTck?: number;
  /** ns since the epoch (default: Date.now). */
  nowNs?: () => bigint;
}

export interface RecoveryStats {
  /** Scans of /proc after drops. */
  scans: number;
  /** Exec events emitted for processes found by a scan. */
  recovered: number;
  /** Events whose unknown process was read from /proc before they went on. */
  filled: number;
}

/** Dropped exec events remembered for the next scan, at most (the process table's own limit). */
const MAX_UNEVALUATED = 16_384;

export class ExecRecovery {
  readonly stats: RecoveryStats = { scans: 0, recovered: 0, filled: 0 };
  private readonly procRoot: string;
  private readonly checkMs: number;
  private readonly nowNs: () => bigint;
  private timer: NodeJS.Timeout | undefined;
  private seenDrops = 0;
  private scanning: Promise<number> | undefined;
  private again = false;
  /**
   * Execs the table took but the rules never saw (the agent's queue refused the event), by pid:
   * the start time of that process. The next scan evaluates them though the table knows them.
   */
  private unevaluated = new Map<number, bigint | undefined>();

  constructor(private readonly table: RecoveryTable, private readonly opts: ExecRecoveryOptions) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.checkMs = opts.checkMs ?? 500;
    this.nowNs = opts.nowNs ?? (() => BigInt(Date.now()) * 1_000_000n);
  }

  start(): void {
    if (this.timer) return;
    this.seenDrops = this.opts.drops();
    this.timer = setInterval(() => this.check(), this.checkMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * An exec event that never reached the rules (dropped after the table applied it): the next scan
   * evaluates that process again, if it still runs. Bounded: past MAX_UNEVALUATED between two
   * scans the oldest is forgotten (most of a flood's execs are gone by the scan).
   */
  missed(ev: Event): void {
    if (ev.source !== 'syscall' || (ev.type !== 'execve' && ev.type !== 'execveat')) return;
    const proc = (ev as SyscallEvent).proc;
    const pid = proc?.pid;
    if (pid === undefined) return;
    this.unevaluated.delete(pid);
    this.unevaluated.set(pid, proc.start_ts);
    if (this.unevaluated.size > MAX_UNEVALUATED) this.unevaluated.delete(this.unevaluated.keys().next().value!);
  }

  /** Scan when the drop counters moved since the last look (the timer calls it; tests too). */
  check(): void {
    const d = this.opts.drops();
    if (d === this.seenDrops) return;
    this.seenDrops = d;
    if (this.scanning) {
      // The scan under way may have passed the pids that came since: one more after it.
      this.again = true;
      return;
    }
    void this.scan();
  }

  /** Read /proc for live processes the table does not know as they are; returns how many were recovered. */
  scan(): Promise<number> {
    if (this.scanning) return this.scanning;
    this.scanning = this.scanOnce().finally(() => {
      this.scanning = undefined;
      if (this.again) {
        this.again = false;
        void this.scan();
      }
    });
    return this.scanning;
  }

  private async scanOnce(): Promise<number> {
    this.stats.scans++;
    const btime = bootTimeNs(this.procRoot);
    const hz = this.opts.clkTck ?? clockTicks();
    let n = 0;
    // Each scan takes the dropped execs known so far; one dropped during it waits for the next
    // scan (its drop moved the counters), and a process not alive now has nothing to recover.
    const missedExecs = this.unevaluated;
    this.unevaluated = new Map();
    for (const pid of listPidsSync(this.procRoot)) {
      const text = readSmallSync(`${this.procRoot}/${pid}/stat`);
      const st = text === undefined ? undefined : parseStat(text);
      // Gone, or a kernel thread (kthreadd's children): nothing that execs.
      if (!st || st.pid !== pid || pid === 2 || st.ppid === 2 || btime === undefined) continue;
      const known = this.table.get(pid);
      const start = startTsFromTicks(st.starttime, btime, hz);
      // A process whose exec event was dropped is evaluated again, if it is that same process.
      const missedStart = missedExecs.get(pid);
      const missed = missedExecs.has(pid) && (missedStart === undefined || known?.start_ts === missedStart);
      if (known && known.start_ts === start && known.name === st.comm && !missed) continue;
      if (this.table.isSelf(pid)) continue;
      const ev = await this.table.onNotice({ kind: 'exec', pid, tid: pid, ts: this.nowNs() });
      if (!ev) continue;
      ev.recovered = true;
      this.stats.recovered++;
      n++;
      this.opts.emit(ev);
    }
    return n;
  }

  /**
   * An event (a connection, a CPU sample, a syscall) of a process the table does not know: read
   * it from /proc and put it on the event, rather than send the event on with a bare pid.
   * Resolves false when the table knew it already or it is gone.
   */
  async fill(ev: SyscallEvent): Promise<boolean> {
    const pid = ev.proc?.pid;
    if (pid === undefined || this.table.get(pid)) return false;
    const ctx = await this.table.describe(pid);
    if (!ctx) return false;
    // Only the same process: a start time on the event that differs names an earlier one.
    if (ev.proc.start_ts !== undefined && ctx.proc.start_ts !== undefined && ev.proc.start_ts !== ctx.proc.start_ts) return false;
    ev.proc = ctx.proc;
    ev.container = ctx.container;
    if (ctx.k8s) ev.k8s = ctx.k8s;
    this.stats.filled++;
    return true;
  }
}
