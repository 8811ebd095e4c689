/**
 * What the live agent costs per exec, at idle and in memory, and how fast an exec becomes an alert
 * (issue 16), for the eBPF and the proc connector drivers, with every figure beside its baseline
 * from the same run (root only; skipped with a message otherwise):
 *
 *  - exec storm: EXECS execs of /bin/true at about RATE a second from a small C pacer (fork, exec,
 *    wait). Agent CPU per exec (its whole process tree, from /proc) beside the CPU the storm itself
 *    cost (the pacer and its children, from their rusage), and the storm's own CPU with the agent
 *    against a storm run with no agent at all just before that agent started (BPF work is charged
 *    to the process that execs: target ≤ 1.05×). Two storms per agent: the first meets a cold
 *    agent (V8 compiles the exec path while it runs, and the young generation grows), the second,
 *    the same storm again, a warm one. V8 goes on compiling the exec path through the first three or
 *    four storms (TurboFan on its worker threads: 13 µs per exec of the second storm, none by the
 *    fifth), so after two more storms, not timed, two timed ones give the steady figure: what a
 *    long-running agent pays per exec. All three are reported.
 *  - idle: agent CPU over IDLE_S seconds with 1,000 sleeping processes on the host, beside an idle
 *    bare node process over the same window.
 *  - RSS after the runs, beside that bare node process.
 *  - exec → alert latency: every tenth exec of a second storm at RATE is a program a bench rule
 *    matches; from the kernel's exec timestamp (the alert's time) to the alert line on the agent's
 *    stdout, grouping off.
 *  - steal: the share of the machine's CPU time the hypervisor took over each round, from
 *    /proc/stat. On a VM of a busy host it reached 5% of a 25 s window, and the same agent then cost up
 *    to twice as much per exec: read a round's figures beside its steal.
 *
 * MW_BENCH_BASE=/path/to/other/checkout runs that checkout's agent (its dist/src/cli/main.js) in
 * every round too, alternating with this one: the before and after of a change in one run.
 * MW_BENCH_ROUNDS (default 2), MW_BENCH_IDLE_S (default 60), MW_BENCH_DRIVERS (default
 * "ebpf,proc"), MW_BENCH_PROF=DIR writes each agent's --cpu-prof there. MW_BENCH_GATHER_MS=2[,1…]
 * adds this checkout's eBPF agent with sources.ebpf.gather_ms at each value (variants gatherN):
 * the ring reader's gather trades CPU per exec (one batch per gather) for exec → alert latency.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentRun, compileC, sleep, writeConfig } from '../test/helpers/agent-run.js';
import { clockTicks, cpuSeconds, cpuTicks, fmt, isoToEpochMs, lastPid, loadAvg, percentile, pidsBetween, rssMb, spread, stealPct, treeCpuSeconds } from './lib.js';

const EXECS = 3000;
const RATE = 1000;
const LAT_EXECS = 2000;
const LAT_EVERY = 10;
/** Storms after the warm one, not timed, before the steady ones: V8 has settled by then. */
const SETTLE_STORMS = 2;
/** Storms timed together for the steady figure. */
const STEADY_STORMS = 2;
const SLEEPERS = 1000;
const MATCH_NAME = 'mwbench-match';
const TARGETS = { ebpfUs: 40, procUs: 200, ownRatio: 1.05, idle: 0.005, rssMb: 100, p99Ms: 5 };

const PACER_C = `#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
/* pacer RATE COUNT PROG [MATCH EVERY]: fork+exec PROG (every EVERYth one MATCH) COUNT times at
   RATE a second, each waited for; prints the wall time and the CPU of itself and its children. */
static double us(struct timeval t) { return t.tv_sec * 1e6 + t.tv_usec; }
int main(int argc, char **argv) {
  if (argc < 4) return 2;
  double rate = atof(argv[1]);
  long count = atol(argv[2]);
  const char *prog = argv[3], *match = argc > 5 ? argv[4] : NULL;
  long every = argc > 5 ? atol(argv[5]) : 0;
  struct timespec t0, t1, due;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < count; i++) {
    long long ns = (long long)(i * 1e9 / rate);
    due.tv_sec = t0.tv_sec + (t0.tv_nsec + ns) / 1000000000LL;
    due.tv_nsec = (t0.tv_nsec + ns) % 1000000000LL;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
    const char *p = (match && every && i % every == 0) ? match : prog;
    pid_t pid = fork();
    if (pid == 0) { execl(p, p, (char *)NULL); _exit(127); }
    if (pid > 0) waitpid(pid, NULL, 0);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  struct rusage self, kids;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  printf("{\\"wall\\":%.6f,\\"self_us\\":%.0f,\\"kids_us\\":%.0f}\\n",
         (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
         us(self.ru_utime) + us(self.ru_stime), us(kids.ru_utime) + us(kids.ru_stime));
  return 0;
}
`;

