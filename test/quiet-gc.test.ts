/**
 * The quiet-time GC (src/platform/quiet-gc.ts): a collection once events stop after a burst, only
 * after enough of them and enough old-generation growth, never while they keep coming; V8's own
 * major GCs move its baseline; and the gc() it uses is V8's, with no `gc` left on the global.
 */
import { strict as assert } from 'node:assert';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { it } from 'node:test';
import { QuietGc, quietGc, v8Gc } from '../src/platform/quiet-gc.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await sleep(5);
  assert.ok(cond(), what);
}

it('collects once events stop after a burst that grew the old generation, not during it, not after a trickle', async () => {
  let old = 10_000_000;
  let runs = 0;
  const q = new QuietGc(() => { runs++; old = 10_000_000; }, { quietMs: 40, minEvents: 100, minGrowthBytes: 1_000_000, oldBytes: () => old });
  old += 5_000_000;
  q.busy(60);
  await sleep(120);
  assert.equal(runs, 0, '60 events are no burst');
  for (let i = 0; i < 20; i++) {
    q.busy(10);
    await sleep(5);
  }
  assert.equal(runs, 0, 'nothing while events kept coming every 5 ms');
  await until(() => runs === 1, 'one collection once they stopped');
  assert.equal(q.collections, 1);
  await sleep(120);
  assert.equal(runs, 1, 'an idle agent is not collected again');

  // A burst that promoted little: the quiet moment passes with no collection.
  old += 200_000;
  q.busy(100);
  await until(() => q.skipped === 1, 'the quiet moment came and found too little growth');
  assert.equal(runs, 1);

  old += 5_000_000;
  q.busy(100);
  q.stop();
  await sleep(120);
  assert.equal(runs, 1, 'nothing after stop()');
});

it("V8's own major GC moves the baseline: growth before it is not counted again", async (t) => {
  const gc = v8Gc();
  if (!gc) return t.skip('no gc() here');
  let old = 10_000_000;
  let runs = 0;
  const q = new QuietGc(() => runs++, { quietMs: 40, minEvents: 10, minGrowthBytes: 1_000_000, oldBytes: () => old }).followV8();
  try {
    old += 5_000_000;
    // A major GC that is not the QuietGc's own: V8's (here forced), seen through the gc observer.
    gc();
    await sleep(50);
    q.busy(10);
    await until(() => q.skipped === 1, 'the quiet moment found no growth since the major GC');
    assert.equal(runs, 0);
  } finally {
    q.stop();
  }
});

it("v8Gc() runs V8's major GC and leaves no gc on the global", async () => {
  const gc = v8Gc();
  assert.equal(typeof gc, 'function');
  if (!process.execArgv.includes('--expose-gc')) assert.equal((globalThis as { gc?: unknown }).gc, undefined, 'no gc() on the global');
  const kinds: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) kinds.push((e as { detail?: { kind?: number } }).detail?.kind ?? -1);
  });
  obs.observe({ entryTypes: ['gc'] });
  try {
    gc!();
    await until(() => kinds.includes(perfConstants.NODE_PERFORMANCE_GC_MAJOR), 'a major GC was seen');
  } finally {
    obs.disconnect();
  }
  const q = quietGc();
  assert.ok(q instanceof QuietGc);
  q.stop();
});
