/**
 * src/enrich/shared-env.ts and its use by the process table: an exec'd process whose environment
 * is its forked image's takes that image's array (issue 16: one copy per storm, not one per exec),
 * and one whose environment differs keeps its own, whole, for both the kernel-described (eBPF) and
 * the /proc-read (proc connector) exec.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessTable } from '../src/enrich/process-table.js';
import { sharedEnv } from '../src/enrich/shared-env.js';
import { UserDb } from '../src/enrich/users.js';
import { EXE_KNOWN, type KernelExecFacts, type ProcNotice } from '../src/sources/types.js';
import { FAKE_BTIME, FakeProc } from './helpers/fakeproc.js';

test('sharedEnv: the prior array for equal contents, the new one otherwise', () => {
  const prior = ['HOME=/root', 'PATH=/usr/bin'];
  assert.equal(sharedEnv(['HOME=/root', 'PATH=/usr/bin'], prior), prior);
  const longer = ['HOME=/root', 'PATH=/usr/bin', 'POOL=x'];
  assert.equal(sharedEnv(longer, prior), longer);
  const changed = ['HOME=/root', 'PATH=/tmp'];
  assert.equal(sharedEnv(changed, prior), changed);
  const reordered = ['PATH=/usr/bin', 'HOME=/root'];
  assert.equal(sharedEnv(reordered, prior), reordered);
  const mine = ['A=1'];
  assert.equal(sharedEnv(mine, undefined), mine);
  assert.deepEqual(sharedEnv([], []), []);
});

test('sharedEnv: the same two arrays again give the same answer, each pair its own', () => {
  const prior = ['HOME=/root', 'PATH=/usr/bin'];
  const same = ['HOME=/root', 'PATH=/usr/bin'];
  const other = ['HOME=/root', 'PATH=/usr/sbin'];
  for (let i = 0; i < 2; i++) {
    assert.equal(sharedEnv(same, prior), prior);
    assert.equal(sharedEnv(other, prior), other, 'equal length, other contents: its own array');
    assert.equal(sharedEnv(other, prior), other);
    assert.equal(sharedEnv(same, prior), prior);
    assert.equal(sharedEnv(same, other), same, 'the other prior: compared, not the last answer');
  }
});

const ENV = ['HOME=/home/ci', 'PATH=/usr/bin:/bin', 'RUNNER=1'];
const TS = 1_700_000_100_000_000_000n;
const exec = (pid: number): ProcNotice => ({ kind: 'exec', pid, tid: pid, ts: TS });

function setup(): { fp: FakeProc; table: ProcessTable } {
  const fp = new FakeProc();
  fp.add({ pid: 1, ppid: 0, comm: 'systemd', argv: ['/sbin/init'], exe: '/usr/lib/systemd/systemd', starttime: 1 });
  fp.add({ pid: 700, ppid: 1, comm: 'runner', argv: ['runner'], exe: '/usr/bin/runner', starttime: 300, environ: ENV });
  const table = new ProcessTable({ procRoot: fp.root, clkTck: 100, users: new UserDb({ hostRoot: fp.root }), selfPid: 999_999, kernelExecs: true, hash: false });
  table.seed();
  return { fp, table };
}

test('an exec through /proc (proc connector) with its forked image\'s environment shares its array', async () => {
  const { fp, table } = setup();
  try {
    // The runner exec'd after the agent started: its environment read with the exec.
    const runner = await table.onNotice(exec(700));
    assert.deepEqual(runner?.proc.env, ENV);
    for (const [pid, environ] of [[801, ENV], [802, [...ENV.slice(0, 2), 'RUNNER=2']]] as const) {
      await table.onNotice({ kind: 'fork', pid, tid: pid, ppid: 700, ts: TS });
      fp.add({ pid, ppid: 700, comm: 'true', argv: ['true'], exe: '/usr/bin/true', starttime: 400, environ: [...environ] });
    }
    const same = await table.onNotice(exec(801));
    assert.equal(same?.proc.env, runner?.proc.env, 'the same array as the runner\'s');
    const other = await table.onNotice(exec(802));
    assert.deepEqual(other?.proc.env, ['HOME=/home/ci', 'PATH=/usr/bin:/bin', 'RUNNER=2'], 'its own environment, whole');
    assert.deepEqual(runner?.proc.env, ENV, 'the runner\'s unchanged');
  } finally {
    table.close();
    fp.cleanup();
  }
});

test('an exec the kernel described (eBPF) with its forked image\'s environment shares its array', async () => {
  const { fp, table } = setup();
  try {
    const startTs = BigInt(FAKE_BTIME) * 1_000_000_000n + 4_000_000_000n;
    const facts = (env: string[]): KernelExecFacts => ({
      ruid: 0, euid: 0, rgid: 0, egid: 0, loginuid: undefined, vpid: 0, tty: 0,
      exeFlags: EXE_KNOWN, exeDev: 1n, exeIno: 2n, exeMtimeNs: 3n, exeCtimeNs: 4n, exeSize: 5n,
      exeMode: 0o100755, exeUid: 0, exeGid: 0, cgroupId: 1n, cgroupPath: '/', cgroup1Id: 0n, cgroup1Path: '',
      capEff: 0n, capPrm: 0n, capInh: 0n, env,
    });
    const described = (pid: number, ppid: number, env: string[]): ProcNotice => ({
      ...exec(pid), exec: { type: 'execve', comm: 'true', argv: ['true'], exepath: '/usr/bin/true', uid: 0, ppid, startTs, facts: facts(env) },
    });
    const runner = await table.onNotice(described(700, 1, [...ENV]));
    assert.deepEqual(runner?.proc.env, ENV);
    const kids = [];
    for (const [pid, env] of [[801, [...ENV]], [802, [...ENV]], [803, ['HOME=/home/ci']]] as const) {
      await table.onNotice({ kind: 'fork', pid, tid: pid, ppid: 700, ts: TS, startTs, vpid: pid });
      kids.push(await table.onNotice(described(pid, 700, [...env])));
    }
    assert.equal(kids[0]?.proc.env, runner?.proc.env, 'one array for the runner and its children');
    assert.equal(kids[1]?.proc.env, runner?.proc.env);
    assert.deepEqual(kids[2]?.proc.env, ['HOME=/home/ci'], 'a different environment stays its own');
    assert.notEqual(kids[2]?.proc.env, runner?.proc.env);
  } finally {
    table.close();
    fp.cleanup();
  }
});
