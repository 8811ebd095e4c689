/**
 * The fleet drill (issue 18), shared by the e2e test (small, bounded) and the bench (larger):
 * a real nats-server with JetStream and one NATS user per agent, a real PostgreSQL behind a
 * loopback relay (so it can be made to refuse connections), N agents as processes, each in its own
 * UTS namespace with its own hostname, replaying recorded miner activity at a steady rate through
 * `minewatch replay-live` (the event pipeline `run` composes: enrich → detectors → rules → response
 * (recording only) → alert pipeline → local SQLite store → alerts.forward), and
 * server replicas (`minewatch server`, alerts.consume + PostgreSQL) delivering to a loopback
 * webhook receiver. Faults on a schedule: SIGKILL a replica and restart it, restart nats-server,
 * refuse PostgreSQL connections for a while. At the end it compares what the agents' stores say
 * they had acknowledged with what PostgreSQL holds, and counts webhook deliveries per key. Each
 * replica life posts to a path of its own (/hook/<replica>.<life>), so a delivery made twice is
 * traced to the replica that made it first.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { natsAuthorization } from '../../src/fleet/nats-users.js';
import { Receiver } from './alerts.js';
import { TcpRelay, freePort, stopProcess } from './brokers.js';
import { type NatsServer, startNatsServer } from './nats-fleet.js';
import { CLI, ROOT } from './paths.js';

export interface DrillOptions {
  dir: string;
  /** postgres://… of an empty database for this drill. */
  pgUrl: string;
  agents: number;
  /** Events per second per agent. */
  rate: number;
  durationS: number;
  replicas: number;
  /** Run the faults (replica SIGKILL, nats-server restart, PostgreSQL refusing for pgOutageS). */
  faults: boolean;
  pgOutageS?: number;
  log?: (line: string) => void;
}

export interface AgentResult {
  hostname: string;
  exit: number | null;
  summary: { events: number; matches: number; groups: number; forwarded: { pending: number; delivered: number } | null } | undefined;
  /** uuid → count, as the agent's own store has them (every one acknowledged by JetStream when pending is 0). */
  groups: Map<string, number>;
  stderrTail: string;
}

export interface DrillReport {
  agents: AgentResult[];
  /** What PostgreSQL holds: hostname → uuid → count, and rows counted (duplicates show here). */
  stored: Map<string, Map<string, number>>;
  storedRows: number;
  missing: string[];
  wrongCount: string[];
  extra: string[];
  /** Webhook deliveries by idempotency key, and the keys delivered more than once. */
  deliveries: Map<string, number>;
  duplicateDeliveries: string[];
  /** Each key delivered more than once: how often, and which replica life sent it first (`<replica>.<life>`). */
  repeated: { key: string; times: number; firstFrom: string }[];
  /** The replica life that was SIGKILLed (`<replica>.<life>`), when the faults ran. */
  killed: string | undefined;
  /** Deliveries expected (a first per group, a summary per group counted more than once) and not seen. */
  undelivered: string[];
  /** Firsts not sent because their group's summary was stored before them (it supersedes them). */
  superseded: number;
  /** ms from an agent's match (the group's first_seen) to its arrival on replica 0's /api/stream. */
  streamLatencyMs: number[];
  faults: string[];
  replicaLogs: string[];
  seconds: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Why the drill cannot run here (for t.skip), or undefined. */
export function drillUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the fleet drill gives each agent its own hostname in a UTS namespace (unshare --uts): run as root';
  if (spawnSync('unshare', ['--uts', 'true']).status !== 0) return 'unshare --uts does not work here (util-linux, and a kernel with UTS namespaces)';
  return undefined;
}

/**
 * The recording: samples/miner-activity.jsonl, with each event that makes an alert played three
 * times, so every group has repeats and a summary to send when its window closes.
 */
