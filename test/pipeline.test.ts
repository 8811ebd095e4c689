/**
 * The event pipeline's parts without a host: the stages in order (enrich → detectors → engine →
 * response → sink), the own-process filter and the drop count, the detector answers handed to the
 * dispatcher, the driver choice and its error, and the --record file (0600, no environment).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Detector } from '../src/detectors/types.js';
import { Engine } from '../src/engine/index.js';
import type { Match } from '../src/engine/types.js';
import { decodeEvent, type Event, type SyscallEvent } from '../src/events.js';
import { CountingSink } from '../src/pipeline/alert-sink.js';
import { BATCH, EventPipeline } from '../src/pipeline/event-pipeline.js';
import { EventRecorder } from '../src/pipeline/recorder.js';
import type { ActionRequest, ActionResult } from '../src/response/types.js';
import { chooseDriver, DriverUnavailableError } from '../src/sources/choose-driver.js';
import type { ProcNoticeSource } from '../src/sources/types.js';

const work = mkdtempSync(join(tmpdir(), 'mw-p14pipe-'));
after(() => rmSync(work, { recursive: true, force: true }));

const RULES = `- rule: Pipeline Test
  desc: t
  condition: evt.type = execve and proc.name = mwpipe
  output: seen %proc.name pid=%proc.pid
  priority: WARNING
`;

function exec(pid: number, name: string): SyscallEvent {
  return { source: 'syscall', type: 'execve', ts: 1n, proc: { pid, name, args: [], env: ['SECRET=1'], start_ts: 5n } };
}

function pipeline(o: { queueSize?: number; detectors?: Detector[]; isSelf?: (pid: number) => boolean; record?: (ev: Event) => void; onQuietExec?: (sig: number) => void } = {}) {
  writeFileSync(join(work, 'r.yaml'), RULES);
  const engine = Engine.fromFiles([join(work, 'r.yaml')]);
  const order: string[] = [];
  const requests: ActionRequest[] = [];
  const reports: ActionResult[] = [];
  const sunk: Match[] = [];
  const sink = new CountingSink((m) => {
    order.push(`sink:${m.rule}`);
    sunk.push(m);
  });
  const p = new EventPipeline({
    queueSize: o.queueSize ?? 100,
    engine: () => engine,
    enrich: { enrich: (ev) => order.push(`enrich:${ev.type}`) },
    detectors: () => o.detectors ?? [],
    response: {
      onMatch: (m) => order.push(`response:${m.rule}`),
      request: (r) => requests.push(r),
      report: (r) => reports.push(r),
    },
    sink,
    isSelf: o.isSelf,
    record: o.record,
    onQuietExec: o.onQuietExec,
    onError: (err) => {
      throw err;
    },
  });
  return { p, order, requests, reports, sunk, sink };
}

test('stages run in order: enrich, detectors, engine, response, sink; the sink counts', () => {
  const seen: string[] = [];
  const det: Detector = { name: 't', onEvent: (ev) => (seen.push(`detector:${ev.type}`), undefined), stats: () => ({}) };
  const { p, order, sink } = pipeline({ detectors: [det] });
  p.accept(exec(10, 'mwpipe'));
  p.flush();
  assert.deepEqual(order, ['enrich:execve', 'response:Pipeline Test', 'sink:Pipeline Test']);
  assert.deepEqual(seen, ['detector:execve']);
  assert.equal(sink.count, 1);
  assert.deepEqual(p.counts(), { queued: 0, processed: 1, queueDrops: 0, own: 0 });
  assert.deepEqual([...p.eventCounts.entries()], [['syscall', 'execve', 1]]);
});

test('a source callback\'s events are evaluated together once it returns, before the event loop turns; a long queue yields to I/O', async () => {
  const { p, order } = pipeline({ queueSize: BATCH * 2 });
  p.start();
  // One source callback (a ring buffer batch): nothing is evaluated inside it.
  for (let i = 0; i < 3; i++) p.accept(exec(10 + i, 'mwpipe'));
  assert.equal(p.counts().processed, 0, 'not inside the callback');
  let turned = false;
  setImmediate(() => (turned = true));
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(p.counts().processed, 3, 'right after it');
  assert.equal(turned, false, 'without waiting for the event loop');
  assert.equal(order.filter((x) => x === 'enrich:execve').length, 3);
  // More than a batch: the first BATCH now, the rest after I/O had its turn.
  for (let i = 0; i < BATCH + 5; i++) p.accept(exec(100 + i, 'other'));
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(p.counts().processed, 3 + BATCH);
  await new Promise(setImmediate);
  assert.equal(p.counts().processed, 3 + BATCH + 5);
});

test('a detector\'s answers go to the dispatcher: request → request, report → report, on events and on matches', () => {
  const req: ActionRequest = { action: 'kill', target: { pid: 10 }, trigger: 't', mode: 'enforce' };
  const det: Detector = {
    name: 't',
    onEvent: () => [{ request: req }, { report: { request: req, outcome: 'spared', reason: 'x' } }],
    onMatch: (m) => [{ request: { ...req, trigger: m.rule } }],
    stats: () => ({}),
  };
  const { p, requests, reports } = pipeline({ detectors: [det] });
  p.accept(exec(10, 'mwpipe'));
  p.flush();
  assert.deepEqual(requests.map((r) => r.trigger), ['t', 'Pipeline Test']);
  assert.deepEqual(reports.map((r) => r.outcome), ['spared']);
});

test('an exec with a signature that nothing came of goes back to the driver as quiet; one a rule matched or a detector answered does not', () => {
  const quiet: number[] = [];
  let answer = false;
  const det: Detector = {
    name: 't',
    onEvent: (ev) => (answer && (ev as SyscallEvent).proc.pid === 12 ? [{ report: { request: { action: 'kill', target: { pid: 12 }, trigger: 't', mode: 'dryrun' }, outcome: 'spared', reason: 'x' } }] : undefined),
    stats: () => ({}),
  };
  const { p, sunk } = pipeline({ detectors: [det], onQuietExec: (sig) => quiet.push(sig) });
  const withSig = (ev: SyscallEvent, sig: number): SyscallEvent => ((ev.execSig = sig), ev);
  p.accept(withSig(exec(10, 'harmless'), 101)); // nothing: quiet
  p.accept(withSig(exec(11, 'mwpipe'), 102)); // the rule matches
  answer = true;
  p.accept(withSig(exec(12, 'harmless'), 103)); // a detector answers (a dry-run report counts)
  p.accept(exec(13, 'harmless')); // no signature (another driver): nothing to say
  p.flush();
  assert.deepEqual(quiet, [101]);
  assert.deepEqual(sunk.map((m) => m.rule), ['Pipeline Test']);
});

test('the detectors provider is read per event: a swapped list takes over', () => {
  let list: Detector[] = [];
  const hits: string[] = [];
  const { p } = pipeline();
  const p2 = new EventPipeline({ ...(p as unknown as { o: ConstructorParameters<typeof EventPipeline>[0] }).o, detectors: () => list });
  list = [{ name: 'a', onEvent: () => (hits.push('a'), undefined), stats: () => ({}) }];
  p2.accept(exec(1, 'x'));
  p2.flush();
  list = [{ name: 'b', onEvent: () => (hits.push('b'), undefined), stats: () => ({}) }];
  p2.accept(exec(1, 'x'));
  p2.flush();
  assert.deepEqual(hits, ['a', 'b']);
});

test('own processes are left out and counted; a full queue drops and counts; the webhook sink says so', () => {
  const { p } = pipeline({ queueSize: 2, isSelf: (pid) => pid === 1 });
  const refused: number[] = [];
  p.onDrop = (ev) => refused.push((ev as SyscallEvent).proc.pid);
  p.accept(exec(1, 'mwpipe'));
  assert.equal(p.sink(exec(2, 'a')), true);
  assert.equal(p.sink(exec(3, 'b')), true);
  assert.equal(p.sink(exec(4, 'c')), false);
  assert.deepEqual(p.counts(), { queued: 2, processed: 0, queueDrops: 1, own: 1 });
  assert.deepEqual(refused, [4], 'the dropped event is handed to onDrop (exec recovery), the own one is not');
  p.close();
  assert.equal(p.counts().processed, 2);
  assert.equal(p.sink(exec(5, 'd')), false, 'closed: takes nothing more');
});

test('the recorder writes what it is given, enriched, as replayable lines, without any process env or exec signature', () => {
  const path = join(work, 'rec.jsonl');
  const rec = new EventRecorder(path);
  const ev = exec(10, 'mwpipe');
  (ev.proc as { parent?: unknown }).parent = { pid: 9, name: 'sh', env: ['PARENT_SECRET=2'] };
  ev.execSig = 123456789; // a hash of the environment among the rest: not written either
  const gh = { source: 'github', type: 'push', ts: 2n, payload: { env: ['kept: a workflow key, not a process'] } } as Event;
  const { p } = pipeline({ record: rec.record });
  p.accept(ev);
  p.accept(gh);
  p.flush();
  rec.close();
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const text = readFileSync(path, 'utf8');
  assert.doesNotMatch(text, /SECRET/);
  assert.doesNotMatch(text, /execSig|123456789/);
  const lines = text.trim().split('\n').map(decodeEvent);
  assert.equal(lines.length, 2);
  assert.equal((lines[0] as SyscallEvent).proc.name, 'mwpipe');
  assert.equal((lines[0] as SyscallEvent).proc.start_ts, 5n);
  assert.deepEqual((lines[1] as { payload: unknown }).payload, { env: ['kept: a workflow key, not a process'] });
  assert.equal(rec.written, 2);
});

test('the recorder never writes through an existing file or a planted link, and says what to do', () => {
  const path = join(work, 'exists.jsonl');
  writeFileSync(path, 'old\n', { mode: 0o644 });
  assert.throws(() => new EventRecorder(path), /--record .*exists\.jsonl: cannot create the file \(EEXIST\); an existing file is never overwritten/);
  const link = join(work, 'link.jsonl');
  symlinkSync(join(work, 'target'), link);
  assert.throws(() => new EventRecorder(link), /EEXIST/);
  assert.equal(readFileSync(path, 'utf8'), 'old\n');
});

// ---- driver choice ------------------------------------------------------------------------------

function fakeDriver(name: string, fail?: Error & { fix?: string }): ProcNoticeSource & { started: boolean } {
  return {
    name,
    drops: 0,
    started: false,
    async start() {
      if (fail) throw fail;
      this.started = true;
    },
    async stop() {},
  };
}

function logs() {
  const lines: { level: string; msg: string; o: Record<string, unknown> }[] = [];
  return {
    lines,
    info: (o: object, msg: string) => lines.push({ level: 'info', msg, o: o as Record<string, unknown> }),
    warn: (o: object, msg: string) => lines.push({ level: 'warn', msg, o: o as Record<string, unknown> }),
  };
}

const noRoot = Object.assign(new Error('the eBPF driver needs root'), { fix: 'run as root' });

test('auto: eBPF, else the proc connector, else the poller, each step down logged with its reason', async () => {
  const log = logs();
  const c = await chooseDriver('auto', () => {}, {
    ebpf: () => fakeDriver('ebpf', noRoot),
    proc: () => fakeDriver('proc', new Error('netlink: EPERM')),
    procfs: () => fakeDriver('procfs'),
  }, log);
  assert.equal(c.driver, 'procfs');
  assert.deepEqual(log.lines.map((l) => l.msg), ['eBPF driver unavailable; trying the proc connector', 'proc connector unavailable; falling back to the /proc poller', 'driver chosen']);
  assert.equal(log.lines[0]!.o.reason, 'the eBPF driver needs root');
  assert.equal(log.lines[0]!.o.fix, 'run as root');
  assert.deepEqual(log.lines[2]!.o, { driver: 'procfs', why: 'neither eBPF nor the proc connector is available' });
});

test('a driver asked for by name that cannot run: DriverUnavailableError naming what failed and the fix', async () => {
  const log = logs();
  const err = await chooseDriver('proc', () => {}, {
    ebpf: () => assert.fail('not tried'),
    proc: () => fakeDriver('proc', new Error('netlink: EPERM')),
    procfs: () => assert.fail('not a fallback when proc is asked for'),
  }, log).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof DriverUnavailableError);
  assert.deepEqual(err.tried.map((t) => t.driver), ['proc']);
  assert.match(err.message, /^proc driver: netlink: EPERM; fix: run as root .*--driver procfs/);
  const e2 = await chooseDriver('ebpf', () => {}, { ebpf: () => fakeDriver('ebpf', noRoot), proc: () => assert.fail(), procfs: () => assert.fail() }, logs())
    .then(() => undefined, (e: unknown) => e as Error);
  assert.match(String(e2?.message), /eBPF driver: the eBPF driver needs root; fix: run as root/);
});

test('the chosen driver is logged once with why, and extra fields of its own (eBPF: its RandomX state)', async () => {
  const log = logs();
  const c = await chooseDriver('ebpf', () => {}, { ebpf: () => fakeDriver('ebpf'), proc: () => assert.fail(), procfs: () => assert.fail() }, log, (d) => (d === 'ebpf' ? { randomx: 'on' } : {}));
  assert.equal(c.driver, 'ebpf');
  assert.deepEqual(log.lines, [{ level: 'info', msg: 'driver chosen', o: { driver: 'ebpf', why: 'asked for (--driver ebpf)', randomx: 'on' } }]);
});
