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
  /** Everything else /proc would have said (eBPF driver): the table then reads nothing. */
  facts?: KernelExecFacts;
}

/** MW_EXE_* (minewatch.h). */
export const EXE_UPPER = 1;
export const EXE_MEMFD = 2;
export const EXE_DELETED = 4;
export const EXE_OVERLAY = 8;
export const EXE_RDONLY = 16;
export const EXE_KNOWN = 32;

/**
 * What the kernel says about a process at its exec (eBPF: native/ebpf/minewatch.h, struct mw_exec):
 * all the process table needs, so that an exec costs no read of /proc (issue 16).
 */
export interface KernelExecFacts {
  ruid: number;
  euid: number;
  rgid: number;
  egid: number;
  /** undefined: unset (the kernel's (u32)-1). */
  loginuid: number | undefined;
  vpid: number;
  /** As /proc/PID/stat's tty_nr encodes it; 0: none. */
  tty: number;
  /** MW_EXE_* flags; EXE_KNOWN unset: nothing below about the file was read. */
  exeFlags: number;
  /** The file's device as stat() gives st_dev (user space's dev_t encoding). */
  exeDev: bigint;
  exeIno: bigint;
  exeMtimeNs: bigint;
  exeCtimeNs: bigint;
  exeSize: bigint;
  exeMode: number;
  exeUid: number;
  exeGid: number;
  /** The cgroup v2 id and path ('/' for the root); 0n and '' when the kernel had none. */
  cgroupId: bigint;
  cgroupPath: string;
  /** A v1 controller's cgroup (cpu, else memory) id and path, where one is not at its root (hybrid and v1 hosts); 0n and '' otherwise. */
  cgroup1Id: bigint;
  cgroup1Path: string;
  capEff: bigint;
  capPrm: bigint;
  capInh: bigint;
  /** The environment (first MW_ENV_MAX bytes); undefined when the kernel could not copy it. */
  env: string[] | undefined;
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
