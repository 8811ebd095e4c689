/**
 * The eBPF driver's ring buffer reader, live (root, BTF): the kernel wakes it only while it sleeps
 * (native/ebpf/minewatch.h, MW_READER_*), and a wake-up it needs is never missed. Each command runs
 * alone, after the reader has gone back to sleep: its records must arrive through a wake-up, not
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
  test('lone commands each reach the source through a wake-up; the reader thread has its name', async () => {
    const execs = new Set<number>();
    const src = new EbpfSource({ lookup: () => undefined, containerOf: () => undefined, wanted: () => false });
    await src.start((n: ProcNotice) => {
      if (n.kind === 'exec') execs.add(n.pid);
    });
    try {
      assert.ok(threadNames().includes('mw-ebpf-ring'), `a thread named mw-ebpf-ring among ${JSON.stringify(threadNames())}`);
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
});
