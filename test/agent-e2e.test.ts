/**
 * The agent end to end: `minewatch run --config FILE --json` as a child process, watching this
 * machine. A harmless fake miner (test/fixtures/agent/fake-miner.c, compiled here as `xmrig`)
 * connects to a stand-in pool in a network namespace the test creates; the test reads the alerts
 * the agent writes and its log lines. Covered:
 *  - a miner on the host: every miner rule, and the pool connection named through the static DNS;
 *  - the same with the /proc poller, agent and miner as an unprivileged user;
 *  - the same inside a hand-made container (test/fixtures/agent/fake-runtime.c: a docker-named
 *    cgroup, its own network, mount and pid namespaces, an overlayfs root): the alerts carry its
 *    container.id, its connection is seen from inside its own network namespace, and the binary
 *    on the overlay's upper layer counts as drift;
 *  - a busy loop in such a container (its image named by a stand-in Docker Engine API on a unix
 *    socket) is reported as sustained CPU use with the container's id and image, for the process
 *    and for the container; once the image is on mw_allowed_cpu_heavy_images it is not;
 *  - ordinary activity (a compile, npm install, shell loops, curl) gives no alert;
 *  - rules reload (a bad file refused, a good one taken, SIGHUP), drops under a burst, clean exits
 *    and clear errors for a bad config, sustained CPU.
 * A marker process matched by a test-only rule proves the agent has caught up: its queue is FIFO,
 * so once the marker's alert is out every exec before it has been evaluated. The same test-only
 * rules file appends the pid and session id to every default rule's output (the default outputs
 * do not name the pid), so each alert is tied to the process the test started, whatever else runs
 * on the machine meanwhile (other test files, in parallel).
 *
 * Needs root for everything that makes namespaces, cgroups or switches users, `ip` for the
 * namespaces, `cc` for the fixtures: each part skips with the reason when they are missing.
 * Only loopback and namespaces made here are ever contacted (documentation addresses).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Alert, AgentRun, compileC, dockerCgroupDirs, type ContainerApi, Marker, markerRules, MARKER_RULE, sleep, startContainerApi, writeConfig } from './helpers/agent-run.js';
import { addContainerNetns, makeEmptyNetns, makePoolNetns, type PoolNetns, type PoolServer, removeNetns, removePoolNetns, startPool } from './helpers/netns.js';
import { haveCommand, isRoot } from './helpers/live.js';
import { FIXTURES, ROOT } from './helpers/paths.js';
import { MINER_RULES, WALLET } from './helpers/miner.js';

// A Monero address from the miner fixture (its checksum is valid, so mw.wallet.* finds it).
const POOL_NAME = 'pool.minexmr.com';
const POOL_ADDR = '198.51.100.7';
const POOL_PORT = 4444;
const MINER_ARGS = ['-o', `stratum+tcp://${POOL_NAME}:${POOL_PORT}`, '-u', WALLET, '--donate-level', '1'];
const NOBODY = { uid: 65534, gid: 65534 };


const DEADLINE = 15_000;

// ---- what this machine allows -------------------------------------------------------------------

const NO_CC = haveCommand('cc') ? undefined : 'needs a C compiler (`cc`) for the fake miner fixture';
const NO_ROOT = isRoot() ? undefined : 'needs root (network namespaces, cgroups, switching users)';
const NO_IP = haveCommand('ip') ? undefined : 'needs iproute2 (`ip`): apt-get install -y iproute2';
const NO_SETPRIV = haveCommand('setpriv') ? undefined : 'needs setpriv (util-linux) to run as nobody';
const NO_NSENTER = haveCommand('nsenter') ? undefined : 'needs nsenter (util-linux) to configure the namespaces';
const netSkip = NO_CC ?? NO_ROOT ?? NO_IP ?? NO_NSENTER;

// ---- shared fixtures ------------------------------------------------------------------------------

/** World-readable work folder: the unprivileged agent reads its config and runs binaries from here. */
let WORK = '';
let MINER = '';
let BUSY = '';
let RUNTIME = '';
let staticMiner = false;
const ruleNames = [...readFileSync(join(ROOT, 'rules/minewatch_rules.yaml'), 'utf8').matchAll(/^- rule: (.+)$/gm)].map((m) => m[1]!.trim());

/**
 * The test-only rules file: the marker rule, and every default rule's output extended with the
 * process's pid and session id (Falco's `override: {output: append}`), so each alert can be tied
 * to the process the test started; the default outputs do not name the pid.
 */
function testRules(): string {
  const appends = ruleNames.map((r) => `- rule: ${r}\n  output: pid=%proc.pid sid=%proc.sid\n  override:\n    output: append\n`).join('\n');
  return markerRules(`\n${appends}`);
}

function agentConfig(extra: { sources?: Record<string, unknown>; rules_files?: string[] } = {}): Record<string, unknown> {
  return {
    rules_files: extra.rules_files ?? ['default', join(WORK, 'marker.yaml')],
    engine: { rule_matching: 'all' },
    sources: {
      cpu: { interval_ms: 200, threshold: 0.5, duration_s: 1 },
      dns: { hosts_files: [], static: { [POOL_NAME]: POOL_ADDR } },
      ...extra.sources,
    },
  };
}

before(() => {
  WORK = mkdtempSync(join(tmpdir(), 'mw-agent-e2e-'));
  chmodSync(WORK, 0o755);
  if (NO_CC) return;
  MINER = join(WORK, 'xmrig');
  compileC(join(FIXTURES, 'agent/fake-miner.c'), MINER, { static: true });
  staticMiner = isStatic(MINER);
  const busy = join(WORK, 'busy.c');
  writeFileSync(busy, 'int main(void) { volatile unsigned long x = 0; for (;;) x++; }\n');
  BUSY = join(WORK, 'mwbusy');
  compileC(busy, BUSY);
  RUNTIME = join(WORK, 'fake-runtime');
  compileC(join(FIXTURES, 'agent/fake-runtime.c'), RUNTIME);
  writeFileSync(join(WORK, 'marker.yaml'), testRules());
  chmodSync(join(WORK, 'marker.yaml'), 0o644);
});

