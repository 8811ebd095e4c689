/**
 * The audit log follower on real files: lines written after start, a line written in two pieces,
 * rotation by rename (as kube-apiserver --audit-log-maxsize does) and by truncation, a file that
 * appears later, and bad lines reported with file:line without stopping it.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { DEFAULT_RULES_FILES, Engine } from '../src/engine/index.js';
import type { Event, PluginEvent } from '../src/events.js';
import { type AuditLineError, AuditLogFollower } from '../src/sources/k8s-audit-log.js';
import { K8S_CASES, fixtureText } from './helpers/k8s.js';

function line(id: string, verb = 'get'): string {
  return JSON.stringify({ kind: 'Event', apiVersion: 'audit.k8s.io/v1', auditID: id, stage: 'ResponseComplete', verb, requestURI: '/api/v1/pods', stageTimestamp: '2026-11-20T10:00:00.000001Z' }) + '\n';
}
const ids = (evs: Event[]): string[] => evs.map((e) => ((e as PluginEvent).payload as { auditID: string }).auditID);

function setup(t: { after: (fn: () => void) => void }): { dir: string; path: string } {
  const dir = mkdtempSync(`${tmpdir()}/mw-audit-log-`);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, path: `${dir}/audit.log` };
}

test('follows new lines from the end of the file, a split line once whole, across rename and truncate rotation', async (t) => {
  const { path } = setup(t);
  writeFileSync(path, line('old-1'));
  const got: Event[] = [];
  const errors: AuditLineError[] = [];
  const f = new AuditLogFollower(path, { intervalMs: 3_600_000, onError: (e) => errors.push(e) });
  await f.start((ev) => got.push(ev));
  t.after(() => f.stop());
  f.poll();
  assert.deepEqual(ids(got), [], 'lines already there are history, as tail -F');

  appendFileSync(path, line('a') + line('b').slice(0, 40));
  f.poll();
  assert.deepEqual(ids(got), ['a']);
  appendFileSync(path, line('b').slice(40));
  f.poll();
  assert.deepEqual(ids(got), ['a', 'b']);

  // Rotation by rename: the old file gets a last line after we looked, then a new file starts.
  appendFileSync(path, line('c'));
  renameSync(path, `${path}.1`);
  appendFileSync(`${path}.1`, line('d'));
  writeFileSync(path, line('e-then-truncated'));
  f.poll();
  assert.deepEqual(ids(got), ['a', 'b', 'c', 'd', 'e-then-truncated']);

  // Rotation by truncation (copytruncate): seen when the file is shorter than what was read, as tail -F sees it.
  truncateSync(path, 0);
  appendFileSync(path, line('f'));
  f.poll();
  assert.deepEqual(ids(got), ['a', 'b', 'c', 'd', 'e-then-truncated', 'f']);
  assert.equal(f.rotations, 2);

  appendFileSync(path, '{"kind":"Pod"}\nnot json\n' + line('g'));
  f.poll();
  assert.deepEqual(ids(got), ['a', 'b', 'c', 'd', 'e-then-truncated', 'f', 'g']);
  assert.equal(errors.length, 2);
  assert.match(errors[0]!.message, new RegExp(`^${path}:2: not an audit Event`));
  assert.match(errors[1]!.message, new RegExp(`^${path}:3: not valid JSON`));
  assert.ok(got.every((e) => e.source === 'k8s_audit' && e.ts === 1795168800000001000n));
});

test('waits for a file that does not exist yet, then reads it from its start', async (t) => {
  const { path } = setup(t);
  const got: Event[] = [];
  const f = new AuditLogFollower(path, { intervalMs: 3_600_000 });
  await f.start((ev) => got.push(ev));
  t.after(() => f.stop());
  f.poll();
  writeFileSync(path, line('first') + line('second'));
  f.poll();
  assert.deepEqual(ids(got), ['first', 'second']);
});

test('its own timer picks up lines, and every fixture read from a log alerts with its rules', async (t) => {
  const { path } = setup(t);
  writeFileSync(path, '');
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES, { ruleMatching: 'all' });
  const fired: string[][] = [];
  const f = new AuditLogFollower(path, { intervalMs: 20 });
  let seen = 0;
  const done = new Promise<void>((resolve) => {
    void f.start((ev) => {
      fired.push(engine.process(ev).map((m) => m.rule).sort());
      if (++seen === K8S_CASES.length) resolve();
    });
  });
  t.after(() => f.stop());
  for (const c of K8S_CASES) appendFileSync(path, fixtureText(c.audit));
  await done;
  assert.deepEqual(fired, K8S_CASES.map((c) => [...c.rules].sort()));
});
