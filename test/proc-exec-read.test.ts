/**
 * The proc connector's exec read (native/proc_exec_read.c, src/sources/proc-exec-read.ts): the
 * addon's reader thread reads /proc for an exec as its notice arrives, and the process table
 * takes the exec whole from it. What the table makes of it must be what its own read of /proc
 * makes: nothing a rule reads may differ or go missing.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { EXE_DELETED, EXE_KNOWN, EXE_MEMFD, EXE_OVERLAY, EXE_RDONLY, type ProcessInfo } from '../src/events.js';
import { ProcessTable } from '../src/enrich/process-table.js';
import { loadNativeAddon } from '../src/platform/native-addon.js';
import { ExecRec, cgroupPaths, execFromRead, newExecReadContext, newSpans, recordSpans, statHead, statusFields } from '../src/sources/proc-exec-read.js';
import { ProcConnectorSource, type ProcConnectorOptions } from '../src/sources/proc-connector.js';
import type { ProcNotice } from '../src/sources/types.js';
import { waitFor } from './helpers/wait.js';
import { compileC } from './helpers/agent-run.js';

/** A read as the addon lays it out: u32 tag, u32 length, bytes padded to 4. */
function blob(records: Array<[number, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [tag, data] of records) {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(tag, 0);
    head.writeUInt32LE(data.length, 4);
    parts.push(head, data, Buffer.alloc((4 - (data.length % 4)) % 4));
  }
  return Buffer.concat(parts);
}

/** The records of a read by tag, as recordSpans finds them. */
function splitRecords(b: Buffer): Map<number, Buffer> {
  const { at, end } = recordSpans(b, 0, b.length, newSpans());
  const out = new Map<number, Buffer>();
  for (let tag = 0; tag < at.length; tag++) if (at[tag]! >= 0) out.set(tag, b.subarray(at[tag]!, end[tag]!));
  return out;
}

const u64s = (...v: bigint[]): Buffer => {
  const b = Buffer.alloc(v.length * 8);
  v.forEach((x, i) => b.writeBigUInt64LE(x, i * 8));
  return b;
};

const PID = 4242;
/** Status fields: ppid, ruid, euid, rgid, egid, vpid, CapInh, CapPrm, CapEff, found mask. */
const status = (found = 0x3ff): Buffer => u64s(1n, 1000n, 0n, 1000n, 0n, 17n, 0n, 0x1ffn, 0x1ffn, BigInt(found));
const statLine = `${PID} (x mi)ner) S 1 ${PID} ${PID} 34817 ${PID} 4194304 0 0 0 0 0 0 0 0 20 0 1 0 12345 1000 100 18446744073709551615 1 2 3 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n`;

function fullRead(extra: Array<[number, Buffer]> = [], fsType = 0xef53n, fsFlags = 0n, link = '/usr/bin/xmrig'): Buffer {
  return blob([
    [ExecRec.stat, Buffer.from(statLine)],
    [ExecRec.exeLink, Buffer.from(link)],
    [ExecRec.exeFs, u64s(fsType, fsFlags)],
    [ExecRec.statusFields, status()],
    [ExecRec.cmdline, Buffer.from('xmrig\0-o\0pool.example:3333\0')],
    [ExecRec.environ, Buffer.from('HOME=/root\0WALLET=44abc\0')],
    [ExecRec.loginuid, Buffer.from('1000')],
    [ExecRec.cgroup, Buffer.from('12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/system.slice/x.service\n')],
    ...extra,
    [ExecRec.exeStat, u64s(2049n, 777n, 0o100755n, 0n, 0n, 4096n, 11n, 22n)],
  ]);
}