interface Storm {
  wall: number;
  /** CPU of the pacer (forks) and of the exec'd processes, µs. */
  self_us: number;
  kids_us: number;
}

function stormArgs(count: number, prog: string, match?: string): string[] {
  return [String(RATE), String(count), prog, ...(match ? [match, String(LAT_EVERY)] : [])];
}

function storm(pacer: string, count: number, prog: string): Storm {
  return JSON.parse(execFileSync(pacer, stormArgs(count, prog), { encoding: 'utf8' })) as Storm;
}

/**
 * The latency storm runs beside the event loop, not blocking it: the agent's alert lines are read
 * as they come (a blocking run had every line wait in the pipe until the storm ended, and the
 * "latency" was the storm's own length).
 */
function stormAsync(pacer: string, count: number, prog: string, match: string): Promise<Storm> {
  return new Promise((resolve, reject) => {
    execFile(pacer, stormArgs(count, prog, match), { encoding: 'utf8' }, (err, out) => (err ? reject(err as Error) : resolve(JSON.parse(out) as Storm)));
  });
}

interface Figures {
  /** The first storm, on a cold agent. */
  perExecUs: number;
  /** The storm's own CPU (the pacer's forks and the exec'd processes) per exec, µs. */
  stormUs: number;
  /** The second storm, on the warm agent. */
  warmPerExecUs: number;
  warmStormUs: number;
  /** Storms 5 and 6: the JIT has settled (SETTLE_STORMS, STEADY_STORMS). */
  steadyPerExecUs: number;
  steadyStormUs: number;
  /** A storm with no agent at all, just before this agent started, µs per exec. */
  noAgentUs: number;
  rate: number;
  idle: number;
  bareIdle: number;
  /** Processes or threads the host started during the idle window. */
  idleForks: number;
  rss: number;
  bareRss: number;
  p50?: number;
  p99?: number;
  latN: number;
  latMissed: number;
  drops: string;
  load: string;
  /** The share of the machine's CPU time the hypervisor stole over the round, %; undefined where unknown. */
  steal: number | undefined;
}

const VARIANTS = ['this'] as string[];

/** Extra variants of this checkout with another ring-buffer gather (eBPF only), from MW_BENCH_GATHER_MS. */
function gatherVariants(): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of (process.env.MW_BENCH_GATHER_MS ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const ms = Number(v);
    if (!Number.isFinite(ms) || ms < 0 || ms > 100) throw new Error(`MW_BENCH_GATHER_MS: ${v} is not a gather in ms (0–100)`);
    out.set(`gather${v}`, ms);
  }
  return out;
}

