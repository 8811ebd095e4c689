/**
 * The real dashboard in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
 * against a real server and store on loopback: the token asked for and kept, seeded alerts listed,
 * filtered by rule and priority, one opened in full, a live alert arriving without a reload.
 * A screenshot is saved under test-results/.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { AgentRun, writeConfig } from './helpers/agent-run.js';
import { ROOT } from './helpers/paths.js';
import { call, falcoAlert, startWeb } from './helpers/web.js';

const CHROMIUM = process.env.MINEWATCH_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'dashboard-token-0123456789';
const RULES = ['Launch Cryptominer', 'Outbound Stratum Connection', 'Wallet In Command Line'];
const PRIOS = ['Critical', 'Warning', 'Notice'];
const N = 24;

async function rowRules(page: Page): Promise<{ rule: string; priority: string }[]> {
  return page.$$eval('#alerts tbody tr', (trs) => trs.map((tr) => ({
    rule: tr.querySelector('.c-rule')!.textContent!,
    priority: tr.querySelector('.c-prio')!.textContent!,
  })));
}

function launch(profile: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1366, height: 900 },
  });
}

test('dashboard: token, seeded alerts, filters, detail, live update', { timeout: 120_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set MINEWATCH_CHROMIUM`);
    return;
  }
  const web = await startWeb({ token: TOKEN });
  const profile = mkdtempSync(join(tmpdir(), 'mw-chromium-'));
  let ctx: BrowserContext | undefined;
  try {
    const now = Date.now();
    const seeded = Array.from({ length: N }, (_, i) => ({
      rule: RULES[i % RULES.length]!,
      priority: PRIOS[Math.floor(i / RULES.length) % PRIOS.length]!,
      at: now - (N - i) * 60_000,
      host: `node-${i % 2}`,
      namespace: i % 2 ? 'mining' : 'web',
    }));
    const posted = await call(web.url, '/', { token: TOKEN, body: seeded.map((s) => falcoAlert(s)) });
    assert.equal(posted.status, 200, posted.text);

    ctx = await launch(profile);
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/401/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    // Nothing may be fetched from anywhere but this server.
    page.on('request', (r) => {
      if (!r.url().startsWith(web.url) && !r.url().startsWith('data:')) problems.push(`request off the server: ${r.url()}`);
    });

    await page.goto(web.url);
    // The server wants a token: the page asks for it once, then keeps it for this tab.
    await page.locator('#token-dialog').waitFor({ state: 'visible' });
    await page.fill('#token-input', TOKEN);
    await page.click('#token-save');
    await page.waitForFunction((n) => document.querySelectorAll('#alerts tbody tr').length === n, N);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('minewatch.token')), TOKEN);
    await page.locator('#live-status.on').waitFor();
    assert.equal(await page.textContent('#total-matches'), String(N));
    const prioCounts = await page.$$eval('#by-priority li', (lis) => lis.map((li) => [li.querySelector('.pick')!.textContent, li.querySelector('.n')!.textContent]));
    assert.deepEqual(prioCounts, PRIOS.map((p) => [p, String(seeded.filter((s) => s.priority === p).length)]));
    assert.ok((await page.locator('#timeline svg rect.bar').count()) > 0, 'the timeline has bars');

    // Filter by rule, then by priority.
    const rule = RULES[1]!;
    await page.selectOption('#f-rule', rule);
    const byRule = seeded.filter((s) => s.rule === rule).length;
    await page.waitForFunction((n) => document.querySelectorAll('#alerts tbody tr').length === n, byRule);
    assert.ok((await rowRules(page)).every((r) => r.rule === rule));
    await page.selectOption('#f-priority', 'Warning');
    const both = seeded.filter((s) => s.rule === rule && s.priority === 'Warning');
    await page.waitForFunction((n) => document.querySelectorAll('#alerts tbody tr').length === n, both.length);
    assert.ok(both.length > 0);
    assert.deepEqual(await rowRules(page), both.map(() => ({ rule, priority: 'Warning' })));
    assert.equal(await page.textContent('#total-matches'), String(both.length));
    assert.match(page.url(), /rule=Outbound\+Stratum\+Connection/);

    // Open one: every field is there.
    await page.click('#alerts tbody tr >> nth=0');
    await page.locator('#detail').waitFor({ state: 'visible' });
    const detail = (await page.textContent('#detail'))!;
    for (const want of [rule, 'Warning', 'Output fields', 'proc.cmdline', 'xmrig --donate-level', 'k8s.ns.name', 'First seen', 'Last seen', 'Count', 'Changed across repeats', 'Event']) {
      assert.ok(detail.includes(want), `detail shows ${want}`);
    }
    await page.click('#detail-close');
    await page.locator('#detail').waitFor({ state: 'hidden' });

    // A live alert matching the filters arrives without a reload; one that does not match stays out.
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const live = falcoAlert({ rule, priority: 'Warning', host: 'node-live', namespace: 'mining', output: 'LIVE xmrig started by the browser test' });
    const other = falcoAlert({ rule: RULES[0], priority: 'Critical', host: 'node-live' });
    const r = await call(web.url, '/', { token: TOKEN, body: [other, live] });
    assert.equal(r.status, 200, r.text);
    const liveId = r.json.ids[1];
    await page.locator(`#alerts tbody tr[data-id="${liveId}"]`).waitFor();
    assert.equal(await page.textContent(`#alerts tbody tr[data-id="${liveId}"] .c-output`), 'LIVE xmrig started by the browser test');
    assert.equal(await page.locator(`#alerts tbody tr[data-id="${r.json.ids[0]}"]`).count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { marker: number }).marker), 42, 'no reload');
    assert.equal(await page.locator('#alerts tbody tr').count(), both.length + 1);
    await page.waitForFunction((n) => document.getElementById('total-matches')!.textContent === String(n), both.length + 1);
    // A repeat of it is counted into its group: the same row's count goes up, in place.
    assert.equal((await call(web.url, '/', { token: TOKEN, body: live })).status, 200);
    await page.waitForFunction((id) => document.querySelector(`#alerts tbody tr[data-id="${id}"] .c-count`)?.textContent === '2', liveId);
    assert.equal(await page.locator('#alerts tbody tr').count(), both.length + 1);

    // Text search.
    await page.selectOption('#f-priority', '');
    await page.fill('#f-q', 'LIVE xmrig');
    await page.waitForFunction(() => document.querySelectorAll('#alerts tbody tr').length === 1);

    mkdirSync(join(ROOT, 'test-results'), { recursive: true });
    await page.selectOption('#f-rule', '');
    await page.fill('#f-q', '');
    await page.waitForFunction((n) => document.querySelectorAll('#alerts tbody tr').length === n, N + 2);
    assert.equal(await page.textContent('#total-matches'), String(N + 3), 'the repeat counts as a match');
    await page.screenshot({ path: join(ROOT, 'test-results', 'dashboard.png') });
    await page.click(`#alerts tbody tr[data-id="${liveId}"]`);
    await page.locator('#detail').waitFor({ state: 'visible' });
    await page.screenshot({ path: join(ROOT, 'test-results', 'dashboard-detail.png') });
    assert.ok(existsSync(join(ROOT, 'test-results', 'dashboard.png')));
    assert.deepEqual(problems, []);
  } finally {
    await ctx?.close();
    await web.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

test("dashboard: the link with the server's own token (as printed on its terminal) opens the data, and the token leaves the address bar", { timeout: 120_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set MINEWATCH_CHROMIUM`);
    return;
  }
  // The real server with no web.token: it makes <state>/token and the API needs it, on loopback too.
  const dir = mkdtempSync(join(tmpdir(), 'mw-dash-token-'));
  const server = new AgentRun(writeConfig(join(dir, 'server.yaml'), { outputs: { stdout: { enabled: false } } }), { command: 'server' });
  const profile = mkdtempSync(join(tmpdir(), 'mw-chromium-'));
  let ctx: BrowserContext | undefined;
  try {
    const url = await server.webUrl();
    const token = readFileSync(join(server.stateDir, 'token'), 'utf8').trim();
    assert.equal((await call(url, '/api/alerts')).status, 401, 'no token, no data');
    assert.equal((await call(url, '/', { token, body: falcoAlert({ rule: 'Launch Cryptominer', output: 'TOKENLINK xmrig' }) })).status, 200);

    ctx = await launch(profile);
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    await page.goto(`${url}/?token=${encodeURIComponent(token)}#rule=Launch+Cryptominer`);
    await page.waitForFunction(() => document.querySelectorAll('#alerts tbody tr').length === 1);
    assert.equal(await page.textContent('#alerts tbody tr .c-output'), 'TOKENLINK xmrig');
    assert.equal(await page.locator('#token-dialog').isVisible(), false, 'no token asked for');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('minewatch.token')), token, 'kept for this tab');
    const address = page.url();
    assert.ok(!address.includes(token) && !/[?&]token=/.test(address), `the token is gone from the address: ${address}`);
    assert.match(address, /#.*rule=Launch\+Cryptominer/, 'the filters in the hash stay');
    await page.locator('#live-status.on').waitFor();
    // A reload keeps working from the tab's storage, without the token in the address.
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll('#alerts tbody tr').length === 1);

    // Another tab, without the link: the page asks for the token.
    const other = await ctx.newPage();
    await other.goto(url);
    await other.locator('#token-dialog').waitFor({ state: 'visible' });
  } finally {
    await ctx?.close();
    await server.stop();
    rmSync(profile, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
