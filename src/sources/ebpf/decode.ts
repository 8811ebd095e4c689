/**
 * Decodes the ring buffer records of native/ebpf/minewatch.bpf.c (layouts in native/ebpf/minewatch.h:
 * change both together). The addon hands over a Buffer of whole records, each 8-byte aligned and
 * starting with its header; a record shorter than its layout says is skipped, never over-read.
 */
import { formatIpv6 } from '../../platform/ip.js';
import { BytesCache } from '../../platform/bytes-cache.js';

import type { KernelExec, KernelExecFacts } from '../types.js';

export const EV_EXEC = 1;
export const EV_FORK = 2;
export const EV_EXIT = 3;
export const EV_SYSCALL = 4;
export const EV_FPU = 5;

const HDR = 48;
const EXEC_HEAD = 208;
/** hdr.kind's own bits, and the bit the kernel sets on a quiet record (minewatch.h MW_KIND_QUIET). */
const KIND_MASK = 0xff;
export const KIND_QUIET = 0x100;
const TASK_SIZE = 56;
const SYS_HEAD = 176;
const FPU_SIZE = 128;

/** Converts the kernel's CLOCK_BOOTTIME stamps to what the rest of minewatch uses. */
export interface Clock {
  /** REALTIME - BOOTTIME, ns (from the addon, measured with each batch, sent when it moved). */
  offset: bigint;
  /** Boot time as /proc/stat's btime gives it (whole seconds), ns since the epoch. */
  btimeNs: bigint;
  /** USER_HZ: /proc/PID/stat counts start times in these ticks. */
  clkTck: number;
}

interface Head {
  pid: number;
  tid: number;
  uid: number;
  /** ns since the epoch. */
  ts: bigint;
  /**
   * The process start time exactly as the process table computes it from /proc/PID/stat (btime +
   * whole clock ticks), so that pid + start_ts names the same process whichever source saw it.
   */
  start: bigint;
  comm: string;
}

export interface ExecRecord extends Head {
  kind: 'exec';
  ppid: number;
  /** 59 execve, 322 execveat. */
  nr: number;
  argv: string[];
  argvTruncated: boolean;
  /** Bytes of the environment the kernel copied in. */
  envSize: number;
  /** The path the caller gave execve. */
  filename: string;
  /** The executable's full path (in the process's mount namespace), '' when unknown. */
  exepath: string;
  /** What /proc would say about the process and its executable, read by the kernel at the exec. */
  facts: ExecFacts;
}

/** The exec record's description of the process (minewatch.h, struct mw_exec). */
export type ExecFacts = KernelExecFacts;

/** The kernel's dev_t (major << 20 | minor) as stat()'s st_dev (glibc's makedev). */
export function userDev(kdev: number): bigint {
  const major = BigInt(kdev >>> 20);
  const minor = BigInt(kdev & 0xfffff);
  return (minor & 0xffn) | ((major & 0xfffn) << 8n) | ((minor & ~0xffn) << 12n) | ((major & ~0xfffn) << 32n);
}

export interface TaskRecord extends Head {
  kind: 'fork' | 'exit';
  ppid: number;
  exitCode: number;
  /** fork: the child's pid in its own pid namespace (0 when the kernel could not tell). */
  vpid: number;
}

export interface SysRecord extends Head {
  kind: 'sys';
  nr: number;
  ret: number;
  args: bigint[];
  /** The path or name argument (user memory), '' when none. */
  str: string;
  /** Every string argument the driver copied, in argument order (the generic path copies several). */
  strs: string[];
  /** The file the call acted on, resolved by the kernel. */
  path: string;
  /** Payload (first bytes sent, or a DNS answer). */
  buf: Buffer | undefined;
  family: number;
  proto: number;
  sport: number;
  dport: number;
  saddr: string;
  daddr: string;
  dev: number;
  /** Files: the inode; sockets: the socket's inode (socket:[ino]). */
  ino: number;
  /** Sockets: the inode number of the network namespace the socket lives in (0: not a socket). */
  netns: number;
  ruid: number;
  euid: number;
}

