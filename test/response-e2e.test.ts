/**
 * Stopping miners end to end: the real agent (`minewatch run --config … --json`) with its
 * detectors on, acting on real processes, and every outcome checked in the alerts it writes.
 *
 *  - execwhacker, configured as cryptnono's example (example/config.json: a banned string and an
 *    allowed pattern), adapted to a random token of this run:
 *      · a long-running process with `CRYPTNONO.banned.STRING1-<tok>` in its argv dies by SIGKILL
 *        (outcome done);
 *      · one with `allowed cryptnono.BANNED.string1-<tok>` is spared by the allowed pattern and lives
 *        (outcome spared);
 *      · cryptnono's `/bin/echo` example, a process that exits before the kill, is reported as
 *        missed, not as an error. Made deterministic: the echo runs in a docker-named cgroup, so the
 *        agent's exec event waits for its container lookup (`lookup_timeout_ms`) on a stand-in
 *        Docker API the test holds; the echo is blocked writing to a full FIFO until the lookup
 *        arrives (by then the agent has read its command line), then the test drains the FIFO, the
 *        echo exits and is reaped, and only then the API answers. Plain fast echoes are run too:
 *        too fast to be seen or missed, never failed, and the agent lives on;
 *      · a rule-driven kill (a `response.actions` entry for a test-only rule) in dryrun leaves the
 *        process alive and records outcome dryrun;
 *      · a process that starts innocently and rewrites its argv in place to the banned string after
 *        2 s is killed by the rescan (`rescan_interval_s: 1`);
 *  - tcpflowkiller: a process connecting to an address listed in a banned IPv4 file dies; one
 *    connecting to 16 distinct destinations (16 ports) within the window, with the test's range
 *    taken off `exempt_cidrs`, dies as a scan;
 *  - block_destination: a second agent runs inside a network namespace the test makes (nftables
 *    tables are per namespace, so its block lands there and never on the host's firewall), with
 *    `response.mode: enforce` and block_destination for a test-only rule matching the fake
 *    miner's connection; a second connection from that namespace to the pool then fails, and
 *    `minewatch response unblock IP --netns NS` makes it work again. That agent uses the /proc
 *    poller (the proc connector belongs to the host's network namespace).
 *
 * Safety, since an agent with its killers on acts on every process of this host: the default
 * banned list is off, every banned string holds this run's random token, the ban list holds only
 * an address of the test's own namespaces, and `exempt_cidrs` is everything but the test's own
 * /28, so no other process (another test's, anyone's) can be counted for a scan. The namespaces
 * have no leg on the host: two namespaces joined by one veth pair.
 *
 * Root only (namespaces, cgroups, nft, killing); skips with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, closeSync, constants as fsConstants, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync,
  rmdirSync, rmSync, writeFileSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Alert, AgentRun, allExceptCidr, compileC, dockerCgroupDirs, type ContainerApi, exitOf, isRunning, randomToken, sleep, startContainerApi, writeConfig } from './helpers/agent-run.js';
import { type Listener, makeNetnsPair, type NetnsPair, probeConnect, removeNetnsPair, spawnIn, startListener } from './helpers/netns.js';
import { haveCommand, isRoot } from './helpers/live.js';
import { CLI, FIXTURES } from './helpers/paths.js';

// ---- what this machine allows ---------------------------------------------------------------------

const NO_ROOT = isRoot() ? undefined : 'SKIPPED: the response end-to-end tests need root (they kill processes, make network namespaces, cgroups and nftables tables)';
const missing = ['cc', 'ip', 'nsenter', 'nft', 'mkfifo'].filter((c) => !haveCommand(c));
const NO_TOOLS = missing.length ? `SKIPPED: needs ${missing.join(', ')} (apt-get install -y gcc iproute2 util-linux nftables coreutils)` : undefined;
const SKIP = NO_ROOT ?? NO_TOOLS;

// ---- this run's names: nothing else on the host can match them ------------------------------------

const TOK = randomToken();
/** cryptnono's example/config.json, its strings suffixed with this run's token. */
const EXAMPLE_CONFIG = {
  bannedCommandStrings: [`cryptnono.banned.string1-${TOK}`],
  allowedCommandPatterns: [`.*allowed\\s+cryptnono\\.banned\\.string1-${TOK}`],
};
/** As cryptnono's README writes them on command lines. */
const BANNED_ARG = `CRYPTNONO.banned.STRING1-${TOK}`;
const ALLOWED_ARGS = ['allowed', `cryptnono.BANNED.string1-${TOK}`];
/** A string only the dryrun rule looks for (the execwhacker does not know it). */
const DRYRUN_ARG = `dryrun.banned.STRING2-${TOK}`;
const DRYRUN_RULE = `Response E2E Dryrun Kill ${TOK}`;
const BLOCK_RULE = `Response E2E Block Destination ${TOK}`;
/** comm names (≤ 15 characters) of the binaries, unique to the run. */
const SHORT = TOK.slice(0, 6);
const NAMES = {
  sleeper: `mwsleep-${SHORT}`,
  allowed: `mwallow-${SHORT}`,
  dryrun: `mwdry-${SHORT}`,
  rewriter: `mwrewr-${SHORT}`,
  banned: `mwban-${SHORT}`,
  scanner: `mwscan-${SHORT}`,
  blocked: `mwblk-${SHORT}`,
};

