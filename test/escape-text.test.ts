/**
 * Forged log lines (issue 13, item 7): a process chooses its own argv, so a newline in it must not
 * start a line of its own in any text rendering of an alert (standard output, a file, a program's
 * input). Control characters are escaped C-style there; JSON renderings stay as they are (JSON
 * escapes them already).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import { FileOutput } from '../src/alerts/outputs/file.js';
import { ProgramOutput } from '../src/alerts/outputs/program.js';
import { slackMessage } from '../src/alerts/outputs/slack.js';
import { StdoutOutput } from '../src/alerts/outputs/stdout.js';
import { escapeControl } from '../src/engine/escape.js';
import { alertMessage } from './helpers/alerts.js';
import { AgentRun, writeConfig } from './helpers/agent-run.js';
import { CLI } from './helpers/paths.js';

const FORGED = '\nFeb 1 00:00:00 host minewatch: All clear';
const dir = mkdtempSync(join(tmpdir(), 'mw-msc-escape-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const fileLines = (path: string): string[] => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

test('escapeControl: C escapes for control characters, line separators and bidi overrides; clean text untouched', () => {
  assert.equal(escapeControl('a\nb\tc\rd\x1b[31me\x00f\x7fg'), 'a\\nb\\tc\\rd\\x1b[31me\\x00f\\x7fg');
  assert.equal(escapeControl('\x07\b\v\f'), '\\a\\b\\v\\f');
  assert.equal(escapeControl('nel\x85 ls\u2028 ps\u2029 rlo\u202e end'), 'nel\\x85 ls\\u2028 ps\\u2029 rlo\\u202e end');
  // Backslashes, quotes, UTF-8 and emoji are text: kept as they are.
  const clean = String.raw`grep -E "a\|b" C:\tmp 'é' 東京 🙂`;
  assert.equal(escapeControl(clean), clean);
  assert.equal(escapeControl(''), '');
});

test('stdout, file and program outputs in text mode: one line per alert, the forged line escaped; JSON unchanged', async () => {
  const msg = alertMessage({ output: `20:16:35.123456789: Critical Miner started (cmdline=xmrig ${FORGED})` });
  const want = '20:16:35.123456789: Critical Miner started (cmdline=xmrig \\nFeb 1 00:00:00 host minewatch: All clear)';

  const stream = new PassThrough();
  let out = '';
  stream.on('data', (d: Buffer) => (out += d.toString()));
  await new StdoutOutput({ name: 'stdout', format: 'text', stream }).send(msg);
  await new StdoutOutput({ name: 'stdout', format: 'json', stream }).send(msg);
  const [text, json, rest] = out.split('\n');
  assert.equal(text, want);
  assert.equal(JSON.parse(json!).output, msg.output, 'JSON carries the original text (escaped by JSON itself)');
  assert.equal(rest, '');

  const textPath = join(dir, 'alerts.txt');
  const f = new FileOutput({ name: 'file', path: textPath, format: 'text' });
  await f.send(msg);
  await f.send(alertMessage({ output: `sum ${FORGED}` }, { kind: 'summary', count: 2 }));
  await f.close();
  const lines = fileLines(textPath);
  assert.equal(lines.length, 2, lines.join('\n---\n'));
  assert.equal(lines[0], want);
  assert.equal(lines[1], 'sum \\nFeb 1 00:00:00 host minewatch: All clear');

  const progPath = join(dir, 'program.txt');
  const p = new ProgramOutput({ name: 'program', program: `cat >> '${progPath}'`, keepAlive: false, format: 'text', timeoutMs: 5000 });
  await p.send(msg);
  await p.close();
  assert.deepEqual(fileLines(progPath), [want]);

  const slack = slackMessage(msg) as { attachments: { text: string; fallback: string }[] };
  assert.equal(slack.attachments[0]!.text, want);
  assert.equal(slack.attachments[0]!.fallback, want);
});

test('k8s scan: a manifest name carrying a forged line stays inside its table row', () => {
  const manifest = ['apiVersion: apps/v1', 'kind: Deployment', 'metadata:', '  name: "web\\nFeb 1 00:00:00 host minewatch: All clear"', '  namespace: prod',
    'spec:', '  template:', '    spec:', '      containers:', '      - name: c', '        image: xmrig/xmrig:latest', ''].join('\n');
  const r = spawnSync(process.execPath, [CLI, 'k8s', 'scan', '--manifests', '-'], { input: manifest, encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.ok(lines.some((l) => /^CRITICAL +Deployment +prod\/web\\nFeb 1 00:00:00 host minewatch: All clear +K8s Workload With Miner Image/.test(l)), r.stdout);
  assert.equal(lines.filter((l) => l.startsWith('Feb 1')).length, 0, r.stdout);
});

test('live: a process whose argv carries a forged "All clear" line gives one escaped alert line on stdout and in the file', async (t) => {
  const alertsFile = join(dir, 'live', 'alerts.txt');
  const rules = join(dir, 'forge.yaml');
  const tag = `mwforge${process.pid}`;
  // A rule of our own keyed on a word of the argv, so the test needs no miner and no network.
  const rulesText = [
    '- rule: Forged Line Probe',
    '  desc: a process with the probe word in its command line',
    `  condition: evt.type in (execve, execveat) and proc.cmdline contains "${tag}"`,
    '  output: probe seen (process=%proc.name cmdline=%proc.cmdline pid=%proc.pid)',
    '  priority: WARNING',
    '',
  ].join('\n');
  writeFileSync(rules, rulesText);
  const config = writeConfig(join(dir, 'forge-config.yaml'), {
    rules_files: [rules],
    web: { enabled: false },
    outputs: { file: { enabled: true, path: alertsFile, format: 'text' } },
  });
  const agent = new AgentRun(config, { text: true });
  let child: ChildProcess | undefined;
  try {
    const started = await agent.started();
    t.diagnostic(`driver: ${String(started.driver ?? '')}`);
    // sh stays (a second command after sleep) so /proc/PID/cmdline is sh's argv while the agent reads it.
    child = spawn('sh', ['-c', 'sleep 2; true', tag, FORGED], { stdio: 'ignore' });
    const pid = child.pid!;
    const line = await agent.waitOut((l) => l.includes(`pid=${pid}`), 20_000, `the probe alert for pid ${pid}`);
    assert.match(line, /: Warning probe seen \(process=sh cmdline=sh -c sleep 2; true mwforge\d+ \\nFeb 1 00:00:00 host minewatch: All clear pid=\d+\)( container_id=\S+ container_name=\S+ container_image_repository=\S+ container_image_tag=\S+ k8s_pod_name=\S+ k8s_ns_name=\S+)?$/);
    // (The tail is Falco's default append_output: suggested container and pod fields.)
    // The forged text never stands on a line of its own.
    assert.equal(agent.rawOut.filter((l) => l.startsWith('Feb 1')).length, 0, agent.rawOut.join('\n'));
    const deadline = Date.now() + 10_000;
    while (!fileLines(alertsFile).some((l) => l.includes(`pid=${pid}`)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const inFile = fileLines(alertsFile);
    assert.deepEqual(inFile.filter((l) => l.includes(`pid=${pid}`)), [line]);
    assert.equal(inFile.filter((l) => l.startsWith('Feb 1')).length, 0, inFile.join('\n'));
  } finally {
    child?.kill('SIGKILL');
    await agent.stop();
  }
});