test('records, cgroup paths and status fields as the addon writes them', () => {
  const r = splitRecords(fullRead());
  assert.equal(r.get(ExecRec.exeLink)?.toString(), '/usr/bin/xmrig');
  assert.equal(r.size, 9);
  assert.deepEqual(splitRecords(Buffer.concat([fullRead(), Buffer.from([1, 0, 0, 0, 99, 0])])).size, 9, 'a torn record at the end is left out');
  assert.deepEqual(cgroupPaths('12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/system.slice/x.service\n'), { v2: '/system.slice/x.service', v1: '/docker/abc' });
  assert.deepEqual(cgroupPaths('0::/\n'), { v2: '/', v1: '' });
  assert.deepEqual(cgroupPaths('4:memory:/kubepods/pod1/c1\n3:cpu:/\n'), { v2: '', v1: '/kubepods/pod1/c1' }, 'cpu at its root: memory names the container');
  assert.equal(statusFields(status(0x3ff & ~(1 << 2)))?.euid, undefined, 'no Uid line: not usable');
  assert.equal(statusFields(status(0x3ff & ~(1 << 5)))?.vpid, undefined, 'no NStgid (old kernel): the pid stands in');
});

test('a whole read is the exec the kernel would have described; a partial one is left to the table', () => {
  const ctx = newExecReadContext();
  const k = execFromRead(PID, fullRead(), ctx);
  assert.ok(k?.facts);
  assert.equal(k.comm, 'x mi)ner', 'comm up to the last parenthesis');
  assert.deepEqual(k.argv, ['xmrig', '-o', 'pool.example:3333']);
  assert.equal(k.exepath, '/usr/bin/xmrig');
  assert.equal(k.uid, 0, 'the effective uid');
  assert.equal(k.ppid, 1);
  const f = k.facts;
  assert.deepEqual([f.ruid, f.euid, f.rgid, f.egid, f.vpid, f.tty, f.loginuid], [1000, 0, 1000, 0, 17, 34817, 1000]);
  assert.deepEqual(f.env, ['HOME=/root', 'WALLET=44abc']);
  assert.equal(f.exeFlags, EXE_KNOWN);
  assert.deepEqual([f.exeDev, f.exeIno, f.exeMode, f.exeSize, f.exeMtimeNs, f.exeCtimeNs], [2049n, 777n, 0o100755, 4096n, 11n, 22n]);
  assert.equal(f.cgroupPath, '/system.slice/x.service');
  assert.equal(f.cgroup1Path, '/docker/abc');
  assert.notEqual(f.cgroupId, 0n, 'an id, so the table caches the container');
  assert.equal(execFromRead(PID, fullRead(), ctx)?.facts?.cgroupId, f.cgroupId, 'the same path, the same id');
  assert.equal(execFromRead(PID, fullRead([], 0xef53n, 1n), ctx)?.facts?.exeFlags, EXE_KNOWN | EXE_RDONLY, 'a read-only mount');
  assert.equal(execFromRead(PID, fullRead([], 0xef53n, 0n, '/memfd:x (deleted)'), ctx)?.facts?.exeFlags, EXE_KNOWN | EXE_MEMFD | EXE_DELETED);
  assert.equal(execFromRead(PID, fullRead([], 0xef53n, 0n, '/tmp/m (deleted)'), ctx)?.exepath, '/tmp/m');

  // Each record the table cannot do without: its absence leaves the exec to the table's own read.
  for (const tag of [ExecRec.stat, ExecRec.statusFields, ExecRec.cmdline, ExecRec.exeLink, ExecRec.exeStat, ExecRec.exeFs, ExecRec.cgroup]) {
    const r = splitRecords(fullRead());
    r.delete(tag);
    assert.equal(execFromRead(PID, blob([...r]), ctx), undefined, `without record ${tag}`);
  }
  assert.equal(execFromRead(PID + 1, fullRead(), ctx), undefined, 'another pid\'s stat');
  // An exe on an overlay whose layer cannot be told (no mount table to read here): left to the table.
  const overlay = execFromRead(PID, fullRead([[ExecRec.rootLink, Buffer.from('/')], [ExecRec.mntnsLink, Buffer.from('mnt:[1]')]], 0x794c7630n), ctx);
  assert.ok(overlay === undefined || (overlay.facts!.exeFlags & EXE_OVERLAY) !== 0);
  assert.equal(execFromRead(PID, fullRead([], 0x794c7630n), ctx), undefined, 'overlay without root and namespace');
});

