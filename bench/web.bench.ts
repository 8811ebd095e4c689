/**
 * Dashboard API latency over a large store: 1,000,000 alert groups (MINEWATCH_BENCH_ALERTS
 * overrides) in the real SQLite store (WAL, its indexes and full-text table), spread over 30 days,
 * served by the real web server on loopback. Each figure is p50/p99 over sequential requests on
 * one keep-alive connection, beside the baseline: /healthz in the same process (the HTTP stack
 * alone, no store).
 *
 * The seed is generated with a fixed-seed PRNG and written in large transactions through the
 * store's own insert (so its trigger fills the full-text index as in production).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/platform/logger.js';
import { AlertStore, type NewGroup } from '../src/alerts/store.js';
import type { AlertQuery, AlertReader } from '../src/alerts/types.js';
import type { AlertService } from '../src/alerts/types.js';
import type { Priority } from '../src/engine/types.js';
import { createWebServer } from '../src/web/server.js';
import { prng } from '../test/helpers/prng.js';
import { fmt } from './lib.js';

const N = Number(process.env.MINEWATCH_BENCH_ALERTS ?? 1_000_000);
const DAYS = 30;
const BATCH = 20_000;
const SEED = 0x77656221; // "web!"
const BUDGET_MS = 15_000;

const RULES: [string, Priority][] = [
  ['Launch Cryptominer', 'CRITICAL'], ['Outbound Stratum Connection', 'CRITICAL'], ['Wallet In Command Line', 'WARNING'],
  ['High CPU In Container', 'NOTICE'], ['Miner Binary Downloaded', 'ERROR'], ['Known Mining Pool Domain', 'WARNING'],
  ['Hugepages Configured', 'NOTICE'], ['MSR Module Loaded', 'ERROR'], ['Process Renamed To Kworker', 'WARNING'],
  ['Terminal Shell In Container', 'NOTICE'], ['Write Below Etc', 'ERROR'], ['Read Sensitive File Untrusted', 'WARNING'],
  ['Drop And Execute New Binary', 'CRITICAL'], ['Redirect STDOUT/STDIN To Network', 'WARNING'], ['Netcat Remote Code Execution', 'WARNING'],
  ['Packet Socket Created', 'NOTICE'], ['Clear Log Activities', 'WARNING'], ['Delete Bash History', 'WARNING'],
  ['Create Symlink Over Sensitive Files', 'WARNING'], ['Fileless Execution Via Memfd', 'CRITICAL'], ['PTRACE Anti-Debug Attempt', 'NOTICE'],
  ['Search Private Keys Or Passwords', 'WARNING'], ['Execution From /dev/shm', 'WARNING'], ['Launch Privileged Container', 'INFORMATIONAL'],
  ['Contact K8S API Server From Container', 'NOTICE'], ['Modify Shell Configuration File', 'WARNING'], ['Schedule Cron Jobs', 'NOTICE'],
  ['Disallowed SSH Connection', 'NOTICE'], ['Unexpected UDP Traffic', 'NOTICE'], ['Debugfs Launched In Privileged Container', 'WARNING'],
];
const HOSTS = Array.from({ length: 300 }, (_, i) => `node-${String(i).padStart(3, '0')}`);
const NAMESPACES = Array.from({ length: 60 }, (_, i) => (i < 6 ? ['default', 'kube-system', 'ci', 'jupyter', 'web', 'batch'][i]! : `team-${i}`));
const MINERS = ['xmrig', 'xmr-stak', 'minerd', 'cpuminer', 'ethminer', 'nbminer', 'kworkerds', 'python3', 'bash', 'curl'];
/** A word that appears in about one alert in 10,000: the selective text search. */
const RARE = 'zq7rarewallet';

