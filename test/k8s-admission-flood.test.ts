/**
 * Issue 13 item 6: twenty clients flooding POST /admission with 10 MB reviews (with and without the
 * token, with and without a Content-Length, slow ones more at once than the per-client cap
 * allows) get 401, 413 and 429 (and 411 for a body of unknown length, which would have to be read
 * to be judged), and meanwhile the API server's normal reviews are answered, every one. How
 * fast they are answered is the bench's business (bench/admission.bench.ts): no timing here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { postReview, startFlood } from './helpers/admission-flood.js';
import { HOOK_TOKEN, fixtureText, serveAdmission } from './helpers/k8s.js';

test('admission under a flood of 10 MB reviews from 20 clients: the flood gets 401/413/429, normal reviews are answered', { timeout: 180_000 }, async (t) => {
  const { app, url } = await serveAdmission({ maxInFlightPerClient: 4 });
  t.after(() => app.close());
  const flood = startFlood({ url, token: HOOK_TOKEN, clients: 20, concurrency: 6, bodyBytes: 10_000_000 });
  let stopped = false;
  t.after(async () => {
    if (!stopped) await flood.stop();
  });
  await flood.started(100);

  const review = fixtureText('admission/deployment-nginx-with-limits.json');
  const uid = JSON.parse(review).request.uid as string;
  const miner = fixtureText('admission/pod-kubectl-run-miner.json');
  for (let i = 0; i < 20; i++) {
    const ok = await postReview(url, review, HOOK_TOKEN);
    assert.equal(ok.status, 200, `normal review ${i} answered`);
    assert.deepEqual(ok.json.response, { uid, allowed: true });
    const denied = await postReview(url, miner, HOOK_TOKEN);
    assert.equal(denied.status, 200);
    assert.equal(denied.json.response?.allowed, false, `miner review ${i} still denied under the flood`);
  }
  const stats = await flood.stop();
  stopped = true;
  t.diagnostic(`flood answers: ${JSON.stringify(stats.statuses)}, connections closed before an answer: ${stats.resets}`);
  // 400: a slow body that got through its slot in full is not JSON. Never 200: no flood review is admitted.
  assert.deepEqual(Object.keys(stats.statuses).filter((s) => !['400', '401', '411', '413', '429'].includes(s)), [], 'the flood gets nothing but 401, 411 (chunked), 413 and 429');
  for (const s of [401, 411, 413, 429]) assert.ok((stats.statuses[s] ?? 0) > 0, `some ${s}s: ${JSON.stringify(stats.statuses)}`);
});
