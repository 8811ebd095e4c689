/**
 * Alerts appended to a Redis stream: XADD KEY MAXLEN ~ N * with the Falco JSON in field `alert`
 * and a few fields consumers filter on (rule, priority, hostname, uuid, kind). Resolved on the
 * entry id Redis answers. The client reconnects in the background; while it is not connected,
 * sends fail at once (no offline queue), so a dead Redis never holds a delivery.
 */
import type { RedisClientType } from 'redis';
import { lazyRequire } from '../../platform/lazy-require.js';
import type { AlertMessage } from '../types.js';
import { FilteredOutput, type OutputOptions, RetryableDeliveryError, describeError, redactUrl, withDeadline } from './base.js';
import { LiveClient } from './live-client.js';
import { toJsonText } from '../../engine/json.js';

export interface RedisOutputOptions extends OutputOptions {
  url: string;
  key: string;
  maxlen: number;
  timeoutMs: number;
}

/** Longest pause between reconnection attempts. */
const MAX_RECONNECT_WAIT_MS = 1000;
const redis = lazyRequire<typeof import('redis')>('redis');

export class RedisOutput extends FilteredOutput {
  private readonly opts: RedisOutputOptions;
  private readonly live: LiveClient<RedisClientType>;

  constructor(opts: RedisOutputOptions) {
    super(opts);
    this.opts = opts;
    this.live = new LiveClient(opts, this.where, {
      create: () => {
        const client = redis().createClient({
          url: opts.url,
          disableOfflineQueue: true,
          socket: {
            connectTimeout: opts.timeoutMs,
            reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, MAX_RECONNECT_WAIT_MS),
          },
        }) as RedisClientType;
        client.connect().catch(() => undefined); // retried by reconnectStrategy until close()
        return client;
      },
      isReady: (c) => c.isReady,
      readyEvent: 'ready',
    });
  }

  protected async deliver(msg: AlertMessage): Promise<void> {
    const client = await this.live.get();
    const o = this.opts;
    const mw = msg.minewatch;
    const fields: Record<string, string> = {
      alert: toJsonText(msg),
      rule: msg.rule,
      priority: msg.priority,
      hostname: msg.hostname,
      ...(mw ? { uuid: mw.uuid, kind: mw.kind } : {}),
    };
    try {
      await client.withCommandOptions({ timeout: o.timeoutMs }).xAdd(o.key, '*', fields, {
        TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: o.maxlen },
      });
    } catch (e) {
      const text = describeError(e);
      // WRONGTYPE and friends: the key holds something else; retrying will not change that.
      if (/^WRONGTYPE|^NOPERM|^NOAUTH|^ERR/.test(text)) this.log?.error({ output: this.name, key: o.key, err: text }, 'redis refused the alert');
      throw new RetryableDeliveryError(`${this.where}: XADD ${o.key} on ${redactUrl(o.url)} failed: ${text}`);
    }
  }

  async close(): Promise<void> {
    const client = this.live.take();
    if (!client) return;
    try {
      if (client.isReady) await withDeadline(client.close(), this.opts.timeoutMs, 'closing');
      else client.destroy();
    } catch {
      client.destroy();
    }
  }
}
