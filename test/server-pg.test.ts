/**
 * `minewatch server` on the PostgreSQL store (alerts.store.url), as real processes against a real
 * PostgreSQL: `server migrate` alone (--json, again a no-op, a bad URL named), and two server
 * replicas on one database: an agent's group posted to one is on the other's dashboard stream
 * (LISTEN/NOTIFY) and API, a redelivery changes nothing, and the webhook output gets each message
 * once across both replicas, with the group's uuid and kind as its Idempotency-Key.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentRun, writeConfig } from './helpers/agent-run.js';
import { runCli } from './helpers/cli.js';
import { postgresUnavailable, startPostgres, type Postgres } from './helpers/postgres.js';
import { call, falcoAlert, openStream } from './helpers/web.js';
import { MIGRATIONS } from '../src/alerts/pg/migrations.js';

const skip = postgresUnavailable();
const OPERATOR = 'operator-token-0123456789abcdef';

describe('minewatch server on PostgreSQL', { skip }, () => {
  let pg: Postgres;
  const dir = mkdtempSync(join(tmpdir(), 'mw-server-pg-'));
  const runs: AgentRun[] = [];
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    for (const r of runs) r.kill();
    await pg?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('server migrate applies every migration once, then none; --json; a wrong URL is named', async () => {
    const url = await pg.newDatabase();
    const help = runCli(['server', 'migrate', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /--url <postgres-url>/);
    const first = runCli(['server', 'migrate', '--url', url, '--json']);
    assert.equal(first.code, 0, first.err);
    const r = JSON.parse(first.out);
    assert.equal(r.from, 0);
    assert.deepEqual(r.applied.map((m: { version: number }) => m.version), MIGRATIONS.map((m) => m.version));
    assert.match(first.err, /applying 1: /, 'progress on stderr');
    const again = runCli(['server', 'migrate', '--url', url]);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /nothing to apply: the schema is current/);
    const bad = runCli(['server', 'migrate', '--url', 'postgres://nobody:secret@127.0.0.1:1/none']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /cannot connect to postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:1\/none/);
    assert.ok(!bad.err.includes('secret'), 'the password is not printed');
    const none = runCli(['server', 'migrate']);
    assert.equal(none.code, 2);
    assert.match(none.err, /set alerts\.store\.url/);
  });

  it('two replicas share one store: the stream of one shows the other\'s writes, a redelivery changes nothing, each webhook delivery is made once', { timeout: 120_000 }, async () => {
    const url = await pg.newDatabase();
    const got: { key: string | undefined; body: any }[] = [];
    const hook = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        got.push({ key: req.headers['idempotency-key'] as string | undefined, body: JSON.parse(body) });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    try {
      const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
      const cfg = writeConfig(join(dir, 'server.yaml'), {
        alerts: { store: { url } },
        outputs: { stdout: { enabled: false }, webhook: { enabled: true, url: hookUrl } },
        web: { token: OPERATOR },
      });
      const a = new AgentRun(cfg, { command: 'server' });
      const b = new AgentRun(cfg, { command: 'server' });
      runs.push(a, b);
      const [urlA, urlB] = await Promise.all([a.webUrl(), b.webUrl()]);
      const stream = await openStream(urlB, OPERATOR);

      const uuid = '6f1c2a4e-0d8b-4c1e-9a57-3b2f1e0c9d18';
      const at = Date.now();
      const first = { ...falcoAlert({ host: 'node-7', at }), minewatch: { uuid, kind: 'first', count: 1, first_seen: new Date(at).toISOString(), last_seen: new Date(at).toISOString() } };
      const r1 = await call(urlA, '/', { token: OPERATOR, body: first });
      assert.equal(r1.status, 200, r1.text + JSON.stringify(a.logs.filter((l) => l.level >= 40)));
      const seen = await stream.next((e) => e.event === 'alert', 15_000);
      assert.equal((seen.data as any).change, 'new');
      assert.equal((seen.data as any).alert.uuid, uuid, 'replica B streams what replica A stored');

      // The same first message again, to the other replica: nothing changes.
      const r2 = await call(urlB, '/', { token: OPERATOR, body: first });
      assert.equal(r2.status, 200, r2.text);
      const summary = { ...first, minewatch: { ...first.minewatch, kind: 'summary', count: 12, last_seen: new Date(at + 60_000).toISOString() } };
      assert.equal((await call(urlB, '/', { token: OPERATOR, body: summary })).status, 200);
      assert.equal((await call(urlA, '/', { token: OPERATOR, body: summary })).status, 200, 'the summary redelivered');
      const upd = await stream.next((e) => e.event === 'alert' && (e.data as any).change === 'update', 15_000);
      assert.equal((upd.data as any).alert.count, 12);

      for (const u of [urlA, urlB]) {
        const list = await call(u, '/api/alerts', { token: OPERATOR });
        assert.equal(list.json.alerts.length, 1, 'one group in either replica\'s view');
        assert.equal(list.json.alerts[0].count, 12);
        const stats = await call(u, `/api/stats?from=${at - 3_600_000}`, { token: OPERATOR });
        assert.equal(stats.json.groups, 1);
        assert.equal(stats.json.matches, 12);
      }

      // Both replicas run a webhook worker on the shared queue: the first and the summary arrive
      // once each, keyed by the group's uuid and kind.
      const deadline = Date.now() + 30_000;
      while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 1500)); // a second copy would have come by now
      assert.deepEqual(got.map((g) => g.key).sort(), [`${uuid}:first`, `${uuid}:summary`]);
      assert.equal(got.find((g) => g.key === `${uuid}:summary`)!.body.minewatch.count, 12);
      stream.close();
    } finally {
      hook.close();
    }
  });
});
