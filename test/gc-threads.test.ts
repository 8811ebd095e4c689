/**
 * Serial scavenges (src/platform/gc-threads.ts), in a child node process each: V8's own GC trace
 * (--trace-gc-nvp, which changes no GC setting) says how long its worker threads scavenged
 * (background.scavenge.parallel) in each young-generation GC. Without the setting a workload with
 * many survivors has them help; with it set at run time, none does; a flag given to node wins.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

const MODULE = new URL('../src/platform/gc-threads.js', import.meta.url).href;

interface Run {
  /** What serialScavenges() returned (null: not called). */
  set: boolean | null;
  scavenges: number;
  /** Scavenges in which a worker thread took part. */
  helped: number;
}

function scavenges(call: boolean, nodeArgs: string[] = []): Run {
  const program = `
    import { serialScavenges } from ${JSON.stringify(MODULE)};
    const set = ${call ? 'serialScavenges()' : 'null'};
    // Many survivors per scavenge: work enough for V8 to split it over its threads.
    let keep = [];
    for (let i = 0; i < 4e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 200000) keep = []; }
    console.log('RESULT ' + JSON.stringify({ set }));
  `;
  const out = execFileSync(process.execPath, ['--trace-gc-nvp', ...nodeArgs, '--input-type=module', '-e', program], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  let n = 0;
  let helped = 0;
  let set: boolean | null = null;
  for (const line of out.split('\n')) {
    if (line.startsWith('RESULT ')) set = (JSON.parse(line.slice(7)) as { set: boolean | null }).set;
    if (!/\bgc=s\b/.test(line)) continue;
    n++;
    const m = /\bbackground\.scavenge\.parallel=([0-9.]+)/.exec(line);
    assert.ok(m, `V8's trace line names no background.scavenge.parallel: ${line.slice(0, 200)}`);
    if (Number(m[1]) > 0) helped++;
  }
  return { set, scavenges: n, helped };
}

test('set at run time, no scavenge has a worker thread help; unset, the same work has them', (t) => {
  const free = scavenges(false);
  assert.ok(free.scavenges > 5, `only ${free.scavenges} scavenges: the workload must scavenge for this test to mean anything`);
  if (free.helped === 0) {
    t.skip('SKIP: V8 on this host scavenges on the main thread alone anyway (one CPU?): nothing to compare');
    return;
  }
  const serial = scavenges(true);
  assert.equal(serial.set, true);
  assert.ok(serial.scavenges > 5, `only ${serial.scavenges} scavenges with the setting`);
  assert.equal(serial.helped, 0, `${serial.helped} of ${serial.scavenges} scavenges had a worker thread help`);
});

test('a flag given to node wins: --parallel-scavenge keeps the helpers, and nothing is set', (t) => {
  const r = scavenges(true, ['--parallel-scavenge']);
  assert.equal(r.set, false);
  if (scavenges(false).helped === 0) {
    t.skip('SKIP: V8 on this host scavenges on the main thread alone anyway (one CPU?): nothing to compare');
    return;
  }
  assert.ok(r.helped > 0, `with --parallel-scavenge given, none of ${r.scavenges} scavenges had a worker thread help`);
});
