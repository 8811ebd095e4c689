/**
 * Loads the native addon (native/proc_connector.c, target `minewatch_native`) through
 * node-gyp-build, which picks build/Release when the addon was compiled here and a matching
 * prebuilds/<platform>-<arch>/ binary otherwise.
 *
 * Loading never throws: the addon is optional (its install step may have failed on a host without
 * a compiler), and the agent falls back to the /proc poller when it is missing. Callers get
 * `{ addon }` or `{ error }` with the reason.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** One process event as the addon reports it (see the comment at the top of proc_connector.c). */
export interface NativeProcEvent {
  kind: 'fork' | 'exec' | 'exit' | 'uid' | 'gid' | 'comm' | 'coredump' | 'other';
  /** Thread group id (the process id). */
  pid: number;
  /** Thread id. */
  tid: number;
  cpu: number;
  /** ns since the epoch (the kernel's CLOCK_MONOTONIC stamp plus REALTIME - MONOTONIC). */
  ts: bigint;
  /** fork, coredump, exit (kernels >= 4.18): the parent's tgid and tid. */
  ppid?: number;
  ptid?: number;
  /** exit: the wait status (code << 8 | terminating signal | 0x80 for a core dump). */
  status?: number;
  /** exit: the signal the parent gets (SIGCHLD, usually); not the one that killed it. */
  exitSignal?: number;
  ruid?: number;
  euid?: number;
  rgid?: number;
  egid?: number;
  comm?: string;
}

export interface NativeOpenOptions {
  /** Report fork/exit/uid/comm of every thread, not only of thread group leaders (default false). */
  threads?: boolean;
  /** Batches waiting for the JS thread before new ones are dropped and counted (default 256). */
  queueSize?: number;
  /** The netlink socket's receive buffer in KiB (default 8192, 64 to 1048576): notices the kernel keeps while the reader is behind. */
  socketBufferKb?: number;
  /**
   * Hand each batch over as one Uint32Array, PACKED_EVENT_WORDS words per event (see
   * PackedWord), instead of an object per event (default false). An addon built before this
   * option ignores it and sends objects: the callback must take both.
   */
  packed?: boolean;
  /**
   * With `packed`: the reader thread reads /proc for each exec the moment its notice arrives
   * (native/proc_exec_read.c), and the callback's third argument holds the reads (default false).
   */
  readExecs?: boolean;
  /**
   * How long (µs, at most 100,000) a batch may wait for more events before it is handed to JS
   * (default 0: at once). The reader still takes each event, and reads each exec, as it arrives.
   */
  holdUs?: number;
  /** With `readExecs`: the reads take /proc/PID/loginuid (default true); setReadLoginuid() changes it. */
  readLoginuid?: boolean;
  /**
   * With `readExecs`: the reads take /proc/PID/status (vpid, capabilities; default true), or only
   * the effective ids from a stat of /proc/PID; setReadStatus() changes it.
   */
  readStatus?: boolean;
  /**
   * How long (µs, at most 1,000,000; at least holdUs) a batch of quiet notices only may wait:
   * forks, exits, and execs whose signature was marked quiet (markQuiet; native/exec_quiet.c).
   * Needs readExecs; nothing is quiet until setQuiet starts an epoch.
   */
  quietUs?: number;
}

/** Words per event of a packed batch (native/proc_connector.c, packed_events). */
export const PACKED_EVENT_WORDS = 8;

/** Where each field sits in a packed event; `a` and `b` are the kind's two values (see NativeProcEvent). */
export const PackedWord = { what: 0, pid: 1, tid: 2, ppid: 3, a: 4, b: 5, tsLow: 6, tsHigh: 7 } as const;

/** The kernel's PROC_EVENT_* numbers (linux/cn_proc.h) of the kinds a packed batch carries. */
export const ProcEventWhat = { fork: 0x1, exec: 0x2, uid: 0x4, gid: 0x40, comm: 0x200, coredump: 0x40000000, exit: 0x80000000 } as const;

export interface NativeStats {
  /** Events decoded and queued for JS. */
  events: number;
  /** Events dropped because JS did not keep up with the bounded queue. */
  drops: number;
  /** ENOBUFS from recv: times the socket buffer overflowed (each loses one or more events). */
  kernelDrops: number;
  open: boolean;
  /**
   * Forks and exits come on a socket of their own, filtered in the kernel and read without a
   * wake-up of their own (native/proc_connector.c, reader_main); false where it could not be had.
   * Absent from an addon built before it.
   */
  lazySocket?: boolean;
  /** Batches handed to the JS thread; absent from builds before quiet execs. */
  batches?: number;
}

/** An opaque handle returned by open(). */
export type NativeHandle = { readonly __brand: 'minewatch_native_handle' };

/**
 * Process file descriptors (native/pidfd.c), for the response actions. Each function throws an
 * Error with Node's system-error fields on failure: `code` ("ESRCH", "ENOSYS", "EPERM", "EINVAL",
 * "EBADF", …), `errno` (negative) and `syscall`.
 */
