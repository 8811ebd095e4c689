import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProcNotice } from '../src/sources/types.js';
import { ProcfsPollerSource, parseStat } from '../src/sources/procfs-poller.js';
import { ROOT } from './helpers/paths.js';
import { waitFor } from './helpers/wait.js';

const PF_KTHREAD = 0x00200000;

/** A /proc/PID/stat line with all 52 fields; the ones the poller reads are parameters. */
function statLine(pid: number, comm: string, o: { ppid?: number; flags?: number; start?: number } = {}): string {
  const f = [
    'S', o.ppid ?? 1, pid, pid, 0, -1, o.flags ?? 4194560, 120, 0, 0, 0, 3, 1, 0, 0, 20, 0, 1, 0,
    o.start ?? 1000, 12345678, 400, '18446744073709551615', 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    17, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  ];
  return `${pid} (${comm}) ${f.join(' ')}\n`;
}

function parse(line: string) {
  const b = Buffer.from(line, 'latin1');
  return parseStat(b, b.length);
}

test('parseStat: comm with spaces and parentheses ends at the last ")"', () => {
  assert.deepEqual(parse(statLine(42, 'a) (b c) d', { ppid: 7, flags: 64, start: 987654 })), {
    comm: 'a) (b c) d',
    ppid: 7,
    flags: 64,
    start: 987654,
  });
  assert.equal(parse(statLine(9, ')', { start: 5 }))?.comm, ')');
  assert.equal(parse(statLine(9, '', { start: 5 }))?.comm, '');
});

test('parseStat: garbage is undefined, never a throw', () => {
  for (const g of ['', 'garbage', '1 (x', '1 (x) S', '1 (x)S 1 2 3', '1 (x) S -1 1 1 0 -1 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0',
    statLine(1, 'x').slice(0, 40), '\0\0\0\0', '1 (x) S 1 1 1 0 -1 zz 0 0 0 0 0 0 0 0 0 0 0 0 0 1000 0']) {
    assert.equal(parse(g), undefined, JSON.stringify(g));
  }
  // The real thing parses.
  const self = readFileSync('/proc/self/stat');
  const s = parseStat(self, self.length);
  assert.ok(s && s.start > 0 && s.ppid === process.ppid, 'our own stat');
});

