/**
 * One delivery worker per output: sends the output's pending messages from the store, oldest
 * first, a few at a time, and deletes each once the target accepted it. A failure pauses only this
 * output, with exponential backoff; the messages stay in the store, so a restart resumes them.
 * Delivery is at least once: a send that timed out may still have arrived, and is sent again.
 *
 * A send the target accepted is never sent again by this worker: when the store cannot take the
 * acknowledgement (PostgreSQL away), the delivery is kept here as sent and its acknowledgement is
 * written once the store is back, before anything new is claimed. Meanwhile it stays leased to
 * this replica, so no other replica sends it either (found in the fleet drill: each send in flight
 * when PostgreSQL went away was recorded as failed, released, and sent again). What remains to
 * repeat is a send in flight on a replica that dies, or on one whose outage outlasts the lease.
 */
import type { Logger } from '../platform/logger.js';
import type { DeliveryConfig } from './config.js';
import type { AlertBackend } from './backend.js';
import type { PendingDelivery } from './store.js';
import { PermanentDeliveryError, type AlertMessage, type Output } from './types.js';
import { fromJsonText } from '../engine/json.js';

class SendTimeout extends Error {}

export class DeliveryWorker {
  private stopped = false;
  private running: Promise<void> | undefined;
  private waker: (() => void) | undefined;
  private woken = false;
  private failuresInRow = 0;
  /** Sends in flight right now (for stop). */
  private inFlight = 0;
  /** Accepted by the target, acknowledgement not yet in the store: written before anything new is claimed. */
  private readonly unrecorded = new Map<number, PendingDelivery>();
  /**
   * Waiting for new messages with none pending in the store: what the writer commits next is all
   * there is to send, and it may hand it over (handOff) instead of the worker reading it back.
   */
  private idle = false;
  /** Committed deliveries handed over while idle, oldest first: sent as they are, no claim. */
  private handed: PendingDelivery[] = [];

  constructor(
    readonly output: Output,
    private readonly store: AlertBackend,
    private readonly cfg: DeliveryConfig,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (!this.running) {
      this.running = this.loop().catch((err) => {
        // Only a store that went away (closed under a late send) gets here; pending rows stay.
        if (!this.stopped) this.log.error({ output: this.output.name, err: String(err) }, 'delivery worker stopped');
      });
    }
  }

  /**
   * Deliveries of this output just committed, with their messages in hand. Taken only while the
   * worker is idle (nothing else pending: these are the next to send, in order); otherwise they
   * are read from the store in their turn. The exec → alert path then has no read back, no parse
   * and one acknowledgement write per batch (issue 16). Call wake() after.
   */
  handOff(ds: readonly PendingDelivery[]): boolean {
    if (!this.idle || this.stopped || ds.length === 0) return false;
    for (const d of ds) this.handed.push(d);
    return true;
  }

  /** New messages were queued: look now (unless backing off). */
  wake(): void {
    this.woken = true;
    this.waker?.();
  }

