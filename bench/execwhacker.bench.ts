/**
 * execwhacker matching: ns per command line for 10, 1,000 and 50,000 banned strings on a few
 * thousand real-looking command lines (shells, compilers, java with long classpaths, node,
 * python, daemons; a few miners among them), each figure beside baselines measured in the same
 * run on the same lines:
 *   - a naive loop: case-fold the line, then `includes` for every banned string;
 *   - pyahocorasick (what cryptnono uses; Debian's python3-ahocorasick) in a Python subprocess that
 *     times itself on the same lines, as cryptnono does its work: `casefold()` then the first
 *     match of `automaton.iter()`.
 * Target: ≤ 2 µs per command line with 50,000 strings.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecMatcher } from '../src/detectors/execwhacker/matcher.js';
import { casefold } from '../src/detectors/execwhacker/casefold.js';
import { shlexJoin } from '../src/detectors/execwhacker/shlex.js';
import { prng } from '../test/helpers/prng.js';
import { fmt, median } from './lib.js';

const SEED = 0x77686b; // "whk"




interface Gen {
  pick<T>(xs: readonly T[]): T;
  int(lo: number, hi: number): number;
  word(lo: number, hi: number, alphabet?: string): string;
  chance(p: number): boolean;
}

export function gen(seed: number): Gen {
  const r = prng(seed);
  const g: Gen = {
    pick: (xs) => xs[Math.floor(r() * xs.length)]!,
    int: (lo, hi) => lo + Math.floor(r() * (hi - lo + 1)),
    word: (lo, hi, alphabet = 'abcdefghijklmnopqrstuvwxyz') => Array.from({ length: g.int(lo, hi) }, () => alphabet[Math.floor(r() * alphabet.length)]).join(''),
    chance: (p) => r() < p,
  };
  return g;
}

// ---- banned strings: pool-domain-like, miner-name-like, flags -----------------------------------

const POOL_WORDS = ['pool', 'mine', 'xmr', 'hash', 'coin', 'crypto', 'stratum', 'rx', 'monero', 'nano', 'ether', 'miner', 'vault', 'ocean', 'support'];
const TLDS = ['com', 'org', 'net', 'io', 'pro', 'stream', 'fr', 'eu', 'cc', 'xyz', 'top', 'ru', 'cn'];
const REGIONS = ['eu', 'us', 'us-east', 'us-west', 'asia', 'sg', 'de', 'fr', 'ca', 'jp', 'au', 'br', 'hk', 'ru'];

export function bannedStrings(n: number, g: Gen): string[] {
  const out = new Set<string>(['xmrig', 'stratum+tcp://', '--donate-level', 'kdevtmpfsi', 'pool.supportxmr.com', 'nanopool.org', 'minexmr.com', 'cpuminer-opt', 'xmr-stak', 'gulf.moneroocean.stream']);
  while (out.size < n) {
    const k = g.int(0, 9);
    if (k < 6) {
      // pool domain: [region[digit].]<name>pool.<tld>
      const name = `${g.pick(POOL_WORDS)}${g.chance(0.5) ? g.pick(POOL_WORDS) : g.word(2, 6)}${g.chance(0.3) ? g.int(1, 99) : ''}`;
      out.add(`${g.chance(0.6) ? `${g.pick(REGIONS)}${g.chance(0.5) ? g.int(1, 9) : ''}.` : ''}${name}.${g.pick(TLDS)}`);
    } else if (k < 9) {
      // miner or dropper name
      out.add(`${g.word(3, 8)}${g.pick(['miner', 'rig', 'minerd', '-miner', 'xmr', 'hashd', '-cpu', '-opt', 'd'])}${g.chance(0.3) ? `-${g.word(2, 5)}` : ''}`);
    } else {
      out.add(`--${g.word(3, 8)}-${g.pick(['level', 'threads', 'hint', 'pages', 'mode', 'pool', 'wallet'])}`);
    }
  }
  return [...out].slice(0, n);
}

// ---- command lines -----------------------------------------------------------------------------

function jar(g: Gen): string {
  return `/opt/app/lib/${g.pick(['spring', 'jackson', 'netty', 'guava', 'commons', 'log4j', 'slf4j', 'hibernate', 'kafka', 'aws-java-sdk'])}-${g.word(3, 10)}-${g.int(1, 9)}.${g.int(0, 20)}.${g.int(0, 9)}.jar`;
}

export function cmdlines(n: number, g: Gen): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < n; i++) {
    const k = g.int(0, 99);
    if (k < 28) {
      out.push(g.pick([
        ['bash', '-c', `cd /srv/${g.word(3, 8)} && ${g.pick(['make', 'ls -la', 'git pull', 'tar xzf build.tgz', 'grep -rn TODO src'])}`],
        ['sh', '-c', `echo ${g.word(3, 12)} >> /var/log/${g.word(3, 8)}.log`],
        ['ls', '-la', `/var/lib/${g.word(3, 10)}`],
        ['git', g.pick(['status', 'fetch', 'log', 'diff']), '--no-pager', `origin/${g.word(3, 10)}`],
        ['cat', `/proc/${g.int(1, 40000)}/status`],
        ['grep', '-E', `${g.word(3, 8)}|${g.word(3, 8)}`, `/etc/${g.word(3, 8)}.conf`],
        ['ps', 'aux'],
        ['sleep', `${g.int(1, 600)}`],
      ]));
    } else if (k < 48) {
      const args = ['/usr/bin/gcc', '-O2', '-g', '-Wall', '-Wextra', '-fPIC', `-DVERSION="${g.int(1, 9)}.${g.int(0, 9)}"`];
      for (let j = g.int(3, 12); j > 0; j--) args.push(`-I/usr/src/${g.word(3, 10)}/include`);
      args.push('-c', `src/${g.word(3, 12)}.c`, '-o', `build/${g.word(3, 12)}.o`);
      out.push(args);
    } else if (k < 58) {
      const cp = Array.from({ length: g.int(20, 120) }, () => jar(g)).join(':');
      out.push(['/opt/java/openjdk/bin/java', '-Xmx2g', '-XX:+UseG1GC', `-Dspring.profiles.active=${g.word(3, 8)}`, '-cp', cp, `com.example.${g.word(4, 10)}.Main`, `--server.port=${g.int(8000, 9000)}`]);
    } else if (k < 73) {
      out.push(['node', g.pick(['/app/server.js', '/app/dist/index.js', '/usr/lib/node_modules/npm/bin/npm-cli.js']), ...g.pick([['--port', `${g.int(3000, 9000)}`], ['run', 'build'], ['install', '--no-audit', `${g.word(3, 10)}@^${g.int(1, 20)}.0.0`]])]);
    } else if (k < 88) {
      out.push(['python3', ...g.pick([['-m', 'pip', 'install', `${g.word(4, 12)}==${g.int(1, 9)}.${g.int(0, 30)}`], ['/opt/jobs/backup.py', '--target', `s3://${g.word(4, 10)}/backups`], ['-m', 'gunicorn', 'app:app', '-w', '4', '-b', '0.0.0.0:8000'], ['-c', `import sys; print(sys.argv)`]])]);
    } else if (k < 98) {
      out.push(g.pick([
        ['/usr/bin/containerd-shim-runc-v2', '-namespace', 'k8s.io', '-id', g.word(64, 64, '0123456789abcdef'), '-address', '/run/containerd/containerd.sock'],
        ['/usr/bin/kubelet', '--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf', '--kubeconfig=/etc/kubernetes/kubelet.conf', '--config=/var/lib/kubelet/config.yaml', '--container-runtime-endpoint=unix:///run/containerd/containerd.sock', `--node-ip=10.${g.int(0, 255)}.${g.int(0, 255)}.${g.int(1, 254)}`, '--pod-infra-container-image=registry.k8s.io/pause:3.9'],
        ['/usr/sbin/sshd', '-D', '-R'],
        ['/lib/systemd/systemd-journald'],
        ['nginx:', 'worker', 'process'],
      ]));
    } else {
      out.push(g.pick([
        ['/tmp/.x/xmrig', '-o', 'pool.supportxmr.com:443', '-u', `4${g.word(94, 94, '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz')}`, '--donate-level', '1'],
        ['./kdevtmpfsi'],
        ['python3', 'miner.py', '--url', `stratum+tcp://198.51.100.${g.int(1, 254)}:3333`],
      ]));
    }
  }
  return out;
}

// ---- timing ------------------------------------------------------------------------------------

let sink = 0;

/** ns per line: median over rounds of one pass over every line. */
function timePerLine(lines: readonly string[], rounds: number, fn: (s: string) => number): number {
  for (const l of lines) sink += fn(l); // warm-up
  const per: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint();
    for (const l of lines) sink += fn(l);
    per.push(Number(process.hrtime.bigint() - t) / lines.length);
  }
  return median(per);
}

