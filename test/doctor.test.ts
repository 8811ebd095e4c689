/**
 * `minewatch doctor` tells what `minewatch run` will do: for the same config it names the driver
 * run then chooses, and when the eBPF driver cannot run, run's first log record says what is
 * missing and the one command that fixes it (here: a BTF file that does not exist, the one
 * failure a test can cause without breaking the host).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AgentRun, writeConfig } from './helpers/agent-run.js';
import { isRoot } from './helpers/live.js';
import { CLI } from './helpers/paths.js';

interface Report {
  chosen: string | null;
  asked: string;
  trial: boolean;
  checks: { name: string; kind: string; ok: boolean; detail: string; fix?: string }[];
}

const dir = mkdtempSync(join(tmpdir(), 'mw-doctor-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function doctor(args: string[]): { status: number | null; report: Report; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'doctor', '--json', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, report: JSON.parse(r.stdout) as Report, stderr: r.stderr };
}

/** run's choice for a config: the "driver chosen" log line of a real agent. */
async function runChooses(config: string, args: string[] = []): Promise<{ driver: string; first: Record<string, unknown> }> {
  const agent = new AgentRun(config, { args });
  try {
    const line = await agent.waitLog((l) => l.msg === 'driver chosen', 30_000, 'driver chosen');
    return { driver: line.driver as string, first: agent.logs[0] as Record<string, unknown> };
  } finally {
    await agent.stop();
  }
}

describe('doctor', () => {
  test('lists every driver and detector with whether it can run, and a fix for what cannot', () => {
    const { report } = doctor(['--no-trial']);
    const names = report.checks.map((c) => c.name);
    for (const n of ['ebpf', 'proc', 'procfs', 'stratum-wire', 'dns-answers', 'randomx', 'cpu-sampler', 'execwhacker', 'tcpflowkiller', 'block_destination']) {
      assert.ok(names.includes(n), `${n} missing from ${names.join(', ')}`);
    }
    for (const c of report.checks) {
      assert.equal(typeof c.ok, 'boolean');
      assert.ok(c.detail.length > 0, `${c.name} has no detail`);
      if (!c.ok && c.kind === 'driver') assert.ok(c.fix, `${c.name} cannot run but names no fix`);
    }
    assert.equal(report.trial, false);
  });

  test('a missing BTF file: eBPF and everything riding on it say why and how to fix it', () => {
    const cfg = writeConfig(join(dir, 'nobtf.yaml'), { sources: { ebpf: { btf: join(dir, 'no-such-btf') } } });
    const { report } = doctor(['--config', cfg, '--no-trial']);
    const ebpf = report.checks.find((c) => c.name === 'ebpf')!;
    assert.equal(ebpf.ok, false);
    assert.match(ebpf.detail, /no-such-btf/);
    assert.match(ebpf.fix!, /sources\.ebpf\.btf/);
    const stratum = report.checks.find((c) => c.name === 'stratum-wire')!;
    assert.equal(stratum.ok, false);
    assert.match(stratum.detail, /needs the eBPF driver/);
    assert.notEqual(report.chosen, 'ebpf');
  });

  test('asked for a driver that cannot run: no choice, exit 1', () => {
    const cfg = writeConfig(join(dir, 'nobtf-forced.yaml'), { sources: { ebpf: { btf: join(dir, 'no-such-btf') } } });
    const r = doctor(['--config', cfg, '--driver', 'ebpf', '--no-trial']);
    assert.equal(r.status, 1);
    assert.equal(r.report.chosen, null);
    assert.equal(r.report.asked, 'ebpf');
  });

  test('an admission webhook that takes reviews without a credential is named, with the fix', () => {
    const open = writeConfig(join(dir, 'adm-open.yaml'), { k8s: { admission: { enabled: true, allow_unauthenticated: true } } });
    const openCheck = doctor(['--config', open, '--no-trial']).report.checks.find((c) => c.name === 'admission-auth');
    assert.equal(openCheck?.ok, false);
    assert.match(openCheck!.detail, /no credential/);
    assert.match(openCheck!.fix!, /token_file/);
    const tokened = writeConfig(join(dir, 'adm-token.yaml'), { k8s: { admission: { enabled: true, token: 'x'.repeat(32) } } });
    assert.equal(doctor(['--config', tokened, '--no-trial']).report.checks.find((c) => c.name === 'admission-auth')?.ok, true);
    assert.equal(doctor(['--no-trial']).report.checks.some((c) => c.name === 'admission-auth'), false, 'no webhook, no line');
  });

  const live = isRoot() ? {} : { skip: 'needs root: doctor loads the drivers and the agent runs them' };

  test('with the default config, doctor names the driver run then chooses', live, async () => {
    const cfg = writeConfig(join(dir, 'default.yaml'), {});
    const { report, status } = doctor(['--config', cfg]);
    assert.equal(status, 0);
    assert.equal(report.trial, true);
    assert.ok(report.chosen, 'doctor chose no driver');
    const { driver } = await runChooses(cfg);
    assert.equal(driver, report.chosen);
  });

  test('when eBPF cannot run, run falls back to what doctor named, and its first log record says what is missing and the fix', live, async () => {
    const cfg = writeConfig(join(dir, 'fallback.yaml'), { sources: { ebpf: { btf: join(dir, 'no-such-btf') } } });
    const { report } = doctor(['--config', cfg]);
    assert.equal(report.chosen, 'proc');
    const { driver, first } = await runChooses(cfg);
    assert.equal(driver, 'proc');
    assert.match(String(first.missing), /no-such-btf/);
    assert.match(String(first.fix), /sources\.ebpf\.btf/);
    assert.match(String(first.msg), /^eBPF driver unavailable/);
  });
});