export interface FpuRecord extends Head {
  kind: 'fpu';
  count: number;
  changes: number;
  /** ns since the epoch of the first sighting. */
  first: bigint;
  /** Sightings since the first, any rounding mode. */
  seen: number;
  /** Sightings per rounding mode: [nearest, down, up, toward zero]. */
  modes: [number, number, number, number];
  /** CPU time of the thread that was switched out, ns. */
  runtime: number;
  /** Time that thread spent runnable, waiting for a CPU, ns (0 on kernels without CONFIG_SCHED_INFO). */
  runDelay: number;
  /** That thread's start, ns since the epoch. */
  tstart: bigint;
  /** The CPU it left. */
  cpu: number;
}

export type EbpfRecord = ExecRecord | TaskRecord | SysRecord | FpuRecord;

/**
 * The driver source's receiver of a batch (RecordDecoder.forEachTo): an exec as the KernelExec the
 * process table takes, a fork or an exit as plain numbers, no record object for any of them: an
 * exec storm brings three such records per command, and each record object, read once and
 * dropped, was a good part of the agent's garbage per exec (issue 16). Other records come whole.
 */
export interface RecordSink {
  exec(pid: number, ts: bigint, k: KernelExec): void;
  /** `vpid`: the child's pid in its own namespace (0 when the kernel could not tell). */
  fork(pid: number, tid: number, ppid: number, ts: bigint, start: bigint, vpid: number): void;
  /** `status`: the wait status. */
  exit(pid: number, tid: number, ts: bigint, start: bigint, status: number): void;
  other(r: SysRecord | FpuRecord): void;
}

/** Text up to the first NUL (latin1: bytes stay bytes, as Falco shows them). */
function cstr(b: Buffer, from: number, to: number): string {
  const end = b.indexOf(0, from);
  return b.toString('latin1', from, end < 0 || end > to ? to : end);
}

