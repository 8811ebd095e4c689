/**
 * Process notices from the kernel's process events connector (netlink, CN_IDX_PROC), through the
 * native addon. It sees every fork, exec and exit on the host however short-lived, which the /proc
 * poller cannot. It must run in the host's network, PID and user namespaces; kernels before 6.6
 * also want root (CAP_NET_ADMIN), later ones let any user listen (6.18 here does).
 */
import type { ProcNotice, ProcNoticeSource } from './types.js';
import type { KernelExec } from '../events.js';
import { addonQuietDriver, QuietExecs } from './quiet-execs.js';
import { type ExecReadContext, execFromRead, newExecReadContext } from './proc-exec-read.js';
import {
  type AddonLoad,
  type NativeHandle,
  type NativeProcEvent,
  type ProcConnectorAddon,
  PACKED_EVENT_WORDS,
  PackedWord,
  ProcEventWhat,
  loadNativeAddon,
} from '../platform/native-addon.js';

export interface ProcConnectorOptions {
  /** Also report fork/exit/uid of threads, not only of processes (default false). */
  threads?: boolean;
  /**
   * Batches queued for the JS thread before new ones are dropped and counted (default 256); past
   * them, 128 notices per batch wait in JS to be handed on.
   */
  queueSize?: number;
  /**
   * The netlink socket's receive buffer in KiB (default 8192): what the kernel holds while the
   * agent is not reading (a stalled or starved process). Past it the kernel drops notices and
   * says so (ENOBUFS), which is counted, and the recovery sweep re-reads /proc.
   */
  socketBufferKb?: number;
  /** Called once if the reader thread stops on an unexpected error; default: one line on stderr. */
  onError?: (message: string) => void;
  /** The addon to use (tests); by default loadNativeAddon(). */
  addon?: AddonLoad;
  /**
   * Have the addon's reader thread read /proc for each exec as its notice arrives, and hand the
   * process table the exec whole (proc-exec-read.ts), so the JS thread reads nothing for it
   * (default true).
   */
  readExecs?: boolean;
  /**
   * How long (µs) the addon may hold a batch for more notices before handing it over (default
   * 2000). A thousand execs a second are three thousand notices, each a wake-up of the JS thread
   * when handed on at once; held a millisecond, a short command's fork, exec and exit mostly come
   * as one batch. Its /proc files were read on arrival all the same (readExecs), so the hold costs
   * an event at most that much latency, and no detail. 2 ms rather than 1 (issue 16): half the
   * JS wake-ups under a storm, 5-12% less agent CPU per exec (0.927 median of 3 paired rounds, both
   * agents watching the same storms), the eBPF driver's gather_ms default too.
   */
  holdUs?: number;
  /**
   * How long (µs) a batch of quiet notices only may wait (native/exec_quiet.c): forks, exits, and
   * execs like ones the agent judged twice with nothing coming of them (execQuiet). A storm of one
   * command then wakes the JS thread some 50 times a second instead of 500, each wake-up ~30 µs
   * of CPU on a VM (issue 16). 0 or absent: off, every batch goes after holdUs. Needs readExecs.
   */
  quietUs?: number;
  /**
   * Whether the reads of execs (readExecs) take /proc/PID/loginuid (default true). Off, a fresh
   * process costs one /proc file fewer (an inode and a dentry, ~8 µs, issue 16) and its exec says
   * loginuid unset; for when nothing reads it (no rule names user.loginuid or user.loginname).
   * setReadLoginuid() changes it.
   */
  readLoginuid?: boolean;
  /**
   * Whether the reads of execs take /proc/PID/status (default true): the vpid and the capability
   * sets. Off, the effective ids come from a stat of /proc/PID (no file opened: ~25-40 µs of the
   * reader's time less per exec, issue 16), the exec's capabilities are unknown and its vpid is
   * its forked parent's namespace's; for when no rule reads them (rules-read.ts STATUS_FIELDS).
   * setReadStatus() changes it.
   */
  readStatus?: boolean;
}

/** A reason the connector cannot run here, phrased for the user; `code` for programs. */
export class ProcConnectorError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'ProcConnectorError';
  }
}

const FALLBACK = 'or run with --driver procfs (no privileges needed, but it misses processes that live less than its poll interval)';

