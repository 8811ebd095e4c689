/**
 * Bad input never crashes the github source: random and adversarial CI files through the miner
 * check, random patches through the secret scanner, random signed bodies through POST /github.
 * Inputs that made a regular expression backtrack quadratically are kept here (a hang fails the
 * test through its timeout; no timing is asserted).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { scanCiText } from '../src/github/miners.js';
import { scanPatch } from '../src/knowledge/secrets.js';
import { githubWebhookRoutes } from '../src/github/webhook.js';
import { sign } from './helpers/github-payloads.js';
import { prng } from './helpers/prng.js';

const PIECES = [
  'run: ', 'steps:\n', '  - ', 'uses: ', 'image: ', 'with:\n', 'env:\n', '    ', '|\n', '>\n', '"', "'", '\\', '#', '$(', ')', '`', ';', '&&', '|',
  'xmrig', './xmrig-6.21.0/xmrig', 'stratum+tcp://', 'pool.supportxmr.com', ':3333', '-o', '-u', '--donate-level', 'base64 -d',
  'QUJDREVGR0hJSktMTU5PUFFSU1RVVldY', '\\x41\\x42', '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', '{', '}', '[', ']', ': ', '\n', '\t', '&a', '*a', '!!binary ',
  'docker://', 'sh -c', 'eval', '\u0000', '\u00e9', '\ud83d', '---\n', '...\n',
];

test('random CI files: the check never throws', { timeout: 60_000 }, () => {
  const r = prng(0x6769746875);
  for (let i = 0; i < 3000; i++) {
    let text = '';
    const n = 1 + Math.floor(r() * 60);
    for (let j = 0; j < n; j++) text += PIECES[Math.floor(r() * PIECES.length)];
    for (const kind of ['yaml', 'jenkins'] as const) {
      const res = scanCiText(text, 'f', kind);
      for (const f of res.findings) assert.ok(f.line >= 1 && Number.isInteger(f.line), JSON.stringify({ text, f }));
    }
  }
});

test('adversarial sizes and shapes finish (no quadratic backtracking)', { timeout: 60_000 }, () => {
  const inputs = [
    'run: ' + 'a.'.repeat(50_000) + '!',
    'run: ' + 'a'.repeat(200_000),
    'run: ' + 'QUFB'.repeat(100_000),
    'run: ' + 'a-'.repeat(60_000) + '.com',
    'run: ' + '41'.repeat(100_000),
    'run: ' + '"\\'.repeat(50_000),
    'a:\n' + Array.from({ length: 500 }, (_, i) => ' '.repeat(i + 1) + 'b:').join('\n') + ' x\n',
    'run: ' + 'x='.repeat(50_000),
    'run: ' + '$('.repeat(50_000),
  ];
  for (const text of inputs) assert.deepEqual(scanCiText(text, 'big.yml').findings, []);
  assert.deepEqual(scanPatch('@@ -0,0 +1,1 @@\n+' + 'aws_'.repeat(50_000) + 'key=' + 'x'.repeat(100)), []);
  assert.deepEqual(scanPatch('@@ -0,0 +1,1 @@\n+heroku' + '0'.repeat(200_000)), []);
});

test('random patches: the secret scanner never throws and reports only lines it saw', () => {
  const r = prng(0x70617463);
  const parts = ['@@ -1,3 +1,4 @@', '@@@ -1 -1 +1 @@@', '+', '-', ' ', '\\ No newline', 'AKIAQ3EGRIT7WXYZ2K4M', '\n', '@@ garbage', '+ghp_'];
  for (let i = 0; i < 3000; i++) {
    let p = '';
    for (let j = 0; j < 30; j++) p += parts[Math.floor(r() * parts.length)];
    for (const m of scanPatch(p)) assert.ok(m.line >= 1, p);
  }
});

test('random signed bodies to POST /github: 202 or 400, never a 500', { timeout: 60_000 }, async () => {
  const app = Fastify();
  let n = 0;
  await app.register(githubWebhookRoutes({ secret: 'fuzz', sink: () => (n++, true) }));
  const url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/github`;
  try {
    const r = prng(0x686f6f6b);
    const bodies = ['{}', '[]', 'null', '"x"', '{"a":', '\u0000', '{"workflow_run":{"head_sha":[]},"workflow":{"path":{}}}', 'payload=%7B%7D', '{"__proto__":{"x":1}}'];
    for (let i = 0; i < 150; i++) {
      const body = i < bodies.length ? bodies[i]! : Buffer.from(Array.from({ length: Math.floor(r() * 200) }, () => Math.floor(r() * 256))).toString('latin1');
      const type = ['application/json', 'application/x-www-form-urlencoded', 'text/plain', 'application/octet-stream'][i % 4]!;
      const event = ['push', 'workflow_run', 'ping', 'issues'][i % 4]!;
      const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': type, 'x-github-event': event, 'x-hub-signature-256': sign('fuzz', Buffer.from(body, 'utf8')) } });
      assert.ok(res.status === 202 || res.status === 400, `${res.status} for ${JSON.stringify(body)} as ${type}`);
    }
    assert.ok(n > 0);
  } finally {
    await app.close();
  }
});
