/**
 * CpuSampler: parsing, cgroup discovery, limits and hysteresis over a fake /proc and a fake cgroup
 * tree with a fake clock (deterministic: the test drives time and each sample), then real
 * processes on this machine: a busy loop is reported once, an idle process never, and (as root
 * with cgroup v1 cpu/cpuacct) a busy process inside a CPU-limited cgroup as a container.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import type { ContainerInfo, Event, ProcessInfo, SyscallEvent } from '../src/events.js';
import {
  CpuSampler, type CpuSamplerOptions, discoverCgroupMounts, parseCgroupFile, parseCpuMax, parseMachineTimes, parseProcStat,
} from '../src/sources/cpu-sampler.js';
import { hostContainer, isRoot, killAll, procLookup, sleep, waitForEvent } from './helpers/live.js';

// ---- parsing -----------------------------------------------------------------------------------

describe('cpu sampler: parsing', () => {
  test('/proc/PID/stat: comm with spaces and parentheses; utime + stime; starttime', () => {
    const line = '4242 (my (evil) proc) R 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 3 0 987654 1000000 200 18446744073709551615\n';
    assert.deepEqual(parseProcStat(line), { comm: 'my (evil) proc', ppid: 1, ticks: 1290, starttime: 987654 });
    assert.equal(parseProcStat('garbage'), undefined);
  });

  test('/proc/PID/cgroup: v1 controllers alone or together, v2, deleted cgroups', () => {
    assert.deepEqual(parseCgroupFile('12:memory:/x\n4:cpu,cpuacct:/kubepods/pod1/abc\n0::/\n'), {
      cpu: '/kubepods/pod1/abc', cpuacct: '/kubepods/pod1/abc', unified: '/',
    });
    assert.deepEqual(parseCgroupFile('2:cpuacct:/a\n1:cpu:/b\n'), { cpuacct: '/a', cpu: '/b' });
    assert.deepEqual(parseCgroupFile('0::/system.slice/x.service (deleted)\n'), { unified: '/system.slice/x.service' });
  });

  test('/proc/stat: busy (user + nice + system + irq + softirq), idle (idle + iowait) and the CPUs listed', () => {
    assert.deepEqual(parseMachineTimes('cpu  657245 470 217122 1536964 6725 10 5584 20984 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 1 2 3 4 5 6 7 8 9 10\nintr 0\n'),
      { busy: 657245 + 470 + 217122 + 10 + 5584, idle: 1536964 + 6725, cpus: 2 });
    assert.equal(parseMachineTimes('cpu0 1 2 3 4 5 6 7\n'), undefined, 'not the aggregate line');
    assert.equal(parseMachineTimes('cpu  1 2 3\ncpu0 1 2 3\n'), undefined, 'too short');
    assert.equal(parseMachineTimes('cpu  a b c d e f g\ncpu0 1 2 3 4 5 6 7\n'), undefined);
    assert.equal(parseMachineTimes('cpu  1 2 3 4 5 6 7\nintr 0\n'), undefined, 'no CPU listed');
  });

  test('cpu.max', () => {
    assert.equal(parseCpuMax('max 100000\n'), null);
    assert.equal(parseCpuMax('50000 100000\n'), 0.5);
    assert.equal(parseCpuMax('250000 100000'), 2.5);
    assert.equal(parseCpuMax('200000'), 2);
  });

  test('cgroup mounts: pure v2, hybrid, v1 combined and separate', () => {
    const dirs: string[] = [];
    const tree = (paths: string[]): string => {
      const root = mkdtempSync(join(tmpdir(), 'mw-cgmounts-'));
      dirs.push(root);
      for (const p of paths) {
        mkdirSync(dirname(join(root, p)), { recursive: true });
        writeFileSync(join(root, p), '');
      }
      return root;
    };
    try {
      const v2 = tree(['cgroup.controllers']);
      assert.deepEqual(discoverCgroupMounts(v2), { unified: v2 });
      const hybrid = tree(['cpu,cpuacct/tasks', 'memory/tasks', 'unified/cgroup.controllers']);
      assert.deepEqual(discoverCgroupMounts(hybrid), { cpu: `${hybrid}/cpu,cpuacct`, cpuacct: `${hybrid}/cpu,cpuacct`, unified: `${hybrid}/unified` });
      const separate = tree(['cpu/tasks', 'cpuacct/tasks', 'cpuset/tasks']);
      assert.deepEqual(discoverCgroupMounts(separate), { cpu: `${separate}/cpu`, cpuacct: `${separate}/cpuacct` });
      assert.deepEqual(discoverCgroupMounts(join(separate, 'nope')), {});
    } finally {
      dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
    }
  });
});

// ---- fake /proc, fake cgroups, fake clock ------------------------------------------------------

class FakeHost {
  readonly proc = mkdtempSync(join(tmpdir(), 'mw-fakeproc-'));
  readonly cg = mkdtempSync(join(tmpdir(), 'mw-fakecg-'));
  now = 0n;
  private readonly ticks = new Map<number, number>();
  /** Started samplers, stopped in remove(): a live timer would keep the test process running. */
  private readonly samplers: CpuSampler[] = [];

  setProc(pid: number, comm: string, ticks: number, cgroup = '0::/\n', starttime = 5000): void {
    const d = join(this.proc, String(pid));
    mkdirSync(d, { recursive: true });
    this.ticks.set(pid, ticks);
    // utime carries all the ticks; stime 0 (the sampler adds them).
    writeFileSync(join(d, 'stat'), `${pid} (${comm}) R 1 ${pid} ${pid} 0 -1 4194560 0 0 0 0 ${ticks} 0 0 0 20 0 1 0 ${starttime} 0 0\n`);
    writeFileSync(join(d, 'cgroup'), cgroup);
  }
  /** Add CPU seconds to a process (as ticks at 100 Hz); its cgroup file stays as it is. */
  burn(pid: number, cpuSeconds: number, comm = 'p'): void {
    const t = (this.ticks.get(pid) ?? 0) + Math.round(cpuSeconds * 100);
    this.ticks.set(pid, t);
    writeFileSync(join(this.proc, String(pid), 'stat'), `${pid} (${comm}) R 1 ${pid} ${pid} 0 -1 4194560 0 0 0 0 ${t} 0 0 0 20 0 1 0 5000 0 0\n`);
  }
  /**
   * /proc/stat of a one-CPU machine busy `busyTicks` so far (as user time), idle the rest of the
   * fake clock's time; or idle `idleTicks` when given (a machine whose tick counts are not to be believed).
   */
  machine(busyTicks: number, idleTicks = 100_000 + Number(this.now / 10_000_000n) - busyTicks): void {
    const line = `${busyTicks} 0 0 ${idleTicks} 0 0 0 0 0 0`;
    writeFileSync(join(this.proc, 'stat'), `cpu  ${line}\ncpu0 ${line}\n`);
  }
  file(rel: string, content: string): void {
    const p = join(this.cg, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
  }
  sampler(opts: CpuSamplerOptions, lookup: (pid: number) => ProcessInfo | undefined, containerOf: (pid: number) => ContainerInfo | undefined) {
    const events: SyscallEvent[] = [];
    const s = new CpuSampler(lookup, containerOf, {
      procRoot: this.proc, cgroupRoot: this.cg, nowNs: () => this.now, intervalMs: 1_000_000, ...opts,
    });
    this.samplers.push(s);
    return { s, events, start: () => s.start((ev) => events.push(ev as SyscallEvent)) };
  }
  remove(): void {
    for (const s of this.samplers) void s.stop();
    rmSync(this.proc, { recursive: true, force: true });
    rmSync(this.cg, { recursive: true, force: true });
  }
}

