/**
 * The configured outputs, built from the `outputs` section: one Output per enabled kind, named
 * after its kind unless `name` says otherwise. A setting that cannot work (an unreadable CA file,
 * a subject template with no fixed prefix) is an error naming its config path.
 */
import type { Logger } from '../../platform/logger.js';
import type { Output } from '../types.js';
import type { OutputKind, OutputsConfig } from './config.js';
import { FalcosidekickOutput } from './falcosidekick.js';
import { FileOutput } from './file.js';
import { MqttOutput } from './mqtt.js';
import { NatsOutput } from './nats.js';
import { ProgramOutput } from './program.js';
import { RedisOutput } from './redis.js';
import { SlackOutput } from './slack.js';
import { StdoutOutput } from './stdout.js';
import { WebhookOutput } from './webhook.js';

export { FilteredOutput, RetryableDeliveryError } from './base.js';
export { FalcosidekickOutput, FileOutput, MqttOutput, NatsOutput, ProgramOutput, RedisOutput, SlackOutput, StdoutOutput, WebhookOutput };

type Builders = { [K in OutputKind]: (cfg: OutputsConfig[K], base: { name: string; minimumPriority?: string; log: Logger; configPath: string }) => Output };

const BUILD: Builders = {
  stdout: (c, b) => new StdoutOutput({ ...b, format: c.format }),
  file: (c, b) => new FileOutput({ ...b, path: c.path, format: c.format }),
  program: (c, b) => new ProgramOutput({ ...b, program: c.program!, keepAlive: c.keep_alive, format: c.format, timeoutMs: c.timeout_ms }),
  webhook: (c, b) => new WebhookOutput({ ...b, ...httpSettings(c), url: c.url!, userAgent: c.user_agent }),
  slack: (c, b) => new SlackOutput({ ...b, webhookUrl: c.webhook_url!, channel: c.channel, username: c.username, iconUrl: c.icon_url, timeoutMs: c.timeout_ms }),
  falcosidekick: (c, b) => new FalcosidekickOutput({ ...b, ...httpSettings(c), url: c.url! }),
  nats: (c, b) => new NatsOutput({
    ...b, url: c.url, subject: c.subject, stream: c.stream, createStream: c.create_stream, streamSubjects: c.stream_subjects,
    token: c.token, user: c.user, password: c.password, timeoutMs: c.timeout_ms,
  }),
  redis: (c, b) => new RedisOutput({ ...b, url: c.url, key: c.key, maxlen: c.maxlen, timeoutMs: c.timeout_ms }),
  mqtt: (c, b) => new MqttOutput({
    ...b, url: c.url, topic: c.topic, username: c.username, password: c.password, clientId: c.client_id, timeoutMs: c.timeout_ms,
  }),
};

function httpSettings(c: OutputsConfig['webhook'] | OutputsConfig['falcosidekick']) {
  return {
    headers: c.headers, timeoutMs: c.timeout_ms, token: c.token, tokenFile: c.token_file,
    ca_file: c.ca_file, cert_file: c.cert_file, key_file: c.key_file, insecure: c.insecure,
  };
}

/** One Output per enabled output, in the section's order. Throws on a setting that cannot work. */
export function createOutputs(cfg: OutputsConfig, log: Logger): Output[] {
  const outputs: Output[] = [];
  const names = new Map<string, string>();
  for (const kind of Object.keys(BUILD) as OutputKind[]) {
    const c = cfg[kind];
    if (!c?.enabled) continue;
    const name = c.name ?? kind;
    const configPath = `outputs.${kind}`;
    const clash = names.get(name);
    if (clash) throw new Error(`${configPath}.name: '${name}' is already the name of ${clash}; each output needs its own name`);
    names.set(name, configPath);
    const build = BUILD[kind] as (c: unknown, b: { name: string; minimumPriority?: string; log: Logger; configPath: string }) => Output;
    outputs.push(build(c, { name, minimumPriority: c.minimum_priority, log: log.child({ output: name }), configPath }));
  }
  return outputs;
}