test('the same command line and environment again give the same arrays; other bytes give their own', () => {
  const ctx = newExecReadContext();
  const a = execFromRead(PID, fullRead(), ctx)!;
  const b = execFromRead(PID, fullRead(), ctx)!;
  assert.equal(b.argv, a.argv, 'one array for the same cmdline bytes');
  assert.equal(b.facts!.env, a.facts!.env, 'one array for the same environ bytes');
  const other = blob([...splitRecords(fullRead())].map(([tag, data]): [number, Buffer] =>
    tag === ExecRec.cmdline ? [tag, Buffer.from('xmrig\0-o\0pool.example:4444\0')] : tag === ExecRec.environ ? [tag, Buffer.from('HOME=/root\0WALLET=55def\0')] : [tag, data]));
  const c = execFromRead(PID, other, ctx)!;
  assert.deepEqual(c.argv, ['xmrig', '-o', 'pool.example:4444']);
  assert.deepEqual(c.facts!.env, ['HOME=/root', 'WALLET=55def']);
  // The cache holds a copy: the addon's buffer changing under it does not change what it compares.
  const reused = fullRead();
  const d = execFromRead(PID, reused, ctx)!;
  reused.fill(0);
  assert.equal(execFromRead(PID, fullRead(), ctx)!.argv, d.argv, 'still a hit after the read it came from was overwritten');
  assert.deepEqual(d.argv, ['xmrig', '-o', 'pool.example:3333']);
});

test('a read in the middle of the batch buffer decodes as it does alone; each record\'s own bytes give its values', () => {
  const ctx = newExecReadContext();
  const alone = execFromRead(PID, fullRead(), ctx)!;
  // The addon hands a batch's reads back to back in one Buffer.
  const other = fullRead([], 0xef53n, 0n, '/usr/bin/other');
  const batch = Buffer.concat([other, fullRead(), other]);
  const mid = execFromRead(PID, batch, newExecReadContext(), other.length, other.length + fullRead().length)!;
  assert.deepEqual({ ...mid, facts: { ...mid.facts } }, { ...alone, facts: { ...alone.facts } });
  assert.equal(execFromRead(PID, batch, ctx, 0, other.length)?.exepath, '/usr/bin/other');
  assert.equal(execFromRead(PID, batch, ctx, other.length, other.length + 40), undefined, 'a read cut short is not whole');

  // The caches key on bytes: another exe stat, other capabilities, another loginuid give theirs.
  const swap = (tag: number, data: Buffer): Buffer => blob([...splitRecords(fullRead())].map(([t, d]): [number, Buffer] => (t === tag ? [t, data] : [t, d])));
  const st = execFromRead(PID, swap(ExecRec.exeStat, u64s(2050n, 778n, 0o100700n, 5n, 6n, 8192n, 33n, 44n)), ctx)!.facts!;
  assert.deepEqual([st.exeDev, st.exeIno, st.exeMode, st.exeUid, st.exeGid, st.exeSize, st.exeMtimeNs, st.exeCtimeNs], [2050n, 778n, 0o100700, 5, 6, 8192n, 33n, 44n]);
  const caps = execFromRead(PID, swap(ExecRec.statusFields, u64s(1n, 1000n, 0n, 1000n, 0n, 17n, 1n, 2n, 0x3fffffffffn, 0x3ffn)), ctx)!.facts!;
  assert.deepEqual([caps.capInh, caps.capPrm, caps.capEff], [1n, 2n, 0x3fffffffffn]);
  assert.equal(execFromRead(PID, swap(ExecRec.loginuid, Buffer.from('4294967295')), ctx)!.facts!.loginuid, undefined, 'unset');
  assert.equal(execFromRead(PID, swap(ExecRec.loginuid, Buffer.from('0\n')), ctx)!.facts!.loginuid, 0);
  assert.equal(execFromRead(PID, swap(ExecRec.loginuid, Buffer.from('x')), ctx)!.facts!.loginuid, undefined, 'not a number');
});

