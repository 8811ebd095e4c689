/**
 * The eBPF driver: one CO-RE object (native/ebpf/minewatch.bpf.c) on BTF-typed tracepoints, loaded
 * by libbpf through the minewatch_ebpf addon. It is the process table's notice source (exec, fork,
 * exit, uid: like the proc connector, but each exec carries the kernel's argv, so a process gone in
 * 100 µs still has its command line) and a source of syscall events in Falco's shape: chmod family,
 * open family (writes and creations), connect, the first KiB each TCP connection sends to another
 * host, DNS answers, ptrace, memfd_create, setuid/setresuid; and the RandomX detector's
 * `mw_fpu_rounding` events.
 *
 * Only tp_btf programs: no kprobes (absent on some kernels), no tracefs, no kernel headers. It needs
 * BTF (/sys/kernel/btf/vmlinux) and root (CAP_BPF + CAP_PERFMON); without either, start() rejects
 * with an EbpfError saying which and what to do, and the agent falls back to the proc connector.
 */
import type { ContainerInfo, Event, ProcessInfo, SyscallEvent } from '../../events.js';
import type { DnsCache } from '../../enrich/dns.js';
import { bootTimeNs, clockTicks } from '../../platform/procfs.js';
import { exitCodeFromStatus } from '../proc-connector.js';
import type { KernelExec, ProcNotice, ProcNoticeSource } from '../types.js';
import { type EbpfAddon, type EbpfAddonLoad, type EbpfHandle, type EbpfStats, loadEbpfAddon } from './addon.js';
import { type FpuRecord, RecordDecoder, type RecordSink, type SysRecord } from './decode.js';
import { DnsLearner } from '../../enrich/dns-learner.js';
import { ResolverSets } from '../../enrich/resolvers.js';
import { sysDescriptors, sysFlags, toSyscallEvent } from './syscalls.js';
import type { ReadFilter } from './read-filter.js';
import { FpuGate, type FpuFigures, fpuFigures, NUDGE, nudgeWorthy, RANDOMX_EVENT } from './randomx.js';
import { addonQuietDriver, QuietExecs } from '../quiet-execs.js';

export interface EbpfSourceOptions {
  /** The process table's entry for a pid (without reading /proc). */
  lookup: (pid: number) => ProcessInfo | undefined;
  containerOf: (pid: number) => ContainerInfo | undefined;
  /** A uid's name on the host, for processes the table could not read (user.name). */
  userName?: (uid: number) => string | undefined;
  /** Learns the addresses of each DNS answer a socket receives for a query it sent (dns-learner.ts). */
  dns?: DnsCache;
  /** The resolvers a namespace may learn from (default: ResolverSets: the host's resolv.conf in its namespace). */
  resolvers?: (netns: number) => ReadonlySet<string> | undefined;
  /** The RandomX detector: attach x86_fpu_regs_deactivated (default false). */
  fpu?: boolean;
  /** Sightings of a non-default rounding mode before a process's first mw_fpu_rounding event (default 2). */
  fpuMin?: number;
  /**
   * Opens for reading only: true reports every one, false none; 'auto' (the default) those the
   * loaded rules can match (`readFilter`, filtered in the kernel). Opens that may write or create
   * always come when a rule names the open family.
   */
  openRead?: boolean | 'auto';
  /** Under openRead 'auto': which read-only opens the rules can match (read-filter.ts); none when absent. */
  readFilter?: ReadFilter;
  /** Ring buffer bytes (a power of two; default 16 MiB). */
  ringBytes?: number;
  /** How long records gather after a wake-up, µs (default: the addon's, 2 ms). */
  gatherUs?: number;
  /** How long quiet records may wait, µs (addon.ts EbpfOpenOptions.quietUs); 0 or absent: none is quiet. */
  quietUs?: number;
  /** Whether the loaded rules can use an event type; unwanted optional syscalls stay in the kernel. */
  wanted?: (type: string) => boolean;
  /** Called once if the reader stops on an unexpected error; default: one line on stderr. */
  onError?: (message: string) => void;
  /** Tests: the addon to use, another BTF file, another "self". */
  addon?: EbpfAddonLoad;
  btfPath?: string;
  selfPid?: number;
}

