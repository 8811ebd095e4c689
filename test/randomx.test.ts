/**
 * The RandomX detector without a kernel: the FPU record as minewatch.bpf.c lays it out decodes to
 * the right counts; the figures the rules read (mw.fpu.*); which records become events; the
 * default rule's thresholds against the figures a real RandomX hasher and the false-alarm
 * stand-ins gave on this project's test machine (test/randomx-e2e.test.ts runs them live); what
 * the agent says at start; and cryptnono's kill, once per process.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type FpuRecord, RecordDecoder } from '../src/sources/ebpf/decode.js';
import { FpuGate, fpuFigures, nudgeWorthy } from '../src/sources/ebpf/randomx.js';
import { randomxState } from '../src/agent/randomx.js';
import { MoneroKiller, RANDOMX_RULE } from '../src/detectors/monero/index.js';
import { Engine, DEFAULT_RULES_FILES } from '../src/engine/index.js';
import type { SyscallEvent } from '../src/events.js';
import type { Match } from '../src/engine/types.js';

const BTIME = 1_795_000_000n * 1_000_000_000n;
const OFFSET = BTIME + 123_456_789n; // REALTIME - BOOTTIME
const S = 1_000_000_000n;

/** An MW_EV_FPU record (128 bytes) as the kernel writes it. */
function fpuRecordBytes(o: { pid: number; tid: number; ts: bigint; start: bigint; count: number; changes: number; first: bigint; seen: number; modes: number[]; runtime: bigint; runDelay: bigint; tstart: bigint; cpu: number }): Buffer {
  const b = Buffer.alloc(128);
  b.writeUInt16LE(5, 0);
  b.writeUInt16LE(128, 2);
  b.writeUInt32LE(o.pid, 4);
  b.writeUInt32LE(o.tid, 8);
  b.writeUInt32LE(0, 12);
  b.writeBigUInt64LE(o.ts, 16);
  b.writeBigUInt64LE(o.start, 24);
  b.write('systemd-journal', 32, 'latin1');
  b.writeBigUInt64LE(BigInt(o.count), 48);
  b.writeBigUInt64LE(BigInt(o.changes), 56);
  b.writeBigUInt64LE(o.first, 64);
  b.writeBigUInt64LE(BigInt(o.seen), 72);
  o.modes.forEach((m, i) => b.writeUInt32LE(m, 80 + i * 4));
  b.writeBigUInt64LE(o.runtime, 96);
  b.writeBigUInt64LE(o.runDelay, 104);
  b.writeBigUInt64LE(o.tstart, 112);
  b.writeUInt32LE(o.cpu, 120);
  return b;
}

describe('the FPU record', () => {
  const d = new RecordDecoder({ offset: OFFSET, btimeNs: BTIME, clkTck: 100 });
  const bytes = fpuRecordBytes({
    pid: 4242, tid: 4243, ts: 20n * S, start: 4n * S, count: 30, changes: 21, first: 8n * S, seen: 41,
    modes: [11, 9, 10, 11], runtime: 12n * S, runDelay: 3n * S, tstart: 5n * S, cpu: 1,
  });

  test('decodes every count, the thread\'s times and the CPU', () => {
    const [r] = [...d.records(bytes)] as FpuRecord[];
    assert.equal(r!.kind, 'fpu');
    assert.equal(r!.pid, 4242);
    assert.equal(r!.tid, 4243);
    assert.equal(r!.comm, 'systemd-journal');
    assert.equal(r!.count, 30);
    assert.equal(r!.changes, 21);
    assert.equal(r!.first, 8n * S + OFFSET);
    assert.equal(r!.seen, 41);
    assert.deepEqual(r!.modes, [11, 9, 10, 11]);
    assert.equal(r!.runtime, 12e9);
    assert.equal(r!.runDelay, 3e9);
    assert.equal(r!.tstart, 5n * S + OFFSET);
    assert.equal(r!.cpu, 1);
  });

  test('the figures: 12 s from the first sighting, a thread that wanted a CPU all its 15 s of life', () => {
    const [r] = [...d.records(bytes)] as FpuRecord[];
    assert.deepEqual(fpuFigures(r!), {
      rounding_count: 30,
      rounding_changes: 21,
      rounding_rate: 3, // 30 in 12 s, rounded
      rounding_percent: 73, // 30 of 41
      rounding_rarest: 9,
      seconds: 12,
      busy_percent: 100, // (12 s running + 3 s waiting) / 15 s
    });
  });

  test('a record shorter than its layout is skipped, not over-read', () => {
    const short = Buffer.from(bytes.subarray(0, 120));
    short.writeUInt16LE(120, 2);
    assert.deepEqual([...d.records(short)], []);
  });

  test('a thread that sleeps most of its life is not busy', () => {
    const [r] = [...d.records(fpuRecordBytes({
      pid: 1, tid: 1, ts: 105n * S, start: 4n * S, count: 64, changes: 40, first: 60n * S, seen: 90,
      modes: [26, 20, 22, 22], runtime: 10n * S, runDelay: 0n, tstart: 5n * S, cpu: 0,
    }))] as FpuRecord[];
    assert.equal(fpuFigures(r!).busy_percent, 10);
  });
});