// ---- the network: two namespaces, one veth pair, no leg on the host ------------------------------

/** The client namespace's address, and the pool namespace's: the block test's pool, the banned address, the scan target. */
const CLIENT_ADDR = '203.0.113.209';
const BLOCK_ADDR = '203.0.113.210';
const BANNED_ADDR = '203.0.113.241';
const SCAN_ADDR = '203.0.113.242';
/** The only range tcpflowkiller counts for scans while the test runs (exempt_cidrs is all the rest). */
const OPEN_RANGE = '203.0.113.240/28';
const BLOCK_PORT = 4446;
const BANNED_PORT = 4447;
const SCAN_PORT = 5100;
const SCAN_COUNT = 16;

const DEADLINE = 15_000;

// ---- C helpers -------------------------------------------------------------------------------------

/**
 * Starts with an innocent argv[1]; after DELAY_MS overwrites it in place (same length) with
 * $MW_REWRITE_TO, so /proc/PID/cmdline shows the new text; then lives LIFE_MS at most.
 */
const REWRITER_C = `
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static void sleep_ms(long ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}
int main(int argc, char **argv) {
  const char *to = getenv("MW_REWRITE_TO");
  if (argc < 4 || !to || strlen(to) != strlen(argv[1])) {
    fprintf(stderr, "usage: MW_REWRITE_TO=S rewriter INNOCENT(same length as S) DELAY_MS LIFE_MS\\n");
    return 2;
  }
  sleep_ms(atol(argv[2]));
  memcpy(argv[1], to, strlen(to));
  printf("rewritten\\n");
  fflush(stdout);
  sleep_ms(atol(argv[3]));
  return 0;
}
`;

/**
 * Opens COUNT TCP connections to ADDR, one per port from FIRST_PORT, holds them HOLD_MS, exits.
 * Documentation ranges and loopback only. Prints "connected N".
 */
const SCANNER_C = `
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: scanner ADDR FIRST_PORT COUNT HOLD_MS\\n"); return 2; }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) return 2;
  unsigned char *b = (unsigned char *)&sa.sin_addr;
  if (!(b[0] == 127 || (b[0] == 198 && b[1] == 51 && b[2] == 100) || (b[0] == 203 && b[1] == 0 && b[2] == 113))) return 2;
  int first = atoi(argv[2]), count = atoi(argv[3]), ok = 0;
  for (int i = 0; i < count; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = htons((unsigned short)(first + i));
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) ok++;
    else fprintf(stderr, "scanner: connect port %d: %s\\n", first + i, strerror(errno));
  }
  printf("connected %d\\n", ok);
  fflush(stdout);
  long ms = atol(argv[4]);
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
  return 0;
}
`;

// ---- shared state -----------------------------------------------------------------------------------

