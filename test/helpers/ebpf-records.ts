/**
 * Ring buffer records as the BPF programs lay them out (native/ebpf/minewatch.h), built for the
 * decoder's tests and the exec-path bench: one layout, written once.
 */

export interface RecordHead {
  pid: number;
  tid: number;
  uid: number;
  /** Event time, ns since boot. */
  tsNs: bigint;
  /** The task's start, ns since boot. */
  startNs: bigint;
  comm: string;
}

/** The common record header (kind, size, pid, tid, uid, times, comm) at the start of `b`. */
export function recordHeader(b: Buffer, kind: number, size: number, h: RecordHead): void {
  b.writeUInt16LE(kind, 0);
  b.writeUInt16LE(size, 2);
  b.writeUInt32LE(h.pid, 4);
  b.writeUInt32LE(h.tid, 8);
  b.writeUInt32LE(h.uid, 12);
  b.writeBigUInt64LE(h.tsNs, 16);
  b.writeBigUInt64LE(h.startNs, 24);
  b.write(h.comm, 32, 'latin1');
}

/** Records are 8-byte aligned in the ring. */
export const pad8 = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((8 - (b.length % 8)) % 8)]);

export interface ExecFields {
  ppid: number;
  /** The syscall number (59 execve, 322 execveat). */
  nr: number;
  /** The env size the kernel reports (the bytes kept may be fewer). */
  envSize: number;
  argv: Buffer;
  fname: Buffer;
  /** The exe's path, its components leaf first, each NUL-ended. */
  path: Buffer;
  /** The v2 cgroup path, leaf first. */
  cgroup: Buffer;
  /** A v1 controller's cgroup path, leaf first (hybrid hosts). */
  cgroup1?: Buffer;
  env: Buffer;
  /** EXE_* flags. */
  flags: number;
  /** euid, egid, suid… as minewatch.h orders its eight 32-bit ids from offset 76. */
  ids: number[];
  ino: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  size: bigint;
  mode: number;
  cgroupId: bigint;
  capEff: bigint;
  capPrm?: bigint;
  cgroup1Id?: bigint;
  /** The exec's signature (53 bits). */
  sig?: bigint;
  /** The kernel found the signature quiet (hdr.kind | MW_KIND_QUIET). */
  quiet?: boolean;
}

/** minewatch.h: sizeof(struct mw_exec), the head before the variable part. */
export const EXEC_HEAD = 208;
/** minewatch.h MW_KIND_QUIET. */
export const KIND_QUIET = 0x100;

/** An exec record (kind 1): the fixed head (EXEC_HEAD), then argv, filename, path, cgroups and env. */
export function execRecord(h: RecordHead, f: ExecFields): Buffer {
  const cgroup1 = f.cgroup1 ?? Buffer.alloc(0);
  const head = Buffer.alloc(EXEC_HEAD);
  recordHeader(head, f.quiet ? 1 | KIND_QUIET : 1, EXEC_HEAD + f.argv.length + f.fname.length + f.path.length + f.cgroup.length + cgroup1.length + f.env.length, h);
  head.writeUInt32LE(f.ppid, 48);
  head.writeUInt32LE(f.nr, 52);
  head.writeUInt32LE(f.envSize, 56);
  head.writeUInt16LE(f.argv.length, 60);
  head.writeUInt16LE(f.fname.length, 62);
  head.writeUInt16LE(f.path.length, 64);
  head.writeUInt16LE(f.cgroup.length, 70);
  head.writeUInt16LE(f.env.length, 72);
  head.writeUInt16LE(f.flags, 74);
  f.ids.forEach((v, i) => head.writeUInt32LE(v, 76 + i * 4));
  if (cgroup1.length > 0) head.writeUInt16LE(cgroup1.length, 108);
  head.writeBigUInt64LE(f.ino, 112);
  head.writeBigUInt64LE(f.mtimeNs, 120);
  head.writeBigUInt64LE(f.ctimeNs, 128);
  head.writeBigUInt64LE(f.size, 136);
  head.writeUInt32LE(f.mode, 144);
  head.writeBigUInt64LE(f.cgroupId, 160);
  head.writeBigUInt64LE(f.capEff, 168);
  if (f.capPrm !== undefined) head.writeBigUInt64LE(f.capPrm, 176);
  if (f.cgroup1Id !== undefined) head.writeBigUInt64LE(f.cgroup1Id, 192);
  if (f.sig !== undefined) head.writeBigUInt64LE(f.sig, 200);
  return pad8(Buffer.concat([head, f.argv, f.fname, f.path, f.cgroup, cgroup1, f.env]));
}