/** A reason the driver cannot run here, phrased for the user; `code` for programs. */
export class EbpfError extends Error {
  /** `fix`: the one thing to do about it (a command, where there is one). */
  constructor(message: string, readonly code: string, readonly fix?: string) {
    super(message);
    this.name = 'EbpfError';
  }
}

const FALLBACK = 'or run with --driver proc (the proc connector: process events only)';

export function explainEbpfError(e: unknown): EbpfError {
  const err = e as Error & { code?: string };
  const code = err?.code ?? 'ERR_BPF';
  const detail = err?.message ?? String(e);
  switch (code) {
    case 'EPERM':
    case 'EACCES':
      return new EbpfError(`the eBPF driver needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN): run minewatch as root, ${FALLBACK} [${detail}]`, code,
        'run minewatch as root (sudo), or grant it CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE');
    case 'ERR_NO_BTF':
      return new EbpfError(`this kernel has no BTF, which the eBPF driver's CO-RE programs need (CONFIG_DEBUG_INFO_BTF=y): ${FALLBACK} [${detail}]`, code,
        'boot a kernel built with CONFIG_DEBUG_INFO_BTF=y, or point sources.ebpf.btf at a BTF file for this kernel');
    case 'ERR_BPF_LOAD':
      return new EbpfError(`the kernel refused minewatch's eBPF programs: ${FALLBACK}; please report this with your kernel version [${detail}]`, code,
        'none here: report it with `uname -r` and this message; meanwhile --driver proc');
    default:
      return new EbpfError(`the eBPF driver cannot start: ${detail}; ${FALLBACK}`, code);
  }
}

/** What /proc says about the executable file: not this exec's when /proc shows another file. */
const LATER_IMAGE_FACTS = ['exe_upper_layer', 'exe_from_memfd', 'exe_writable', 'exe_deleted', 'exe_sha256', 'exe_ino', 'exe_ino_ctime', 'exe_ino_mtime'] as const;

/**
 * An exec's kernel view laid over the event the process table built from /proc (see KernelExec).
 *
 * The kernel's record settles which image the event is about (issue 13: events that mix two
 * images): it is taken at the exec itself, comm, argv and path together, while /proc is read
 * later and may already show the next exec of the same pid. So the record's comm, argv and path
 * win; and when /proc's path is another file, what /proc said about that file (hash, inode, layer,
 * writability) belongs to the later image and is dropped.
 */
export function applyKernelExec(ev: SyscallEvent, k: NonNullable<ProcNotice['exec']>): SyscallEvent {
  // A copy: the table's object stays as /proc said, events keep what the kernel saw at the exec.
  const p: ProcessInfo = { ...ev.proc };
  if (k.argv.length > 0) {
    p.exe = k.argv[0];
    p.args = k.argv.slice(1);
  }
  if (k.comm) p.name = k.comm;
  else if (!p.name) p.name = k.comm;
  if (k.exepath && p.exepath !== k.exepath) {
    if (p.exepath) {
      for (const f of LATER_IMAGE_FACTS) delete p[f];
    }
    p.exepath = k.exepath;
  }
  if (p.uid === undefined) p.uid = k.uid;
  if (p.ppid === undefined) p.ppid = k.ppid;
  if (p.start_ts === undefined) p.start_ts = k.startTs;
  ev.proc = p;
  ev.type = k.type;
  return ev;
}

export class EbpfSource implements ProcNoticeSource {
  readonly name = 'ebpf';
  private addon?: EbpfAddon;
  private handle?: EbpfHandle;
  private notify?: (n: ProcNotice) => void;
  private emit?: (ev: Event) => void;
  private decoder?: RecordDecoder;
  private readonly fpuGate = new FpuGate();
  /** Matches DNS answers to the queries their sockets sent; undefined without a DnsCache. */
  readonly dnsLearner?: DnsLearner;
  /**
   * Each recent exec as the kernel saw it, by pid: the process as syscall events name it until the
   * table has read it from /proc (or for good, when it was gone before that).
   */
  private readonly execs = new Map<number, ProcessInfo>();
  private dropsBefore = 0;
  private lastStats: EbpfStats | undefined;
  /** Records by kind since start (tests, the benchmark). */
  readonly counts = { exec: 0, fork: 0, exit: 0, sys: 0, fpu: 0, dns: 0, nudges: 0 };
  /** Exec signatures nothing came of, passed on to the kernel (minewatch.h, struct mw_reader). */
  readonly quiet = new QuietExecs();
  error?: string;

