/**
 * The outputs that stay on this machine: stdout, file (folder created, appended, reopened after
 * rotation) and program (a real `sh -c` command, one process per alert or kept alive, restarted
 * when it dies, failed when it fails or stops reading).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import { FileOutput } from '../src/alerts/outputs/file.js';
import { ProgramOutput } from '../src/alerts/outputs/program.js';
import { StdoutOutput } from '../src/alerts/outputs/stdout.js';
import { PermanentDeliveryError } from '../src/alerts/types.js';
import { alertMessage } from './helpers/alerts.js';
import { eventually } from './helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'mw-outputs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const lines = (path: string): string[] => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

test('stdout: Falco text line, JSON line, and a summary says how many', async () => {
  const stream = new PassThrough();
  let out = '';
  stream.on('data', (d: Buffer) => (out += d.toString()));
  const first = alertMessage();
  await new StdoutOutput({ name: 'stdout', format: 'text', stream }).send(first);
  const json = new StdoutOutput({ name: 'stdout', format: 'json', stream });
  await json.send(first);
  // The pipeline writes a summary's count into its output; the text line adds nothing to it.
  const summary = alertMessage({ output: '20:21:35.000000000: Critical Miner started (42 times from 2026-11-25T20:16:35.123456789Z to 2026-11-25T20:21:35.000000000Z)' },
    { kind: 'summary', count: 42, last_seen: '2026-11-25T20:21:35.000000000Z' });
  await new StdoutOutput({ name: 'stdout', format: 'text', stream }).send(summary);
  const [text, jsonLine, sumLine] = out.split('\n');
  assert.equal(text, first.output);
  assert.deepEqual(JSON.parse(jsonLine!), first);
  assert.equal(sumLine, summary.output, 'the count is said once');
});

test('minimum_priority: less severe alerts are skipped, as severe or worse are sent', async () => {
  const stream = new PassThrough();
  let out = '';
  stream.on('data', (d: Buffer) => (out += d.toString()));
  const o = new StdoutOutput({ name: 'stdout', format: 'text', stream, minimumPriority: 'warning' });
  const notice = alertMessage({ priority: 'Notice', output: 'notice-line' });
  const warning = alertMessage({ priority: 'Warning', output: 'warning-line' });
  const critical = alertMessage({ priority: 'Critical', output: 'critical-line' });
  assert.equal(o.wants(notice), false);
  assert.equal(o.wants(warning), true);
  for (const m of [notice, warning, critical]) await o.send(m);
  assert.deepEqual(out.split('\n').filter(Boolean), ['warning-line', 'critical-line']);
  assert.throws(() => new StdoutOutput({ name: 'x', format: 'text', stream, minimumPriority: 'loud' }), /outputs\.x\.minimum_priority: not a priority: 'loud'/);
});

test('file: creates the folder, appends JSON lines or text, and reopens a rotated file', async () => {
  const path = join(dir, 'deep', 'er', 'alerts.jsonl');
  const o = new FileOutput({ name: 'file', path, format: 'json' });
  const a = alertMessage();
  const b = alertMessage();
  await o.send(a);
  await o.send(b);
  assert.deepEqual(lines(path).map((l) => JSON.parse(l)), [a, b]);

  // logrotate moves the file away: later alerts go to a new file at the configured path.
  renameSync(path, `${path}.1`);
  const c = alertMessage();
  await eventually(async () => {
    await o.send(c);
    assert.ok(lines(path).length > 0, 'not reopened yet');
  }, 40, 100);
  assert.equal(JSON.parse(lines(path).at(-1)!).minewatch.uuid, c.minewatch.uuid);
  await o.close();

  const textPath = join(dir, 'alerts.txt');
  const t = new FileOutput({ name: 'file', path: textPath, format: 'text' });
  await t.send(a);
  await t.close();
  assert.deepEqual(lines(textPath), [a.output]);
});

test('file: an unwritable path fails the delivery naming the setting, and nothing crashes', async () => {
  const blocker = join(dir, 'not-a-dir');
  const f = new FileOutput({ name: 'file', path: join(dir, 'x.txt'), format: 'json' });
  await f.send(alertMessage());
  await f.close();
  renameSync(join(dir, 'x.txt'), blocker);
  const o = new FileOutput({ name: 'file', path: join(blocker, 'alerts.jsonl'), format: 'json' });
  await assert.rejects(o.send(alertMessage()), (e: Error) => !(e instanceof PermanentDeliveryError) && /outputs\.file\.path: cannot open .*not-a-dir\/alerts\.jsonl for appending: (ENOTDIR|EEXIST)/.test(e.message));
});

test('program: one process per alert pipes the JSON line to the command', async () => {
  const path = join(dir, 'program-once.jsonl');
  const o = new ProgramOutput({ name: 'program', program: `cat >> '${path}'`, keepAlive: false, format: 'json', timeoutMs: 10_000 });
  const msgs = [alertMessage(), alertMessage(), alertMessage()];
  for (const m of msgs) await o.send(m);
  assert.deepEqual(lines(path).map((l) => JSON.parse(l).minewatch.uuid), msgs.map((m) => m.minewatch.uuid));
  await o.close();
});

test('program: a failing command fails the delivery with its exit code and stderr; a stuck one is killed', async () => {
  const failing = new ProgramOutput({ name: 'program', program: 'cat >/dev/null; echo "no route to slack" >&2; exit 3', keepAlive: false, format: 'json', timeoutMs: 10_000 });
  await assert.rejects(failing.send(alertMessage()), (e: Error) => !(e instanceof PermanentDeliveryError) && /outputs\.program\.program: '.*' exited with code 3: no route to slack/.test(e.message));
  const stuck = new ProgramOutput({ name: 'program', program: 'sleep 30', keepAlive: false, format: 'json', timeoutMs: 300 });
  await assert.rejects(stuck.send(alertMessage()), /outputs\.program: 'sleep 30': no answer within 300 ms/);
});

test('program keep_alive: one process takes every alert; killed, it is restarted and no alert is lost', async () => {
  const path = join(dir, 'program-kept.jsonl');
  const o = new ProgramOutput({ name: 'program', program: `exec cat >> '${path}'`, keepAlive: true, format: 'json', timeoutMs: 5000 });
  const before = [alertMessage(), alertMessage()];
  await o.send(before[0]!);
  const pid = o.pid;
  assert.ok(pid, 'a kept-alive process runs');
  await o.send(before[1]!);
  assert.equal(o.pid, pid, 'the same process takes the next alert');
  await eventually(async () => assert.equal(lines(path).length, 2), 40, 50);

  process.kill(pid, 'SIGKILL');
  // Once it is gone (a line written before the kill lands would be in a dead pipe: the loss
  // keep_alive accepts, as Falco's does), the next alert must start a new process and arrive.
  await eventually(async () => assert.equal(o.pid, undefined), 40, 50);
  const next = alertMessage();
  // The queue's retry: the first attempt may hit the dead pipe; a later one starts a new process.
  await eventually(() => o.send(next), 20, 100);
  assert.notEqual(o.pid, pid, 'a new process was started');
  await eventually(async () => assert.equal(lines(path).length, 3), 40, 50);
  assert.deepEqual(lines(path).map((l) => JSON.parse(l).minewatch.uuid), [...before, next].map((m) => m.minewatch.uuid));
  await o.close();
});

test('program keep_alive: a command that cannot run fails deliveries instead of swallowing them', async () => {
  const o = new ProgramOutput({ name: 'program', program: 'no-such-command-mw-test', keepAlive: true, format: 'text', timeoutMs: 5000 });
  await assert.rejects(o.send(alertMessage()), /outputs\.program\.program: 'no-such-command-mw-test' exited with code 127: .*not found/);
  await o.close();
});
