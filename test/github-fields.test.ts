/**
 * The github field catalog against Falco's github plugin's semantics, github.yaml from the corpus
 * loading with no error and no warning and its rules firing on real-looking payloads, the github
 * config section, and `minewatch replay` of github events (enriched through a loopback API stand-in).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import Fastify from 'fastify';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { Engine, RulesLoadError } from '../src/engine/index.js';
import { BUILTIN_PLUGINS, pluginSatisfies } from '../src/engine/version.js';
import { encodeEvent, type PluginEvent } from '../src/events.js';
import { defaultRegistry } from '../src/fields/index.js';
import type { GithubConfig } from '../src/config/github.js';
import { githubRoutesFor, resolveGithubSettings } from '../src/github/config.js';
import { HEAD_SHA, REPO, pushPayload, sign, workflowRunPayload } from './helpers/github-payloads.js';
import { GithubStandin } from './helpers/github-standin.js';
import { CLI, FALCO_CORPUS, FIXTURES } from './helpers/paths.js';

const run = promisify(execFile);
const GITHUB_YAML = FALCO_CORPUS + 'github.yaml';
const registry = defaultRegistry();
const get = (field: string, ev: PluginEvent) => registry.resolve('github', field).extract(ev);
const gh = (type: string, payload: unknown): PluginEvent => ({ source: 'github', type, ts: 1_764_100_000_000_000_000n, payload });

test('github.yaml loads with no error and no warning: 15 rules on the github source', () => {
  const engine = Engine.fromFiles([GITHUB_YAML]);
  assert.equal(engine.ruleset.rules.length, 15);
  assert.deepEqual(engine.ruleset.warnings, []);
  assert.ok(engine.ruleset.rules.every((r) => r.source === 'github'));
  assert.ok(pluginSatisfies(BUILTIN_PLUGINS, 'github', '0.8.0'));
  assert.ok(!pluginSatisfies(BUILTIN_PLUGINS, 'github', '1.0.0'), 'a future major version is refused, as in Falco');
});

test('plugin requirements: github and its alternatives are met, a plugin that is not built in fails with its name and line', () => {
  const file = (req: string) => [{ path: 'r.yaml', text: `- required_plugin_versions:\n${req}\n- rule: r\n  desc: d\n  condition: github.type=ping\n  output: o\n  priority: INFO\n  source: github\n` }];
  assert.equal(new Engine(file('  - name: github\n    version: 0.10.0')).ruleset.rules.length, 1);
  assert.equal(new Engine(file('  - name: github-enterprise\n    version: 1.0.0\n    alternatives:\n      - name: github\n        version: 0.8.0')).ruleset.rules.length, 1);
  assert.throws(() => new Engine(file('  - name: github\n    version: 0.8.0\n  - name: gitlab\n    version: 0.1.0')), (e: unknown) => {
    assert.ok(e instanceof RulesLoadError);
    assert.equal(e.errors.length, 1);
    assert.equal(`${e.errors[0]!.pos.file}:${e.errors[0]!.pos.line}`, 'r.yaml:4');
    assert.match(e.errors[0]!.message, /must load one of: gitlab \(>= 0\.1\.0\)/);
    return true;
  });
  assert.throws(() => new Engine(file('  - name: github\n    version: 0.11.0')), /github \(>= 0\.11\.0\) \(minewatch has github 0\.10\.0\)/);
});

test('fields read the webhook JSON as the plugin does', () => {
  const repoEvent = gh('repository', {
    action: 'publicized', repository: { full_name: REPO, html_url: `https://github.com/${REPO}`, private: false, description: 'd', owner: { login: 'acme' } },
    sender: { login: 'octocat' },
  });
  assert.equal(get('github.type', repoEvent), 'repository');
  assert.equal(get('github.action', repoEvent), 'publicized');
  assert.equal(get('github.repo.name', repoEvent), REPO);
  assert.equal(get('github.repo', repoEvent), `https://github.com/${REPO}`);
  assert.equal(get('github.repo.public', repoEvent), 'true');
  assert.equal(get('github.owner', repoEvent), 'acme');
  assert.equal(get('github.org', repoEvent), '', 'absent keys read as empty text, as the plugin gives them');
  assert.equal(get('github.webhook.id', repoEvent), '0');
  // X-GitHub-Event recorded in the payload wins over the event type (a plugin-captured payload).
  assert.equal(get('github.type', gh('other', { webhook_type: 'star' })), 'star');

  const push = gh('push', pushPayload({ added: ['a.txt', 'b/c.txt'] }));
  assert.equal(get('github.commit.added', push), 'a.txt,b/c.txt');
  assert.equal(get('github.commit.modified', push), 'README.md');
  assert.equal(get('github.commit.removed', push), '');
  assert.equal(get('github.repo.public', push), 'false');
  assert.equal(get('github.diff.has_secrets', push), undefined, 'not scanned: <NA>, never "false"');

  const member = gh('member', { action: 'added', member: { login: 'eve' }, changes: { permission: { to: 'admin' } } });
  assert.equal(get('github.collaborator.name', member), 'eve');
  assert.equal(get('github.collaborator.role', member), 'admin');

  const two = gh('push', { ...pushPayload(), files: [
    { name: 'a.env', matches: [{ line: 3, desc: 'aws_access_key' }, { line: 9, desc: 'slack_webhook' }] },
    { name: 'clean.txt', matches: [] },
    { name: 'k.pem', matches: [{ line: 1, desc: 'asymmetric_private_key' }] },
  ] });
  assert.equal(get('github.diff.has_secrets', two), 'true');
  assert.equal(get('github.diff.committed_secrets.desc', two), 'aws_access_key,slack_webhook,asymmetric_private_key');
  assert.equal(get('github.diff.committed_secrets.files', two), 'a.env,a.env,k.pem');
  assert.equal(get('github.diff.committed_secrets.lines', two), '3,9,1');
  assert.equal(get('github.diff.committed_secrets.links', two),
    [`a.env#L3`, `a.env#L9`, `k.pem#L1`].map((x) => `https://github.com/${REPO}/blob/${HEAD_SHA}/${x}`).join(','));

  const wr = gh('workflow_run', { ...workflowRunPayload(), workflow_miner_detections: { name: 'x', matches: [{ type: 'xmrig' }, { type: 'stratum' }, { type: 'xmrig' }] } });
  assert.equal(get('github.workflow.has_miners', wr), 'true');
  assert.equal(get('github.workflow.miners.type', wr), 'xmrig,stratum');
  assert.equal(get('github.workflow.filename', wr), '.github/workflows/ci.yml');
  assert.equal(get('github.workflow.has_miners', gh('workflow_run', workflowRunPayload())), undefined);
  // A payload that is not an object never throws.
  assert.equal(get('github.user', gh('push', 'garbage')), '');
});

test('github.yaml rules fire on their payloads', () => {
  const engine = Engine.fromFiles([GITHUB_YAML], { ruleMatching: 'all' });
  const fired = (type: string, payload: unknown) => engine.process(gh(type, payload)).map((m) => m.rule);
  const repo = (priv: boolean) => ({ full_name: REPO, html_url: `https://github.com/${REPO}`, private: priv, owner: { login: 'acme' } });
  assert.deepEqual(fired('ping', { hook: { id: 1, type: 'Repository' } }), ['Webhook Connected']);
  assert.deepEqual(fired('repository', { action: 'publicized', repository: repo(false) }), ['Private Repository Becoming Public']);
  assert.deepEqual(fired('repository', { action: 'created', repository: repo(false) }), ['Create Public Repository', 'Create Repository']);
  assert.deepEqual(fired('repository', { action: 'created', repository: repo(true) }), ['Create Repository']);
  assert.deepEqual(fired('member', { action: 'added', repository: repo(true), member: { login: 'eve' } }), ['Add Collaborator to Repository']);
  assert.deepEqual(fired('workflow_run', { ...workflowRunPayload({ action: 'completed' }), workflow_miner_detections: { matches: [{ type: 'xmrig' }] } }), [],
    'the rule asks for action=requested');
  const out = engine.process(gh('member', { action: 'added', repository: repo(true), member: { login: 'eve' }, changes: { permission: { to: 'write' } }, sender: { login: 'root' } }))[0]!.output;
  assert.equal(out, `A collaborator was added to a repository (repository_name=${REPO} repository_url=https://github.com/${REPO} repo_owner=acme org= user=root collaborator=eve role=write)`);
});

test('config: the github section, its errors with path and line, secrets from files and GITHUB_TOKEN', async () => {
  const { config } = parseConfig('github:\n  enabled: true\n  secret: s3cret\n  api_url: https://ghe.example.com/api/v3\n', 'c.yaml');
  const g = config.github as GithubConfig;
  assert.equal(g.fetch_timeout_ms, 5000);
  assert.equal(g.api_url, 'https://ghe.example.com/api/v3');
  assert.equal((parseConfig('{}\n', 'c.yaml').config.github as GithubConfig).enabled, false);

  assert.throws(() => parseConfig('github:\n  enabled: true\n', 'c.yaml'), (e: unknown) =>
    e instanceof ConfigError && /c\.yaml:\d+:\d+: github\.secret: the webhook needs a secret/.test(e.message));
  assert.throws(() => parseConfig('github:\n  secret: a\n  secret_file: /x\n', 'c.yaml'), /github\.secret_file: give secret or secret_file, not both/);
  assert.throws(() => parseConfig('github:\n  api_url: ftp://x\n', 'c.yaml'), /c\.yaml:2:\d+: github\.api_url: must be an http\(s\) URL/);
  assert.throws(() => parseConfig('github:\n  secrett: x\n', 'c.yaml'), /github\.secrett/);

  const dir = mkdtempSync(join(tmpdir(), 'mw-gh-cfg-'));
  try {
    writeFileSync(join(dir, 'secret'), 'from-file\n');
    const c = (parseConfig(`github:\n  enabled: true\n  secret_file: ${join(dir, 'secret')}\n`, 'c.yaml').config.github) as GithubConfig;
    assert.deepEqual(resolveGithubSettings(c, { GITHUB_TOKEN: 'ghs_env' }), { secret: 'from-file', token: 'ghs_env' });
    assert.throws(() => resolveGithubSettings({ ...c, secret_file: join(dir, 'none') }, {}), /github\.secret_file: cannot read .*none \(ENOENT\)/);

    // The section builds a working route.
    const events: PluginEvent[] = [];
    const app = Fastify();
    await app.register(githubRoutesFor(c, (ev) => (events.push(ev as PluginEvent), true), undefined, {}));
    const url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/github`;
    const body = JSON.stringify({ zen: 'hi' });
    const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-hub-signature-256': sign('from-file', body) } });
    assert.equal(res.status, 202);
    assert.equal(events.length, 1);
    await app.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('minewatch replay --source github: a recorded workflow_run is enriched from the API and fires; enriched events replay offline', async () => {
  const standin = new GithubStandin();
  const api = await standin.start();
  const dir = mkdtempSync(join(tmpdir(), 'mw-gh-replay-'));
  try {
    standin.addFile(REPO, HEAD_SHA, '.github/workflows/ci.yml', readFileSync(FIXTURES + 'github/miner/13-gitlab-apk-xmrig.gitlab-ci.yml', 'utf8'));
    const file = join(dir, 'events.jsonl');
    writeFileSync(file, [
      encodeEvent(gh('workflow_run', workflowRunPayload())),
      encodeEvent({ source: 'syscall', type: 'execve', ts: 1n, proc: { pid: 1, name: 'x' } } as never),
      encodeEvent(gh('ping', { hook: { id: 5, type: 'Organization' } })),
    ].join('\n') + '\n');
    const r = await run('node', [CLI, 'replay', '--source', 'github', '-r', GITHUB_YAML, '--github-api', api, '--json', file]);
    const alerts = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { rule: string; priority: string; source: string; output_fields: Record<string, string> });
    assert.deepEqual(alerts.map((a) => a.rule), ['Github action with miners', 'Webhook Connected']);
    assert.equal(alerts[0]!.priority, 'Critical');
    assert.equal(alerts[0]!.source, 'github');
    assert.equal(alerts[0]!.output_fields['github.workflow.filename'], '.github/workflows/ci.yml');
    assert.match(r.stderr, /replayed 2 events/);

    // Without the API the raw event has no miner fields: no alert, and no network call.
    const n = standin.requests.length;
    const offline = await run('node', [CLI, 'replay', '--source', 'github', '-r', GITHUB_YAML, file]);
    assert.doesNotMatch(offline.stdout, /crypto miners/);
    assert.equal(standin.requests.length, n);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await standin.stop();
  }
});
