/**
 * malloc_trim after event bursts (src/platform/malloc-trim.ts): a trim once events stop, only
 * after enough of them, never while they keep coming; and the addon's trim is glibc's.
 */
import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { MallocTrimmer, mallocTrimmer } from '../src/platform/malloc-trim.js';
import { loadNativeAddon } from '../src/platform/native-addon.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

it('trims once events stop after a burst, not during it, and not after a trickle below minEvents', async () => {
  let trims = 0;
  const t = new MallocTrimmer(() => (trims++, true), { quietMs: 40, minEvents: 100 });
  t.busy(60);
  await sleep(120);
  assert.equal(trims, 0, '60 events are no burst');
  for (let i = 0; i < 20; i++) {
    t.busy(10);
    await sleep(5);
  }
  assert.equal(trims, 0, 'no trim while events kept coming every 5 ms');
  for (let i = 0; i < 200 && trims === 0; i++) await sleep(5);
  assert.equal(trims, 1, 'one trim once they stopped');
  assert.equal(t.trims, 1);
  await sleep(120);
  assert.equal(trims, 1, 'an idle agent is not trimmed again');
  t.busy(100);
  t.stop();
  await sleep(120);
  assert.equal(trims, 1, 'nothing after stop()');
});

it('the native addon trims with glibc (a boolean back), where it is built', (t) => {
  const load = loadNativeAddon();
  if ('error' in load) return t.skip(`the native addon is not built here: ${load.error}`);
  assert.equal(typeof load.addon.mallocTrim, 'function');
  assert.equal(typeof load.addon.mallocTrim!(), 'boolean');
  assert.ok(mallocTrimmer() instanceof MallocTrimmer);
});
