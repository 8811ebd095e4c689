/**
 * The web server on loopback: who may call what (tokens, metrics token, open health), the alert
 * inputs (valid, arrays, malformed, oversized — and the server still answering after), /metrics,
 * TLS, the `web` config section, and other modules' routes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { createWebServer, webServerOptions, WebConfigError } from '../src/web/server.js';
import type { Output } from '../src/alerts/types.js';
import { PairCounter } from '../src/platform/pair-counter.js';
import { call, falcoAlert, newAlertService, openStream, startWeb, type Running } from './helpers/web.js';
import { FIXTURES } from './helpers/paths.js';

const TOKEN = 'test-token-0123456789abcdef';
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

describe('auth', () => {
  let open: Running;
  let guarded: Running;
  before(async () => {
    open = await startWeb();
    guarded = await startWeb({ token: TOKEN, metricsToken: METRICS_TOKEN });
  });
  after(async () => {
    await open.close();
    await guarded.close();
  });

  // The library alone (tests, benches) may run open on loopback; `minewatch run` and `server`
  // always give it a token (web.token or <state>/token): test/web-hardening.test.ts.
  test('the library on loopback without a token is open (the agent and server never run it so)', async () => {
    assert.equal((await call(open.url, '/api/alerts')).status, 200);
    assert.equal((await call(open.url, '/', { body: falcoAlert() })).status, 200);
    assert.equal((await call(open.url, '/metrics')).status, 200);
  });

  test('/healthz answers as Falco does, and stays open when a token is set', async () => {
    for (const r of [await call(open.url, '/healthz'), await call(guarded.url, '/healthz')]) {
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, { status: 'ok' });
      assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    }
  });

  test('with a token, the API, the stream and the inputs need it', async () => {
    for (const [path, body] of [['/api/alerts', undefined], ['/api/stats', undefined], ['/api/alerts/1', undefined], ['/api/stream', undefined], ['/', falcoAlert()], ['/falco', falcoAlert()]] as const) {
      const none = await call(guarded.url, path, { body });
      assert.equal(none.status, 401, `${path} without a token`);
      assert.match(none.json.error, /Authorization: Bearer/);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="minewatch"');
      assert.equal((await call(guarded.url, path, { body, token: 'wrong-token-0123456789abcdef' })).status, 401, `${path} with a wrong token`);
      assert.equal((await call(guarded.url, path, { body, token: TOKEN.slice(0, -1) })).status, 401, `${path} with a prefix of the token`);
      assert.equal((await call(guarded.url, path, { body, token: METRICS_TOKEN })).status, 401, `${path} with the metrics token`);
    }
    assert.equal((await call(guarded.url, '/api/alerts', { token: TOKEN })).status, 200);
    assert.equal((await call(guarded.url, '/', { token: TOKEN, body: falcoAlert() })).status, 200);
    const lower = await call(guarded.url, '/api/alerts', { headers: { authorization: `bearer ${TOKEN}` } });
    assert.equal(lower.status, 200, 'the scheme is case-insensitive');
    assert.equal((await call(guarded.url, '/api/alerts', { headers: { authorization: `Token ${TOKEN}` } })).status, 401);
    // Falco's http_output cannot add headers; it sends its URL's user and password (Basic).
    const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });
    assert.equal((await call(guarded.url, '/falco', { headers: basic('falco', TOKEN), body: falcoAlert() })).status, 200);
    assert.equal((await call(guarded.url, '/falco', { headers: basic('falco', 'wrong-token-0123456789abcdef'), body: falcoAlert() })).status, 401);
    assert.equal((await call(guarded.url, '/falco', { headers: basic(TOKEN, ''), body: falcoAlert() })).status, 401, 'the token is the password, not the user');
  });

  test('an unknown path asks for the token before saying it does not exist', async () => {
    assert.equal((await call(guarded.url, '/nope')).status, 401);
    const r = await call(guarded.url, '/nope', { token: TOKEN });
    assert.equal(r.status, 404);
    assert.match(r.json.error, /no route GET \/nope/);
  });

  test('/metrics needs the metrics token when one is set, and only that one', async () => {
    assert.equal((await call(guarded.url, '/metrics')).status, 401);
    assert.equal((await call(guarded.url, '/metrics', { token: TOKEN })).status, 401);
    const ok = await call(guarded.url, '/metrics', { token: METRICS_TOKEN });
    assert.equal(ok.status, 200);
    assert.match(ok.text, /minewatch_alerts_total/);
  });

  test('the dashboard page itself is open (it holds no data); its data is not', async () => {
    const page = await call(guarded.url, '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>minewatch alerts<\/title>/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const js = await call(guarded.url, '/ui/app.js');
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /text\/javascript/);
    assert.equal((await call(guarded.url, '/ui/..%2Fpackage.json')).status, 404);
    assert.equal((await call(guarded.url, '/ui/nope.js')).status, 404);
  });

  test('listening beyond loopback without a token is refused at start, with a token it is allowed', () => {
    assert.throws(() => createWebServer({ listen: '0.0.0.0:8788' }), (e: Error) => e instanceof WebConfigError && /web\.listen: listening on 0\.0\.0\.0:8788 \(beyond loopback\) needs a token/.test(e.message));
    assert.throws(() => createWebServer({ listen: '[::]:0' }), WebConfigError);
    assert.throws(() => createWebServer({ listen: 'example.org:80' }), /not an IP address/);
    // Constructed only: tests never listen beyond loopback.
    const s = createWebServer({ listen: '0.0.0.0:0', token: TOKEN });
    void s.close();
  });

  test('routes of other modules: `own` skips the check, a route that says nothing needs the token', async () => {
    const server = createWebServer({ listen: '127.0.0.1:0', token: TOKEN });
    server.register(async (app) => {
      app.post('/webhooks/github', { config: { auth: 'own' } }, async () => ({ ok: 'own' }));
      app.get('/plain', async () => ({ ok: 'plain' }));
    });
    const url = await server.start();
    try {
      assert.equal((await call(url, '/webhooks/github', { body: {} })).status, 200);
      assert.equal((await call(url, '/plain')).status, 401);
      assert.equal((await call(url, '/plain', { token: TOKEN })).status, 200);
      assert.throws(() => server.register(async () => {}), /after start/);
    } finally {
      await server.close();
    }
  });
});

describe('alert inputs', () => {
  let web: Running;
  before(async () => {
    web = await startWeb({ maxBodyBytes: 64 * 1024 });
  });
  after(() => web.close());

  const stored = async (): Promise<{ rule: string; hostname: string }[]> => (await call(web.url, '/api/alerts?limit=1000')).json.alerts;

  test('one Falco alert on POST / is stored with its fields', async () => {
    const a = falcoAlert({ rule: 'Input One', host: 'node-in-1' });
    const r = await call(web.url, '/', { body: a });
    assert.equal(r.status, 200);
    assert.equal(r.json.accepted, 1);
    const got = await call(web.url, `/api/alerts/${r.json.ids[0]}`);
    assert.equal(got.json.rule, 'Input One');
    assert.equal(got.json.priority, 'Critical');
    assert.equal(got.json.hostname, 'node-in-1');
    assert.deepEqual(got.json.output_fields, a.output_fields);
    assert.equal(got.json.namespace, 'default');
  });

  test('an array on POST /falco stores every alert', async () => {
    const batch = [0, 1, 2].map((i) => falcoAlert({ rule: 'Input Batch', host: `node-batch-${i}` }));
    const r = await call(web.url, '/falco', { body: batch });
    assert.equal(r.status, 200);
    assert.equal(r.json.accepted, 3);
    assert.equal((await stored()).filter((a) => a.rule === 'Input Batch').length, 3);
  });

  test('malformed input is answered 400 naming the fault, and nothing of it is stored', async () => {
    const before = (await stored()).length;
    const cases: [string | unknown, RegExp][] = [
      ['{"rule": "x", ', /body is not valid JSON/],
      ['', /body is not valid JSON/],
      ['"just a string"', /body: a text alert; .* set json_output: true/],
      ['17', /body: expected a Falco JSON alert/],
      [[], /empty array/],
      [{ ...falcoAlert(), rule: undefined }, /body\.rule: missing/],
      [{ ...falcoAlert(), priority: 'Urgent' }, /body\.priority: 'Urgent' is not a priority/],
      [{ ...falcoAlert(), time: 'yesterday' }, /body\.time: 'yesterday' is not an ISO 8601 time/],
      [{ ...falcoAlert(), output_fields: 'x' }, /body\.output_fields: expected an object/],
      [{ ...falcoAlert(), tags: [1] }, /body\.tags: expected an array of strings/],
      [[falcoAlert({ rule: 'Never Stored' }), { ...falcoAlert(), rule: 7 }], /body\[1\]\.rule: expected a string, got number/],
    ];
    for (const [body, why] of cases) {
      const r = await call(web.url, '/', { body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 400, `${String(body).slice(0, 40)} → ${r.text}`);
      assert.match(r.json.error, why);
    }
    // Falco with json_output: false posts its text lines as text/plain.
    const text = await call(web.url, '/', { body: '20:16:35.123456789: Critical Miner started', headers: { 'content-type': 'text/plain' } });
    assert.equal(text.status, 400);
    assert.match(text.json.error, /json_output: true/);
    const nonJson = await call(web.url, '/', { body: 'rule=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(nonJson.status, 415);
    assert.match(nonJson.json.error, /application\/json/);
    assert.equal((await stored()).length, before);
    assert.equal((await stored()).some((a) => a.rule === 'Never Stored'), false);
  });

  test('an oversized body is answered 413, and the server keeps answering', async () => {
    const big = falcoAlert({ fields: { 'proc.cmdline': 'x'.repeat(70 * 1024) } });
    const r = await call(web.url, '/', { body: big });
    assert.equal(r.status, 413);
    assert.match(r.json.error, /larger than 65536 bytes \(web\.max_body_bytes\)/);
    assert.equal((await call(web.url, '/healthz')).status, 200);
    const ok = await call(web.url, '/', { body: falcoAlert({ rule: 'After Oversized' }) });
    assert.equal(ok.status, 200);
    assert.ok((await stored()).some((a) => a.rule === 'After Oversized'));
  });

  test('Falco alerts without the optional keys (json_include_* off) are accepted', async () => {
    const { rule, priority, time } = falcoAlert({ rule: 'Bare Alert' });
    const r = await call(web.url, '/', { body: { rule, priority, time } });
    assert.equal(r.status, 200);
    const got = await call(web.url, `/api/alerts/${r.json.ids[0]}`);
    assert.equal(got.json.rule, 'Bare Alert');
    assert.equal(got.json.source, 'syscall');
  });
});

describe('/metrics', () => {
  test('reports alerts by rule and priority, events, drops, rules loaded and output delivery state', { timeout: 60_000 }, async () => {
    // A real pipeline with an output whose target is down: a queue that grows, failures counted.
    const down: Output = { name: 'webhook-down', send: async () => { throw new Error('connect ECONNREFUSED 127.0.0.1:9'); }, close: async () => {} };
    const alerts = newAlertService([down]);
    const events = new PairCounter();
    events.inc('syscall', 'execve', 40);
    events.inc('syscall', 'connect', 7);
    const web = await startWeb({
      alerts,
      metrics: {
        events: () => events.entries(),
        drops: () => [['queue', 3]],
        rulesLoaded: () => 12,
      },
    });
    try {
      await call(web.url, '/', { body: [falcoAlert({ rule: 'Metric Rule', priority: 'Warning', host: 'm1' }), falcoAlert({ rule: 'Metric Rule', priority: 'Warning', host: 'm2' })] });
      const r = await call(web.url, '/metrics');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /text\/plain/);
      assert.match(r.text, /^minewatch_alerts_total\{rule="Metric Rule",priority="Warning"\} 2$/m);
      assert.match(r.text, /^minewatch_events_total\{source="syscall",type="execve"\} 40$/m);
      assert.match(r.text, /^minewatch_events_total\{source="syscall",type="connect"\} 7$/m);
      assert.match(r.text, /^minewatch_events_dropped_total\{where="queue"\} 3$/m);
      assert.match(r.text, /^minewatch_rules_loaded 12$/m);
      while (alerts.outputStats()[0]!.failures === 0) await new Promise((r) => setTimeout(r, 10));
      events.inc('syscall', 'execve', 2);
      const m = await call(web.url, '/metrics');
      assert.match(m.text, /^minewatch_events_total\{source="syscall",type="execve"\} 42$/m, 'each scrape reads the counts afresh');
      assert.match(m.text, /^minewatch_output_queue_depth\{output="webhook-down"\} 2$/m);
      assert.match(m.text, /^minewatch_output_failures_total\{output="webhook-down"\} [1-9]\d*$/m);
      assert.match(m.text, /^minewatch_output_delivered_total\{output="webhook-down"\} 0$/m);
      for (const o of web.alerts.outputStats()) {
        assert.match(r.text, new RegExp(`^minewatch_output_queue_depth\\{output="${o.name}"\\} ${o.pending}$`, 'm'));
        assert.match(r.text, new RegExp(`^minewatch_output_failures_total\\{output="${o.name}"\\} ${o.failures}$`, 'm'));
      }
    } finally {
      await web.close();
      await alerts.close();
    }
  });
});

describe('TLS', () => {
  test('serves HTTPS with the configured certificate', async () => {
    const cfg = parseConfig(`web:\n  listen: 127.0.0.1:0\n  tls:\n    cert_file: ${FIXTURES}tls/cert.pem\n    key_file: ${FIXTURES}tls/key.pem\n`, 'web.yaml').config;
    const web = await startWeb(webServerOptions(cfg.web));
    try {
      assert.match(web.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        const req = request(`${web.url}/healthz`, { ca: readFileSync(`${FIXTURES}tls/cert.pem`) }, (res) => {
          let s = '';
          res.on('data', (c) => (s += c));
          res.on('end', () => resolve(s));
        });
        req.on('error', reject);
        req.end();
      });
      assert.deepEqual(JSON.parse(body), { status: 'ok' });
    } finally {
      await web.close();
    }
  });

  test('an unreadable certificate names the file and the key', () => {
    const cfg = parseConfig('web:\n  tls:\n    cert_file: /nonexistent/cert.pem\n    key_file: /nonexistent/key.pem\n', 'web.yaml').config;
    assert.throws(() => webServerOptions(cfg.web), /web\.tls\.cert_file: cannot read \/nonexistent\/cert\.pem: ENOENT/);
  });
});

describe('web config section', () => {
  test('defaults: loopback, 1 MiB bodies, no token', () => {
    const w = parseConfig('{}', 'x.yaml').config.web as Record<string, unknown>;
    assert.equal(w.listen, '127.0.0.1:8788');
    assert.equal(w.max_body_bytes, 1024 * 1024);
    assert.equal(w.token, undefined);
  });

  test('beyond loopback without a token is an error at the key, with file:line', () => {
    assert.throws(() => parseConfig('web:\n  listen: 0.0.0.0:8788\n', 'mw.yaml'), (e: Error) =>
      e instanceof ConfigError && /mw\.yaml:2:3: web\.listen: listening on 0\.0\.0\.0:8788 \(beyond loopback\) needs a token/.test(e.message));
    assert.doesNotThrow(() => parseConfig(`web:\n  listen: 0.0.0.0:8788\n  token: ${TOKEN}\n`, 'mw.yaml'));
  });

  test('bad values name their key', () => {
    assert.throws(() => parseConfig('web:\n  listen: nowhere\n', 'mw.yaml'), /web\.listen: 'nowhere' is not HOST:PORT/);
    assert.throws(() => parseConfig('web:\n  token: short\n', 'mw.yaml'), /web\.token: too short/);
    assert.throws(() => parseConfig(`web:\n  token: ${TOKEN}\n  token_file: /x\n`, 'mw.yaml'), /web\.token_file: give token or token_file, not both/);
    assert.throws(() => parseConfig('web:\n  listn: 1\n', 'mw.yaml'), /web\.listn: unknown key/);
  });

  test('token_file: read at start (trimmed); a missing or short file names itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-web-'));
    try {
      writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
      const cfg = parseConfig(`web:\n  listen: 127.0.0.1:0\n  token_file: ${dir}/token\n`, 'mw.yaml').config;
      const web = await startWeb(webServerOptions(cfg.web));
      try {
        assert.equal((await call(web.url, '/api/alerts')).status, 401);
        assert.equal((await call(web.url, '/api/alerts', { token: TOKEN })).status, 200);
      } finally {
        await web.close();
      }
      const missing = parseConfig(`web:\n  token_file: ${dir}/nope\n`, 'mw.yaml').config;
      assert.throws(() => webServerOptions(missing.web), new RegExp(`web\\.token_file: cannot read ${dir}/nope: ENOENT`));
      writeFileSync(join(dir, 'short'), 'abc\n');
      const short = parseConfig(`web:\n  token_file: ${dir}/short\n`, 'mw.yaml').config;
      assert.throws(() => webServerOptions(short.web), /holds a token shorter than 16 characters/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('closing', () => {
  test('close() ends open streams instead of waiting for them', async () => {
    const web = await startWeb();
    const stream = await openStream(web.url);
    await web.close();
    await assert.rejects(stream.next(() => true), /stream ended/);
  });
});
