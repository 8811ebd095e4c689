/**
 * The HTTP outputs against a real loopback server: webhook (Falco JSON, custom headers, bearer
 * token or token file), Slack (incoming-webhook message) and falcosidekick (POST to url + "/").
 * 2xx is accepted; 4xx refused for good (PermanentDeliveryError) except 408/429; 5xx, a closed
 * port and a server that never answers fail the send promptly so the queue retries.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FalcosidekickOutput } from '../src/alerts/outputs/falcosidekick.js';
import { SlackOutput, slackMessage } from '../src/alerts/outputs/slack.js';
import { WebhookOutput } from '../src/alerts/outputs/webhook.js';
import { PermanentDeliveryError } from '../src/alerts/types.js';
import { Receiver, alertMessage } from './helpers/alerts.js';
import { eventually } from './helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'mw-http-outputs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const isPermanent = (e: unknown): boolean => e instanceof PermanentDeliveryError;

test('webhook: POSTs the Falco JSON with custom headers and a bearer token', async (t) => {
  const rx = await new Receiver().listen();
  t.after(() => rx.close());
  const o = new WebhookOutput({ name: 'webhook', url: `${rx.url}/hooks/falco?team=sec`, headers: { 'X-Team': 'sec' }, timeoutMs: 2000, token: 's3cret' });
  t.after(() => o.close());
  const msg = alertMessage();
  await o.send(msg);
  const r = await rx.nth(1);
  assert.equal(r.method, 'POST');
  assert.equal(r.url, '/hooks/falco?team=sec');
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers['x-team'], 'sec');
  assert.equal(r.headers.authorization, 'Bearer s3cret');
  assert.match(String(r.headers['user-agent']), /^minewatch\//);
  assert.deepEqual(JSON.parse(r.body), msg);
});

test('webhook: 400/401/404 are refused for good; 500, 503 and 429 are retried', async (t) => {
  const rx = await new Receiver().listen();
  t.after(() => rx.close());
  const o = new WebhookOutput({ name: 'webhook', url: rx.url, headers: {}, timeoutMs: 2000 });
  t.after(() => o.close());
  for (const status of [400, 401, 404]) {
    rx.status = status;
    rx.answer = `nope ${status}`;
    await assert.rejects(o.send(alertMessage()), (e: Error) => isPermanent(e) && e.message.includes(`outputs.webhook: ${rx.url}/ answered ${status}`) && e.message.includes(`nope ${status}`), `status ${status}`);
  }
  for (const status of [500, 503, 429]) {
    rx.status = status;
    await assert.rejects(o.send(alertMessage()), (e: Error) => !isPermanent(e) && e.message.includes(`answered ${status}`), `status ${status}`);
  }
  rx.status = 204;
  await o.send(alertMessage());
  assert.equal(rx.requests.length, 7);
});

const httpOutputs: [string, (url: string, timeoutMs: number) => WebhookOutput | SlackOutput][] = [
  ['webhook', (url, timeoutMs) => new WebhookOutput({ name: 'webhook', url, headers: {}, timeoutMs })],
  ['slack', (url, timeoutMs) => new SlackOutput({ name: 'slack', webhookUrl: `${url}/services/T/B/X`, username: 'minewatch', timeoutMs })],
  ['falcosidekick', (url, timeoutMs) => new FalcosidekickOutput({ name: 'falcosidekick', url, headers: {}, timeoutMs })],
];

for (const [kind, make] of httpOutputs) {
  test(`${kind}: a closed port fails at once, a silent server after timeout_ms; back up, it delivers`, async (t) => {
    const rx = await new Receiver().listen();
    t.after(() => rx.close());
    const o = make(rx.url, 400);
    t.after(() => o.close());
    await o.send(alertMessage());

    await rx.close();
    await assert.rejects(o.send(alertMessage()), (e: Error) => !isPermanent(e) && new RegExp(`outputs\\.${kind}: cannot POST to http://127\\.0\\.0\\.1:\\d+/.*ECONNREFUSED`).test(e.message));

    await rx.listen();
    rx.status = 'hang';
    await assert.rejects(o.send(alertMessage()), (e: Error) => !isPermanent(e) && /no answer within 400 ms/.test(e.message));

    rx.status = 200;
    const later = alertMessage();
    await eventually(() => o.send(later), 20, 100);
    assert.ok(rx.requests.at(-1)!.body.includes(later.output), 'the last request carries the later alert');
  });
}

test('webhook: token_file is read, and re-read once it changes', async (t) => {
  const rx = await new Receiver().listen();
  t.after(() => rx.close());
  const file = join(dir, 'token');
  const o = new WebhookOutput({ name: 'webhook', url: rx.url, headers: {}, timeoutMs: 2000, tokenFile: file });
  t.after(() => o.close());
  await assert.rejects(o.send(alertMessage()), (e: Error) => !isPermanent(e) && /outputs\.webhook\.token_file: cannot read .*token: ENOENT/.test(e.message));
  writeFileSync(file, 'first-token\n');
  await o.send(alertMessage());
  assert.equal(rx.requests.at(-1)!.headers.authorization, 'Bearer first-token');
  writeFileSync(file, 'rotated-token\n');
  await eventually(async () => {
    await o.send(alertMessage());
    assert.equal(rx.requests.at(-1)!.headers.authorization, 'Bearer rotated-token');
  }, 20, 150);
});

test('slack: an incoming-webhook message with rule, priority, hostname, output; a summary with its count', async (t) => {
  const rx = await new Receiver().listen();
  t.after(() => rx.close());
  const o = new SlackOutput({ name: 'slack', webhookUrl: `${rx.url}/services/T0/B0/XYZ`, username: 'minewatch', channel: '#alerts', timeoutMs: 2000, minimumPriority: 'error' });
  t.after(() => o.close());
  const first = alertMessage();
  await o.send(alertMessage({ priority: 'Notice' })); // below error: skipped
  await o.send(first);
  const summary = alertMessage({}, { kind: 'summary', count: 10_000 });
  await o.send(summary);
  assert.equal(rx.requests.length, 2);
  const a = JSON.parse((await rx.nth(1)).body);
  assert.equal(rx.requests[0]!.url, '/services/T0/B0/XYZ');
  assert.equal(a.channel, '#alerts');
  assert.match(a.text, /^\[Critical\] Detect crypto miners using the Stratum protocol on node-1$/);
  const att = a.attachments[0];
  assert.equal(att.text, first.output);
  const fields = Object.fromEntries(att.fields.map((f: { title: string; value: string }) => [f.title, f.value]));
  assert.equal(fields.rule, first.rule);
  assert.equal(fields.priority, 'Critical');
  assert.equal(fields.hostname, 'node-1');
  assert.equal(fields.count, undefined);
  const s = JSON.parse((await rx.nth(2)).body);
  assert.match(s.text, /10000 matches on node-1/);
  assert.equal(Object.fromEntries(s.attachments[0].fields.map((f: { title: string; value: string }) => [f.title, f.value])).count, '10000');
  assert.deepEqual(slackMessage(first).attachments, a.attachments);
});

test('slack: Slack refusing the payload is permanent, and the error does not print the secret URL', async (t) => {
  const rx = await new Receiver().listen();
  t.after(() => rx.close());
  rx.status = 404;
  rx.answer = 'no_service';
  const o = new SlackOutput({ name: 'slack', webhookUrl: `${rx.url}/services/T0/B0/SECRETPART`, username: 'minewatch', timeoutMs: 2000 });
  t.after(() => o.close());
  await assert.rejects(o.send(alertMessage()), (e: Error) => isPermanent(e) && /answered 404.*no_service/.test(e.message) && !e.message.includes('SECRETPART'));
});

test('falcosidekick: POST / with Falco JSON, as Falco http_output does, with a token for a minewatch server', async (t) => {
  const rx = await new Receiver().listen();
  t.after(() => rx.close());
  const o = new FalcosidekickOutput({ name: 'falcosidekick', url: rx.url, headers: {}, timeoutMs: 2000, token: 'agent-token' });
  t.after(() => o.close());
  const msg = alertMessage();
  await o.send(msg);
  const r = await rx.nth(1);
  assert.equal(r.url, '/');
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers.authorization, 'Bearer agent-token');
  const body = JSON.parse(r.body);
  for (const k of ['hostname', 'output', 'output_fields', 'priority', 'rule', 'source', 'tags', 'time']) assert.deepEqual(body[k], msg[k as keyof typeof msg], k);
  assert.equal(body.minewatch.uuid, msg.minewatch.uuid);

  rx.status = 401;
  await assert.rejects(o.send(alertMessage()), (e: Error) => isPermanent(e) && /outputs\.falcosidekick: .* answered 401.*check the token/.test(e.message));
  const slash = new FalcosidekickOutput({ name: 'falcosidekick', url: `${rx.url}/`, headers: {}, timeoutMs: 2000 });
  t.after(() => slash.close());
  rx.status = 200;
  await slash.send(msg);
  assert.equal(rx.requests.at(-1)!.url, '/');
});
