/**
 * The pause that the alert store's checkpoint and text index wait for (src/platform/pause-timer.ts):
 * it comes once commits stop for quietMs, at the latest maxDelayMs after the first commit, not
 * after a held event loop, and never after stop(). Real timers; what is asserted is the order of
 * commits and runs, not how long anything took.
 */
import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { PauseTimer } from '../src/platform/pause-timer.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, limitMs = 10_000): Promise<void> {
  const end = performance.now() + limitMs;
  while (!ok()) {
    if (performance.now() > end) assert.fail(`never: ${what}`);
    await sleep(5);
  }
}

it('runs once commits stop, not while they keep coming', async () => {
  let runs = 0;
  const p = new PauseTimer({ quietMs: 40 }, () => runs++);
  for (let i = 0; i < 20; i++) {
    p.commit();
    p.arm();
    await sleep(5);
  }
  assert.equal(runs, 0, 'no run while a commit came every 5 ms');
  await until('a run after the pause', () => runs === 1);
  assert.equal(p.armed, false);
});

it('a stream that never pauses still runs by maxDelayMs after the commit that armed it', async () => {
  let runs = 0;
  let commitsAfterRun = 0;
  const p = new PauseTimer({ quietMs: 40, maxDelayMs: 80 }, () => runs++);
  // Commits every 5 ms for as long as it takes: the run must come while they still do.
  for (let i = 0; i < 2_000 && commitsAfterRun < 3; i++) {
    if (runs > 0) commitsAfterRun++;
    p.commit();
    p.arm();
    await sleep(5);
  }
  assert.ok(runs >= 1 && commitsAfterRun === 3, `ran in the middle of the stream (runs ${runs})`);
});

it('a timer that fires late (the loop was held) waits a whole pause again', async () => {
  let runs = 0;
  const p = new PauseTimer({ quietMs: 40 }, () => runs++);
  p.commit();
  p.arm();
  const end = performance.now() + 400;
  while (performance.now() < end) { /* held */ }
  await sleep(0);
  assert.equal(runs, 0, 'no run straight after the loop was held');
  await until('a run after a real pause', () => runs === 1);
});

it('again() runs in a later turn, pause or not; stop() ends it all', async () => {
  const seen: string[] = [];
  let left = 3;
  const p = new PauseTimer({ quietMs: 40 }, () => {
    seen.push('run');
    if (--left > 0) p.again();
  });
  p.commit();
  p.arm();
  await until('three runs', () => seen.length === 3);
  p.commit();
  p.arm();
  p.stop();
  await sleep(120);
  assert.deepEqual(seen, ['run', 'run', 'run'], 'nothing after stop()');
  p.arm();
  p.again();
  await sleep(60);
  assert.equal(seen.length, 3);
});
