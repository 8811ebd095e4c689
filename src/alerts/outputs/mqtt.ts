/**
 * Alerts published to an MQTT broker at QoS 1, retain off, on a topic made from a template
 * (priority, rule, …); resolved on the broker's PUBACK. While the client is disconnected, sends
 * fail at once rather than filling mqtt.js's offline queue; a PUBACK that does not come in time
 * fails the send and withdraws the message, so the queue's retry is the only copy in flight.
 */
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { lazyRequire } from '../../platform/lazy-require.js';
import type { AlertMessage } from '../types.js';
import { FilteredOutput, type OutputOptions, RetryableDeliveryError, describeError, redactUrl, withDeadline } from './base.js';
import { LiveClient } from './live-client.js';
import { fillTemplate } from './render.js';
import { toJsonText } from '../../engine/json.js';

export interface MqttOutputOptions extends OutputOptions {
  url: string;
  topic: string;
  username?: string;
  password?: string;
  clientId?: string;
  timeoutMs: number;
}

/** A topic level: no separators, wildcards or spaces. */
const mqtt = lazyRequire<typeof import('mqtt')>('mqtt');

export const mqttLevel = (s: string): string => s.replace(/[^A-Za-z0-9_.-]+/g, '_');

export class MqttOutput extends FilteredOutput {
  private readonly opts: MqttOutputOptions;
  private readonly live: LiveClient<MqttClient>;

  constructor(opts: MqttOutputOptions) {
    super(opts);
    this.opts = opts;
    this.live = new LiveClient(opts, this.where, {
      create: () => mqtt().connect(opts.url, {
        clientId: opts.clientId ?? `minewatch-${randomBytes(6).toString('hex')}`,
        username: opts.username,
        password: opts.password,
        connectTimeout: opts.timeoutMs,
        reconnectPeriod: 500,
        clean: true,
        queueQoSZero: false,
      }),
      isReady: (c) => c.connected,
      readyEvent: 'connect',
    });
  }

  protected async deliver(msg: AlertMessage): Promise<void> {
    const client = await this.live.get();
    const topic = fillTemplate(this.opts.topic, msg, mqttLevel);
    let id: number | undefined;
    const acked = new Promise<void>((resolve, reject) => {
      client.publish(topic, toJsonText(msg), { qos: 1, retain: false }, (err) => (err ? reject(err) : resolve()));
      id = client.getLastMessageId();
    });
    try {
      await withDeadline(acked, this.opts.timeoutMs, 'waiting for PUBACK', () => {
        // Withdraw it, or mqtt.js would resend it after a reconnect beside the queue's retry.
        if (id !== undefined && client.outgoing[id]) client.removeOutgoingMessage(id);
      });
    } catch (e) {
      throw new RetryableDeliveryError(`${this.where}: publish to '${topic}' on ${redactUrl(this.opts.url)} failed: ${describeError(e)}`);
    }
  }

  async close(): Promise<void> {
    const client = this.live.take();
    if (client) await withDeadline(client.endAsync(), this.opts.timeoutMs, 'closing').catch(() => client.end(true));
  }
}