  constructor(private readonly opts: EbpfSourceOptions) {
    if (opts.dns) {
      const sets = opts.resolvers ? undefined : new ResolverSets();
      this.dnsLearner = new DnsLearner({ dns: opts.dns, resolvers: opts.resolvers ?? ((netns) => sets!.forNetns(netns)) });
    }
  }

  /** Where syscall and detector events go (the agent's queue); set before start(). */
  onEvents(emit: (ev: Event) => void): void {
    this.emit = emit;
  }

  async start(notify: (n: ProcNotice) => void): Promise<void> {
    if (this.handle) throw new EbpfError('the eBPF driver is already started', 'ERR_ALREADY_STARTED');
    const loaded = this.opts.addon ?? loadEbpfAddon();
    if ('error' in loaded) throw new EbpfError(`${loaded.error}; ${FALLBACK}`, loaded.code, loaded.fix);
    const btime = bootTimeNs();
    if (btime === undefined) throw new EbpfError(`cannot read the boot time from /proc/stat; ${FALLBACK}`, 'ERR_NO_PROC');
    this.decoder = new RecordDecoder({ offset: 0n, btimeNs: btime, clkTck: clockTicks() }, { lean: true });
    this.addon = loaded.addon;
    this.notify = notify;
    try {
      this.handle = this.addon.open(loaded.objectPath, {
        selfTgid: this.opts.selfPid ?? process.pid,
        fpu: this.opts.fpu ?? false,
        openRead: this.opts.openRead === true,
        fpuMin: this.opts.fpuMin ?? 2,
        sysFlags: sysFlags(this.opts.wanted),
        sysDesc: sysDescriptors(),
        ...(this.opts.ringBytes ? { ringBytes: this.opts.ringBytes } : {}),
        ...(this.opts.gatherUs !== undefined ? { gatherUs: this.opts.gatherUs } : {}),
        ...(this.opts.quietUs ? { quietUs: this.opts.quietUs } : {}),
        ...(this.opts.btfPath ? { btfPath: this.opts.btfPath } : {}),
      }, (batch, offset, error, length) => this.onBatch(batch, offset, error, length));
    } catch (e) {
      this.notify = undefined;
      throw explainEbpfError(e);
    }
    this.setReadFilter(this.opts.readFilter);
    this.quiet.attach(this.opts.quietUs ? addonQuietDriver(this.addon, this.handle) : undefined);
  }

  /**
   * The rules changed: which opens for reading only to report (under openRead 'auto'; true and
   * false stay as configured).
   */
  setReadFilter(filter: ReadFilter | undefined): void {
    if (!this.handle || !this.addon?.setReadPolicy) return;
    const mode = this.opts.openRead ?? 'auto';
    if (mode === true) return this.addon.setReadPolicy(this.handle, 1, [], []);
    if (mode === false || !filter || filter.mode === 'none') return this.addon.setReadPolicy(this.handle, 0, [], []);
    if (filter.mode === 'all') return this.addon.setReadPolicy(this.handle, 1, [], []);
    this.addon.setReadPolicy(this.handle, 2, filter.prefixes, filter.comms);
  }

  /**
   * The rules changed: report from now on what `wanted` says they can use (and what the agent
   * itself always needs).
   */
  setWanted(wanted: (type: string) => boolean): void {
    if (this.handle && this.addon) this.addon.setSysFlags(this.handle, sysFlags(wanted));
  }

  /**
   * A rule matched a process's mw_fpu_rounding event (pid and start time as the event's proc has
   * them): its further events come only as its count doubles.
   */
  fpuJudged(pid: number, start: bigint | undefined): void {
    if (start !== undefined) this.fpuGate.judged(pid, start);
  }

  /** on, off, or missing (this kernel has no x86_fpu_regs_deactivated tracepoint). */
  get fpuStatus(): EbpfStats['fpu'] {
    return this.stats()?.fpu ?? 'off';
  }

  stats(): EbpfStats | undefined {
    if (this.handle && this.addon) this.lastStats = this.addon.stats(this.handle);
    return this.lastStats;
  }