after(() => {
  if (WORK) rmSync(WORK, { recursive: true, force: true });
});

/** A static ELF64 binary has no PT_INTERP program header (no dynamic loader to find in a bare root). */
function isStatic(path: string): boolean {
  const b = readFileSync(path);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const size = b.readUInt16LE(0x36);
  const count = b.readUInt16LE(0x38);
  for (let i = 0; i < count; i++) if (b.readUInt32LE(phoff + i * size) === 3) return false;
  return true;
}

/** Alerts of one process, by the pid the test appended to every output. */
const ofPid = (alerts: Alert[], pid: number): Alert[] => alerts.filter((a) => a.output_fields['proc.pid'] === pid);

function waitRules(agent: AgentRun, pid: number, rules: readonly string[], what: string): Promise<Alert[]> {
  return Promise.all(rules.map((r) => agent.waitAlert((a) => a.rule === r && a.output_fields['proc.pid'] === pid, DEADLINE, `${r} for ${what} (pid ${pid})`)));
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

function killQuietly(child: ChildProcess | undefined): void {
  if (child && child.exitCode === null && child.signalCode === null) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Spawn and collect stderr; never throws on spawn errors (they show as the exit). */
function start(cmd: string, args: string[], opts: { env?: Record<string, string>; detached?: boolean; cwd?: string; stdin?: boolean } = {}): { child: ChildProcess; err: () => string; out: () => string } {
  const child = spawn(cmd, args, { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env }, detached: opts.detached, cwd: opts.cwd });
  let err = '';
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.on('error', (e) => (err += `spawn error: ${e.message}`));
  return { child, err: () => err, out: () => out };
}

/** Check a miner's alerts: every rule, the wallet, the pool connection with its DNS name. */
function checkMinerAlerts(alerts: Alert[], pid: number): Alert {
  const byRule = new Map(alerts.map((a) => [a.rule, a]));
  for (const r of MINER_RULES) assert.ok(byRule.has(r), `${r} for pid ${pid}`);
  const known = byRule.get('Known Miner Program Launched')!;
  assert.equal(known.output_fields['proc.name'], 'xmrig');
  assert.equal(byRule.get('Mining Pool URL in Command Line')!.output_fields['mw.stratum.host'], POOL_NAME);
  assert.equal(byRule.get('Mining Pool URL in Command Line')!.output_fields['mw.stratum.port'], POOL_PORT);
  assert.equal(byRule.get('Wallet Address in Command Line or Environment')!.output_fields['mw.wallet.address'], WALLET);
  const conn = byRule.get('Outbound Connection to a Mining Pool')!;
  assert.equal(conn.output_fields['fd.sip.name'], POOL_NAME);
  assert.equal(conn.output_fields['fd.sport'], POOL_PORT);
  assert.equal(conn.output_fields['proc.pid'], pid);
  assert.match(String(conn.output_fields['fd.name']), new RegExp(`->${POOL_ADDR.replace(/\./g, '\\.')}:${POOL_PORT}$`));
  // The connection belongs to the miner as it runs now, not to the image it was forked from.
  assert.equal(conn.output_fields['proc.name'], 'xmrig', `the connection is attributed to ${String(conn.output_fields['proc.name'])} (${String(conn.output_fields['proc.cmdline'])})`);
  for (const a of alerts) assert.equal(a.priority === 'Critical' || a.priority === 'Warning', true, `${a.rule}: priority ${a.priority}`);
  return conn;
}

// ---- the agent as root, with the kernel's proc connector (or the poller where it cannot run) ------

describe('agent end to end: root, default driver', { skip: netSkip }, () => {
  let agent: AgentRun;
  let pool: PoolNetns | undefined;
  let server: PoolServer | undefined;
  let marker: Marker;
  let driver = '';
  const children: ChildProcess[] = [];
  const cleanups: Array<() => void> = [];

  before(async () => {
    pool = makePoolNetns('e');
    server = startPool(pool, POOL_ADDR, POOL_PORT);
    marker = new Marker(WORK, MINER);
    agent = new AgentRun(writeConfig(join(WORK, 'root.yaml'), agentConfig()));
    driver = String((await agent.started()).driver);
    await server.ready;
    assert.ok(['ebpf', 'proc', 'procfs'].includes(driver), driver);
  });

  after(async () => {
    for (const c of children) killQuietly(c);
    agent?.kill();
    killQuietly(server?.child);
    for (const f of cleanups.reverse()) {
      try {
        f();
      } catch {
        /* best effort */
      }
    }
    if (pool) removePoolNetns(pool);
  });

  test('a miner on the host sets off every miner rule, and its pool connection is named through the static DNS', async (t) => {
    t.diagnostic(`driver: ${driver}`);
    const m = start(MINER, MINER_ARGS, {
      env: { FAKE_MINER_CONNECT: POOL_ADDR, FAKE_MINER_BIND_DEV: pool!.hostIf, FAKE_MINER_HOLD_MS: '2500' },
    });
    children.push(m.child);
    const pid = m.child.pid!;
    const alerts = await waitRules(agent, pid, MINER_RULES, 'the host miner');
    checkMinerAlerts(alerts, pid);
    assert.equal(await exitOf(m.child), 0, `the fake miner failed: ${m.err()}`);
    assert.ok(server!.received.some((l) => l.includes('"login"') && l.includes(WALLET)), 'the pool got the login line');
    // Nothing else alerted for that pid but miner rules (the eBPF driver also reads its login off the wire).
    const expected: readonly string[] = driver === 'ebpf' ? [...MINER_RULES, 'Stratum Mining Protocol on the Wire'] : MINER_RULES;
    for (const a of ofPid(agent.alerts, pid)) assert.ok(expected.includes(a.rule), `unexpected ${a.rule}`);
  });

  test('a miner in a hand-made container: container.id from its docker-named cgroup, its own network namespace, drift', async (t) => {
    const why = staticMiner ? undefined : 'needs a static fake miner (no static libc for cc -static) to run in a bare overlay root';
    if (why) return t.skip(why);
    const id = randomBytes(32).toString('hex');
    // The cgroup hierarchies to join, named as docker's cgroupfs driver names them.
    const cgDirs = containerCgroupDirs(id);
    if (cgDirs.length === 0) return t.skip('no cgroup v1 cpu/cpuacct hierarchy nor cgroup v2 root found under /sys/fs/cgroup');
    for (const d of cgDirs) {
      const parent = join(d, '..');
      const madeParent = !existsSync(parent);
      mkdirSync(d, { recursive: true });
      cleanups.push(() => {
        rmdirRetry(d);
        if (madeParent) rmdirRetry(parent);
      });
    }
    const cnet = addContainerNetns(pool!, 'c');
    // The root: an overlay whose upper layer holds the miner (dropped in after the image was
    // built, as `docker cp` or a dropper would), mounted by the runtime in the container's own
    // mount namespace.
    const ct = mkdtempSync(join(WORK, 'ct-'));
    for (const d of ['lower', 'upper', 'work', 'rootfs']) mkdirSync(join(ct, d));
    writeFileSync(join(ct, 'lower/README'), 'the image layer\n');
    copyFileSync(MINER, join(ct, 'upper/xmrig'));
    chmodSync(join(ct, 'upper/xmrig'), 0o755);
    const rt = start(RUNTIME, [
      ...cgDirs.flatMap((d) => ['--cgroup', d]),
      '--netns', `/run/netns/${cnet.name}`,
      '--lower', join(ct, 'lower'), '--upper', join(ct, 'upper'), '--work', join(ct, 'work'), '--rootfs', join(ct, 'rootfs'),
      '--wait-stdin', '--', '/xmrig', ...MINER_ARGS,
    ], { env: { FAKE_MINER_CONNECT: POOL_ADDR, FAKE_MINER_HOLD_MS: '2500' }, stdin: true });
    children.push(rt.child);
    // The runtime's own command line names the pool: once its alert is out, the agent has seen it
    // start, and everything after "go" is new.
    await agent.waitAlert((a) => a.output_fields['proc.pid'] === rt.child.pid, DEADLINE, 'the runtime\'s own start');
    rt.child.stdin!.end('go\n');
    const short = id.slice(0, 12);
    const inCt = (r: string) => (a: Alert) => a.rule === r && a.output_fields['proc.name'] === 'xmrig' && a.output_fields['container.id'] === short;
    const [known, conn] = await Promise.all([
      agent.waitAlert(inCt('Known Miner Program Launched'), DEADLINE, 'Known Miner Program Launched in the container'),
      agent.waitAlert(inCt('Outbound Connection to a Mining Pool'), DEADLINE, 'the container\'s pool connection'),
    ]);
    const pid = known.output_fields['proc.pid'] as number;
    const alerts = await waitRules(agent, pid, MINER_RULES, 'the container miner');
    for (const a of alerts) assert.equal(a.output_fields['container.id'], short, `${a.rule} carries the container id`);
    checkMinerAlerts(alerts, pid);
    assert.equal(conn.output_fields['proc.pid'], pid);
    // The connection was made from the container's own network namespace.
    assert.match(String(conn.output_fields['fd.name']), new RegExp(`^${cnet.addr.replace(/\./g, '\\.')}:\\d+->`));
    // The miner was copied into the upper layer after the container started: drift.
    const drift = await agent
      .waitAlert((a) => a.rule === 'Container Drift New Executable Run' && a.output_fields['proc.pid'] === pid, DEADLINE, 'Container Drift New Executable Run')
      .catch((e: Error) => {
        throw new Error(`${e.message}\nthe miner's alerts:\n${ofPid(agent.alerts, pid).map((a) => `${a.rule}: ${a.output}`).join('\n')}`);
      });
    assert.equal(drift.output_fields['proc.is_exe_upper_layer'], true);
    assert.equal(drift.output_fields['container.id'], short);
    assert.equal(await exitOf(rt.child), 0, `the container failed: ${rt.err()}`);
  });

  test('sustained CPU: a busy loop is reported for its pid', async () => {
    const b = start(BUSY, []);
    children.push(b.child);
    try {
      const a = await agent.waitAlert((x) => x.rule === 'Sustained High CPU Use' && x.output_fields['proc.pid'] === b.child.pid, DEADLINE, 'Sustained High CPU Use for the busy loop');
      assert.equal(a.output_fields['proc.name'], 'mwbusy');
      assert.equal(a.output_fields['mw.cpu.scope'], 'process');
      assert.ok(Number(a.output_fields['mw.cpu.percent']) >= 50, `cpu_percent ${String(a.output_fields['mw.cpu.percent'])}`);
    } finally {
      killQuietly(b.child);
      await exitOf(b.child);
    }
  });

  test('ordinary activity gives no alert: a compile, npm install from a folder, shell loops, curl to loopback', async (t) => {
    // Each command in a session of its own (detached): every alert carries proc.sid, so an alert
    // from any of them or their children is told apart from the rest of the machine's activity.
    const sessions = new Set<number>();
    const http: Server = createServer((_req, res) => res.end('hello\n'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const port = (http.address() as AddressInfo).port;
    const from = agent.alerts.length;
    const runSession = async (cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<void> => {
      const p = start(cmd, args, { ...opts, detached: true });
      sessions.add(p.child.pid!);
      const code = await exitOf(p.child);
      assert.equal(code, 0, `${cmd} ${args.join(' ')}: ${p.err()}`);
    };
    try {
      const dir = mkdtempSync(join(WORK, 'benign-'));
      writeFileSync(join(dir, 'hello.c'), '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n');
      await runSession('cc', ['-o', join(dir, 'hello'), join(dir, 'hello.c')]);
      await runSession(join(dir, 'hello'), []);
      if (haveCommand('npm')) {
        mkdirSync(join(dir, 'pkg'));
        writeFileSync(join(dir, 'pkg/package.json'), JSON.stringify({ name: 'mw-e2e-local-pkg', version: '1.0.0', main: 'index.js' }));
        writeFileSync(join(dir, 'pkg/index.js'), 'module.exports = 42;\n');
        mkdirSync(join(dir, 'app'));
        writeFileSync(join(dir, 'app/package.json'), JSON.stringify({ name: 'mw-e2e-app', version: '1.0.0', private: true }));
        await runSession('npm', ['install', '--offline', '--no-audit', '--no-fund', join(dir, 'pkg')], {
          cwd: join(dir, 'app'),
          env: { npm_config_cache: join(dir, 'npm-cache'), npm_config_update_notifier: 'false' },
        });
        assert.ok(existsSync(join(dir, 'app/node_modules/mw-e2e-local-pkg/package.json')), 'npm installed the package');
      } else t.diagnostic('npm not found: npm install part skipped');
      await runSession('sh', ['-c', 'for i in 1 2 3; do echo $i; done; i=0; while [ $i -lt 20 ]; do i=$((i+1)); ls / > /dev/null; done']);
      if (haveCommand('curl')) await runSession('curl', ['-s', '-o', '/dev/null', `http://127.0.0.1:${port}/`]);
      else t.diagnostic('curl not found: curl part skipped');
      // Connections are polled every 250 ms and CPU sampled every 200 ms: let both look once more.
      await sleep(800);
      const mark = await marker.fire(agent, 'after the ordinary activity');
      const window = agent.alerts.slice(from, agent.alerts.indexOf(mark));
      const ours = window.filter((a) => sessions.has(a.output_fields['proc.sid'] as number));
      const others = window.filter((a) => !ours.includes(a) && a.rule !== MARKER_RULE);
      for (const a of others) t.diagnostic(`alert from another process on this machine (not the test's): ${a.rule}: ${a.output}`);
      assert.deepEqual(ours.map((a) => `${a.rule}: ${a.output}`), [], 'no alert for ordinary activity');
    } finally {
      http.close();
    }
  });

  test('SIGTERM stops the agent cleanly: exit code 0 and a final "agent stopped" line with the counters', async () => {
    const e = await agent.stop('SIGTERM');
    assert.deepEqual(e, { code: 0, signal: null }, agent.tail());
    const stopped = agent.logs.find((l) => l.msg === 'agent stopped');
    assert.ok(stopped, 'agent stopped logged');
    assert.ok(Number(stopped.processed) > 0, 'it processed events');
    assert.ok(Number(stopped.alerts) > 0, 'it raised alerts');
    assert.equal(agent.rawErr.filter((l) => /uncaught|TypeError|RangeError|at .*\.js:\d+/i.test(l)).length, 0, agent.rawErr.join('\n'));
  });
});

/** Where to make the container's cgroup: v1 cpu and cpuacct hierarchies, or the v2 root. */
function containerCgroupDirs(id: string): string[] {
  return dockerCgroupDirs(id, ['cpu', 'cpuacct']);
}

function rmdirRetry(d: string): void {
  for (let i = 0; i < 20; i++) {
    try {
      rmdirSync(d);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      // EBUSY while the container's last process is being reaped.
      const until = Date.now() + 100;
      while (Date.now() < until) {
        /* wait */
      }
    }
  }
}

// ---- sustained CPU in a hand-made container, and its image on the allow-list ----------------------

const BUSYBOX_REPO = 'docker.io/library/busybox';
const BUSYBOX_TAG = '1.36';
// Made-up image id and digest, shaped as dockerd gives them.
const BUSYBOX_IMAGE_ID = 'sha256:65ad0d468eb1c558bf7f4e64e790f586e9eda649ee9f130cd0e835b292bbc5ac';
const BUSYBOX_DIGEST = 'sha256:5eef5ed34e1e1ff0a4ae850395cbf665c4de6b4b83a32a0bc7bcb998e24e7bbb';
const SPIN_NAME = 'mwspin';
const CPU_RULE = 'Sustained High CPU Use';

/** GET /containers/<id>/json for `docker run -d --name NAME -l team=batch docker.io/library/busybox:1.36 /mwspin`. */
function busyboxRecord(id: string, name: string): Record<string, unknown> {
  return {
    Id: id,
    Created: '2024-05-03T12:00:00.000000001Z',
    Path: `/${SPIN_NAME}`,
    Args: [],
    State: {
      Status: 'running', Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false,
      Pid: 0, ExitCode: 0, Error: '', StartedAt: '2024-05-03T12:00:01.123456789Z', FinishedAt: '0001-01-01T00:00:00Z',
    },
    Image: BUSYBOX_IMAGE_ID,
    Name: `/${name}`,
    RestartCount: 0,
    Driver: 'overlay2',
    Platform: 'linux',
    HostConfig: { Binds: null, NetworkMode: 'none', Privileged: false, PidMode: '', CapAdd: null },
    Mounts: [],
    Config: {
      Hostname: id.slice(0, 12), User: '', Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: [`/${SPIN_NAME}`], Image: `${BUSYBOX_REPO}:${BUSYBOX_TAG}`,
      Labels: { team: 'batch' },
    },
    NetworkSettings: { IPAddress: '' },
  };
}

/** Pids in a cgroup (v1 or v2: cgroup.procs either way); empty when it is gone. */
function cgroupPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter((l) => l !== '').map(Number);
  } catch {
    return [];
  }
}

function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

describe('agent end to end: sustained CPU in a hand-made container, and its image allow-listed', { skip: netSkip }, () => {
  /** Why the tests cannot run here (found in before()), or undefined. */
  let why: string | undefined;
  let dir = '';
  let api: ContainerApi | undefined;
  let netns: string | undefined;
  let rt: ReturnType<typeof start> | undefined;
  let marker: Marker;
  const id = randomBytes(32).toString('hex');
  const short = id.slice(0, 12);
  const ctrName = `mw-spin-${short.slice(0, 6)}`;
  let spinPid = 0;
  const record = busyboxRecord(id, ctrName);
  const cgDirs: string[] = [];
  const agents: AgentRun[] = [];
  const children: ChildProcess[] = [];
  const cleanups: Array<() => void> = [];

  /** The agent's config: the stand-in's socket, samples every 200 ms, 50 % of a core for 1 s. */
  const config = (name: string, rulesFiles: string[]): string =>
    writeConfig(join(dir, name), agentConfig({
      rules_files: ['default', join(WORK, 'marker.yaml'), ...rulesFiles],
      sources: {
        cpu: { interval_ms: 200, threshold: 0.5, duration_s: 1 },
        containers: { docker_socket: api!.socketPath },
      },
    }));

  before(async () => {
    dir = mkdtempSync(join(WORK, 'ctr-cpu-'));
    chmodSync(dir, 0o755);
    // The loop runs in a bare overlay root: it must be static.
    const spinSrc = join(dir, 'spin.c');
    writeFileSync(spinSrc, 'int main(void) { for (;;); }\n');
    for (const d of ['lower', 'upper', 'work', 'rootfs']) mkdirSync(join(dir, d));
    const spin = join(dir, `lower/${SPIN_NAME}`);
    compileC(spinSrc, spin, { static: true });
    if (!isStatic(spin)) {
      why = 'needs a static busy loop (no static libc for cc -static) to run in a bare overlay root';
      return;
    }
    const found = containerCgroupDirs(id);
    if (found.length === 0) {
      why = 'no cgroup v1 cpu/cpuacct hierarchy nor cgroup v2 root found under /sys/fs/cgroup';
      return;
    }
    for (const d of found) {
      const parent = join(d, '..');
      const madeParent = !existsSync(parent);
      mkdirSync(d, { recursive: true });
      cgDirs.push(d);
      cleanups.push(() => {
        rmdirRetry(d);
        if (madeParent) rmdirRetry(parent);
      });
    }
    netns = makeEmptyNetns('s');
    api = await startContainerApi(join(dir, 'docker.sock'), { [id]: record }, {
      [BUSYBOX_IMAGE_ID]: {
        Id: BUSYBOX_IMAGE_ID,
        RepoTags: [`${BUSYBOX_REPO.replace(/^docker\.io\/library\//, '')}:${BUSYBOX_TAG}`],
        RepoDigests: [`${BUSYBOX_REPO.replace(/^docker\.io\/library\//, '')}@${BUSYBOX_DIGEST}`],
      },
    });
    // The test-only rules: name and tag of the container in the CPU rule's output, besides the
    // id and repository it names already.
    writeFileSync(join(dir, 'cpu-output.yaml'), `- rule: ${CPU_RULE}\n  output: ctr_name=%container.name image_tag=%container.image.tag\n  override:\n    output: append\n`);
    writeFileSync(join(dir, 'allow-busybox.yaml'), `- list: mw_allowed_cpu_heavy_images\n  items: [${BUSYBOX_REPO}]\n  override:\n    items: append\n`);
    marker = new Marker(dir, MINER);
  });

  after(async () => {
    for (const a of agents) a.kill();
    for (const c of children) killQuietly(c);
    if (rt) {
      killQuietly(rt.child);
      // The loop dies with the runtime (PR_SET_PDEATHSIG); whatever is still in the cgroup goes too.
      for (const d of cgDirs) {
        for (const pid of cgroupPids(d)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      await Promise.race([exitOf(rt.child), sleep(5000)]);
    }
    await Promise.all(agents.map((a) => Promise.race([a.exited, sleep(5000)])));
    for (const f of cleanups.reverse()) {
      try {
        f();
      } catch {
        /* best effort */
      }
    }
    if (netns) removeNetns(netns);
    await api?.close().catch(() => undefined);
  });

  test('a busy loop in the container: Sustained High CPU Use for the process and the container, with its id and image from the Docker API', async (t) => {
    if (why) return t.skip(why);
    const agent = new AgentRun(config('ctr-cpu.yaml', [join(dir, 'cpu-output.yaml')]));
    agents.push(agent);
    await agent.started();
    // The image's own binary (lower layer), as `docker run busybox` would run one of busybox's.
    rt = start(RUNTIME, [
      ...cgDirs.flatMap((d) => ['--cgroup', d]),
      '--netns', `/run/netns/${netns!}`,
      '--lower', join(dir, 'lower'), '--upper', join(dir, 'upper'), '--work', join(dir, 'work'), '--rootfs', join(dir, 'rootfs'),
      '--', `/${SPIN_NAME}`,
    ]);
    children.push(rt.child);
    // The loop's pid on the host: the member of the container's cgroup that is not the runtime.
    const deadline = Date.now() + DEADLINE;
    while (spinPid === 0) {
      spinPid = cgroupPids(cgDirs[0]!).find((p) => p !== rt!.child.pid && commOf(p) === SPIN_NAME) ?? 0;
      if (spinPid) break;
      if (rt.child.exitCode !== null || rt.child.signalCode !== null) throw new Error(`the container exited: ${rt.err()}`);
      if (Date.now() > deadline) throw new Error(`no ${SPIN_NAME} in ${cgDirs[0]!} within ${DEADLINE} ms: ${rt.err()}`);
      await sleep(20);
    }
    (record.State as Record<string, unknown>).Pid = spinPid;
    const ofCtr = (scope: string) => (a: Alert) => a.rule === CPU_RULE && a.output_fields['container.id'] === short && a.output_fields['mw.cpu.scope'] === scope;
    const [proc, ctr] = await Promise.all([
      agent.waitAlert(ofCtr('process'), DEADLINE, `${CPU_RULE} (process) for the container's loop`),
      agent.waitAlert(ofCtr('container'), DEADLINE, `${CPU_RULE} (container) for the container`),
    ]);
    t.diagnostic(`process: ${proc.output}`);
    t.diagnostic(`container: ${ctr.output}`);
    assert.equal(proc.output_fields['proc.pid'], spinPid);
    assert.equal(proc.output_fields['proc.name'], SPIN_NAME);
    assert.ok(Number(proc.output_fields['mw.cpu.percent']) >= 50, `cpu_percent ${String(proc.output_fields['mw.cpu.percent'])}`);
    // The container's busiest process stands for it.
    assert.equal(ctr.output_fields['proc.pid'], spinPid);
    assert.ok(Number(ctr.output_fields['mw.cpu.percent']) >= 50, `cpu_percent ${String(ctr.output_fields['mw.cpu.percent'])}`);
    for (const a of [proc, ctr]) {
      assert.equal(a.output_fields['container.id'], short);
      assert.equal(a.output_fields['container.image.repository'], BUSYBOX_REPO, `${String(a.output_fields['mw.cpu.scope'])}: ${a.output}`);
      assert.equal(a.output_fields['container.image.tag'], BUSYBOX_TAG);
      assert.equal(a.output_fields['container.name'], ctrName);
      assert.equal(a.priority, 'Notice');
    }
    assert.ok(api!.requests.some((p) => p.endsWith(`/containers/${id}/json`)), `the agent asked the Docker API about the container: ${JSON.stringify(api!.requests)}`);
    const e = await agent.stop();
    assert.deepEqual(e, { code: 0, signal: null }, agent.tail());
  });

  test('with busybox on mw_allowed_cpu_heavy_images, the same loop gives no Sustained High CPU Use (a host loop still does)', async (t) => {
    if (why) return t.skip(why);
    assert.ok(spinPid !== 0 && commOf(spinPid) === SPIN_NAME, 'the container\'s loop from the first run is still running');
    const fromReq = api!.requests.length;
    const agent = new AgentRun(config('ctr-cpu-allowed.yaml', [join(dir, 'cpu-output.yaml'), join(dir, 'allow-busybox.yaml')]));
    agents.push(agent);
    await agent.started();
    // The proof that the sampler had its chance: a loop on the host, started after the agent
    // (after the container's loop was first sampled), is reported; the container's would have
    // been reported in the same sample or an earlier one, and queued no later.
    const host = start(BUSY, []);
    children.push(host.child);
    try {
      await agent.waitAlert((a) => a.rule === CPU_RULE && a.output_fields['proc.pid'] === host.child.pid, DEADLINE, `${CPU_RULE} for the host loop`);
    } finally {
      killQuietly(host.child);
      await exitOf(host.child);
    }
    // Two more samples, then the marker: everything queued before it has been evaluated.
    await sleep(500);
    const mark = await marker.fire(agent, 'after the allow-listed container\'s loop');
    assert.equal(commOf(spinPid), SPIN_NAME, 'the container\'s loop ran all along');
    const window = agent.alerts.slice(0, agent.alerts.indexOf(mark));
    const ours = window.filter((a) => a.rule === CPU_RULE && (a.output_fields['container.id'] === short || a.output_fields['proc.pid'] === spinPid));
    assert.deepEqual(ours.map((a) => a.output), [], 'no Sustained High CPU Use for the allow-listed image');
    assert.ok(api!.requests.slice(fromReq).some((p) => p.endsWith(`/containers/${id}/json`)), `the new agent asked the Docker API about the container: ${JSON.stringify(api!.requests.slice(fromReq))}`);
    const e = await agent.stop();
    assert.deepEqual(e, { code: 0, signal: null }, agent.tail());
  });
});

// ---- the /proc poller, agent and miner as an unprivileged user ----------------------------------

describe('agent end to end: --driver procfs as nobody', { skip: netSkip ?? NO_SETPRIV }, () => {
  let agent: AgentRun;
  let pool: PoolNetns | undefined;
  let server: PoolServer | undefined;
  const children: ChildProcess[] = [];

  before(async () => {
    pool = makePoolNetns('n');
    server = startPool(pool, POOL_ADDR, POOL_PORT);
    agent = new AgentRun(writeConfig(join(WORK, 'nobody.yaml'), agentConfig()), { args: ['--driver', 'procfs'], user: NOBODY });
    const started = await agent.started();
    assert.equal(started.driver, 'procfs');
    await server.ready;
  });

  after(() => {
    for (const c of children) killQuietly(c);
    agent?.kill();
    killQuietly(server?.child);
    if (pool) removePoolNetns(pool);
  });

  test('the agent runs unprivileged and still sees a miner of the same user, and its pool connection', async () => {
    const m = start('setpriv', [`--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups', '--', MINER, ...MINER_ARGS], {
      env: { FAKE_MINER_CONNECT: POOL_ADDR, FAKE_MINER_BIND_DEV: pool!.hostIf, FAKE_MINER_HOLD_MS: '2500' },
    });
    children.push(m.child);
    // setpriv execs the miner: same pid.
    const pid = m.child.pid!;
    const alerts = await waitRules(agent, pid, MINER_RULES, 'the miner run by nobody');
    checkMinerAlerts(alerts, pid);
    assert.equal(alerts[0]!.output_fields['user.name'], 'nobody');
    assert.equal(await exitOf(m.child), 0, `the fake miner failed: ${m.err()}`);
    const e = await agent.stop();
    assert.deepEqual(e, { code: 0, signal: null }, agent.tail());
  });
});

// ---- rules reload -----------------------------------------------------------------------------------

describe('agent end to end: rules reload', { skip: NO_CC }, () => {
  let agent: AgentRun;
  let marker: Marker;
  let rulesFile = '';

  const ruleFile = (name: string): string => markerRules('', name);

  before(async () => {
    const dir = mkdtempSync(join(WORK, 'reload-'));
    chmodSync(dir, 0o755);
    rulesFile = join(dir, 'rules.yaml');
    writeFileSync(rulesFile, ruleFile('Reload Marker One'));
    marker = new Marker(dir, MINER);
    agent = new AgentRun(writeConfig(join(dir, 'config.yaml'), agentConfig({ rules_files: [rulesFile] })));
    await agent.started();
    await marker.fire(agent, 'the first rules', DEADLINE, 'Reload Marker One');
  });

  after(() => agent?.kill());

  test('a rules file with an error is refused with its file:line:col, and the running rules stay in force', async () => {
    const fromLog = agent.logs.length;
    // An unknown field on line 3: the whole file is refused.
    writeFileSync(rulesFile, ruleFile('Reload Marker Broken').replace('proc.name = ', 'proc.nme = '));
    const err = await agent.waitLog((l) => l.msg === 'rules error', DEADLINE, 'the rules error', fromLog);
    assert.match(String(err.error), new RegExp(`${rulesFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3:\\d+: .*proc\\.nme`));
    const refused = await agent.waitLog((l) => l.msg.startsWith('new rules refused'), DEADLINE, 'new rules refused', fromLog);
    assert.match(String(refused.reason), /changed/);
    // Proof that the old rules still run, after the bad write.
    await marker.fire(agent, 'after the bad file', DEADLINE, 'Reload Marker One');
  });

  test('the fixed file takes over: a rule only in the new file fires, the old one no longer does', async () => {
    const fromLog = agent.logs.length;
    writeFileSync(rulesFile, ruleFile('Reload Marker Two'));
    await agent.waitLog((l) => l.msg.startsWith('rules reloaded'), DEADLINE, 'rules reloaded', fromLog);
    const from = agent.alerts.length;
    const two = await marker.fire(agent, 'after the fix', DEADLINE, 'Reload Marker Two');
    // Both would come out of the same event, together: none from the old rule.
    assert.equal(agent.alerts.slice(from).filter((a) => a.rule === 'Reload Marker One').length, 0);
    assert.equal(two.priority, 'Debug');
  });

  test('SIGHUP reloads the rules', async () => {
    const fromLog = agent.logs.length;
    agent.child.kill('SIGHUP');
    const l = await agent.waitLog((x) => x.msg === 'rules reloaded (SIGHUP)', DEADLINE, 'rules reloaded (SIGHUP)', fromLog);
    assert.equal(l.rules, 1);
    await marker.fire(agent, 'after SIGHUP', DEADLINE, 'Reload Marker Two');
    const stopped = await agent.stop();
    assert.deepEqual(stopped, { code: 0, signal: null }, agent.tail());
    const last = agent.logs.find((x) => x.msg === 'agent stopped')!;
    assert.equal(last.ruleLoads, 3, 'first load, the fixed file, SIGHUP');
    assert.equal(last.ruleReloadsRefused, 1);
  });
});

// ---- a burst: drops are counted, the agent survives -------------------------------------------------

describe('agent end to end: drops under a burst', { skip: NO_CC ?? (isRoot() ? undefined : 'needs root: the burst is measured on the proc connector driver, which older kernels give only to root') }, () => {
  test('queue_size 16 and a burst of 2000 execs: drops are counted in the final stats, the agent exits 0', async (t) => {
    const agent = new AgentRun(writeConfig(join(WORK, 'drops.yaml'), agentConfig({ sources: { queue_size: 16, driver: 'proc' } })));
    try {
      const started = await agent.started();
      assert.equal(started.driver, 'proc');
      // 2000 execs from 8 loops at once: the kernel's notices arrive in batches faster than the
      // queue of 16 drains (one loop alone can be slow enough to keep up).
      const burst = start('sh', ['-c', 'for j in 1 2 3 4 5 6 7 8; do (for i in $(seq 250); do /bin/true; done) & done; wait']);
      assert.equal(await exitOf(burst.child), 0, burst.err());
      await sleep(500);
      const e = await agent.stop();
      assert.deepEqual(e, { code: 0, signal: null }, agent.tail());
      const stopped = agent.logs.find((l) => l.msg === 'agent stopped');
      assert.ok(stopped, `agent stopped logged\n${agent.tail()}`);
      const drops = Number(stopped.queueDrops) + Number(stopped.sourceDrops);
      t.diagnostic(`final stats: processed ${String(stopped.processed)}, queueDrops ${String(stopped.queueDrops)}, sourceDrops ${String(stopped.sourceDrops)}`);
      assert.ok(drops > 0, `drops counted: ${JSON.stringify(stopped)}`);
      assert.ok(Number(stopped.processed) > 0);
    } finally {
      agent.kill();
    }
  });
});

describe('agent end to end: quiet execs', { skip: NO_CC ?? (isRoot() ? undefined : 'needs root: the proc connector, which older kernels give only to root') }, () => {
  test('proc connector: a shell loop of one harmless command is marked quiet, and the miner the loop then starts still alerts', async () => {
    const agent = new AgentRun(writeConfig(join(WORK, 'quiet.yaml'), agentConfig({ sources: { driver: 'proc' } })));
    try {
      assert.equal((await agent.started()).driver, 'proc');
      // 200 execs of /bin/true from one shell look alike to the rules: the third is quiet.
      const loop = start('sh', ['-c', 'for i in $(seq 200); do /bin/true; done; exec "$0" "$@"', MINER, ...MINER_ARGS], { env: { FAKE_MINER_HOLD_MS: '300' } });
      const pid = loop.child.pid!;
      await waitRules(agent, pid, ['Known Miner Program Launched', 'Mining Pool URL in Command Line'], 'the miner after a quiet storm');
      assert.equal(await exitOf(loop.child), 0, loop.err());
      const e = await agent.stop();
      assert.deepEqual(e, { code: 0, signal: null }, agent.tail());
      const stopped = agent.logs.find((l) => l.msg === 'agent stopped');
      assert.ok(stopped, `agent stopped logged\n${agent.tail()}`);
      assert.ok(Number(stopped.quietExecs) >= 1, `the loop's command was marked quiet: ${JSON.stringify(stopped)}`);
    } finally {
      agent.kill();
    }
  });
});

/**
 * An agent on the proc connector whose marker rule reads nothing extra, fired once; then a reload
 * that adds `field` to the rule's output, and the log line (starting `logged`) that says the
 * reads behind it turned on, which is logged only when they were off.
 */
async function procReadsTurnedOn(name: string, field: string, logged: string): Promise<{ agent: AgentRun; marker: Marker }> {
  const dir = mkdtempSync(join(WORK, `${name}-`));
  chmodSync(dir, 0o755);
  const rulesFile = join(dir, 'rules.yaml');
  writeFileSync(rulesFile, markerRules());
  const marker = new Marker(dir, MINER);
  const agent = new AgentRun(writeConfig(join(dir, 'config.yaml'), agentConfig({ rules_files: [rulesFile], sources: { driver: 'proc' } })));
  try {
    assert.equal((await agent.started()).driver, 'proc');
    await marker.fire(agent, `rules that do not read ${name}`, DEADLINE);
    const fromLog = agent.logs.length;
    writeFileSync(rulesFile, markerRules().replace('pid=%proc.pid)', `pid=%proc.pid ${field})`));
    const on = await agent.waitLog((l) => l.msg.startsWith(logged), DEADLINE, `${name} reads turned on`, fromLog);
    assert.equal(typeof on.processes, 'number', 'how many running processes were read again');
  } catch (e) {
    agent.kill();
    throw e;
  }
  return { agent, marker };
}

describe('agent end to end: loginuid under the proc connector', { skip: NO_CC ?? (isRoot() ? undefined : 'needs root: the proc connector, and a process setting its loginuid') }, () => {
  test('read with each exec only once the rules read it: a reload that names user.loginuid turns it on, and the alert says it', async (t) => {
    const { agent, marker } = await procReadsTurnedOn('loginuid', 'loginuid=%user.loginuid', 'the rules read loginuid');
    try {
      const token = `--mark=loginuid-${Date.now()}`;
      const from = agent.alerts.length;
      const child = spawn('sh', ['-c', 'echo 4245 > /proc/self/loginuid || exit 3; exec "$0" "$@"', marker.path, '--hold-ms', '400', token], { stdio: 'ignore' });
      const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const alert = await Promise.race([
        agent.waitAlert((a) => a.rule === MARKER_RULE && String(a.output_fields['proc.cmdline'] ?? '').includes(token), DEADLINE, 'the marker with its loginuid', from),
        exit.then((code) => (code === 3 ? undefined : new Promise<never>(() => {}))),
      ]);
      if (!alert) return t.skip('this host does not let a process set its loginuid (loginuid_immutable)');
      assert.equal(alert.output_fields['user.loginuid'], 4245);
    } finally {
      agent.kill();
    }
  });
});

describe('agent end to end: /proc/PID/status under the proc connector', { skip: NO_CC ?? (isRoot() ? undefined : 'needs root: the proc connector') }, () => {
  test('read with each exec only once the rules read a capability or the vpid: a reload that names thread.cap_effective turns it on, and the alert says it', async () => {
    const { agent, marker } = await procReadsTurnedOn('status', 'caps=%thread.cap_effective', 'the rules read a vpid or capabilities');
    try {
      const alert = await marker.fire(agent, 'rules that read the effective capabilities', DEADLINE);
      // The marker runs as root: its effective set names CAP_SYS_ADMIN among the rest.
      assert.match(String(alert.output_fields['thread.cap_effective']), /\bCAP_SYS_ADMIN\b/);
    } finally {
      agent.kill();
    }
  });
});

// ---- config and start-up errors ----------------------------------------------------------------------

describe('agent end to end: start-up errors', () => {
  test('an unknown config key: exit 1, the key\'s path and file:line:col on stderr', async () => {
    const cfg = join(WORK, 'typo.yaml');
    writeFileSync(cfg, 'engine:\n  rule_matching: all\nsources:\n  cpu:\n    interval_ms: 200\n    treshold: 0.5\n');
    const agent = new AgentRun(cfg);
    const e = await agent.exited;
    await sleep(50);
    assert.deepEqual(e, { code: 1, signal: null });
    const err = agent.rawErr.join('\n');
    assert.ok(err.includes(`${cfg}:6:5: sources.cpu.treshold: unknown key`), err);
    assert.equal(agent.logs.filter((l) => l.msg === 'agent started').length, 0);
  });

  test('a missing rules file: exit 1 with a clear message', async () => {
    const missing = join(WORK, 'no-such-rules.yaml');
    const agent = new AgentRun(writeConfig(join(WORK, 'missing-rules.yaml'), agentConfig({ rules_files: ['default', missing] })));
    const e = await agent.exited;
    await sleep(50);
    assert.deepEqual(e, { code: 1, signal: null });
    const err = agent.rawErr.join('\n');
    assert.ok(err.includes(missing) && /cannot read rules file: ENOENT/.test(err), err);
    assert.match(err, /the rules were not loaded/);
  });
});