test('a cgroup path gets an id no other path ever had, even once the ids are forgotten', () => {
  const ctx = newExecReadContext();
  const withCgroup = (text: string): Buffer => blob([...splitRecords(fullRead())].map(([tag, d]): [number, Buffer] => [tag, tag === ExecRec.cgroup ? Buffer.from(text) : d]));
  const victim = execFromRead(PID, withCgroup('0::/system.slice/victim.service\n'), ctx)!.facts!.cgroupId;
  // The map is full: the next new path clears it.
  for (let i = ctx.cgroupIds.size; i < 65536; i++) ctx.cgroupIds.set(`2:/filler/${i}`, BigInt(-1 - i));
  const other = execFromRead(PID, withCgroup('0::/system.slice/other.service\n'), ctx)!.facts!.cgroupId;
  assert.equal(ctx.cgroupIds.size, 1, 'cleared');
  assert.notEqual(other, victim);
  assert.equal(execFromRead(PID, withCgroup('0::/system.slice/victim.service\n'), ctx)!.facts!.cgroupId, victim, 'still cached by its bytes');
});

test('statHead reads pid, comm, ppid, tty and start time from the bytes of a stat line', () => {
  const b = Buffer.from(`xx${statLine}yy`);
  const h = statHead(b, 2, 2 + Buffer.byteLength(statLine));
  assert.ok(h);
  assert.deepEqual([h.pid, b.toString('utf8', h.commFrom, h.commTo), h.ppid, h.tty, h.starttime], [PID, 'x mi)ner', 1, 34817, 12345]);
  const line = (s: string): ReturnType<typeof statHead> => statHead(Buffer.from(s), 0, Buffer.byteLength(s));
  assert.equal(line('12 (sh) S 1 12 12 0'), undefined, 'cut before starttime');
  assert.equal(line('12 sh S 1 12 12 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 77'), undefined, 'no comm');
  assert.equal(line('x2 (sh) S 1 12 12 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 77'), undefined, 'no pid');
  assert.equal(line('12 (sh) S 1 12 12 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 7x7')?.starttime, undefined, 'a start time that is not a number');
  assert.equal(line('12 (sh) S 1 12 12 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 77\n')?.starttime, 77);
});

function whyNotLive(): string | undefined {
  if (process.platform !== 'linux') return 'Linux only';
  const l = loadNativeAddon();
  if ('error' in l) return `the native addon is not built (${l.error}); build it with npm rebuild minewatch`;
  if (!l.addon.readExec) return 'the native addon predates readExec; rebuild it (npm rebuild minewatch)';
  return undefined;
}

/**
 * A started proc connector source with these options, and every notice it hands on; undefined,
 * the test skipped with the reason, where it cannot run (or `more` says why not).
 */
async function liveSource(t: TestContext, opts: ProcConnectorOptions, more?: string): Promise<{ src: ProcConnectorSource; got: ProcNotice[] } | undefined> {
  const why = whyNotLive() ?? more;
  if (why) {
    t.skip(why);
    return undefined;
  }
  const src = new ProcConnectorSource(opts);
  const got: ProcNotice[] = [];
  try {
    await src.start((n) => got.push(n));
  } catch (e) {
    t.skip(`the proc connector cannot run here: ${(e as Error).message}`);
    return undefined;
  }
  return { src, got };
}

/** What a rule can read of the entry: its parent aside, and a key set to undefined the same as one left out. */
const strip = (p: ProcessInfo): Record<string, unknown> => {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) if (k !== 'parent' && v !== undefined) o[k] = v;
  return o;
};

