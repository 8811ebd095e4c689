/**
 * The eBPF driver's user-space half without a kernel: the ring buffer records as the BPF programs
 * lay them out (native/ebpf/minewatch.h) decode to the right values, each syscall becomes the
 * Falco-shaped event the rules read, and DNS answers fill the DNS cache.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DnsCache } from '../src/enrich/dns.js';
import { RecordDecoder, type EbpfRecord, type RecordSink, type SysRecord } from '../src/sources/ebpf/decode.js';
import { parseDnsAnswer } from '../src/platform/dns-answer.js';
import { SYSCALLS, sysFlags, toSyscallEvent } from '../src/sources/ebpf/syscalls.js';
import { applyKernelExec, EbpfSource } from '../src/sources/ebpf/index.js';
import type { EbpfAddon } from '../src/sources/ebpf/addon.js';
import type { ProcNotice } from '../src/sources/types.js';
import { Engine, DEFAULT_RULES_FILES } from '../src/engine/index.js';
import { EXEC_HEAD, KIND_QUIET, execRecord as execRecordOf, pad8, recordHeader } from './helpers/ebpf-records.js';

const BTIME = 1_795_000_000n * 1_000_000_000n;
const OFFSET = BTIME + 123_456_789n; // REALTIME - BOOTTIME
const clock = () => ({ offset: OFFSET, btimeNs: BTIME, clkTck: 100 });

/** The test records' header: pid 4242-ish, tid pid+1, uid 1000, 5 s after boot, started 4.98… s after boot. */
function header(b: Buffer, kind: number, size: number, pid: number, comm: string): void {
  recordHeader(b, kind, size, { pid, tid: pid + 1, uid: 1000, tsNs: 5_000_000_000n, startNs: 4_987_654_321n, comm });
}

function execRecord(envText = 'HOME=/root\0WALLET=4abc\0'): Buffer {
  return execRecordOf({ pid: 4242, tid: 4243, uid: 1000, tsNs: 5_000_000_000n, startNs: 4_987_654_321n, comm: 'true' }, {
    ppid: 1,
    nr: 322, // execveat
    envSize: 77,
    argv: Buffer.from('/usr/bin/true\0--donate-level\x001\0', 'latin1'),
    fname: Buffer.from('/usr/bin/true\0'),
    path: Buffer.from('true\0bin\0usr\0'), // leaf first
    cgroup: Buffer.from('docker-0123456789ab.scope\0system.slice\0'), // leaf first
    cgroup1: Buffer.from('0123456789ab\0docker\0'), // the memory controller's v1 path, leaf first
    env: Buffer.from(envText, 'latin1'),
    flags: 1 | 8 | 32, // upper layer of an overlay, facts read
    ids: [1000, 1001, 100, 101, 0xffffffff, 7, (4 << 8) | 1, (8 << 20) | 1],
    ino: 123456n,
    mtimeNs: 1_700_000_000_000_000_001n,
    ctimeNs: 1_700_000_000_000_000_002n,
    size: 4096n,
    mode: 0o100755,
    cgroupId: 9876n,
    capEff: 1n << 21n, // CAP_SYS_ADMIN effective
    cgroup1Id: 5n,
  });
}

function sysRecord(nr: number, ret: number, args: bigint[], fill: (h: Buffer) => void, str = '', path = '', buf?: Buffer): Buffer {
  const s = str ? Buffer.from(str + '\0', 'latin1') : Buffer.alloc(0);
  const p = path ? Buffer.from(path.split('/').filter(Boolean).reverse().map((c) => c + '\0').join(''), 'latin1') : Buffer.alloc(0);
  const d = buf ?? Buffer.alloc(0);
  const head = Buffer.alloc(176);
  header(head, 4, 176 + s.length + p.length + d.length, 4242, 'sh');
  head.writeBigInt64LE(BigInt(ret), 48);
  args.forEach((a, i) => head.writeBigUInt64LE(a, 56 + i * 8));
  head.writeUInt32LE(nr, 104);
  head.writeUInt16LE(s.length, 108);
  head.writeUInt16LE(p.length, 110);
  head.writeUInt16LE(d.length, 112);
  fill(head);
  return pad8(Buffer.concat([head, s, p, d]));
}

const decodeOne = <T>(b: Buffer): T => [...new RecordDecoder(clock()).records(b)][0] as T;
const proc = { pid: 4242, name: 'sh', cwd: '/srv/app' };

/** A fork or exit record of pid 4300 (comm sh): the child's pid 4242, then the slot they share. */
function forkOrExit(kind: number, slot: number): Buffer {
  const b = Buffer.alloc(56);
  header(b, kind, 56, 4300, 'sh');
  b.writeUInt32LE(4242, 48);
  b.writeInt32LE(slot, 52);
  return b;
}

