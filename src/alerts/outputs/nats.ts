/**
 * Alerts published to NATS JetStream: one message per alert on a subject made from a template
 * (priority, rule, …), resolved only on the stream's PubAck, so "sent" means "stored". The msg id
 * is the group's uuid and the delivery kind: a retry after a lost PubAck is dropped by the
 * stream's de-duplication window instead of stored twice. The stream is created when missing if
 * configured to. While the client is reconnecting, sends fail at once instead of queueing.
 */
import type { ConnectionOptions, JetStreamClient, NatsConnection } from 'nats';
import { nats } from '../fleet-nats.js';
import type { AlertMessage } from '../types.js';
import { FilteredOutput, type OutputOptions, RetryableDeliveryError, describeError, withDeadline } from './base.js';
import { fillTemplate } from './render.js';
import { toJsonText } from '../../engine/json.js';

export interface NatsOutputOptions extends OutputOptions {
  url: string;
  subject: string;
  stream: string;
  createStream: boolean;
  streamSubjects?: string[];
  token?: string;
  user?: string;
  password?: string;
  timeoutMs: number;
  /** More connection options: credentials files, TLS, an inbox prefix (fleet mode's forwarder). */
  connection?: Partial<ConnectionOptions>;
  /** The JetStream message id of a message (default: the group's uuid and the delivery kind). */
  msgId?: (msg: AlertMessage) => string | undefined;
}

/** A subject token: no dots, wildcards or spaces. */
export const natsToken = (s: string): string => s.replace(/[^A-Za-z0-9_-]+/g, '_');

/** The subjects a created stream listens on: the template's fixed leading tokens, then ">". */
export function defaultStreamSubjects(template: string, where: string): string[] {
  if (!template.includes('{')) return [template];
  const fixed: string[] = [];
  for (const t of template.split('.')) {
    if (t.includes('{')) break;
    fixed.push(t);
  }
  if (!fixed.length) throw new Error(`${where}.stream_subjects: the subject template '${template}' starts with a placeholder; list the stream's subjects in stream_subjects`);
  return [[...fixed, '>'].join('.')];
}

export class NatsOutput extends FilteredOutput {
  private readonly opts: NatsOutputOptions;
  private readonly streamSubjects: string[];
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private connecting: Promise<JetStreamClient> | undefined;
  /** False between a disconnect and the next reconnect. */
  private connected = false;
  private streamChecked = false;
  private closed = false;

  constructor(opts: NatsOutputOptions) {
    super(opts);
    this.opts = opts;
    this.streamSubjects = opts.streamSubjects ?? defaultStreamSubjects(opts.subject, this.where);
  }

  private async client(): Promise<JetStreamClient> {
    if (this.nc && !this.nc.isClosed() && this.js) {
      if (!this.connected) throw new RetryableDeliveryError(`${this.where}: not connected to ${this.opts.url} (reconnecting)`);
      return this.js;
    }
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<JetStreamClient> {
    const o = this.opts;
    const copts: ConnectionOptions = {
      servers: o.url,
      name: `minewatch ${this.name}`,
      timeout: o.timeoutMs,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      pingInterval: 10_000,
      ...(o.token ? { token: o.token } : {}),
      ...(o.user ? { user: o.user, pass: o.password } : {}),
      ...o.connection,
    };
    let nc: NatsConnection;
    try {
      nc = await nats().connect(copts);
    } catch (e) {
      throw new RetryableDeliveryError(`${this.where}.url: cannot connect to ${o.url}: ${describeError(e)}`);
    }
    if (this.closed) {
      await nc.close();
      throw new RetryableDeliveryError(`${this.where}: closed`);
    }
    this.nc = nc;
    this.connected = true;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === nats().Events.Disconnect) this.connected = false;
        else if (s.type === nats().Events.Reconnect) {
          this.connected = true;
          this.streamChecked = false; // a restarted broker may have lost its streams
        }
      }
    })().catch(() => undefined);
    void nc.closed().then(() => {
      if (this.nc === nc) this.nc = undefined;
    });
    this.js = nc.jetstream({ timeout: o.timeoutMs });
    return this.js;
  }

  /** Look the stream up once per connection, creating it when allowed and missing. */
  private async ensureStream(nc: NatsConnection): Promise<void> {
    const o = this.opts;
    const jsm = await nc.jetstreamManager({ timeout: o.timeoutMs });
    try {
      await jsm.streams.info(o.stream);
    } catch (e) {
      if (!/stream not found/i.test((e as Error).message)) throw e;
      await jsm.streams.add({ name: o.stream, subjects: this.streamSubjects });
      this.log?.info({ output: this.name, stream: o.stream, subjects: this.streamSubjects }, 'created the JetStream stream for alerts');
    }
  }

  protected async deliver(msg: AlertMessage): Promise<void> {
    const js = await this.client();
    const o = this.opts;
    const subject = fillTemplate(o.subject, msg, natsToken);
    try {
      if (o.createStream && !this.streamChecked) {
        await this.ensureStream(this.nc!);
        this.streamChecked = true;
      }
      const uuid = msg.minewatch?.uuid;
      const msgID = o.msgId ? o.msgId(msg) : uuid ? `${uuid}:${msg.minewatch.kind}` : undefined;
      const ack = await withDeadline(js.publish(subject, toJsonText(msg), {
        timeout: o.timeoutMs,
        ...(msgID ? { msgID } : {}),
      }), o.timeoutMs + 1000, `${this.where}: the PubAck from ${o.url}`);
      if (ack.stream !== o.stream) this.log?.debug({ output: this.name, stream: ack.stream }, 'alert stored in another stream than the configured one');
    } catch (e) {
      if (e instanceof RetryableDeliveryError) throw e;
      const code = (e as { code?: string }).code;
      if (code === '503') {
        // No stream listens on the subject (deleted, or lost with a broker's storage): look again next time.
        this.streamChecked = false;
        throw new RetryableDeliveryError(`${this.where}: no JetStream stream stores subject '${subject}' on ${o.url} (or JetStream is off there: nats-server -js); create stream '${o.stream}' or set ${this.where}.create_stream: true`);
      }
      throw new RetryableDeliveryError(`${this.where}: publish to '${subject}' on ${o.url} failed: ${describeError(e)}`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const nc = this.nc;
    this.nc = undefined;
    if (nc && !nc.isClosed()) await withDeadline(nc.close(), this.opts.timeoutMs, 'closing').catch(() => undefined);
  }
}
