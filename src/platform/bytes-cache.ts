/**
 * Values decoded from byte blocks, kept by the blocks' bytes (src/sources/ebpf/decode.ts for the
 * eBPF records, src/sources/proc-exec-read.ts for the proc connector's reads of cmdline and environ).
 */

/** Values kept per cache: a host runs few executables, has few cgroups, and its shells pass on few environments. */
const BYTES_CACHE = 64;

/**
 * Values decoded from a block of a record (a path, an environment, an argv), kept by the block's
 * bytes, one per length: the same executable, cgroup and environment come back exec after exec,
 * so the bytes are compared (memcmp) instead of split, reversed and joined again, and equal blocks
 * give the same value (a storm of commands from one shell shares one array: one copy where the
 * process table keeps many processes). Arrays are never changed in place (readers slice, and
 * redaction copies), so sharing is safe.
 */
export class BytesCache<T> {
  private readonly byLength = new Map<number, { bytes: Buffer; value: T }>();

  constructor(private readonly decode: (b: Buffer, from: number, to: number) => T) {}

  get(b: Buffer, from: number, to: number): T {
    const len = Math.max(0, to - from);
    const hit = this.byLength.get(len);
    if (hit && sameBytes(b, from, hit.bytes, len)) return hit.value;
    const value = this.decode(b, from, from + len);
    if (this.byLength.size >= BYTES_CACHE && !hit) this.byLength.delete(this.byLength.keys().next().value!);
    this.byLength.delete(len);
    this.byLength.set(len, { bytes: Buffer.from(b.subarray(from, from + len)), value });
    return value;
  }
}

/** Blocks up to this many bytes are compared in JS (see sameBytes). */
const SHORT_BLOCK = 128;

/**
 * True when `len` bytes of `b` from `from` equal `kept`'s first `len`. A short block (a path, a
 * short argv) is compared byte by byte here: Buffer#compare validates its five arguments and
 * crosses into C++ for a memcmp, which cost more than the comparison itself, four times an exec
 * (issue 16). A long one (an environment) still goes to memcmp.
 */
function sameBytes(b: Buffer, from: number, kept: Buffer, len: number): boolean {
  if (len > SHORT_BLOCK) return b.compare(kept, 0, len, from, from + len) === 0;
  for (let i = 0; i < len; i++) if (b[from + i] !== kept[i]) return false;
  return true;
}