  async stop(): Promise<void> {
    this.notify = undefined;
    this.emit = undefined;
    if (!this.handle || !this.addon) return;
    const s = this.stats();
    if (s) this.dropsBefore += s.drops + s.queueDrops;
    this.addon.close(this.handle);
    this.handle = undefined;
    this.quiet.attach(undefined);
  }

  get drops(): number {
    if (!this.handle || !this.addon) return this.dropsBefore;
    const s = this.addon.stats(this.handle);
    return this.dropsBefore + s.drops + s.queueDrops;
  }

  /**
   * `batch` is the addon's own memory, overwritten by its next batch: the decoder copies what it
   * keeps (decode.ts), and nothing here keeps the Buffer or a view of it past this call.
   */
  private onBatch(batch: Buffer, offset: bigint | undefined, error?: string, length?: number): void {
    const d = this.decoder;
    if (d && this.notify) {
      if (offset !== undefined) d.setOffset(offset);
      // An addon built before the length gives none: the whole Buffer (forEachTo's default).
      d.forEachTo(batch, this.sink, length);
    }
    if (error) {
      this.error = error;
      (this.opts.onError ?? ((m: string) => process.stderr.write(`minewatch: ${m}\n`)))(error);
    }
  }

  /**
   * The decoder's receiver (forEachTo): one object for every batch, no closure per batch. A
   * consumer's bug surfaces as an ordinary uncaught exception (see proc-connector.ts).
   */
  private readonly sink: RecordSink = {
    exec: (pid, ts, k) => {
      try {
        this.onExec(pid, ts, k);
      } catch (err) {
        throwLater(err);
      }
    },
    fork: (pid, tid, ppid, ts, start, vpid) => {
      try {
        this.onFork(pid, tid, ppid, ts, start, vpid);
      } catch (err) {
        throwLater(err);
      }
    },
    exit: (pid, tid, ts, start, status) => {
      try {
        this.onExit(pid, tid, ts, start, status);
      } catch (err) {
        throwLater(err);
      }
    },
    other: (r) => {
      try {
        this.onRecord(r);
      } catch (err) {
        throwLater(err);
      }
    },
  };

  private onExec(pid: number, ts: bigint, k: KernelExec): void {
    const notify = this.notify;
    if (!notify) return;
    this.counts.exec++;
    // The parent as the table has it before this exec's notice (a notice may change the table).
    const parent = this.opts.lookup(k.ppid);
    // The decoder's KernelExec is the notice's own: nothing else holds it.
    notify({ kind: 'exec', pid, tid: pid, ts, exec: k });
    this.rememberExec(pid, k, parent);
  }

  private onFork(pid: number, tid: number, ppid: number, ts: bigint, startTs: bigint, vpid: number): void {
    const notify = this.notify;
    if (!notify) return;
    this.counts.fork++;
    // Two literals, not a spread of an optional vpid: no object besides the notice.
    notify(vpid > 0 ? { kind: 'fork', pid, tid, ppid, ts, startTs, vpid } : { kind: 'fork', pid, tid, ppid, ts, startTs });
  }

  private onExit(pid: number, tid: number, ts: bigint, start: bigint, status: number): void {
    const notify = this.notify;
    if (!notify) return;
    this.counts.exit++;
    if (pid === tid) {
      this.fpuGate.forget(pid, start);
      // Its last record: what the kernel said of its exec is needed no longer (the table keeps
      // the process through its exit grace), and kept it would outlive young-generation GCs.
      if (this.execs.get(pid)?.start_ts === start) this.execs.delete(pid);
    }
    notify({ kind: 'exit', pid, tid, exitCode: exitCodeFromStatus(status), ts });
  }

  private onRecord(r: SysRecord | FpuRecord): void {
    const notify = this.notify;
    if (!notify) return;
    switch (r.kind) {
      case 'sys':
        this.counts.sys++;
        return this.onSyscall(r, notify);
      case 'fpu': {
        this.counts.fpu++;
        if (!this.fpuGate.pass(r)) return;
        const fig = fpuFigures(r);
        if (this.fpuGate.unjudged(r) && nudgeWorthy(fig) && this.addon?.nudge?.(r.cpu, NUDGE.times, NUDGE.intervalMs)) this.counts.nudges++;
        this.emitFor(r, (proc) => fpuEvent(r, fig, proc));
        return;
      }
    }
  }

