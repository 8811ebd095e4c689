/**
 * Helpers for tests and benchmarks that run the real agent (`minewatch run`) as a child process:
 * start it with a config, wait for its log lines (pino JSON on stderr) and its alerts (Falco JSON
 * on stdout, with --json), stop it with a signal, and small things around that (compiling the C
 * fixtures, a marker process that proves the agent has caught up, a Docker API stand-in). Network
 * namespaces, listeners and probes are in netns.ts.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after } from 'node:test';
import { stateTokenPath } from '../../src/platform/state.js';
import { parseMountinfo } from '../../src/enrich/exe-identity.js';
import { CLI } from './paths.js';
import { lines, parseJson } from './json-lines.js';
import { run } from './live.js';

/** A Falco JSON alert as the agent writes it. */
export interface Alert {
  hostname: string;
  output: string;
  output_fields: Record<string, unknown>;
  priority: string;
  rule: string;
  source: string;
  tags: string[];
  time: string;
}

/** One of the agent's log lines (pino). */
export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface AgentExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  /** Extra arguments after `run --config FILE --json`. */
  args?: string[];
  /** Run as this uid/gid (through setpriv, groups cleared). */
  user?: { uid: number; gid: number };
  /** Environment additions. */
  env?: Record<string, string>;
  /** Leave out --json (text alerts are then only collected as raw lines). */
  text?: boolean;
  /**
   * Run the agent inside this named network namespace (`nsenter --net=/run/netns/NAME`, which
   * execs the agent: the child's pid is the agent's). Not together with `user`.
   */
  netns?: string;
  /** `run` (the agent, default) or `server` (the central store and dashboard). */
  command?: 'run' | 'server';
  /** The web server's address (`--listen`); default 127.0.0.1:0, a free port, so runs never collide. */
  listen?: string;
  /**
   * The state folder (alerts.db): default a fresh temporary one per run, so runs never share a
   * store. Give the same folder to two runs to test a restart.
   */
  stateDir?: string;
  /** Options for the agent's node (benchmarks: `--cpu-prof` to see where its time goes). */
  nodeArgs?: string[];
  /** Another build's CLI (benchmarks: the baseline checkout run beside this one). */
  cli?: string;
}

/** The agent as a child process, with everything it has said so far. */
export class AgentRun {
  readonly child: ChildProcess;
  readonly alerts: Alert[] = [];
  readonly logs: LogLine[] = [];
  /** stdout and stderr lines that are not JSON (text alerts, config errors, crashes). */
  readonly rawOut: string[] = [];
  readonly rawErr: string[] = [];
  readonly exited: Promise<AgentExit>;
  exit: AgentExit | undefined;
  /** Called with each alert as its line arrives (benchmarks time them here). */
  onAlert: ((a: Alert) => void) | undefined;
  /** Where this run keeps its alert store. */
  readonly stateDir: string;
  private ownStateDir = false;

