/**
 * Loads the eBPF driver's loader addon (native/ebpf/addon.c → minewatch_ebpf.node) and finds its
 * BPF object (minewatch.bpf.o). Each is the one built on this host (scripts/build-ebpf.cjs, where
 * libbpf-dev and clang are), else the prebuilt one the package ships (scripts/prebuild-ebpf.sh),
 * so a host with only Node and npm still gets the eBPF driver. Loading never throws: it says what
 * is missing and the one command that fixes it.
 */
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../platform/native-addon.js';

export interface EbpfOpenOptions {
  /** The agent's own process: its syscalls are not reported. */
  selfTgid: number;
  /** Attach the RandomX (MXCSR) detector. */
  fpu: boolean;
  /** Report read-only opens too (default: only opens that may write or create). */
  openRead: boolean;
  /** Sightings of a non-default rounding mode before a process's first FPU record. */
  fpuMin: number;
  /** Per x86-64 syscall number, what to report (see sysFlags in syscalls.ts). */
  sysFlags: Uint8Array;
  /** Per x86-64 syscall number, the generic path's descriptor (see sysDescriptors in syscalls.ts). */
  sysDesc?: Uint32Array;
  ringBytes?: number;
  /**
   * How long records gather after a wake-up, µs (default 2000; libuv's timers round it up to whole
   * milliseconds): the latency it adds at most, and at most one batch per this long whatever the rate.
   */
  gatherUs?: number;
  /**
   * How long quiet records may wait, µs (minewatch.h, struct mw_reader): forks, exits and execs
   * like ones the agent judged harmless before (markQuiet) do not wake the reader, whose timer takes
   * them; any other record wakes it as before. 0 or absent: every record wakes it as before.
   */
  quietUs?: number;
  /** A BTF file to use instead of /sys/kernel/btf/vmlinux (tests: a missing one). */
  btfPath?: string;
}

export interface EbpfStats {
  /** Records the kernel put on the ring buffer. */
  events: number;
  /** Records the kernel could not put there: the ring buffer was full. */
  drops: number;
  /** Records dropped because the JS thread did not keep up. */
  queueDrops: number;
  /** The RandomX detector: on, off, or missing (no x86_fpu_regs_deactivated tracepoint). */
  fpu: 'on' | 'off' | 'missing';
  /**
   * Times the reader's idle timeout found records that no wake-up announced: the kernel wakes the
   * reader only while it sleeps (minewatch.h, MW_READER_*), so anything but 0 is a bug. Absent
   * from builds before it.
   */
  missedWakeups?: number;
  /** Times the ring's records woke the reader; absent from builds before quiet records. */
  wakeups?: number;
  /** Quiet timers the reader slept on (quietUs); absent from builds before them. */
  quietSleeps?: number;
}

export type EbpfHandle = { readonly __brand: 'minewatch_ebpf_handle' };

export interface EbpfAddon {
  /** Throws an Error with `code`: ERR_NO_BTF, ERR_BPF_OBJECT, EPERM, EACCES, ERR_BPF_LOAD, ERR_BPF_ATTACH. */
  /**
   * `callback(batch, offsetNs, error, length)`: the records are batch[0, length) (length undefined
   * from builds before it: the whole Buffer). The addon hands over the same Buffer each time, over
   * its own memory, overwritten by the next batch: nothing may keep a view of it past the call
   * (decode.ts copies what it keeps). `offsetNs` undefined: unchanged since the last one given.
   */
  open(objectPath: string, options: EbpfOpenOptions, callback: (batch: Buffer, offsetNs: bigint | undefined, error?: string, length?: number) => void): EbpfHandle;
  close(handle: EbpfHandle): void;
  stats(handle: EbpfHandle): EbpfStats;
  /** What to report from now on (the rules changed); throws ERR_BPF_MAP. */
  setSysFlags(handle: EbpfHandle, flags: Uint8Array): void;
  /**
   * Which opens for reading only to report from now on: 0 none, 1 all, 2 those whose path starts
   * with one of `prefixes` or whose process's comm is one of `comms` (read-filter.ts); throws
   * ERR_BPF_MAP. Absent from builds before it.
   */
  setReadPolicy?(handle: EbpfHandle, mode: 0 | 1 | 2, prefixes: string[], comms: string[]): void;
  /**
   * Wake a short-lived thread `times` times on `cpu`, every `intervalMs`: whatever runs there is
   * switched out (its rounding mode read) that often. false: too many at work, or a bad cpu.
   * Absent from builds before it (then the RandomX detector waits for the host's own switches).
   */
  nudge?(cpu: number, times: number, intervalMs: number): boolean;
  /**
   * Records may be quiet from now on, exec signatures counted under `epoch` (a new epoch forgets
   * those marked before it); 0: none is. Nothing happens unless opened with quietUs. Absent from
   * builds before quiet records.
   */
  setQuiet?(handle: EbpfHandle, epoch: number): void;
  /** Execs of this signature (KernelExec.sig) are quiet under the epoch in force; false if not stored. */
  markQuiet?(handle: EbpfHandle, sig: number): boolean;
}

