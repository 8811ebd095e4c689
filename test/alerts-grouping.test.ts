/**
 * Grouping by what ran: the default group key adds the executable (syscall), the object a request
 * names (k8s_audit) and the repository's workflow (github) to the place (host, container,
 * namespace); one rule in one place opens at most max_new_groups groups in a window, the rest fold
 * into one overflow group; max_open_groups bounds what the throttle holds, closing the oldest
 * group early with its summary. On the real pipeline and a real SQLite store; the clock is the
 * test's, so windows close when the test says.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { alertsSection, DEFAULT_GROUP_KEYS, type AlertsConfig } from '../src/alerts/config.js';
import { AlertPipeline } from '../src/alerts/pipeline.js';
import type { AlertMessage, AlertRecord, Output } from '../src/alerts/types.js';
import { createLogger } from '../src/platform/logger.js';
import type { Match } from '../src/engine/types.js';
import type { Event, SyscallEvent } from '../src/events.js';
import { auditEvent } from '../src/k8s-api/audit-event.js';
import { metricsRegistry } from '../src/web/metrics.js';

const log = createLogger('silent');
const T0 = 1_764_000_000_000_000_000n;

function config(throttle: Record<string, unknown> = {}): AlertsConfig {
  return alertsSection.parse({ store: { path: ':memory:' }, throttle, delivery: { retry_initial_ms: 5, retry_max_ms: 20 } });
}

class RecordingOutput implements Output {
  readonly name = 'rec';
  readonly got: AlertMessage[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];
  async send(msg: AlertMessage): Promise<void> {
    this.got.push(msg);
    this.waiters = this.waiters.filter((w) => (this.got.length >= w.n ? (w.resolve(), false) : true));
  }
  async close(): Promise<void> {}
  until(n: number): Promise<void> {
    if (this.got.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
  firsts(): AlertMessage[] {
    return this.got.filter((m) => m.minewatch.kind === 'first');
  }
  summaries(): AlertMessage[] {
    return this.got.filter((m) => m.minewatch.kind === 'summary');
  }
}

function clock() {
  let ns = T0;
  return { now: () => ns, advance: (s: number) => { ns += BigInt(Math.round(s * 1e9)); } };
}

const RULE = 'Known Miner Program Launched';

/** An exec match as the engine gives it: the executable in the event, not in the output fields. */
function exec(exepath: string, over: { container?: string; host?: string; rule?: string; pid?: number } = {}): Match {
  const pid = over.pid ?? 4242;
  const event: SyscallEvent = {
    source: 'syscall', type: 'execve', ts: T0,
    proc: { pid, name: exepath.split('/').pop()!, exe: exepath, exepath, args: ['-o', 'stratum+tcp://pool:3333'], cwd: '/tmp', uid: 0, user: 'root' } as SyscallEvent['proc'],
    container: { id: over.container ?? 'host' },
  };
  return {
    rule: over.rule ?? RULE, priority: 'CRITICAL', source: 'syscall', tags: [],
    output: `miner started (process=${event.proc!.name} pid=${pid})`,
    outputFields: { 'proc.name': event.proc!.name, 'proc.pid': pid },
    time: T0, hostname: over.host ?? 'node-1', event,
  };
}

function pluginMatch(source: string, rule: string, event: Event): Match {
  return { rule, priority: 'WARNING', source, tags: [], output: `${rule} seen`, outputFields: {}, time: T0, hostname: 'node-1', event };
}

/** A create request as the API server audits it: the pod's name is only in the body. */
/** The groups a fresh pipeline stores from one rule's matches on these plugin events. */
async function groupsOf(source: string, rule: string, events: Event[]): Promise<AlertRecord[]> {
  const p = new AlertPipeline({ config: config(), outputs: [], log, now: clock().now }).start();
  for (const e of events) p.accept(pluginMatch(source, rule, e));
  p.flush();
  const groups = p.query({});
  await p.stop();
  return groups;
}

function createPod(ns: string, name: string, image = 'xmrig/xmrig'): Event {
  return auditEvent({
    kind: 'Event', apiVersion: 'audit.k8s.io/v1', stage: 'ResponseComplete', verb: 'create',
    requestURI: `/api/v1/namespaces/${ns}/pods`, objectRef: { resource: 'pods', namespace: ns, apiVersion: 'v1' },
    requestObject: { kind: 'Pod', metadata: { name, namespace: ns }, spec: { containers: [{ name: 'm', image }] } },
    stageTimestamp: '2026-11-25T20:16:35.000000Z',
  });
}

function workflowRun(repo: string, path: string): Event {
  return { source: 'github', type: 'workflow_run', ts: T0, payload: { webhook_type: 'workflow_run', repository: { full_name: repo, html_url: `https://github.com/${repo}` }, workflow: { path } } } as Event;
}