  constructor(configPath: string | undefined, opts: StartOptions = {}) {
    const args = [...(opts.nodeArgs ?? []), opts.cli ?? CLI, opts.command ?? 'run', ...(configPath ? ['--config', configPath] : []), ...(opts.text ? [] : ['--json']),
      '--listen', opts.listen ?? '127.0.0.1:0', ...(opts.args ?? [])];
    this.stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'mw-state-'));
    if (!opts.stateDir) this.ownStateDir = true;
    if (opts.user) chmodSync(this.stateDir, 0o777);
    if (opts.user && opts.netns) throw new Error('AgentRun: user and netns together are not supported');
    const cmd = opts.user ? 'setpriv' : opts.netns ? 'nsenter' : process.execPath;
    const argv = opts.user
      ? [`--reuid=${opts.user.uid}`, `--regid=${opts.user.gid}`, '--clear-groups', '--', process.execPath, ...args]
      : opts.netns
        ? [`--net=/run/netns/${opts.netns}`, '--', process.execPath, ...args]
        : args;
    this.child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MINEWATCH_STATE_DIR: this.stateDir, ...opts.env } });
    lines(this.child.stdout!, (l) => {
      const v = parseJson(l);
      if (v && typeof v === 'object' && 'rule' in v) {
        this.alerts.push(v as Alert);
        this.onAlert?.(v as Alert);
      }
      else this.rawOut.push(l);
    });
    lines(this.child.stderr!, (l) => {
      const v = parseJson(l);
      if (v && typeof v === 'object' && 'msg' in v) this.logs.push(v as LogLine);
      else this.rawErr.push(l);
    });
    this.exited = new Promise<AgentExit>((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      this.child.on('error', (e) => {
        this.rawErr.push(`spawn error: ${e.message}`);
        this.exit = { code: -1, signal: null };
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The last lines of stderr, for failure messages. */
  tail(n = 15): string {
    const all = [...this.logs.map((l) => JSON.stringify(l)), ...this.rawErr];
    return all.slice(-n).join('\n');
  }

  /** Resolve with the first item (present or future) that `pred` accepts; fail on timeout or exit. */
  private async waitIn<T>(items: T[], pred: (x: T) => boolean, timeoutMs: number, what: string, from = 0): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < items.length; i++) if (pred(items[i]!)) return items[i]!;
      if (this.exit) {
        // Let the pipes drain: the line may be on its way.
        await sleep(50);
        for (let i = from; i < items.length; i++) if (pred(items[i]!)) return items[i]!;
        throw new Error(`the agent exited (${JSON.stringify(this.exit)}) before ${what}\n${this.tail()}`);
      }
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms\n${this.tail()}`);
      await sleep(20);
    }
  }

  waitLog(pred: (l: LogLine) => boolean, timeoutMs: number, what: string, from = 0): Promise<LogLine> {
    return this.waitIn(this.logs, pred, timeoutMs, `log line: ${what}`, from);
  }

  waitAlert(pred: (a: Alert) => boolean, timeoutMs: number, what: string, from = 0): Promise<Alert> {
    return this.waitIn(this.alerts, pred, timeoutMs, `alert: ${what}`, from);
  }

  /** A stdout line that is not a JSON alert (a text alert, with `text: true`). */
  waitOut(pred: (l: string) => boolean, timeoutMs: number, what: string, from = 0): Promise<string> {
    return this.waitIn(this.rawOut, pred, timeoutMs, `stdout line: ${what}`, from);
  }

  /** The web server's base URL, once it listens (from its log line). */
  async webUrl(timeoutMs = 20_000): Promise<string> {
    const l = await this.waitLog((x) => x.msg === 'web server listening', timeoutMs, 'web server listening');
    return l.url as string;
  }

  /**
   * The API token the run made in its state folder (<state>/token; runs without web.token make
   * one, and the API and inputs need it even on loopback). Read once it listens.
   */
  apiToken(): string {
    return readFileSync(stateTokenPath(this.stateDir), 'utf8').trim();
  }

  /** Wait for "agent started"; returns that line (driver, sources). */
  started(timeoutMs = 20_000): Promise<LogLine> {
    return this.waitLog((l) => l.msg === 'agent started', timeoutMs, 'agent started');
  }

  /** Send a signal and wait for the exit (SIGKILL after timeoutMs). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<AgentExit> {
    if (this.exit) return this.exit;
    this.child.kill(signal);
    const timer = setTimeout(() => this.kill(), timeoutMs);
    const e = await this.exited;
    clearTimeout(timer);
    if (this.ownStateDir) rmSync(this.stateDir, { recursive: true, force: true });
    // The last lines may still be in the pipes.
    await sleep(50);
    return e;
  }

  /** SIGKILL if still running (cleanup); a temporary state folder goes once the process is gone. */
  kill(): void {
    if (this.exit === undefined && this.child.exitCode === null) {
      try {
        this.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (this.ownStateDir) void this.exited.then(() => rmSync(this.stateDir, { recursive: true, force: true }));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Write a config file: JSON is YAML, so the object goes out as indented JSON. Unless the config
 * says otherwise, alert grouping is off: these tests follow each process's own alert (markers run
 * again and again under one rule); grouping has tests of its own (alerts-*.test.ts).
 */
export function writeConfig(path: string, config: Record<string, unknown>): string {
  const withAlerts = 'alerts' in config ? config : { ...config, alerts: { throttle: { window_s: 0 } } };
  writeFileSync(path, JSON.stringify(withAlerts, null, 2) + '\n');
  chmodSync(path, 0o644);
  return path;
}

/** Compile one C file with `cc` (static when asked and possible). Throws with cc's stderr. */
export function compileC(src: string, out: string, opts: { static?: boolean } = {}): void {
  const args = ['-O2', '-o', out, src];
  if (opts.static) {
    try {
      execFileSync('cc', ['-static', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      chmodSync(out, 0o755);
      return;
    } catch {
      // No static libc here: a dynamic binary does for everything but the container's bare root.
    }
  }
  run('cc', args);
  chmodSync(out, 0o755);
}

// ---- marker processes ---------------------------------------------------------------------------

/** The comm of marker processes (a copy of the fake miner that only sleeps). */
export const MARKER_NAME = 'mwmarker';
export const MARKER_RULE = 'Agent Test Marker';

/**
 * A rules file with one rule that matches only the marker program, and the given extra text (rules
 * that test outputs, or overrides). Loaded after the default rules.
 */
export function markerRules(extra = '', ruleName = MARKER_RULE): string {
  return `- rule: ${ruleName}
  desc: a test-only rule; it matches only the marker process the test starts
  condition: evt.type in (execve, execveat) and proc.name = ${MARKER_NAME}
  output: marker seen (cmdline=%proc.cmdline pid=%proc.pid)
  priority: DEBUG
  tags: [test]
${extra}`;
}

/**
 * Runs the marker program with a unique argument and waits for its alert. The agent's queue is
 * FIFO, so once the marker's alert is out, every exec the agent saw before it has been evaluated.
 */
export class Marker {
  private seq = 0;
  readonly path: string;

  constructor(dir: string, fakeMinerBinary: string, private readonly user?: { uid: number; gid: number }) {
    this.path = join(dir, MARKER_NAME);
    copyFileSync(fakeMinerBinary, this.path);
    chmodSync(this.path, 0o755);
  }

  /** Start a marker; resolves with its alert (from `rule`, default the marker rule). */
  async fire(agent: AgentRun, what: string, timeoutMs = 15_000, rule = MARKER_RULE): Promise<Alert> {
    const token = `--mark=${process.pid}-${++this.seq}-${Date.now()}`;
    const from = agent.alerts.length;
    const child = this.user
      ? spawn('setpriv', [`--reuid=${this.user.uid}`, `--regid=${this.user.gid}`, '--clear-groups', '--', this.path, '--hold-ms', '400', token], { stdio: 'ignore' })
      : spawn(this.path, ['--hold-ms', '400', token], { stdio: 'ignore' });
    child.on('error', () => {});
    return agent.waitAlert(
      (a) => a.rule === rule && String(a.output_fields['proc.cmdline'] ?? '').includes(token),
      timeoutMs,
      `marker (${what})`,
      from,
    );
  }
}

// ---- a Docker Engine API for the agent's containers -----------------------------------------------

/**
 * A Docker Engine API stand-in for the agent (test/helpers/docker-standin.ts serves fixed
 * records for the client's unit tests; this one serves the records a test gives it, for the
 * containers it makes): real HTTP on a unix socket, GET /containers/<id>/json and
 * /images/<id>/json (with or without a /v1.xx prefix), dockerd's headers, 404 with dockerd's
 * message for anything else.
 */
export interface ContainerApi {
  socketPath: string;
  /** Request paths received, in order. */
  requests: string[];
  close(): Promise<void>;
}

export interface ContainerApiOptions {
  /**
   * Called with each request path before it is answered; the answer waits for the promise it
   * returns (a test holds the agent's container lookup, and so the exec event behind it, while it
   * does something to the process).
   */
  hold?: (path: string) => Promise<void> | void;
}

export async function startContainerApi(
  socketPath: string,
  containers: Record<string, Record<string, unknown>>,
  images: Record<string, Record<string, unknown>> = {},
  opts: ContainerApiOptions = {},
): Promise<ContainerApi> {
  const requests: string[] = [];
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Api-Version': '1.45', Server: 'Docker/26.1.0 (linux)', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const answer = (path: string, res: ServerResponse): void => {
    const c = /^\/(?:v[\d.]+\/)?containers\/([^/]+)\/json$/.exec(path);
    if (c) {
      const id = decodeURIComponent(c[1]!);
      const rec = containers[id];
      return rec ? send(res, 200, rec) : send(res, 404, { message: `No such container: ${id}` });
    }
    const i = /^\/(?:v[\d.]+\/)?images\/([^/]+)\/json$/.exec(path);
    if (i) {
      const id = decodeURIComponent(i[1]!);
      const rec = images[id];
      return rec ? send(res, 200, rec) : send(res, 404, { message: `No such image: ${id}` });
    }
    send(res, 404, { message: 'page not found' });
  };
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '';
    requests.push(path);
    const held = opts.hold?.(path);
    if (!held) return answer(path, res);
    held.then(
      () => answer(path, res),
      () => answer(path, res),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o660);
  return {
    socketPath,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---- for the response tests: tokens, exits --------------------------------------------------------

/** A random hex token: banned strings and names unique to one run, so nothing else on the host matches. */
export function randomToken(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

/** How a child ended: its exit code or the signal that killed it. */
export function exitOf(child: ChildProcess): Promise<AgentExit> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Whether a child is still running (not exited, not reaped). */
export const isRunning = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

/**
 * Every IPv4 address except one CIDR, as a list of CIDRs, plus all of IPv6: an `exempt_cidrs`
 * that leaves only a test's own range open to tcpflowkiller's scan count, so nothing else on
 * the host can be counted (let alone killed) while the test runs.
 */
export function allExceptCidr(cidr: string): string[] {
  const [addr, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  const n = addr!.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const out: string[] = [];
  for (let p = 1; p <= bits; p++) {
    const size = 2 ** (32 - p);
    // The sibling, at prefix length p, of the block holding the range.
    const sibling = (Math.floor(n / size) ^ 1) * size;
    out.push(`${[24, 16, 8, 0].map((s) => Math.floor(sibling / 2 ** s) % 256).join('.')}/${p}`);
  }
  out.push('::/0');
  return out;
}

/**
 * Where a docker-named container cgroup goes: docker/<id> (docker's cgroupfs driver), or with
 * `systemd`, system.slice/docker-<id>.scope (its systemd driver), under each cgroup v1 hierarchy
 * that carries one of `controllers`, else under the v2 root. Read from this process's mount table.
 */
export function dockerCgroupDirs(id: string, controllers: readonly string[], driver: 'cgroupfs' | 'systemd' = 'cgroupfs'): string[] {
  const mounts = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  const v1 = [...new Set(mounts
    .filter((m) => m.fstype === 'cgroup' && m.superOptions.some((o) => controllers.includes(o)))
    .map((m) => m.mountPoint))];
  const rel = driver === 'systemd' ? join('system.slice', `docker-${id}.scope`) : join('docker', id);
  if (v1.length) return v1.map((p) => join(p, rel));
  return mounts.some((m) => m.fstype === 'cgroup2' && m.mountPoint === '/sys/fs/cgroup') ? [join('/sys/fs/cgroup', rel)] : [];
}

/**
 * The temporary folders and agents one test file makes: `tmp()` a fresh folder, `start()` an agent
 * (or server); all are killed and removed when the file's tests end.
 */
export function runScope(prefix: string): { tmp: () => string; start: (config: string | undefined, opts?: StartOptions) => AgentRun } {
  const dirs: string[] = [];
  const runs: AgentRun[] = [];
  after(() => {
    for (const r of runs) r.kill();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return {
    tmp: () => {
      const d = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    start: (config, opts = {}) => {
      const r = new AgentRun(config, opts);
      runs.push(r);
      return r;
    },
  };
}
