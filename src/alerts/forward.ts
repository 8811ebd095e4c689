/**
 * `alerts.forward: nats://…`: the agent's forwarder. It is one more output of the alert pipeline,
 * so every group and summary is in the local store (SQLite) before it is sent, and stays there,
 * retried with backoff, while NATS is down: nothing is lost. It publishes to JetStream on this
 * host's own subject with the group's uuid and sequence as the message id, so a resend after a
 * lost PubAck is dropped by the stream, and it never creates the stream (an agent's NATS user may
 * publish on its own subject only; the server creates the stream).
 */
import { hostname as osHostname } from 'node:os';
import type { Logger } from '../agent/logger.js';
import type { ForwardConfig } from './fleet-config.js';
import { fleetMsgId, hostInboxPrefix, hostSubject, natsConnectionOptions } from './fleet-nats.js';
import { NatsOutput } from './outputs/nats.js';
import type { Output } from './types.js';

/** The output name the forwarder's deliveries are kept under in the local store. */
export const FORWARD_OUTPUT = 'forward';

export function forwardOutput(cfg: ForwardConfig, log: Logger, host = osHostname()): Output {
  const subject = hostSubject(cfg.subject_prefix, host);
  log.info({ url: cfg.url, subject, stream: cfg.stream }, 'forwarding alerts to NATS JetStream');
  return new NatsOutput({
    name: FORWARD_OUTPUT,
    configPath: 'alerts.forward',
    log: log.child({ output: FORWARD_OUTPUT }),
    url: cfg.url,
    subject,
    stream: cfg.stream,
    createStream: false,
    streamSubjects: [subject],
    timeoutMs: cfg.timeout_ms,
    connection: { ...natsConnectionOptions(cfg, 'alerts.forward'), inboxPrefix: hostInboxPrefix(host) },
    msgId: fleetMsgId,
  });
}