export function writeRecording(dir: string): string {
  const lines = readFileSync(join(ROOT, 'samples/miner-activity.jsonl'), 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  const out: string[] = [];
  for (const l of lines) {
    out.push(l);
    // The pool connection and the miner exec are what the default rules fire on.
    if (/xmrig|stratum|198\.51\.100/.test(l)) out.push(l, l);
  }
  const path = join(dir, 'recording.jsonl');
  writeFileSync(path, out.join('\n') + '\n');
  return path;
}

class Replica {
  child: ChildProcess | undefined;
  logTail = '';
  /** Starts so far; the webhook path of this life is /hook/<n>.<life>. */
  life = -1;
  constructor(readonly n: number, readonly config: (life: string) => string, readonly url: string, readonly stateDir: string) {}

  get name(): string {
    return `${this.n}.${this.life}`;
  }

  start(): void {
    this.life++;
    this.child = spawn(process.execPath, [CLI, 'server', '-c', this.config(this.name)], {
      env: { ...process.env, MINEWATCH_STATE_DIR: this.stateDir }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.logTail = (this.logTail + d.toString()).slice(-20_000)));
  }

  async ready(timeoutMs = 120_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const ok = await fetch(`${this.url}/readyz`).then((r) => r.ok, () => false);
      if (ok) return;
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) throw new Error(`replica ${this.n} exited (${this.child.exitCode}): ${this.logTail.slice(-2000)}`);
      await sleep(200);
    }
    throw new Error(`replica ${this.n} not ready after ${timeoutMs} ms: ${this.logTail.slice(-2000)}`);
  }

  kill9(): void {
    this.child?.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    await stopProcess(this.child);
  }
}

/** Reads replica 0's /api/stream and records, per new group, ms from its first_seen to arrival. */
function watchStream(url: string, token: string, latencies: number[]): () => void {
  let req: http.ClientRequest | undefined;
  let stopped = false;
  const open = (): void => {
    if (stopped) return;
    req = http.get(`${url}/api/stream`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (!data) continue;
          const now = Date.now();
          const ev = JSON.parse(data.slice(6)) as { change: string; alert: { first_seen_ns: string } };
          if (ev.change === 'new') latencies.push(now - Number(BigInt(ev.alert.first_seen_ns) / 1_000_000n));
        }
      });
      res.on('end', () => setTimeout(open, 500));
    });
    req.on('error', () => setTimeout(open, 500));
  };
  open();
  return () => {
    stopped = true;
    req?.destroy();
  };
}