/** Where the loader addon and the BPF object came from: built on this host, or shipped prebuilt. */
export type EbpfParts = 'built here' | 'prebuilt';

export type EbpfAddonLoad =
  | { addon: EbpfAddon; objectPath: string; parts: EbpfParts }
  | { error: string; code: string; fix: string };

const SRC_DIR = join(PACKAGE_ROOT, 'native', 'ebpf');
/** Built here by scripts/build-ebpf.cjs (npm install / npm run build) where libbpf-dev and clang are. */
export const EBPF_ADDON_PATH = join(SRC_DIR, 'build', 'Release', 'minewatch_ebpf.node');
export const EBPF_OBJECT_PATH = join(SRC_DIR, 'out', 'minewatch.bpf.o');
/** Shipped in the package by scripts/prebuild-ebpf.sh: libbpf linked in, so no libbpf-dev is needed. */
export const EBPF_PREBUILT_DIR = join(PACKAGE_ROOT, 'prebuilds', 'ebpf-linux-x64');
const PREBUILT_ADDON = join(EBPF_PREBUILT_DIR, 'minewatch_ebpf.node');
const PREBUILT_OBJECT = join(EBPF_PREBUILT_DIR, 'minewatch.bpf.o');

/** The one command that builds both parts on this host (Debian and Ubuntu). */
export const EBPF_BUILD_FIX = `apt-get update && apt-get install -y clang bpftool libbpf-dev && node ${join(PACKAGE_ROOT, 'scripts', 'build-ebpf.cjs')}`;

/**
 * Whether the prebuilt parts were made from the sources beside them: the record layout in
 * minewatch.h is shared by the object, the addon and the decoder, so parts built from other
 * sources would be read wrong. Undefined when they match; else why not.
 */
export function prebuiltMismatch(root = PACKAGE_ROOT): string | undefined {
  const dir = join(root, 'prebuilds', 'ebpf-linux-x64');
  const sums = join(dir, 'SOURCES.sha256');
  if (!existsSync(sums) || !existsSync(join(dir, 'minewatch_ebpf.node')) || !existsSync(join(dir, 'minewatch.bpf.o'))) {
    return `no prebuilt eBPF parts in ${dir}`;
  }
  let checked = 0;
  for (const line of readFileSync(sums, 'utf8').split('\n')) {
    const m = /^([0-9a-f]{64})\s+\*?(\S+)$/.exec(line.trim());
    if (!m) continue;
    checked++;
    const file = join(root, m[2]!);
    if (!existsSync(file)) return `${m[2]} is missing, so the prebuilt eBPF parts cannot be checked against it`;
    if (createHash('sha256').update(readFileSync(file)).digest('hex') !== m[1]) {
      return `the prebuilt eBPF parts were built from another ${m[2]} (run scripts/prebuild-ebpf.sh, or build here)`;
    }
  }
  return checked === 3 ? undefined : `${sums} does not list the three sources (minewatch.bpf.c, minewatch.h, addon.c)`;
}

/** The sources every part is built from: the record layout is shared by all three. */
const SOURCES = ['addon.c', 'minewatch.bpf.c', 'minewatch.h'];

/**
 * Whether a part built here is older than one of its sources (a checkout or pull changed them,
 * no rebuild since): it would read records laid out another way, or lack what the JS side now
 * asks of it. Such a part is passed over for the prebuilt one when that one matches the sources.
 */
