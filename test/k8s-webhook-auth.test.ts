/**
 * Who may post to /k8s-audit and /admission (issue 13, items 2 and 6), on real fastify servers on
 * loopback: each route takes its own token, else web.token, and never runs open unless admission is
 * explicitly allowed to; the token and the per-client cap are checked before a body is read (a
 * request that never sends its body is still answered); bodies are limited to what an
 * AdmissionReview can be.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { test } from 'node:test';
import { type K8sConfig, k8sSection } from '../src/config/k8s.js';
import { admissionListener } from '../src/k8s/admission-server.js';
import { k8sAdmissionRoutes, k8sRoutes } from '../src/k8s/routes.js';
import { WebhookAuthError, admissionAuthStatus } from '../src/k8s/webhook-auth.js';
import { postReview } from './helpers/admission-flood.js';
import { HOOK_AUTH, HOOK_TOKEN, fixtureText, post, serve, serveAdmission } from './helpers/k8s.js';
import { FIXTURES } from './helpers/paths.js';

const section = (k8s: Record<string, unknown>): Pick<K8sConfig, 'audit' | 'admission'> => k8sSection.parse(k8s);
const auditBody = fixtureText('audit/deployment-metal3d-xmrig.json');
const review = fixtureText('admission/deployment-nginx-with-limits.json');

test('k8sRoutes: /k8s-audit takes its own token, else web.token; with neither it refuses to mount, naming the keys', async (t) => {
  const own = await serve(...k8sRoutes(section({ audit: { enabled: true, token: 'audit-own-token' } }), { sink: () => true, webToken: 'the-web-token-0123' }));
  t.after(() => own.app.close());
  assert.equal((await post(`${own.url}/k8s-audit`, auditBody, { authorization: 'Bearer audit-own-token' })).status, 200);
  const wrong = await post(`${own.url}/k8s-audit`, auditBody, { authorization: 'Bearer the-web-token-0123' });
  assert.equal(wrong.status, 401, 'its own token, when set, is the only one');
  assert.match(wrong.json.error, /k8s\.audit\.token/);

  const viaWeb = await serve(...k8sRoutes(section({ audit: { enabled: true } }), { sink: () => true, webToken: 'the-web-token-0123' }));
  t.after(() => viaWeb.app.close());
  const none = await post(`${viaWeb.url}/k8s-audit`, auditBody);
  assert.equal(none.status, 401, 'no longer open when only web.token is set (the issue\'s forged event)');
  assert.match(none.json.error, /web\.token/);
  assert.equal((await post(`${viaWeb.url}/k8s-audit`, auditBody, { authorization: 'Bearer the-web-token-0123' })).status, 200);

  assert.throws(() => k8sRoutes(section({ audit: { enabled: true } }), { sink: () => true }), (e: unknown) =>
    e instanceof WebhookAuthError && /k8s\.audit\.token_file/.test(e.message) && /web\.token/.test(e.message) && /--audit-webhook-config-file/.test(e.message));
});

test('k8sRoutes: /admission takes its own token, else web.token; runs without one only when allow_unauthenticated says so', async (t) => {
  const viaWeb = await serve(...k8sRoutes(section({ admission: { enabled: true } }), { sink: () => true, webToken: 'the-web-token-0123' }));
  t.after(() => viaWeb.app.close());
  assert.equal((await post(`${viaWeb.url}/admission`, review)).status, 401);
  assert.equal((await post(`${viaWeb.url}/admission`, review, { authorization: 'Bearer the-web-token-0123' })).status, 200);

  const own = await serve(...k8sRoutes(section({ admission: { enabled: true, token: 'adm-token' } }), { sink: () => true, webToken: 'the-web-token-0123' }));
  t.after(() => own.app.close());
  assert.equal((await post(`${own.url}/admission`, review, { authorization: 'Bearer the-web-token-0123' })).status, 401);
  assert.equal((await post(`${own.url}/admission`, review, { authorization: 'Bearer adm-token' })).status, 200);

  assert.throws(() => k8sRoutes(section({ admission: { enabled: true } }), { sink: () => true }), (e: unknown) =>
    e instanceof WebhookAuthError && /k8s\.admission\.token_file/.test(e.message) && /allow_unauthenticated/.test(e.message) && /NetworkPolicy/.test(e.message));

  const open = await serve(...k8sRoutes(section({ admission: { enabled: true, allow_unauthenticated: true } }), { sink: () => true, webToken: 'the-web-token-0123' }));
  t.after(() => open.app.close());
  const r = await post(`${open.url}/admission`, review);
  assert.deepEqual([r.status, r.json.response.allowed], [200, true], 'explicitly unauthenticated: the API server of a managed cluster sends nothing');
  assert.throws(() => section({ admission: { enabled: true, allow_unauthenticated: true, token: 'x' } }), /allow_unauthenticated with a token/);
});

test('admissionAuthStatus (for `minewatch doctor`): says when admission runs unauthenticated, and never throws', () => {
  assert.deepEqual(admissionAuthStatus({}), { enabled: false, unauthenticated: false, message: 'admission webhook off (k8s.admission.enabled: false)' });
  const open = admissionAuthStatus({ k8s: { admission: { enabled: true, allow_unauthenticated: true } }, web: { token_file: '/nonexistent' } });
  assert.equal(open.unauthenticated, true);
  assert.match(open.message, /anyone who reaches its port/);
  assert.equal(admissionAuthStatus({ k8s: { admission: { enabled: true, token_file: '/nonexistent' } } }).unauthenticated, false);
  assert.match(admissionAuthStatus({ k8s: { admission: { enabled: true } }, web: { token: 'x'.repeat(16) } }).message, /web\.token/);
  assert.match(admissionAuthStatus({ k8s: { admission: { enabled: true } } }).message, /will not start/);
});

/**
 * Send the headers of a POST announcing a body of `length` bytes, from `localAddress`, and never the
 * body: resolves with the status if the server answers anyway. A check that waited for the body
 * would never answer; the test's own timeout then fails it.
 */