const SEC = 1_000_000_000n;

describe('cpu sampler: fake host, fake clock', () => {
  const hosts: FakeHost[] = [];
  after(() => hosts.forEach((h) => h.remove()));
  const mk = (): FakeHost => {
    const h = new FakeHost();
    hosts.push(h);
    return h;
  };
  // Each test stops its sampler when it ends, pass or fail.
  afterEach(() => hosts.forEach((h) => h.remove()));

  test('cgroup v1 (cpu and cpuacct mounted apart): container path, limit from the nearest ancestor with one', async () => {
    const h = mk();
    const ctr = '/kubepods/podA/ctr1';
    const cgLine = `5:memory:/kubepods/podA/ctr1\n4:cpuacct:${ctr}\n3:cpu:${ctr}\n0::/\n`;
    h.file('cpu/cpu.cfs_quota_us', '-1\n');
    h.file('cpu/cpu.cfs_period_us', '100000\n');
    h.file('cpu/kubepods/cpu.cfs_quota_us', '-1\n');
    h.file('cpu/kubepods/cpu.cfs_period_us', '100000\n');
    // The pod allows 2 cores, the container half of one: the container's own limit is the lowest.
    h.file('cpu/kubepods/podA/cpu.cfs_quota_us', '200000\n');
    h.file('cpu/kubepods/podA/cpu.cfs_period_us', '100000\n');
    h.file('cpu/kubepods/podA/ctr1/cpu.cfs_quota_us', '50000\n');
    h.file('cpu/kubepods/podA/ctr1/cpu.cfs_period_us', '100000\n');
    h.file('cpuacct/tasks', '');
    let usage = 0n;
    h.file(`cpuacct${ctr}/cpuacct.usage`, `${usage}\n`);
    h.setProc(1, 'systemd', 0, '4:cpuacct:/\n3:cpu:/\n0::/\n');
    h.setProc(1000, 'xmrig', 0, cgLine);
    h.setProc(1001, 'sh', 0, cgLine);
    const container: ContainerInfo = { id: 'abcdef123456', image: 'evil/miner:latest' };
    const { s, events, start } = h.sampler(
      { threshold: 0.9, durationMs: 10_000 },
      (pid) => (pid === 1000 ? { pid, name: 'xmrig', exepath: '/tmp/xmrig' } : undefined),
      (pid) => (pid >= 1000 ? container : { id: 'host' }),
    );
    await start(); // t = 0: baselines
    for (let i = 1; i <= 25; i++) {
      h.now = BigInt(i) * SEC;
      usage += 500_000_000n; // half a core: all the container may have
      h.file(`cpuacct${ctr}/cpuacct.usage`, `${usage}\n`);
      h.burn(1000, 0.5, 'xmrig');
      s.sample();
    }
    const c = events.filter((e) => e.cpu?.scope === 'container');
    const p = events.filter((e) => e.cpu?.scope === 'process');
    assert.equal(c.length, 1, 'one container event, no repeats');
    assert.equal(p.length, 1, 'one process event, no repeats');
    assert.equal(c[0]!.type, 'cpu_sustained');
    assert.equal(c[0]!.source, 'syscall');
    assert.equal(c[0]!.res, 0);
    assert.deepEqual(c[0]!.cpu, { percent: 50, limit_percent: 100, limit: 50, duration: 10e9, scope: 'container' });
    assert.deepEqual(c[0]!.proc, { pid: 1000, name: 'xmrig', exepath: '/tmp/xmrig' }, 'the busiest process stands for the container');
    assert.deepEqual(c[0]!.container, container);
    // The process is held to half a core by its cgroup: the threshold is 90% of that.
    assert.deepEqual(p[0]!.cpu, { percent: 50, limit_percent: 100, limit: 50, duration: 10e9, scope: 'process' });
    assert.equal(p[0]!.proc.pid, 1000);
    assert.equal(s.stats.containers, 1);
  });

  test('cgroup v2: usage_usec, cpu.max on an ancestor; a container busy while no single process is', async () => {
    const h = mk();
    h.file('cgroup.controllers', 'cpu io memory pids\n');
    const pod = '/kubepods.slice/kubepods-pod1.slice';
    const ctr = `${pod}/cri-containerd-abc.scope`;
    h.file(`${pod.slice(1)}/cpu.max`, '150000 100000\n');
    h.file(`kubepods.slice/cpu.max`, 'max 100000\n');
    h.file(`${ctr.slice(1)}/cpu.max`, 'max 100000\n');
    let usec = 0;
    const writeUsage = () => h.file(`${ctr.slice(1)}/cpu.stat`, `usage_usec ${usec}\nuser_usec ${usec}\nsystem_usec 0\n`);
    writeUsage();
    h.setProc(2000, 'worker', 0, `0::${ctr}\n`);
    h.setProc(2001, 'worker', 0, `0::${ctr}\n`);
    const { s, events, start } = h.sampler(
      { threshold: 0.9, durationMs: 5_000 },
      () => undefined,
      () => ({ id: 'abc' }),
    );
    await start();
    for (let i = 1; i <= 8; i++) {
      h.now = BigInt(i) * SEC;
      usec += 1_400_000; // 1.4 cores: above 90% of the 1.5-core limit
      writeUsage();
      h.burn(2000, 0.7, 'worker');
      h.burn(2001, 0.7, 'worker');
      s.sample();
    }
    assert.equal(events.length, 1, JSON.stringify(events.map((e) => e.cpu)));
    assert.deepEqual(events[0]!.cpu, { percent: 140, limit_percent: 93.3, limit: 150, duration: 5e9, scope: 'container' });
    assert.equal(events[0]!.proc.name, 'worker', 'falls back to the comm from /proc/PID/stat');
  });

  test('hysteresis: one event per run above the threshold; re-armed only below rearmThreshold', async () => {
    const h = mk();
    h.setProc(3000, 'burner', 0);
    const { s, events, start } = h.sampler(
      { threshold: 0.9, rearmThreshold: 0.5, durationMs: 3_000, scopes: ['process'] },
      () => undefined,
      hostContainer,
    );
    await start();
    let t = 0;
    const step = (cores: number, n = 1) => {
      for (let i = 0; i < n; i++) {
        h.now = BigInt(++t) * SEC;
        h.burn(3000, cores, 'burner');
        s.sample();
      }
    };
    step(1.0, 2);
    assert.equal(events.length, 0, 'not yet: 2 s of 3');
    step(1.0, 1);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.cpu!.duration, 3e9);
    assert.equal(events[0]!.cpu!.percent, 100);
    assert.equal(events[0]!.cpu!.limit_percent, undefined, 'no limit on the host');
    step(1.0, 20);
    assert.equal(events.length, 1, 'no repeat while it stays high');
    step(0.7, 1); // below the threshold, above the re-arm level: the run ends but stays disarmed
    step(1.0, 10);
    assert.equal(events.length, 1, 'not re-armed by a dip to 70%');
    step(0.1, 1); // re-armed
    step(1.0, 2);
    assert.equal(events.length, 1);
    step(1.0, 1);
    assert.equal(events.length, 2, 'a new run after re-arming');
    assert.equal(events[1]!.cpu!.duration, 3e9, 'duration counts from the new run');
  });

  test('a sleeping process is read less and less often; a miner that wakes up is still reported', async () => {
    const h = mk();
    h.setProc(3100, 'sleeper', 0);
    // durationMs 60 s at 1 s samples: passed over at most 12 samples (a fifth of the duration).
    const { s, events, start } = h.sampler({ threshold: 0.9, durationMs: 60_000, intervalMs: 1000, scopes: ['process'] }, () => undefined, hostContainer);
    await start();
    let t = 0;
    const before = s.stats.statReads;
    for (let i = 0; i < 60; i++) {
      h.now = BigInt(++t) * SEC;
      s.sample();
    }
    const reads = s.stats.statReads - before;
    assert.ok(reads >= 5 && reads <= 15, `read ${reads} times in 60 samples, not 60`);
    assert.equal(s.stats.processes, 1, 'still counted while passed over');
    // Now it burns a core for good: an event once it has run durationMs, late by at most the back-off.
    let at = 0;
    for (let i = 0; i < 100 && events.length === 0; i++) {
      h.now = BigInt(++t) * SEC;
      h.burn(3100, 1.0, 'sleeper');
      s.sample();
      at = i + 1;
    }
    assert.equal(events.length, 1, 'the woken process is reported');
    assert.ok(at >= 60 && at <= 60 + 13, `reported after ${at} s of burning: its duration plus at most the back-off`);
  });

  test('a process first seen having slept nearly all its life is passed over from the start; a busy or young one is not', async () => {
    const h = mk();
    // A day since boot (procRoot/uptime); processes started 50 s after boot unless said otherwise.
    writeFileSync(join(h.proc, 'uptime'), '86400.00 170000.00\n');
    h.setProc(3200, 'sleeper', 10); // 0.1 s of CPU in a day
    h.setProc(3201, 'busy', 7_771_500); // 0.9 of a core all its life
    h.setProc(3202, 'young', 0, '0::/\n', 8_639_950); // started half a second ago
    const { s, start } = h.sampler({ threshold: 0.9, durationMs: 60_000, intervalMs: 1000, scopes: ['process'] }, () => undefined, hostContainer);
    await start();
    const reads: number[] = [];
    for (let t = 1; t <= 3; t++) {
      const before = s.stats.statReads;
      h.now = BigInt(t) * SEC;
      h.burn(3201, 0.9, 'busy');
      s.sample();
      reads.push(s.stats.statReads - before);
    }
    // First sample: the busy and the young one (found asleep now: passed over from then on).
    assert.deepEqual(reads, [2, 1, 1], 'the sleeper is not read again after its first sight; the busy one at every sample');
    assert.equal(s.stats.processes, 3, 'a process passed over still counts');
  });

  test('passing over a process that slept all its life delays no report: one mining since its first sight is reported on time', async () => {
    const reportedAt = async (withUptime: boolean): Promise<number> => {
      const h = mk();
      if (withUptime) writeFileSync(join(h.proc, 'uptime'), '86400.00 170000.00\n');
      h.setProc(3300, 'quiet', 10);
      const { s, events, start } = h.sampler({ threshold: 0.9, durationMs: 60_000, intervalMs: 1000, scopes: ['process'] }, () => undefined, hostContainer);
      await start();
      for (let t = 1; t <= 100; t++) {
        h.now = BigInt(t) * SEC;
        h.burn(3300, 1.0, 'quiet');
        s.sample();
        if (events.length) return t;
      }
      return -1;
    };
    const control = await reportedAt(false);
    assert.equal(control, 60, 'without the first-sight pass-over: reported after durationMs');
    assert.equal(await reportedAt(true), control, 'passed over from its first sight, reported at the same sample');
  });

  test('a quiet machine: no known process is read; a miner that starts makes it busy and is reported', async () => {
    const h = mk();
    h.setProc(3400, 'idle', 0);
    h.setProc(3401, 'later-miner', 0);
    // A task mark that does not move: /proc's listing is used again, and a quiet sample walks no pid.
    writeFileSync(join(h.proc, 'loadavg'), '0.00 0.00 0.00 1/3 3401\n');
    let busy = 1000;
    h.machine(busy);
    const { s, events, start } = h.sampler({ threshold: 0.9, durationMs: 10_000, intervalMs: 1000, scopes: ['process'] }, () => undefined, hostContainer);
    await start();
    const reads = s.stats.statReads;
    let t = 0;
    // 20 s with the whole machine at 0.05 of a core: below 0.9 of the smallest base (one core: no limits).
    for (let i = 0; i < 20; i++) {
      h.now = BigInt(++t) * SEC;
      h.machine((busy += 5));
      s.sample();
    }
    assert.equal(s.stats.quietSamples, 20);
    assert.equal(s.stats.statReads, reads, 'no process read while the machine was quiet');
    assert.equal(s.stats.processes, 2, 'both still counted');
    assert.equal(s.stats.limitSurveys, 0, 'no cgroup hierarchy here: no limit anywhere, nothing to walk');
    // The same in slices.
    h.now = BigInt(++t) * SEC;
    h.machine((busy += 5));
    await s.sampleSliced();
    assert.equal(s.stats.quietSamples, 21);
    assert.equal(s.stats.statReads, reads);
    // A new process shows up (the task mark moves): read at first sight, quiet machine or not.
    h.setProc(3402, 'newcomer', 0);
    writeFileSync(join(h.proc, 'loadavg'), '0.00 0.00 0.00 1/4 3402\n');
    h.now = BigInt(++t) * SEC;
    h.machine((busy += 5));
    s.sample();
    assert.equal(s.stats.statReads, reads + 1, 'only the newcomer read');
    assert.equal(s.stats.processes, 3);
    // Now 3401 burns a core, and the machine with it.
    let at = 0;
    for (let i = 1; i <= 30 && events.length === 0; i++) {
      h.now = BigInt(++t) * SEC;
      h.burn(3401, 1.0, 'later-miner');
      h.machine((busy += 102));
      s.sample();
      at = i;
    }
    assert.equal(events.length, 1, 'the miner is reported');
    assert.equal(events[0]!.proc.pid, 3401);
    // Read first after the quiet stretch, it is measured from there: durationMs plus one sample.
    assert.equal(at, 11, `reported after ${at} s of burning`);
  });

  test('a quiet machine is judged by its idle time too: tick counts that do not move (a process sleeping across every tick) do not make it quiet', async () => {
    const h = mk();
    h.setProc(3600, 'tick-dodger', 0);
    const { s, events, start } = h.sampler({ threshold: 0.9, durationMs: 10_000, intervalMs: 1000, scopes: ['process'] }, () => undefined, hostContainer);
    h.machine(1000, 50_000);
    await start();
    let at = 0;
    for (let t = 1; t <= 30 && events.length === 0; t++) {
      h.now = BigInt(t) * SEC;
      // Its full second of CPU shows in its own stat, none of it in the busy ticks: the idle time stands still.
      h.burn(3600, 1.0, 'tick-dodger');
      h.machine(1000, 50_000);
      s.sample();
      at = t;
    }
    assert.equal(s.stats.quietSamples, 0, 'never quiet: the CPU was not idle');
    assert.equal(events.length, 1, 'reported');
    assert.equal(at, 10, 'read at every sample: reported after durationMs');
  });

  test('a quiet machine is quiet only below the smallest CPU limit of any cgroup: a process held to 0.2 of a core is read', async () => {
    const h = mk();
    h.file('cgroup.controllers', 'cpu memory\n');
    h.file('kubepods/pod1/cpu.max', '20000 100000\n');
    h.file('system.slice/cpu.max', 'max 100000\n');
    h.setProc(3500, 'limited', 0, '0::/kubepods/pod1\n');
    let busy = 1000;
    h.machine(busy);
    const { s, events, start } = h.sampler({ threshold: 0.9, durationMs: 10_000, intervalMs: 1000, scopes: ['process'] }, () => undefined, hostContainer);
    await start();
    // 0.1 of a core: below 0.9 × 0.2, quiet.
    for (let t = 1; t <= 3; t++) {
      h.now = BigInt(t) * SEC;
      h.machine((busy += 10));
      s.sample();
    }
    assert.equal(s.stats.quietSamples, 3);
    assert.equal(s.stats.limitSurveys, 1, 'the hierarchy walked once (limitRefreshMs has not passed)');
    // 0.2 of a core, all of it the limited process's: not quiet, and it is reported at 100% of its limit.
    let at = 0;
    for (let t = 4; t <= 40 && events.length === 0; t++) {
      h.now = BigInt(t) * SEC;
      h.burn(3500, 0.2, 'limited');
      h.machine((busy += 20));
      s.sample();
      at = t;
    }
    assert.equal(s.stats.quietSamples, 3, 'never quiet at 0.2 of a core');
    assert.equal(events.length, 1, `the process held to its limit is reported (at ${at} s)`);
    assert.equal(events[0]!.cpu!.limit, 20);
  });

  test('a sample walked in slices (a turn of the event loop between them) concludes exactly what one walk does', async () => {
    // Two samplers over the same fake host and clock: one walks it at once, one in slices.
    const h = mk();
    const c1 = { id: 'c1', name: 'one' } as ContainerInfo;
    h.file('cgroup.controllers', 'cpu\n');
    h.file('c1/cpu.stat', 'usage_usec 0\n');
    h.file('c1/cpu.max', '150000 100000\n');
    for (let pid = 5000; pid < 5250; pid++) h.setProc(pid, `p${pid}`, 0, pid % 7 === 0 ? '0::/c1\n' : '0::/\n');
    const containerOf = (pid: number): ContainerInfo => (pid % 7 === 0 ? c1 : { id: 'host' } as ContainerInfo);
    const opts = { threshold: 0.5, durationMs: 3000, intervalMs: 1000, quietCap: 3 };
    const whole = h.sampler(opts, () => undefined, containerOf);
    const sliced = h.sampler(opts, () => undefined, containerOf);
    await whole.start();
    await sliced.start();
    let usage = 0;
    for (let i = 1; i <= 12; i++) {
      h.now = BigInt(i) * SEC;
      // A third of the processes burn a core from the fourth second on, a few stop at the ninth.
      for (let pid = 5000; pid < 5250; pid += 3) if (i >= 4 && !(i >= 9 && pid % 2 === 0)) h.burn(pid, 1, `p${pid}`);
      usage += 2_000_000;
      h.file('c1/cpu.stat', `usage_usec ${usage}\n`);
      whole.s.sample();
      // The sliced walk gives the loop turns: something scheduled now runs before it ends.
      let turned = false;
      setImmediate(() => (turned = true));
      const done = sliced.s.sampleSliced();
      await done;
      assert.ok(turned, 'the event loop turned during the sliced walk');
    }
    const view = (evs: SyscallEvent[]) => evs.map((e) => `${e.proc.pid} ${JSON.stringify(e.cpu)} ${e.container?.id ?? ''}`).sort();
    assert.ok(whole.events.length > 10, `events: ${whole.events.length}`);
    assert.ok(whole.events.some((e) => (e.cpu as { scope: string }).scope === 'container'), 'a container event too');
    assert.deepEqual(view(sliced.events), view(whole.events));
    for (const k of ['processes', 'containers', 'statReads', 'samples'] as const) assert.equal(sliced.s.stats[k], whole.s.stats[k], k);
  });

  test('/proc is listed again only when /proc/loadavg says a task was created or ended', async () => {
    const h = mk();
    writeFileSync(join(h.proc, 'loadavg'), '0.00 0.00 0.00 1/120 6001\n');
    h.setProc(6000, 'a', 0);
    h.setProc(6001, 'b', 0);
    const { s, start } = h.sampler({ scopes: ['process'] }, () => undefined, hostContainer);
    await start();
    assert.equal(s.stats.processes, 2);
    // A new pid directory while the mark (task count, last pid) stands still: the listing is reused.
    h.setProc(6002, 'c', 0);
    h.now = 1n * SEC;
    s.sample();
    assert.equal(s.stats.processes, 2, 'same mark: same listing');
    writeFileSync(join(h.proc, 'loadavg'), '0.00 0.00 0.00 1/121 6002\n');
    h.now = 2n * SEC;
    await s.sampleSliced();
    assert.equal(s.stats.processes, 3, 'a task was created: listed again');
    // A process ended: the task count drops.
    rmSync(join(h.proc, '6000'), { recursive: true });
    writeFileSync(join(h.proc, 'loadavg'), '0.00 0.00 0.00 1/120 6002\n');
    h.now = 3n * SEC;
    s.sample();
    assert.equal(s.stats.processes, 2, 'a task ended: listed again');
  });

  test('refuses to start, with the reason, when no process is readable', async () => {
    const h = mk();
    const { start } = h.sampler({}, () => undefined, hostContainer);
    await assert.rejects(start(), /no process readable under .*mw-fakeproc-/);
  });

  test('a reused pid starts over; a vanished process is forgotten', async () => {
    const h = mk();
    h.setProc(4000, 'a', 0);
    const { s, events, start } = h.sampler({ threshold: 0.5, durationMs: 2_000, scopes: ['process'] }, () => undefined, hostContainer);
    await start();
    h.now = 1n * SEC;
    h.burn(4000, 1, 'a');
    s.sample();
    // pid 4000 is now another process (another start time) with a large CPU total of its own.
    h.setProc(4000, 'b', 99999, '0::/\n', 7777);
    h.now = 2n * SEC;
    s.sample();
    h.now = 3n * SEC;
    s.sample();
    assert.equal(events.length, 0, 'the new process has not been busy');
    rmSync(join(h.proc, '4000'), { recursive: true });
    h.now = 4n * SEC;
    s.sample();
    assert.equal(s.stats.processes, 0);
  });
});

