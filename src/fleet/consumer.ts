/**
 * `alerts.consume`: a `minewatch server`'s side of fleet mode. Every replica pulls from one
 * durable JetStream consumer, so the stream hands each message to one replica at a time; a
 * replica acks a batch only after the store committed it, so a replica killed mid-batch leaves its
 * messages to be redelivered (ack_wait) to another, whose store write is idempotent on the group's
 * uuid (a redelivered first message or summary changes nothing).
 *
 * The host of an alert is the subject's last token, which the NATS permissions tie to one agent's
 * user: an alert claiming another hostname is stored under the subject's host, and logged.
 */
import type { Consumer, JetStreamManager, JsMsg, NatsConnection } from 'nats';
import type { Logger } from '../platform/logger.js';
import type { ConsumeConfig } from '../alerts/fleet-config.js';
import { nats, natsConnectionOptions, tokenHost } from '../alerts/fleet-nats.js';
import type { IncomingAlert } from '../alerts/types.js';
import { AlertShapeError, parseFalcoAlert } from '../web/input.js';

/** Where a batch goes: resolves once it is committed to the store, rejects when it is not. */
export interface BatchSink {
  storeBatch(alerts: IncomingAlert[]): Promise<void>;
  /**
   * Whether a failure may pass by itself (the store is away) rather than come back for these very
   * messages (one the store refuses). Without it, every failure is taken as transient.
   */
  transient?(e: unknown): boolean;
}

export interface ConsumerStats {
  received: number;
  stored: number;
  /** Batches whose store commit failed (their messages were nak'ed and come back). */
  failedBatches: number;
  /** Messages refused for good (not JSON, not an alert, a subject that names no host). */
  refused: number;
  /** Alerts that claimed another host than their subject's, stored under the subject's. */
  relabelled: number;
}

/** How long a replica waits before it tries a batch again after the store refused it. */
const STORE_RETRY_MS = 1000;
/**
 * Batches a replica stores at once, each in its own transaction: while one commits, the next is
 * decoded and written, so the store's round trips and commit do not leave both cores idle. Safe as
 * two replicas are (idempotent upserts that lock the groups they touch; each batch acked only after
 * its own commit), and a group's messages still commit in stream order: a batch holding a group
 * that a batch in flight holds waits for that one (else a first could commit after its summary and
 * bring nothing new, its message never queued).
 */
const BATCHES_IN_FLIGHT = 2;

/** The group an alert writes (undefined: one without a uuid, a group of its own). */
const groupOf = (a: IncomingAlert) => (a.minewatch?.uuid ? `${a.minewatch.uuid}\u0000${a.hostname}` : undefined);

export class FleetConsumer {
  readonly stats: ConsumerStats = { received: 0, stored: 0, failedBatches: 0, refused: 0, relabelled: 0 };
  private nc: NatsConnection | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;
  /** Set once the stream and the durable consumer exist and the first fetch was made. */
  private up = false;
  private connected = false;

  constructor(private readonly cfg: ConsumeConfig, private readonly sink: BatchSink, private readonly log: Logger) {}