function headersOnly(url: string, length: number | 'chunked', headers: Record<string, string>, localAddress = '127.0.0.1'): { status: Promise<number>; abort(): void } {
  const u = new URL(url);
  const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', localAddress, agent: false, headers: { 'content-type': 'application/json', ...(length === 'chunked' ? {} : { 'content-length': String(length) }), ...headers } });
  let aborted = false;
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    // An abort of our own is no failure: -1.
    req.on('error', (e) => (aborted ? resolve(-1) : reject(e)));
  });
  req.flushHeaders();
  return { status, abort: () => ((aborted = true), req.destroy()) };
}

test('admission: no token → 401, an oversized body → 413, no Content-Length → 411, all before a byte of the body is read', { timeout: 20_000 }, async (t) => {
  const { app, url } = await serveAdmission();
  t.after(() => app.close());
  const noToken = headersOnly(`${url}/admission`, 10_000_000, {});
  assert.equal(await noToken.status, 401);
  noToken.abort();
  // Within the 3 MiB default, but no token: still 401 without the body.
  const small = headersOnly(`${url}/admission`, 1000, {});
  assert.equal(await small.status, 401);
  small.abort();
  const big = headersOnly(`${url}/admission`, 10_000_000, HOOK_AUTH);
  assert.equal(await big.status, 413, 'the default limit (3 MiB) refuses 10 MB from its Content-Length');
  big.abort();
  const chunked = headersOnly(`${url}/admission`, 'chunked', HOOK_AUTH);
  assert.equal(await chunked.status, 411, 'a body of unknown length is refused before it is read');
  chunked.abort();
  // A real review at the limit's edge still passes.
  const padded = JSON.stringify({ ...JSON.parse(review), pad: 'x'.repeat(3 * 1024 * 1024 - review.length - 100) });
  const r = await post(`${url}/admission`, padded, HOOK_AUTH);
  assert.equal(r.status, 200);
});

