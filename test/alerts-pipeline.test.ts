/**
 * The alert pipeline on a real SQLite store: grouping, store-before-forward, per-output delivery
 * with retries, restart recovery, agent-group ingest, queries and retention. Outputs here are
 * in-process targets that record what they accept; the real outputs have their own tests.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { alertsSection, type AlertsConfig } from '../src/alerts/config.js';
import { AlertPipeline, parseIsoNs } from '../src/alerts/pipeline.js';
import { AlertStore } from '../src/alerts/store.js';
import { StdoutOutput } from '../src/alerts/outputs/stdout.js';
import { renderLine } from '../src/alerts/outputs/render.js';
import { PermanentDeliveryError, type AlertMessage, type Output } from '../src/alerts/types.js';
import { createLogger } from '../src/platform/logger.js';
import type { Match, Priority } from '../src/engine/types.js';
import type { SyscallEvent } from '../src/events.js';
import { until } from './helpers/wait.js';
import { toJsonText } from '../src/engine/json.js';

const log = createLogger('silent');
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function dbPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'mw-alerts-'));
  dirs.push(d);
  return join(d, 'alerts.db');
}


function config(over: Record<string, unknown> = {}): AlertsConfig {
  return alertsSection.parse({ delivery: { retry_initial_ms: 5, retry_max_ms: 20 }, ...over });
}

/** An output that records what it accepted; `fail` decides per attempt whether to refuse. */
class RecordingOutput implements Output {
  readonly got: AlertMessage[] = [];
  attempts = 0;
  closed = false;
  private waiters: { n: number; resolve: () => void }[] = [];
  constructor(readonly name: string, public fail: (attempt: number, msg: AlertMessage) => Error | undefined = () => undefined) {}
  async send(msg: AlertMessage): Promise<void> {
    const err = this.fail(++this.attempts, msg);
    if (err) throw err;
    this.got.push(msg);
    this.waiters = this.waiters.filter((w) => (this.got.length >= w.n ? (w.resolve(), false) : true));
  }
  async close(): Promise<void> { this.closed = true; }
  /** Resolves once `n` messages arrived (the test's timeout bounds it, not a timing assert). */
  until(n: number): Promise<void> {
    if (this.got.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

function match(over: { rule?: string; priority?: Priority; container?: string; ns?: string; pid?: number; time?: bigint; output?: string } = {}): Match {
  const pid = over.pid ?? 4242;
  const event: SyscallEvent = {
    source: 'syscall', type: 'execve', ts: over.time ?? 1_764_000_000_000_000_000n,
    proc: { pid, name: 'xmrig', exe: './xmrig', exepath: '/tmp/xmrig', args: ['-o', 'pool'], cwd: '/tmp', uid: 0, user: 'root' } as SyscallEvent['proc'],
    container: { id: over.container ?? 'c0ffee000001', name: 'web', image: 'alpine:3' },
    ...(over.ns ? { k8s: { ns_name: over.ns, pod_name: 'web-1' } } : {}),
  };
  return {
    rule: over.rule ?? 'Detect crypto miners using the Stratum protocol',
    priority: over.priority ?? 'CRITICAL',
    source: 'syscall',
    tags: ['mitre_impact'],
    output: over.output ?? `Miner started (proc.pid=${pid} container.id=${event.container!.id})`,
    outputFields: { 'proc.pid': pid, 'container.id': event.container!.id },
    time: event.ts,
    hostname: 'node-1',
    event,
  };
}

/** A clock the test moves: windows close when the test says so, not when a timer fires. */
function clock(startMs = 1_764_000_000_000) {
  let ns = BigInt(startMs) * 1_000_000n;
  return { now: () => ns, advance: (s: number) => { ns += BigInt(Math.round(s * 1e9)); } };
}

describe('throttling and grouping', () => {
  it('10,000 repeats for one container: one stored group with count 10,000, two messages (first at once, summary at window close)', async () => {
    const out = new RecordingOutput('hook');
    const c = clock();
    const p = new AlertPipeline({ config: config({ store: { path: dbPath() } }), outputs: [out], log, now: c.now }).start();
    for (let i = 0; i < 10_000; i++) p.accept(match({ pid: 1000 + (i % 7) }));
    await out.until(1);
    assert.equal(out.got.length, 1);
    assert.equal(out.got[0].minewatch.kind, 'first');
    assert.equal(out.got[0].minewatch.count, 1);
    p.flush();
    const [g] = p.query({});
    assert.equal(p.query({}).length, 1);
    assert.equal(g.count, 10_000);
    assert.deepEqual(g.changed['proc.pid']?.slice().sort(), [1000, 1001, 1002, 1003, 1004, 1005, 1006]);
    c.advance(301);
    p.flush();
    await out.until(2);
    assert.equal(out.got[1].minewatch.kind, 'summary');
    assert.equal(out.got[1].minewatch.count, 10_000);
    assert.match(out.got[1].output, /10000 times/);
    assert.equal(p.get(g.id)!.windowEnd, null);
    await p.stop();
    assert.equal(out.got.length, 2);
  });

  it('the record of a new group carries its stored event, read back only when asked, the same as the stored row', async () => {
    const p = new AlertPipeline({ config: config({ store: { path: ':memory:' }, throttle: { window_s: 0 } }), outputs: [], log }).start();
    const seen: Record<string, unknown>[] = [];
    p.subscribe((r) => seen.push(r as unknown as Record<string, unknown>));
    const rec = p.accept(match({ pid: 4242 }))!;
    assert.ok(rec, 'stored');
    const ev = rec.event as { proc?: { pid?: number } };
    assert.equal(ev.proc?.pid, 4242);
    assert.equal(rec.event, ev, 'parsed once: the same object on every read');
    p.flush();
    assert.deepEqual(rec.event, p.get(rec.id)!.event, 'what the store reads back');
    assert.deepEqual({ ...rec }.event, ev, 'a spread copies it');
    assert.equal((JSON.parse(toJsonText(seen[0])) as { event: { proc: { pid: number } } }).event.proc.pid, 4242, 'a listener serialises it');
    await p.stop();
  });

  it('the flush tick runs only while a group is open: it closes the window by itself, then stops', async () => {
    const out = new RecordingOutput('hook');
    const c = clock();
    const p = new AlertPipeline({ config: config({ store: { path: ':memory:' } }), outputs: [out], log, now: c.now }).start();
    assert.equal(p.ticking, false, 'nothing open: no tick');
    p.accept(match());
    p.accept(match());
    assert.equal(p.ticking, true, 'a group is open');
    await out.until(1);
    c.advance(301);
    // No flush() here: the tick itself writes the count and queues the summary (its timer is
    // unref'd, as in the agent, where other handles keep the loop alive: this one does here).
    const hold = setInterval(() => {}, 1000);
    await out.until(2).finally(() => clearInterval(hold));
    assert.equal(out.got[1].minewatch.kind, 'summary');
    assert.equal(out.got[1].minewatch.count, 2);
    assert.equal(p.ticking, false, 'all closed: the tick stopped');
    p.accept(match());
    assert.equal(p.ticking, true, 'a new group starts it again');
    await p.stop();
    const off = new AlertPipeline({ config: config({ store: { path: ':memory:' }, throttle: { window_s: 0 } }), outputs: [], log }).start();
    off.accept(match());
    assert.equal(off.ticking, false, 'grouping off: never a tick');
    await off.stop();
  });

  it('two containers give two groups; after the window closes a new match starts a new group', async () => {
    const out = new RecordingOutput('hook');
    const c = clock();
    const p = new AlertPipeline({ config: config({ store: { path: ':memory:' } }), outputs: [out], log, now: c.now }).start();
    for (let i = 0; i < 50; i++) {
      p.accept(match({ container: 'aaaaaaaaaaaa' }));
      p.accept(match({ container: 'bbbbbbbbbbbb' }));
    }
    p.flush();
    const groups = p.query({});
    assert.equal(groups.length, 2);
    assert.deepEqual(groups.map((g) => g.count), [50, 50]);
    c.advance(301);
    p.flush();
    p.accept(match({ container: 'aaaaaaaaaaaa' }));
    assert.equal(p.query({}).length, 3);
    await out.until(5); // 3 firsts + 2 summaries
    await p.stop();
  });

  it('a lone alert gets no summary; window 0 turns grouping off', async () => {
    const out = new RecordingOutput('hook');
    const c = clock();
    const p = new AlertPipeline({ config: config({ store: { path: ':memory:' } }), outputs: [out], log, now: c.now }).start();
    p.accept(match());
    c.advance(400);
    p.flush();
    await out.until(1);
    await p.stop();
    assert.equal(out.got.length, 1);
    const off = new AlertPipeline({ config: config({ store: { path: ':memory:' }, throttle: { window_s: 0 } }), outputs: [], log }).start();
    for (let i = 0; i < 3; i++) off.accept(match());
    assert.equal(off.query({}).length, 3);
    await off.stop();
  });
});

describe('delivery', () => {
  it('an output that is down gets every alert once it is back; a second output is not held up', async () => {
    let down = true;
    const flaky = new RecordingOutput('flaky', () => (down ? new Error('connect ECONNREFUSED') : undefined));
    const steady = new RecordingOutput('steady');
    const p = new AlertPipeline({ config: config({ store: { path: dbPath() }, throttle: { window_s: 0 } }), outputs: [flaky, steady], log }).start();
    for (let i = 0; i < 30; i++) p.accept(match({ pid: i }));
    await steady.until(30);
    assert.equal(flaky.got.length, 0);
    assert.ok(p.outputStats().find((s) => s.name === 'flaky')!.pending > 0);
    down = false;
    await flaky.until(30);
    assert.deepEqual(flaky.got.map((m) => m.output_fields['proc.pid']).sort((a, b) => Number(a) - Number(b)), [...Array(30).keys()]);
    await until(() => p.outputStats().find((s) => s.name === 'flaky')!.pending === 0);
    const st = p.outputStats().find((s) => s.name === 'flaky')!;
    assert.equal(st.delivered, 30);
    assert.ok(st.failures > 0);
    await p.stop();
  });

  it('a refusal for good is not retried and is counted', async () => {
    const out = new RecordingOutput('strict', (_n, m) => (m.output_fields['proc.pid'] === 1 ? new PermanentDeliveryError('HTTP 400 bad request') : undefined));
    const p = new AlertPipeline({ config: config({ store: { path: ':memory:' }, throttle: { window_s: 0 } }), outputs: [out], log }).start();
    p.accept(match({ pid: 1 }));
    p.accept(match({ pid: 2 }));
    await out.until(1);
    await until(() => p.store.counters('strict').dead === 1 && p.store.counters('strict').pending === 0);
    assert.equal(out.attempts, 2);
    await p.stop();
  });

  it('pending deliveries and open windows survive a restart on the same store', async () => {
    const path = dbPath();
    const c = clock();
    const dead = new RecordingOutput('hook', () => new Error('down'));
    const p1 = new AlertPipeline({ config: config({ store: { path } }), outputs: [dead], log, now: c.now }).start();
    for (let i = 0; i < 5; i++) p1.accept(match());
    p1.accept(match({ container: 'cccccccccccc' }));
    await p1.stop();
    const out = new RecordingOutput('hook');
    const p2 = new AlertPipeline({ config: config({ store: { path } }), outputs: [out], log, now: c.now }).start();
    await out.until(2);
    // The open group goes on counting under the same row after the restart.
    p2.accept(match());
    p2.flush();
    assert.equal(p2.query({}).length, 2);
    assert.equal(p2.query({ container: ['c0ffee000001'] })[0].count, 6);
    c.advance(301);
    p2.flush();
    await out.until(3);
    assert.equal(out.got[2].minewatch.count, 6);
    await p2.stop();
  });
});

/** Lines written to a stdout output's stream. */
function lineSink(): { stream: PassThrough; lines: string[] } {
  const stream = new PassThrough();
  const lines: string[] = [];
  let rest = '';
  stream.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  return { stream, lines };
}

/** Count the store reads of pending deliveries (claims) of a pipeline's store. */
function countClaims(p: AlertPipeline): { n: number } {
  const count = { n: 0 };
  const claim = p.store.claim.bind(p.store);
  p.store.claim = (output: string, limit: number) => {
    count.n++;
    return claim(output, limit);
  };
  return count;
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('delivery at commit (issue 16: exec → alert)', () => {
  it('an idle output is handed each committed message as it is: no read back, one line each, delivered once, nothing again after a restart', async () => {
    const path = dbPath();
    const { stream, lines } = lineSink();
    const p = new AlertPipeline({ config: config({ store: { path }, throttle: { window_s: 0 } }), outputs: [new StdoutOutput({ name: 'stdout', format: 'json', stream })], log });
    const claims = countClaims(p);
    p.start();
    await until(() => claims.n === 1); // the start's look at the store: nothing pending
    for (let i = 0; i < 5; i++) {
      p.accept(match({ pid: 100 + i }));
      await nextTurn();
      await until(() => lines.length === i + 1);
    }
    // Sent from the message in hand: the store was not read again for any of them.
    assert.equal(claims.n, 1);
    const got = lines.map((l) => JSON.parse(l) as AlertMessage);
    assert.deepEqual(got.map((m) => m.output_fields['proc.pid']), [100, 101, 102, 103, 104]);
    // Each line is the message the store holds for its group.
    for (const m of got) assert.equal(toJsonText(m), toJsonText(p.message(p.store.getByUuid(m.minewatch.uuid)!, 'first')));
    await until(() => p.store.counters('stdout').delivered === 5);
    assert.equal(p.store.counters('stdout').pending, 0);
    await p.stop();

    const again = lineSink();
    const p2 = new AlertPipeline({ config: config({ store: { path }, throttle: { window_s: 0 } }), outputs: [new StdoutOutput({ name: 'stdout', format: 'json', stream: again.stream })], log });
    const claims2 = countClaims(p2);
    p2.start();
    await until(() => claims2.n >= 1);
    p2.accept(match({ pid: 200 }));
    await until(() => again.lines.length === 1);
    assert.equal((JSON.parse(again.lines[0]!) as AlertMessage).output_fields['proc.pid'], 200, 'nothing of the first run was written again');
    await until(() => p2.store.counters('stdout').delivered === 6);
    await p2.stop();
  });

  it('the line an output is handed is the line another output reads back from the store', async () => {
    const handed = lineSink();
    // Refuses its first message: it sends it later, read back from the store.
    const stored: string[] = [];
    const readBack = new RecordingOutput('b', (attempt) => (attempt === 1 ? new Error('ECONNREFUSED') : undefined));
    const send = readBack.send.bind(readBack);
    readBack.send = async (m) => { await send(m); stored.push(renderLine(m, 'json')); };
    const p = new AlertPipeline({
      config: config({ store: { path: dbPath() }, throttle: { window_s: 0 } }), log,
      outputs: [new StdoutOutput({ name: 'a', format: 'json', stream: handed.stream }), readBack],
    }).start();
    await nextTurn();
    p.accept({ ...match({ pid: 7 }), outputFields: { 'proc.pid': 7, 'container.id': 'c0ffee000001', 'evt.time': 1_764_000_000_123_456_789n, 'proc.args': 'a "quoted"\nline' } });
    await until(() => handed.lines.length === 1 && stored.length === 1);
    assert.equal(handed.lines[0], stored[0]);
    assert.equal(p.store.counters('b').failures, 1);
    await p.stop();
  });

  it('a failure in what was handed over sends the rest from the store, in order, each once', async () => {
    const out = new RecordingOutput('hook', (attempt) => (attempt === 2 ? new Error('ECONNRESET') : undefined));
    const p = new AlertPipeline({ config: config({ store: { path: dbPath() }, throttle: { window_s: 0 }, delivery: { retry_initial_ms: 5, retry_max_ms: 20, concurrency: 1 } }), outputs: [out], log }).start();
    await nextTurn();
    // One commit: three messages handed over at once.
    for (let i = 0; i < 3; i++) p.accept(match({ pid: i }));
    await until(() => p.store.counters('hook').delivered === 3);
    assert.deepEqual(out.got.map((m) => m.output_fields['proc.pid']), [0, 1, 2]);
    assert.equal(out.attempts, 4);
    assert.equal(p.store.counters('hook').pending, 0);
    await p.stop();
  });

  it('while stdout blocks nothing is recorded as delivered; stopped then, a restart writes every alert once', async () => {
    const path = dbPath();
    // A reader that takes nothing: the writes never complete (a send that times out meanwhile is
    // a failure, which changes none of what is asserted).
    const blocked = new Writable({ highWaterMark: 1, write(_c, _e, _cb) { /* never called back */ } });
    const cfg = config({ store: { path }, throttle: { window_s: 0 }, delivery: { retry_initial_ms: 5, retry_max_ms: 20, send_timeout_ms: 2500 } });
    const p = new AlertPipeline({ config: cfg, outputs: [new StdoutOutput({ name: 'stdout', format: 'json', stream: blocked })], log }).start();
    await nextTurn();
    for (let i = 0; i < 3; i++) {
      p.accept(match({ pid: 300 + i }));
      await nextTurn();
    }
    assert.equal(p.store.counters('stdout').delivered, 0);
    assert.equal(p.store.counters('stdout').pending, 3);
    await p.stop();
    const again = lineSink();
    const p2 = new AlertPipeline({ config: cfg, outputs: [new StdoutOutput({ name: 'stdout', format: 'json', stream: again.stream })], log }).start();
    await until(() => p2.store.counters('stdout').pending === 0);
    assert.deepEqual(again.lines.map((l) => (JSON.parse(l) as AlertMessage).output_fields['proc.pid']), [300, 301, 302]);
    assert.equal(p2.store.counters('stdout').delivered, 3);
    await p2.stop();
  });

  it('alerts accepted in one callback share one commit, made as that callback returns (not a turn later)', async () => {
    const { stream, lines } = lineSink();
    const p = new AlertPipeline({ config: config({ store: { path: dbPath() }, throttle: { window_s: 0 } }), outputs: [new StdoutOutput({ name: 'stdout', format: 'json', stream })], log }).start();
    await until(() => !p.store.writing());
    await nextTurn();
    p.accept(match({ pid: 1 }));
    p.accept(match({ pid: 2 }));
    assert.equal(p.store.writing(), true, 'one transaction open for both');
    await Promise.resolve();
    assert.equal(p.store.writing(), false, 'committed before the next turn of the event loop');
    await until(() => lines.length === 2);
    await p.stop();
  });

  it('the store does not checkpoint inside the commit before an alert\'s line while the pipeline runs', async () => {
    const store = new AlertStore(dbPath());
    const p = new AlertPipeline({ config: config({ throttle: { window_s: 0 } }), outputs: [], log, store }).start();
    assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 0);
    await p.stop();
    // SQLite's own checkpoint is back for whatever uses the store after.
    assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 1000);
    store.close();
  });
});

describe('ingest (POST / from Falco or an agent)', () => {
  it("stores an agent's group under its uuid and updates it with the summary; redeliveries change nothing", async () => {
    const fwd = new RecordingOutput('fwd');
    const p = new AlertPipeline({ config: config({ store: { path: ':memory:' } }), outputs: [fwd], log }).start();
    const base = {
      hostname: 'node-7', output: '20:16:35.123456789: Critical Miner started (k8s.ns.name=prod)', output_fields: { 'k8s.ns.name': 'prod', 'k8s.pod.name': 'api-1', 'container.id': 'abcabcabcabc' },
      priority: 'Critical', rule: 'Miner', source: 'syscall', tags: ['a'], time: '2026-11-25T20:16:35.123456789Z',
    };
    const mw = { uuid: '3f1c2d9e-0000-4000-8000-000000000001', kind: 'first' as const, count: 1, first_seen: base.time, last_seen: base.time };
    const r1 = p.ingest({ ...base, minewatch: mw });
    p.ingest({ ...base, minewatch: mw });
    const r2 = p.ingest({ ...base, minewatch: { ...mw, kind: 'summary', count: 40, last_seen: '2026-11-25T20:18:00Z' } });
    assert.equal(r1!.id, r2!.id);
    const [g] = p.query({});
    assert.equal(p.query({}).length, 1);
    assert.equal(g.count, 40);
    assert.equal(g.hostname, 'node-7');
    assert.equal(g.namespace, 'prod');
    assert.equal(g.pod, 'api-1');
    assert.equal(g.output, 'Miner started (k8s.ns.name=prod)');
    assert.equal(g.firstSeen, 1_795_637_795_123_456_789n);
    await fwd.until(2);
    await p.stop();
  });

  it('plain Falco alerts are grouped like local ones', async () => {
    const p = new AlertPipeline({ config: config({ store: { path: ':memory:' } }), outputs: [], log }).start();
    const a = { hostname: 'h', output: '20:16:35.1: Warning x', output_fields: { 'container.id': 'host' }, priority: 'Warning', rule: 'R', source: 'syscall', tags: [], time: '2026-11-25T20:16:35.1Z' };
    for (let i = 0; i < 3; i++) p.ingest(a);
    p.flush();
    assert.deepEqual(p.query({}).map((g) => [g.count, g.origin, g.priority]), [[3, 'input', 'WARNING']]);
    await p.stop();
  });

  it('parses Falco times with any fraction or an offset', () => {
    assert.equal(parseIsoNs('2026-11-25T20:16:35Z'), 1_795_637_795_000_000_000n);
    assert.equal(parseIsoNs('2026-11-25T20:16:35.5+00:00'), 1_795_637_795_500_000_000n);
    assert.equal(parseIsoNs('2026-11-25T21:16:35.000000001+0100'), 1_795_637_795_000_000_001n);
    assert.equal(parseIsoNs('yesterday'), undefined);
  });
});

describe('store queries and retention', () => {
  const store = new AlertStore(':memory:');
  const p = new AlertPipeline({ config: config({ throttle: { window_s: 0 } }), outputs: [], log, store }).start();
  const t0 = 1_764_000_000_000_000_000n;
  p.accept(match({ rule: 'A', priority: 'CRITICAL', ns: 'prod', time: t0, output: 'xmrig connected to pool.supportxmr.com' }));
  p.accept(match({ rule: 'B', priority: 'WARNING', ns: 'dev', time: t0 + 60_000_000_000n, output: 'setuid bit on /tmp/x' }));
  p.accept(match({ rule: 'A', priority: 'CRITICAL', ns: 'dev', container: 'dddddddddddd', time: t0 + 120_000_000_000n, output: 'xmrig connected to gulf.moneroocean.stream' }));
  after(() => p.stop().then(() => store.close()));

  it('filters by rule, priority, namespace, container, time and text; pages newest first', () => {
    assert.deepEqual(p.query({ rule: ['A'] }).map((r) => r.namespace), ['dev', 'prod']);
    assert.deepEqual(p.query({ priority: ['WARNING'] }).map((r) => r.rule), ['B']);
    assert.deepEqual(p.query({ minPriority: 'ERROR' }).map((r) => r.rule), ['A', 'A']);
    assert.deepEqual(p.query({ namespace: ['dev'] }).map((r) => r.rule), ['A', 'B']);
    assert.deepEqual(p.query({ container: ['dddddddddddd'] }).length, 1);
    assert.deepEqual(p.query({ from: t0 + 1n }).length, 2);
    assert.deepEqual(p.query({ text: 'MONEROOCEAN' }).map((r) => r.namespace), ['dev']);
    assert.deepEqual(p.query({ text: 'x' }).length, 3);
    assert.deepEqual(p.query({ text: 'no such thing' }).length, 0);
    const page1 = p.query({ limit: 2 });
    const page2 = p.query({ limit: 2, beforeId: page1[1].id });
    assert.deepEqual([...page1, ...page2].map((r) => r.rule), ['A', 'B', 'A']);
  });

  it('text search takes % and _ literally, and a store made with the old text index is rebuilt on open', async () => {
    const path = dbPath();
    const old = new AlertStore(path);
    // The text index as the first stores had it (with positions).
    old.db.exec("DROP TABLE alerts_text; CREATE VIRTUAL TABLE alerts_text USING fts5(output, content='alerts', content_rowid='id', tokenize='trigram')");
    const q = new AlertPipeline({ config: config({ throttle: { window_s: 0 } }), outputs: [], log, store: old }).start();
    q.accept(match({ output: 'cpu at 100% in proc_miner' }));
    q.accept(match({ output: 'cpu at 1000 in procXminer' }));
    await q.stop();
    old.close();
    const reopened = new AlertStore(path);
    assert.match((reopened.db.prepare("SELECT sql FROM sqlite_master WHERE name = 'alerts_text'").get() as { sql: string }).sql, /detail=none/);
    assert.deepEqual(reopened.query({ text: '100%' }).map((r) => r.output), ['cpu at 100% in proc_miner']);
    assert.deepEqual(reopened.query({ text: 'proc_miner' }).map((r) => r.output), ['cpu at 100% in proc_miner']);
    assert.deepEqual(reopened.query({ text: 'PROCXMINER' }).map((r) => r.output), ['cpu at 1000 in procXminer']);
    reopened.close();
  });

  it('counts by priority, rule, namespace and host, and a timeline', () => {
    const s = p.stats({}, 60_000);
    assert.equal(s.groups, 3);
    assert.equal(s.byPriority.CRITICAL, 2);
    assert.equal(s.byPriority.WARNING, 1);
    assert.deepEqual(s.byRule, [['A', 2], ['B', 1]]);
    assert.deepEqual(s.byNamespace, [['dev', 2], ['prod', 1]]);
    assert.deepEqual(s.timeline.map((b) => b.count), [1, 1, 1]);
  });

  it('retention deletes by age and count, never an alert still waiting for an output', async () => {
    const s2 = new AlertStore(':memory:');
    const stuck = new RecordingOutput('stuck', () => new Error('down'));
    const q = new AlertPipeline({ config: config({ throttle: { window_s: 0 } }), outputs: [stuck], log, store: s2 }).start();
    q.accept(match({ time: t0 }));
    await q.stop();
    const q2 = new AlertPipeline({ config: config({ throttle: { window_s: 0 } }), outputs: [], log, store: s2 }).start();
    q2.accept(match({ time: t0 }));
    q2.accept(match({ time: t0 + 86_400_000_000_000n * 40n }));
    const now = t0 + 86_400_000_000_000n * 41n;
    assert.equal(s2.applyRetention({ nowNs: now, maxAgeDays: 30, maxAlerts: 0, maxSizeMb: 0 }), 1);
    assert.equal(s2.query({}).length, 2); // the undelivered one stays
    assert.equal(s2.applyRetention({ nowNs: now, maxAgeDays: 0, maxAlerts: 1, maxSizeMb: 0 }), 0);
    await q2.stop();
    s2.close();
  });
});
