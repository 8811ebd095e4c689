/**
 * Scavenges (V8's young-generation GCs) on the main thread alone, set by the agent itself so
 * `node dist/src/cli/main.js run` gets it without flags (issue 16: CPU per exec).
 *
 * By default V8 splits each scavenge into parallel tasks on its worker threads. The agent's
 * scavenges are small (a young generation capped at 8 MB: young-generation.ts) and come every
 * few seconds under an exec storm; split over threads on a host whose cores are busy (the storm
 * itself), the tasks' hand-offs and waits cost more CPU in all than the one thread doing the copy
 * (V8's worker threads took ~15 µs per exec, a fifth of the agent's CPU, on a 2-core host). The
 * old generation's concurrent marking is left on: it keeps the long mark-compact pauses off the
 * event path.
 *
 * V8 reads the flag at each scavenge, so setting it at run time works (test/gc-threads.test.ts
 * reads V8's own GC trace: no background scavenging once set). A --parallel-scavenge,
 * --no-parallel-scavenge or --single-threaded-gc given to node (argv or NODE_OPTIONS) wins:
 * nothing is changed then.
 */
import { setFlagsFromString } from 'node:v8';

function userChoseScavenging(): boolean {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return given.some((a) => /^--(no-)?(parallel-scavenge|single-threaded-gc|single-threaded)\b/.test(a.replace(/_/g, '-')));
}

/** Scavenge on the main thread only from now on; false, changing nothing, when node was given a flag for it. */
export function serialScavenges(): boolean {
  if (userChoseScavenging()) return false;
  setFlagsFromString('--no-parallel-scavenge');
  return true;
}