describe('which records become events', () => {
  const rec = (count: number, atS: number, pid = 7): FpuRecord => ({
    kind: 'fpu', pid, tid: pid, uid: 0, comm: 'x', ts: BigInt(atS) * S, start: 3n, count, changes: count, first: 0n,
    seen: count, modes: [0, count, 0, 0], runtime: 0, runDelay: 0, tstart: 0n, cpu: 0,
  });

  test('every record while the rules are still judging, then only doublings', () => {
    const g = new FpuGate();
    assert.deepEqual([8, 20, 40, 60, 80].map((c, i) => g.pass(rec(c, i + 1))), [true, true, true, true, true]);
    // Two minutes without a verdict: doublings only.
    assert.equal(g.pass(rec(100, 121)), false);
    assert.equal(g.pass(rec(160, 122)), true);
    assert.equal(g.pass(rec(300, 123)), false);
    assert.equal(g.pass(rec(320, 124)), true);
  });

  test('once the RandomX rule has matched a process, doublings only; another process is still judged', () => {
    const g = new FpuGate();
    assert.equal(g.pass(rec(16, 1)), true);
    assert.equal(g.pass(rec(20, 2)), true);
    g.judged(7, 3n);
    assert.equal(g.pass(rec(30, 3)), false);
    assert.equal(g.pass(rec(40, 4)), true);
    assert.equal(g.pass(rec(50, 5)), false);
    assert.equal(g.pass(rec(16, 1, 8)), true);
    assert.equal(g.pass(rec(17, 2, 8)), true);
  });

  test('a busy thread not judged yet, in its first 20 s, is worth more looks (the nudge)', () => {
    const g = new FpuGate();
    const r = rec(16, 1);
    g.pass(r);
    const f = { rounding_count: 16, rounding_changes: 10, rounding_rate: 16, rounding_percent: 70, rounding_rarest: 2, seconds: 3, busy_percent: 100 };
    assert.equal(g.unjudged(r) && nudgeWorthy(f), true);
    assert.equal(nudgeWorthy({ ...f, busy_percent: 60 }), false, 'a thread that sleeps is switched out often enough by itself');
    assert.equal(nudgeWorthy({ ...f, seconds: 20 }), false, 'not forever');
    g.judged(7, 3n);
    assert.equal(g.unjudged(r), false, 'judged: no more nudges');
  });

  test('a process that exited is forgotten: its pid under a new start time is judged afresh', () => {
    const g = new FpuGate();
    g.pass(rec(16, 1));
    g.judged(7, 3n);
    g.forget(7, 3n);
    assert.equal(g.pass(rec(17, 200)), true);
  });
});

describe('the RandomX rule', () => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES);
  type Fig = { count: number; changes: number; percent: number; rarest: number; seconds: number; busy: number };
  const rx = (f: Fig, name = 'nginx-worker') => engine.process({
    source: 'syscall', type: 'mw_fpu_rounding', ts: 1n, res: 0, proc: { pid: 77, name },
    fpu: {
      rounding_count: f.count, rounding_changes: f.changes, rounding_rate: Math.round(f.count / Math.max(1, f.seconds)),
      rounding_percent: f.percent, rounding_rarest: f.rarest, seconds: f.seconds, busy_percent: f.busy,
    },
  }).map((m) => `${m.rule}/${m.priority}`);
  const ALERT = ['RandomX Floating-Point Rounding Pattern/CRITICAL'];

  // The figures below are records the agent produced for real programs (test/fixtures/ebpf).
  test('librandomx hashing on one thread, loaded host: from its 10th second', () => {
    assert.deepEqual(rx({ count: 933, changes: 655, percent: 69, rarest: 297, seconds: 9, busy: 100 }), []);
    assert.deepEqual(rx({ count: 1040, changes: 746, percent: 69, rarest: 345, seconds: 10, busy: 100 }), ALERT);
  });

  test('the same on an idle host (about two switch-outs a second): 16 sightings over 10 s', () => {
    assert.deepEqual(rx({ count: 15, changes: 14, percent: 71, rarest: 4, seconds: 11, busy: 100 }), []);
    assert.deepEqual(rx({ count: 16, changes: 8, percent: 70, rarest: 2, seconds: 11, busy: 100 }), ALERT);
  });

  test('a hasher that does not hold a core (throttled, or sleeping between hashes): cryptnono\'s 64 over 30 s', () => {
    assert.deepEqual(rx({ count: 500, changes: 300, percent: 70, rarest: 100, seconds: 29, busy: 40 }), []);
    assert.deepEqual(rx({ count: 64, changes: 16, percent: 70, rarest: 12, seconds: 30, busy: 40 }, 'java'), ALERT);
  });

  test('interval arithmetic flat out (rounds down and up, never toward zero): never, however long', () => {
    assert.deepEqual(rx({ count: 731, changes: 741, percent: 66, rarest: 0, seconds: 32, busy: 100 }), []);
    assert.deepEqual(rx({ count: 100_000, changes: 100_000, percent: 66, rarest: 1, seconds: 3600, busy: 100 }), []);
  });

  test('a numeric library\'s test program cycling the four modes for 6 s: not yet a pattern', () => {
    assert.deepEqual(rx({ count: 80, changes: 108, percent: 50, rarest: 22, seconds: 5, busy: 100 }), []);
  });

  test('a mode set now and then, or once and kept: mostly round-to-nearest, or no changes', () => {
    assert.deepEqual(rx({ count: 200, changes: 150, percent: 12, rarest: 10, seconds: 60, busy: 100 }), []);
    assert.deepEqual(rx({ count: 10_000, changes: 1, percent: 100, rarest: 0, seconds: 600, busy: 100 }), []);
  });
});

