/**
 * A full garbage collection in the first quiet second after a burst of events (issue 16: the exec
 * → alert p99 and the agent's RSS).
 *
 * Under an exec storm each exec leaves some 2 KB in V8's old generation: its process-table entry
 * lives out its 5 s exit grace, survives two scavenges and is promoted. V8 runs a mark-compact
 * once the old generation has grown some 10 MB past what the last one left (factor 1.1 and its
 * 8 MB minimum step, --trace-gc-verbose), which is every few thousand execs, so inside a storm:
 * its 8–10 ms atomic pause and the marking steps before it held the alerts of that moment
 * (12–20 ms where the rest took 3). Here the same collection runs where it holds nothing up: once
 * no event came for `quietMs`, after at least `minEvents`, and only if the old generation has
 * grown `minGrowthBytes` since the last major GC (V8's or this one's). It moves V8's collection
 * to a quiet moment rather than adding one: at most one per `minGrowthBytes` promoted, where V8
 * would run one per ~10 MB. The next burst starts with the whole headroom.
 *
 * An idle agent never runs it (no events arm it), nor one whose events never stop (a host that
 * execs without pause gets V8's own schedule, as before).
 *
 * The collection is V8's `gc()`, which node exposes only under --expose-gc: the flag is set just
 * long enough to call `gc` in a fresh context, and cleared again, so the agent's own global has
 * no `gc`.
 */
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PauseTimer } from './pause-timer.js';

export const QUIET_GC_QUIET_MS = 1000;
export const QUIET_GC_MIN_EVENTS = 1000;
/** Old-generation growth since the last major GC that is worth a collection (of V8's ~10 MB headroom). */
export const QUIET_GC_MIN_GROWTH_BYTES = 3 * 1024 * 1024;

export interface QuietGcOptions {
  quietMs?: number;
  minEvents?: number;
  minGrowthBytes?: number;
  /** The old generation's bytes in use now (tests give their own). */
  oldBytes?: () => number;
}

/** V8's old space in use, bytes. */
export function oldSpaceBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')?.space_used_size ?? 0;
}

export class QuietGc {
  private readonly pause: PauseTimer;
  private readonly minEvents: number;
  private readonly minGrowth: number;
  private readonly oldBytes: () => number;
  private events = 0;
  /** Old-generation bytes in use after the last major GC. */
  private baseline: number;
  /** Collections run (metrics, tests). */
  collections = 0;
  /** Quiet moments that found too little growth to collect (tests). */
  skipped = 0;
  private observer: PerformanceObserver | undefined;

  constructor(private readonly collect: () => void, opts: QuietGcOptions = {}) {
    this.minEvents = opts.minEvents ?? QUIET_GC_MIN_EVENTS;
    this.minGrowth = opts.minGrowthBytes ?? QUIET_GC_MIN_GROWTH_BYTES;
    this.oldBytes = opts.oldBytes ?? oldSpaceBytes;
    this.baseline = this.oldBytes();
    this.pause = new PauseTimer({ quietMs: opts.quietMs ?? QUIET_GC_QUIET_MS }, () => this.quiet());
  }

  /** `n` events were handled now. */
  busy(n: number): void {
    this.pause.commit();
    this.events += n;
    if (this.events >= this.minEvents) this.pause.arm();
  }

  /** A major GC ran (V8's own): what it left is the new baseline. */
  majorGcRan(): void {
    this.baseline = this.oldBytes();
  }

  /** V8's own major GCs move the baseline from now on (until stop). */
  followV8(): this {
    this.observer ??= new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (((e as { detail?: { kind?: number } }).detail)?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) this.majorGcRan();
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
    return this;
  }

  stop(): void {
    this.pause.stop();
    this.observer?.disconnect();
    this.observer = undefined;
  }

  private quiet(): void {
    this.events = 0;
    if (this.oldBytes() - this.baseline < this.minGrowth) {
      this.skipped++;
      return;
    }
    this.collections++;
    this.collect();
    this.baseline = this.oldBytes();
  }
}

/** Run `code` in a fresh context made while --expose-gc is on (so it has `gc`); the flag is cleared again. */
function withGcExposed(code: string): unknown {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext(code);
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/**
 * V8's full GC, or undefined where it cannot be had. Node's own `gc` when it was started with
 * --expose-gc; otherwise each call makes a fresh context that has one (under a millisecond, for a
 * collection that runs once per burst): holding on to a context's `gc` would keep the whole
 * context, some 200 KB of heap, alive for good.
 */
export function v8Gc(): (() => void) | undefined {
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') return own as () => void;
  try {
    if (withGcExposed('typeof gc') !== 'function') return undefined;
  } catch {
    return undefined;
  }
  return () => void withGcExposed('gc()');
}

/**
 * The agent's quiet-time collector: V8's gc(), with V8's own major GCs moving its baseline.
 * Undefined where gc() could not be had.
 */
export function quietGc(opts?: QuietGcOptions): QuietGc | undefined {
  const gc = v8Gc();
  return gc ? new QuietGc(gc, opts).followV8() : undefined;
}
