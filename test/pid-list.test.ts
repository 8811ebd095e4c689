/**
 * PidList and taskMark (src/sources/netns.ts): /proc is listed again only when /proc/loadavg says
 * a task was created or ended, or the list is older than its bound; over a fake procfs whose
 * loadavg the test writes, then over the real /proc.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { NetnsIndex, PidList, taskMark } from '../src/sources/netns.js';

const root = mkdtempSync(join(tmpdir(), 'mw-pidlist-'));
after(() => rmSync(root, { recursive: true, force: true }));

const loadavg = (tasks: number, lastPid: number): void => writeFileSync(join(root, 'loadavg'), `0.10 0.20 0.30 2/${tasks} ${lastPid}\n`);

test('taskMark: the task count and the last pid; undefined without a readable loadavg', () => {
  loadavg(100, 500);
  assert.equal(taskMark(root), '100 500');
  assert.equal(taskMark(join(root, 'nowhere')), undefined);
  writeFileSync(join(root, 'loadavg'), 'garbage\n');
  assert.equal(taskMark(root), undefined);
});

test('PidList: the same list while loadavg stands still, a new one when a task came or went or the list is too old', () => {
  for (const pid of ['1', '2', 'self']) mkdirSync(join(root, pid), { recursive: true });
  loadavg(100, 500);
  let now = 0;
  const list = new PidList(root, 10_000, () => now);
  assert.deepEqual(list.get(), { pids: [1, 2], listed: true });
  // A pid appears but loadavg did not move (the fake's doing): not listed again, which proves the skip.
  mkdirSync(join(root, '3'));
  assert.deepEqual(list.get(), { pids: [1, 2], listed: false });
  loadavg(101, 501); // a task was created
  assert.deepEqual(list.get().pids.sort(), [1, 2, 3]);
  rmSync(join(root, '2'), { recursive: true });
  loadavg(100, 501); // one ended: the count dropped, the last pid stands
  assert.deepEqual(list.get(), { pids: [1, 3], listed: true });
  mkdirSync(join(root, '4'));
  now = 10_000; // the bound: listed whatever loadavg says
  assert.deepEqual(list.get().pids.sort(), [1, 3, 4]);
  rmSync(join(root, 'loadavg'));
  assert.equal(list.get().listed, true, 'no loadavg: listed every time');
  assert.equal(list.get().listed, true);
});

test('PidList over the real /proc: a process started since the last call is listed', async () => {
  const list = new PidList();
  list.get();
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await new Promise((r) => child.once('spawn', r));
    const { pids, listed } = list.get();
    assert.equal(listed, true);
    assert.ok(pids.includes(child.pid!), `pid ${child.pid} not listed`);
  } finally {
    child.kill('SIGKILL');
  }
});

test('NetnsIndex keeps its groups while no task came or went, and regroups when one did', () => {
  const fake = mkdtempSync(join(tmpdir(), 'mw-pidlist-ns-'));
  try {
    const mk = (pid: number, ns: string): void => {
      mkdirSync(join(fake, String(pid), 'ns'), { recursive: true });
      // A fake ns/net: a symlink to a name in the kernel's format.
      rmSync(join(fake, String(pid), 'ns', 'net'), { force: true });
      symlinkSync(`net:[${ns}]`, join(fake, String(pid), 'ns', 'net'));
    };
    writeFileSync(join(fake, 'loadavg'), '0 0 0 1/10 100\n');
    mk(10, '111');
    let now = 0;
    const index = new NetnsIndex({ procRoot: fake, revalidateMs: 60_000, nowMs: () => now });
    assert.deepEqual([...index.refresh()], [['111', [10]]]);
    mk(11, '222');
    now = 1000;
    assert.deepEqual([...index.refresh()], [['111', [10]]], 'loadavg unchanged: the groups stand');
    writeFileSync(join(fake, 'loadavg'), '0 0 0 1/11 101\n');
    assert.deepEqual([...index.refresh()].sort(), [['111', [10]], ['222', [11]]]);
    assert.deepEqual([...index.newPids], [11]);
  } finally {
    rmSync(fake, { recursive: true, force: true });
  }
});
