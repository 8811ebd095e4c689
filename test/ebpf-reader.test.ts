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
