/**
 * Exec recovery (src/enrich/recovery.ts) on the real /proc: after the drop counters move, a live
 * process the table never saw is found and its exec event emitted, flagged recovered; processes
 * the table knows as they are stay quiet; an event of an unknown process is filled from /proc.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import type { SyscallEvent } from '../src/events.js';
import { ProcessTable } from '../src/enrich/process-table.js';
import { ExecRecovery } from '../src/enrich/recovery.js';
import { defaultRegistry } from '../src/fields/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('after a drop, live processes the table never saw come out as recovered exec events', async () => {
  const table = new ProcessTable({ hash: false, selfPid: 999_999_999 });
  table.seed();
  let drops = 0;
  const got: SyscallEvent[] = [];
  const r = new ExecRecovery(table, { drops: () => drops, emit: (ev) => got.push(ev), checkMs: 10_000 });
  r.start();
  // Started after the seed, and no notice of it reaches the table: a lost exec.
  const child = spawn('sleep', ['31'], { stdio: 'ignore' });
  try {
    await sleep(200);
    r.check();
    await sleep(50);
    assert.equal(r.stats.scans, 0, 'no drop, no scan');
    drops = 3;
    r.check();
    await r.scan();
    const ev = got.find((e) => e.proc.pid === child.pid);
    assert.ok(ev, `the child (pid ${child.pid}) was recovered; got ${got.map((e) => `${e.proc.pid}:${e.proc.name}`).join(' ')}`);
    assert.equal(ev.type, 'execve');
    assert.equal(ev.proc.name, 'sleep');
    assert.deepEqual(ev.proc.args, ['31']);
    assert.equal(ev.proc.parent?.pid, process.pid);
    const f = defaultRegistry().resolve('syscall', 'mw.exec.recovered').extract(ev);
    assert.equal(f, true);
    // Known now, as it is: the next scan leaves it alone.
    const before = got.length;
    await r.scan();
    assert.equal(got.filter((e) => e.proc.pid === child.pid).length, 1);
    assert.ok(got.length - before < 5, 'a second scan finds (nearly) nothing new');
  } finally {
    r.stop();
    child.kill('SIGKILL');
    table.close();
  }
});

test('an event of a process the table does not know is filled from /proc, not sent bare', async () => {
  const table = new ProcessTable({ hash: false, selfPid: 999_999_999 });
  const r = new ExecRecovery(table, { drops: () => 0, emit: () => {} });
  const child = spawn('sleep', ['32'], { stdio: 'ignore' });
  try {
    await sleep(200);
    const ev: SyscallEvent = { source: 'syscall', type: 'connect', ts: 1n, proc: { pid: child.pid!, name: '' } };
    assert.equal(await r.fill(ev), true);
    assert.equal(ev.proc.name, 'sleep');
    assert.deepEqual(ev.proc.args, ['32']);
    assert.equal(ev.container?.id, 'host');
    assert.equal(await r.fill(ev), false, 'known now');
    assert.equal(defaultRegistry().resolve('syscall', 'mw.exec.recovered').extract(ev), undefined, 'not an exec');
  } finally {
    child.kill('SIGKILL');
    table.close();
  }
});

test('an exec the table took but the full queue dropped is evaluated by the next scan, once', async () => {
  const table = new ProcessTable({ hash: false, selfPid: 999_999_999 });
  const child = spawn('sleep', ['33'], { stdio: 'ignore' });
  let drops = 0;
  const got: SyscallEvent[] = [];
  const r = new ExecRecovery(table, { drops: () => drops, emit: (ev) => got.push(ev), checkMs: 10_000 });
  try {
    await sleep(200);
    // The table knows the process as it is (its exec notice was applied)...
    const applied = await table.onNotice({ kind: 'exec', pid: child.pid!, tid: child.pid!, ts: 1n });
    assert.ok(applied, 'the table read the child');
    drops = 1;
    await r.scan();
    assert.equal(got.filter((e) => e.proc.pid === child.pid).length, 0, 'known as it is: not recovered');
    // ...but the queue refused its event, so no rule saw it: the next scan evaluates it.
    r.missed(applied);
    // Another type, or another process under the pid, is not a missed exec of this one.
    r.missed({ ...applied, type: 'connect' });
    await r.scan();
    const again = got.filter((e) => e.proc.pid === child.pid);
    assert.equal(again.length, 1, 'recovered once');
    assert.equal(again[0]!.recovered, true);
    assert.equal(again[0]!.type, 'execve');
    assert.deepEqual(again[0]!.proc.args, ['33']);
    await r.scan();
    assert.equal(got.filter((e) => e.proc.pid === child.pid).length, 1, 'and not again');
  } finally {
    child.kill('SIGKILL');
    table.close();
  }
});
