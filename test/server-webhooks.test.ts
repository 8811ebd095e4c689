/**
 * `minewatch server` as the cluster's webhook endpoint (the Helm chart's layout): the API server's
 * audit webhook and the admission webhook land on it, the engine runs there on what they feed it,
 * and the alerts are in its store and API.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AgentRun, randomToken, writeConfig } from './helpers/agent-run.js';
import { FIXTURES } from './helpers/paths.js';
import { until } from './helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'mw-server-hooks-'));
const runs: AgentRun[] = [];
after(() => {
  for (const r of runs) r.kill();
  rmSync(dir, { recursive: true, force: true });
});

const fixture = (p: string): unknown => JSON.parse(readFileSync(join(FIXTURES, 'k8s', p), 'utf8'));

/** `minewatch server` on this config (stdout output off), killed after the file's tests. */
function startServer(file: string, config: Record<string, unknown>): AgentRun {
  const server = new AgentRun(writeConfig(join(dir, file), { outputs: { stdout: { enabled: false } }, ...config }), { command: 'server' });
  runs.push(server);
  return server;
}


describe('minewatch server: k8s audit and admission webhooks', () => {
  it('a miner Deployment through the audit webhook is an alert in the server store; admission in enforce denies it and records the decision', async () => {
    const token = randomToken(16);
    const auditToken = randomToken(16);
    const server = startServer('server.yaml', {
      web: { token },
      k8s: { audit: { enabled: true, token: auditToken }, admission: { enabled: true, mode: 'enforce' } },
      github: { enabled: true, secret: randomToken(16) },
    });
    const base = await server.webUrl();
    const auth = { authorization: `Bearer ${token}` };

    const post = (path: string, body: unknown, headers: Record<string, string>) =>
      fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    assert.equal((await post('/k8s-audit', fixture('audit/deployment-metal3d-xmrig.json'), {})).status, 401);
    assert.equal((await post('/k8s-audit', fixture('audit/deployment-metal3d-xmrig.json'), { authorization: `Bearer ${auditToken}` })).status, 200);
    let alert: any;
    await until(async () => {
      const r = await fetch(`${base}/api/alerts?source=k8s_audit`, { headers: auth });
      alert = ((await r.json()) as { alerts: any[] }).alerts.find((a) => a.rule === 'K8s Workload With Miner Image');
      return alert !== undefined;
    });
    assert.equal(alert.source, 'k8s_audit');
    assert.match(alert.output, /metal3d\/xmrig/);

    // No token of its own: the admission webhook takes web.token, and never runs open.
    assert.equal((await post('/admission', fixture('admission/pod-kubectl-run-miner.json'), {})).status, 401);
    const review = await (await post('/admission', fixture('admission/pod-kubectl-run-miner.json'), auth)).json() as { response: { allowed: boolean; status?: { message?: string } } };
    assert.equal(review.response.allowed, false);
    assert.match(review.response.status?.message ?? '', /miner/i);
    await until(async () => {
      const r = await fetch(`${base}/api/alerts?rule=${encodeURIComponent('K8s Workload Runs Miner Command')}`, { headers: auth });
      return ((await r.json()) as { alerts: unknown[] }).alerts.length > 0;
    });
    // The GitHub webhook is mounted too, and refuses what is not signed with its secret.
    assert.equal((await post('/github', { zen: 'hi' }, { 'x-github-event': 'ping', 'x-github-delivery': 'd-1' })).status, 401);
    const ok = await (await post('/admission', fixture('admission/deployment-nginx-with-limits.json'), auth)).json() as { response: { allowed: boolean } };
    assert.equal(ok.response.allowed, true);
    await server.stop();
  });

  it('admission on a port of its own (k8s.admission.listen) with its own token; unauthenticated only when asked, with a warning in the log', async () => {
    const admToken = randomToken(16);
    const webToken = randomToken(16);
    const server = startServer('server-adm.yaml', {
      web: { token: webToken },
      k8s: { admission: { enabled: true, mode: 'enforce', listen: '127.0.0.1:0', token: admToken } },
    });
    const base = await server.webUrl();
    const adm = (await server.waitLog((l) => l.msg === 'admission webhook listening', 20_000, 'admission listener')).url as string;
    assert.notEqual(adm, base);
    const post = (url: string, headers: Record<string, string>) =>
      fetch(`${url}/admission`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(fixture('admission/pod-kubectl-run-miner.json')) });
    assert.equal((await post(base, { authorization: `Bearer ${webToken}` })).status, 404, 'not on the web server\'s port');
    assert.equal((await post(adm, {})).status, 401);
    const r = await post(adm, { authorization: `Bearer ${admToken}` });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { response: { allowed: boolean } }).response.allowed, false);
    assert.equal((await fetch(`${adm}/api/alerts`)).status, 404, 'the admission port serves /admission only');
    assert.ok(!server.logs.some((l) => /UNAUTHENTICATED|takes reviews with no credential/.test(String(l.msg))));
    await server.stop();

    const open = startServer('server-adm-open.yaml', {
      web: { token: randomToken(16) },
      k8s: { admission: { enabled: true, listen: '127.0.0.1:0', allow_unauthenticated: true } },
    });
    await open.webUrl();
    const warned = await open.waitLog((l) => /takes reviews with no credential/.test(String(l.msg)), 20_000, 'the unauthenticated warning');
    assert.equal(warned.level, 40, 'a warning');
    const openAdm = (await open.waitLog((l) => l.msg === 'admission webhook listening', 20_000, 'admission listener')).url as string;
    assert.equal((await post(openAdm, {})).status, 200);
    await open.stop();
  });

  it('refuses to start when /k8s-audit or /admission would run open, naming the keys to set', async () => {
    for (const [name, k8s, key] of [
      ['audit', { audit: { enabled: true } }, /k8s\.audit\.token_file/],
      ['admission', { admission: { enabled: true } }, /k8s\.admission\.token_file .*allow_unauthenticated/],
    ] as const) {
      const server = startServer(`server-open-${name}.yaml`, { k8s });
      const exit = await server.exited;
      assert.equal(exit.code, 1, `${name}: exit status`);
      assert.match(server.rawErr.join('\n') + server.tail(), key);
    }
  });
});
