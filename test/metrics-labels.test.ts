/**
 * Unbounded labels (issue 13, item 8): whoever may post alerts names their rules, so thousands of
 * made-up rule names must not become thousands of series (nor thousands of entries in the
 * pipeline's counts). Each label keeps web.metrics_max_label_values distinct values; the rest is
 * counted under `other`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { LabelCap } from '../src/platform/label-cap.js';
import { metricsRegistry } from '../src/web/metrics.js';
import { webServerOptions } from '../src/web/server.js';
import { call, falcoAlert, newAlertService, startWeb } from './helpers/web.js';

const TOKEN = 'msc-test-token-0123456789abcdef';

const seriesOf = (text: string, metric: string): string[] => text.split('\n').filter((l) => l.startsWith(`${metric}{`));

describe('label caps', () => {
  test('LabelCap: the first N values keep their series for good, later ones fold into other', () => {
    const cap = new LabelCap(3);
    assert.deepEqual(['a', 'b', 'a', 'c', 'd', 'e', 'b', 'other'].map((v) => cap.fold(v)), ['a', 'b', 'a', 'c', 'other', 'other', 'b', 'other']);
  });

  test('web.metrics_max_label_values: 500 by default, validated, passed to the server', () => {
    const cfg = parseConfig('{}', 'mw.yaml').config;
    assert.equal(cfg.web.metrics_max_label_values, 500);
    assert.equal(webServerOptions(cfg.web).metricsMaxLabelValues, 500);
    assert.equal(parseConfig('web:\n  metrics_max_label_values: 40\n', 'mw.yaml').config.web.metrics_max_label_values, 40);
    assert.throws(() => parseConfig('web:\n  metrics_max_label_values: 0\n', 'mw.yaml'), /mw\.yaml:2:\d+: web\.metrics_max_label_values/);
  });

  test('2,000 distinct posted rule names: /metrics keeps 25 rule series plus other, which counts the rest', { timeout: 120_000 }, async () => {
    const CAP = 25;
    const alerts = newAlertService([], {}, { maxLabelValues: CAP });
    const web = await startWeb({ alerts, token: TOKEN, metricsMaxLabelValues: CAP });
    try {
      const N = 2000;
      for (let i = 0; i < N; i += 250) {
        const batch = Array.from({ length: 250 }, (_, j) => falcoAlert({ rule: `Made Up Rule ${i + j}`, priority: 'Warning', host: 'h' }));
        const r = await call(web.url, '/', { body: batch, token: TOKEN });
        assert.equal(r.status, 200, r.text);
      }
      const m = await call(web.url, '/metrics', { token: TOKEN });
      assert.equal(m.status, 200);
      const series = seriesOf(m.text, 'minewatch_alerts_total');
      assert.equal(series.length, CAP + 1, series.slice(0, 5).join('\n'));
      assert.match(m.text, new RegExp(`^minewatch_alerts_total\\{rule="other",priority="Warning"\\} ${N - CAP}$`, 'm'));
      assert.match(m.text, /^minewatch_alerts_total\{rule="Made Up Rule 0",priority="Warning"\} 1$/m);
      assert.doesNotMatch(m.text, /Made Up Rule 1999/);
      // The memory is bounded too, not only the page.
      assert.equal(alerts.matchCountsByRule().length, CAP + 1);
      // A later scrape keeps the same series (no value moves in or out of other).
      await call(web.url, '/', { body: [falcoAlert({ rule: 'Made Up Rule 3', priority: 'Warning' }), falcoAlert({ rule: 'Another New Rule', priority: 'Warning' })], token: TOKEN });
      const again = await call(web.url, '/metrics', { token: TOKEN });
      assert.equal(seriesOf(again.text, 'minewatch_alerts_total').length, CAP + 1);
      assert.match(again.text, /^minewatch_alerts_total\{rule="Made Up Rule 3",priority="Warning"\} 2$/m);
      assert.match(again.text, new RegExp(`^minewatch_alerts_total\\{rule="other",priority="Warning"\\} ${N - CAP + 1}$`, 'm'));
    } finally {
      await web.close();
      await alerts.close();
    }
  });

  test('every labelled metric is capped, whatever source feeds it', async () => {
    const events: [string, string, number][] = Array.from({ length: 300 }, (_, i) => ['syscall', `type${i}`, 1]);
    const registry = metricsRegistry({ events: () => events, drops: () => Array.from({ length: 50 }, (_, i) => [`where${i}`, 2] as [string, number]) }, { maxLabelValues: 10 });
    const text = await registry.metrics();
    assert.equal(seriesOf(text, 'minewatch_events_total').length, 11);
    assert.match(text, /^minewatch_events_total\{source="syscall",type="other"\} 290$/m);
    assert.equal(seriesOf(text, 'minewatch_events_dropped_total').length, 11);
    assert.match(text, /^minewatch_events_dropped_total\{where="other"\} 80$/m);
  });
});