test('admission: past max_in_flight_per_client a client gets 429 while another address is still answered', { timeout: 20_000 }, async (t) => {
  const { app, url } = await serveAdmission({ maxInFlightPerClient: 3 });
  t.after(() => app.close());
  // Three reviews from 127.0.0.2 whose bodies never come: they hold its three slots.
  const held = [0, 1, 2].map(() => headersOnly(`${url}/admission`, 5000, HOOK_AUTH, '127.0.0.2'));
  await new Promise((r) => setTimeout(r, 200));
  const fourth = headersOnly(`${url}/admission`, 5000, HOOK_AUTH, '127.0.0.2');
  assert.equal(await fourth.status, 429);
  fourth.abort();
  // Another client (the API server) is not turned away.
  const other = await postReview(url, review, HOOK_TOKEN, '127.0.0.3');
  assert.equal(other.status, 200);
  assert.equal(other.json.response?.allowed, true);
  // The slots come back when the held requests go away.
  for (const h of held) h.abort();
  let status = 0;
  for (let i = 0; i < 100 && status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 20));
    status = (await postReview(url, review, HOOK_TOKEN, '127.0.0.2')).status;
  }
  assert.equal(status, 200, 'a client whose requests ended gets its slots back');
});

test('admission mTLS (k8s.admission.client_ca_file on its own listener): a certificate the CA signed, with an accepted name, passes; a stranger\'s or none gets 401 unless the token comes', { timeout: 30_000 }, async (t) => {
  const TLS = `${FIXTURES}tls/`;
  const tls = { cert_file: `${TLS}cert.pem`, key_file: `${TLS}key.pem` };
  const pem = (f: string) => readFileSync(`${TLS}${f}`);
  const start = async (admission: Record<string, unknown>) => {
    const cfg = section({ admission: { enabled: true, listen: '127.0.0.1:0', client_ca_file: `${TLS}webhook-client-ca.pem`, ...admission } });
    const l = admissionListener({ listen: cfg.admission.listen!, tls, clientCaFile: cfg.admission.client_ca_file, routes: k8sAdmissionRoutes(cfg, { sink: () => true, webToken: 'the-web-token-0123' }) });
    const url = await l.start();
    t.after(() => l.close());
    return url;
  };
  const post = (url: string, client?: 'webhook-client' | 'webhook-stranger', headers: Record<string, string> = {}) => new Promise<number>((resolve, reject) => {
    const u = new URL('/admission', url);
    const req = httpsRequest({
      host: u.hostname, port: u.port, path: u.pathname, method: 'POST', ca: pem('cert.pem'), agent: false,
      ...(client ? { cert: pem(`${client}.pem`), key: pem(`${client}-key.pem`) } : {}),
      headers: { 'content-type': 'application/json', ...headers },
    }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(review);
  });

  const named = await start({ client_names: ['kube-apiserver'] });
  assert.equal(await post(named, 'webhook-client'), 200, 'signed by the CA, CN kube-apiserver');
  assert.equal(await post(named, 'webhook-stranger'), 401, 'same CN, not signed by the CA');
  assert.equal(await post(named), 401, 'no certificate');
  assert.equal(await post(named, undefined, { authorization: 'Bearer the-web-token-0123' }), 401, 'web.token is not taken instead of a certificate');

  const otherName = await start({ client_names: ['someone-else'] });
  assert.equal(await post(otherName, 'webhook-client'), 401, 'signed, but not a name on the list');

  const either = await start({ token: 'adm-token' });
  assert.equal(await post(either, 'webhook-client'), 200, 'any name the CA signed');
  assert.equal(await post(either, undefined, { authorization: 'Bearer adm-token' }), 200, 'or the token');
  assert.equal(await post(either), 401);

  assert.throws(() => section({ admission: { enabled: true, client_ca_file: `${TLS}webhook-client-ca.pem` } }), /client_ca_file needs listen/);
  assert.throws(() => admissionListener({ listen: '127.0.0.1:0', clientCaFile: `${TLS}webhook-client-ca.pem`, routes: async () => undefined }), /client certificates need TLS: set web\.tls/);
  assert.match(admissionAuthStatus({ k8s: { admission: { enabled: true, client_ca_file: '/etc/ca.pem' } } }).message, /client certificate signed by \/etc\/ca\.pem/);
});