// ---- live ----------------------------------------------------------------------------------------

describe('cpu sampler: live processes on this machine', () => {
  const children: ChildProcess[] = [];
  let sampler: CpuSampler | undefined;
  after(async () => {
    await sampler?.stop();
    killAll(children);
  });

  test('a busy loop is reported once; an idle process never', async () => {
    const busy = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
    const idle = spawn('sleep', ['120'], { stdio: 'ignore' });
    children.push(busy, idle);
    const events: Event[] = [];
    sampler = new CpuSampler(procLookup, hostContainer, { intervalMs: 200, threshold: 0.5, durationMs: 1000, scopes: ['process'] });
    await sampler.start((ev) => events.push(ev));
    const ev = await waitForEvent(events, (e) => e.proc.pid === busy.pid, 20_000, `cpu_sustained for busy child ${busy.pid}`);
    assert.equal(ev.type, 'cpu_sustained');
    assert.equal(ev.source, 'syscall');
    assert.equal(ev.res, 0);
    assert.equal(ev.proc.name, 'node');
    assert.equal(ev.cpu?.scope, 'process');
    assert.ok((ev.cpu!.percent as number) > 50, `percent ${ev.cpu!.percent}`);
    assert.ok((ev.cpu!.duration as number) >= 1e9, `duration ${ev.cpu!.duration}`);
    // Several more intervals: still one event for the busy child, none for the idle one.
    const n = sampler.stats.samples;
    while (sampler.stats.samples < n + 8) await sleep(50);
    const evs = events as SyscallEvent[];
    assert.equal(evs.filter((e) => e.proc.pid === busy.pid).length, 1);
    assert.equal(evs.filter((e) => e.proc.pid === idle.pid).length, 0);
  });
});