export async function runFleetDrill(o: DrillOptions): Promise<DrillReport> {
  const log = o.log ?? (() => undefined);
  const t0 = Date.now();
  mkdirSync(o.dir, { recursive: true });
  const prefix = 'minewatch.alerts';
  const tag = randomBytes(3).toString('hex');
  const agents = Array.from({ length: o.agents }, (_, i) => ({ hostname: `p18-${tag}-agent-${String(i).padStart(3, '0')}.example`, user: `agent-${i}`, password: randomBytes(12).toString('hex') }));
  const serverUser = { user: 'minewatch-server', password: randomBytes(12).toString('hex') };
  const nats: NatsServer = await startNatsServer(natsAuthorization(prefix, agents, serverUser));
  const pgTarget = new URL(o.pgUrl);
  const relay = new TcpRelay(pgTarget.hostname, Number(pgTarget.port) || 5432);
  const relayPort = await relay.listen(0);
  const pgViaRelay = new URL(o.pgUrl);
  pgViaRelay.hostname = '127.0.0.1';
  pgViaRelay.port = String(relayPort);
  const receiver = await new Receiver().listen();
  const token = randomBytes(16).toString('hex');
  const faults: string[] = [];
  const replicas: Replica[] = [];
  const children: ChildProcess[] = [];
  const latencies: number[] = [];
  let killed: string | undefined;
  let unwatch = (): void => undefined;
  try {
    for (let n = 0; n < o.replicas; n++) {
      const port = await freePort();
      // Each life of a replica posts to a webhook path of its own.
      const config = (life: string): string => {
        const cfg = join(o.dir, `server-${life}.yaml`);
        writeFileSync(cfg, JSON.stringify({
          rules_files: ['default'],
          web: { listen: `127.0.0.1:${port}`, token },
          outputs: { stdout: { enabled: false }, webhook: { enabled: true, url: `${receiver.url}/hook/${life}`, timeout_ms: 5000 } },
          alerts: {
            store: { url: pgViaRelay.toString() },
            throttle: { window_s: 2 },
            delivery: { retry_initial_ms: 200, retry_max_ms: 2000, send_timeout_ms: 5000 },
            consume: { url: nats.url, user: serverUser.user, password: serverUser.password, subject_prefix: prefix, batch: 256, ack_wait_s: 10 },
          },
        }));
        return cfg;
      };
      const stateDir = join(o.dir, `server-${n}-state`);
      mkdirSync(stateDir, { recursive: true });
      replicas.push(new Replica(n, config, `http://127.0.0.1:${port}`, stateDir));
    }
    // The first replica migrates and makes the stream and the consumer; the others join it.
    replicas[0]!.start();
    await replicas[0]!.ready();
    for (const r of replicas.slice(1)) r.start();
    for (const r of replicas.slice(1)) await r.ready();
    unwatch = watchStream(replicas[0]!.url, token, latencies);
    log(`${o.replicas} replicas ready after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const recording = writeRecording(o.dir);
    const results: AgentResult[] = agents.map((a) => ({ hostname: a.hostname, exit: null, summary: undefined, groups: new Map(), stderrTail: '' }));
    const started: Promise<void>[] = [];
    const exited: Promise<void>[] = [];
    agents.forEach((a, i) => {
      const cfg = join(o.dir, `agent-${i}.yaml`);
      const store = join(o.dir, `agent-${i}.db`);
      writeFileSync(cfg, JSON.stringify({
        rules_files: ['default'],
        outputs: { stdout: { enabled: false } },
        alerts: {
          store: { path: store },
          throttle: { window_s: 2 },
          delivery: { retry_initial_ms: 200, retry_max_ms: 2000, send_timeout_ms: 5000 },
          forward: { url: nats.url, user: a.user, password: a.password, subject_prefix: prefix, timeout_ms: 2000 },
        },
      }));
      // Its own hostname in its own UTS namespace, then the agent itself (exec: the pid is the agent's).
      const child = spawn('unshare', ['--uts', '--', 'sh', '-c', 'hostname "$0" && exec "$@"', a.hostname, process.execPath, CLI,
        'replay-live', recording, '-c', cfg, '--rate', String(o.rate), '--duration', String(o.durationS), '--drain-timeout', '180', '--json'], {
        env: { ...process.env, MINEWATCH_STATE_DIR: join(o.dir, `agent-${i}-state`) }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      let up: () => void;
      started.push(new Promise<void>((r) => (up = r)));
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => {
        const s = d.toString();
        results[i]!.stderrTail = (results[i]!.stderrTail + s).slice(-3000);
        if (s.includes('alert pipeline started')) up();
      });
      exited.push(new Promise<void>((resolve) => child.once('exit', (code) => {
        up();
        results[i]!.exit = code;
        try {
          results[i]!.summary = JSON.parse(out.trim().split('\n').pop() ?? '') as AgentResult['summary'];
        } catch {
          /* reported through exit and stderrTail */
        }
        resolve();
      })));
    });
    await Promise.all(started);
    const runStart = Date.now();
    log(`${o.agents} agents replaying (${o.rate} events/s each for ${o.durationS} s)`);

    if (o.faults) {
      const at = (frac: number) => sleep(Math.max(0, runStart + o.durationS * 1000 * frac - Date.now()));
      const victim = replicas[replicas.length - 1]!;
      await at(0.2);
      killed = victim.name;
      victim.kill9();
      faults.push(`t+${((Date.now() - runStart) / 1000).toFixed(1)} s: SIGKILL replica ${victim.n}`);
      await sleep(1500);
      victim.start();
      await victim.ready();
      faults.push(`t+${((Date.now() - runStart) / 1000).toFixed(1)} s: replica ${victim.n} restarted and ready`);
      await at(0.4);
      await nats.restart();
      faults.push(`t+${((Date.now() - runStart) / 1000).toFixed(1)} s: nats-server restarted`);
      await at(0.55);
      const outage = o.pgOutageS ?? 10;
      await relay.cut();
      faults.push(`t+${((Date.now() - runStart) / 1000).toFixed(1)} s: PostgreSQL refusing connections for ${outage} s`);
      await sleep(outage * 1000);
      await relay.listen(relayPort);
      faults.push(`t+${((Date.now() - runStart) / 1000).toFixed(1)} s: PostgreSQL back`);
    }
    await Promise.all(exited);
    log(`agents done after ${((Date.now() - runStart) / 1000).toFixed(1)} s`);

    // What each agent's store holds; its forwarder's pending count says whether JetStream acked it all.
    for (let i = 0; i < agents.length; i++) {
      const db = new Database(join(o.dir, `agent-${i}.db`), { readonly: true });
      for (const r of db.prepare('SELECT uuid, count FROM alerts').all() as { uuid: string; count: number }[]) results[i]!.groups.set(r.uuid, r.count);
      db.close();
    }
    const expected = new Map<string, number>();
    for (const r of results) for (const [u, c] of r.groups) expected.set(`${r.hostname}/${u}`, c);

    // Until PostgreSQL holds what the agents sent (the stream drained) or a minute passes.
    const client = new pg.Client({ connectionString: o.pgUrl });
    await client.connect();
    let stored = new Map<string, Map<string, number>>();
    let storedRows = 0;
    const end = Date.now() + 120_000;
    for (;;) {
      const rows = (await client.query('SELECT hostname, uuid, count FROM alerts')).rows as { hostname: string; uuid: string; count: string | number | bigint }[];
      stored = new Map();
      for (const r of rows) {
        const m = stored.get(r.hostname) ?? new Map<string, number>();
        m.set(r.uuid, Number(r.count));
        stored.set(r.hostname, m);
      }
      storedRows = rows.length;
      const done = [...expected].every(([k, c]) => {
        const [h, u] = k.split('/') as [string, string];
        return stored.get(h)?.get(u) === c;
      });
      if (done || Date.now() > end) break;
      await sleep(1000);
    }
    // Deliveries: every queued message sent (none pending in PostgreSQL), then a moment for stragglers.
    for (const end2 = Date.now() + 120_000; Date.now() < end2; await sleep(1000)) {
      const pending = Number((await client.query('SELECT count(*) AS n FROM deliveries')).rows[0].n);
      if (pending === 0) break;
    }
    await client.end();
    await sleep(1000);

    const missing: string[] = [];
    const wrongCount: string[] = [];
    for (const [k, c] of expected) {
      const [h, u] = k.split('/') as [string, string];
      const got = stored.get(h)?.get(u);
      if (got === undefined) missing.push(k);
      else if (got !== c) wrongCount.push(`${k}: agent ${c}, store ${got}`);
    }
    const extra: string[] = [];
    for (const [h, m] of stored) for (const u of m.keys()) if (!expected.has(`${h}/${u}`)) extra.push(`${h}/${u}`);

    const deliveries = new Map<string, number>();
    for (const r of receiver.requests) {
      const body = JSON.parse(r.body) as { minewatch?: { uuid: string; kind: string } };
      const key = String(r.headers['idempotency-key'] ?? `${body.minewatch?.uuid}:${body.minewatch?.kind}`);
      deliveries.set(key, (deliveries.get(key) ?? 0) + 1);
    }
    const duplicateDeliveries = [...deliveries].filter(([, n]) => n > 1).map(([k, n]) => `${k} ×${n}`);
    const firstFrom = new Map<string, string>();
    for (const r of receiver.requests) {
      const body = JSON.parse(r.body) as { minewatch?: { uuid: string; kind: string } };
      const key = String(r.headers['idempotency-key'] ?? `${body.minewatch?.uuid}:${body.minewatch?.kind}`);
      if (!firstFrom.has(key)) firstFrom.set(key, r.url.replace(/^\/hook\//, ''));
    }
    const repeated = [...deliveries].filter(([, n]) => n > 1).map(([key, times]) => ({ key, times, firstFrom: firstFrom.get(key)! }));
    const delivered = new Set([...receiver.requests].map((r) => {
      const b = JSON.parse(r.body) as { hostname: string; minewatch: { uuid: string; kind: string } };
      return `${b.hostname}/${b.minewatch.uuid}:${b.minewatch.kind}`;
    }));
    // A group's last word must reach the webhook: its summary when it had repeats, else its first
    // message. A first that reached the store after its summary (redelivered late, e.g. nak'ed while
    // PostgreSQL was away) brings nothing new and is not sent: counted in `superseded`.
    const undelivered: string[] = [];
    let superseded = 0;
    for (const [k, c] of expected) {
      if (c > 1 && !delivered.has(`${k}:summary`)) undelivered.push(`${k}:summary`);
      else if (c === 1 && !delivered.has(`${k}:first`)) undelivered.push(`${k}:first`);
      else if (c > 1 && !delivered.has(`${k}:first`)) superseded++;
    }
    return {
      agents: results, stored, storedRows, missing, wrongCount, extra, deliveries, duplicateDeliveries, repeated, killed, undelivered, superseded,
      streamLatencyMs: latencies, faults, replicaLogs: replicas.map((r) => r.logTail), seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    unwatch();
    for (const c of children) c.kill('SIGKILL');
    for (const r of replicas) await r.stop();
    await receiver.close();
    await relay.cut();
    await nats.close();
  }
}
