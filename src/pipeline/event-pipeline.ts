/**
 * The event pipeline, the same for `run`, `server` and `replay`: sources hand events in (never
 * waiting: what does not fit in the bounded queue is dropped and counted), and each event runs
 * enrich → detectors → engine → response → alert sink, in batches that yield to I/O between them.
 */
import type { Match } from '../engine/types.js';
import type { Event, SyscallEvent } from '../events.js';
import type { CountingSink } from './alert-sink.js';
import { DetectorStage, type AnswerTaker, type DetectorsProvider } from './detect.js';
import type { EnrichStage } from './enrich.js';
import { PairCounter } from '../platform/pair-counter.js';
import { BoundedQueue } from './queue.js';

/** Events evaluated per turn of the event loop before yielding to I/O (sources keep reading). */
export const BATCH = 512;

const RESOLVED = Promise.resolve();

/** What the pipeline needs of the rules engine (a reload replaces it: read it per batch). */
export interface RulesStage {
  /** The event's matches (an array: walked by index, no iterator object per event). */
  process(ev: Event): readonly Match[];
}

/** What the pipeline needs of the response dispatcher. */
export interface ResponseStage extends AnswerTaker {
  onMatch(m: Match): void;
}

export interface EventPipelineOptions {
  queueSize: number;
  /** The rules as they run now (RulesManager.engine). */
  engine: () => RulesStage;
  enrich: EnrichStage;
  detectors: DetectorsProvider;
  response: ResponseStage;
  sink: CountingSink;
  /** The agent's own processes (and their children): their events are left out. */
  isSelf?: (pid: number) => boolean;
  /** Every event once enriched, before the detectors (`run --record`). */
  record?: (ev: Event) => void;
  /**
   * An event at least one rule matched, before anything sees its matches: what the stored alert
   * shows of it may be completed here (the process table's completeStatus).
   */
  beforeMatches?: (ev: Event) => void;
  /** Every rule match, after the response stage (the eBPF driver's RandomX feedback). */
  onRuleMatch?: (m: Match, ev: Event) => void;
  /**
   * An exec with a signature (SyscallEvent.execSig) that nothing came of: no rule matched and no
   * detector answered (the eBPF driver's quiet records, EbpfSource.execQuiet).
   */
  onQuietExec?: (sig: number) => void;
  /** An event the stages threw on: logged, skipped. */
  onError: (err: unknown, ev: Event) => void;
  /** Told of each drain's events, and stopped with the pipeline (the quiet-time GC, src/platform/quiet-gc.ts). */
  afterDrain?: { busy(events: number): void; stop(): void };
}

export interface PipelineCounts {
  queued: number;
  processed: number;
  queueDrops: number;
  own: number;
}

export class EventPipeline {
  /** Events evaluated, by source and type (for /metrics). */
  readonly eventCounts = new PairCounter();
  private readonly queue: BoundedQueue<Event>;
  private readonly detect: DetectorStage;
  private processed = 0;
  private own = 0;
  private draining = false;
  /**
   * False until the agent has the cluster actions: webhook routes take events before that (the
   * web server listens first), and a match evaluated earlier would find quarantine_workload
   * missing. Events wait in the queue meanwhile.
   */
  private open = false;
  private closed = false;

  constructor(private readonly o: EventPipelineOptions) {
    this.queue = new BoundedQueue<Event>(o.queueSize);
    this.detect = new DetectorStage(o.detectors, o.response);
  }

  /** Take an event from a source: never blocks, never throws. */
  readonly accept = (ev: Event): void => {
    if (this.closed) return;
    const pid = (ev as SyscallEvent).proc?.pid;
    if (pid !== undefined && this.o.isSelf?.(pid)) {
      this.own++;
      return;
    }
    if (!this.queue.push(ev)) this.onDrop?.(ev);
    this.kick();
  };

  /**
   * Told of each event the full queue refused. The process table has already taken a dropped
   * exec (it is applied as it is read, before the queue), so without this the recovery scan would
   * find the process known and never evaluate its exec (src/enrich/recovery.ts `missed`).
   */
  onDrop: ((ev: Event) => void) | undefined;

  /**
   * The EventSink of webhook sources (POST /k8s-audit): false when the queue is full, so the
   * route answers 503 and the sender retries.
   */
  readonly sink = (ev: Event): boolean => {
    if (this.closed) return false;
    const before = this.queue.dropped;
    this.accept(ev);
    return this.queue.dropped === before;
  };

  /** Start evaluating (what waited in the queue first). */
  start(): void {
    this.open = true;
    this.kick();
  }

  /** Evaluate everything queued now, synchronously (shutdown, replay's end). */
  flush(): void {
    while (this.queue.length > 0) this.drain(false);
  }

  /** Evaluate what is queued, then take nothing more. */
  close(): void {
    this.flush();
    this.closed = true;
    this.o.afterDrain?.stop();
  }

  get queueDrops(): number {
    return this.queue.dropped;
  }

  counts(): PipelineCounts {
    return { queued: this.queue.length, processed: this.processed, queueDrops: this.queue.dropped, own: this.own };
  }

  /**
   * Start a drain once the source's callback returns: a microtask, which Node runs as soon as the
   * callback that delivered the events is done (a ring buffer or netlink batch, a request), every
   * event of it queued by then. Not setImmediate: per source batch, an immediate cost a trip
   * through the event loop's check phase and two toggles of its idle handle (native calls), and
   * at ~1,000 execs/s most batches hold one command (issue 16). A drain longer than BATCH yields
   * to I/O with setImmediate, as before.
   */
  private kick(): void {
    if (!this.draining && this.open && this.queue.length > 0) {
      this.draining = true;
      void RESOLVED.then(this.drainLater);
    }
  }

  /** drain() as the immediate's callback: one function, not a closure per batch. */
  private readonly drainLater = (): void => this.drain(true);

  private drain(again: boolean): void {
    const o = this.o;
    const engine = o.engine();
    const before = this.processed;
    for (let i = 0; i < BATCH; i++) {
      const ev = this.queue.shift();
      if (!ev) break;
      this.processed++;
      this.eventCounts.inc(ev.source, ev.type);
      try {
        o.enrich.enrich(ev);
        o.record?.(ev);
        const answered = this.detect.onEvent(ev);
        const matches = engine.process(ev);
        if (matches.length > 0) o.beforeMatches?.(ev);
        for (let j = 0; j < matches.length; j++) {
          const m = matches[j]!;
          // Response first, before anything else sees the match (ARCHITECTURE.md).
          o.response.onMatch(m);
          this.detect.onMatch(m, ev);
          o.onRuleMatch?.(m, ev);
          o.sink.accept(m);
        }
        const sig = (ev as SyscallEvent).execSig;
        if (sig !== undefined && matches.length === 0 && !answered) o.onQuietExec?.(sig);
      } catch (err) {
        o.onError(err, ev);
      }
    }
    if (this.processed !== before) o.afterDrain?.busy(this.processed - before);
    if (!again) return;
    if (this.queue.length > 0 && !this.closed) setImmediate(this.drainLater);
    else this.draining = false;
  }
}
