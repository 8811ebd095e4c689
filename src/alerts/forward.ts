/**
 * `alerts.forward: nats://…`: the agent's forwarder. It is one more output of the alert pipeline,
 * so every group and summary is in the local store (SQLite) before it is sent, and stays there,
 * retried with backoff, while NATS is down: nothing is lost. It publishes to JetStream on this
 * host's own subject with the group's uuid and sequence as the message id, so a resend after a
 * lost PubAck is dropped by the stream, and it never creates the stream (an agent's NATS user may
 * publish on its own subject only; the server creates the stream).
 */
import { hostname as osHostname } from 'node:os';
import type { Logger } from '../platform/logger.js';
import type { ForwardConfig } from './fleet-config.js';
import { fleetMsgId, hostInboxPrefix, hostSubject, natsConnectionOptions } from './fleet-nats.js';
import { NatsOutput } from './outputs/nats.js';
import type { Output } from './types.js';

/** The output name the forwarder's deliveries are kept under in the local store. */
export const FORWARD_OUTPUT = 'forward';

/**
 * `{hostname}` in the user and the credential files' paths is this host's name: one config (a
 * DaemonSet's) gives each node its own NATS user, e.g. creds_file: /etc/minewatch/nats/{hostname}.creds.
 */
function perHost(cfg: ForwardConfig, host: string): ForwardConfig {
  const sub = <T extends string | undefined>(v: T): T => (v === undefined ? v : (v.replaceAll('{hostname}', host) as T));
  return { ...cfg, user: sub(cfg.user), password_file: sub(cfg.password_file), token_file: sub(cfg.token_file), nkey_seed_file: sub(cfg.nkey_seed_file), creds_file: sub(cfg.creds_file) };
}

export function forwardOutput(config: ForwardConfig, log: Logger, host = osHostname()): Output {
  const cfg = perHost(config, host);
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
