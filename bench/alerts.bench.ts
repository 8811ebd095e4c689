/**
 * The alert pipeline's throughput, on a real SQLite file (WAL) in a temporary folder:
 *   - stored: new alert groups per second through AlertPipeline.accept (throttle lookup, the group
 *     row, the FTS index, the queued message, in one transaction each), against plain single-row
 *     INSERTs of the same rows into a bare table (what SQLite alone costs per committed row);
 *   - forwarded: alerts per second from accept() until a loopback webhook has received every one
 *     (store → delivery worker → HTTP POST), against the same webhook output's send() called
 *     directly with the same concurrency and no store;
 *   - repeats: matches per second counted into an open group (the throttled path), against the
 *     stored rate.
 * groupingBench: the cost of grouping by what ran, in rounds (median and spread):
 *   - repeats with the default keys (… proc.exepath, read from the event) against the same repeats
 *     with the old keys (host, container, namespace: columns only);
 *   - a miner renaming itself at every respawn (a new executable per match, one container): matches
 *     per second folded into its place's overflow group, against the repeats with the old keys;
 *   - new groups past max_open_groups (each start closes the oldest group early), against new
 *     groups with no bound reached.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/platform/logger.js';
import { alertsSection } from '../src/alerts/config.js';
import { WebhookOutput } from '../src/alerts/outputs/webhook.js';
import { AlertPipeline } from '../src/alerts/pipeline.js';
import type { AlertMessage } from '../src/alerts/types.js';
import type { Match } from '../src/engine/types.js';
import type { SyscallEvent } from '../src/events.js';
import { fmt, median } from './lib.js';

const STORED = 20_000;
const FORWARDED = 10_000;
const REPEATS = 500_000;
const log = createLogger('silent');

function match(i: number): Match {
  const id = (0x100000000000 + i).toString(16).slice(-12);
  const event = {
    source: 'syscall', type: 'connect', ts: 1_795_600_000_000_000_000n + BigInt(i),
    proc: { pid: 1000 + (i % 30000), name: 'xmrig', exe: '/tmp/xmrig', exepath: '/tmp/xmrig', args: ['-o', 'pool.example:3333'], cwd: '/tmp', uid: 0, user: 'root' },
    container: { id, name: `web-${i}`, image: 'alpine:3.20' },
    k8s: { ns_name: `ns-${i % 40}`, pod_name: `pod-${i}` },
  } as unknown as SyscallEvent;
  return {
    rule: `Outbound Connection to a Mining Pool ${i % 25}`, priority: 'CRITICAL', source: 'syscall', tags: ['mitre_impact', 'network'],
    output: `Outbound connection to a mining pool (proc.name=xmrig proc.pid=${event.proc.pid} fd.name=10.0.0.1:41000->198.51.100.7:3333 container.id=${id})`,
    outputFields: { 'proc.name': 'xmrig', 'proc.pid': event.proc.pid, 'fd.name': '10.0.0.1:41000->198.51.100.7:3333', 'container.id': id },
    time: event.ts, hostname: 'bench-node', event,
  };
}

function receiver(): Promise<{ url: string; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.keepAliveTimeout = 30_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    count: () => n,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  })));
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

export async function alertsBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mw-bench-alerts-'));
  try {
    // Baseline: one committed single-row INSERT per alert into a bare table, WAL, synchronous=NORMAL.
    const raw = new Database(join(dir, 'raw.db'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, rule TEXT, output TEXT, fields TEXT, ts INTEGER)');
    const ins = raw.prepare('INSERT INTO t (rule, output, fields, ts) VALUES (?, ?, ?, ?)');
    const ms = Array.from({ length: STORED }, (_, i) => match(i));
    let t0 = performance.now();
    for (const m of ms) ins.run(m.rule, m.output, JSON.stringify(m.outputFields), m.time);
    const rawRate = STORED / ((performance.now() - t0) / 1000);
    raw.close();

    const cfg = (path: string, window = 300) => alertsSection.parse({ store: { path }, throttle: { window_s: window }, delivery: { concurrency: 8 } });
    const stored = new AlertPipeline({ config: cfg(join(dir, 'stored.db')), outputs: [], log }).start();
    t0 = performance.now();
    for (const m of ms) stored.accept(m);
    const storedRate = STORED / ((performance.now() - t0) / 1000);
    if (stored.query({ limit: 1 })[0]?.id !== STORED) throw new Error('not every alert was stored');
    console.log(`(stored ${fmt(STORED)} in ${fmt(STORED / storedRate, 1)} s)`);

    // Repeats of one open group: the throttled path.
    const one = match(0);
    t0 = performance.now();
    for (let i = 0; i < REPEATS; i++) stored.accept(one);
    const repeatRate = REPEATS / ((performance.now() - t0) / 1000);
    await stored.stop();

    // Forwarded to a loopback webhook, end to end.
    const hook = await receiver();
    const webhook = () => new WebhookOutput({ name: 'webhook', url: hook.url, headers: {}, timeoutMs: 5000, log });
    const fwd = new AlertPipeline({ config: cfg(join(dir, 'fwd.db')), outputs: [webhook()], log }).start();
    const fms = Array.from({ length: FORWARDED }, (_, i) => match(STORED + i));
    t0 = performance.now();
    for (const m of fms) fwd.accept(m);
    await until(() => hook.count() >= FORWARDED);
    const fwdRate = FORWARDED / ((performance.now() - t0) / 1000);
    const msg = JSON.parse(JSON.stringify(fwd.message(fwd.query({ limit: 1 })[0]!, 'first'))) as AlertMessage;
    await fwd.stop();

    // Baseline: the same output's send(), 8 in flight, no store.
    const direct = webhook();
    const before = hook.count();
    t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < FORWARDED) {
        next++;
        await direct.send(msg);
      }
    }));
    const directRate = (hook.count() - before) / ((performance.now() - t0) / 1000);
    await direct.close();
    await hook.close();

    console.log(`stored:    ${fmt(storedRate)} alerts/s (new groups, file-backed, WAL) = ${(storedRate / rawRate).toFixed(2)}x of plain single-row INSERTs (${fmt(rawRate)}/s)`);
    console.log(`forwarded: ${fmt(fwdRate)} alerts/s stored and delivered to a loopback webhook = ${(fwdRate / directRate).toFixed(2)}x of the webhook output alone (${fmt(directRate)}/s, 8 in flight, no store)`);
    console.log(`repeats:   ${fmt(repeatRate)} matches/s counted into an open group = ${(repeatRate / storedRate).toFixed(1)}x the stored rate`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ROUND_MATCHES = 100_000;
const ROUNDS = 7;

/** Matches per second through accept(), each round on a fresh in-memory pipeline. */
function acceptRate(keys: unknown, matches: (i: number) => Match, n = ROUND_MATCHES, maxOpen = 10_000): number {
  const throttle = { window_s: 300, max_open_groups: maxOpen, ...(keys ? { keys } : {}) };
  const p = new AlertPipeline({ config: alertsSection.parse({ store: { path: ':memory:' }, throttle }), outputs: [], log }).start();
  const ms = Array.from({ length: n }, (_, i) => matches(i));
  const t0 = performance.now();
  for (const m of ms) p.accept(m);
  const rate = n / ((performance.now() - t0) / 1000);
  void p.stop();
  return rate;
}

