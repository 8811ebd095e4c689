/** Rule matches → configured actions → an alert for every outcome, against real processes. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { readStartTs } from '../src/platform/procfs.js';
import type { Match } from '../src/engine/types.js';
import type { SyscallEvent } from '../src/events.js';
import { responseSection } from '../src/response/config.js';
import { ResponseDispatcher } from '../src/response/dispatcher.js';
import { KillAction } from '../src/response/kill.js';
import { Safety } from '../src/response/safety.js';

function matchFor(pid: number, rule = 'Miner', tags = ['mining'], priority: Match['priority'] = 'CRITICAL'): Match {
  const ev: SyscallEvent = {
    source: 'syscall', type: 'execve', ts: BigInt(Date.now()) * 1_000_000n,
    proc: { pid, name: 'sleep', args: ['30'], start_ts: readStartTs(pid) },
    container: { id: 'host' },
  };
  return { rule, priority, source: 'syscall', tags, output: 'o', outputFields: {}, time: ev.ts, hostname: 'h', event: ev };
}

function dispatcher(cfg: unknown) {
  const alerts: Match[] = [];
  const d = new ResponseDispatcher(responseSection.parse(cfg), { kill: new KillAction({ safety: new Safety({ isSelf: () => false }) }) }, (m) => alerts.push(m), 'testhost');
  const next = async (): Promise<Match> => {
    for (let i = 0; i < 500 && alerts.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(alerts.length > 0, 'no outcome alert arrived');
    return alerts.shift()!;
  };
  return { d, next, alerts };
}

test('enforce: a matching rule kills the process, and the kill is an alert', async () => {
  const child = spawn('sleep', ['30']);
  const exited = once(child, 'exit');
  const { d, next } = dispatcher({ mode: 'enforce', actions: [{ rules: ['Miner'], do: ['kill'] }] });
  d.onMatch(matchFor(child.pid!));
  const alert = await next();
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL');
  assert.equal(alert.rule, 'minewatch response: kill');
  assert.equal(alert.priority, 'CRITICAL');
  assert.equal(alert.outputFields['mw.response.outcome'], 'done');
  assert.equal(alert.outputFields['mw.response.trigger'], 'Miner');
  assert.equal(alert.outputFields['proc.pid'], child.pid);
  assert.match(alert.output, new RegExp(`^kill of pid ${child.pid} done \\(sent SIGKILL to pid ${child.pid} .* through a pidfd\\): triggered by Miner \\| cmdline=sleep 30`));
});

test('dryrun (the default): the process lives and the alert says what would have been done', async (t) => {
  const child = spawn('sleep', ['30']);
  t.after(() => child.kill('SIGKILL'));
  const { d, next } = dispatcher({ actions: [{ tags: ['mining'], do: ['kill'] }] });
  d.onMatch(matchFor(child.pid!));
  const alert = await next();
  assert.equal(alert.outputFields['mw.response.outcome'], 'dryrun');
  assert.equal(alert.outputFields['mw.response.mode'], 'dryrun');
  assert.equal(child.exitCode, null);
  assert.equal(child.signalCode, null);
});

test('actions are chosen by rule name, tag or minimum priority; our own outcome alerts never trigger actions', () => {
  const { d } = dispatcher({
    actions: [
      { rules: ['A'], do: ['kill'] },
      { tags: ['t'], do: ['kill_container', 'kill'] },
      { priority: 'error', do: ['block_destination'] },
    ],
  });
  assert.deepEqual(d.actionsFor(matchFor(1, 'A', [], 'DEBUG')), ['kill']);
  assert.deepEqual(d.actionsFor(matchFor(1, 'B', ['t'], 'DEBUG')), ['kill_container', 'kill']);
  assert.deepEqual(d.actionsFor(matchFor(1, 'B', [], 'CRITICAL')), ['block_destination']);
  assert.deepEqual(d.actionsFor(matchFor(1, 'B', [], 'WARNING')), []);
  assert.deepEqual(d.actionsFor(matchFor(1, 'A', ['t'], 'ALERT')), ['kill', 'kill_container', 'block_destination']);
});

test('an action this host lacks is reported as failed, not dropped', async () => {
  const { d, next } = dispatcher({ mode: 'enforce', actions: [{ rules: ['Miner'], do: ['delete_pod'] }] });
  d.onMatch(matchFor(process.pid));
  const alert = await next();
  assert.equal(alert.outputFields['mw.response.outcome'], 'failed');
  assert.match(String(alert.outputFields['mw.response.reason']), /not available/);
  assert.equal(d.stats.byOutcome.failed, 1);
});