  /** Wait until woken, or `ms` passed (forever when undefined). */
  private sleep(ms: number | undefined): Promise<void> {
    if (this.woken || this.stopped) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let t: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(t);
        this.waker = undefined;
        this.woken = false;
        resolve();
      };
      if (ms !== undefined) t = setTimeout(done, ms);
      this.waker = done;
    });
  }

  private backoffMs(): number {
    const base = Math.min(this.cfg.retry_max_ms, this.cfg.retry_initial_ms * 2 ** Math.min(this.failuresInRow - 1, 30));
    // Jitter, so agents that lost one server don't all come back at the same instant.
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /** Send one; 'sent' once the target accepted it (kept as sent until recordSent writes it). */
  private async sendOne(d: PendingDelivery): Promise<'sent' | 'retry' | 'dead'> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const msg = d.message ?? (fromJsonText(d.payload) as AlertMessage);
      await Promise.race([
        this.output.send(msg),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new SendTimeout(`no answer in ${this.cfg.send_timeout_ms} ms`)), this.cfg.send_timeout_ms);
        }),
      ]);
    } catch (err) {
      const permanent = err instanceof PermanentDeliveryError || err instanceof SyntaxError;
      const text = err instanceof Error ? err.message : String(err);
      try {
        await this.store.failed(this.output.name, d, text, permanent);
      } catch (e) {
        // The store is closed (a late send at stop) or unreachable: the delivery stays pending
        // (a lease on it runs out).
        if (!this.stopped) this.log.warn({ output: this.output.name, err: String(e) }, 'cannot record a failed delivery; it stays pending');
        return 'retry';
      }
      if (permanent) this.log.error({ output: this.output.name, alert: d.alertId, err: text }, 'output refused an alert for good; it is kept in the store, not retried');
      return permanent ? 'dead' : 'retry';
    } finally {
      clearTimeout(timer);
    }
    // Sent: from here on it is only ever recorded, never sent again by this worker.
    this.unrecorded.set(d.id, d);
    return 'sent';
  }

  /**
   * Write the acknowledgements of what was sent and not yet recorded (in one write where the
   * store can); false while the store does not take them (they stay here, leased to this
   * replica, and are tried again after a backoff).
   */
  private async recordSent(): Promise<boolean> {
    if (this.unrecorded.size === 0) return true;
    const sent = [...this.unrecorded.values()];
    try {
      if (this.store.deliveredAll) await this.store.deliveredAll(this.output.name, sent);
      else for (const d of sent) {
        await this.store.delivered(this.output.name, d);
        this.unrecorded.delete(d.id);
      }
      this.unrecorded.clear();
      return true;
    } catch (err) {
      if (!this.stopped) this.log.warn({ output: this.output.name, alerts: sent.filter((d) => this.unrecorded.has(d.id)).map((d) => d.alertId), err: String(err) }, 'cannot record deliveries the output accepted; they are kept as sent and recorded when the store is back (not sent again)');
      return false;
    }
  }

  /** Wait for new messages with nothing pending (a handOff may come meanwhile). */
  private async idleWait(): Promise<void> {
    this.idle = true;
    try {
      await this.sleep(undefined);
    } finally {
      this.idle = false;
    }
  }

  /** After a failure: wait out the backoff, and say so now and then. Only a timer (or stop) ends it. */
  private async backoff(): Promise<void> {
    this.failuresInRow++;
    const wait = this.backoffMs();
    if (this.failuresInRow === 1 || this.failuresInRow % 10 === 0) {
      const pending = await Promise.resolve(this.store.counters(this.output.name)).then((c) => c.pending, () => undefined);
      this.log.warn({ output: this.output.name, failuresInRow: this.failuresInRow, retryInMs: wait, pending }, 'output is failing; alerts are kept and retried');
    }
    // New alerts must not hammer a target that is down.
    this.woken = false;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { this.waker = undefined; resolve(); }, wait);
      this.waker = () => { if (this.stopped) { clearTimeout(t); this.waker = undefined; resolve(); } };
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      // Messages written in a transaction not yet committed are not sent: what an output has is
      // always in the store too. The commit wakes this worker (what it hands over is committed).
      if (this.handed.length === 0 && this.store.writing()) {
        await this.sleep(50);
        continue;
      }
      // What was sent while the store was away is recorded first: claimed again (its lease ended)
      // it would be sent twice.
      if (this.unrecorded.size > 0 && !(await this.recordSent())) {
        await this.backoff();
        continue;
      }
      const handed = this.handed.length > 0;
      let batch: PendingDelivery[];
      if (handed) {
        batch = this.handed.splice(0, this.cfg.concurrency);
      } else {
        try {
          batch = await this.store.claim(this.output.name, this.cfg.concurrency);
        } catch (err) {
          if (this.stopped) break;
          this.log.error({ output: this.output.name, err: String(err) }, 'cannot read pending deliveries');
          await this.sleep(1000);
          continue;
        }
        if (batch.length === 0) {
          await this.idleWait();
          continue;
        }
      }
      this.inFlight = batch.length;
      const results = await Promise.all(batch.map((d) => this.sendOne(d)));
      this.inFlight = 0;
      const recorded = await this.recordSent();
      if (!recorded || results.includes('retry')) {
        // What failed is pending in the store, before what was handed after it: read them all
        // from the store again, in order.
        this.handed = [];
        await this.backoff();
        continue;
      }
      if (this.failuresInRow > 0) {
        this.log.info({ output: this.output.name, afterFailures: this.failuresInRow }, 'output is delivering again');
        this.failuresInRow = 0;
      }
      // The last of what was handed over is sent and nothing was committed since (no wake): the
      // store holds nothing else for this output, so wait without reading it.
      if (handed && this.handed.length === 0 && !this.woken) await this.idleWait();
    }
  }

  /** Stop after the sends in flight (waiting at most `graceMs`); pending messages stay stored. */
  async stop(graceMs = 2000): Promise<void> {
    this.stopped = true;
    this.waker?.();
    if (this.running) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([this.running, new Promise<void>((r) => { t = setTimeout(r, graceMs); })]);
      clearTimeout(t);
    }
    if (this.unrecorded.size > 0 && !(await this.recordSent())) {
      // Their leases run out and another replica (or this one, restarted) sends them again.
      this.log.warn({ output: this.output.name, sentUnrecorded: [...this.unrecorded.values()].map((d) => d.alertId) }, 'stopping with deliveries sent but not recorded in the store; they will be sent again');
    }
    await this.output.close().catch((err) => this.log.warn({ output: this.output.name, err: String(err) }, 'output did not close cleanly'));
  }

  get busy(): boolean {
    return this.inFlight > 0;
  }
}