function timePerArgv(argvs: readonly string[][], rounds: number, fn: (a: string[]) => number): number {
  for (const a of argvs) sink += fn(a);
  const per: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint();
    for (const a of argvs) sink += fn(a);
    per.push(Number(process.hrtime.bigint() - t) / argvs.length);
  }
  return median(per);
}

// ---- pyahocorasick -------------------------------------------------------------------------------

const PY_SCRIPT = `
import json, re, sys, time
import ahocorasick
data = json.load(open(sys.argv[1]))
lines = data['lines']
out = {}
for name, banned in data['sets'].items():
    t = time.perf_counter_ns()
    a = ahocorasick.Automaton()
    for b in banned:
        f = b.casefold()
        a.add_word(f, f)
    a.make_automaton()
    build = time.perf_counter_ns() - t
    def first_match():
        n = 0
        for line in lines:
            folded = line.casefold()
            for _ in a.iter(folded):
                n += 1
                break
        return n
    def decision():
        # cryptnono's kill_if_needed without the kill: the first match, then its word-boundary test.
        n = 0
        for line in lines:
            cmdline = line.casefold()
            for _, b in a.iter(cmdline):
                if not (re.search(r"\\w" + re.escape(b), cmdline, re.IGNORECASE) or re.search(re.escape(b) + r"\\w", cmdline, re.IGNORECASE)):
                    n += 1
                break
        return n
    res = {'build_ms': build / 1e6}
    for key, fn in (('first_match', first_match), ('decision', decision)):
        fn()
        per = []
        for r in range(data['rounds']):
            t = time.perf_counter_ns()
            fn()
            per.append((time.perf_counter_ns() - t) / len(lines))
        per.sort()
        res[key] = per[len(per) // 2]
    out[name] = res
print(json.dumps(out))
`;