export function builtBeforeSources(part: string, srcDir = SRC_DIR): string | undefined {
  const built = statSync(part, { throwIfNoEntry: false })?.mtimeMs;
  if (built === undefined) return undefined;
  return SOURCES.find((f) => (statSync(join(srcDir, f), { throwIfNoEntry: false })?.mtimeMs ?? 0) > built);
}

let cached: EbpfAddonLoad | undefined;

/**
 * The loader addon and the object, each built here if it was and is not older than the sources
 * (see builtBeforeSources), else the prebuilt one.
 * `prefer: 'prebuilt'` skips the local build (tests of the shipped parts).
 */
export function loadEbpfAddon(opts: { prefer?: 'prebuilt' } = {}): EbpfAddonLoad {
  if (opts.prefer) return load(opts.prefer);
  cached ??= load();
  return cached;
}

function load(prefer?: 'prebuilt'): EbpfAddonLoad {
  if (process.platform !== 'linux') return { error: `eBPF exists only on Linux (this is ${process.platform})`, code: 'ERR_NOT_LINUX', fix: 'run --driver procfs' };
  if (process.arch !== 'x64') return { error: `the eBPF programs are built for x86-64 syscalls (this is ${process.arch})`, code: 'ERR_ARCH', fix: 'run --driver proc' };
  let localAddon = prefer !== 'prebuilt' && existsSync(EBPF_ADDON_PATH);
  let localObject = prefer !== 'prebuilt' && existsSync(EBPF_OBJECT_PATH);
  const staleAddon = localAddon ? builtBeforeSources(EBPF_ADDON_PATH) : undefined;
  const staleObject = localObject ? builtBeforeSources(EBPF_OBJECT_PATH) : undefined;
  if (staleAddon !== undefined || staleObject !== undefined) {
    const stale = staleAddon !== undefined ? `${EBPF_ADDON_PATH} is older than ${staleAddon}` : `${EBPF_OBJECT_PATH} is older than ${staleObject}`;
    if (prebuiltMismatch() !== undefined) {
      return { error: `the eBPF parts built here are stale (${stale}) and there are no prebuilt parts for these sources`, code: 'ERR_ADDON_MISSING', fix: `node ${join(PACKAGE_ROOT, 'scripts', 'build-ebpf.cjs')}` };
    }
    // The prebuilt pair matches these sources: use both, never a stale part beside a fresh one.
    localAddon = false;
    localObject = false;
  }
  const mismatch = localAddon && localObject ? undefined : prebuiltMismatch();
  if (mismatch !== undefined) {
    const missing = [!localAddon && `the loader addon (${EBPF_ADDON_PATH})`, !localObject && `the BPF object (${EBPF_OBJECT_PATH})`].filter(Boolean).join(' and ');
    return { error: `${missing} was not built here and ${mismatch}`, code: localAddon ? 'ERR_BPF_OBJECT' : 'ERR_ADDON_MISSING', fix: EBPF_BUILD_FIX };
  }
  const addonPath = localAddon ? EBPF_ADDON_PATH : PREBUILT_ADDON;
  const objectPath = localObject ? EBPF_OBJECT_PATH : PREBUILT_OBJECT;
  const parts: EbpfParts = localAddon && localObject ? 'built here' : 'prebuilt';
  try {
    const require = createRequire(import.meta.url);
    const mod = require(addonPath) as Partial<EbpfAddon>;
    if (typeof mod.open !== 'function' || typeof mod.close !== 'function' || typeof mod.stats !== 'function' || typeof mod.setSysFlags !== 'function') {
      return { error: `the eBPF addon ${addonPath} lacks open/close/stats/setSysFlags (a stale build)`, code: 'ERR_ADDON_MISSING', fix: EBPF_BUILD_FIX };
    }
    return { addon: mod as EbpfAddon, objectPath, parts };
  } catch (e) {
    // A missing shared library shows here: libbpf.so.1 for a local build made elsewhere, libelf or
    // zlib for the prebuilt one.
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
    const fix = addonPath === PREBUILT_ADDON ? 'apt-get update && apt-get install -y libelf1 zlib1g' : EBPF_BUILD_FIX;
    return { error: `the eBPF addon ${addonPath} does not load: ${msg}`, code: 'ERR_ADDON_MISSING', fix };
  }
}