/** Zipf-like rule choice: a few rules fire most of the time, as on a real cluster. */
function zipfPicker(r: () => number, n: number): () => number {
  const w = Array.from({ length: n }, (_, k) => 1 / (k + 1));
  const total = w.reduce((a, b) => a + b, 0);
  const cum: number[] = [];
  let acc = 0;
  for (const x of w) cum.push((acc += x / total));
  return () => {
    const u = r();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** Fill `store` with `n` groups ending at `nowMs`; returns the ms it took. */
export function seedStore(store: AlertStore, n: number, nowMs: number): number {
  const r = prng(SEED);
  const pickRule = zipfPicker(r, RULES.length);
  const hex = (len: number): string => {
    let s = '';
    while (s.length < len) s += Math.floor(r() * 0xffffffff).toString(16).padStart(8, '0');
    return s.slice(0, len);
  };
  const startNs = BigInt(nowMs - DAYS * 86_400_000) * 1_000_000n;
  const stepNs = (BigInt(DAYS * 86_400_000) * 1_000_000n) / BigInt(n);
  const t0 = performance.now();
  const insertBatch = store.db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const [rule, priority] = RULES[pickRule()]!;
      const host = HOSTS[Math.floor(r() * HOSTS.length)]!;
      const ns = r() < 0.25 ? null : NAMESPACES[Math.floor(Math.pow(r(), 2) * NAMESPACES.length)]!;
      const pod = ns ? `${ns}-${hex(5)}-${hex(5)}` : null;
      const cid = hex(12);
      const proc = MINERS[Math.floor(r() * MINERS.length)]!;
      const wallet = i % 10_000 === 1234 ? RARE : hex(24);
      const cmdline = `${proc} -o pool-${hex(4)}.example:3333 -u 4${wallet} --donate-level 1`;
      const first = startNs + BigInt(i) * stepNs;
      const count = r() < 0.8 ? 1 : 1 + Math.floor(r() * 500);
      const fields = {
        'container.id': cid, 'container.name': `k8s_${proc}_${pod ?? 'none'}`, 'k8s.ns.name': ns, 'k8s.pod.name': pod,
        'proc.cmdline': cmdline, 'proc.name': proc, 'proc.pid': Math.floor(r() * 4_000_000), 'user.name': r() < 0.7 ? 'root' : 'app',
        'fd.sip': `198.51.100.${Math.floor(r() * 256)}`, 'fd.sport': 3333,
      };
      const g: NewGroup = {
        uuid: `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`, groupKey: `${rule}\u0000${host}\u0000${cid}\u0000${ns ?? ''}`, rule, priority,
        source: 'syscall', tags: ['cryptomining', 'mitre_impact'], hostname: host,
        output: `${rule} (user=${fields['user.name']} command=${cmdline} pid=${fields['proc.pid']} connection=${fields['fd.sip']}:3333 container_id=${cid} k8s.ns=${ns ?? '<NA>'} k8s.pod=${pod ?? '<NA>'})`,
        outputFields: fields, firstSeen: first, lastSeen: first + (count > 1 ? BigInt(Math.floor(r() * 300)) * 1_000_000_000n : 0n), count,
        changed: count > 1 ? { 'proc.pid': [fields['proc.pid'], fields['proc.pid'] + 1] } : {},
        namespace: ns, pod, containerId: cid, containerName: fields['container.name'], event: null, origin: 'local', windowEnd: null,
      };
      store.insertGroup(g, [], null);
    }
  });
  // Seeding only: a cache that holds the indexes' hot pages (uuid, container and pod keys are
  // random, so inserts touch pages all over each index) and no fsync; restored afterwards.
  const cache = store.db.pragma('cache_size', { simple: true });
  const sync = store.db.pragma('synchronous', { simple: true });
  store.db.pragma('cache_size = -1048576');
  store.db.pragma('synchronous = OFF');
  for (let i = 0; i < n; i += BATCH) insertBatch(i, Math.min(n, i + BATCH));
  // No ANALYZE here: the store does not run it, so the planner sees what it sees in production.
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  store.db.pragma(`cache_size = ${cache}`);
  store.db.pragma(`synchronous = ${sync}`);
  return performance.now() - t0;
}