/** Turn the addon's error into what to do about it. */
export function explainOpenError(e: unknown): ProcConnectorError {
  const err = e as Error & { code?: string };
  const code = err?.code ?? 'ERR_PROC_CONNECTOR';
  const detail = err?.message ?? String(e);
  switch (code) {
    case 'EPERM':
    case 'EACCES':
      return new ProcConnectorError(`the proc connector needs root (CAP_NET_ADMIN) on this kernel: run minewatch as root, ${FALLBACK} [${detail}]`, code);
    case 'EPROTONOSUPPORT':
    case 'EAFNOSUPPORT':
      return new ProcConnectorError(`this kernel has no process events connector (CONFIG_PROC_EVENTS): ${FALLBACK} [${detail}]`, code);
    case 'ERR_NOT_HOST_NETNS':
      return new ProcConnectorError(
        `the proc connector answers only in the host's network namespace, and minewatch is running in another one: ` +
          `run it on the host or in a container with the host's network (docker run --network host, Kubernetes hostNetwork: true), ${FALLBACK} [${detail}]`,
        code,
      );
    case 'ERR_NO_ACK':
      return new ProcConnectorError(
        `the kernel did not answer the proc connector: it answers only in the host's PID and user namespaces; ` +
          `run minewatch on the host or with hostPID (docker run --pid host), ${FALLBACK} [${detail}]`,
        code,
      );
    default:
      return new ProcConnectorError(`the proc connector cannot start: ${detail}; ${FALLBACK}`, code);
  }
}

/**
 * The kernel reports exit_code as the wait status. ProcNotice has no signal field, so a process
 * killed by a signal gets 128 + signal, the shell's `$?` convention.
 */
export function exitCodeFromStatus(status: number): number {
  const signal = status & 0x7f;
  return signal === 0 ? (status >> 8) & 0xff : 128 + signal;
}