test('live: the table makes of the addon\'s read exactly what it makes of its own read of /proc', async (t) => {
  const why = whyNotLive();
  if (why) return t.skip(why);
  const l = loadNativeAddon();
  assert.ok('addon' in l && typeof l.addon.readExec === 'function');
  const child: ChildProcess = spawn('/bin/sleep', ['30'], { stdio: 'ignore', cwd: '/tmp', env: { PATH: '/usr/bin:/bin', WALLET: '44example' } });
  try {
    await new Promise((r) => setTimeout(r, 200));
    const pid = child.pid!;
    const read = l.addon.readExec(pid);
    assert.ok(read, 'a running process reads whole');
    const k = execFromRead(pid, read, newExecReadContext());
    assert.ok(k?.facts, 'and makes a whole exec');
    const own = new ProcessTable({ hash: false });
    const fed = new ProcessTable({ hash: false });
    own.seed();
    fed.seed();
    const a = await own.onNotice({ kind: 'exec', pid, tid: pid, ts: 1n });
    const b = await fed.onNotice({ kind: 'exec', pid, tid: pid, ts: 1n, exec: k });
    own.close();
    fed.close();
    assert.ok(a && b);
    assert.deepEqual(strip(b.proc), strip(a.proc));
    assert.deepEqual(b.container, a.container);
    assert.equal(b.proc.parent?.pid, a.proc.parent?.pid);
    assert.ok(b.proc.env?.includes('WALLET=44example'));
    assert.equal(fed.stats.described, 1, 'the table read nothing');
  } finally {
    child.kill('SIGKILL');
  }
  assert.equal(l.addon.readExec(2 ** 30), null, 'no such process: null');
});

test('live: through the source, a real exec arrives whole, and one already gone still arrives', async (t) => {
  const live = await liveSource(t, {});
  if (!live) return;
  const { src, got } = live;
  const long = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
  const short = spawn('/bin/true', [], { stdio: 'ignore' });
  try {
    const ok = await waitFor(() => got.some((n) => n.kind === 'exec' && n.pid === long.pid) && got.some((n) => n.kind === 'exit' && n.pid === short.pid), 5000);
    assert.ok(ok, 'both execs noticed');
    const exec = got.find((n) => n.kind === 'exec' && n.pid === long.pid)!;
    assert.deepEqual(exec.exec?.argv, ['/bin/sleep', '30']);
    assert.equal(exec.exec?.comm, 'sleep');
    assert.ok(exec.exec?.facts, 'read whole on arrival');
    // Gone before or while it was read: the notice comes all the same, whole or bare (the table then reads what is left).
    const gone = got.find((n) => n.kind === 'exec' && n.pid === short.pid);
    assert.ok(gone, 'the exec of a process already gone is not lost');
    if (gone.exec) assert.deepEqual(gone.exec.argv, ['/bin/true']);
    assert.ok(src.execReadStats.whole >= 1);
  } finally {
    long.kill('SIGKILL');
    await src.stop();
  }
});

/** A shell that sets its own loginuid (needs CAP_AUDIT_CONTROL, and a loginuid not made immutable), then execs `sleep 30`. */
function withLoginuid(uid: number): { child: ChildProcess; ready: Promise<boolean> } {
  const child = spawn('/bin/sh', ['-c', `echo ${uid} > /proc/self/loginuid || exit 3; exec /bin/sleep 30`], { stdio: 'ignore' });
  const ready = waitFor(() => {
    try {
      return readFileSync(`/proc/${child.pid}/cmdline`, 'latin1').startsWith('/bin/sleep');
    } catch {
      return false;
    }
  }, 5000);
  return { child, ready };
}