/** A fake proc root: numeric dirs with stat, exe and cmdline, plus entries a real /proc has. */
class FakeProc {
  readonly root = mkdtempSync(join(tmpdir(), 'mw-fakeproc-'));
  constructor() {
    mkdirSync(join(this.root, 'sys'));
    writeFileSync(join(this.root, 'uptime'), '1.0 1.0\n');
    symlinkSync('1', join(this.root, 'self'));
  }
  add(pid: number, comm: string, o: { ppid?: number; flags?: number; start?: number; exe?: string; cmdline?: string } = {}): void {
    const dir = join(this.root, String(pid));
    mkdirSync(dir, { recursive: true });
    this.stat(pid, statLine(pid, comm, o));
    this.image(pid, o.exe ?? `/usr/bin/${comm}`, o.cmdline ?? `${comm}\0`);
  }
  stat(pid: number, text: string): void {
    writeFileSync(join(this.root, String(pid), 'stat'), text);
  }
  image(pid: number, exe: string, cmdline: string): void {
    const dir = join(this.root, String(pid));
    rmSync(join(dir, 'exe'), { force: true });
    symlinkSync(exe, join(dir, 'exe'));
    writeFileSync(join(dir, 'cmdline'), cmdline);
  }
  remove(pid: number): void {
    rmSync(join(this.root, String(pid)), { recursive: true, force: true });
  }
  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

function brief(ns: ProcNotice[]): string[] {
  return ns.map((n) => `${n.kind} ${n.pid}`);
}

test('fake proc root: seed is silent; new, gone, reused, exec in place, renamed, garbage and vanishing entries', async () => {
  const fake = new FakeProc();
  const got: ProcNotice[] = [];
  const poller = new ProcfsPollerSource({ procRoot: fake.root, intervalMs: 3_600_000 });
  try {
    fake.add(1, 'init', { ppid: 0, start: 1 });
    fake.add(2, 'kthreadd', { ppid: 0, flags: PF_KTHREAD, start: 1, exe: '/nonexistent' });
    fake.add(10, 'bash', { start: 100 });
    fake.add(11, 'sleep', { start: 110 });
    fake.add(12, 'cron', { start: 120 });
    await poller.start((n) => got.push(n));
    assert.equal(got.length, 0, 'processes already running make no notices');
    assert.equal(poller.size, 5);

    // A new process, with its parent; a new kernel thread is not reported.
    fake.add(20, 'xmrig', { ppid: 10, start: 500 });
    fake.add(21, 'kworker/0:1', { ppid: 2, flags: PF_KTHREAD, start: 501 });
    poller.pollOnce();
    assert.deepEqual(brief(got), ['exec 20']);
    assert.equal(got[0]!.ppid, 10);
    assert.equal(got[0]!.tid, 20);
    assert.equal(typeof got[0]!.ts, 'bigint');
    got.length = 0;

    // Gone: an exit. The kernel thread's going is not reported either.
    fake.remove(11);
    fake.remove(21);
    poller.pollOnce();
    assert.deepEqual(brief(got), ['exit 11']);
    got.length = 0;

    // Garbage in stat files of a known and of a new pid: no throw, no notice, state kept.
    for (const g of ['', 'garbage\n', '12 (cron', '12 (cron) S x y z\n', '\0\0\0']) {
      fake.stat(12, g);
      fake.add(30, 'new');
      fake.stat(30, g);
      assert.doesNotThrow(() => poller.pollOnce(), JSON.stringify(g));
      assert.deepEqual(got, [], `garbage ${JSON.stringify(g)} makes no notice`);
    }
    fake.stat(12, statLine(12, 'cron', { start: 120 }));
    fake.remove(30);
    poller.pollOnce();
    assert.deepEqual(got, [], 'cron, readable again with the same start time, is the same process');

    // Entries that vanish mid-read: a pid dir without stat (ENOENT), a stat that is a directory.
    mkdirSync(join(fake.root, '40'));
    mkdirSync(join(fake.root, '41', 'stat'), { recursive: true });
    assert.doesNotThrow(() => poller.pollOnce());
    assert.deepEqual(got, []);
    fake.remove(40);
    fake.remove(41);

    // The pid was reused by a new process (another start time): exit of the old, exec of the new.
    fake.add(10, 'sh', { start: 900, ppid: 1 });
    poller.pollOnce();
    assert.deepEqual(brief(got), ['exit 10', 'exec 10']);
    got.length = 0;

    // exec in place: the start time stays, comm and exe change.
    fake.stat(20, statLine(20, 'miner', { ppid: 10, start: 500 }));
    fake.image(20, '/tmp/.x/miner', 'miner\0-o\0pool:3333\0');
    poller.pollOnce();
    assert.deepEqual(brief(got), ['exec 20']);
    got.length = 0;

    // A rename (prctl PR_SET_NAME): comm changes, exe and cmdline do not. Not an exec.
    fake.stat(20, statLine(20, 'kswapd0', { ppid: 10, start: 500 }));
    poller.pollOnce();
    assert.deepEqual(got, []);

    // The same comm, nothing else read: no notice, and a quiet poll reports nothing.
    assert.equal(poller.pollOnce(), 0);

    // A pid dir removed between the listing and the read is a plain exit next time, not a throw.
    const held = poller.openFiles;
    assert.ok(held > 0, 'stat files are held open between polls');
    unlinkSync(join(fake.root, '12', 'stat'));
    fake.remove(12);
    poller.pollOnce();
    assert.deepEqual(brief(got), ['exit 12']);
  } finally {
    await poller.stop();
    fake.cleanup();
  }
  assert.equal(poller.openFiles, 0, 'stop() closes every held stat file');
});

test('fake proc root: an unlistable root is a clear start() error', async () => {
  const poller = new ProcfsPollerSource({ procRoot: '/nonexistent/proc' });
  await assert.rejects(poller.start(() => {}), /cannot list \/nonexistent\/proc \(ENOENT\); is proc mounted there\?/);
});

test('fake proc root: a poll never holds more stat files than maxOpenFiles', async () => {
  const fake = new FakeProc();
  const poller = new ProcfsPollerSource({ procRoot: fake.root, intervalMs: 3_600_000, maxOpenFiles: 3 });
  try {
    for (let pid = 100; pid < 110; pid++) fake.add(pid, 'p', { start: pid });
    await poller.start(() => {});
    assert.equal(poller.openFiles, 3);
    const got: ProcNotice[] = [];
    await poller.stop();
    await poller.start((n) => got.push(n));
    fake.remove(105);
    fake.stat(101, statLine(101, 'p', { start: 9999 }));
    poller.pollOnce();
    assert.deepEqual(brief(got).sort(), ['exec 101', 'exit 101', 'exit 105']);
  } finally {
    await poller.stop();
    fake.cleanup();
  }
});


function exited(child: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

test('real /proc: sees a child start and end', async () => {
  const got: ProcNotice[] = [];
  const poller = new ProcfsPollerSource({ intervalMs: 20 });
  await poller.start((n) => got.push(n));
  try {
    const child = spawn('/bin/sleep', ['0.3'], { stdio: 'ignore' });
    const pid = child.pid!;
    assert.ok(await waitFor(() => got.some((n) => n.kind === 'exec' && n.pid === pid), 2000), 'exec notice for the child');
    await exited(child);
    assert.ok(await waitFor(() => got.some((n) => n.kind === 'exit' && n.pid === pid), 2000), 'exit notice for the child');
    const exec = got.find((n) => n.kind === 'exec' && n.pid === pid)!;
    assert.equal(exec.ppid, process.pid);
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    assert.ok(exec.ts > nowNs - 10_000_000_000n && exec.ts <= nowNs + 1_000_000_000n, 'ts is ns since the epoch');
  } finally {
    await poller.stop();
  }
});

test('real /proc: an exec in an already known pid is seen', async () => {
  const comms: string[] = [];
  const poller = new ProcfsPollerSource({ intervalMs: 20 });
  let pid = -1;
  await poller.start((n) => {
    if (n.kind !== 'exec' || n.pid !== pid) return;
    try {
      comms.push(readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
    } catch {
      comms.push('?');
    }
  });
  try {
    // sh runs for 0.3 s, then becomes sleep in the same pid: the start time stays, comm changes.
    const child = spawn('/bin/sh', ['-c', 'sleep 0.3; exec /bin/sleep 0.3'], { stdio: 'ignore' });
    pid = child.pid!;
    assert.ok(await waitFor(() => comms.includes('sleep'), 3000), `exec in place seen (comms at notices: ${comms.join(', ')})`);
    assert.ok(comms.length >= 2, `first as a new process, then as an exec: ${comms.join(', ')}`);
    assert.equal(comms.at(-1), 'sleep');
    await exited(child);
  } finally {
    await poller.stop();
  }
});

test('real /proc: works without privileges (runs as nobody)', async (t) => {
  if (process.geteuid?.() !== 0) {
    t.skip('already unprivileged: the tests above are the unprivileged run');
    return;
  }
  const script = `
    const { ProcfsPollerSource } = await import(${JSON.stringify(`${ROOT}dist/src/sources/procfs-poller.js`)});
    const { spawn } = await import('node:child_process');
    const got = [];
    const p = new ProcfsPollerSource({ intervalMs: 20 });
    await p.start((n) => got.push(n));
    const c = spawn('/bin/sleep', ['0.2']);
    await new Promise((r) => c.on('exit', r));
    await new Promise((r) => setTimeout(r, 200));
    await p.stop();
    const mine = got.filter((n) => n.pid === c.pid).map((n) => n.kind);
    console.log(JSON.stringify({ uid: process.geteuid(), mine }));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, cwd: '/' });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0 && /EACCES|permission denied/i.test(err)) {
    t.skip(`nobody cannot read the build here: ${err.split('\n')[0]}`);
    return;
  }
  assert.equal(code, 0, err);
  const res = JSON.parse(out) as { uid: number; mine: string[] };
  assert.equal(res.uid, 65534);
  assert.deepEqual(res.mine, ['exec', 'exit']);
});