export async function execCostBench(): Promise<void> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    console.log('exec_cost  skipped: needs root (the agent\'s drivers watch every process on the host)');
    return;
  }
  try {
    execFileSync('sh', ['-c', 'command -v cc'], { stdio: 'ignore' });
  } catch {
    console.log('exec_cost  skipped: needs a C compiler (cc) for the exec pacer');
    return;
  }
  const rounds = Number(process.env.MW_BENCH_ROUNDS ?? 2) || 2;
  const idleS = Number(process.env.MW_BENCH_IDLE_S ?? 60) || 60;
  const drivers = (process.env.MW_BENCH_DRIVERS ?? 'ebpf,proc').split(',').map((d) => d.trim()).filter(Boolean);
  const base = process.env.MW_BENCH_BASE;
  const baseCli = base ? join(base, 'dist/src/cli/main.js') : undefined;
  if (baseCli && !existsSync(baseCli)) {
    console.log(`exec_cost  MW_BENCH_BASE=${base}: no ${baseCli}; build that checkout first (npx tsc -p tsconfig.json there)`);
    return;
  }
  const gathers = gatherVariants();
  const variants = [...(baseCli ? ['base'] : []), ...VARIANTS, ...gathers.keys()];
  const profDir = process.env.MW_BENCH_PROF;
  const dir = mkdtempSync(join(tmpdir(), 'mw-exec-cost-'));
  const hz = clockTicks();
  let sleepers: ChildProcess | undefined;
  let bare: ChildProcess | undefined;
  const results = new Map<string, Figures[]>();
  try {
    writeFileSync(join(dir, 'pacer.c'), PACER_C);
    const pacer = join(dir, 'pacer');
    compileC(join(dir, 'pacer.c'), pacer);
    const matchBin = join(dir, MATCH_NAME);
    copyFileSync('/bin/true', matchBin);
    chmodSync(matchBin, 0o755);
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'bench.yaml'), `- rule: Exec Cost Bench
  desc: bench only; matches the bench's own program
  condition: evt.type in (execve, execveat) and proc.name = ${MATCH_NAME}
  output: bench exec (pid=%proc.pid)
  priority: NOTICE
  tags: [bench]
`);
    const rulesFiles = ['default', join(dir, 'bench.yaml')];
    const config = writeConfig(join(dir, 'config.yaml'), { rules_files: rulesFiles });
    const gatherConfigs = new Map([...gathers].map(([name, ms]) => [name, writeConfig(join(dir, `config-${name}.yaml`), { rules_files: rulesFiles, sources: { ebpf: { gather_ms: ms } } })]));
    // The host's idle processes: 1,000 sleepers in one process group of their own.
    sleepers = spawn('sh', ['-c', `i=0; while [ $i -lt ${SLEEPERS} ]; do sleep 7200 & i=$((i+1)); done; wait`], { stdio: 'ignore', detached: true });
    bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
    await sleep(3000);
    console.log(`exec_cost  ${rounds} round(s), drivers ${drivers.join(', ')}, ${variants.join(' vs ')}; ${EXECS} execs at ${RATE}/s, idle ${idleS} s, ${SLEEPERS} sleepers; load average ${loadAvg()}`);

    for (let round = 0; round < rounds; round++) {
      for (const driver of drivers) {
        for (const variant of variants) {
          if (gathers.has(variant) && driver !== 'ebpf') continue;
          const key = `${variant}/${driver}`;
          const nodeArgs: string[] = [];
          if (profDir) {
            const d = join(profDir, `${variant}-${driver}-${round}`);
            mkdirSync(d, { recursive: true });
            nodeArgs.push('--cpu-prof', '--cpu-prof-dir', d);
          }
          const ticks0 = cpuTicks();
          // The storm's own cost with no agent at all, next to the agent's: the yardstick of its storms.
          const na = storm(pacer, EXECS, '/bin/true');
          const noAgentUs = (na.self_us + na.kids_us) / EXECS;
          const agent = new AgentRun(gatherConfigs.get(variant) ?? config, { args: ['--driver', driver], nodeArgs, ...(variant === 'base' ? { cli: baseCli } : {}) });
          try {
            const started = await agent.started(60_000).catch((e: Error) => e);
            if (started instanceof Error) {
              console.log(`exec_cost.${key}  skipped: the agent did not start: ${started.message.split('\n').slice(-4).join(' | ')}`);
              continue;
            }
            const apid = agent.pid;
            await sleep(3000);
            const load = loadAvg();
            // ---- idle
            const a0 = treeCpuSeconds(apid, hz);
            const b0 = cpuSeconds(bare.pid!, hz);
            const pid0 = lastPid();
            const t0 = performance.now();
            await sleep(idleS * 1000);
            const idleWall = (performance.now() - t0) / 1000;
            const idle = (treeCpuSeconds(apid, hz) - a0) / idleWall;
            const bareIdle = (cpuSeconds(bare.pid!, hz) - b0) / idleWall;
            // Idle is only idle if the host is: other processes' forks and execs are the agent's work.
            const idleForks = pidsBetween(pid0, lastPid());
            // ---- storm
            const c0 = treeCpuSeconds(apid, hz);
            const s = storm(pacer, EXECS, '/bin/true');
            await sleep(1500); // what the storm queued
            const agentUs = (treeCpuSeconds(apid, hz) - c0) * 1e6;
            // ---- the same storm on the now warm agent
            const w0 = treeCpuSeconds(apid, hz);
            const warm = storm(pacer, EXECS, '/bin/true');
            await sleep(1500);
            const warmUs = (treeCpuSeconds(apid, hz) - w0) * 1e6;
            // ---- steady: the same storm once V8 has stopped compiling the exec path
            for (let i = 0; i < SETTLE_STORMS; i++) {
              storm(pacer, EXECS, '/bin/true');
              await sleep(1000);
            }
            const st0 = treeCpuSeconds(apid, hz);
            let steadyStorm = 0;
            for (let i = 0; i < STEADY_STORMS; i++) {
              const x = storm(pacer, EXECS, '/bin/true');
              steadyStorm += x.self_us + x.kids_us;
              await sleep(i === STEADY_STORMS - 1 ? 1500 : 1000);
            }
            const steadyUs = (treeCpuSeconds(apid, hz) - st0) * 1e6;
            // ---- latency
            const lat: number[] = [];
            agent.onAlert = (al) => {
              if (al.rule === 'Exec Cost Bench') lat.push(performance.timeOrigin + performance.now() - isoToEpochMs(al.time));
            };
            await stormAsync(pacer, LAT_EXECS, '/bin/true', matchBin);
            await sleep(2000);
            agent.onAlert = undefined;
            const rss = rssMb(apid);
            const bareRss = rssMb(bare.pid!);
            await agent.stop();
            const stats = agent.logs.find((l) => l.msg === 'agent stopped');
            const wanted = Math.ceil(LAT_EXECS / LAT_EVERY);
            const f: Figures = {
              perExecUs: agentUs / EXECS,
              stormUs: (s.self_us + s.kids_us) / EXECS,
              warmPerExecUs: warmUs / EXECS,
              warmStormUs: (warm.self_us + warm.kids_us) / EXECS,
              steadyPerExecUs: steadyUs / (EXECS * STEADY_STORMS),
              steadyStormUs: steadyStorm / (EXECS * STEADY_STORMS),
              noAgentUs,
              rate: EXECS / s.wall,
              idle,
              bareIdle,
              idleForks,
              rss,
              bareRss,
              ...(lat.length ? { p50: percentile(lat, 50), p99: percentile(lat, 99) } : {}),
              latN: lat.length,
              latMissed: Math.max(0, wanted - lat.length),
              steal: stealPct(ticks0, cpuTicks()),
              drops: stats ? `queueDrops ${String(stats.queueDrops)}, sourceDrops ${String(stats.sourceDrops)}` : 'no stop line',
              load,
            };
            const list = results.get(key) ?? [];
            list.push(f);
            results.set(key, list);
            console.log(
              `exec_cost.${key}.round${round + 1}  agent ${fmt(f.perExecUs, 1)} µs/exec cold, ${fmt(f.warmPerExecUs, 1)} warm, ${fmt(f.steadyPerExecUs, 1)} steady, beside the storm's own ${fmt(f.stormUs, 1)}, ${fmt(f.warmStormUs, 1)} and ${fmt(f.steadyStormUs, 1)} µs/exec ` +
                `(${fmt(f.stormUs / noAgentUs, 3)}x, ${fmt(f.warmStormUs / noAgentUs, 3)}x and ${fmt(f.steadyStormUs / noAgentUs, 3)}x its no-agent cost, ${fmt(noAgentUs, 1)} µs/exec) at ${fmt(f.rate, 0)} execs/s; ` +
                `idle ${fmt(idle * 100, 2)}% of a core (bare node ${fmt(bareIdle * 100, 2)}%; ${idleForks} processes or threads started on the host meanwhile); RSS ${fmt(rss, 1)} MB (bare node ${fmt(bareRss, 1)} MB); ` +
                `exec→alert ${f.p99 !== undefined ? `p50 ${fmt(f.p50!, 2)} ms, p99 ${fmt(f.p99, 2)} ms` : 'no alerts'} over ${f.latN}${f.latMissed ? ` (${f.latMissed} missed)` : ''}; ${f.drops}; load average ${load}` +
                `${f.steal !== undefined ? `; ${fmt(f.steal, 1)}% of the machine's CPU time stolen by the hypervisor` : ''}`,
            );
          } finally {
            agent.kill();
          }
        }
      }
    }

    // ---- summary: medians and spread over rounds, each beside its baseline ----------------------
    for (const [key, list] of results) {
      const driver = key.split('/')[1]!;
      const p99s = list.filter((f) => f.p99 !== undefined).map((f) => f.p99!);
      const target = driver === 'ebpf' ? TARGETS.ebpfUs : TARGETS.procUs;
      console.log(`exec_cost.${key}.no_agent  storm ${spread(list.map((f) => f.noAgentUs), 1, ' µs/exec')} with no agent, just before each agent started`);
      console.log(`exec_cost.${key}.per_exec_cold  ${spread(list.map((f) => f.perExecUs), 1, ' µs')} agent CPU per exec in the first storm, beside the storm's own ${spread(list.map((f) => f.stormUs), 1, ' µs')}; target ≤ ${target} µs`);
      console.log(`exec_cost.${key}.per_exec_warm  ${spread(list.map((f) => f.warmPerExecUs), 1, ' µs')} agent CPU per exec in the second storm, beside the storm's own ${spread(list.map((f) => f.warmStormUs), 1, ' µs')}; target ≤ ${target} µs`);
      console.log(`exec_cost.${key}.per_exec_steady  ${spread(list.map((f) => f.steadyPerExecUs), 1, ' µs')} agent CPU per exec in storms ${3 + SETTLE_STORMS}–${2 + SETTLE_STORMS + STEADY_STORMS} (V8 settled), beside the storm's own ${spread(list.map((f) => f.steadyStormUs), 1, ' µs')}; target ≤ ${target} µs`);
      console.log(`exec_cost.${key}.storm_vs_no_agent  cold ${spread(list.map((f) => f.stormUs / f.noAgentUs), 3, 'x')}, warm ${spread(list.map((f) => f.warmStormUs / f.noAgentUs), 3, 'x')}, steady ${spread(list.map((f) => f.steadyStormUs / f.noAgentUs), 3, 'x')}; target ≤ ${TARGETS.ownRatio}x (eBPF)`);
      console.log(`exec_cost.${key}.idle  ${spread(list.map((f) => f.idle * 100), 2, '%')} of a core, beside a bare node ${spread(list.map((f) => f.bareIdle * 100), 2, '%')}, with ${spread(list.map((f) => f.idleForks), 0)} processes or threads started on the host meanwhile (not idle: their execs are the agent's work); target ≤ ${TARGETS.idle * 100}%`);
      console.log(`exec_cost.${key}.rss  ${spread(list.map((f) => f.rss), 1, ' MB')}, beside a bare node ${spread(list.map((f) => f.bareRss), 1, ' MB')}; target ≤ ${TARGETS.rssMb} MB`);
      const steals = list.filter((f) => f.steal !== undefined).map((f) => f.steal!);
      if (steals.length) console.log(`exec_cost.${key}.steal  ${spread(steals, 1, '%')} of the machine's CPU time stolen by the hypervisor over each round (a busy host: rounds with much of it cost more, on either side)`);
      console.log(`exec_cost.${key}.exec_to_alert_p99  ${p99s.length ? spread(p99s, 2, ' ms') : 'no alerts'}${driver === 'ebpf' ? `; target ≤ ${TARGETS.p99Ms} ms` : ''}`);
    }
    console.log(`exec_cost  load average at the end ${loadAvg()}`);
  } finally {
    if (sleepers?.pid) {
      try {
        process.kill(-sleepers.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (bare && bare.exitCode === null) bare.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The process table's part of one exec, in this process (no other process's noise): the same
 * live process's exec notice applied N times, read from /proc (the proc connector's way, and the
 * eBPF driver's before issue 16) against described by the kernel's exec record (the eBPF driver
 * now). CPU from process.cpuUsage (all threads, libuv's fs pool included), per exec, over rounds.
 */
export async function execPathBench(): Promise<void> {
  const { ProcessTable } = await import('../src/enrich/process-table.js');
  const N = 2000;
  const ROUNDS = 5;
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  try {
    await sleep(300);
    const pid = child.pid!;
    const table = new ProcessTable({ hash: false });
    table.seed();
    const info = (await table.lookup(pid))!;
    const facts = {
      ruid: 0, euid: 0, rgid: 0, egid: 0, loginuid: undefined, vpid: pid, tty: 0, exeFlags: 32, exeDev: 1n, exeIno: 2n, exeMtimeNs: 3n, exeCtimeNs: 4n, exeSize: 5n,
      exeMode: 0o100755, exeUid: 0, exeGid: 0, cgroupId: 1n, cgroupPath: '/', cgroup1Id: 0n, cgroup1Path: '', capEff: 0n, capPrm: 0n, capInh: 0n, env: ['HOME=/root', 'PATH=/usr/bin'],
    };
    const kernel = { type: 'execve' as const, comm: 'sleep', argv: ['sleep', '600'], exepath: '/usr/bin/sleep', uid: 0, ppid: process.pid, startTs: info.start_ts!, facts };
    const run = async (described: boolean): Promise<number> => {
      const c0 = process.cpuUsage();
      for (let i = 0; i < N; i++) {
        await table.onNotice({ kind: 'exec', pid, tid: pid, ts: 1n, ...(described ? { exec: kernel } : {}) });
      }
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / N;
    };
    await run(false);
    await run(true);
    const procRead: number[] = [];
    const kernelDescribed: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      procRead.push(await run(false));
      kernelDescribed.push(await run(true));
    }
    table.close();
    const ratio = kernelDescribed.map((k, i) => procRead[i]! / k);
    console.log(`exec_path.table  kernel-described exec ${spread(kernelDescribed, 1, ' µs')} of CPU, beside the same exec read from /proc ${spread(procRead, 1, ' µs')}: ${spread(ratio, 1, 'x')} less; ${N} execs a round; load average ${loadAvg()}`);
  } finally {
    child.kill('SIGKILL');
  }
}