test('live: loginuid is read with an exec only while asked for; asked for, a read made before is left to the table', async (t) => {
  const live = await liveSource(t, { readLoginuid: false });
  if (!live) return;
  const { src, got } = live;
  const started: ChildProcess[] = [];
  try {
    /** The sleep's exec as the source hands it on; null when the shell could not set its loginuid. */
    const execOf = async (uid: number): Promise<ProcNotice | null> => {
      const p = withLoginuid(uid);
      started.push(p.child);
      if (!(await p.ready)) return null;
      const mine = (n: ProcNotice): boolean => n.kind === 'exec' && n.pid === p.child.pid && n.exec?.argv[0] === '/bin/sleep';
      assert.ok(await waitFor(() => got.some(mine), 5000), `the exec of pid ${p.child.pid} arrives whole`);
      return got.find(mine)!;
    };
    const off = await execOf(4242);
    if (off === null) return t.skip('this process cannot set a loginuid (no CAP_AUDIT_CONTROL, or loginuid_immutable)');
    assert.equal(src.readsLoginuid, false);
    assert.ok(off.exec?.facts, 'read whole without it');
    assert.equal(off.exec.facts.loginuidUnread, true, 'not read');
    src.setReadLoginuid(true);
    assert.equal(src.readsLoginuid, true);
    const on = await execOf(4243);
    assert.equal(on?.exec?.facts?.loginuid, 4243, 'read once asked for');
    assert.equal(on.exec.facts.loginuidUnread, false);

    // The addon's read of the same process, with and without it.
    const l = loadNativeAddon();
    assert.ok(!('error' in l) && l.addon.readExec);
    const pid = started[1]!.pid!;
    assert.equal(splitRecords(l.addon.readExec(pid, false)!).has(ExecRec.loginuid), false);
    assert.equal(splitRecords(l.addon.readExec(pid, true)!).get(ExecRec.loginuid)?.toString(), '4243');
  } finally {
    for (const c of started) c.kill('SIGKILL');
    await src.stop();
  }
  // A read without the record while it is wanted (made before the switch): the table's own read takes over.
  const ctx = newExecReadContext();
  const without = blob([...splitRecords(fullRead())].filter(([tag]) => tag !== ExecRec.loginuid));
  assert.equal(execFromRead(PID, without, ctx), undefined);
  ctx.wantLoginuid = false;
  assert.equal(execFromRead(PID, without, ctx)?.facts?.loginuid, undefined);
  assert.equal(execFromRead(PID, blob([...splitRecords(fullRead())].map(([tag, d]): [number, Buffer] => [tag, tag === ExecRec.loginuid ? Buffer.alloc(0) : d])), newExecReadContext())?.facts?.loginuid, undefined, 'asked for but unreadable: an empty record, unset');
});

test('live: the table reads again the loginuid of every live process it entered without one', async (t) => {
  const why = whyNotLive();
  if (why) return t.skip(why);
  const p = withLoginuid(4244);
  try {
    if (!(await p.ready)) return t.skip('this process cannot set a loginuid (no CAP_AUDIT_CONTROL, or loginuid_immutable)');
    const pid = p.child.pid!;
    const l = loadNativeAddon();
    assert.ok(!('error' in l) && l.addon.readExec);
    const ctx = newExecReadContext();
    ctx.wantLoginuid = false;
    const exec = execFromRead(pid, l.addon.readExec(pid, false)!, ctx);
    assert.ok(exec?.facts);
    assert.equal(exec.facts.loginuidUnread, true);
    // Not seeded: the table has no forked entry to take it from.
    const table = new ProcessTable({ kernelExecs: true });
    await table.onNotice({ kind: 'exec', pid, tid: pid, ts: 1n, exec });
    const before = table.get(pid);
    assert.equal(before?.loginuid, -1, 'entered from a read without loginuid, and no parent entry to take it from');
    assert.ok(table.refreshLoginuids() >= 1);
    assert.equal(table.get(pid)?.loginuid, 4244);
    assert.equal(before.loginuid, -1, 'a new object: what was handed out before keeps its value');
  } finally {
    p.child.kill('SIGKILL');
  }
});