/** One addon event as a ProcNotice, or undefined for kinds ProcNotice does not carry. */
export function toNotice(e: NativeProcEvent): ProcNotice | undefined {
  switch (e.kind) {
    case 'exec':
      return { kind: 'exec', pid: e.pid, tid: e.tid, ts: e.ts, reaped: false };
    case 'fork':
      return { kind: 'fork', pid: e.pid, tid: e.tid, ppid: e.ppid, ts: e.ts };
    case 'exit':
      return { kind: 'exit', pid: e.pid, tid: e.tid, exitCode: exitCodeFromStatus(e.status ?? 0), ts: e.ts };
    case 'uid':
      return { kind: 'uid', pid: e.pid, tid: e.tid, ruid: e.ruid, euid: e.euid, ts: e.ts };
    default:
      return undefined;
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The batch's words as 64-bit ones, where its buffer allows (an 8-byte aligned start): each
 * event's timestamp (words tsLow, tsHigh: one little-endian u64) is then one BigInt made, not
 * three (two words and the shift), for each of the ~3 notices of every exec.
 */
export function timestampsOf(w: Uint32Array): BigUint64Array | undefined {
  return LITTLE_ENDIAN && w.byteOffset % 8 === 0 && PackedWord.tsLow % 2 === 0 && PackedWord.tsHigh === PackedWord.tsLow + 1
    ? new BigUint64Array(w.buffer, w.byteOffset, w.length >> 1)
    : undefined;
}

/**
 * The notice of event `i` of a packed batch (NativeOpenOptions.packed), or undefined for kinds
 * ProcNotice does not carry: what toNotice() makes of the same event as an object. `ts64` is
 * timestampsOf(w), when it has one.
 */
export function packedNotice(w: Uint32Array, i: number, ts64?: BigUint64Array): ProcNotice | undefined {
  const o = i * PACKED_EVENT_WORDS;
  const what = w[o + PackedWord.what]!;
  if (what !== ProcEventWhat.exec && what !== ProcEventWhat.fork && what !== ProcEventWhat.exit && what !== ProcEventWhat.uid) return undefined;
  // pids are positive int32s; `| 0` reads the word back as one.
  const pid = w[o + PackedWord.pid]! | 0;
  const tid = w[o + PackedWord.tid]! | 0;
  const ts = ts64 !== undefined ? ts64[(o + PackedWord.tsLow) >> 1]! : (BigInt(w[o + PackedWord.tsHigh]!) << 32n) | BigInt(w[o + PackedWord.tsLow]!);
  switch (what) {
    case ProcEventWhat.exec:
      return { kind: 'exec', pid, tid, ts, reaped: (w[o + PackedWord.b]! & EXEC_REAPED) !== 0 };
    case ProcEventWhat.fork:
      return { kind: 'fork', pid, tid, ppid: w[o + PackedWord.ppid]! | 0, ts };
    case ProcEventWhat.exit:
      return { kind: 'exit', pid, tid, exitCode: exitCodeFromStatus(w[o + PackedWord.a]!), ts };
    default:
      return { kind: 'uid', pid, tid, ruid: w[o + PackedWord.a]!, euid: w[o + PackedWord.b]!, ts };
  }
}

/** Bit 30 of a packed exec's b word: reaped before it could be read (native/proc_connector.c MW_EXEC_REAPED). */
const EXEC_REAPED = 0x40000000;

/** Notices handed to the consumer in one event-loop turn (see ProcConnectorSource.onBatch). */
const NOTICES_PER_TURN = 256;
/**
 * Notices that may wait for the consumer, per batch the addon may queue: 32,768 (~5 MB) with the
 * default queue of 256; a small `queueSize` keeps the whole buffer small.
 */
const PENDING_PER_BATCH = 128;

/**
 * The signature the addon put in a packed exec's a and b words (native/exec_quiet.c) onto its exec:
 * 53 bits, bit 31 of b set when the addon found it quiet.
 */
export function signPackedExec(w: Uint32Array, i: number, exec: KernelExec): void {
  const o = i * PACKED_EVENT_WORDS;
  const hi = w[o + PackedWord.b]!;
  const sig = (hi & 0x1fffff) * 2 ** 32 + w[o + PackedWord.a]!;
  if (sig === 0) return;
  exec.sig = sig;
  if (hi >>> 31) exec.quiet = true;
}

export class ProcConnectorSource implements ProcNoticeSource {
  readonly name = 'proc-connector';
  private addon?: ProcConnectorAddon;
  private handle?: NativeHandle;
  private notify?: (n: ProcNotice) => void;
  /** Drops counted up to the last stop(), so `drops` still answers after it. */
  private dropsBefore = 0;
  /** Notices taken from the addon and not yet handed on, from `head`. */
  private pending: ProcNotice[] = [];
  private head = 0;
  private flushing?: NodeJS.Immediate;
  /** Notices dropped because `pending` was full. */
  private pendingDrops = 0;
  private readonly maxPending: number;
  /** Set when the reader thread stopped on an error. */
  error?: string;
  private execReads?: ExecReadContext;
  /** Execs the reader thread read whole (the table read nothing), and those it could not. */
  readonly execReadStats = { whole: 0, partial: 0 };
  /** Exec signatures nothing came of, passed on to the addon (native/exec_quiet.c). */
  readonly quiet = new QuietExecs();

  constructor(private readonly opts: ProcConnectorOptions = {}) {
    this.maxPending = Math.max(1, opts.queueSize ?? 256) * PENDING_PER_BATCH;
  }

  async start(notify: (n: ProcNotice) => void): Promise<void> {
    if (this.handle) throw new ProcConnectorError('the proc connector is already started', 'ERR_ALREADY_STARTED');
    const loaded = this.opts.addon ?? loadNativeAddon();
    if ('error' in loaded) {
      throw new ProcConnectorError(
        `the proc connector's native addon is not available (${loaded.error}): build it with \`npm rebuild minewatch\` ` +
          `(needs g++, make and python3), ${FALLBACK}`,
        'ERR_ADDON_MISSING',
      );
    }
    this.addon = loaded.addon;
    this.notify = notify;
    this.error = undefined;
    try {
      const readExecs = this.opts.readExecs ?? true;
      if (readExecs) this.execReads ??= newExecReadContext();
      if (this.execReads) {
        this.execReads.wantLoginuid = this.opts.readLoginuid ?? true;
        this.execReads.wantStatus = this.opts.readStatus ?? true;
      }
      this.handle = this.addon.open((events, error, reads, readAt) => this.onBatch(events, error, reads, readAt), {
        threads: this.opts.threads ?? false,
        queueSize: this.opts.queueSize,
        socketBufferKb: this.opts.socketBufferKb,
        packed: true,
        readExecs,
        holdUs: this.opts.holdUs ?? 2000,
        readLoginuid: this.opts.readLoginuid ?? true,
        readStatus: this.opts.readStatus ?? true,
        ...(this.opts.quietUs ? { quietUs: this.opts.quietUs } : {}),
      });
    } catch (e) {
      this.notify = undefined;
      throw explainOpenError(e);
    }
    this.quiet.attach(this.opts.quietUs && this.execReads ? addonQuietDriver(this.addon, this.handle) : undefined);
  }

  async stop(): Promise<void> {
    // Batches the addon queued before close() still arrive afterwards: notify is cleared first
    // so nobody hears from a stopped source.
    this.notify = undefined;
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    this.pending = [];
    this.head = 0;
    if (!this.handle || !this.addon) return;
    const s = this.addon.stats(this.handle);
    this.dropsBefore += s.drops + s.kernelDrops;
    this.addon.close(this.handle);
    this.handle = undefined;
    this.quiet.attach(undefined);
  }

  /** Whether the reads of execs take loginuid (ProcConnectorOptions.readLoginuid). */
  get readsLoginuid(): boolean {
    return this.execReads?.wantLoginuid ?? false;
  }

  /**
   * Take loginuid with the reads of execs from now on, or stop. Reads made before the change and
   * not yet handed over are left to the table's own read when it is turned on; the table's entries
   * made while it was off kept their forked parent's (ProcessTable.refreshLoginuids() reads them
   * again). False when it could not be changed (not started, no reads of execs, an addon without it).
   */
  setReadLoginuid(on: boolean): boolean {
    return this.switchReads('setReadLoginuid', 'wantLoginuid', on);
  }

  /** Whether the reads of execs take /proc/PID/status (ProcConnectorOptions.readStatus). */
  get readsStatus(): boolean {
    return this.execReads?.wantStatus ?? false;
  }

  /**
   * Take /proc/PID/status with the reads of execs from now on, or stop (as setReadLoginuid): the
   * table's entries made while it was off have no capabilities, and their vpid is a guess from the
   * parent (ProcessTable.refreshStatus() reads them again).
   */
  setReadStatus(on: boolean): boolean {
    return this.switchReads('setReadStatus', 'wantStatus', on);
  }

  /** One of the reads' switches, in the addon and in the decoder's context alike. */
  private switchReads(fn: 'setReadLoginuid' | 'setReadStatus', want: 'wantLoginuid' | 'wantStatus', on: boolean): boolean {
    if (!this.execReads || !this.handle || !this.addon?.[fn]) return false;
    this.addon[fn](this.handle, on ? 1 : 0);
    this.execReads[want] = on;
    return true;
  }

  get drops(): number {
    const known = this.dropsBefore + this.pendingDrops;
    if (!this.handle || !this.addon) return known;
    if (this.addon.drops) return known + this.addon.drops(this.handle);
    const s = this.addon.stats(this.handle);
    return known + s.drops + s.kernelDrops;
  }

  /**
   * The addon's batches are only queued here, and handed on once per event-loop turn
   * (setImmediate). The consumer reads /proc for a notice right away, so a burst handed on as it
   * comes would hold the loop while the addon's queue (a few hundred batches: one notice each when
   * the host is quiet) fills and drops. Queued here, the addon's queue is emptied every turn, and
   * the fork, exec and exit of a short command usually reach the consumer together: it then knows
   * the process is gone before it reads, and reads once, not for each notice.
   */
  private onBatch(events: NativeProcEvent[] | Uint32Array, error?: string, reads?: Buffer, readAt?: Uint32Array): void {
    if (this.notify) {
      const packed = events instanceof Uint32Array;
      const count = packed ? Math.floor(events.length / PACKED_EVENT_WORDS) : events.length;
      const ts64 = packed ? timestampsOf(events) : undefined;
      for (let i = 0; i < count; i++) {
        const n = packed ? packedNotice(events, i, ts64) : toNotice(events[i]!);
        if (!n) continue;
        const readLen = readAt !== undefined && 2 * i + 1 < readAt.length ? readAt[2 * i + 1]! : 0;
        if (reads && readLen > 0 && n.kind === 'exec' && this.execReads) {
          const from = readAt![2 * i]!;
          if (this.takeRead(n, reads, from, from + readLen, this.execReads) && packed) signPackedExec(events, i, n.exec!);
        }
        if (this.pending.length - this.head >= this.maxPending) {
          this.pendingDrops++;
          continue;
        }
        this.pending.push(n);
      }
      if (!this.flushing && this.pending.length > this.head) this.flushing = setImmediate(() => this.flush());
    }
    if (error) {
      this.error = error;
      (this.opts.onError ?? ((m: string) => process.stderr.write(`minewatch: ${m}\n`)))(error);
    }
  }

  /** The exec whole from the reader thread's read; left to the table's own read when the read is not whole. True: whole. */
  private takeRead(n: ProcNotice, reads: Buffer, from: number, to: number, ctx: ExecReadContext): boolean {
    let exec;
    try {
      exec = to <= reads.length ? execFromRead(n.pid, reads, ctx, from, to) : undefined;
    } catch {
      exec = undefined;
    }
    if (exec) {
      n.exec = exec;
      this.execReadStats.whole++;
      return true;
    }
    this.execReadStats.partial++;
    return false;
  }

  private flush(): void {
    this.flushing = undefined;
    const notify = this.notify;
    if (!notify) return;
    const end = Math.min(this.pending.length, this.head + NOTICES_PER_TURN);
    for (let i = this.head; i < end; i++) {
      try {
        notify(this.pending[i]!);
      } catch (err) {
        // A consumer's bug must surface as an ordinary uncaught exception, not be swallowed.
        process.nextTick(() => {
          throw err;
        });
      }
    }
    this.head = end;
    if (this.head === this.pending.length) {
      this.pending = [];
      this.head = 0;
    } else {
      if (this.head >= 4096) {
        this.pending = this.pending.slice(this.head);
        this.head = 0;
      }
      this.flushing = setImmediate(() => this.flush());
    }
  }
}
