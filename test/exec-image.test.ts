/**
 * Events that mix two images (issue 13, item 11). A pid that execs again while its /proc files
 * are being read would give `process=xmrig exepath=/usr/bin/python3.11`: comm from one image, the
 * executable from the next. The /proc reader marks the image (the executable's device and inode,
 * and comm) before and after the other files, re-reads up to 3 times when they differ, then drops
 * the read and counts it; with eBPF the kernel's own record of the exec names the image.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MAX_IMAGE_REREADS, fetchProcess, fetchProcessSync, procReadStats, readProcess, readProcessSync } from '../src/platform/procfs.js';
import { applyKernelExec } from '../src/sources/ebpf/index.js';
import type { SyscallEvent } from '../src/events.js';
import { AgentRun, compileC, writeConfig } from './helpers/agent-run.js';
import { haveCommand, isRoot } from './helpers/live.js';
import { FIXTURES } from './helpers/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'mw-msc-image-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// ---- a fake /proc whose process execs between reads ----------------------------------------------

const PID = 4321;
const STAT = (comm: string) => `${PID} (${comm}) S 1 ${PID} ${PID} 0 -1 4194304 100 0 0 0 5 3 0 0 20 0 1 0 12345 1000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n`;

/** A /proc tree with one process, and a way to turn it into another image (exec) in place. */
function fakeProc(name: string): { root: string; exec(image: 'python3.11' | 'xmrig'): void } {
  const root = join(dir, name);
  const p = join(root, String(PID));
  mkdirSync(p, { recursive: true });
  writeFileSync(join(root, 'stat'), 'cpu 0 0 0 0\nbtime 1700000000\n');
  const bin = join(root, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'python3.11'), 'python');
  writeFileSync(join(bin, 'xmrig'), 'miner');
  const exec = (image: 'python3.11' | 'xmrig'): void => {
    const comm = image === 'xmrig' ? 'xmrig' : 'python3';
    writeFileSync(join(p, 'stat'), STAT(comm));
    writeFileSync(join(p, 'comm'), `${comm}\n`);
    writeFileSync(join(p, 'cmdline'), `${image === 'xmrig' ? 'xmrig\0-o\0pool.example:3333' : 'python3\0app.py'}\0`);
    writeFileSync(join(p, 'status'), `Name:\t${comm}\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n`);
    try {
      unlinkSync(join(p, 'exe'));
    } catch {
      /* first time */
    }
    symlinkSync(join(bin, image), join(p, 'exe'));
  };
  exec('python3.11');
  return { root, exec };
}

const consistent = (r: { comm: string; exepath?: string; argv?: string[] }): boolean =>
  (r.comm === 'xmrig') === (r.exepath?.endsWith('/xmrig') ?? false) && (r.comm === 'xmrig') === (r.argv?.[0] === 'xmrig');

describe('the /proc reader: one image per read', () => {
  test('an exec between the marks is re-read: the result is the new image whole, and the retry is counted', async () => {
    for (const mode of ['async', 'sync'] as const) {
      const f = fakeProc(`once-${mode}`);
      const before = { ...procReadStats };
      let calls = 0;
      const opts = { procRoot: f.root, clkTck: 100, betweenReads: () => (calls++ === 0 ? f.exec('xmrig') : undefined) };
      const r = mode === 'async' ? await readProcess(PID, opts) : readProcessSync(PID, opts);
      assert.ok(r, mode);
      assert.equal(r.comm, 'xmrig', mode);
      assert.equal(r.exepath, join(f.root, 'bin', 'xmrig'), mode);
      assert.deepEqual(r.argv, ['xmrig', '-o', 'pool.example:3333'], mode);
      assert.equal(procReadStats.imageRereads - before.imageRereads, 1, mode);
      assert.equal(procReadStats.imageUnsettled, before.imageUnsettled, mode);
    }
  });

  test('a process that keeps exec\'ing through every re-read is dropped and counted, never half one image', async () => {
    for (const mode of ['async', 'sync'] as const) {
      const f = fakeProc(`always-${mode}`);
      const before = { ...procReadStats };
      let flip = false;
      let calls = 0;
      const opts = { procRoot: f.root, clkTck: 100, betweenReads: () => { calls++; flip = !flip; f.exec(flip ? 'xmrig' : 'python3.11'); } };
      const files = mode === 'async' ? await fetchProcess(PID, opts) : fetchProcessSync(PID, opts);
      assert.equal(files.unsettled, true, mode);
      assert.equal(files.stat, undefined, 'nothing of a mixed read is kept');
      assert.equal(calls, 1 + MAX_IMAGE_REREADS, `${mode}: the first read and ${MAX_IMAGE_REREADS} re-reads`);
      assert.equal(procReadStats.imageUnsettled - before.imageUnsettled, 1, mode);
      assert.equal(mode === 'async' ? await readProcess(PID, opts) : readProcessSync(PID, opts), undefined);
    }
  });

  test('a quiet process is read once (no re-read)', async () => {
    const f = fakeProc('quiet');
    const before = { ...procReadStats };
    const r = await readProcess(PID, { procRoot: f.root, clkTck: 100 });
    assert.ok(r && consistent(r));
    assert.equal(r.comm, 'python3');
    assert.equal(procReadStats.imageRereads, before.imageRereads);
  });
});