test('live: the exe\'s filesystem is told per mount: the same file through a read-only bind mount reads read-only', async (t) => {
  const why = whyNotLive() ?? (process.getuid?.() === 0 ? undefined : 'needs root to bind-mount');
  if (why) return t.skip(why);
  const dir = mkdtempSync(join(tmpdir(), 'mw-fs-'));
  const rw = join(dir, 'rw');
  const ro = join(dir, 'ro');
  mkdirSync(rw);
  mkdirSync(ro);
  copyFileSync('/bin/sleep', join(rw, 'sleepy'));
  const mount = (args: string[]): boolean => spawnSync('mount', args, { stdio: 'ignore' }).status === 0;
  if (!mount(['--bind', rw, ro])) {
    rmSync(dir, { recursive: true, force: true });
    return t.skip('mount --bind is not allowed here');
  }
  const kids: ChildProcess[] = [];
  try {
    assert.ok(mount(['-o', 'remount,bind,ro', ro]), 'remount read-only');
    const l = loadNativeAddon();
    assert.ok(!('error' in l) && l.addon.readExec);
    const flagsOf = async (path: string): Promise<number | undefined> => {
      const c = spawn(path, ['30'], { stdio: 'ignore' });
      kids.push(c);
      assert.ok(await waitFor(() => readFileSync(`/proc/${c.pid}/cmdline`, 'latin1').startsWith(path), 5000));
      return execFromRead(c.pid!, l.addon.readExec!(c.pid!)!, newExecReadContext())?.facts?.exeFlags;
    };
    // Alternately, within the cache's second: each mount keeps its own answer.
    for (let i = 0; i < 2; i++) {
      assert.equal(((await flagsOf(join(rw, 'sleepy'))) ?? 0) & EXE_RDONLY, 0, 'through the writable mount');
      assert.equal(((await flagsOf(join(ro, 'sleepy'))) ?? 0) & EXE_RDONLY, EXE_RDONLY, 'through the read-only mount');
    }
  } finally {
    for (const c of kids) c.kill('SIGKILL');
    await Promise.all(kids.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.once('exit', r)))));
    spawnSync('umount', [ro], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A process that rewrites its whole argument area, the last NUL too, as setproctitle(3) does. */
const RETITLE_C = `
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  char *end = argv[argc - 1] + strlen(argv[argc - 1]);
  memset(argv[0], 'T', (size_t)(end - argv[0]) + 1);
  write(1, "ready\\n", 6);
  sleep(30);
  return 0;
}
`;

test('live: cmdline and environ as the read takes them (from the process\'s memory) are the bytes of the files; a process that rewrote its arguments is read as its cmdline file reads', async (t) => {
  const why = whyNotLive();
  if (why) return t.skip(why);
  if (spawnSync('cc', ['--version']).status !== 0) return t.skip('no C compiler (cc) to build the test process');
  const l = loadNativeAddon();
  assert.ok('addon' in l && l.addon.readExec);
  const dir = mkdtempSync(join(tmpdir(), 'mw-retitle-'));
  writeFileSync(join(dir, 'retitle.c'), RETITLE_C);
  compileC(join(dir, 'retitle.c'), join(dir, 'retitle'));
  const plain = spawn('/bin/sleep', ['30'], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin', BIG: 'x'.repeat(70_000), E: '' } });
  const retitled = spawn(join(dir, 'retitle'), ['one', 'two'], { stdio: ['ignore', 'pipe', 'ignore'], env: { NEXT: 'env-after-args', X: 'y' } });
  try {
    await new Promise((r) => retitled.stdout!.once('data', r));
    await waitFor(() => readFileSync(`/proc/${plain.pid}/cmdline`).length > 0, 2000);
    for (const child of [plain, retitled]) {
      const pid = child.pid!;
      const read = l.addon.readExec(pid);
      assert.ok(read, `pid ${pid} reads whole`);
      const r = splitRecords(read);
      assert.deepEqual(r.get(ExecRec.cmdline), readFileSync(`/proc/${pid}/cmdline`), `cmdline of pid ${pid}`);
      assert.deepEqual(r.get(ExecRec.environ), readFileSync(`/proc/${pid}/environ`), `environ of pid ${pid}`);
    }
    assert.match(readFileSync(`/proc/${retitled.pid}/cmdline`, 'latin1'), /^T+NEXT=env-after-args\0$/, 'the kernel reads on into the environment');
  } finally {
    plain.kill('SIGKILL');
    retitled.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a read without status (the ids only, from a stat of /proc/PID) gives the ids and says the rest is unread; while status is wanted, such a read is left to the table', () => {
  // ppid, ruid, euid, rgid, egid, vpid, CapInh, CapPrm, CapEff, found: euid and egid only.
  const idsOnly = u64s(0n, 0n, 1001n, 0n, 1002n, 0n, 0n, 0n, 0n, BigInt((1 << 2) | (1 << 4)));
  const read = blob([...splitRecords(fullRead())].map(([tag, d]): [number, Buffer] => [tag, tag === ExecRec.statusFields ? idsOnly : d]));
  const ctx = newExecReadContext();
  assert.equal(execFromRead(PID, read, ctx), undefined, 'wanted: a read made before the switch');
  ctx.wantStatus = false;
  const f = execFromRead(PID, read, ctx)?.facts;
  assert.ok(f);
  assert.deepEqual([f.euid, f.egid, f.ruid, f.rgid, f.statusUnread], [1001, 1002, undefined, undefined, true]);
  assert.equal(execFromRead(PID, fullRead(), ctx)?.facts?.statusUnread, false, 'a whole status is taken whenever it comes');
  // Part of status, not the ids-only record: broken, left to the table.
  assert.equal(execFromRead(PID, blob([...splitRecords(fullRead())].map(([tag, d]): [number, Buffer] => [tag, tag === ExecRec.statusFields ? status(0x3ff & ~(1 << 6)) : d])), ctx), undefined);
});

test('live: without status, the reader takes the effective ids from /proc/PID (as status says them), the table leaves the capabilities unknown, guesses the vpid from the forked entry, and reads status again when asked', async (t) => {
  const live = await liveSource(t, { readStatus: false }, process.getuid?.() === 0 ? undefined : 'needs root: a process of another uid');
  if (!live) return;
  const { src, got } = live;
  const started: ChildProcess[] = [];
  try {
    /** A sleep of uid 65534 and gid 65533, and its exec as the source hands it on. */
    const sleepOf = async (): Promise<{ pid: number; exec: ProcNotice }> => {
      const child = spawn('/bin/sleep', ['30'], { stdio: 'ignore', uid: 65534, gid: 65533 });
      started.push(child);
      const mine = (n: ProcNotice): boolean => n.kind === 'exec' && n.pid === child.pid && n.exec?.argv[0] === '/bin/sleep';
      assert.ok(await waitFor(() => got.some(mine), 5000), `the exec of pid ${child.pid} arrives whole`);
      return { pid: child.pid!, exec: got.find(mine)! };
    };
    const off = await sleepOf();
    assert.equal(src.readsStatus, false);
    const f = off.exec.exec?.facts;
    assert.ok(f);
    assert.deepEqual([f.euid, f.egid, f.statusUnread], [65534, 65533, true]);
    const text = readFileSync(`/proc/${off.pid}/status`, 'utf8');
    assert.match(text, /^Uid:\s+65534\s+65534\s/m);
    assert.match(text, /^Gid:\s+65533\s+65533\s/m);
    assert.ok(src.setReadStatus(true));
    assert.equal(src.readsStatus, true);
    const on = await sleepOf();
    assert.equal(on.exec.exec?.facts?.statusUnread, false, 'read once asked for');
    assert.equal(on.exec.exec.facts.vpid, on.pid);

    // The table: the process seeded from /proc, then its unread exec.
    const table = new ProcessTable({ kernelExecs: true });
    table.seed();
    assert.ok(table.get(off.pid)?.cap_effective !== undefined, 'seeded from status');
    await table.onNotice({ ...off.exec, kind: 'exec' } as ProcNotice);
    const entered = table.get(off.pid);
    assert.equal(entered?.uid, 65534);
    assert.equal(entered.cap_effective, undefined, 'unknown, not "none"');
    assert.equal(entered.vpid, off.pid, 'the seeded entry sees itself by its pid: so does its exec');
    // An alert's process: completed in place, for the stored event, while still the same process.
    const alerted = new ProcessTable({ kernelExecs: true });
    alerted.seed();
    await alerted.onNotice({ ...off.exec, kind: 'exec' } as ProcNotice);
    const info = alerted.get(off.pid)!;
    assert.equal(info.cap_effective, undefined);
    alerted.completeStatus(info);
    assert.equal(info.cap_effective, '', 'uid 65534 holds no capability');
    const gone = { ...info, cap_effective: undefined, start_ts: info.start_ts! + 1n };
    alerted.completeStatus(gone);
    assert.equal(gone.cap_effective, undefined, 'another start time: another process, left alone');
    alerted.close();
    assert.ok(table.refreshStatus() >= 1);
    assert.equal(table.get(off.pid)?.cap_effective, '', 'read again: uid 65534 holds no capability');
    assert.equal(entered.cap_effective, undefined, 'a new object: what was handed out before keeps its value');
    table.close();
  } finally {
    for (const c of started) c.kill('SIGKILL');
    await src.stop();
  }
});
