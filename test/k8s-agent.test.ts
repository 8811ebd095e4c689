/**
 * The agent with `k8s.audit.log_path`: a real `minewatch run` follows a kube-apiserver audit log
 * and alerts on the miner workloads written to it, in order, and not on the ordinary one between
 * them; a line that is not an audit event is logged and skipped.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AgentRun, writeConfig } from './helpers/agent-run.js';
import { fixtureText } from './helpers/k8s.js';

test('minewatch run follows the audit log in k8s.audit.log_path and alerts on miner workloads only', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-k8s-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'audit.log');
  writeFileSync(log, fixtureText('audit/deployment-metal3d-xmrig.json'), { mode: 0o644 });
  const config = writeConfig(join(dir, 'config.yaml'), {
    engine: { rule_matching: 'all' },
    sources: { driver: 'procfs', connections: { enabled: false }, cpu: { enabled: false } },
    k8s: { audit: { log_path: log } },
  });
  const agent = new AgentRun(config);
  t.after(() => agent.stop('SIGKILL').catch(() => undefined));
  const started = await agent.started();
  assert.ok((started.sources as string[]).includes('k8s-audit-log'), JSON.stringify(started));

  appendFileSync(log, fixtureText('audit/pod-kubectl-run-miner.json'));
  appendFileSync(log, 'this is not an audit event\n');
  appendFileSync(log, fixtureText('audit/deployment-nginx-with-limits.json'));
  appendFileSync(log, fixtureText('audit/daemonset-xmrig-any-registry.json'));
  await agent.waitAlert((a) => a.rule === 'K8s DaemonSet or CronJob By Unexpected User', 20_000, 'the DaemonSet alert');
  const skipped = await agent.waitLog((l) => l.msg === 'k8s audit log: line skipped', 5_000, 'the bad line');
  assert.match(String(skipped.err), /audit\.log:2: not valid JSON/);

  const rules = agent.alerts.map((a) => `${a.rule} ${String(a.output_fields['mw.k8s.name'])}`);
  assert.deepEqual(rules, [
    'K8s Workload Runs Miner Command miner',
    'K8s Workload With Miner Image node-agent',
    'K8s DaemonSet or CronJob By Unexpected User node-agent',
  ], 'the line already in the file at start is history; nginx gives nothing');
  assert.ok(agent.alerts.every((a) => a.source === 'k8s_audit'));
  const exit = await agent.stop();
  assert.equal(exit.code, 0);
});