let WORK = '';
const BIN: Record<keyof typeof NAMES, string> = { sleeper: '', allowed: '', dryrun: '', rewriter: '', banned: '', scanner: '', blocked: '' };
let net: NetnsPair | undefined;
let listener: Listener | undefined;
/** Every process the tests start: killed in after(), whatever happened. */
const children: ChildProcess[] = [];
const cgroupDirs: string[] = [];

function track(child: ChildProcess): ChildProcess {
  children.push(child);
  child.on('error', () => {});
  return child;
}

function killQuietly(child: ChildProcess | undefined): void {
  if (child && isRunning(child)) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

before(() => {
  if (SKIP) return;
  WORK = mkdtempSync(join(tmpdir(), 'mw-response-e2e-'));
  chmodSync(WORK, 0o755);
  // The fake miner (it only sleeps without --connect) under several unique names.
  const miner = join(WORK, 'fake-miner');
  compileC(join(FIXTURES, 'agent/fake-miner.c'), miner, { static: true });
  for (const k of ['sleeper', 'allowed', 'dryrun', 'banned', 'blocked'] as const) {
    BIN[k] = join(WORK, NAMES[k]);
    copyFileSync(miner, BIN[k]);
    chmodSync(BIN[k], 0o755);
  }
  writeFileSync(join(WORK, 'rewriter.c'), REWRITER_C);
  BIN.rewriter = join(WORK, NAMES.rewriter);
  compileC(join(WORK, 'rewriter.c'), BIN.rewriter);
  writeFileSync(join(WORK, 'scanner.c'), SCANNER_C);
  BIN.scanner = join(WORK, NAMES.scanner);
  compileC(join(WORK, 'scanner.c'), BIN.scanner);
  net = makeNetnsPair('r', CLIENT_ADDR, [BLOCK_ADDR, BANNED_ADDR, SCAN_ADDR]);
  listener = startListener(net.b, [BLOCK_PORT, BANNED_PORT, ...Array.from({ length: SCAN_COUNT }, (_, i) => SCAN_PORT + i)]);
});

after(() => {
  for (const c of children) killQuietly(c);
  killQuietly(listener?.child);
  for (const d of cgroupDirs) rmdirRetry(d);
  if (net) removeNetnsPair(net);
  if (WORK) rmSync(WORK, { recursive: true, force: true });
});

// ---- small helpers ------------------------------------------------------------------------------------

/** Outcome alerts (`minewatch response: ACTION`) about one pid. */
const outcomesOf = (alerts: Alert[], pid: number, action = 'kill'): Alert[] =>
  alerts.filter((a) => a.rule === `minewatch response: ${action}` && a.output_fields['proc.pid'] === pid);

function waitOutcome(agent: AgentRun, pid: number, what: string, action = 'kill', timeoutMs = DEADLINE): Promise<Alert> {
  return agent.waitAlert((a) => a.rule === `minewatch response: ${action}` && a.output_fields['proc.pid'] === pid, timeoutMs, `${action} outcome for ${what} (pid ${pid})`);
}

/** Resolve with the child's exit, or fail after timeoutMs (the child is then killed by after()). */
async function exitWithin(child: ChildProcess, timeoutMs: number, what: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} (pid ${child.pid}) still running after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([exitOf(child), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function assertOutcome(a: Alert, want: { outcome: string; trigger: string; pid: number }): void {
  const f = a.output_fields;
  assert.equal(f['mw.response.outcome'], want.outcome, `outcome: ${a.output}`);
  assert.equal(f['mw.response.trigger'], want.trigger, `trigger: ${a.output}`);
  assert.equal(f['proc.pid'], want.pid);
  assert.equal(a.source, 'minewatch');
  assert.ok(a.tags.includes(want.outcome), `tags ${a.tags.join(',')}`);
}

/** A cgroup named as docker's cgroupfs driver names a container's (v1 pids hierarchy, else the v2 root). */
function makeContainerCgroup(id: string): string | undefined {
  // The cpu controller, where a runtime puts every container and the eBPF driver's exec record
  // reads a v1 host's cgroup from (a pids-only cgroup would look like the host to it).
  const dir = dockerCgroupDirs(id, ['cpu', 'cpuacct'])[0];
  if (!dir) return undefined;
  // The docker/ parent too, when this test makes it (removed after, if nobody else uses it by then).
  const parent = join(dir, '..');
  try {
    mkdirSync(parent);
    cgroupDirs.push(parent);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  mkdirSync(dir);
  cgroupDirs.unshift(dir);
  return dir;
}

/** rmdir a cgroup, retrying while its last members are on their way out; ENOTEMPTY (someone else's children) leaves it. */
function rmdirRetry(d: string): void {
  for (let i = 0; i < 20; i++) {
    try {
      rmdirSync(d);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTEMPTY') return;
      execFileSync('sleep', ['0.05']);
    }
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

// ---- the agent on the host: execwhacker and tcpflowkiller on, rule-driven kills in dryrun -----------

describe('response end to end: execwhacker and tcpflowkiller in the agent (host, proc connector)', { skip: SKIP }, () => {
  let agent: AgentRun;
  let api: ContainerApi;
  let driver = '';
  /** Container lookups the test holds: container id → (told when asked, answered when released). */
  const holds = new Map<string, { asked: () => void; release: ReturnType<typeof deferred> }>();

  before(async () => {
    api = await startContainerApi(join(WORK, 'docker.sock'), {}, {}, {
      hold: (path) => {
        for (const [id, h] of holds) {
          if (path.includes(id)) {
            h.asked();
            return h.release.promise;
          }
        }
        return undefined;
      },
    });
    const banDir = join(WORK, 'banned-ipv4');
    mkdirSync(banDir);
    writeFileSync(join(banDir, 'pools.txt'), `# this run's banned pool (a namespace of the test)\n${BANNED_ADDR}\n`);
    const rules = join(WORK, 'rules-host.yaml');
    writeFileSync(rules, `- rule: ${DRYRUN_RULE}
  desc: test-only; matches only the process the dryrun test starts (this run's token in its argv)
  condition: evt.type in (execve, execveat) and proc.cmdline contains "${DRYRUN_ARG}"
  output: dryrun test process started (pid=%proc.pid cmdline=%proc.cmdline)
  priority: WARNING
  tags: [test]
`);
    const config = writeConfig(join(WORK, 'host.yaml'), {
      rules_files: [rules],
      engine: { rule_matching: 'all' },
      sources: {
        driver: 'auto',
        cpu: { enabled: false },
        connections: { interval_ms: 100 },
        dns: { hosts_files: [], static: {} },
        // The stand-in Docker API: it answers at once, except for the container the missed test holds.
        containers: { docker_socket: api.socketPath, lookup_timeout_ms: 20_000 },
      },
      // Rule-driven actions: dryrun (the default, left unset on purpose).
      response: { actions: [{ rules: [DRYRUN_RULE], do: ['kill'] }] },
      detectors: {
        execwhacker: { enabled: true, default_list: false, rescan_interval_s: 1, configs: { example: EXAMPLE_CONFIG } },
        tcpflowkiller: {
          enabled: true,
          config: { FlowKiller: { banned_ipv4_file_globs: [join(banDir, '*.txt')], lookback_duration_seconds: 30, unique_destinations_threshold: 15 } },
          exempt_cidrs: allExceptCidr(OPEN_RANGE),
        },
      },
    });
    agent = new AgentRun(config);
    const started = await agent.started();
    driver = String(started.driver);
    await listener!.ready;
  });

  after(async () => {
    for (const h of holds.values()) h.release.resolve();
    await agent?.stop('SIGTERM', 5000).catch(() => undefined);
    agent?.kill();
    await api?.close().catch(() => undefined);
  });

  test("cryptnono's example: a long-running process with CRYPTNONO.banned.STRING1 in its argv dies by SIGKILL", async (t) => {
    t.diagnostic(`driver: ${driver}`);
    const child = track(spawn(BIN.sleeper, ['--hold-ms', '60000', BANNED_ARG], { stdio: 'ignore' }));
    const pid = child.pid!;
    const exit = await exitWithin(child, DEADLINE, 'the banned process');
    assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
    const a = await waitOutcome(agent, pid, 'the banned process');
    assertOutcome(a, { outcome: 'done', trigger: 'execwhacker', pid });
    assert.equal(a.output_fields['mw.response.config'], 'example');
    assert.equal(a.output_fields['mw.response.banned'], EXAMPLE_CONFIG.bannedCommandStrings[0]);
    assert.equal(a.output_fields['mw.response.mode'], 'enforce');
    assert.match(String(a.output_fields['proc.cmdline']), new RegExp(BANNED_ARG));
    assert.match(String(a.output_fields['mw.response.reason']), /^sent SIGKILL to pid \d+/);
    assert.equal(a.priority, 'Critical');
    t.diagnostic(String(a.output_fields['mw.response.reason']));
  });

  test("cryptnono's example: 'allowed cryptnono.BANNED.string1' is spared by the allowed pattern and lives", async () => {
    const child = track(spawn(BIN.allowed, ['--hold-ms', '60000', ...ALLOWED_ARGS], { stdio: 'ignore' }));
    const pid = child.pid!;
    const a = await waitOutcome(agent, pid, 'the allowed process');
    assertOutcome(a, { outcome: 'spared', trigger: 'execwhacker', pid });
    assert.equal(a.output_fields['mw.response.banned'], EXAMPLE_CONFIG.bannedCommandStrings[0]);
    assert.equal(a.output_fields['mw.response.allowed_by'], EXAMPLE_CONFIG.allowedCommandPatterns[0]);
    assert.equal(a.output_fields['mw.response.allowed_config'], 'example');
    // Two rescans later it still lives, and nothing else was decided about it.
    await sleep(2500);
    assert.ok(isRunning(child), `the allowed process died: ${JSON.stringify({ code: child.exitCode, signal: child.signalCode })}`);
    assert.deepEqual(outcomesOf(agent.alerts, pid).map((x) => x.output_fields['mw.response.outcome']), ['spared']);
    child.kill('SIGKILL');
  });

  test("cryptnono's /bin/echo example: a process that exits before the kill is reported as missed, not as an error", async (t) => {
    // 1. As cryptnono runs it: echo is usually gone before anyone reads its command line. Whatever
    //    happens to each (unseen, missed, killed mid-write), nothing fails and the agent lives on.
    const echoes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const e = track(spawn('/bin/echo', [BANNED_ARG], { stdio: 'ignore' }));
      echoes.push(e.pid!);
      await exitOf(e);
    }
    // A banned sleeper after them: once its kill is reported, the echoes' exec events (earlier in
    // the agent's FIFO queue) have been decided too.
    const sync = track(spawn(BIN.sleeper, ['--hold-ms', '60000', BANNED_ARG], { stdio: 'ignore' }));
    await waitOutcome(agent, sync.pid!, 'the sync sleeper');
    await sleep(300);
    const fast = echoes.flatMap((p) => outcomesOf(agent.alerts, p));
    t.diagnostic(`fast echoes: ${echoes.length} run, outcomes: ${JSON.stringify(fast.map((a) => a.output_fields['mw.response.outcome']))}`);
    for (const a of fast) assert.ok(['missed', 'done'].includes(String(a.output_fields['mw.response.outcome'])), a.output);

    // 2. Deterministic: seen alive, gone before the kill.
    const id = randomBytes(32).toString('hex');
    const cg = makeContainerCgroup(id);
    if (!cg) return t.skip('no cgroup v1 pids hierarchy nor cgroup v2 root: cannot hold the exec event');
    const asked = deferred();
    const release = deferred();
    holds.set(id, { asked: asked.resolve, release });
    const fifo = join(WORK, `echo-${id.slice(0, 8)}.fifo`);
    execFileSync('mkfifo', [fifo]);
    const rfd = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    let child: ChildProcess;
    try {
      // Fill the FIFO to the brim, so the echo blocks in write(2), alive, until the test reads.
      const fill = openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      const page = Buffer.alloc(4096, 0x2e);
      for (;;) {
        try {
          writeSync(fill, page);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
          throw e;
        }
      }
      closeSync(fill);
      const wfd = openSync(fifo, fsConstants.O_WRONLY);
      // sh joins the container's cgroup, then becomes cryptnono's echo (same pid). The banned
      // string reaches echo through the environment: sh's own argv must not hold it.
      child = track(spawn('/bin/sh', ['-c', 'echo $$ > "$MW_CG/cgroup.procs" && exec /bin/echo "$MW_B"'], {
        stdio: ['ignore', wfd, 'pipe'],
        env: { ...process.env, MW_CG: cg, MW_B: BANNED_ARG },
      }));
      closeSync(wfd);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const pid = child.pid!;
      // The agent asks the runtime about the container after it has read the echo's /proc entry.
      const early = exitOf(child).then((x) => {
        throw new Error(`the echo exited before the agent looked at it: ${JSON.stringify(x)} ${err}`);
      });
      early.catch(() => {});
      await Promise.race([asked.promise, early, sleep(DEADLINE).then(() => {
        throw new Error(`the agent never asked about container ${id.slice(0, 12)}\n${agent.tail()}`);
      })]);
      assert.ok(isRunning(child), 'the echo is still blocked in write(2) when the agent looks');
      assert.equal(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), `/bin/echo\0${BANNED_ARG}\0`);
      // Now let it finish: drain the FIFO until the echo has written its line and gone.
      const buf = Buffer.alloc(65536);
      let out = '';
      const until = Date.now() + DEADLINE;
      for (;;) {
        let n: number;
        try {
          n = readSync(rfd, buf);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          if (Date.now() > until) throw new Error('the echo never finished writing');
          await sleep(5);
          continue;
        }
        if (n === 0) break; // EOF: the echo closed its end (exited)
        out += buf.subarray(0, n).toString('latin1');
      }
      assert.ok(out.endsWith(`${BANNED_ARG}\n`), 'the echo wrote its line');
      assert.deepEqual(await exitOf(child), { code: 0, signal: null });
      // Reaped (node has seen the exit): only now may the agent go on.
      release.resolve();
      const a = await waitOutcome(agent, pid, 'the echo');
      assertOutcome(a, { outcome: 'missed', trigger: 'execwhacker', pid });
      assert.equal(a.priority, 'Notice');
      assert.match(String(a.output_fields['mw.response.reason']), /gone/);
      assert.equal(a.output_fields['container.id'], id.slice(0, 12));
      assert.match(String(a.output_fields['proc.cmdline']), new RegExp(`^echo ${BANNED_ARG}$`));
      t.diagnostic(`held echo: ${a.output}`);
    } finally {
      release.resolve();
      closeSync(rfd);
    }
    // Nothing failed anywhere in this run so far, and the agent is still up.
    const failed = agent.alerts.filter((a) => a.output_fields['mw.response.outcome'] === 'failed');
    assert.deepEqual(failed.map((a) => a.output), []);
    assert.equal(agent.exit, undefined, `the agent exited: ${agent.tail()}`);
  });

  test('a rule-driven kill in dryrun (the default mode) leaves the process alive and records outcome dryrun', async () => {
    const child = track(spawn(BIN.dryrun, ['--hold-ms', '60000', DRYRUN_ARG], { stdio: 'ignore' }));
    const pid = child.pid!;
    const rule = await agent.waitAlert((a) => a.rule === DRYRUN_RULE && String(a.output).includes(`pid=${pid} `), DEADLINE, 'the dryrun rule');
    assert.equal(rule.priority, 'Warning');
    const a = await waitOutcome(agent, pid, 'the dryrun process');
    assertOutcome(a, { outcome: 'dryrun', trigger: DRYRUN_RULE, pid });
    assert.equal(a.output_fields['mw.response.mode'], 'dryrun');
    assert.match(String(a.output_fields['mw.response.reason']), new RegExp(`^would send SIGKILL to pid ${pid} \\(${NAMES.dryrun}`));
    assert.equal(a.priority, 'Warning');
    await sleep(1500); // a rescan too: the execwhacker does not know this string
    assert.ok(isRunning(child), 'the dryrun process lives');
    assert.deepEqual(outcomesOf(agent.alerts, pid).map((x) => x.output_fields['mw.response.outcome']), ['dryrun']);
    child.kill('SIGKILL');
  });

  test('a process that rewrites its argv to a banned string after 2 s is killed by the rescan', async () => {
    const innocent = 'i'.repeat(BANNED_ARG.length);
    const started = Date.now();
    const child = track(spawn(BIN.rewriter, [innocent, '2000', '60000'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MW_REWRITE_TO: BANNED_ARG } }));
    const pid = child.pid!;
    let rewrittenAt = 0;
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('rewritten')) rewrittenAt = Date.now();
    });
    // Generous: the rewrite at 2 s, a rescan every second.
    const exit = await exitWithin(child, 20_000, 'the argv rewriter');
    assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
    assert.ok(Date.now() - started >= 2000, 'killed only after the rewrite');
    assert.ok(rewrittenAt > 0, 'it had rewritten its argv');
    const a = await waitOutcome(agent, pid, 'the argv rewriter');
    assertOutcome(a, { outcome: 'done', trigger: 'execwhacker', pid });
    assert.equal(a.output_fields['mw.response.rescan'], true);
    assert.equal(a.output_fields['mw.response.banned'], EXAMPLE_CONFIG.bannedCommandStrings[0]);
    assert.equal(outcomesOf(agent.alerts, pid).length, 1, 'one decision about it');
  });

  test('tcpflowkiller: a process connecting to an address in a banned IPv4 file is killed', async () => {
    const child = track(spawnIn(net!.a, BIN.banned, ['-o', `stratum+tcp://pool.invalid:${BANNED_PORT}`, '-u', 'x', '--connect', BANNED_ADDR, '--hold-ms', '60000']));
    const pid = child.pid!;
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exit = await exitWithin(child, DEADLINE, 'the process connecting to the banned address');
    assert.deepEqual(exit, { code: null, signal: 'SIGKILL' }, out);
    assert.match(out, new RegExp(`connected ${BANNED_ADDR.replace(/\./g, '\\.')}:${BANNED_PORT}`));
    const a = await waitOutcome(agent, pid, 'the banned-address process');
    assertOutcome(a, { outcome: 'done', trigger: 'tcpflowkiller', pid });
    assert.equal(a.output_fields['mw.response.banned-ip'], BANNED_ADDR);
    assert.equal(a.output_fields['fd.rip'], BANNED_ADDR);
    assert.match(a.output, /reason=banned-ip/);
  });

  test(`tcpflowkiller: a process connecting to ${SCAN_COUNT} distinct destinations within the window is killed as a scan`, async () => {
    const child = track(spawnIn(net!.a, BIN.scanner, [SCAN_ADDR, String(SCAN_PORT), String(SCAN_COUNT), '60000']));
    const pid = child.pid!;
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exit = await exitWithin(child, DEADLINE, 'the scanner');
    assert.deepEqual(exit, { code: null, signal: 'SIGKILL' }, `${out}${err}`);
    const a = await waitOutcome(agent, pid, 'the scanner');
    assertOutcome(a, { outcome: 'done', trigger: 'tcpflowkiller', pid });
    assert.match(a.output, /reason=scan/);
    assert.equal(a.output_fields['mw.response.destinations'], SCAN_COUNT);
    const addrs = String(a.output_fields['mw.response.addresses']).split(' ');
    assert.equal(new Set(addrs).size, SCAN_COUNT);
    for (const d of addrs) assert.match(d, new RegExp(`^${SCAN_ADDR.replace(/\./g, '\\.')}:\\d+$`));
  });
});