describe('grouping by what ran', () => {
  it('the default keys: host, container, namespace and the executable; k8s_audit the object; github repository and workflow', () => {
    const t = config().throttle;
    assert.deepEqual(t.keys.default, ['hostname', 'container.id', 'k8s.ns.name', 'proc.exepath']);
    assert.deepEqual(t.keys.k8s_audit, ['hostname', 'ka.target.resource', 'ka.target.namespace', 'mw.k8s.name']);
    assert.deepEqual(t.keys.github, ['hostname', 'github.repo.name', 'github.workflow.filename']);
    assert.equal(t.max_new_groups, 20);
    assert.equal(t.max_open_groups, 10_000);
  });

  it('18 different executables on one host: 18 groups, each first sent at once; 1,000 repeats of one: one group, one summary with the count', async () => {
    const out = new RecordingOutput();
    const c = clock();
    const p = new AlertPipeline({ config: config({ window_s: 30 }), outputs: [out], log, now: c.now }).start();
    for (let i = 0; i < 18; i++) p.accept(exec(`/tmp/mw/miner-${i}/kworker${i}`));
    await out.until(18);
    assert.deepEqual(out.firsts().map((m) => m.output_fields['proc.name']), [...Array(18).keys()].map((i) => `kworker${i}`));
    for (let i = 0; i < 1000; i++) p.accept(exec('/tmp/mw/respawn/xmrig', { pid: 10_000 + i }));
    p.flush();
    await out.until(19);
    c.advance(31);
    p.flush();
    await out.until(20);
    await p.stop();
    assert.equal(out.firsts().length, 19);
    const [sum] = out.summaries();
    assert.equal(out.summaries().length, 1, 'only the repeated executable has a summary');
    assert.equal(sum!.minewatch.count, 1000);
    assert.equal(sum!.output_fields['proc.name'], 'xmrig');
    assert.match(sum!.output, /\(1000 times from /);
    assert.equal(sum!.minewatch.changed?.['proc.pid']?.length, 20, 'distinct pids kept up to max_changed_values');
  });

  it('the same executable in two containers is two groups; on one host with the old key (no proc.exepath) two executables are one', async () => {
    const out = new RecordingOutput();
    const p = new AlertPipeline({ config: config(), outputs: [out], log, now: clock().now }).start();
    p.accept(exec('/xmrig', { container: 'aaaaaaaaaaaa' }));
    p.accept(exec('/xmrig', { container: 'bbbbbbbbbbbb' }));
    p.accept(exec('/xmrig', { container: 'aaaaaaaaaaaa' }));
    p.flush();
    assert.deepEqual(p.query({}).map((g) => [g.containerId, g.count]).sort(), [['aaaaaaaaaaaa', 2], ['bbbbbbbbbbbb', 1]]);
    await p.stop();
    const old = new AlertPipeline({ config: config({ keys: ['hostname', 'container.id', 'k8s.ns.name'] }), outputs: [], log, now: clock().now }).start();
    old.accept(exec('/usr/bin/xmrig'));
    old.accept(exec('/tmp/kworkerd'));
    old.flush();
    assert.deepEqual(old.query({}).map((g) => g.count), [2]);
    await old.stop();
  });

  it('past 20 new groups of one rule in one place, the rest fold into one overflow group that counts them and lists them (capped); other places keep their own 20', async () => {
    const out = new RecordingOutput();
    const c = clock();
    const p = new AlertPipeline({ config: config({ window_s: 60 }), outputs: [out], log, now: c.now }).start();
    // A miner renaming itself at every respawn: 50 names in one container, each twice.
    for (let round = 0; round < 2; round++) for (let i = 0; i < 50; i++) p.accept(exec(`/tmp/.x/${i.toString(36)}-${i}`, { container: 'cccccccccccc' }));
    // Another container, and another rule in the first: budgets of their own.
    for (let i = 0; i < 25; i++) p.accept(exec(`/opt/m${i}`, { container: 'dddddddddddd' }));
    p.accept(exec('/tmp/.x/other', { container: 'cccccccccccc', rule: 'Miner Options in Command Line' }));
    p.flush();
    await out.until(20 + 1 + 20 + 1 + 1);
    const groups = p.query({ container: ['cccccccccccc'], rule: [RULE] });
    assert.equal(groups.length, 21, '20 groups and one overflow group');
    const overflow = groups.filter((g) => g.output.includes('more than 20 groups'));
    assert.equal(overflow.length, 1);
    assert.equal(overflow[0]!.count, 60, '30 names past the 20th, each twice');
    assert.match(overflow[0]!.output, /other values of proc\.exepath are counted in this alert/);
    assert.equal(overflow[0]!.changed['proc.exepath']!.length, 20, 'distinct executables listed up to max_changed_values');
    assert.equal(overflow[0]!.changed['proc.exepath']![0], '/tmp/.x/k-20', 'the list starts with the first one folded');
    for (const g of groups.filter((x) => x !== overflow[0])) assert.equal(g.count, 2);
    assert.equal(p.query({ container: ['dddddddddddd'] }).length, 21);
    assert.equal(p.query({ rule: ['Miner Options in Command Line'] }).length, 1);
    // Every match is in some group's count.
    assert.equal(p.query({ limit: 1000 }).reduce((n, g) => n + g.count, 0), 100 + 25 + 1);
    assert.deepEqual({ ...p.groupingStats(), open: 0 }, { open: 0, closedEarly: 0, folded: 60 + 5, overflowGroups: 2 });
    // The window closes: the overflow group's summary has the count and the list; the place's budget starts again.
    c.advance(61);
    p.flush();
    const firstsBefore = out.firsts().length;
    p.accept(exec('/tmp/.x/fresh', { container: 'cccccccccccc' }));
    p.flush();
    // 43 firsts; summaries for the 20 repeated names, the two overflow groups; the fresh first.
    await out.until(43 + 22 + 1);
    await p.stop();
    assert.equal(out.summaries().length, 22);
    const ovSum = out.summaries().find((m) => m.output.includes('more than 20 groups'));
    assert.ok(ovSum, 'the overflow group has a summary');
    assert.equal(ovSum.minewatch.count, 60);
    assert.equal(ovSum.minewatch.changed?.['proc.exepath']?.length, 20);
    assert.equal(out.firsts().length, firstsBefore + 1);
    assert.ok(!out.firsts().at(-1)!.output.includes('more than'), 'a new window: a group of its own again');
  });

  it('k8s_audit: one group per object the request names (its name from the body on create), repeats counted', async () => {
    const groups = await groupsOf('k8s_audit', 'Pod with a Miner Image', [createPod('prod', 'api'), createPod('prod', 'api'), createPod('prod', 'worker'), createPod('dev', 'api')]);
    const keys = groups.map((g) => [g.groupKey.includes('"prod"') ? 'prod' : 'dev', g.groupKey.includes('"api"') ? 'api' : 'worker', g.count]);
    assert.deepEqual(keys.sort(), [['dev', 'api', 1], ['prod', 'api', 2], ['prod', 'worker', 1]]);
  });

  it('github: one group per repository and workflow file', async () => {
    const groups = await groupsOf('github', 'Miner in a GitHub Workflow', [
      workflowRun('acme/app', '.github/workflows/ci.yml'), workflowRun('acme/app', '.github/workflows/ci.yml'),
      workflowRun('acme/app', '.github/workflows/mine.yml'), workflowRun('acme/lib', '.github/workflows/ci.yml'),
    ]);
    assert.deepEqual(groups.map((g) => g.count).sort(), [1, 1, 2]);
  });

  it('keys: a list applies to every source, lists by source merge over the defaults; a key no source knows is refused, naming it', () => {
    const list = alertsSection.parse({ throttle: { keys: ['hostname', 'proc.name'] } }).throttle.keys;
    assert.deepEqual(list, { default: ['hostname', 'proc.name'] });
    const bySource = alertsSection.parse({ throttle: { keys: { syscall: ['hostname', 'user.name'] } } }).throttle.keys;
    assert.deepEqual(bySource, { ...DEFAULT_GROUP_KEYS, syscall: ['hostname', 'user.name'] });
    assert.deepEqual(alertsSection.parse({ throttle: { keys: ['proc.aname[2]'] } }).throttle.keys.default, ['proc.aname[2]']);
    const bad = alertsSection.safeParse({ throttle: { keys: ['hostname', 'proc.exe_path'] } });
    assert.equal(bad.success, false);
    const issue = bad.error!.issues[0]!;
    assert.deepEqual(issue.path, ['throttle', 'keys', 1]);
    assert.match(issue.message, /unknown field 'proc\.exe_path'.*minewatch fields/);
    const junk = alertsSection.safeParse({ throttle: { keys: ['host name'] } });
    assert.match(junk.error!.issues[0]!.message, /'host name' is not a field name/);
  });

  it('keys: a process environment field is refused (a group key is stored as it is, unredacted)', () => {
    for (const k of ['proc.env', 'proc.env[GITHUB_TOKEN]']) {
      const r = alertsSection.safeParse({ throttle: { keys: ['hostname', k] } });
      assert.equal(r.success, false, k);
      assert.match(r.error!.issues[0]!.message, /cannot be a group key: it would store a process's environment/);
    }
  });

  it('alerts received under any source name are grouped by their output fields, whatever the name', async () => {
    const p = new AlertPipeline({ config: config(), outputs: [], log, now: clock().now }).start();
    for (const source of ['constructor', '__proto__', 'toString', 'syscall']) {
      for (let i = 0; i < 2; i++) {
        p.ingest({ hostname: 'h', output: 'x', output_fields: { 'proc.exepath': `/bin/${i}` }, priority: 'Warning', rule: 'R', source, tags: [], time: '2026-11-25T20:16:35Z' });
      }
    }
    p.flush();
    assert.equal(p.query({}).length, 8, 'two executables under each of four sources');
    await p.stop();
  });
});

describe('a restart', () => {
  it('resumes the open groups with their place\'s budget spent and its overflow group still counting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-grouping-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'alerts.db');
    const c = clock();
    const conf = alertsSection.parse({ store: { path }, throttle: { window_s: 60 } });
    const p1 = new AlertPipeline({ config: conf, outputs: [], log, now: c.now }).start();
    for (let i = 0; i < 22; i++) p1.accept(exec(`/tmp/.r/${i}`));
    await p1.stop();
    const out = new RecordingOutput();
    const p2 = new AlertPipeline({ config: conf, outputs: [out], log, now: c.now }).start();
    p2.accept(exec('/tmp/.r/22'));
    p2.accept(exec('/tmp/.r/3'));
    p2.flush();
    assert.equal(p2.query({}).length, 21, 'no new group: the place had opened its 20 before the restart');
    const overflow = p2.query({}).find((g) => g.output.includes('more than 20 groups'))!;
    assert.equal(overflow.count, 3);
    assert.deepEqual(overflow.changed['proc.exepath'], ['/tmp/.r/20', '/tmp/.r/21', '/tmp/.r/22']);
    assert.equal(p2.query({}).find((g) => g.output.includes('process=3 '))!.count, 2);
    await p2.stop();
    assert.equal(out.firsts().length, 0, 'no new first: the 23rd executable folded, the 4th repeated');
  });
});

describe('the throttle holds at most max_open_groups', () => {
  it('a group whose window ended before the timer swept it is closed normally when its key comes again: summary sent, not counted as early', async () => {
    const out = new RecordingOutput();
    const c = clock();
    const p = new AlertPipeline({ config: config(), outputs: [out], log, now: c.now }).start();
    p.accept(exec('/bin/a'));
    p.accept(exec('/bin/a'));
    c.advance(301);
    p.accept(exec('/bin/a'));
    await out.until(3);
    assert.deepEqual(out.got.map((m) => [m.minewatch.kind, m.minewatch.count]), [['first', 1], ['summary', 2], ['first', 1]]);
    assert.equal(p.groupingStats().closedEarly, 0);
    await p.stop();
  });

  it('past the bound the oldest group closes early: its count written and its summary sent now, nothing lost, counted', async () => {
    const out = new RecordingOutput();
    const c = clock();
    const logged: Record<string, unknown>[] = [];
    const capture = pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _enc, done) { logged.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done(); } }));
    const p = new AlertPipeline({ config: config({ max_open_groups: 3, max_new_groups: 0 }), outputs: [out], log: capture, now: c.now }).start();
    // Five executables, each three times, one after another: at most three groups open at once.
    for (let i = 0; i < 5; i++) for (let k = 0; k < 3; k++) p.accept(exec(`/bin/e${i}`));
    p.flush();
    assert.equal(p.openGroups, 3);
    assert.equal(p.groupingStats().closedEarly, 2);
    await out.until(5 + 2);
    assert.deepEqual(out.summaries().map((m) => [m.output_fields['proc.name'], m.minewatch.count]), [['e0', 3], ['e1', 3]]);
    // e0 again: a new group, its first sent at once.
    p.accept(exec('/bin/e0'));
    p.flush();
    assert.equal(p.groupingStats().closedEarly, 3, 'e2 made room for it');
    c.advance(301);
    p.flush();
    await out.until(6 + 5); // six firsts, five summaries
    assert.equal(p.query({}).reduce((n, g) => n + g.count, 0), 16, 'every match counted in some group');
    const closed = out.summaries().map((m) => m.minewatch.count).reduce((a, b) => a + b, 0);
    const lone = out.firsts().filter((m) => !out.summaries().some((s) => s.minewatch.uuid === m.minewatch.uuid)).length;
    assert.equal(closed + lone, 16, 'summaries and lone firsts account for every match');
    await p.stop();
    // Said in the log once (at most once a minute), and on /metrics.
    const warned = logged.filter((l) => String(l.msg).includes('max_open_groups'));
    assert.equal(warned.length, 1, JSON.stringify(logged));
    assert.equal(warned[0]!.maxOpenGroups, 3);
    const metrics = await metricsRegistry({ grouping: () => p.groupingStats() }).metrics();
    assert.match(metrics, /^minewatch_alert_groups_closed_early_total 3$/m);
    assert.match(metrics, /^minewatch_alert_matches_folded_total 0$/m);
    assert.match(metrics, /^minewatch_alert_groups_open 0$/m);
  });
});
