/**
 * Loads the eBPF driver's loader addon (native/ebpf/addon.c → minewatch_ebpf.node) and finds its
 * BPF object (native/ebpf/out/minewatch.bpf.o). Both are optional parts of the install
 * (scripts/build-ebpf.cjs builds them only where libbpf-dev and clang are): loading never throws,
 * it says what is missing and how to get it.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../native-addon.js';

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
  ringBytes?: number;
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
}

export type EbpfHandle = { readonly __brand: 'minewatch_ebpf_handle' };

export interface EbpfAddon {
  /** Throws an Error with `code`: ERR_NO_BTF, ERR_BPF_OBJECT, EPERM, EACCES, ERR_BPF_LOAD, ERR_BPF_ATTACH. */
  open(objectPath: string, options: EbpfOpenOptions, callback: (batch: Buffer, offsetNs: bigint, error?: string) => void): EbpfHandle;
  close(handle: EbpfHandle): void;
  stats(handle: EbpfHandle): EbpfStats;
  /** What to report from now on (the rules changed); throws ERR_BPF_MAP. */
  setSysFlags(handle: EbpfHandle, flags: Uint8Array): void;
  /**
   * Wake a short-lived thread `times` times on `cpu`, every `intervalMs`: whatever runs there is
   * switched out (its rounding mode read) that often. false: too many at work, or a bad cpu.
   * Absent from builds before it (then the RandomX detector waits for the host's own switches).
   */
  nudge?(cpu: number, times: number, intervalMs: number): boolean;
}

export type EbpfAddonLoad = { addon: EbpfAddon; objectPath: string } | { error: string; code: string };

export const EBPF_ADDON_PATH = join(PACKAGE_ROOT, 'native', 'ebpf', 'build', 'Release', 'minewatch_ebpf.node');
export const EBPF_OBJECT_PATH = join(PACKAGE_ROOT, 'native', 'ebpf', 'out', 'minewatch.bpf.o');

let cached: EbpfAddonLoad | undefined;

export function loadEbpfAddon(): EbpfAddonLoad {
  cached ??= load();
  return cached;
}

function load(): EbpfAddonLoad {
  if (process.platform !== 'linux') return { error: `eBPF exists only on Linux (this is ${process.platform})`, code: 'ERR_NOT_LINUX' };
  if (process.arch !== 'x64') return { error: `the eBPF programs are built for x86-64 syscalls (this is ${process.arch})`, code: 'ERR_ARCH' };
  if (!existsSync(EBPF_ADDON_PATH)) {
    return {
      error: `the eBPF loader addon was not built (${EBPF_ADDON_PATH} is missing): install libbpf-dev and run \`npm rebuild minewatch\``,
      code: 'ERR_ADDON_MISSING',
    };
  }
  if (!existsSync(EBPF_OBJECT_PATH)) {
    return {
      error: `the BPF object was not built (${EBPF_OBJECT_PATH} is missing): install clang and bpftool and run \`npm run build\``,
      code: 'ERR_BPF_OBJECT',
    };
  }
  try {
    const require = createRequire(import.meta.url);
    const mod = require(EBPF_ADDON_PATH) as Partial<EbpfAddon>;
    if (typeof mod.open !== 'function' || typeof mod.close !== 'function' || typeof mod.stats !== 'function' || typeof mod.setSysFlags !== 'function') {
      return { error: 'the eBPF addon loaded but lacks open/close/stats/setSysFlags (a stale build? run `npm rebuild minewatch`)', code: 'ERR_ADDON_MISSING' };
    }
    return { addon: mod as EbpfAddon, objectPath: EBPF_OBJECT_PATH };
  } catch (e) {
    // A missing libbpf.so.1 shows here: the addon was built elsewhere.
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
    return { error: `the eBPF addon does not load: ${msg} (is libbpf1 installed?)`, code: 'ERR_ADDON_MISSING' };
  }
}
