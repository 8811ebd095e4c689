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
 * glibc reserves each thread arena as a 64 MB-aligned anonymous mapping (HEAP_MAX_SIZE), which
 * /proc/self/maps shows.
 */
function arenasAroundWorkers(cap: boolean, env: NodeJS.ProcessEnv = {}): { before: number; after: number; limit: unknown } {
  const program = `
    import { limitMallocArenas } from ${JSON.stringify(MODULE)};
    import { readFileSync } from 'node:fs';
    import { Worker } from 'node:worker_threads';
    const limit = ${cap ? 'limitMallocArenas()' : 'null'};
    const arenas = () => readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => {
      const m = /^([0-9a-f]+)-([0-9a-f]+) \\S+ 0+ 00:00 0\\s*$/.exec(l);
      return m !== null && BigInt('0x' + m[1]) % (64n << 20n) === 0n;
    }).length;
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