describe('eBPF records', () => {
  test('an exec: argv, path, start time in the process table\'s ticks, epoch timestamps', () => {
    const recs = [...new RecordDecoder(clock()).records(Buffer.concat([execRecord(), execRecord()]))];
    assert.equal(recs.length, 2, 'records follow one another 8-byte aligned');
    const r = recs[0]!;
    assert.equal(r.kind, 'exec');
    if (r.kind !== 'exec') return;
    assert.deepEqual(r.argv, ['/usr/bin/true', '--donate-level', '1']);
    assert.equal(r.exepath, '/usr/bin/true');
    assert.equal(r.filename, '/usr/bin/true');
    assert.equal(r.nr, 322);
    assert.equal(r.envSize, 77);
    assert.equal(r.comm, 'true');
    assert.equal(r.ts, 5_000_000_000n + OFFSET);
    // /proc/PID/stat counts 498 whole ticks of 10 ms: btime + 4.98 s.
    assert.equal(r.start, BTIME + 4_980_000_000n);
    const f = r.facts;
    assert.deepEqual([f.ruid, f.euid, f.rgid, f.egid, f.loginuid, f.vpid], [1000, 1001, 100, 101, undefined, 7]);
    assert.equal(f.tty, (4 << 8) | 1, 'tty_nr as /proc/PID/stat encodes it (tty1)');
    // The kernel's 8:1 (sda1) as stat() gives st_dev.
    assert.equal(f.exeDev, 0x801n);
    assert.deepEqual([f.exeIno, f.exeMtimeNs, f.exeCtimeNs, f.exeSize, f.exeMode], [123456n, 1_700_000_000_000_000_001n, 1_700_000_000_000_000_002n, 4096n, 0o100755]);
    assert.equal(f.exeFlags, 1 | 8 | 32);
    assert.equal(f.cgroupId, 9876n);
    assert.equal(f.cgroupPath, '/system.slice/docker-0123456789ab.scope');
    assert.equal(f.capEff, 1n << 21n);
    assert.deepEqual([f.cgroup1Id, f.cgroup1Path], [5n, '/docker/0123456789ab']);
    assert.deepEqual(f.env, ['HOME=/root', 'WALLET=4abc']);
  });

  test('equal environments decode to one array (a storm from one shell shares it); any other is its own', () => {
    const d = new RecordDecoder(clock());
    const envOf = (text?: string): string[] | undefined => {
      const [r] = [...d.records(execRecord(text))];
      return r?.kind === 'exec' ? r.facts.env : undefined;
    };
    const a = envOf();
    const b = envOf();
    assert.deepEqual(a, ['HOME=/root', 'WALLET=4abc']);
    assert.equal(b, a, 'the same array');
    // Same length, other bytes: never the cached one.
    const c = envOf('HOME=/root\0WALLET=4abd\0');
    assert.deepEqual(c, ['HOME=/root', 'WALLET=4abd']);
    assert.deepEqual(envOf(), ['HOME=/root', 'WALLET=4abc'], 'the first again, whole');
    // Many environments of other lengths: each decoded as it is.
    for (let i = 0; i < 100; i++) assert.deepEqual(envOf(`K=${'v'.repeat(i)}\0`), [`K=${'v'.repeat(i)}`]);
    assert.deepEqual(envOf('HOME=/root\0WALLET=4abd\0'), ['HOME=/root', 'WALLET=4abd']);
  });

  test('a block of the cached length with any byte changed, short (compared in JS) or long (memcmp), decodes anew', () => {
    const d = new RecordDecoder(clock());
    const execOf = (b: Buffer) => {
      const [r] = [...d.records(b)];
      assert.ok(r?.kind === 'exec');
      return r;
    };
    const pathAt = (b: Buffer): number => EXEC_HEAD + b.readUInt16LE(60) + b.readUInt16LE(62);
    // The exe path ('true\0bin\0usr\0', leaf first): its first byte, a middle one, its last
    // name's last byte; each new file of the same length is the new path, then the old one again.
    for (const [at, byte, want] of [[0, 'f', '/usr/bin/frue'], [6, 'x', '/usr/bxn/true'], [11, 'x', '/usx/bin/true']] as const) {
      const b = Buffer.from(execRecord());
      b.write(byte, pathAt(b) + at, 'latin1');
      assert.equal(execOf(b).exepath, want);
      assert.equal(execOf(execRecord()).exepath, '/usr/bin/true');
    }
    // An environment longer than the short-block bound: only its last byte differs.
    const long = (last: string) => `HOME=/root\0PATH=${'/x'.repeat(100)}\0Z=${last}\0`;
    assert.deepEqual(execOf(execRecord(long('a'))).facts.env?.at(-1), 'Z=a');
    assert.deepEqual(execOf(execRecord(long('b'))).facts.env?.at(-1), 'Z=b');
    assert.deepEqual(execOf(execRecord(long('a'))).facts.env?.at(-1), 'Z=a');
    // A cached block one byte shorter or longer is another length: never compared as equal.
    assert.deepEqual(execOf(execRecord(long('ab'))).facts.env?.at(-1), 'Z=ab');
  });

  test('fork and exit share a slot: the child\'s pid in its namespace, or the wait status', () => {
    const [fork, exit] = [...new RecordDecoder(clock()).records(Buffer.concat([forkOrExit(2, 7), forkOrExit(3, 9 << 8)]))];
    assert.deepEqual(fork && { kind: fork.kind, ppid: (fork as { ppid: number }).ppid, vpid: (fork as { vpid: number }).vpid, exitCode: (fork as { exitCode: number }).exitCode }, { kind: 'fork', ppid: 4242, vpid: 7, exitCode: 0 });
    assert.deepEqual(exit && { kind: exit.kind, vpid: (exit as { vpid: number }).vpid, exitCode: (exit as { exitCode: number }).exitCode }, { kind: 'exit', vpid: 0, exitCode: 9 << 8 });
  });

  test('one decoder, records that differ field by field: each decodes to its own values (the caches of the last value never leak)', () => {
    const d = new RecordDecoder(clock());
    const variant = (i: number): Buffer => {
      const b = Buffer.from(execRecord());
      b.writeBigUInt64LE(4_987_654_321n + BigInt(i) * 10_000_000n, 24); // start: one tick later each
      b.writeBigUInt64LE(123456n + BigInt(i), 112);
      b.writeBigUInt64LE(9876n + BigInt(i), 160);
      b.writeBigUInt64LE(1_700_000_000_000_000_001n + (BigInt(i) << 32n), 120); // only the high half changes
      b.writeBigUInt64LE((1n << 21n) << BigInt(i), 168);
      b.writeUInt32LE((8 << 20) | (1 + i), 104);
      // Same lengths, other bytes: argv[0] and the exe path's leaf.
      b.write(i % 2 ? '/usr/bin/tru1' : '/usr/bin/true', EXEC_HEAD, 'latin1');
      const pathAt = EXEC_HEAD + b.readUInt16LE(60) + b.readUInt16LE(62);
      b.write(i % 2 ? 'tru1' : 'true', pathAt, 'latin1');
      return b;
    };
    for (const i of [0, 1, 1, 2, 0, 3]) {
      const [r] = [...d.records(variant(i))];
      assert.ok(r?.kind === 'exec');
      if (r.kind !== 'exec') return;
      assert.equal(r.start, BTIME + 4_980_000_000n + BigInt(i) * 10_000_000n, `start of variant ${i}`);
      assert.equal(r.facts.exeIno, 123456n + BigInt(i));
      assert.equal(r.facts.cgroupId, 9876n + BigInt(i));
      assert.equal(r.facts.exeMtimeNs, 1_700_000_000_000_000_001n + (BigInt(i) << 32n));
      assert.equal(r.facts.capEff, (1n << 21n) << BigInt(i));
      assert.equal(r.facts.exeDev, BigInt(1 + i) | (8n << 8n));
      assert.equal(r.argv[0], i % 2 ? '/usr/bin/tru1' : '/usr/bin/true');
      assert.equal(r.exepath, i % 2 ? '/usr/bin/tru1' : '/usr/bin/true');
      assert.equal(r.facts.cgroupPath, '/system.slice/docker-0123456789ab.scope');
    }
  });

  test('comms: each record its own name, through hits, near misses and more names than the decoder keeps', () => {
    const d = new RecordDecoder(clock());
    const task = (comm: string): Buffer => {
      const b = Buffer.alloc(56);
      header(b, 2, 56, 4300, comm);
      return b;
    };
    // Names that differ in their first, middle or last byte, a 15-byte one, one with latin1 bytes;
    // more distinct names than the decoder keeps, then the first ones again.
    const names = ['sh', 'bash', 'sh', 'sh2', 'th', 'xmrig-worker-1', 'xmrig-worker-2', 'abcdefghijklmno', 'caf\xe9', 'sh', 'bash', 'xmrig-worker-1'];
    const got = [...d.records(Buffer.concat(names.map(task)))].map((r) => r.comm);
    assert.deepEqual(got, names);
    // Bytes after the name's NUL are not part of it.
    const junk = task('sh');
    junk[40] = 0x41;
    assert.equal([...d.records(junk)][0]?.comm, 'sh');
  });

  test('the source\'s lean decoder leaves out only a fork\'s or exit\'s comm and an exec\'s filename', () => {
    const task = (kind: number): Buffer => {
      const b = Buffer.alloc(56);
      header(b, kind, 56, 4300, 'sh');
      b.writeUInt32LE(4242, 48);
      return b;
    };
    const batch = Buffer.concat([task(2), execRecord(), task(3)]);
    const full = [...new RecordDecoder(clock()).records(batch)];
    const lean: unknown[] = [];
    new RecordDecoder(clock(), { lean: true }).forEach(batch, (r) => lean.push(r));
    assert.deepEqual(full.map((r) => r.comm), ['sh', 'true', 'sh']);
    const [fork, exec, exit] = full as unknown as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
    assert.deepEqual(lean, [{ ...fork, comm: '' }, { ...exec, filename: '' }, { ...exit, comm: '' }]);
  });

  test('the source\'s sink: a fork, an exec and an exit as their records say, other records whole, in order', () => {
    const sys = sysRecord(42, 0, [3n], (h) => {
      h[114] = 2;
      h[115] = 6;
    });
    const batch = Buffer.concat([forkOrExit(2, 7), execRecord(), forkOrExit(3, 9 << 8), sys, execRecord().subarray(0, 64)]);
    const [fork, exec, exit, other] = [...new RecordDecoder(clock(), { lean: true }).records(batch)] as [EbpfRecord, EbpfRecord, EbpfRecord, EbpfRecord];
    assert.ok(fork.kind === 'fork' && exec.kind === 'exec' && exit.kind === 'exit' && other.kind === 'sys');
    const got: unknown[] = [];
    const sink: RecordSink = {
      exec: (pid, ts, k) => got.push(['exec', pid, ts, k]),
      fork: (pid, tid, ppid, ts, start, vpid) => got.push(['fork', pid, tid, ppid, ts, start, vpid]),
      exit: (pid, tid, ts, start, status) => got.push(['exit', pid, tid, ts, start, status]),
      other: (r) => got.push(['other', r]),
    };
    new RecordDecoder(clock(), { lean: true }).forEachTo(batch, sink);
    assert.deepEqual(got, [
      ['fork', fork.pid, fork.tid, fork.ppid, fork.ts, fork.start, 7],
      ['exec', exec.pid, exec.ts, { type: 'execveat', comm: 'true', argv: exec.argv, exepath: '/usr/bin/true', uid: 1000, ppid: 1, startTs: exec.start, facts: exec.facts, sig: 0, quiet: false }],
      ['exit', exit.pid, exit.tid, exit.ts, exit.start, 9 << 8],
      ['other', other],
    ]);
    assert.equal(exec.ts, OFFSET + 5_000_000_000n);
    assert.equal(exec.start, BTIME + 4_980_000_000n);
  });

  test('the addon\'s one batch memory, reused: only [0, length) is read, and nothing decoded changes when the next batch overwrites it', () => {
    // The addon hands over the same Buffer each time (native/ebpf/addon.c deliver): a decoder that
    // kept a view of it (a cache keyed by a subarray, a payload not copied) would see the next
    // batch's bytes, or answer the next batch from them.
    const arena = Buffer.alloc(1 << 18, 0xee);
    const payload = Buffer.from('{"method":"login","params":{"login":"4abc"}}');
    const send = () => sysRecord(44, payload.length, [3n], (h) => {
      h[114] = 2;
      h[115] = 6;
    }, '', '', payload);
    const first = Buffer.concat([forkOrExit(2, 7), execRecord('HOME=/root\0WALLET=4abc\0'), send(), forkOrExit(3, 0)]);
    // At the same place, the same lengths, other bytes: a cache that kept a view would hit.
    const second = Buffer.concat([forkOrExit(2, 7), execRecord('HOME=/root\0WALLET=4xyz\0')]);
    const d = new RecordDecoder(clock(), { lean: true });
    const got: unknown[][] = [];
    const sink: RecordSink = {
      exec: (pid, _ts, k) => got.push(['exec', pid, k.argv, k.facts?.env, k.exepath, k.facts?.cgroupPath]),
      fork: (pid) => got.push(['fork', pid]),
      exit: (pid) => got.push(['exit', pid]),
      other: (r) => got.push(['other', (r as SysRecord).buf]),
    };
    first.copy(arena);
    d.forEachTo(arena, sink, first.length);
    const argv = ['/usr/bin/true', '--donate-level', '1'];
    const firstWant = [
      ['fork', 4300],
      ['exec', 4242, argv, ['HOME=/root', 'WALLET=4abc'], '/usr/bin/true', '/system.slice/docker-0123456789ab.scope'],
      ['other', payload],
      ['exit', 4300],
    ];
    assert.deepEqual(got, firstWant);
    // The next batch, shorter, over the same memory: the first batch's later records are still
    // there past its length, and must not come again.
    second.copy(arena);
    d.forEachTo(arena, sink, second.length);
    assert.deepEqual(got.slice(4), [['fork', 4300], ['exec', 4242, argv, ['HOME=/root', 'WALLET=4xyz'], '/usr/bin/true', '/system.slice/docker-0123456789ab.scope']]);
    assert.deepEqual(got.slice(0, 4), firstWant, 'what the first batch gave is unchanged');
    // And garbage over all of it changes nothing decoded either.
    arena.fill(0x41);
    assert.deepEqual(got.slice(0, 4), firstWant);
    assert.deepEqual((got[5]![3] as string[])[1], 'WALLET=4xyz');
    // No length (an addon build before it): the whole Buffer, as before.
    got.length = 0;
    d.forEachTo(first, sink);
    assert.equal(got.length, 4);
  });

  test('the source over the addon\'s protocol: one reused Buffer and a length, the offset only when it moved, an error with no records', async () => {
    let deliver: ((batch: Buffer, offset: bigint | undefined, error?: string, length?: number) => void) | undefined;
    const addon = {
      open: (_o: string, _opts: unknown, cb: typeof deliver) => ((deliver = cb), {}),
      close: () => undefined,
      stats: () => ({ events: 0, drops: 0, queueDrops: 0, fpu: 'off' }),
      setSysFlags: () => undefined,
    } as unknown as EbpfAddon;
    const errors: string[] = [];
    const src = new EbpfSource({ addon: { addon, objectPath: 'none', parts: 'built here' }, lookup: () => undefined, containerOf: () => undefined, wanted: () => false, onError: (m) => errors.push(m) });
    const notices: ProcNotice[] = [];
    await src.start((n) => notices.push(n));
    try {
      const arena = Buffer.alloc(1 << 16, 0xee);
      const exit = (pid: number) => {
        const b = forkOrExit(3, 9 << 8);
        b.writeUInt32LE(pid, 4);
        return b;
      };
      const first = Buffer.concat([exit(10), exit(11)]);
      first.copy(arena);
      deliver!(arena, OFFSET, undefined, first.length);
      exit(12).copy(arena); // the next batch, over the first one's memory
      deliver!(arena, undefined, undefined, 56);
      deliver!(arena, OFFSET + 5000n, undefined, 56);
      deliver!(arena, undefined, 'ebpf: reading the ring buffer failed: Input/output error', 0);
      deliver!(exit(13), OFFSET); // a build before the length: the whole Buffer
      assert.deepEqual(notices.map((n) => [n.pid, n.ts]), [
        [10, OFFSET + 5_000_000_000n],
        [11, OFFSET + 5_000_000_000n],
        [12, OFFSET + 5_000_000_000n], // the offset kept; the first batch's second record, still past the length, not again
        [12, OFFSET + 5000n + 5_000_000_000n],
        [13, OFFSET + 5_000_000_000n],
      ]);
      assert.deepEqual(errors, ['ebpf: reading the ring buffer failed: Input/output error']);
      assert.equal(src.error, errors[0]);
      assert.equal(src.counts.exit, 5);
    } finally {
      await src.stop();
    }
  });

  test('quiet records: the kind bit is not the kind, an exec carries its signature (53 bits, exact) and whether the kernel found it quiet', () => {
    const sig = (1n << 52n) + 0xdead_beefn; // above 2^32 and the JS Number's 2^52 step
    const b = execRecordOf({ pid: 7, tid: 7, uid: 0, tsNs: 5_000_000_000n, startNs: 4_987_654_321n, comm: 'true' }, {
      ppid: 1, nr: 59, envSize: 0, argv: Buffer.from('true\0'), fname: Buffer.from('/bin/true\0'), path: Buffer.from('true\0bin\0'),
      cgroup: Buffer.alloc(0), env: Buffer.alloc(0), flags: 32, ids: [0, 0, 0, 0, 0, 7, 0, 0], ino: 1n, mtimeNs: 1n, ctimeNs: 1n, size: 1n,
      mode: 0o100755, cgroupId: 0n, capEff: 0n, sig, quiet: true,
    });
    const loud = Buffer.from(b);
    loud.writeUInt16LE(1, 0); // the same exec, not quiet
    const fork = forkOrExit(2 | KIND_QUIET, 42);
    const exit = forkOrExit(3 | KIND_QUIET, 9 << 8);
    const got: unknown[][] = [];
    const sink: RecordSink = {
      exec: (pid, _ts, k) => got.push(['exec', pid, k.sig, k.quiet]),
      fork: (pid, _tid, ppid, _ts, _start, vpid) => got.push(['fork', pid, ppid, vpid]),
      exit: (pid, _tid, _ts, _start, status) => got.push(['exit', pid, status]),
      other: (r) => got.push(['other', r.kind]),
    };
    new RecordDecoder(clock(), { lean: true }).forEachTo(Buffer.concat([fork, b, loud, exit]), sink);
    assert.deepEqual(got, [
      ['fork', 4300, 4242, 42],
      ['exec', 7, Number(sig), true],
      ['exec', 7, Number(sig), false],
      ['exit', 4300, 9 << 8],
    ]);
    assert.equal(BigInt(got[1]![2] as number), sig, 'the signature survives as a number, exactly');
    // The records' own reader too (replay, tests).
    assert.deepEqual([...new RecordDecoder(clock()).records(Buffer.concat([fork, exit]))].map((r) => r.kind), ['fork', 'exit']);
  });

  test('the source tells the kernel an exec is quiet the second time nothing came of it, under the epoch in force; a reload starts a new one', async () => {
    const calls: unknown[][] = [];
    const addon = {
      open: () => ({}),
      close: () => undefined,
      stats: () => ({ events: 0, drops: 0, queueDrops: 0, fpu: 'off' }),
      setSysFlags: () => undefined,
      setQuiet: (_h: unknown, epoch: number) => calls.push(['setQuiet', epoch]),
      markQuiet: (_h: unknown, sig: number) => (calls.push(['markQuiet', sig]), true),
    } as unknown as EbpfAddon;
    const off = new EbpfSource({ addon: { addon, objectPath: 'none', parts: 'built here' }, lookup: () => undefined, containerOf: () => undefined, wanted: () => false });
    await off.start(() => undefined);
    off.quiet.execQuiet(5);
    off.quiet.execQuiet(5);
    assert.deepEqual(calls, [], 'quietUs not given: nothing is ever quiet');
    await off.stop();
    const src = new EbpfSource({ addon: { addon, objectPath: 'none', parts: 'built here' }, lookup: () => undefined, containerOf: () => undefined, wanted: () => false, quietUs: 20_000 });
    await src.start(() => undefined);
    try {
      src.quiet.execQuiet(5);
      src.quiet.execQuiet(6);
      assert.deepEqual(calls, [['setQuiet', 1]], 'once: no system call (a storm of distinct command lines)');
      src.quiet.execQuiet(5);
      assert.deepEqual(calls, [['setQuiet', 1], ['markQuiet', 5]]);
      assert.equal(src.quiet.marked, 1);
      src.quiet.forgetQuiet();
      src.quiet.execQuiet(6); // seen under the old epoch only: once again
      assert.deepEqual(calls.slice(2), [['setQuiet', 2]]);
      src.quiet.execQuiet(6);
      assert.deepEqual(calls.slice(3), [['markQuiet', 6]]);
    } finally {
      await src.stop();
    }
  });

  test('stamps and start times are exact: across the clock\'s high half, a new offset, past 2^53 ns of uptime, a boot time off the tick', () => {
    const task = (tsNs: bigint, startNs: bigint): Buffer => {
      const b = Buffer.alloc(56);
      recordHeader(b, 3, 56, { pid: 4300, tid: 4300, uid: 0, tsNs, startNs, comm: 'sh' });
      return b;
    };
    const tick = 10_000_000n;
    const big = 1n << 60n;
    // A start 1 ns short of a tick at a tick count where a float division would round up.
    const times: [bigint, bigint][] = [
      [5_000_000_000n, 4_987_654_321n], [(1n << 32n) - 1n, 4_987_654_321n], [1n << 32n, 4_990_000_000n], [(1n << 32n) + 1n, 4_990_000_000n],
      [(1n << 53n) + 3n, (1n << 53n) - 1n], [(1n << 53n) + 5n, 1n << 53n], [big + 7n, big + 12_345_678_901n], [big + 8n, 1_234_567_890n * tick - 1n],
      [6_000_000_000n, 0n], [7_000_000_000n, 4_987_654_321n],
    ];
    for (const btimeNs of [BTIME, BTIME + 1n]) {
      const d = new RecordDecoder({ offset: OFFSET, btimeNs, clkTck: 100 });
      const seen: bigint[][] = [];
      const sink: RecordSink = { exec: () => {}, fork: () => {}, exit: (_p, _t, ts, start) => seen.push([ts, start]), other: () => {} };
      d.forEachTo(Buffer.concat(times.map(([t, s]) => task(t, s))), sink);
      assert.deepEqual(seen, times.map(([t, s]) => [OFFSET + t, btimeNs + (s / tick) * tick]), `boot time ${btimeNs}`);
      // The next batch's offset applies to the same high half.
      d.setOffset(OFFSET + 1000n);
      seen.length = 0;
      d.forEachTo(task(5_000_000_001n, 4_987_654_321n), sink);
      assert.deepEqual(seen, [[OFFSET + 1000n + 5_000_000_001n, btimeNs + 4_980_000_000n]]);
    }
  });

  test('a record cut short or with a bad size is skipped, not over-read', () => {
    const whole = execRecord();
    assert.equal([...new RecordDecoder(clock()).records(whole.subarray(0, 60))].length, 0);
    const bad = Buffer.from(whole);
    bad.writeUInt16LE(20, 2);
    assert.equal([...new RecordDecoder(clock()).records(bad)].length, 0);
  });

  test('connect over IPv6 and IPv4-mapped addresses: fd.* as Falco shows them', () => {
    const r6 = decodeOne<SysRecord>(sysRecord(42, -115, [3n], (h) => {
      h[114] = 10;
      h[115] = 6;
      h.writeUInt16LE(40000, 116);
      h.writeUInt16LE(3333, 118);
      Buffer.from('20010db8000000000000000000000001', 'hex').copy(h, 120);
      Buffer.from('20010db8000000000000000000000007', 'hex').copy(h, 136);
    }));
    const ev = toSyscallEvent(r6, proc)!;
    assert.equal(ev.type, 'connect');
    assert.deepEqual(ev.fd, { num: 3, type: 'ipv6', l4proto: 'tcp', sockfamily: 'ip', cip: '2001:db8::1', cport: 40000, sip: '2001:db8::7', sport: 3333, connected: true });
    assert.equal(ev.args?.tuple, '2001:db8::1:40000->2001:db8::7:3333');
    const mapped = decodeOne<SysRecord>(sysRecord(42, 0, [3n], (h) => {
      h[114] = 10;
      h[115] = 6;
      Buffer.from('00000000000000000000ffffc6336407', 'hex').copy(h, 136);
    }));
    assert.equal(mapped.daddr, '198.51.100.7');
  });

  test('chmod family and opens: Falco argument names; the kernel\'s path, else the argument made absolute', () => {
    const chmod = toSyscallEvent(decodeOne<SysRecord>(sysRecord(268, 0, [BigInt.asUintN(64, -100n), 0n, 0o4755n], () => {}, 'bin/x')), proc)!;
    assert.equal(chmod.type, 'fchmodat');
    assert.deepEqual(chmod.args, { res: 0, dirfd: -100, filename: 'bin/x', mode: 0o4755 });
    const two = toSyscallEvent(decodeOne<SysRecord>(sysRecord(452, 0, [0n, 0n, 0o2755n], () => {}, '/x')), proc)!;
    assert.equal(two.type, 'fchmodat', 'fchmodat2 is reported as fchmodat');
    const open = toSyscallEvent(decodeOne<SysRecord>(sysRecord(257, 5, [BigInt.asUintN(64, -100n), 0n, 0o1101n, 0o755n], (h) => {
      h.writeUInt32LE(2049, 152);
      h.writeBigUInt64LE(99n, 160);
    }, 'out/xmrig', '/srv/app/out/xmrig')), proc)!;
    assert.equal(open.type, 'openat');
    assert.equal(open.fd?.name, '/srv/app/out/xmrig');
    assert.equal(open.fd?.nameraw, 'out/xmrig');
    assert.equal(open.fd?.ino, 99);
    assert.equal(open.args?.flags, 0o1101);
    const unresolved = toSyscallEvent(decodeOne<SysRecord>(sysRecord(2, 4, [0n, 0o101n, 0o644n], () => {}, 'log.txt')), proc)!;
    assert.equal(unresolved.fd?.name, '/srv/app/log.txt');
  });

  test('a send carries its bytes as evt.buffer; the default rules read the stratum login in it', () => {
    const login = '{"id":1,"method":"login","params":{"login":"wallet1","agent":"XMRig/6.21.0"}}\n';
    const rec = decodeOne<SysRecord>(sysRecord(1, login.length, [7n, 0n, BigInt(login.length)], (h) => {
      h[114] = 2;
      h[115] = 6;
      h.writeUInt16LE(5000, 118);
      Buffer.from([198, 51, 100, 9]).copy(h, 136);
    }, '', '', Buffer.from(login)));
    const ev = toSyscallEvent(rec, proc)!;
    assert.equal(ev.buffer, login);
    const matches = Engine.fromFiles(DEFAULT_RULES_FILES).process(ev).map((m) => m.rule);
    assert.deepEqual(matches, ['Stratum Mining Protocol on the Wire']);
  });

  test('the kernel filter: syscalls no rule uses stay off, those the agent needs stay on', () => {
    const none = sysFlags(() => false);
    for (const d of SYSCALLS) assert.equal(none[d.nr] !== 0, d.always === true, d.type);
    const all = sysFlags();
    for (const d of SYSCALLS) assert.notEqual(all[d.nr], 0, d.type);
  });

  test('an exec whose process was gone before /proc was read keeps the kernel\'s command line', () => {
    const ev = applyKernelExec({ source: 'syscall', type: 'execve', ts: 1n, proc: { pid: 9, name: '' } }, {
      type: 'execve', comm: 'true', argv: ['/usr/bin/true', '--donate-level', '1'], exepath: '/usr/bin/true', uid: 0, ppid: 1, startTs: 5n,
    });
    assert.equal(ev.proc.name, 'true');
    assert.deepEqual(ev.proc.args, ['--donate-level', '1']);
    assert.equal(ev.proc.exepath, '/usr/bin/true');
    assert.equal(ev.proc.start_ts, 5n);
  });
});