describe('the agent\'s word on the detector at start', () => {
  test('attached, and whether it kills', () => {
    assert.deepEqual(randomxState({ driver: 'ebpf', tracepoint: 'on', moneroEnabled: false, responseKill: undefined }), { attached: true, kill: 'off' });
    assert.equal(randomxState({ driver: 'ebpf', tracepoint: 'on', moneroEnabled: true, responseKill: undefined }).kill, 'on (detectors.monero.enabled)');
    assert.equal(randomxState({ driver: 'ebpf', tracepoint: 'on', moneroEnabled: false, responseKill: 'enforce' }).kill, 'on (response rule, enforce)');
    assert.equal(randomxState({ driver: 'ebpf', tracepoint: 'on', moneroEnabled: false, responseKill: 'dryrun' }).kill, 'dry run (response rule)');
  });

  test('not attached, with the reason and what to do', () => {
    const proc = randomxState({ driver: 'proc', tracepoint: undefined, moneroEnabled: true, responseKill: undefined });
    assert.equal(proc.attached, false);
    assert.match(proc.why!, /needs the eBPF driver.*proc driver/);
    assert.match(randomxState({ driver: 'ebpf', tracepoint: 'missing', moneroEnabled: false, responseKill: undefined }).why!, /no x86_fpu:x86_fpu_regs_deactivated tracepoint/);
    const off = randomxState({ driver: 'ebpf', tracepoint: 'off', moneroEnabled: false, responseKill: undefined });
    assert.match(off.why!, /RandomX Floating-Point Rounding Pattern.*detectors\.monero\.enabled.*restart/);
  });
});

describe('cryptnono\'s kill (detectors.monero.enabled)', () => {
  const match = (rule: string, pid: number, start: bigint, type = 'mw_fpu_rounding'): Match => ({
    rule, priority: 'CRITICAL', source: 'syscall', tags: [], output: '', outputFields: {}, time: 0n, hostname: 'h',
    event: { source: 'syscall', type, ts: 0n, res: 0, proc: { pid, name: 'x', start_ts: start }, fpu: { rounding_count: 20, rounding_changes: 15, busy_percent: 100 } } as SyscallEvent,
  });

  test('the RandomX rule\'s process, by pid and start time, once', () => {
    const k = new MoneroKiller();
    const q = k.requestFor(match(RANDOMX_RULE, 42, 5n));
    assert.equal(q?.action, 'kill');
    assert.equal(q?.mode, 'enforce');
    assert.equal(q?.trigger, 'monero');
    assert.equal(q?.target.pid, 42);
    assert.equal(q?.target.startTs, 5n);
    assert.deepEqual(q?.details, { rounding_count: 20, rounding_changes: 15, busy_percent: 100 });
    assert.equal(k.requestFor(match(RANDOMX_RULE, 42, 5n)), undefined, 'asked once');
    assert.equal(k.requestFor(match(RANDOMX_RULE, 42, 6n))?.target.startTs, 6n, 'the pid reused: another process');
  });

  test('other rules, and other events, are not its business', () => {
    const k = new MoneroKiller();
    assert.equal(k.requestFor(match('Known Miner Program Launched', 42, 5n)), undefined);
    assert.equal(k.requestFor(match(RANDOMX_RULE, 42, 5n, 'execve')), undefined);
  });
});