/** Root with cgroup v1 cpu and cpuacct (this machine's layout): a real CPU-limited cgroup. */
const V1 = discoverCgroupMounts('/sys/fs/cgroup');
const v1Skip = !isRoot()
  ? 'SKIPPED: the real-cgroup test needs root'
  : V1.cpu === undefined || V1.cpuacct === undefined
    ? 'SKIPPED: the real-cgroup test needs cgroup v1 cpu and cpuacct (v2 is covered by the fake tree)'
    : false;

describe('cpu sampler: a real CPU-limited cgroup v1 as a container', { skip: v1Skip }, () => {
  const name = `mwtest-${process.pid}-${Date.now().toString(36)}`;
  const dirs = [`${V1.cpu}/${name}`, `${V1.cpuacct}/${name}`].filter((d, i, a) => a.indexOf(d) === i);
  let child: ChildProcess | undefined;
  let sampler: CpuSampler | undefined;

  after(async () => {
    await sampler?.stop();
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    for (const d of dirs) {
      for (let i = 0; i < 20 && existsSync(d); i++) {
        try {
          rmdirSync(d);
        } catch {
          await sleep(50);
        }
      }
    }
  });

  test('busy process held to half a core: container and process events with limit_percent', async () => {
    for (const d of dirs) mkdirSync(d);
    writeFileSync(`${V1.cpu}/${name}/cpu.cfs_period_us`, '100000');
    writeFileSync(`${V1.cpu}/${name}/cpu.cfs_quota_us`, '50000');
    child = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
    const pid = child.pid!;
    for (const d of dirs) writeFileSync(`${d}/cgroup.procs`, String(pid));
    const container: ContainerInfo = { id: 'mwtest000001' };
    const events: Event[] = [];
    sampler = new CpuSampler(procLookup, (p) => (p === pid ? container : { id: 'host' }), {
      intervalMs: 200, threshold: 0.5, durationMs: 1000,
    });
    await sampler.start((ev) => events.push(ev));
    const ce = await waitForEvent(events, (e) => e.cpu?.scope === 'container' && e.container?.id === container.id, 20_000, 'container event');
    assert.equal(ce.proc.pid, pid);
    assert.equal(ce.cpu!.limit, 50);
    // Below one core (the limit holds it), above half its limit (it uses all it may).
    assert.ok((ce.cpu!.percent as number) < 90, `percent ${ce.cpu!.percent}`);
    assert.ok((ce.cpu!.limit_percent as number) > 50, `limit_percent ${ce.cpu!.limit_percent}`);
    const pe = await waitForEvent(events, (e) => e.cpu?.scope === 'process' && e.proc.pid === pid, 20_000, 'process event');
    assert.equal(pe.cpu!.limit, 50);
    assert.ok((pe.cpu!.limit_percent as number) > 50);
  });
});