  /** Connect, make sure the stream and the durable consumer exist, and start pulling. */
  async start(): Promise<void> {
    const c = this.cfg;
    try {
      this.nc = await nats().connect({
        servers: c.url, name: 'minewatch server', timeout: c.timeout_ms, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 500,
        ...natsConnectionOptions(c, 'alerts.consume'),
      });
    } catch (e) {
      throw new Error(`alerts.consume.url: cannot connect to ${c.url}: ${(e as Error).message}; check the URL and the server's NATS credentials`);
    }
    this.connected = true;
    const nc = this.nc;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === nats().Events.Disconnect) {
          this.connected = false;
          this.log.warn({ url: c.url }, 'NATS connection lost; the agents keep their alerts until it is back');
        } else if (s.type === nats().Events.Reconnect) {
          this.connected = true;
          this.log.info({ url: c.url }, 'NATS connection back');
        }
      }
    })().catch(() => undefined);
    const jsm = await nc.jetstreamManager({ timeout: c.timeout_ms });
    await this.ensureStream(jsm);
    await this.ensureConsumer(jsm);
    this.loop = this.pull().catch((e) => this.log.error({ err: String(e) }, 'the fleet consumer stopped'));
  }

  private async ensureStream(jsm: JetStreamManager): Promise<void> {
    const c = this.cfg;
    const subjects = [`${c.subject_prefix}.>`];
    try {
      const info = await jsm.streams.info(c.stream);
      if (!info.config.subjects?.includes(subjects[0]!)) {
        this.log.warn({ stream: c.stream, subjects: info.config.subjects, expected: subjects }, 'the fleet stream does not store the agents\' subjects; alerts.consume.subject_prefix and the stream disagree');
      }
      return;
    } catch (e) {
      if (!/stream not found/i.test((e as Error).message)) throw new Error(`alerts.consume.stream: cannot look up stream '${c.stream}': ${(e as Error).message}`);
    }
    if (!c.create_stream) throw new Error(`alerts.consume.stream: stream '${c.stream}' does not exist on ${c.url}; create it (subjects ${subjects[0]}) or set alerts.consume.create_stream: true`);
    try {
      // A work queue: a message is gone once a replica acked it, so the stream holds only what
      // is not stored yet; max_age bounds it when no server runs at all.
      await jsm.streams.add({
        name: c.stream, subjects, retention: nats().RetentionPolicy.Workqueue, storage: nats().StorageType.File,
        duplicate_window: nats().nanos(c.duplicate_window_s * 1000), max_age: c.max_age_days > 0 ? nats().nanos(c.max_age_days * 86_400_000) : 0,
      });
      this.log.info({ stream: c.stream, subjects }, 'created the fleet JetStream stream');
    } catch (e) {
      // Another replica made it at the same moment: fine when it is there now.
      await jsm.streams.info(c.stream).catch(() => {
        throw new Error(`alerts.consume.stream: cannot create stream '${c.stream}': ${(e as Error).message}; give the server's NATS user the JetStream API ($JS.API.>) or create the stream yourself`);
      });
    }
  }

  private async ensureConsumer(jsm: JetStreamManager): Promise<void> {
    const c = this.cfg;
    const want = {
      durable_name: c.consumer, ack_policy: nats().AckPolicy.Explicit, deliver_policy: nats().DeliverPolicy.All, filter_subject: `${c.subject_prefix}.>`,
      ack_wait: nats().nanos(c.ack_wait_s * 1000), max_ack_pending: Math.max(1000, c.batch * 8), max_deliver: -1,
    };
    try {
      await jsm.consumers.info(c.stream, c.consumer);
      return;
    } catch {
      /* not there yet */
    }
    try {
      await jsm.consumers.add(c.stream, want);
      this.log.info({ stream: c.stream, consumer: c.consumer }, 'created the durable fleet consumer');
    } catch (e) {
      await jsm.consumers.info(c.stream, c.consumer).catch(() => {
        throw new Error(`alerts.consume.consumer: cannot create consumer '${c.consumer}' on stream '${c.stream}': ${(e as Error).message}`);
      });
    }
  }

  private async consumer(): Promise<Consumer> {
    const js = this.nc!.jetstream({ timeout: this.cfg.timeout_ms });
    return js.consumers.get(this.cfg.stream, this.cfg.consumer);
  }

  /**
   * A continuous pull (JetStream keeps up to two batches coming), stored as it arrives: whatever
   * has arrived when the store is free is the next batch (up to `batch`). A trickle is stored at
   * once, a flood in full batches, and fetching overlaps storing.
   */
  private async pull(): Promise<void> {
    while (!this.stopped) {
      try {
        const consumer = await this.consumer();
        const messages = await consumer.consume({ max_messages: this.cfg.batch * (BATCHES_IN_FLIGHT + 1), expires: 5000 });
        this.up = true;
        const buf: JsMsg[] = [];
        let wake: (() => void) | undefined;
        let ended = false;
        const reader = (async () => {
          for await (const m of messages) {
            buf.push(m);
            wake?.();
          }
        })().finally(() => {
          ended = true;
          wake?.();
        });
        reader.catch(() => undefined);
        /** Batches being stored, with the groups each holds. */
        const storing = new Map<Promise<void>, Set<string>>();
        const store = async (batch: JsMsg[]) => {
          const { good, alerts } = this.decodeAll(batch);
          if (!alerts.length) return;
          const groups = new Set(alerts.map(groupOf).filter((g): g is string => g !== undefined));
          await Promise.all([...storing].filter(([, held]) => [...groups].some((g) => held.has(g))).map(([p]) => p));
          // An ack that throws (the connection closing) leaves the batch unacked: it is redelivered.
          const p: Promise<void> = this.storeDecoded(good, alerts)
            .catch((e) => this.log.warn({ err: (e as Error).message }, 'fleet consumer: a batch was not acknowledged; it comes back'))
            .finally(() => storing.delete(p));
          storing.set(p, groups);
        };
        while (!this.stopped && !ended) {
          if (storing.size >= BATCHES_IN_FLIGHT) {
            await Promise.race(storing.keys());
            continue;
          }
          if (!buf.length) {
            await new Promise<void>((r) => {
              wake = r;
              setTimeout(r, 1000).unref();
            });
            wake = undefined;
            continue;
          }
          await store(buf.splice(0, this.cfg.batch));
        }
        messages.stop();
        await reader.catch(() => undefined);
        if (buf.length && !this.stopped) await store(buf.splice(0));
        await Promise.all(storing.keys());
      } catch (e) {
        if (this.stopped) break;
        this.log.warn({ err: (e as Error).message }, 'fleet consumer: pull failed; retrying');
        await sleep(500);
      }
    }
  }

  /** The alerts of a batch's messages (those that are none are terminated). */
  private decodeAll(msgs: JsMsg[]): { good: JsMsg[]; alerts: IncomingAlert[] } {
    this.stats.received += msgs.length;
    const good: JsMsg[] = [];
    const alerts: IncomingAlert[] = [];
    for (const m of msgs) {
      const a = this.decode(m);
      if (!a) continue;
      good.push(m);
      alerts.push(a);
    }
    return { good, alerts };
  }

  /** Store one batch, then ack it; nak it when the store refused it, so it comes back. */
  private async storeDecoded(good: JsMsg[], alerts: IncomingAlert[]): Promise<void> {
    try {
      await this.sink.storeBatch(alerts);
    } catch (e) {
      if (this.sink.transient?.(e) === false) return this.oneByOne(good, alerts);
      this.stats.failedBatches++;
      this.log.error({ err: (e as Error).message, alerts: alerts.length }, 'cannot store a batch of fleet alerts; they stay in the stream and come back');
      for (const m of good) m.nak(STORE_RETRY_MS);
      await sleep(STORE_RETRY_MS);
      return;
    }
    this.stats.stored += alerts.length;
    for (const m of good) m.ack();
  }

  /**
   * The store refused the batch for what is in it: each message alone, so one that the store will
   * never take (an agent's malformed alert) is terminated and logged instead of holding up every
   * batch after it. A transient failure on the way naks the rest.
   */
  private async oneByOne(msgs: JsMsg[], alerts: IncomingAlert[]): Promise<void> {
    for (let i = 0; i < msgs.length; i++) {
      try {
        await this.sink.storeBatch([alerts[i]!]);
        this.stats.stored++;
        msgs[i]!.ack();
      } catch (e) {
        if (this.sink.transient?.(e) !== false) {
          this.stats.failedBatches++;
          for (const m of msgs.slice(i)) m.nak(STORE_RETRY_MS);
          return;
        }
        this.stats.refused++;
        this.log.error({ subject: msgs[i]!.subject, seq: msgs[i]!.seq, err: (e as Error).message }, 'the store refuses this fleet alert; it is dropped from the stream (the agent keeps its copy)');
        msgs[i]!.term((e as Error).message.slice(0, 200));
      }
    }
  }

  /** The alert a message carries, under its subject's host; undefined (and the message terminated) when it is not one. */
  private decode(m: JsMsg): IncomingAlert | undefined {
    const prefix = `${this.cfg.subject_prefix}.`;
    const token = m.subject.startsWith(prefix) ? m.subject.slice(prefix.length) : undefined;
    const host = token === undefined || token.includes('.') ? undefined : tokenHost(token);
    const refuse = (why: string): undefined => {
      this.stats.refused++;
      this.log.warn({ subject: m.subject, seq: m.seq, why }, 'fleet message refused');
      m.term(why);
      return undefined;
    };
    if (host === undefined) return refuse(`the subject is not ${prefix}<host token>`);
    let a: IncomingAlert;
    try {
      // JSON.parse as the HTTP input's body parser does (big integers become numbers there too).
      a = parseFalcoAlert(JSON.parse(m.string()) as unknown, `${m.subject}#${m.seq}`);
    } catch (e) {
      if (e instanceof AlertShapeError || e instanceof SyntaxError) return refuse((e as Error).message);
      return refuse(String(e));
    }
    if (a.hostname !== host) {
      if (a.hostname !== '') {
        this.stats.relabelled++;
        this.log.warn({ subject: m.subject, claimed: a.hostname.slice(0, 100), host }, 'a fleet alert claimed another hostname than its subject\'s; stored under the subject\'s');
      }
      a = { ...a, hostname: host };
    }
    return a;
  }

  /** Ready once the stream and the consumer exist and a pull was made; a NATS outage later is reported, not "unready". */
  readiness(): { ready: boolean; detail: string } {
    if (!this.up) return { ready: false, detail: 'the fleet consumer is not up yet' };
    return { ready: true, detail: this.connected ? 'consuming' : 'NATS reconnecting (agents keep their alerts meanwhile)' };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const nc = this.nc;
    this.nc = undefined;
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
    await this.loop;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
