/**
 * A broker client made on first use and kept across outages (it reconnects by itself). A send
 * waits for it to be connected at most one timeout, so a dead broker fails deliveries promptly
 * instead of queueing them inside the client library; connection errors are logged once each.
 */
import type { Logger } from '../../platform/logger.js';
import { RetryableDeliveryError, describeError, redactUrl, withDeadline } from './base.js';

/** What both broker clients (node-redis, mqtt.js) offer: events for errors and for readiness. */
interface Emitter {
  // Each library types its events and their listeners' arguments its own way: only `any` here lets
  // both clients' overloads satisfy one interface (unknown/never reject one or the other).
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: any, listener: (...args: any[]) => void): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  once(event: any, listener: (...args: any[]) => void): unknown;
}

export interface LiveClientSpec<C extends Emitter> {
  create: () => C;
  isReady: (c: C) => boolean;
  /** The event the client emits once it is (re)connected and usable. */
  readyEvent: string;
}

/** The output's own settings the client needs. */
export interface LiveClientTarget {
  url: string;
  timeoutMs: number;
  log?: Logger;
}

export class LiveClient<C extends Emitter> {
  private client: C | undefined;
  private lastError = '';

  /** `where` ("outputs.redis"): errors name `<where>.url`. */
  constructor(private readonly target: LiveClientTarget, private readonly where: string, private readonly spec: LiveClientSpec<C>) {}

  /** The connected client, or a RetryableDeliveryError once timeoutMs has passed without one. */
  get(): Promise<C> {
    const s = { ...this.spec, ...this.target, where: this.where };
    let client = this.client;
    if (!client) {
      client = this.client = s.create();
      client.on('error', (e: unknown) => {
        const text = describeError(e);
        if (text !== this.lastError) s.log?.warn({ url: redactUrl(s.url), err: text }, `${s.where}: connection problem`);
        this.lastError = text;
      });
      client.on(s.readyEvent, () => (this.lastError = ''));
    }
    if (s.isReady(client)) return Promise.resolve(client);
    const c = client;
    return withDeadline(new Promise<C>((resolve) => c.once(s.readyEvent, () => resolve(c))), s.timeoutMs, 'waiting for the connection')
      .catch((e: Error) => {
        throw new RetryableDeliveryError(`${s.where}.url: not connected to ${redactUrl(s.url)}${this.lastError ? `: ${this.lastError}` : ''} (${e.message})`);
      });
  }

  /** Hand the client over for closing; the next get() makes a new one. */
  take(): C | undefined {
    const c = this.client;
    this.client = undefined;
    return c;
  }
}