// ---- block_destination: a second agent inside the client namespace --------------------------------

describe('response end to end: block_destination by an agent inside a network namespace', { skip: SKIP }, () => {
  let agent: AgentRun;
  let hostHadTable = false;

  before(async () => {
    hostHadTable = hostTableExists();
    const rules = join(WORK, 'rules-block.yaml');
    writeFileSync(rules, `- rule: ${BLOCK_RULE}
  desc: test-only; matches only the block test's fake miner connecting to the test's pool
  condition: evt.type = connect and proc.name = ${NAMES.blocked} and fd.sip = ${BLOCK_ADDR}
  output: fake miner connected to the pool (pid=%proc.pid connection=%fd.name)
  priority: CRITICAL
  tags: [test]
`);
    const config = writeConfig(join(WORK, 'netns.yaml'), {
      rules_files: [rules],
      engine: { rule_matching: 'all' },
      sources: { driver: 'procfs', cpu: { enabled: false }, connections: { interval_ms: 100 }, dns: { hosts_files: [], static: {} } },
      response: { mode: 'enforce', block_ttl_s: 600, actions: [{ rules: [BLOCK_RULE], do: ['block_destination'] }] },
    });
    agent = new AgentRun(config, { netns: net!.a, args: ['--driver', 'procfs'] });
    await agent.started();
    await listener!.ready;
  });

  after(async () => {
    await agent?.stop('SIGTERM', 5000).catch(() => undefined);
    agent?.kill();
  });

  test('the pool address goes into the namespace\'s nftables set: a second connection fails until `minewatch response unblock`', async (t) => {
    // The path works before anything is blocked.
    assert.deepEqual(await probeConnect(net!.a, BLOCK_ADDR, BLOCK_PORT), { ok: true });
    const child = track(spawnIn(net!.a, BIN.blocked, ['-o', `stratum+tcp://pool.invalid:${BLOCK_PORT}`, '-u', 'x', '--connect', BLOCK_ADDR, '--hold-ms', '4000']));
    const pid = child.pid!;
    const rule = await agent.waitAlert((a) => a.rule === BLOCK_RULE && a.output.includes(`pid=${pid} `), DEADLINE, 'the block rule');
    assert.match(String(rule.output_fields['fd.name']), new RegExp(`->${BLOCK_ADDR.replace(/\./g, '\\.')}:${BLOCK_PORT}$`));
    const a = await waitOutcome(agent, pid, 'the fake miner', 'block_destination');
    assertOutcome(a, { outcome: 'done', trigger: BLOCK_RULE, pid });
    assert.equal(a.output_fields['fd.rip'], BLOCK_ADDR);
    assert.match(String(a.output_fields['mw.response.reason']), new RegExp(`added ${BLOCK_ADDR.replace(/\./g, '\\.')} to nftables set inet minewatch blocked4 for 600 s`));
    t.diagnostic(a.output);

    // A second connection from the namespace to the blocked address fails.
    const blocked = await probeConnect(net!.a, BLOCK_ADDR, BLOCK_PORT);
    assert.equal(blocked.ok, false, 'the second connection got through');
    const listed = JSON.parse(execFileSync(process.execPath, [CLI, 'response', 'blocked', '--json', '--netns', net!.a], { encoding: 'utf8' })) as Array<{ ip: string; ttl_s: number | null }>;
    assert.deepEqual(listed.map((e) => [e.ip, e.ttl_s]), [[BLOCK_ADDR, 600]]);

    // Unblocked by hand, it works again.
    const out = execFileSync(process.execPath, [CLI, 'response', 'unblock', BLOCK_ADDR, '--netns', net!.a], { encoding: 'utf8' });
    assert.equal(out.trim(), `unblocked ${BLOCK_ADDR}`);
    assert.deepEqual(await probeConnect(net!.a, BLOCK_ADDR, BLOCK_PORT), { ok: true });
    assert.equal((await exitWithin(child, DEADLINE, 'the fake miner')).code, 0);
    // Only ever in the namespace: the host's firewall did not get a minewatch table from us.
    if (!hostHadTable) assert.equal(hostTableExists(), false, "a minewatch table appeared in the host's nftables");
    assert.equal(agent.alerts.filter((x) => x.output_fields['mw.response.outcome'] === 'failed').length, 0);
  });
});

function hostTableExists(): boolean {
  try {
    execFileSync('nft', ['list', 'table', 'inet', 'minewatch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