/** The python3 that imports ahocorasick, installing Debian's package when root and missing; or why not. */
function pythonWithAhocorasick(): { python: string } | { skip: string } {
  const candidates = ['/usr/bin/python3', 'python3'];
  const works = (): string | undefined => candidates.find((p) => spawnSync(p, ['-c', 'import ahocorasick'], { stdio: 'ignore' }).status === 0);
  let p = works();
  if (p) return { python: p };
  if (process.getuid?.() !== 0) return { skip: 'pyahocorasick is not installed and this is not root: install python3-ahocorasick (Debian) to compare; skipped' };
  console.log('execwhacker: installing python3-ahocorasick (apt-get install -y python3-ahocorasick) for the comparison…');
  const r = spawnSync('apt-get', ['install', '-y', 'python3-ahocorasick'], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  p = works();
  if (p) return { python: p };
  return { skip: `pyahocorasick could not be installed (apt-get exit ${r.status}: ${(r.stderr || r.stdout || '').trim().split('\n').pop()}); skipped` };
}

// ---- the benchmark -------------------------------------------------------------------------------

export function execwhackerBench(): void {
  const g = gen(SEED);
  const argvs = cmdlines(3000, g);
  const lines = argvs.map(shlexJoin);
  const chars = lines.reduce((n, l) => n + l.length, 0);
  const sizes = [10, 1_000, 50_000];
  const sets = Object.fromEntries(sizes.map((n) => [String(n), bannedStrings(n, gen(SEED + n))]));
  console.log(
    `execwhacker: ${fmt(lines.length)} command lines, mean ${fmt(chars / lines.length)} chars (longest ${fmt(Math.max(...lines.map((l) => l.length)))}); ` +
      `banned strings: pool-domain-like, miner-name-like and flags`,
  );

  const ours: Record<string, number> = {};
  for (const n of sizes) {
    const banned = sets[String(n)]!;
    const t0 = performance.now();
    const m = new ExecMatcher([{ name: 'bench', bannedCommandStrings: banned, allowedCommandPatterns: [] }]);
    const buildMs = performance.now() - t0;
    const kills = lines.filter((l) => m.matchCmdline(l).kill).length;
    const ns = timePerLine(lines, 15, (l) => (m.matchCmdline(l).kill ? 1 : 0));
    const nsArgv = timePerArgv(argvs, 15, (a) => (m.match(a).kill ? 1 : 0));
    ours[String(n)] = ns;
    // Naive baseline: case-fold, then includes per string. Costly at 50,000: time it on a slice.
    const folded = banned.map(casefold);
    const slice = n >= 50_000 ? lines.slice(0, 300) : n >= 1000 ? lines.slice(0, 1500) : lines;
    const naive = timePerLine(slice, n >= 50_000 ? 3 : 7, (l) => {
      const f = casefold(l);
      for (const b of folded) if (f.includes(b)) return 1;
      return 0;
    });
    console.log(
      `execwhacker.match ${fmt(n).padStart(6)} strings: ${fmt(ns, 0).padStart(5)} ns/cmdline ` +
        `(${fmt(nsArgv, 0)} ns from argv, with shlex.join)  naive includes loop ${fmt(naive, 0)} ns: ${fmt(naive / ns, 1)}x faster; ` +
        `${fmt(ns / (chars / lines.length), 2)} ns/char; build ${fmt(buildMs, 1)} ms, ${fmt(m.stats.states)} states (${fmt(m.stats.denseStates)} dense, ${m.stats.classes} classes), ` +
        `${fmt(m.stats.bytes / 1048576, 1)} MiB; ${kills} kills`,
    );
  }
  const target = ours['50000']!;
  console.log(`execwhacker.target ${fmt(target, 0)} ns/cmdline with 50,000 strings: ${target <= 2000 ? 'meets' : 'MISSES'} the ≤ 2,000 ns target`);

  const py = pythonWithAhocorasick();
  if ('skip' in py) {
    console.log(`execwhacker.pyahocorasick: ${py.skip}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'minewatch-bench-'));
  try {
    const input = join(dir, 'input.json');
    writeFileSync(input, JSON.stringify({ lines, sets, rounds: 7 }));
    const script = join(dir, 'aho.py');
    writeFileSync(script, PY_SCRIPT);
    const r = spawnSync(py.python, [script, input], { encoding: 'utf8', maxBuffer: 16 << 20 });
    if (r.status !== 0) {
      console.log(`execwhacker.pyahocorasick: the Python run failed (exit ${r.status}): ${r.stderr.trim().split('\n').pop()}`);
      return;
    }
    const res = JSON.parse(r.stdout) as Record<string, { first_match: number; decision: number; build_ms: number }>;
    const ver = spawnSync(py.python, ['-c', 'import sys; print(sys.version.split()[0])'], { encoding: 'utf8' }).stdout.trim();
    console.log(`execwhacker.pyahocorasick: ${py.python} (Python ${ver}), timing itself on the same command lines (median of 7 passes)`);
    for (const n of sizes) {
      const p = res[String(n)]!;
      const o = ours[String(n)]!;
      console.log(
        `execwhacker.pyahocorasick ${fmt(n).padStart(6)} strings: ${fmt(p.first_match, 0).padStart(5)} ns/cmdline casefold + first match (ours ${fmt(p.first_match / o, 1)}x faster), ` +
          `${fmt(p.decision, 0)} ns with cryptnono's word-boundary test (ours ${fmt(p.decision / o, 1)}x faster); its build ${fmt(p.build_ms, 1)} ms`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (sink === 0.5) console.log('');
}
