/**
 * V8's memory reducer, held to one GC per run (issue 16: idle ≤ 0.5% of a core).
 *
 * When the old generation has grown and no full GC has yet run (which is the agent after every
 * start: loading and compiling the rules grow it, nothing fills it), V8 schedules the memory
 * reducer 8 s later and, once allocation is low, runs a full GC with compaction, then a second
 * one at least, and a third while it expects more garbage. On an idle agent that is 150–250 ms of
 * CPU in one go, about 20–30 s after start (three mark-compacts of a 25 MB heap, with their
 * incremental marking), the largest single cost of its first idle minute: measured with 1,000
 * sleepers on the host, 0.62–0.79% of a core over the minute after start against 0.15% once it
 * was over. Held to one GC, the same minute cost 0.33–0.40%; the later GCs only took committed
 * memory from 32 to 27 MB, which the next exec storm grows back.
 *
 * V8 reads --memory-reducer-single-gc each time the reducer decides, so setting it at run time
 * holds. A memory-reducer flag given to node (argv or NODE_OPTIONS) wins: nothing is changed then.
 */
import { setFlagsFromString } from 'node:v8';
import { userGaveNodeFlag } from './node-flags.js';

/** One GC per memory-reducer run instead of two or three. */
export function limitMemoryReducer(): void {
  if (!userGaveNodeFlag(/^--(no-)?memory-reducer/)) setFlagsFromString('--memory-reducer-single-gc');
}
