/**
 * The eBPF driver's ring buffer reader, live (root, BTF): the kernel wakes it only while it sleeps
 * (native/ebpf/minewatch.h, MW_READER_*), and a wake-up it needs is never missed. Each command runs
 * alone, after the reader (on the event loop) has gone back to sleep: its records must arrive through a wake-up, not
 * through the reader's idle timeout (which counts what it finds as missedWakeups). A protocol that
 * lost the race between the reader's last look at the ring and its sleep, or never woke it, shows
 * there; so does a lost record (its notice never comes).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { EbpfSource } from '../src/sources/ebpf/index.js';
import { loadEbpfAddon } from '../src/sources/ebpf/addon.js';
import type { ProcNotice } from '../src/sources/types.js';
import { isRoot } from './helpers/live.js';

const addon = loadEbpfAddon();
const SKIP = !isRoot()
  ? 'needs root (loading BPF programs)'
  : 'error' in addon
    ? `the eBPF driver is not built here: ${addon.error}`
    : !existsSync('/sys/kernel/btf/vmlinux')
      ? 'this kernel has no BTF (/sys/kernel/btf/vmlinux)'
      : undefined;
/** Only a bound for a failure to be reported, not a speed asserted. */
const DEADLINE = 15_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function threadNames(): string[] {
  return readdirSync('/proc/self/task').map((t) => {
    try {
      return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  });
}

/**
 * An EbpfSource with quiet records on (quietUs), and `run`: one command, alone, and what the kernel
 * said of its exec once its exit has come too. `named`: every pid a notice named (another process's
 * records may wake the reader too); `mine`: the commands' pids.
 */
async function quietSource(quietUs: number) {
  const execs = new Map<number, { sig?: number; quiet?: boolean }>();
  const exits = new Set<number>();
  const named: number[] = [];
  const mine: number[] = [];
  const src = new EbpfSource({ lookup: () => undefined, containerOf: () => undefined, wanted: () => false, quietUs });
  await src.start((n: ProcNotice) => {
    named.push(n.pid);
    if (n.kind === 'exec') execs.set(n.pid, { sig: n.exec?.sig, quiet: n.exec?.quiet });
    if (n.kind === 'exit') exits.add(n.pid);
  });
  const run = async (arg: string) => {
    const pid = spawn('/bin/true', [arg], { stdio: 'ignore' }).pid!;
    mine.push(pid);
    const deadline = Date.now() + DEADLINE;
    while (!(execs.has(pid) && exits.has(pid)) && Date.now() < deadline) await sleep(2);
    assert.ok(execs.has(pid) && exits.has(pid), `the exec and exit of ${arg} (pid ${pid}) arrived`);
    return execs.get(pid)!;
  };
  return { src, run, named, mine };
}

describe('eBPF reader: woken by the kernel only while it sleeps, never missed', { skip: SKIP }, () => {
  test('lone commands each reach the source through a wake-up, read on the event loop (no reader thread)', async () => {
    const execs = new Set<number>();
    const src = new EbpfSource({ lookup: () => undefined, containerOf: () => undefined, wanted: () => false });
    await src.start((n: ProcNotice) => {
      if (n.kind === 'exec') execs.add(n.pid);
    });
    try {
      // The ring is read on the JS thread's event loop (issue 16): a thread of its own cost a
      // hand-off per gather. An older build's reader thread was named mw-ebpf-ring.
      assert.ok(!threadNames().includes('mw-ebpf-ring'), `no reader thread among ${JSON.stringify(threadNames())}`);
      for (let i = 0; i < 8; i++) {
        // Long enough past a gather (4 ms) for the reader to be back asleep, where only a wake-up
        // brings the next command's records before its idle timeout (1 s).
        await sleep(150);
        const c = spawn('/bin/true', [`mw-reader-${i}`], { stdio: 'ignore' });
        const pid = c.pid!;
        const deadline = Date.now() + DEADLINE;
        while (!execs.has(pid) && Date.now() < deadline) await sleep(5);
        assert.ok(execs.has(pid), `the exec of command ${i} (pid ${pid}) arrived`);
      }
      const s = src.stats();
      assert.equal(s?.missedWakeups, 0, `no records were left for the idle timeout: ${JSON.stringify(s)}`);
      assert.equal(s?.queueDrops, 0);
    } finally {
      await src.stop();
    }
  });

  test('quiet records: an exec like one judged harmless twice comes marked quiet, any other not, a new epoch forgets; nothing is lost', async () => {
    const { src, run: runNow } = await quietSource(50_000);
    const run = async (arg: string) => (await sleep(100), runNow(arg));
    try {
      const first = await run('mw-quiet');
      assert.ok(first.sig! > 0 && Number.isSafeInteger(first.sig), `a signature: ${first.sig}`);
      assert.equal(first.quiet, false, 'nothing judged yet');
      const again = await run('mw-quiet');
      assert.equal(again.sig, first.sig, 'the same command, the same parent and environment: the same signature');
      src.quiet.execQuiet(first.sig!);
      src.quiet.execQuiet(first.sig!);
      assert.equal(src.quiet.marked, 1);
      for (let i = 0; i < 3; i++) assert.deepEqual(await run('mw-quiet'), { sig: first.sig, quiet: true }, `run ${i} after it was marked`);
      const other = await run('mw-loud');
      assert.notEqual(other.sig, first.sig);
      assert.equal(other.quiet, false, 'another command line');
      src.quiet.forgetQuiet(); // the rules changed
      assert.deepEqual(await run('mw-quiet'), { sig: first.sig, quiet: false }, 'judged again under the new epoch');
      const s = src.stats();
      assert.ok((s?.quietSleeps ?? 0) > 0, `the reader slept through quiet records: ${JSON.stringify(s)}`);
      assert.equal(s?.missedWakeups, 0, JSON.stringify(s));
      assert.equal(s?.drops, 0);
    } finally {
      await src.stop();
    }
  });

  test('a reader sleeping through quiet records: a quiet command waits for its timer, any other wakes it', async (t) => {
    // A long quiet sleep (1 s): each command below starts well inside the one before it began.
    const { src, run, named, mine } = await quietSource(1_000_000);
    try {
      const a = await run('mw-q2');
      const b = await run('mw-q2');
      src.quiet.execQuiet(a.sig!);
      src.quiet.execQuiet(b.sig!); // judged harmless twice: the kernel is told
      await sleep(1200); // past any quiet sleep: the reader waits for a wake-up, which any record brings
      assert.equal((await run('mw-q2')).quiet, true);
      // Now it sleeps through quiet records (its batch had nothing else).
      const w0 = src.stats()!.wakeups!;
      const from = named.length;
      // Other processes' connects, sends and DNS answers always come, and wake the reader too.
      const sysRecords = (): number => src.counts.sys + src.counts.fpu;
      const sys0 = sysRecords();
      assert.equal((await run('mw-q2')).quiet, true);
      const w1 = src.stats()!.wakeups!;
      assert.equal((await run('mw-loud2')).quiet, false);
      const w2 = src.stats()!.wakeups!;
      assert.equal(src.stats()!.missedWakeups, 0);
      const others = named.slice(from).filter((pid) => !mine.includes(pid));
      const sys = sysRecords() - sys0;
      if (others.length > 0 || sys > 0) {
        // Wake-ups are the host's, not the test's: only a silent host tells which records woke it.
        t.diagnostic(`other processes were busy meanwhile (${others.length} process notices, ${sys} syscall records): the wake-ups were not counted`);
        return;
      }
      assert.equal(w1, w0, 'the quiet command woke no one: the timer took its records');
      assert.equal(w2, w0 + 1, 'the other command woke the reader');
    } finally {
      await src.stop();
    }
  });

  test('close() from inside a batch: no batch comes after it, and the handle stays safe to use', async () => {
    assert.ok(!('error' in addon));
    let batches = 0;
    let after = 0;
    let closed = false;
    const opts = { selfTgid: process.pid, fpu: false, openRead: false, fpuMin: 2, sysFlags: new Uint8Array(512), gatherUs: 1000 };
    const handle = addon.addon.open(addon.objectPath, opts, () => {
      if (closed) after++;
      batches++;
      addon.addon.close(handle); // re-entrant: the reader's timer callback is still on the stack
      closed = true;
    });
    try {
      const deadline = Date.now() + DEADLINE;
      for (let i = 0; batches === 0 && Date.now() < deadline; i++) {
        spawn('/bin/true', [`mw-reader-close-${i}`], { stdio: 'ignore' });
        await sleep(20);
      }
      assert.equal(batches, 1, 'a batch came, and it closed the reader');
      for (let i = 0; i < 20; i++) {
        spawn('/bin/true', [`mw-reader-after-${i}`], { stdio: 'ignore' });
        await sleep(10);
      }
      await sleep(100); // past several gathers and a wake-up
      assert.equal(after, 0, 'no batch after close()');
      assert.equal(batches, 1);
      assert.equal(typeof addon.addon.stats(handle).events, 'number', 'stats() on a closed handle answers');
    } finally {
      addon.addon.close(handle); // idempotent
    }
  });
});
