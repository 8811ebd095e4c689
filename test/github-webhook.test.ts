/**
 * POST /github on a real Fastify server (127.0.0.1, port 0): signatures checked before parsing,
 * size limit, garbage, redeliveries; workflow_run and push events enriched through a loopback
 * GitHub API stand-in and run through github.yaml from the corpus.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Engine } from '../src/engine/index.js';
import { defaultRegistry } from '../src/fields/index.js';
import type { Event, PluginEvent } from '../src/events.js';
import { GithubApi } from '../src/github/api.js';
import { GithubEnricher } from '../src/github/enrich.js';
import { githubWebhookRoutes, verifySignature } from '../src/github/webhook.js';
import { pushPayload, REPO, HEAD_SHA, BEFORE_SHA, sign, workflowRunPayload } from './helpers/github-payloads.js';
import { GithubStandin } from './helpers/github-standin.js';
import { FALCO_CORPUS, FIXTURES } from './helpers/paths.js';
import { readFileSync } from 'node:fs';

const SECRET = 'It\'s a Secret to Everybody';

interface Harness {
  app: FastifyInstance;
  url: string;
  events: Event[];
  accept: { value: boolean };
  warnings: string[];
}

async function startHook(opts: { enricher?: GithubEnricher; maxBodyBytes?: number; dedupSize?: number } = {}): Promise<Harness> {
  const events: Event[] = [];
  const accept = { value: true };
  const warnings: string[] = [];
  const app = Fastify();
  // The server's own JSON parser stays in place outside the plugin: the route must not depend on it.
  app.post('/other', async (req) => ({ ok: true, got: req.body }));
  await app.register(githubWebhookRoutes({
    secret: SECRET,
    sink: (ev) => (accept.value ? (events.push(ev), true) : false),
    log: { warn: (_o, msg) => warnings.push(msg) },
    ...opts,
  }));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url: `${url}/github`, events, accept, warnings };
}

function post(url: string, body: string, headers: Record<string, string>) {
  return fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
}

function delivery(event: string, payload: unknown, id?: string, secret = SECRET) {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = { 'x-github-event': event, 'x-hub-signature-256': sign(secret, body) };
  if (id) headers['x-github-delivery'] = id;
  return { body, headers };
}

describe('signature checks', () => {
  let h: Harness;
  before(async () => (h = await startHook()));
  after(async () => h.app.close());

  test('a valid signature is accepted and the event handed on as a github PluginEvent', async () => {
    const d = delivery('ping', { zen: 'Keep it logically awesome.', hook: { id: 42, type: 'Repository' }, sender: { login: 'octocat' } }, 'a1b2c3d4-0000-0000-0000-000000000001');
    const res = await post(h.url, d.body, d.headers);
    assert.equal(res.status, 202);
    assert.equal(h.events.length, 1);
    const ev = h.events[0] as PluginEvent;
    assert.equal(ev.source, 'github');
    assert.equal(ev.type, 'ping');
    assert.equal(typeof ev.ts, 'bigint');
    assert.equal((ev.payload as Record<string, unknown>).webhook_type, 'ping');
  });

  test('missing, wrong, truncated and mis-prefixed signatures get 401 and nothing is handed on', async () => {
    const before = h.events.length;
    const d = delivery('ping', { zen: 'x' });
    const good = d.headers['x-hub-signature-256']!;
    const cases: Array<[string, string | undefined]> = [
      ['missing', undefined],
      ['wrong secret', sign('not the secret', d.body)],
      ['truncated by one digit', good.slice(0, -1)],
      ['truncated to half', good.slice(0, 7 + 32)],
      ['sha1 form', good.replace('sha256=', 'sha1=')],
      ['one digit changed', good.slice(0, -1) + (good.endsWith('0') ? '1' : '0')],
      ['empty', ''],
    ];
    for (const [what, sig] of cases) {
      const headers: Record<string, string> = { 'x-github-event': 'ping' };
      if (sig !== undefined) headers['x-hub-signature-256'] = sig;
      const res = await post(h.url, d.body, headers);
      assert.equal(res.status, 401, what);
      assert.match(((await res.json()) as { error: string }).error, /X-Hub-Signature-256/);
    }
    assert.equal(h.events.length, before);
    assert.ok(h.warnings.length >= cases.length);
  });

  test('a body changed after signing is refused', async () => {
    const d = delivery('ping', { zen: 'original' });
    const res = await post(h.url, d.body.replace('original', 'tampered'), d.headers);
    assert.equal(res.status, 401);
  });

  test('unsigned garbage is refused as unsigned (401), signed garbage as garbage (400)', async () => {
    assert.equal((await post(h.url, '{not json', { 'x-github-event': 'push' })).status, 401);
    const res = await post(h.url, '{not json', { 'x-github-event': 'push', 'x-hub-signature-256': sign(SECRET, '{not json') });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: string }).error, /not JSON/);
    const arr = '[1,2]';
    assert.equal((await post(h.url, arr, { 'x-github-event': 'push', 'x-hub-signature-256': sign(SECRET, arr) })).status, 400);
    const ok = delivery('push', {});
    assert.equal((await post(h.url, ok.body, { 'x-hub-signature-256': ok.headers['x-hub-signature-256']! })).status, 400, 'no X-GitHub-Event');
  });

  test('form-encoded deliveries (payload=…) are verified over the raw form body', async () => {
    const payload = JSON.stringify({ zen: 'form', hook: { id: 7, type: 'Organization' } });
    const body = `payload=${encodeURIComponent(payload)}`;
    const res = await fetch(h.url, {
      method: 'POST', body,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-github-event': 'ping', 'x-hub-signature-256': sign(SECRET, body) },
    });
    assert.equal(res.status, 202);
    assert.equal(((h.events.at(-1) as PluginEvent).payload as { zen: string }).zen, 'form');
  });

  test('a redelivery (same X-GitHub-Delivery) is answered and not handed on twice', async () => {
    const d = delivery('ping', { zen: 'once' }, '5f0e1b2a-9c8d-11ee-8000-000000000002');
    const before = h.events.length;
    assert.equal((await post(h.url, d.body, d.headers)).status, 202);
    const again = await post(h.url, d.body, d.headers);
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as { status: string }).status, 'duplicate');
    assert.equal(h.events.length, before + 1);
    // Content that differs is a new event.
    const other = delivery('ping', { zen: 'twice' }, '5f0e1b2a-9c8d-11ee-8000-000000000003');
    assert.equal((await post(h.url, other.body, other.headers)).status, 202);
    assert.equal(h.events.length, before + 2);
  });

  test('a replay: the same signed body under new delivery ids (or none, or another event name) is never handed on again', async () => {
    // The delivery id and X-GitHub-Event are not covered by the signature: whoever saw one signed
    // delivery (a proxy log, say) could present it again as new events.
    const d = delivery('workflow_run', { action: 'requested', zen: 'replayed' }, 'aaaaaaaa-0000-0000-0000-000000000001');
    const before = h.events.length;
    const warned = h.warnings.length;
    assert.equal((await post(h.url, d.body, d.headers)).status, 202);
    for (let i = 2; i < 6; i++) {
      const r = await post(h.url, d.body, { ...d.headers, 'x-github-delivery': `aaaaaaaa-0000-0000-0000-00000000000${i}` });
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { status: 'duplicate', delivery: `aaaaaaaa-0000-0000-0000-00000000000${i}` });
    }
    const { 'x-github-delivery': _, ...noId } = d.headers;
    assert.equal((await post(h.url, d.body, noId)).status, 200);
    assert.equal((await post(h.url, d.body, { ...noId, 'x-github-event': 'push' })).status, 200);
    assert.equal(h.events.length, before + 1);
    assert.ok(h.warnings.slice(warned).some((w) => /a body already taken came again under a new delivery id/.test(w)), h.warnings.join('\n'));
  });

  test('a full queue answers 503 and the redelivery is then taken', async () => {
    const d = delivery('ping', { zen: 'later' }, '5f0e1b2a-9c8d-11ee-8000-000000000004');
    h.accept.value = false;
    assert.equal((await post(h.url, d.body, d.headers)).status, 503);
    h.accept.value = true;
    assert.equal((await post(h.url, d.body, d.headers)).status, 202);
  });

  test('the server\'s other routes keep their own JSON parsing', async () => {
    const res = await fetch(h.url.replace('/github', '/other'), { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    assert.deepEqual(await res.json(), { ok: true, got: { a: 1 } });
  });

  test('verifySignature: constant-time over every configured secret, hex only', () => {
    const body = Buffer.from('{}');
    assert.equal(verifySignature(['a', SECRET], body, sign(SECRET, body)), true);
    assert.equal(verifySignature(['a'], body, sign(SECRET, body)), false);
    assert.equal(verifySignature([SECRET], body, sign(SECRET, body).replace(/[0-9a-f]$/, 'z')), false);
    assert.equal(verifySignature([SECRET], body, ['x']), false);
  });
});

describe('limits', () => {
  test('a body over the size limit gets 413 and is never handed on; de-dup memory is bounded', async () => {
    const h = await startHook({ maxBodyBytes: 2048, dedupSize: 16 });
    try {
      const big = delivery('push', { pad: 'x'.repeat(4096) });
      const res = await post(h.url, big.body, big.headers);
      assert.equal(res.status, 413);
      assert.equal(h.events.length, 0);
      // 40 deliveries through a 16-entry memory: the oldest ids are forgotten, so the first is taken again.
      for (let i = 0; i < 40; i++) {
        const d = delivery('ping', { i }, `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`);
        assert.equal((await post(h.url, d.body, d.headers)).status, 202);
      }
      const first = delivery('ping', { i: 0 }, '00000000-0000-0000-0000-000000000000');
      assert.equal((await post(h.url, first.body, first.headers)).status, 202);
      const last = delivery('ping', { i: 39 }, '00000000-0000-0000-0000-000000000039');
      assert.equal((await post(h.url, last.body, last.headers)).status, 200);
    } finally {
      await h.app.close();
    }
  });

  test('no secret, no route: the plugin refuses to be built', () => {
    assert.throws(() => githubWebhookRoutes({ secret: '', sink: () => true }), /no secret configured/);
  });
});

describe('github.yaml on enriched deliveries (loopback GitHub API stand-in)', () => {
  const standin = new GithubStandin();
  let h: Harness;
  let engine: Engine;
  before(async () => {
    const api = await standin.start();
    h = await startHook({ enricher: new GithubEnricher(new GithubApi({ baseUrl: api, timeoutMs: 3000 })) });
    engine = Engine.fromFiles([FALCO_CORPUS + 'github.yaml'], { ruleMatching: 'all' });
  });
  after(async () => {
    await h.app.close();
    await standin.stop();
  });

  test('a workflow_run whose workflow runs XMRig fires "Github action with miners"', async () => {
    standin.addFile(REPO, HEAD_SHA, '.github/workflows/ci.yml', readFileSync(FIXTURES + 'github/miner/02-base64-payload.yml', 'utf8'));
    const d = delivery('workflow_run', workflowRunPayload(), 'wr-0001');
    assert.equal((await post(h.url, d.body, d.headers)).status, 202);
    const ev = h.events.at(-1)!;
    const matches = engine.process(ev);
    assert.deepEqual(matches.map((m) => m.rule), ['Github action with miners']);
    const m = matches[0]!;
    assert.equal(m.priority, 'CRITICAL');
    assert.equal(m.output, `a github action containing crypto miners was executed (repository_name=${REPO} repository_url=https://github.com/${REPO} repo_owner=acme org=acme user=mallory file=.github/workflows/ci.yml)`);
    const fields = (f: string) => defaultRegistry().resolve('github', f).extract(ev);
    assert.equal(fields('github.workflow.has_miners'), 'true');
    assert.deepEqual(String(fields('github.workflow.miners.type')).split(',').sort(), ['miner_flags', 'pool', 'wallet', 'xmrig']);
    assert.match(String(fields('mw.github.workflow.findings')), /^\.github\/workflows\/ci\.yml:17:/);
    assert.equal(fields('mw.github.fetch_error'), undefined);
  });

  test('a clean workflow does not fire; a missing file leaves the miner fields <NA> and logs why', async () => {
    standin.addFile(REPO, 'c'.repeat(40), '.github/workflows/ci.yml', readFileSync(FIXTURES + 'github/clean/01-node-db-pool.yml', 'utf8'));
    const clean = delivery('workflow_run', workflowRunPayload({ sha: 'c'.repeat(40) }), 'wr-0002');
    assert.equal((await post(h.url, clean.body, clean.headers)).status, 202);
    assert.deepEqual(engine.process(h.events.at(-1)!), []);
    assert.equal(defaultRegistry().resolve('github', 'github.workflow.has_miners').extract(h.events.at(-1)!), 'false');

    const missing = delivery('workflow_run', workflowRunPayload({ sha: 'd'.repeat(40) }), 'wr-0003');
    assert.equal((await post(h.url, missing.body, missing.headers)).status, 202);
    const ev = h.events.at(-1) as PluginEvent;
    assert.equal(defaultRegistry().resolve('github', 'github.workflow.has_miners').extract(ev), undefined);
    assert.match(String(defaultRegistry().resolve('github', 'mw.github.fetch_error').extract(ev)), /not found at d{40}/);
    assert.deepEqual(engine.process(ev), []);
  });

  test('payloads of the wrong shape are taken, leave <NA> and a reason, never crash the route', async () => {
    const odd = [
      { workflow: 'not an object', repository: [], workflow_run: { head_sha: 42 } },
      { workflow: { path: '../../../etc/passwd' }, workflow_run: { head_sha: HEAD_SHA, head_repository: { full_name: 'a/b/c' } } },
      { action: 'requested' },
    ];
    let i = 0;
    for (const payload of odd) {
      const d = delivery('workflow_run', payload, `odd-${i++}`);
      assert.equal((await post(h.url, d.body, d.headers)).status, 202);
      const ev = h.events.at(-1) as PluginEvent;
      assert.equal(defaultRegistry().resolve('github', 'github.workflow.has_miners').extract(ev), undefined);
      assert.ok((ev.payload as { mw_github?: { fetch_error?: string } }).mw_github?.fetch_error);
      assert.deepEqual(engine.process(ev), []);
    }
    assert.ok(standin.requests.every((r) => r.path.startsWith('/repos/acme/widgets/')), 'no request leaves the repository');
    const push = delivery('push', { after: 12, repository: 'x' }, 'odd-push');
    assert.equal((await post(h.url, push.body, push.headers)).status, 202);
  });

  test('a push adding an AWS key fires the secret rule with file, line and link, never the key', async () => {
    const key = 'AKIA' + 'Q3EGRIT7WXYZ2K4M';
    standin.diffs.set(`${REPO}:${BEFORE_SHA}...${HEAD_SHA}`, [
      { filename: 'README.md', status: 'modified', patch: '@@ -1,2 +1,3 @@\n # widgets\n+Deploy notes below.\n more' },
      { filename: 'deploy/config.env', status: 'added', patch: `@@ -0,0 +1,4 @@\n+REGION=eu-west-1\n+BUCKET=widgets-prod\n+AWS_ACCESS_KEY_ID=${key}\n+LOG_LEVEL=info` },
    ]);
    const d = delivery('push', pushPayload({ private: true }), 'push-0001');
    assert.equal((await post(h.url, d.body, d.headers)).status, 202);
    const ev = h.events.at(-1)!;
    const matches = engine.process(ev);
    assert.deepEqual(matches.map((m) => m.rule), ['Secret pushed into a private repository']);
    const out = matches[0]!.output;
    assert.match(out, /secret_types=aws_access_key file=deploy\/config\.env line=3 /);
    assert.ok(out.includes(`url=https://github.com/${REPO}/blob/${HEAD_SHA}/deploy/config.env#L3`), out);
    assert.ok(!out.includes(key), 'the alert must not carry the key');
    assert.ok(!JSON.stringify((ev as PluginEvent).payload).includes(key), 'nor the event');
  });
});
