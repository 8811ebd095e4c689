/** What every producer of events implements (ARCHITECTURE.md: sources → enrichment → engine). */
import type { Event } from '../events.js';

export interface Source {
  readonly name: string;
  /** Begin producing; resolves when the source has finished (replay) or has started (live). */
  start(emit: (ev: Event) => void): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A process lifecycle notice from the kernel (proc connector) or the /proc poller. It says only
 * that something happened to a pid; the process table reads /proc to turn an exec into an event.
 */
export interface ProcNotice {
  kind: 'exec' | 'fork' | 'exit' | 'uid';
  /** Thread group id (the process id). */
  pid: number;
  /** Thread id; equals pid for the main thread. */
  tid: number;
  /** For fork: the parent's pid. */
  ppid?: number;
  /** For uid: the new real and effective uid. */
  ruid?: number;
  euid?: number;
  /** For exit: the exit code. */
  exitCode?: number;
  /**
   * For fork, from the eBPF driver: the child's start time as the process table counts it, and its
   * pid in its own pid namespace. With both, the table builds the child without reading /proc.
   */
  startTs?: bigint;
  vpid?: number;
  /** ns since the epoch, when the notice was made. */
  ts: bigint;
  /**
   * For exec, from the eBPF driver: what the kernel saw at the exec itself. The process may be gone
   * before /proc can be read; these make its event whole anyway (see applyKernelExec).
   */
  exec?: KernelExec;
}

/** An exec as the kernel saw it (src/sources/ebpf). */
export interface KernelExec {
  type: 'execve' | 'execveat';
  comm: string;
  /** argv[0..], the kernel's copy. */
  argv: string[];
  /** Full path of the executable; '' when the kernel could not name it. */
  exepath: string;
  uid: number;
  ppid: number;
  /** Start time as the process table counts it (btime + clock ticks). */
  startTs: bigint;
}

/** A producer of ProcNotices (proc connector, procfs poller). */
export interface ProcNoticeSource {
  readonly name: string;
  /** Resolves once it is listening; rejects with a reason a user can act on when it cannot run here. */
  start(notify: (n: ProcNotice) => void): Promise<void>;
  stop(): Promise<void>;
  /** Notices lost (kernel buffer overruns, queue overflow) since start. */
  readonly drops: number;
}
