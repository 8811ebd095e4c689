/**
 * The RandomX detector's live tests and benchmark share these: a real RandomX hasher built on
 * Debian's librandomx-dev under an innocuous name, the false-alarm stand-ins, and the reason to
 * skip when this machine cannot build them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { haveCommand, isRoot, run } from './live.js';
import { FIXTURES } from './paths.js';
import { loadEbpfAddon } from '../../src/sources/ebpf/addon.js';

/**
 * Why the RandomX detector cannot be run live here against the real hasher (root, the eBPF
 * driver, BTF, a compiler and librandomx-dev), or undefined.
 */
export function noLiveRandomx(): string | undefined {
  if (!isRoot()) return 'needs root (loading BPF programs)';
  const addon = loadEbpfAddon();
  if ('error' in addon) return `the eBPF driver is not built here: ${addon.error}`;
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'this kernel has no BTF (/sys/kernel/btf/vmlinux)';
  if (!haveCommand('cc')) return 'needs cc (apt-get install gcc libc6-dev)';
  if (!existsSync('/usr/include/randomx.h')) return 'needs librandomx-dev (apt-get install librandomx-dev) for the real RandomX hasher';
  return undefined;
}

/**
 * The hasher (test/fixtures/ebpf/rx-hasher.c: librandomx light mode, one thread, hashing until
 * killed, no arguments) as DIR/NAME. Its comm is NAME cut to 15 characters.
 */
export function buildHasher(dir: string, name = 'systemd-journald-helper'): string {
  const out = join(dir, name);
  run('cc', ['-O2', '-o', out, join(FIXTURES, 'ebpf/rx-hasher.c'), '-lrandomx']);
  return out;
}

/**
 * The stand-ins (test/fixtures/ebpf/rounding-standins.c), one binary per name so each shows as an
 * ordinary program: interval-solver, ocean-sim (a mode now and then), test-libm.
 */
export function buildStandins(dir: string): { interval: string; sometimes: string; libmTests: string } {
  const bin = join(dir, 'rounding-standins');
  // -frounding-math: the compiler must not move arithmetic across fesetround, as such code is built.
  run('cc', ['-O2', '-frounding-math', '-o', bin, join(FIXTURES, 'ebpf/rounding-standins.c'), '-lm']);
  const copy = (name: string): string => {
    const p = join(dir, name);
    run('cp', [bin, p]);
    return p;
  };
  return { interval: copy('interval-solver'), sometimes: copy('ocean-sim'), libmTests: copy('test-libm') };
}

/** A JIT at work: node running a floating-point loop for `seconds` (V8 keeps round-to-nearest, as JavaScript requires). */
export const NODE_NUMERIC_LOOP = (seconds: number): string =>
  `let x = 0; const end = Date.now() + ${seconds * 1000}; while (Date.now() < end) { for (let i = 1; i < 1e6; i++) x += Math.sin(i) * Math.sqrt(i) / i; } console.log(x);`;