export interface PidfdFunctions {
  /** pidfd_open(pid, 0): an fd naming this one process (close-on-exec). ESRCH: no such process;
   * EINVAL: a thread id, not a process; ENOSYS: kernel older than 5.3. */
  pidfdOpen(pid: number): number;
  /** pidfd_send_signal(fd, signal, NULL, 0); signal 0 only probes. ESRCH: the process has exited. */
  pidfdSendSignal(fd: number, signal: number): void;
  /** close(fd). */
  closeFd(fd: number): void;
}

/** glibc malloc settings (native/malloc_tune.c); absent from addons built before them. */
export interface MallocFunctions {
  /** mallopt(M_ARENA_MAX, n); false where the C library has no such setting (not glibc). */
  mallocArenaMax(n: number): boolean;
}

/** The program's clean file pages (native/resident_pages.c); absent from addons built before it. */
export interface ResidentFunctions {
  /**
   * madvise(MADV_DONTNEED) on every private, never-written mapping of the file at `path` (an
   * absolute path, as /proc/self/smaps names it) with pages resident: how many mappings, and the
   * bytes they had. Throws when /proc/self/smaps cannot be read or `path` is not absolute.
   */
  dropCleanFilePages(path: string): { mappings: number; bytes: number };
}

export interface ProcConnectorAddon extends Partial<PidfdFunctions>, Partial<MallocFunctions>, Partial<ResidentFunctions> {
  /** Throws an Error with `code` (EPERM, EPROTONOSUPPORT, ERR_NOT_HOST_NETNS, ERR_NO_ACK, …). */
  /**
   * `events` is a Uint32Array when opened with `packed` (and the addon knows the option). With
   * `readExecs`, `reads` holds the batch's /proc reads of execs back to back, and `readAt` two
   * words per event: where its read starts in `reads`, and its length (0: none); both undefined
   * when the batch has none.
   */
  open(
    callback: (events: NativeProcEvent[] | Uint32Array, error?: string, reads?: Buffer, readAt?: Uint32Array) => void,
    options?: NativeOpenOptions,
  ): NativeHandle;
  /** The reader thread's read of an exec, on the calling thread (tests); null when gone or unsettled. Absent from older builds. */
  readExec?(pid: number, loginuid?: boolean, status?: boolean): Buffer | null;
  /** Whether the reads of execs take loginuid from now on (1) or not (0). Absent from older builds. */
  setReadLoginuid?(handle: NativeHandle, on: number): void;
  /** Whether the reads of execs take /proc/PID/status from now on (1) or not (0). Absent from older builds. */
  setReadStatus?(handle: NativeHandle, on: number): void;
  /** Quiet execs on under a new epoch (every signature forgotten), or off (0). Absent from builds before them. */
  setQuiet?(handle: NativeHandle, epoch: number): void;
  /** Execs of this signature (KernelExec.sig) are quiet until the next epoch; false when quiet execs are off. */
  markQuiet?(handle: NativeHandle, sig: number): boolean;
  close(handle: NativeHandle): void;
  stats(handle: NativeHandle): NativeStats;
  /** stats()' drops + kernelDrops, without building its object (a look twice a second). Absent from older builds. */
  drops?(handle: NativeHandle): number;
}

export type AddonLoad = { addon: ProcConnectorAddon } | { error: string };

/** The package root: this file compiles to dist/src/sources/, three levels below it. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The addon's functions that an older build may lack. */
type LaterFunctions = MallocFunctions & ResidentFunctions;

/**
 * One of the addon's later functions, or why it cannot be had here (the reason a caller that
 * does without it gives: no addon on this host, or one built before the function).
 */
export function addonFunction<K extends keyof LaterFunctions>(name: K): LaterFunctions[K] | string {
  const load = loadNativeAddon();
  if ('error' in load) return `native addon: ${load.error}`;
  const fn = load.addon[name];
  if (typeof fn !== 'function') return `native addon built before ${name} (run \`npm rebuild minewatch\`)`;
  return fn.bind(load.addon) as LaterFunctions[K];
}

let cached: AddonLoad | undefined;

/** Load the addon once; later calls return the same answer. */
export function loadNativeAddon(): AddonLoad {
  cached ??= load();
  return cached;
}

function load(): AddonLoad {
  if (process.platform !== 'linux') return { error: `the proc connector exists only on Linux (this is ${process.platform})` };
  try {
    const require = createRequire(import.meta.url);
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    const mod = nodeGypBuild(PACKAGE_ROOT) as Partial<ProcConnectorAddon> | null;
    if (!mod || typeof mod.open !== 'function' || typeof mod.close !== 'function' || typeof mod.stats !== 'function') {
      return { error: 'the native addon loaded but lacks open/close/stats (a stale build? run `npm rebuild minewatch`)' };
    }
    return { addon: mod as ProcConnectorAddon };
  } catch (e) {
    // node-gyp-build's "No native build was found for platform=… abi=…" spans lines: keep the first.
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
    return { error: msg };
  }
}
