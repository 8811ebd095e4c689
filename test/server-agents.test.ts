/**
 * Issue 13, item 5: the central server gives each agent its own identity and stamps the hostname
 * itself. Against the real `minewatch server`:
 * - an agent with token A posting alerts that claim hostname B gets them stored under A's hostname
 *   (decided: stored as the sender, not refused — the alert itself is real, only its claim is not);
 *   a group uuid of A cannot be updated by B;
 * - an unknown token is 401;
 * - a Kubernetes ServiceAccount token, checked by TokenReview against a loopback API stand-in,
 *   is stored under the node its pod runs on; a token of another account, for another audience,
 *   or one the API server does not accept is 401; an unreachable API server is 503 (the agent
 *   retries);
 * - an agent forwarding with its own token (the falcosidekick output) lands under its name.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AgentRun, writeConfig } from './helpers/agent-run.js';
import { K8sApiStandin, sendJson } from './helpers/k8s-api-standin.js';
import { call, falcoAlert } from './helpers/web.js';

const dir = mkdtempSync(join(tmpdir(), 'mw-server-agents-'));
const runs: AgentRun[] = [];
after(() => {
  for (const r of runs) r.kill();
  rmSync(dir, { recursive: true, force: true });
});

const OPERATOR = 'operator-token-0123456789abcdef';
const TOKEN_A = 'agent-a-token-0123456789abcdef';
const TOKEN_B = 'agent-b-token-0123456789abcdef';

async function stored(url: string, q: string): Promise<any[]> {
  const r = await call(url, `/api/alerts?${q}`, { token: OPERATOR });
  assert.equal(r.status, 200, r.text);
  return r.json.alerts;
}

describe('minewatch server: one identity per agent', () => {
  it('the config refuses an agent token equal to the operator\'s, or two agents sharing one, naming the key', async () => {
    const { parseConfig, ConfigError } = await import('../src/config/load.js');
    const twice = `web:\n  token: ${OPERATOR}\n  inputs:\n    agents:\n      - {hostname: a, token: ${TOKEN_A}}\n      - {hostname: b, token: ${TOKEN_A}}\n`;
    assert.throws(() => parseConfig(twice, 'mw.yaml'), (e: Error) => e instanceof ConfigError && /web\.inputs\.agents\.1\.token: the same token as agents\[0\]/.test(e.message));
    const operator = `web:\n  token: ${OPERATOR}\n  inputs:\n    agents:\n      - {hostname: a, token: ${OPERATOR}}\n`;
    assert.throws(() => parseConfig(operator, 'mw.yaml'), /web\.inputs\.agents\.0\.token: the same as web\.token/);
    assert.throws(() => parseConfig('web:\n  inputs:\n    agents:\n      - {hostname: "a b", token_file: /x}\n', 'mw.yaml'), /web\.inputs\.agents\.0\.hostname: not a hostname/);
    assert.throws(() => parseConfig('web:\n  inputs:\n    agents:\n      - {hostname: a}\n', 'mw.yaml'), /web\.inputs\.agents\.0\.token: give token or token_file/);
  });

  it('token A claiming hostname B is stored as A; an unknown token is 401; the operator\'s alerts keep their hostname; B cannot update A\'s group', { timeout: 60_000 }, async () => {
    writeFileSync(join(dir, 'b.token'), `${TOKEN_B}\n`);
    const cfg = writeConfig(join(dir, 'server.yaml'), {
      outputs: { stdout: { enabled: false } },
      web: { token: OPERATOR, inputs: { agents: [{ hostname: 'node-a', token: TOKEN_A }, { hostname: 'node-b', token_file: join(dir, 'b.token') }] } },
    });
    const server = new AgentRun(cfg, { command: 'server' });
    runs.push(server);
    const url = await server.webUrl();

    const forged = falcoAlert({ host: 'node-b', output: 'All clear on node-b', rule: 'Launch Cryptominer' });
    const r = await call(url, '/', { token: TOKEN_A, body: forged });
    assert.equal(r.status, 200, r.text);
    const got = (await call(url, `/api/alerts/${r.json.ids[0]}`, { token: OPERATOR })).json;
    assert.equal(got.hostname, 'node-a', 'stored under the sender, not the claim');
    assert.equal((await stored(url, 'host=node-b')).length, 0, 'nothing under node-b');
    await server.waitLog((l) => l.msg.includes('claimed another hostname'), 5000, 'the claim is logged');

    for (const t of ['unknown-token-0123456789abcdef', `${TOKEN_A}x`, TOKEN_A.slice(0, -1)]) {
      assert.equal((await call(url, '/falco', { token: t, body: falcoAlert() })).status, 401, `token ${t.slice(0, 10)}…`);
    }
    assert.equal((await call(url, '/falco', { body: falcoAlert() })).status, 401, 'no token');
    // An agent's token opens the inputs only, not the API.
    assert.equal((await call(url, '/api/alerts', { token: TOKEN_A })).status, 401);

    // The operator (Falco's http_output with web.token, a replay) is trusted with its hostname.
    const op = await call(url, '/', { token: OPERATOR, body: falcoAlert({ host: 'falco-node-7' }) });
    assert.equal((await call(url, `/api/alerts/${op.json.ids[0]}`, { token: OPERATOR })).json.hostname, 'falco-node-7');

    // A minewatch agent's group (uuid) of node-a: node-b sends a "summary" under the same uuid.
    const uuid = 'a1b2c3d4-0000-4000-8000-000000000001';
    const first = { ...falcoAlert({ host: 'node-a', rule: 'Outbound Stratum Connection' }), minewatch: { uuid, kind: 'first', count: 1 } };
    const ra = await call(url, '/', { token: TOKEN_A, body: first });
    const summary = { ...falcoAlert({ host: 'node-a', rule: 'Outbound Stratum Connection', output: 'cleared' }), minewatch: { uuid, kind: 'summary', count: 1000 } };
    const rb = await call(url, '/', { token: TOKEN_B, body: summary });
    assert.equal(rb.status, 200);
    const groupA = (await call(url, `/api/alerts/${ra.json.ids[0]}`, { token: OPERATOR })).json;
    assert.equal(groupA.count, 1, "node-b did not touch node-a's group");
    assert.equal(groupA.uuid, uuid);
    const fromB = (await call(url, `/api/alerts/${rb.json.ids[0]}`, { token: OPERATOR })).json;
    assert.notEqual(fromB.id, groupA.id);
    assert.equal(fromB.hostname, 'node-b');
    assert.notEqual(fromB.uuid, uuid);
    // node-b's own later message under that uuid finds node-b's group, still not node-a's.
    const again = await call(url, '/', { token: TOKEN_B, body: { ...summary, minewatch: { uuid, kind: 'summary', count: 2000 } } });
    assert.equal(again.json.ids[0], fromB.id);
    assert.equal((await call(url, `/api/alerts/${fromB.id}`, { token: OPERATOR })).json.count, 2000);
    assert.equal((await call(url, `/api/alerts/${groupA.id}`, { token: OPERATOR })).json.count, 1);
    await server.stop();
  });

  it('ServiceAccount tokens through TokenReview: stored under the pod\'s node; other accounts, audiences and rejected tokens 401; API down 503', { timeout: 60_000 }, async () => {
    const api = await K8sApiStandin.start();
    const jwt = (n: string) => `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: n })).toString('base64url')}.c2lnbmF0dXJl`;
    const GOOD = jwt('good');
    const OLD = jwt('old-cluster');
    const OTHER_SA = jwt('other');
    const WRONG_AUD = jwt('aud');
    const REJECTED = jwt('rejected');
    const user = (username: string, extra: Record<string, string[]> = {}) => ({ username, uid: 'u', groups: ['system:serviceaccounts'], extra });
    const answers: Record<string, unknown> = {
      [GOOD]: { authenticated: true, audiences: ['minewatch'], user: user('system:serviceaccount:minewatch:minewatch-agent', { 'authentication.kubernetes.io/node-name': ['node-7'], 'authentication.kubernetes.io/pod-name': ['agent-x7'] }) },
      [OLD]: { authenticated: true, audiences: ['minewatch'], user: user('system:serviceaccount:minewatch:minewatch-agent', { 'authentication.kubernetes.io/pod-name': ['agent-q9'] }) },
      [OTHER_SA]: { authenticated: true, audiences: ['minewatch'], user: user('system:serviceaccount:default:default', { 'authentication.kubernetes.io/node-name': ['node-7'] }) },
      [WRONG_AUD]: { authenticated: true, audiences: ['https://kubernetes.default.svc'], user: user('system:serviceaccount:minewatch:minewatch-agent', { 'authentication.kubernetes.io/node-name': ['node-7'] }) },
      [REJECTED]: { authenticated: false, error: 'token has expired' },
    };
    let reviews = 0;
    let down = false;
    api.on('POST', '/apis/authentication.k8s.io/v1/tokenreviews', (req, res) => {
      reviews++;
      const spec = (req.body as { spec: { token: string; audiences?: string[] } }).spec;
      assert.deepEqual(spec.audiences, ['minewatch'], 'the review asks for the audience');
      if (down) return sendJson(res, 503, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'etcd unavailable', reason: 'ServiceUnavailable', code: 503 });
      sendJson(res, 201, { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', spec, status: answers[spec.token] ?? { authenticated: false } });
    });
    api.on('GET', '/api/v1/namespaces/minewatch/pods/agent-q9', (_req, res) => sendJson(res, 200, { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'agent-q9', namespace: 'minewatch' }, spec: { nodeName: 'node-9', containers: [] } }));
    writeFileSync(join(dir, 'api.token'), api.token);
    const cfg = writeConfig(join(dir, 'server-sa.yaml'), {
      outputs: { stdout: { enabled: false } },
      web: { token: OPERATOR, inputs: { service_accounts: [{ namespace: 'minewatch', name: 'minewatch-agent' }] } },
      k8s: { api: { server: api.url, token_file: join(dir, 'api.token'), enrich: { enabled: false } } },
    });
    const server = new AgentRun(cfg, { command: 'server' });
    runs.push(server);
    try {
      const url = await server.webUrl();
      const post = (token: string, host: string) => call(url, '/', { token, body: falcoAlert({ host, rule: 'Launch Cryptominer' }) });
      const ok = await post(GOOD, 'node-b');
      assert.equal(ok.status, 200, ok.text);
      assert.equal((await call(url, `/api/alerts/${ok.json.ids[0]}`, { token: OPERATOR })).json.hostname, 'node-7');
      // Answers are cached: the same token again costs no review.
      const before = reviews;
      assert.equal((await post(GOOD, 'node-c')).status, 200);
      assert.equal(reviews, before);
      // An older cluster names the pod only: its node is read from the pod.
      const old = await post(OLD, 'node-b');
      assert.equal(old.status, 200, old.text);
      assert.equal((await call(url, `/api/alerts/${old.json.ids[0]}`, { token: OPERATOR })).json.hostname, 'node-9');
      for (const [t, what] of [[OTHER_SA, 'another ServiceAccount'], [WRONG_AUD, 'another audience'], [REJECTED, 'a token the API server rejects'], ['not-a-jwt-0123456789abcdef', 'no JWT']] as const) {
        assert.equal((await post(t, 'node-7')).status, 401, what);
      }
      down = true;
      const fresh = jwt('fresh');
      answers[fresh] = answers[GOOD];
      const unavailable = await post(fresh, 'node-7');
      assert.equal(unavailable.status, 503, 'the API server could not answer: retry later');
      down = false;
      assert.equal((await post(fresh, 'node-7')).status, 200, 'not cached while the API server was down');
      assert.equal((await stored(url, 'host=node-b')).length, 0);
    } finally {
      await server.stop();
      await api.close();
    }
  });
});
