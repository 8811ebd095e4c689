/**
 * A network namespace's /proc/net files held open (src/sources/netns-files.ts), the pids the
 * kernel may have handed out again (handedOutBetween, NetnsIndex), and the connections poller
 * closing what it holds once a namespace is gone.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { NetnsFiles, readSeqFile } from '../src/sources/netns-files.js';
import { handedOutBetween, lastPidOf, NetnsIndex } from '../src/sources/netns.js';
import { ConnectionsSource } from '../src/sources/connections.js';
import { haveCommand, isRoot, killAll } from './helpers/live.js';
import { makeEmptyNetns, removeNetns, startListener } from './helpers/netns.js';

/** This process's open descriptors whose target lies under `dir`. */
function fdsUnder(dir: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) n++;
    } catch {
      /* the readdir's own descriptor, closed since */
    }
  }
  return n;
}

/** A fake /proc: pids with a net namespace link and empty socket tables, and /proc/loadavg. */
class FakeProc {
  readonly root = mkdtempSync(join(tmpdir(), 'mw-netnsfiles-'));
  addPid(pid: number, ns: string): void {
    const d = join(this.root, String(pid));
    mkdirSync(join(d, 'ns'), { recursive: true });
    mkdirSync(join(d, 'net'), { recursive: true });
    mkdirSync(join(d, 'fd'), { recursive: true });
    symlinkSync(`net:[${ns}]`, join(d, 'ns', 'net'));
    for (const t of ['tcp', 'tcp6', 'udp', 'udp6']) writeFileSync(join(d, 'net', t), '  sl  local_address rem_address   st\n');
  }
  moveTo(pid: number, ns: string): void {
    unlinkSync(join(this.root, String(pid), 'ns', 'net'));
    symlinkSync(`net:[${ns}]`, join(this.root, String(pid), 'ns', 'net'));
  }
  /** `count` pids from `first` on, all in namespace `ns`, and a loadavg that counts them. */
  addPids(first: number, count: number, ns: string): void {
    for (let pid = first; pid < first + count; pid++) this.addPid(pid, ns);
    this.loadavg(count, first + count - 1);
  }
  /** /proc/loadavg with `tasks` tasks and `last` the last pid handed out. */
  loadavg(tasks: number, last: number): void {
    writeFileSync(join(this.root, 'loadavg'), `0.00 0.01 0.05 1/${tasks} ${last}\n`);
  }
  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A NetnsIndex over a fake /proc (listing it at most once a second), on a clock the test sets. */
function clockedIndex(fp: FakeProc, revalidateMs: number): { idx: NetnsIndex; clock: { ms: number } } {
  const clock = { ms: 0 };
  return { idx: new NetnsIndex({ procRoot: fp.root, nowMs: () => clock.ms, listMinMs: 1000, revalidateMs }), clock };
}

describe('which pids may be new processes since the last listing', () => {
  test('handedOutBetween: after `from`, up to `to`, across the wrap at pid_max', () => {
    assert.equal(handedOutBetween(600, 590, 610), true);
    assert.equal(handedOutBetween(590, 590, 610), false, '`from` itself was handed out before');
    assert.equal(handedOutBetween(610, 590, 610), true);
    assert.equal(handedOutBetween(611, 590, 610), false);
    assert.equal(handedOutBetween(100, 590, 590), false, 'no pid handed out');
    assert.equal(handedOutBetween(40000, 32000, 50), true, 'wrapped: the top of the range');
    assert.equal(handedOutBetween(20, 32000, 50), true, 'wrapped: the bottom');
    assert.equal(handedOutBetween(600, 32000, 50), false, 'wrapped: neither');
  });

  test('lastPidOf reads a taskMark', () => {
    assert.equal(lastPidOf('2345 67890'), 67890);
    assert.equal(lastPidOf(undefined), undefined);
    assert.equal(lastPidOf('2345 x'), undefined);
  });

  test('NetnsIndex re-reads the known pids a share at a time: all within revalidateMs, a moved one found, never all at once', () => {
    const fp = new FakeProc();
    try {
      fp.addPids(700, 20, '6666');
      const { idx, clock } = clockedIndex(fp, 20_000);
      assert.deepEqual(idx.refresh(false).get('6666')?.length, 20);
      assert.equal(idx.linkReads, 20, 'first sight: every pid read');
      // A process moves (setns) while nothing is created or ended: loadavg says nothing.
      fp.moveTo(713, '7777');
      let foundAt = -1;
      for (let i = 1; i <= 25 && foundAt < 0; i++) {
        clock.ms = i * 1000;
        const before: number = idx.linkReads;
        const groups = idx.refresh(false);
        // 20 pids over 20 s at one refresh a second: one re-read each time.
        assert.equal(idx.linkReads - before, 1, `refresh at ${clock.ms} ms read ${idx.linkReads - before} links`);
        if (groups.get('7777')?.includes(713)) foundAt = clock.ms;
      }
      assert.ok(foundAt > 0 && foundAt <= 20_000, `the moved pid found at ${foundAt} ms, within revalidateMs`);
      assert.equal(idx.nsOf(713), '7777');
      assert.equal(idx.groups.get('6666')?.includes(713), false);
    } finally {
      fp.remove();
    }
  });

  test('NetnsIndex\'s rolling re-read takes a new listing up after the pid it did last: pids gone below it skip none above', () => {
    const fp = new FakeProc();
    try {
      fp.addPids(800, 10, '6666');
      const { idx, clock } = clockedIndex(fp, 10_000);
      idx.refresh(false);
      // Five refreshes a second apart: 800..804 re-read.
      for (let i = 1; i <= 5; i++) {
        clock.ms = i * 1000;
        idx.refresh(false);
      }
      // 800..803 end (the listing shrinks by four below the cursor) and 806 moves.
      for (let pid = 800; pid < 804; pid++) rmSync(join(fp.root, String(pid)), { recursive: true });
      fp.loadavg(6, 809);
      fp.moveTo(806, '7777');
      clock.ms = 6000;
      idx.refresh(false); // lists anew (the mark moved); re-reads 805
      assert.equal(idx.nsOf(806), '6666', 'not re-read yet');
      // Six pids over 10 s: the next re-read is owed 1.7 s later.
      clock.ms = 7000;
      idx.refresh(false);
      assert.equal(idx.nsOf(806), '6666', 'nothing owed yet');
      clock.ms = 8000;
      idx.refresh(false);
      // An index kept into the old listing (6, wrapped to 0) would have re-read 804 here and left 806 for the next round.
      assert.equal(idx.nsOf(806), '7777', 'the pid after the one done last is next');
    } finally {
      fp.remove();
    }
  });

  test('NetnsIndex re-reads the namespace of a pid handed out again, and only of those, between full re-reads', () => {
    const fp = new FakeProc();
    try {
      fp.addPid(600, '6666');
      fp.addPid(650, '6666');
      fp.loadavg(2, 650);
      const { idx, clock } = clockedIndex(fp, 60_000);
      assert.deepEqual([...idx.refresh(false)], [['6666', [600, 650]]]);
      // pid 600 exits and a process in namespace 7777 gets its number: the last pid went round
      // from 650 to 605. pid 650 moved too (setns), which only a full re-read can know.
      fp.moveTo(600, '7777');
      fp.moveTo(650, '7777');
      fp.loadavg(2, 605);
      clock.ms = 1500;
      assert.deepEqual([...idx.refresh(false)].sort(), [['6666', [650]], ['7777', [600]]]);
      assert.deepEqual([...idx.newPids], [600], 'a reused pid counts as new (its fds are scanned first)');
      clock.ms = 61_000;
      assert.deepEqual([...idx.refresh(false)], [['7777', [600, 650]]], 'the full re-read');
    } finally {
      fp.remove();
    }
  });
});

describe('NetnsFiles over a fake /proc', () => {
  test('a pid whose namespace link names another namespace once the files are open: nothing held', () => {
    const fp = new FakeProc();
    try {
      fp.addPid(700, '7000');
      assert.equal(NetnsFiles.open(fp.root, 700, '7001', 0), undefined);
      assert.equal(fdsUnder(fp.root), 0, 'the files opened for the check are closed again');
      assert.equal(NetnsFiles.open(fp.root, 701, '7000', 0), undefined, 'no such pid');
      const files = NetnsFiles.open(fp.root, 700, '7000', 0);
      assert.ok(files);
      assert.equal(files.has('snmp'), false, 'a file the fake /proc lacks');
      assert.equal(files.read('snmp'), '');
      assert.equal(fdsUnder(fp.root), 4);
      files.close();
      assert.equal(fdsUnder(fp.root), 0);
    } finally {
      fp.remove();
    }
  });

  test('the connections poller closes a namespace\'s files once its last pid is gone, and all of them on stop', async () => {
    const fp = new FakeProc();
    try {
      fp.addPid(800, '8000');
      fp.addPid(900, '9000');
      const src = new ConnectionsSource(() => undefined, () => undefined, { procRoot: fp.root, intervalMs: 1_000_000, listMinMs: 0 });
      await src.start(() => {});
      try {
        assert.equal(src.stats.netns, 2);
        assert.equal(fdsUnder(fp.root), 8, 'tcp, tcp6, udp and udp6 of both namespaces');
        rmSync(join(fp.root, '900'), { recursive: true });
        src.poll();
        assert.equal(src.stats.netns, 1);
        assert.equal(fdsUnder(join(fp.root, '900')), 0, 'namespace 9000 let go');
        assert.equal(fdsUnder(fp.root), 4);
      } finally {
        await src.stop();
      }
      assert.equal(fdsUnder(fp.root), 0);
    } finally {
      fp.remove();
    }
  });
});

const skip = !isRoot()
  ? 'SKIPPED: needs root (ip netns add)'
  : !haveCommand('ip') || !haveCommand('nsenter')
    ? 'SKIPPED: needs iproute2 and util-linux (`apt-get install iproute2 util-linux`)'
    : false;

describe('NetnsFiles in a real network namespace (root)', { skip }, () => {
  const children: ChildProcess[] = [];
  let ns: string | undefined;
  after(() => {
    killAll(children);
    if (ns) removeNetns(ns);
  });

  test('held files go on reading their namespace after the pid they were opened through has exited', async () => {
    ns = makeEmptyNetns('nf');
    const lsn = startListener(ns, [{ port: 0, addr: '127.0.0.1' }]);
    children.push(lsn.child);
    const [port] = await lsn.ready;
    const sleeper = spawn('nsenter', [`--net=/run/netns/${ns}`, '--', 'sleep', '600'], { stdio: 'ignore' });
    children.push(sleeper);
    // nsenter execs sleep in place: the same pid, once inside the namespace.
    const nsId = await (async () => {
      for (let i = 0; i < 100; i++) {
        const link = readlinkSync(`/proc/${sleeper.pid!}/ns/net`);
        if (link !== readlinkSync('/proc/self/ns/net')) return link.slice(5, -1);
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('the sleeper never entered the namespace');
    })();
    assert.equal(NetnsFiles.open('/proc', sleeper.pid!, '1', 0), undefined, 'another namespace\'s id');
    const files = NetnsFiles.open('/proc', sleeper.pid!, nsId, 0);
    assert.ok(files, 'opened through the sleeper');
    try {
      const portHex = `:${port!.toString(16).toUpperCase().padStart(4, '0')} `;
      const listening = (text: string): boolean => text.split('\n').some((l) => l.includes(`0100007F${portHex}`) && / 0A /.test(l));
      assert.ok(listening(files.read('tcp')), 'the namespace\'s listener, through the held file');
      assert.equal(listening(readSeqFile('/proc/self/net/tcp')), false, 'not in the host\'s table');
      const gone = new Promise((r) => sleeper.once('exit', r));
      sleeper.kill('SIGKILL');
      await gone;
      assert.throws(() => readSeqFile(`/proc/${sleeper.pid!}/net/tcp`), 'the pid is gone from /proc');
      assert.ok(listening(files.read('tcp')), 'the held file still reads the namespace');
    } finally {
      files.close();
    }
  });
});