export async function groupingBench(): Promise<void> {
  const one = match(0);
  const renamed = (i: number): Match => {
    const m = match(0);
    const ev = m.event as SyscallEvent;
    return { ...m, event: { ...ev, proc: { ...ev.proc!, exepath: `/tmp/.x/${i.toString(36)}`, name: i.toString(36) } } as SyscallEvent };
  };
  const byDefault: number[] = [];
  const folded: number[] = [];
  const oldKeys = ['hostname', 'container.id', 'k8s.ns.name'];
  const evicting: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const base = acceptRate(oldKeys, () => one);
    byDefault.push(acceptRate(undefined, () => one) / base);
    folded.push(acceptRate(undefined, renamed) / base);
    // 10,000 new groups: with no bound reached, and with 2,000 open at most (8,000 closed early).
    const unbounded = acceptRate(undefined, match, 10_000, 1_000_000);
    evicting.push(acceptRate(undefined, match, 10_000, 2_000) / unbounded);
    await new Promise((res) => setImmediate(res));
  }
  const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
  console.log(`repeats, default keys (with proc.exepath): ${median(byDefault).toFixed(2)}x the old keys' rate (host, container, namespace), median of ${ROUNDS} rounds of ${fmt(ROUND_MATCHES)}, spread ${spread(byDefault)}`);
  console.log(`renaming miner, folded into one overflow group: ${median(folded).toFixed(2)}x the old keys' repeat rate, median of ${ROUNDS} rounds, spread ${spread(folded)}`);
  console.log(`new groups past max_open_groups (oldest closed early): ${median(evicting).toFixed(2)}x new groups with no bound reached, median of ${ROUNDS} rounds of 10,000, spread ${spread(evicting)}`);
}