/** NUL-separated strings; a trailing NUL does not make an empty last one. */
function splitNul(b: Buffer, from: number, to: number): string[] {
  if (to <= from) return [];
  const parts = b.toString('latin1', from, to).split('\0');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Path components arrive leaf first: "/" + the reverse. */
function joinPath(b: Buffer, from: number, to: number): string {
  const comps = splitNul(b, from, to).filter((c) => c !== '' && c !== '/');
  return comps.length === 0 ? (to > from ? '/' : '') : '/' + comps.reverse().join('/');
}

function ip(b: Buffer, at: number, family: number): string {
  if (family === 2) return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
  if (family !== 10) return '';
  // IPv4-mapped: shown as the IPv4 address, as Falco does.
  if (b.readBigUInt64BE(at) === 0n && b.readUInt32BE(at + 8) === 0xffff) return ip(b, at + 12, 2);
  return formatIpv6(b.subarray(at, at + 16));
}

/**
 * A 64-bit field read as a bigint, the last value kept: the same process's records, and a storm's
 * commands, repeat most of them (caps, cgroup ids, the exe's identity), and an unchanged one costs
 * two 32-bit reads instead of a new bigint.
 */
class Big64 {
  private lo = -1;
  private hi = -1;
  private v = 0n;

  read(b: Buffer, at: number): bigint {
    const lo = b.readUInt32LE(at);
    const hi = b.readUInt32LE(at + 4);
    if (lo !== this.lo || hi !== this.hi) {
      this.lo = lo;
      this.hi = hi;
      this.v = b.readBigUInt64LE(at);
    }
    return this.v;
  }
}

/** Names kept by CommCache: a storm's records repeat a handful of names (the shell, the command). */
const COMMS = 4;

/**
 * A record's comm (16 bytes, NUL padded) as text, the last few kept by their bytes: four 32-bit
 * compares instead of a search for the NUL and a new string per record, and equal names share one
 * string.
 */
class CommCache {
  private readonly words = new Int32Array(COMMS * 4);
  private readonly texts: string[] = [];
  private next = 0;

  get(b: Buffer, at: number): string {
    const w0 = b.readInt32LE(at);
    const w1 = b.readInt32LE(at + 4);
    const w2 = b.readInt32LE(at + 8);
    const w3 = b.readInt32LE(at + 12);
    const words = this.words;
    for (let i = 0; i < this.texts.length; i++) {
      const k = i * 4;
      if (words[k] === w0 && words[k + 1] === w1 && words[k + 2] === w2 && words[k + 3] === w3) return this.texts[i]!;
    }
    const i = this.next;
    this.next = (i + 1) % COMMS;
    const k = i * 4;
    words[k] = w0;
    words[k + 1] = w1;
    words[k + 2] = w2;
    words[k + 3] = w3;
    return (this.texts[i] = cstr(b, at, at + 16));
  }
}

export interface DecoderOptions {
  /**
   * Leave out what the driver's source never reads (default false): a fork's or exit's comm
   * (''), an exec's filename (''). Tests and tools that show records keep them.
   */
  lean?: boolean;
}

export class RecordDecoder {
  private readonly comms = new CommCache();
  private readonly envs = new BytesCache(splitNul);
  private readonly argvs = new BytesCache(splitNul);
  private readonly lean: boolean;
  private readonly exeIno = new Big64();
  private readonly exeMtime = new Big64();
  private readonly exeCtime = new Big64();
  private readonly exeSize = new Big64();
  private readonly cgroupId = new Big64();
  private readonly cgroup1Id = new Big64();
  private readonly capEff = new Big64();
  private readonly capPrm = new Big64();
  private readonly capInh = new Big64();
  private readonly exePaths = new BytesCache(joinPath);
  private readonly cgroupPaths = new BytesCache(joinPath);
  private readonly cgroup1Paths = new BytesCache(joinPath);
  /** ns per USER_HZ tick. */
  private readonly tick: bigint;
  /** ns per tick as a number, and the boot time in ticks (-1: not a whole number of ticks). */
  private readonly tickNs: number;
  private readonly btimeTicks: number;
  /** The last start time converted (start()), by its halves. */
  private startLo = -1;
  private startHi = -1;
  private lastStart = 0n;
  /** ts(): the high half and offset last seen, and their sum. */
  private tsHi = -1;
  private tsOffset = -1n;
  private tsBase = 0n;
  private lastKdev = -1;
  private lastDev = 0n;

  constructor(private readonly clock: Clock, opts: DecoderOptions = {}) {
    this.tick = 1_000_000_000n / BigInt(clock.clkTck);
    this.tickNs = Number(this.tick);
    const btimeTicks = clock.btimeNs / this.tick;
    this.btimeTicks = btimeTicks * this.tick === clock.btimeNs && btimeTicks <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(btimeTicks) : -1;
    this.lean = opts.lean ?? false;
  }

  setOffset(offset: bigint): void {
    this.clock.offset = offset;
  }

  /**
   * The kernel's CLOCK_BOOTTIME stamp of the record at `o` on the epoch clock. The high half and
   * the batch's offset change seldom (every 4.3 s, every batch): their sum is kept, and a stamp
   * costs one bigint of its low half and one sum, not readBigUInt64LE's four bigints and a sum.
   */
  private ts(b: Buffer, o: number): bigint {
    const hi = b.readUInt32LE(o + 20);
    const offset = this.clock.offset;
    if (hi !== this.tsHi || offset !== this.tsOffset) {
      this.tsHi = hi;
      this.tsOffset = offset;
      this.tsBase = (BigInt(hi) << 32n) + offset;
    }
    return this.tsBase + BigInt(b.readUInt32LE(o + 16));
  }

  /**
   * The start time of the record at `o`, as the process table computes it (see Head.start): boot
   * time plus whole clock ticks. A process's fork, exec and exit records carry the same one: the
   * last is kept by its two halves. A new one is counted in ticks as a plain number (exact below
   * 2^53 ns, 104 days of uptime; the bigint way past that) and made a bigint once.
   */
  private start(b: Buffer, o: number): bigint {
    const lo = b.readUInt32LE(o + 24);
    const hi = b.readUInt32LE(o + 28);
    if (lo === this.startLo && hi === this.startHi) return this.lastStart;
    this.startLo = lo;
    this.startHi = hi;
    const raw = hi * 4294967296 + lo;
    const t = this.tickNs;
    this.lastStart = this.btimeTicks >= 0 && raw <= Number.MAX_SAFE_INTEGER
      ? BigInt(this.btimeTicks + (raw - (raw % t)) / t) * this.tick
      : this.clock.btimeNs + (b.readBigUInt64LE(o + 24) / this.tick) * this.tick;
    return this.lastStart;
  }

  private dev(kdev: number): bigint {
    if (kdev !== this.lastKdev) {
      this.lastKdev = kdev;
      this.lastDev = userDev(kdev);
    }
    return this.lastDev;
  }

  /** Every record of a batch, in order. */
  *records(b: Buffer): Generator<EbpfRecord> {
    let o = 0;
    while (o + HDR <= b.length) {
      const kind = b.readUInt16LE(o) & KIND_MASK;
      const size = b.readUInt16LE(o + 2);
      if (size < HDR || o + size > b.length) return;
      const r = this.one(b, o, kind, size);
      if (r) yield r;
      o += (size + 7) & ~7;
    }
  }

  /** records() without a generator: `fn` gets each record of a batch, in order. */
  forEach(b: Buffer, fn: (r: EbpfRecord) => void): void {
    let o = 0;
    while (o + HDR <= b.length) {
      const kind = b.readUInt16LE(o) & KIND_MASK;
      const size = b.readUInt16LE(o + 2);
      if (size < HDR || o + size > b.length) return;
      const r = this.one(b, o, kind, size);
      if (r) fn(r);
      o += (size + 7) & ~7;
    }
  }

  /** An exec record's KernelExec (the notice's `exec`), facts and all; undefined when too short. */
  private kernelExec(b: Buffer, o: number, size: number): KernelExec | undefined {
    if (size < EXEC_HEAD) return undefined;
    const end = o + size;
    const argvLen = b.readUInt16LE(o + 60);
    const fnameLen = b.readUInt16LE(o + 62);
    const pathLen = b.readUInt16LE(o + 64);
    const cwdLen = b.readUInt16LE(o + 68);
    const cgroupLen = b.readUInt16LE(o + 70);
    const envLen = b.readUInt16LE(o + 72);
    const cgroup1Len = b.readUInt16LE(o + 108);
    const a = o + EXEC_HEAD;
    const f = Math.min(a + argvLen, end);
    const p = Math.min(f + fnameLen, end);
    const c = Math.min(p + pathLen, end);
    const g = Math.min(c + cwdLen, end);
    const g1 = Math.min(g + cgroupLen, end);
    const v = Math.min(g1 + cgroup1Len, end);
    const loginuid = b.readUInt32LE(o + 92);
    const kn = cgroupLen > 0 ? this.cgroupPaths.get(b, g, g1) : '';
    const cgroupId = this.cgroupId.read(b, o + 160);
    const cgroup1Id = this.cgroup1Id.read(b, o + 192);
    const facts: ExecFacts = {
      ruid: b.readUInt32LE(o + 76),
      euid: b.readUInt32LE(o + 80),
      rgid: b.readUInt32LE(o + 84),
      egid: b.readUInt32LE(o + 88),
      loginuid: loginuid === 0xffffffff ? undefined : loginuid,
      vpid: b.readUInt32LE(o + 96),
      tty: b.readUInt32LE(o + 100),
      exeFlags: b.readUInt16LE(o + 74),
      exeDev: this.dev(b.readUInt32LE(o + 104)),
      exeIno: this.exeIno.read(b, o + 112),
      exeMtimeNs: this.exeMtime.read(b, o + 120),
      exeCtimeNs: this.exeCtime.read(b, o + 128),
      exeSize: this.exeSize.read(b, o + 136),
      exeMode: b.readUInt32LE(o + 144),
      exeUid: b.readUInt32LE(o + 148),
      exeGid: b.readUInt32LE(o + 152),
      cgroupId,
      // The walk stops below the root, whose name is empty: a process in the root cgroup has none.
      cgroupPath: kn === '' && cgroupId !== 0n ? '/' : kn,
      capEff: this.capEff.read(b, o + 168),
      capPrm: this.capPrm.read(b, o + 176),
      capInh: this.capInh.read(b, o + 184),
      cgroup1Id,
      cgroup1Path: cgroup1Id === 0n ? '' : this.cgroup1Paths.get(b, g1, v) || '/',
      env: envLen > 0 ? this.envs.get(b, v, Math.min(v + envLen, end)) : undefined,
    };
    return {
      type: b.readUInt32LE(o + 52) === 322 ? 'execveat' : 'execve',
      // MW_SIG_BITS (53) bits: a number, exact.
      sig: b.readUInt32LE(o + 200) + (b.readUInt32LE(o + 204) & 0x1fffff) * 0x100000000,
      quiet: (b.readUInt16LE(o) & KIND_QUIET) !== 0,
      comm: this.comms.get(b, o + 32),
      argv: this.argvs.get(b, a, f),
      exepath: this.exePaths.get(b, p, c),
      uid: b.readUInt32LE(o + 12),
      ppid: b.readUInt32LE(o + 48),
      startTs: this.start(b, o),
      facts,
    };
  }

  /**
   * forEach() for the driver's source: each record of b[0, length), in order, to `sink`, forks,
   * exits and execs without a record object (see RecordSink). `b` may be the addon's own memory,
   * reused for its next batch (addon.ts open): nothing decoded keeps a view of it (strings are
   * copies, BytesCache and a syscall's payload copy their bytes).
   */
  forEachTo(b: Buffer, sink: RecordSink, length = b.length): void {
    const end = Math.min(length, b.length);
    let o = 0;
    while (o + HDR <= end) {
      const kind = b.readUInt16LE(o) & KIND_MASK;
      const size = b.readUInt16LE(o + 2);
      if (size < HDR || o + size > end) return;
      if (kind === EV_EXEC) {
        const k = this.kernelExec(b, o, size);
        if (k) sink.exec(b.readUInt32LE(o + 4), this.ts(b, o), k);
      } else if (kind === EV_FORK || kind === EV_EXIT) {
        if (size >= TASK_SIZE) {
          const pid = b.readUInt32LE(o + 4);
          const tid = b.readUInt32LE(o + 8);
          // One slot, two meanings: an exit's wait status, a fork child's pid in its own namespace.
          if (kind === EV_FORK) sink.fork(pid, tid, b.readUInt32LE(o + 48), this.ts(b, o), this.start(b, o), b.readInt32LE(o + 52));
          else sink.exit(pid, tid, this.ts(b, o), this.start(b, o), b.readInt32LE(o + 52));
        }
      } else {
        const r = this.one(b, o, kind, size);
        if (r) sink.other(r as SysRecord | FpuRecord);
      }
      o += (size + 7) & ~7;
    }
  }

  // Each record is one object literal with the header's fields written out (no spread of a header
  // object: that is an extra object per record and V8's slow clone path).
  private one(b: Buffer, o: number, kind: number, size: number): EbpfRecord | undefined {
    const end = o + size;
    switch (kind) {
      case EV_EXEC: {
        const k = this.kernelExec(b, o, size);
        if (k === undefined) return undefined;
        const f = Math.min(o + EXEC_HEAD + b.readUInt16LE(o + 60), end);
        return {
          kind: 'exec',
          pid: b.readUInt32LE(o + 4), tid: b.readUInt32LE(o + 8), uid: k.uid, ts: this.ts(b, o), start: k.startTs, comm: k.comm,
          ppid: k.ppid,
          nr: b.readUInt32LE(o + 52),
          envSize: b.readUInt32LE(o + 56),
          argvTruncated: b.readUInt16LE(o + 66) !== 0,
          argv: k.argv,
          filename: this.lean ? '' : cstr(b, f, Math.min(f + b.readUInt16LE(o + 62), end)),
          exepath: k.exepath,
          facts: k.facts!,
        };
      }
      case EV_FORK:
      case EV_EXIT:
        if (size < TASK_SIZE) return undefined;
        // One slot, two meanings: an exit's wait status, a fork child's pid in its own namespace.
        if (kind === EV_FORK) return { kind: 'fork', pid: b.readUInt32LE(o + 4), tid: b.readUInt32LE(o + 8), uid: b.readUInt32LE(o + 12), ts: this.ts(b, o), start: this.start(b, o), comm: this.lean ? '' : this.comms.get(b, o + 32), ppid: b.readUInt32LE(o + 48), exitCode: 0, vpid: b.readInt32LE(o + 52) };
        return { kind: 'exit', pid: b.readUInt32LE(o + 4), tid: b.readUInt32LE(o + 8), uid: b.readUInt32LE(o + 12), ts: this.ts(b, o), start: this.start(b, o), comm: this.lean ? '' : this.comms.get(b, o + 32), ppid: b.readUInt32LE(o + 48), exitCode: b.readInt32LE(o + 52), vpid: 0 };
      case EV_SYSCALL: {
        if (size < SYS_HEAD) return undefined;
        const strLen = b.readUInt16LE(o + 108);
        const pathLen = b.readUInt16LE(o + 110);
        const bufLen = b.readUInt16LE(o + 112);
        const family = b[o + 114]!;
        const s = o + SYS_HEAD;
        const p = Math.min(s + strLen, end);
        const q = Math.min(p + pathLen, end);
        const args: bigint[] = [];
        for (let i = 0; i < 6; i++) args.push(b.readBigUInt64LE(o + 56 + i * 8));
        return {
          kind: 'sys',
          pid: b.readUInt32LE(o + 4), tid: b.readUInt32LE(o + 8), uid: b.readUInt32LE(o + 12), ts: this.ts(b, o), start: this.start(b, o), comm: this.comms.get(b, o + 32),
          ret: Number(b.readBigInt64LE(o + 48)),
          args,
          nr: b.readUInt32LE(o + 104),
          str: cstr(b, s, p),
          strs: strLen > 0 ? b.toString('latin1', s, p).split('\0').slice(0, -1) : [],
          path: joinPath(b, p, q),
          buf: bufLen > 0 ? Buffer.from(b.subarray(q, Math.min(q + bufLen, end))) : undefined,
          family,
          proto: b[o + 115]!,
          sport: b.readUInt16LE(o + 116),
          dport: b.readUInt16LE(o + 118),
          saddr: ip(b, o + 120, family),
          daddr: ip(b, o + 136, family),
          dev: b.readUInt32LE(o + 152),
          netns: b.readUInt32LE(o + 156),
          ino: Number(b.readBigUInt64LE(o + 160)),
          ruid: b.readUInt32LE(o + 168),
          euid: b.readUInt32LE(o + 172),
        };
      }
      case EV_FPU:
        if (size < FPU_SIZE) return undefined;
        return {
          kind: 'fpu',
          pid: b.readUInt32LE(o + 4), tid: b.readUInt32LE(o + 8), uid: b.readUInt32LE(o + 12), ts: this.ts(b, o), start: this.start(b, o), comm: this.comms.get(b, o + 32),
          count: Number(b.readBigUInt64LE(o + 48)),
          changes: Number(b.readBigUInt64LE(o + 56)),
          first: b.readBigUInt64LE(o + 64) + this.clock.offset,
          seen: Number(b.readBigUInt64LE(o + 72)),
          modes: [b.readUInt32LE(o + 80), b.readUInt32LE(o + 84), b.readUInt32LE(o + 88), b.readUInt32LE(o + 92)],
          runtime: Number(b.readBigUInt64LE(o + 96)),
          runDelay: Number(b.readBigUInt64LE(o + 104)),
          tstart: b.readBigUInt64LE(o + 112) + this.clock.offset,
          cpu: b.readUInt32LE(o + 120),
        };
      default:
        return undefined;
    }
  }
}
