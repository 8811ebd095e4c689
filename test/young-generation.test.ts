/**
 * The young generation's cap (src/platform/young-generation.ts), in a child node process each: an
 * allocation-heavy program with many survivors grows V8's new space past the cap without it, and
 * stays at the cap with it; a hold stops its growth through a long synchronous stretch, which the
 * cap alone cannot; a young-generation flag given to node wins.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { CLI } from './helpers/paths.js';

const MODULE = new URL('../src/platform/young-generation.js', import.meta.url).href;
const MB = 1024 * 1024;

/** New space size (bytes) after the child allocated in batches, with the cap (capMb) or without. */
function newSpaceAfterWork(capMb: number | undefined, nodeArgs: string[] = []): { size: number; capped: boolean | null } {
  const program = `
    import { capYoungGeneration } from ${JSON.stringify(MODULE)};
    import { getHeapSpaceStatistics } from 'node:v8';
    const capped = ${capMb === undefined ? 'null' : `capYoungGeneration(${capMb} * ${MB})`};
    let keep = [];
    // Batches with a turn of the event loop between them (as the agent's work comes: one ring
    // buffer batch, one queue drain), each leaving many survivors: what makes V8 grow its new
    // space. The cap is checked between batches, so one long synchronous burst could still take
    // the new space a doubling past it.
    for (let b = 0; b < 600; b++) {
      for (let i = 0; i < 5000; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 40000) keep = []; }
      await new Promise((r) => setImmediate(r));
    }
    const size = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    console.log(JSON.stringify({ size, capped }));
  `;
  const out = execFileSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', program], { encoding: 'utf8' });
  return JSON.parse(out) as { size: number; capped: boolean | null };
}

test('without the cap the new space grows past 4 MB; a 2 MB cap holds it within one doubling of that', () => {
  const free = newSpaceAfterWork(undefined);
  assert.ok(free.size > 4 * MB, `uncapped new space ${free.size / MB} MB: the workload must grow it past 4 MB for this test to mean anything`);
  const held = newSpaceAfterWork(2);
  assert.equal(held.capped, true);
  // The check runs after the GC that grew it: a batch can take it one doubling past the cap.
  assert.ok(held.size <= 4 * MB, `capped new space ${held.size / MB} MB, more than one doubling past the 2 MB cap`);
});

test("a young-generation flag given to node wins: the cap changes nothing", () => {
  const r = newSpaceAfterWork(2, ['--max-semi-space-size=8']);
  assert.equal(r.capped, false);
  assert.ok(r.size > 4 * MB, `new space ${r.size / MB} MB: the user's --max-semi-space-size=8 should let it grow past 4 MB`);
});

test('a hold keeps the new space from growing through a long synchronous stretch; released, it grows to the cap', () => {
  const program = `
    import { capYoungGeneration, holdYoungGeneration } from ${JSON.stringify(MODULE)};
    import { getHeapSpaceStatistics } from 'node:v8';
    const size = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    const work = (n) => { let keep = []; for (let i = 0; i < n; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 40000) keep = []; } };
    const before = size();
    capYoungGeneration(${4 * MB});
    // Without the hold, this one stretch (no turn of the event loop, so no check) grows it past the cap.
    const release = holdYoungGeneration();
    work(3e6);
    const held = size();
    release();
    release(); // a second call changes nothing
    for (let b = 0; b < 600; b++) { work(5000); await new Promise((r) => setImmediate(r)); }
    console.log(JSON.stringify({ before, held, after: size() }));
  `;
  const r = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', program], { encoding: 'utf8' })) as { before: number; held: number; after: number };
  // The start commits the second semi-space at the first scavenge (1 MB → 2 MB): no growth.
  assert.ok(r.held <= 2 * r.before && r.held < 4 * MB, `held new space ${r.held / MB} MB grew from ${r.before / MB} MB`);
  assert.ok(r.after > r.held, `released, the new space (${r.after / MB} MB) should grow again from ${r.held / MB} MB`);
  assert.ok(r.after <= 8 * MB, `released new space ${r.after / MB} MB, more than one doubling past the 4 MB cap`);
});

test('the same stretch with no hold takes the new space past the cap (what the hold is for)', () => {
  const program = `
    import { capYoungGeneration } from ${JSON.stringify(MODULE)};
    import { getHeapSpaceStatistics } from 'node:v8';
    capYoungGeneration(${4 * MB});
    let keep = []; for (let i = 0; i < 3e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 40000) keep = []; }
    console.log(getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
  `;
  const size = Number(execFileSync(process.execPath, ['--input-type=module', '-e', program], { encoding: 'utf8' }));
  assert.ok(size > 4 * MB, `unheld new space ${size / MB} MB: the stretch must pass the cap for the hold's test to mean anything`);
});

/** New space size (bytes) at the exit of `node SCRIPT version`: what loading the CLI's modules left. */
function newSpaceAfterLoading(script: string): number {
  const report = `process.on('exit', () => process.stderr.write('NEWSPACE ' + require('node:v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size + '\\n'));`;
  const dir = mkdtempSync(join(tmpdir(), 'mw-young-'));
  const preload = join(dir, 'report.cjs');
  writeFileSync(preload, report);
  const r = spawnSync(process.execPath, ['--require', preload, script, 'version'], { encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  const m = /NEWSPACE (\d+)/.exec(r.stderr);
  assert.ok(m, `no new space figure from ${script}: ${r.stderr}`);
  return Number(m[1]);
}

test("the CLI caps the young generation before its modules load: loading them alone used to grow the new space to V8's maximum", async () => {
  const { YOUNG_GENERATION_CAP_BYTES } = await import('../src/platform/young-generation.js');
  // The program's modules loaded without main.ts's cap first: the control, it must pass the cap.
  const uncapped = newSpaceAfterLoading(fileURLToPath(new URL('../src/cli/program.js', import.meta.url)));
  assert.ok(uncapped > YOUNG_GENERATION_CAP_BYTES, `loading the program without the cap left a ${uncapped / MB} MB new space: this test needs loading to pass the cap`);
  const capped = newSpaceAfterLoading(CLI);
  assert.ok(capped <= YOUNG_GENERATION_CAP_BYTES, `main.js left a ${capped / MB} MB new space after loading, past the ${YOUNG_GENERATION_CAP_BYTES / MB} MB cap: the cap must be in force before the modules load`);
});
