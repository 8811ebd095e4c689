/**
 * `npm run bench`: runs every benchmark module in this folder (files named `*.bench.ts`, built
 * to `dist/bench/*.bench.js`) in one process. Each module exports one or more functions whose
 * names end in `Bench` (other exports are helpers); each prints its figures as plain lines, every figure beside a baseline measured in the same
 * process (so the numbers mean something on any machine).
 *
 *   node dist/bench/run.js [FILTER]   only modules whose file name contains FILTER
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = new URL('./', import.meta.url);
const filter = process.argv[2];
const files = readdirSync(fileURLToPath(dir))
  .filter((f) => f.endsWith('.bench.js') && (!filter || f.includes(filter)))
  .sort();

if (files.length === 0) {
  console.error(`no benchmarks found in ${fileURLToPath(dir)}${filter ? ` matching '${filter}'` : ''}`);
  process.exit(1);
}

console.log(`# minewatch benchmarks: node ${process.version}, ${process.platform}/${process.arch}, one core`);
const t0 = performance.now();
let failed = 0;
for (const f of files) {
  const mod = (await import(new URL(f, dir).href)) as Record<string, unknown>;
  for (const [name, fn] of Object.entries(mod)) {
    if (typeof fn !== 'function' || !name.endsWith('Bench')) continue;
    console.log(`\n## ${f.replace(/\.js$/, '')} :: ${name}`);
    try {
      await (fn as () => unknown)();
    } catch (e) {
      failed++;
      console.log(`FAILED: ${(e as Error).stack ?? String(e)}`);
    }
  }
}
console.log(`\n# done in ${((performance.now() - t0) / 1000).toFixed(1)} s${failed ? `, ${failed} benchmark(s) failed` : ''}`);
if (failed) process.exitCode = 1;