/** A DNS response: question for `name`, then a CNAME, an A and an AAAA record (compressed names). */
function dnsResponse(name: string): Buffer {
  const labels = Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  const hdr = Buffer.from([0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0]);
  const q = Buffer.concat([labels, Buffer.from([0, 1, 0, 1])]);
  const ptr = Buffer.from([0xc0, 12]);
  const rr = (type: number, data: Buffer) => Buffer.concat([ptr, Buffer.from([0, type, 0, 1, 0, 0, 0, 60, 0, data.length]), data]);
  const cname = Buffer.concat([Buffer.from([4]), Buffer.from('edge'), ptr]);
  return Buffer.concat([hdr, q, rr(5, cname), rr(1, Buffer.from([198, 51, 100, 7])), rr(28, Buffer.from('20010db8000000000000000000000007', 'hex'))]);
}

describe('DNS answers', () => {
  test('the question and every A and AAAA address', () => {
    assert.deepEqual(parseDnsAnswer(dnsResponse('Pool.SupportXMR.com')), {
      txid: 0x1234, query: 'pool.supportxmr.com', addrs: ['198.51.100.7', '2001:db8::7'],
      records: [{ addr: '198.51.100.7', ttl: 60 }, { addr: '2001:db8::7', ttl: 60 }],
    });
  });

  test('queries, truncated and looping messages give nothing or what was readable', () => {
    const query = dnsResponse('a.example');
    query[2] = 0x01;
    assert.equal(parseDnsAnswer(query), undefined);
    const whole = dnsResponse('a.example');
    assert.deepEqual(parseDnsAnswer(whole.subarray(0, whole.length - 5))?.addrs, ['198.51.100.7']);
    const loop = Buffer.from([0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12]);
    assert.equal(parseDnsAnswer(loop), undefined);
    assert.equal(parseDnsAnswer(Buffer.alloc(5)), undefined);
  });

  test('an answer for a pool domain is an alert of its own, with the name asked for', () => {
    const engine = Engine.fromFiles(DEFAULT_RULES_FILES);
    const recv = (name: string, sport = 53) => engine.process({
      source: 'syscall', type: 'recvmsg', ts: 1n, res: 80, buffer: dnsResponse(name).toString('latin1'), proc: { pid: 5, name: 'curl' },
      fd: { num: 4, type: 'ipv4', l4proto: 'udp', cip: '10.0.0.2', cport: 40000, sip: '10.0.0.53', sport },
    }).map((m) => `${m.rule}/${String(m.outputFields['mw.dns.query'])}`);
    assert.deepEqual(recv('XMR-EU1.nanopool.org'), ['Mining Pool Domain Resolved/xmr-eu1.nanopool.org']);
    assert.deepEqual(recv('pool.supportxmr.com'), ['Mining Pool Domain Resolved/pool.supportxmr.com']);
    assert.deepEqual(recv('www.example.org'), []);
    assert.deepEqual(recv('xmr-eu1.nanopool.org', 5353), [], 'not from port 53: not a DNS answer');
  });

  test('learned names name the address in their namespace, in canonical form', () => {
    const dns = new DnsCache();
    const a = parseDnsAnswer(dnsResponse('pool.supportxmr.com'))!;
    for (const r of a.records) assert.equal(dns.learn(7, a.query, r.addr, r.ttl), true);
    assert.deepEqual(dns.learnedNamesFor(7, '2001:db8::7'), ['pool.supportxmr.com']);
    assert.deepEqual(dns.learnedNamesFor(8, '2001:db8::7'), [], 'another namespace');
    assert.deepEqual(dns.namesFor('2001:db8::7'), [], 'not a static name');
    assert.equal(dns.learn(7, 'x.example', 'not-an-ip', 60), false);
  });
});