  private onSyscall(r: SysRecord, notify: (n: ProcNotice) => void): void {
    if ((r.nr === 105 || r.nr === 117) && r.ret === 0) {
      notify({ kind: 'uid', pid: r.pid, tid: r.tid, ruid: r.ruid, euid: r.euid, ts: r.ts });
    }
    const learner = this.dnsLearner;
    // The driver captures a UDP payload to or from port 53 only for DNS queries (the sends) and
    // answers (recvfrom, recvmsg).
    if (learner && r.buf && r.proto === 17 && r.dport === 53) {
      const packet = { pid: r.pid, ts: r.ts, netns: r.netns, sock: r.ino, lport: r.sport, peer: r.daddr, peerPort: r.dport, payload: r.buf };
      if (r.nr === 45 || r.nr === 47) {
        const seen = learner.onAnswer(packet);
        if (seen?.verdict === 'learned') this.counts.dns++;
        // An answer to no query of this socket's is no lookup the process made: its payload does
        // not reach the rules (mw.dns.query), whoever forged it.
        else if (seen?.verdict === 'unsolicited') r.buf = undefined;
      } else {
        learner.onQuery(packet);
      }
    }
    this.emitFor(r, (proc) => toSyscallEvent(r, proc));
  }

  private rememberExec(pid: number, k: KernelExec, parent: ProcessInfo | undefined): void {
    // The table took the exec in at once (the usual case under the eBPF driver): procOf() finds
    // it there, and this process's kernel view would never be read.
    const known = this.opts.lookup(pid);
    if (known && known.start_ts === k.startTs && known.name === k.comm) {
      this.execs.delete(pid);
      return;
    }
    const info: ProcessInfo = { pid, tid: pid, ppid: k.ppid, name: k.comm, uid: k.uid, start_ts: k.startTs };
    const user = this.opts.userName?.(k.uid);
    if (user !== undefined) info.user = user;
    if (k.argv.length > 0) {
      info.exe = k.argv[0];
      info.args = k.argv.slice(1);
    }
    if (k.exepath) info.exepath = k.exepath;
    if (parent) info.parent = parent;
    this.execs.delete(pid);
    this.execs.set(pid, info);
    if (this.execs.size > 8192) this.execs.delete(this.execs.keys().next().value!);
  }

  /**
   * The process a record belongs to: the table's entry once it has taken in this process's exec
   * (same start time and name), else the kernel's view of the exec, else what the record says.
   * A pid known under another start time is another process: never the old one's identity.
   */
  private procOf(r: SysRecord | FpuRecord): ProcessInfo {
    const known = this.opts.lookup(r.pid);
    if (known && known.start_ts === r.start && known.name === r.comm) return known;
    const exec = this.execs.get(r.pid);
    if (exec && exec.start_ts === r.start) return exec;
    if (known && (known.start_ts === undefined || known.start_ts === r.start)) return known;
    return { pid: r.pid, tid: r.tid, name: r.comm, uid: r.uid, start_ts: r.start };
  }

  /** Build the event for the record's process and send it on (the agent brings proc up to date). */
  private emitFor(r: SysRecord | FpuRecord, build: (proc: ProcessInfo) => SyscallEvent | undefined): void {
    const emit = this.emit;
    if (!emit) return;
    const proc = this.procOf(r);
    const ev = build(proc);
    if (!ev) return;
    const c = this.opts.containerOf(r.pid);
    if (c) ev.container = c;
    emit(ev);
  }
}

/** Rethrown outside the decoder's loop, so one consumer's bug does not stop the batch. */
function throwLater(err: unknown): void {
  process.nextTick(() => {
    throw err;
  });
}

function fpuEvent(r: FpuRecord, fpu: FpuFigures, proc: ProcessInfo): SyscallEvent {
  // The kernel's start time names the process for an identity-checked kill, even where the table has none.
  const p = proc.start_ts === undefined ? { ...proc, start_ts: r.start } : proc;
  return { source: 'syscall', type: RANDOMX_EVENT, ts: r.ts, res: 0, proc: p, fpu };
}
