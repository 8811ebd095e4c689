/**
 * The cap on glibc's malloc arenas (src/platform/malloc-arenas.ts, native/malloc_tune.c), in a
 * child node process each: threads started after the cap malloc in the arenas that exist and
 * reserve no new one, where without it each new thread reserves its own; a MALLOC_ARENA_MAX or
 * GLIBC_TUNABLES given by the user wins; the agent's command line still runs with the cap in place.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { limitMallocArenas } from '../src/platform/malloc-arenas.js';
import { loadNativeAddon } from '../src/platform/native-addon.js';
import { CLI } from './helpers/paths.js';

const MODULE = new URL('../src/platform/malloc-arenas.js', import.meta.url).href;

const addon = loadNativeAddon();
const skip =
  'error' in addon
    ? `the native addon is not built here (${addon.error})`
    : typeof addon.addon.mallocArenaMax !== 'function'
      ? 'the native addon predates mallocArenaMax: rebuild it (npm rebuild)'
      : process.report?.getReport && !(process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime
        ? 'not glibc: there is no arena cap to test'
        : false;

/**
 * Arenas reserved in the child before and after 4 worker threads started and each malloced:
 * glibc reserves each thread arena's heap as 64 MB of address space aligned on 64 MB
 * (HEAP_MAX_SIZE), shown in /proc/self/maps as anonymous mappings that run from the aligned start
 * to exactly 64 MB on (the part in use, then the PROT_NONE rest). An aligned start alone is not
 * enough: V8's own reservations (a worker's isolate) land on a 64 MB boundary now and then, and
 * were once counted as an arena.
 */
function arenasAroundWorkers(cap: boolean, env: NodeJS.ProcessEnv = {}): { before: number; after: number; limit: unknown } {
  const program = `
    import { limitMallocArenas } from ${JSON.stringify(MODULE)};
    import { readFileSync } from 'node:fs';
    import { Worker } from 'node:worker_threads';
    const limit = ${cap ? 'limitMallocArenas()' : 'null'};
    const HEAP = 64n << 20n;
    const arenas = () => {
      const anon = [];
      for (const l of readFileSync('/proc/self/maps', 'utf8').split('\\n')) {
        const m = /^([0-9a-f]+)-([0-9a-f]+) \\S+ 0+ 00:00 0\\s*$/.exec(l);
        if (m) anon.push([BigInt('0x' + m[1]), BigInt('0x' + m[2])]);
      }
      let n = 0;
      for (let i = 0; i < anon.length; i++) {
        const start = anon[i][0];
        if (start % HEAP !== 0n) continue;
        let end = anon[i][1];
        for (let j = i + 1; j < anon.length && anon[j][0] === end && end < start + HEAP; j++) end = anon[j][1];
        if (end === start + HEAP) n++;
      }
      return n;
    };
    const before = arenas();
    const workers = [];
    for (let i = 0; i < 4; i++) {
      const w = new Worker('const b = []; for (let i = 0; i < 64; i++) b.push(Buffer.alloc(64 * 1024, i)); import("node:worker_threads").then((m) => m.parentPort.postMessage(b.length));', { eval: true });
      workers.push(new Promise((r) => w.once('message', () => r(w))));
    }
    const started = await Promise.all(workers);
    const after = arenas();
    for (const w of started) await w.terminate();
    console.log(JSON.stringify({ before, after, limit }));
  `;
  const childEnv = { ...process.env, ...env };
  if (!('MALLOC_ARENA_MAX' in env)) delete childEnv.MALLOC_ARENA_MAX;
  if (!('GLIBC_TUNABLES' in env)) delete childEnv.GLIBC_TUNABLES;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', program], { encoding: 'utf8', env: childEnv });
  return JSON.parse(out) as { before: number; after: number; limit: unknown };
}

test('without the cap each new thread reserves an arena of its own; with it, none does', { skip }, () => {
  const free = arenasAroundWorkers(false);
  assert.ok(free.after > free.before, `4 workers reserved no new arena without the cap: ${JSON.stringify(free)}`);
  const capped = arenasAroundWorkers(true);
  assert.deepEqual(capped.limit, { applied: true, arenas: 1 });
  assert.equal(capped.after, capped.before, `workers reserved arenas despite the cap: ${JSON.stringify(capped)}`);
});

test("the user's MALLOC_ARENA_MAX or GLIBC_TUNABLES arena_max wins over the cap", () => {
  assert.deepEqual(limitMallocArenas(1, { MALLOC_ARENA_MAX: '4' }), { applied: false, reason: 'MALLOC_ARENA_MAX or GLIBC_TUNABLES set by the user' });
  assert.deepEqual(limitMallocArenas(1, { GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0:glibc.malloc.arena_max=3' }), {
    applied: false,
    reason: 'MALLOC_ARENA_MAX or GLIBC_TUNABLES set by the user',
  });
});

test('with MALLOC_ARENA_MAX set, new threads get arenas as the user asked, not one', { skip }, () => {
  const r = arenasAroundWorkers(true, { MALLOC_ARENA_MAX: '16' });
  assert.equal((r.limit as { applied: boolean }).applied, false);
  assert.ok(r.after > r.before, `the user's MALLOC_ARENA_MAX=16 was overridden: ${JSON.stringify(r)}`);
});

test('the CLI runs with the cap in place', { skip }, () => {
  const out = execFileSync(process.execPath, [CLI, '--version'], { encoding: 'utf8' });
  assert.match(out, /\d+\.\d+\.\d+/);
});