describe('eBPF: the kernel\'s exec record names the image', () => {
  test('/proc read after a later exec: name and exepath are the kernel\'s, the later image\'s file facts are dropped', () => {
    const procRead = { pid: 7, tid: 7, name: 'python3', exe: 'python3', exepath: '/usr/bin/python3.11', exe_sha256: 'ab'.repeat(32), exe_ino: 99, exe_upper_layer: false, exe_writable: false };
    const ev: SyscallEvent = { source: 'syscall', type: 'execve', ts: 1n, res: 0, proc: { ...procRead } };
    const k = { type: 'execve' as const, comm: 'xmrig', argv: ['./xmrig', '-o', 'pool'], exepath: '/tmp/xmrig', uid: 0, ppid: 1, startTs: 5n };
    const out = applyKernelExec(ev, k).proc;
    assert.equal(out.name, 'xmrig');
    assert.equal(out.exepath, '/tmp/xmrig');
    assert.equal(out.exe, './xmrig');
    assert.equal(out.exe_sha256, undefined);
    assert.equal(out.exe_ino, undefined);
    assert.equal(out.exe_upper_layer, undefined);
    // The same image: the /proc facts stay.
    const same = applyKernelExec({ ...ev, proc: { ...procRead, name: 'xmrig', exepath: '/tmp/xmrig' } }, k).proc;
    assert.equal(same.exe_sha256, 'ab'.repeat(32));
  });
});

// ---- live: a tight exec chain in one pid --------------------------------------------------------

const NO_ROOT = isRoot() ? undefined : 'SKIPPED: needs root (the proc connector and eBPF drivers)';
const NO_CC = haveCommand('cc') ? undefined : 'SKIPPED: needs a C compiler (cc) for the exec-chain fixture';

describe('live: an exec chain never gives an event with one image\'s comm and another\'s exepath', { skip: NO_ROOT ?? NO_CC }, () => {
  const work = join(dir, 'live');
  mkdirSync(work, { recursive: true });
  const A = join(work, 'mwchain-a');
  const B = join(work, 'mwchain-b');
  if (!NO_ROOT && !NO_CC) {
    compileC(join(FIXTURES, 'exec-chain/chain.c'), A);
    // Another inode with the same code: a different image as far as the kernel is concerned.
    copyFileSync(A, `${B}.tmp`);
    renameSync(`${B}.tmp`, B);
    chmodSync(B, 0o755);
  }
  const rules = join(work, 'chain.yaml');
  writeFileSync(rules, [
    '- rule: MSC Exec Chain Probe',
    '  desc: every exec of the two chain binaries, by name or by path',
    '  condition: evt.type in (execve, execveat) and (proc.name in (mwchain-a, mwchain-b) or proc.exepath endswith /mwchain-a or proc.exepath endswith /mwchain-b)',
    '  output: chain step (name=%proc.name exepath=%proc.exepath pid=%proc.pid)',
    '  priority: WARNING',
    '',
  ].join('\n'));

  for (const driver of ['proc', 'ebpf'] as const) {
    test(`driver ${driver}: 400 execs in one pid, each event's comm matches its exepath`, async (t) => {
      const agent = new AgentRun(writeConfig(join(work, `agent-${driver}.yaml`), {
        rules_files: [rules],
        web: { enabled: false },
        alerts: { throttle: { window_s: 0 } },
        sources: { driver, cpu: { enabled: false }, connections: { enabled: false }, dns: { hosts_files: [], static: {} } },
      }));
      try {
        const started = await agent.started().catch((e: Error) => e);
        if (started instanceof Error) {
          if (/unavailable|cannot|needs/.test(started.message)) return t.skip(`SKIPPED: the ${driver} driver cannot run here: ${started.message.split('\n')[0]}`);
          throw started;
        }
        const chain = spawn(A, ['400'], { stdio: 'ignore', env: { ...process.env, MW_CHAIN_A: A, MW_CHAIN_B: B } });
        const pid = chain.pid!;
        const code = await new Promise<number | null>((r) => chain.once('exit', (c) => r(c)));
        assert.equal(code, 0, 'the chain ran to its end');
        // The last image holds 300 ms: its event is the last to come.
        await agent.waitAlert((a) => a.output_fields['proc.pid'] === pid && String(a.output_fields['proc.exepath']).endsWith(400 % 2 === 0 ? '/mwchain-a' : '/mwchain-b') && a.output_fields['proc.name'] !== null, 20_000, 'the chain\'s events').catch(() => undefined);
        await new Promise((r) => setTimeout(r, 500));
        const mine = agent.alerts.filter((a) => a.output_fields['proc.pid'] === pid);
        t.diagnostic(`${mine.length} events for the chain's pid`);
        assert.ok(mine.length > 0, 'the chain was seen at all');
        const mixed = mine.filter((a) => {
          const name = a.output_fields['proc.name'];
          const exe = a.output_fields['proc.exepath'];
          if (name === null || exe === null) return false; // a vanished image: nothing to mix
          return !String(exe).endsWith(`/${String(name)}`);
        });
        assert.deepEqual(mixed.map((a) => a.output), [], 'events mixing two images');
      } finally {
        await agent.stop();
      }
    });
  }
});
