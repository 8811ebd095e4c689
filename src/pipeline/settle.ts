/**
 * Settling: an event a source built from the process table (a connection, a CPU sample, an eBPF
 * syscall) may name a process that is still on its way through the table. Such an event waits for
 * its pid's pending notices and then takes the process afresh (moved here from agent.ts).
 */
import type { ContainerInfo, Event, ProcessInfo, SyscallEvent } from '../events.js';

/** Longest a connection or CPU event waits for its process's pending notices. */
export const SETTLE_WAIT_MS = 2_000;

/** What settling reads of the process table. */
export interface SettleTable {
  get(pid: number): ProcessInfo | undefined;
  containerOf(pid: number): ContainerInfo | undefined;
  /** The container once a runtime lookup in flight has answered (bounded wait). */
  containerSettled?(pid: number, waitMs: number): Promise<ContainerInfo | undefined>;
}

/** Chooses between the process as the source saw it (`was`) and as the table has it now. */
export type PickProcess = (was: ProcessInfo, now: ProcessInfo) => ProcessInfo;

/**
 * For the eBPF driver's events: the table's entry replaces the kernel's view of the process only
 * once the table has taken in the same exec (same comm), not while it still holds the forked image;
 * and a command line the table could not read (the process exited first) stays the kernel's.
 */
export function preferKernelImage(was: ProcessInfo, now: ProcessInfo): ProcessInfo {
  if (was.name !== now.name) return was;
  if (was.exepath !== undefined && now.exepath === undefined) return { ...now, exe: was.exe, args: was.args, exepath: was.exepath };
  return now;
}

/** Fills in, from /proc, the process of an event the table does not know (its exec was lost: enrich/recovery.ts). */
export type FillUnknown = (ev: SyscallEvent) => Promise<unknown>;

export class NoticeSettler {
  /** Per pid, the last process notice still being applied to the table. */
  private readonly applying = new Map<number, Promise<void>>();
  /** Set while exec recovery runs (sources.recovery.enabled). */
  private fill: FillUnknown | undefined;

  constructor(private readonly table: SettleTable, private readonly forward: (ev: Event) => void) {}

  /** From now on, an event of a process the table does not know is filled from /proc before it goes on. */
  fillUnknownWith(fill: FillUnknown | undefined): void {
    this.fill = fill;
  }

  /**
   * Forward an event whose process's notices have settled. It takes the process as the table has
   * it now, when that is the same process (same start time, never a new one under a reused pid):
   * the source may have looked while the table still held the forked image or had not yet taken
   * in the exec, and the exec has landed since (seen: tar's open read as the kernel's bare view,
   * without its tty, when its exec landed between the record and this). `pick` lets a source that
   * knows better keep (some of) what it saw. The container too is the table's now. A process the
   * table still does not know (its exec was lost) is read from /proc first, not sent on bare.
   */
  private forwardKnown(ev: Event, pid: number, pick?: PickProcess): void {
    const now = this.table.get(pid);
    const sev = ev as SyscallEvent;
    if (now && ev.source === 'syscall') {
      const was = sev.proc;
      if (was === now || (was.start_ts === undefined || now.start_ts === undefined || now.start_ts === was.start_ts)) {
        if (was !== now) sev.proc = pick ? pick(was, now) : now;
        const c = this.table.containerOf(pid);
        if (c) sev.container = c;
      }
    }
    const fill = this.fill;
    if (!fill || ev.source !== 'syscall' || now) return this.forward(ev);
    void fill(sev).finally(() => this.forward(ev));
  }

  /**
   * A process notice is being applied to the table: events of its pid wait for it. The table
   * applies one pid's notices in order, so the last one pending settles them all.
   */
  track(pid: number, done: Promise<void>): void {
    const tracked: Promise<void> = done.finally(() => {
      if (this.applying.get(pid) === tracked) this.applying.delete(pid);
    });
    this.applying.set(pid, tracked);
  }

  /** What an event of this pid waits for: its pending notices, then a container lookup in flight. */
  private waitFor(pid: number): Promise<void> | undefined {
    const notices = this.applying.get(pid);
    const table = this.table;
    if (!table.containerSettled) return notices;
    const c = table.containerOf(pid);
    // Nothing to wait for on the host, or for a container the runtime has described already.
    if (!notices && (!c || c.id === 'host' || c.image !== undefined)) return undefined;
    return (notices ?? Promise.resolve()).then(() => table.containerSettled?.(pid, SETTLE_WAIT_MS)).then(() => undefined);
  }

  /**
   * Take an event that names a process as the table knew it when the source looked; a process
   * that has just exec'd (a miner that starts and connects at once) may still be on its way
   * through the table, and the event would name the image it was forked from (seen: a container's
   * miner connected 8 ms after its exec, and the pool alert named `sh`). setImmediate first: it
   * runs after the event loop's poll phase, which delivers the proc connector's batches, so
   * notices the kernel sent before the source looked are pending by then. An exec notice that was
   * dropped (a burst past the connector's queue) is not recovered here: the event keeps the
   * forked image. `ordered`: a source whose notices and events come in one ordered stream (eBPF)
   * has delivered every notice before the event already: nothing to wait for unless one is still
   * being applied.
   */
  settled(ev: Event, pick?: PickProcess, ordered = false): void {
    const pid = (ev as SyscallEvent).proc?.pid;
    if (pid === undefined) return this.forward(ev);
    if (ordered && !this.applying.has(pid)) return this.forwardKnown(ev, pid, pick);
    setImmediate(() => {
      // A source that built its event from the table (connections, CPU use) may have looked while
      // the runtime was still being asked about the process's container: wait for that answer too.
      const pending = this.waitFor(pid);
      if (!pending) return this.forwardKnown(ev, pid, pick);
      // The table's notices always settle; the timer only bounds the wait should one not.
      let timer: NodeJS.Timeout | undefined;
      const bounded = Promise.race([pending, new Promise<void>((r) => (timer = setTimeout(r, SETTLE_WAIT_MS)))]);
      void bounded.then(() => {
        clearTimeout(timer);
        this.forwardKnown(ev, pid, pick);
      });
    });
  }
}
