/**
 * Nothing hides behind a flood (issue 16), live: the agent runs with a tiny queue (and, for eBPF,
 * a 16 KiB ring buffer; for the proc connector a one-batch queue and a 64 KiB socket buffer), a
 * flooder execs /bin/true as fast as this machine allows for 10 s from two processes (its rate is
 * reported; it is bounded by a count and a time, and killed by the test if it overruns), and
 * halfway through the agent is stopped (SIGSTOP) for 2 s, as a starved agent would be, and a fake
 * miner starts while it is. A fast agent keeps up with the flood alone (a CI machine's proc
 * connector agent did, with no drop at all), so the stop is what makes the overflow certain on
 * any machine. The agent must count the drops, and the miner must be alerted within 5 s after the
 * flood ends: its exec was most likely among the lost notices, so the re-read of /proc after the
 * drops (src/enrich/recovery.ts) finds it and emits the exec it missed, flagged mw.exec.recovered.
 *
 * Needs root (both drivers watch the whole host) and `cc` for the fixtures; the eBPF part also
 * needs a kernel and build that can run the eBPF driver: each skips with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AgentRun, compileC, exitOf, sleep, writeConfig } from './helpers/agent-run.js';
import { haveCommand, isRoot } from './helpers/live.js';
import { FIXTURES } from './helpers/paths.js';
import { WALLET } from './helpers/miner.js';

const FLOOD_S = 10;
/** The flood's bound in execs, whatever the machine's speed. */
const FLOOD_MAX = 400_000;
const AFTER_FLOOD_MS = 5_000;
/** How long the agent is stopped mid-flood: many times what the small buffers below hold. */
const STALL_MS = 2_000;

const FLOOD_C = `#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
/* flood SECONDS MAX WORKERS: WORKERS processes fork+exec /bin/true back to back until SECONDS
   have passed or MAX execs were made in all; prints "EXECS SECONDS". */
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
  if (argc < 4) return 2;
  double secs = atof(argv[1]), t0 = now();
  long max = atol(argv[2]);
  int workers = atoi(argv[3]), fds[2];
  if (pipe(fds)) return 1;
  for (int w = 0; w < workers; w++) {
    if (fork() == 0) {
      long n = 0;
      while (now() - t0 < secs && n < max / workers) {
        pid_t p = fork();
        if (p == 0) { execl("/bin/true", "true", (char *)NULL); _exit(127); }
        if (p > 0) { waitpid(p, NULL, 0); n++; }
      }
      if (write(fds[1], &n, sizeof n) != sizeof n) _exit(1);
      _exit(0);
    }
  }
  long total = 0, n;
  for (int w = 0; w < workers; w++) if (read(fds[0], &n, sizeof n) == sizeof n) total += n;
  while (wait(NULL) > 0) {}
  printf("%ld %.3f\\n", total, now() - t0);
  return 0;
}
`;

const skip = !isRoot() ? 'needs root: both drivers watch every process on the host' : !haveCommand('cc') ? 'needs a C compiler (`cc`) for the flooder and the fake miner' : undefined;

let dir = '';
let flooder = '';
let miner = '';

describe('an exec flood hides no miner', { skip }, () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mw-p16-flood-'));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'flood.c'), FLOOD_C);
    flooder = join(dir, 'mwflood');
    compileC(join(dir, 'flood.c'), flooder);
    miner = join(dir, 'xmrig');
    compileC(join(FIXTURES, 'agent', 'fake-miner.c'), miner);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const driver of ['ebpf', 'proc'] as const) {
    test(`${driver}: drops are counted and a miner started mid-flood is alerted within 5 s after it`, async (t) => {
      const sources = {
        driver,
        queue_size: 16,
        ebpf: { ring_buffer_kb: 16 },
        proc: { queue_size: 1, socket_buffer_kb: 64 },
        cpu: { enabled: false },
        connections: { enabled: false },
        recovery: { enabled: true, check_ms: 200 },
      };
      const config = writeConfig(join(dir, `${driver}.yaml`), {
        rules_files: ['default'],
        sources,
        // Each alert names its process and says whether its exec was recovered.
        engine: { append_output: [{ match: { source: 'syscall' }, extra_fields: ['proc.pid', 'mw.exec.recovered'] }] },
      });
      const agent = new AgentRun(config, { args: ['--driver', driver] });
      const killers: Array<() => void> = [() => agent.kill()];
      try {
        const started = await agent.started(60_000).catch((e: Error) => e);
        if (started instanceof Error) {
          if (driver === 'ebpf' && /eBPF|BPF/.test(started.message)) return t.skip(`the eBPF driver cannot run here: ${started.message.split('\n').slice(-2).join(' | ')}`);
          throw started;
        }
        assert.equal(started.driver, driver);
        const flood = spawn(flooder, [String(FLOOD_S), String(FLOOD_MAX), '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        flood.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        // Bounded by its own clock and count; stopped here should it overrun.
        const guard = setTimeout(() => flood.kill('SIGKILL'), (FLOOD_S + 20) * 1000);
        killers.push(() => flood.kill('SIGKILL'));
        await sleep((FLOOD_S / 2) * 1000 - STALL_MS / 2);
        process.kill(agent.pid, 'SIGSTOP');
        // Should the test fail while the agent is stopped, the SIGKILL in `finally` ends it all the same.
        const m = spawn(miner, ['-o', 'stratum+tcp://pool.minexmr.com:4444', '-u', WALLET, '--donate-level', '1', '--hold-ms', '60000'], { stdio: 'ignore' });
        killers.push(() => m.kill('SIGKILL'));
        await sleep(STALL_MS);
        process.kill(agent.pid, 'SIGCONT');
        const floodExit = await exitOf(flood);
        clearTimeout(guard);
        const floodEnd = Date.now();
        assert.equal(floodExit.code, 0, `the flooder finished on its own (${JSON.stringify(floodExit)})`);
        const [execs, secs] = out.trim().split(' ').map(Number);
        t.diagnostic(`flood: ${execs} execs in ${secs} s, ${Math.round(execs! / secs!)} execs/s`);
        const alert = await agent.waitAlert((a) => a.output_fields['proc.pid'] === m.pid, AFTER_FLOOD_MS, `an alert for the miner (pid ${m.pid}) within ${AFTER_FLOOD_MS} ms after the flood`);
        t.diagnostic(`miner alerted ${Date.now() - floodEnd} ms after the flood ended by "${alert.rule}", mw.exec.recovered=${String(alert.output_fields['mw.exec.recovered'])}`);
        m.kill('SIGKILL');
        const e = await agent.stop();
        assert.deepEqual(e, { code: 0, signal: null }, agent.tail());
        const stopped = agent.logs.find((l) => l.msg === 'agent stopped');
        assert.ok(stopped, agent.tail());
        const drops = Number(stopped.queueDrops) + Number(stopped.sourceDrops);
        t.diagnostic(`queueDrops ${String(stopped.queueDrops)}, sourceDrops ${String(stopped.sourceDrops)}, recoveredExecs ${String(stopped.recoveredExecs)}`);
        assert.ok(drops > 0, `the flood overflowed the driver or the queue and the drops were counted: ${JSON.stringify(stopped)}`);
      } finally {
        for (const k of killers) k();
      }
    });
  }
});