/** The reader part of AlertService over the store (the web API only reads here). */
function serviceOver(store: AlertStore): AlertService {
  const reader: AlertReader = store;
  return {
    query: (q: AlertQuery) => reader.query(q),
    get: (id: number) => reader.get(id),
    stats: (q: AlertQuery, b: number) => reader.stats(q, b),
    ingest: () => {
      throw new Error('read-only bench service');
    },
    commit: () => {},
    subscribe: () => () => {},
    outputStats: () => [],
  };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function timeGets(base: string, path: string, n: number, agent: Agent): Promise<{ p50: number; p99: number; bytes: number; n: number }> {
  const once = () => new Promise<{ ms: number; bytes: number }>((resolve, reject) => {
    const t = performance.now();
    const req = request(base + path, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${path}: HTTP ${res.statusCode}`));
        else resolve({ ms: performance.now() - t, bytes });
      });
    });
    req.on('error', reject);
    req.end();
  });
  await once(); // warm: statement cache, pages
  const ms: number[] = [];
  let bytes = 0;
  // A slow case stops after BUDGET_MS (at least 3 requests): the figure is still a median.
  const t0 = performance.now();
  for (let i = 0; i < n && (i < 3 || performance.now() - t0 < BUDGET_MS); i++) {
    const r = await once();
    ms.push(r.ms);
    bytes = r.bytes;
  }
  ms.sort((a, b) => a - b);
  return { p50: pct(ms, 50), p99: pct(ms, 99), bytes, n: ms.length };
}

/** The API cases over a seeded store whose newest alert is at `nowMs`, beside /healthz. */
export async function measureApi(store: AlertStore, n: number, nowMs: number): Promise<void> {
  const server = createWebServer({ listen: '127.0.0.1:0', alerts: serviceOver(store), dashboard: false, logger: createLogger('warn') });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const url = await server.start();
    const day = nowMs - 86_400_000;
    const week = nowMs - 7 * 86_400_000;
    const mid = Math.floor(n / 2);
    const cases: [string, string, number][] = [
      ['alerts, newest 100', '/api/alerts', 200],
      ['alerts, last 24 h (dashboard default)', `/api/alerts?from=${day}&limit=50`, 200],
      ['alerts, one rule', `/api/alerts?rule=${encodeURIComponent(RULES[5]![0])}&limit=50`, 200],
      ['alerts, rare rule', `/api/alerts?rule=${encodeURIComponent(RULES[29]![0])}&limit=50`, 200],
      ['alerts, priority + namespace', '/api/alerts?priority=Warning&namespace=jupyter&limit=50', 200],
      ['alerts, host + 24 h', `/api/alerts?host=node-042&from=${day}&limit=50`, 200],
      ['alerts, minPriority=error', '/api/alerts?minPriority=error&limit=50', 200],
      ['alerts, page deep (beforeId mid)', `/api/alerts?beforeId=${mid}&limit=50`, 200],
      ['alerts, text rare', `/api/alerts?q=${RARE}&limit=50`, 50],
      ['alerts, text common (xmrig)', '/api/alerts?q=xmrig&limit=50', 20],
      ['alert by id', `/api/alerts/${mid}`, 200],
      ['stats, last 24 h (dashboard default)', `/api/stats?from=${day}`, 20],
      ['stats, one rule, 24 h', `/api/stats?from=${day}&rule=${encodeURIComponent(RULES[5]![0])}`, 20],
      ['stats, last 7 d', `/api/stats?from=${week}`, 5],
      ['stats, all 30 d', '/api/stats?bucket=1d', 3],
    ];
    // Warm the HTTP path first, so the baseline is not the JIT's first minutes.
    await timeGets(url, '/healthz', 2000, agent);
    const base = await timeGets(url, '/healthz', 2000, agent);
    console.log(`web.baseline    /healthz  p50 ${fmt(base.p50, 3)} ms  p99 ${fmt(base.p99, 3)} ms  (2,000 requests after 2,000 to warm up; same process, one keep-alive connection)`);
    for (const [name, path, reps] of cases) {
      const r = await timeGets(url, path, reps, agent);
      console.log(
        `web.api  ${name.padEnd(38)} p50 ${fmt(r.p50, 2).padStart(9)} ms (${fmt(r.p50 / base.p50, 0).padStart(7)}x /healthz)  ` +
          `p99 ${fmt(r.p99, 2).padStart(9)} ms (${fmt(r.p99 / base.p99, 0).padStart(7)}x)  ${r.n} requests, ${fmt(r.bytes / 1024, 1)} KiB`,
      );
    }
  } finally {
    agent.destroy();
    await server.close();
  }
}

export async function webApiBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mw-web-bench-'));
  const store = new AlertStore(join(dir, 'alerts.db'));
  try {
    const now = Date.now();
    const seedMs = seedStore(store, N, now);
    const size = statSync(join(dir, 'alerts.db')).size;
    console.log(`web.seed        ${fmt(N)} groups over ${DAYS} days in ${fmt(seedMs / 1000, 1)} s (${fmt(N / (seedMs / 1000))} groups/s, one transaction per ${fmt(BATCH)}); database ${fmt(size / 1048576)} MiB`);
    await measureApi(store, N, now);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
