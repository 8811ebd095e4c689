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

  private async sendOne(d: PendingDelivery): Promise<'ok' | 'retry' | 'dead'> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const msg = fromJsonText(d.payload) as AlertMessage;
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
    return (await this.record(d)) ? 'ok' : 'retry';
  }

  /** Write one sent delivery's acknowledgement; false (and it stays kept as sent) when the store does not take it. */
  private async record(d: PendingDelivery): Promise<boolean> {
    try {
      await this.store.delivered(this.output.name, d);
      this.unrecorded.delete(d.id);
      return true;
    } catch (err) {
      if (!this.stopped) this.log.warn({ output: this.output.name, alert: d.alertId, sentUnrecorded: this.unrecorded.size, err: String(err) }, 'cannot record a delivery the output accepted; it is kept as sent and recorded when the store is back (not sent again)');
      return false;
    }
  }

  /**
   * Write the acknowledgements of what was sent and not yet recorded; false while the store does
   * not take them (they stay here, leased to this replica, and are tried again after a backoff).
   */
  private async recordSent(): Promise<boolean> {
    for (const d of [...this.unrecorded.values()]) if (!(await this.record(d))) return false;
    return true;
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
      // always in the store too. The commit wakes this worker.
      if (this.store.writing()) {
        await this.sleep(50);
        continue;
      }
      // What was sent while the store was away is recorded first: claimed again (its lease ended)
      // it would be sent twice.
      if (this.unrecorded.size > 0 && !(await this.recordSent())) {
        await this.backoff();
        continue;
      }
      let batch: PendingDelivery[];
      try {
        batch = await this.store.claim(this.output.name, this.cfg.concurrency);
      } catch (err) {
        if (this.stopped) break;
        this.log.error({ output: this.output.name, err: String(err) }, 'cannot read pending deliveries');
        await this.sleep(1000);
        continue;
      }
      if (batch.length === 0) {
        await this.sleep(undefined);
        continue;
      }
      this.inFlight = batch.length;
      const results = await Promise.all(batch.map((d) => this.sendOne(d)));
      this.inFlight = 0;
      if (results.includes('retry')) {
        await this.backoff();
      } else if (this.failuresInRow > 0) {
        this.log.info({ output: this.output.name, afterFailures: this.failuresInRow }, 'output is delivering again');
        this.failuresInRow = 0;
      }
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
