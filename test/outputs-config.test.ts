/**
 * The `outputs` section: defaults (stdout on, the rest off), each enabled output's required
 * settings reported at their path and line, Falco's program_output and http_output keys, and
 * createOutputs building one named Output per enabled kind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { createOutputs } from '../src/alerts/outputs/index.js';
import { ConfigError, defaultConfig, parseConfig } from '../src/config/load.js';

const quiet = pino({ level: 'silent' });

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, 'c.yaml');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

test('defaults: stdout on in text, every other output off', () => {
  const o = defaultConfig().outputs;
  assert.deepEqual(o.stdout, { enabled: true, format: 'text' });
  for (const k of ['file', 'program', 'webhook', 'slack', 'falcosidekick', 'nats', 'redis', 'mqtt'] as const) assert.equal(o[k].enabled, false, k);
  assert.equal(o.nats.url, 'nats://127.0.0.1:4222');
  assert.equal(o.redis.maxlen, 100_000);
  assert.equal(o.mqtt.topic, 'minewatch/alerts/{priority}/{rule}');
  const outs = createOutputs(o, quiet);
  assert.deepEqual(outs.map((x) => x.name), ['stdout']);
});

test('an enabled output without its target, a bad URL, a bad priority: errors name the path and line', () => {
  const lines = problems([
    'outputs:',
    '  webhook:',
    '    enabled: true',
    '  slack:',
    '    enabled: true',
    '    webhook_url: hooks.slack.com/services/x',
    '  nats:',
    '    enabled: true',
    '    url: http://127.0.0.1:4222',
    '  mqtt:',
    '    minimum_priority: loud',
    '  falcosidekick:',
    '    enabled: true',
    '    url: http://sidekick:2801',
    '    token: a',
    '    token_file: /b',
    '  kafka: {}',
    '  redis:',
    '    maxlen: 0',
    '',
  ].join('\n'));
  const expect = [
    /^c\.yaml:3:5: outputs\.webhook\.url: required when this output is enabled: the URL alerts are POSTed to/,
    /^c\.yaml:6:5: outputs\.slack\.webhook_url: not a http\/https URL: write it as http:\/\/host:port\/path$/,
    /^c\.yaml:9:5: outputs\.nats\.url: not a nats\/tls\/ws\/wss URL: write it as nats:\/\/host:4222$/,
    /^c\.yaml:11:5: outputs\.mqtt\.minimum_priority: not a priority/,
    /^c\.yaml:16:5: outputs\.falcosidekick\.token_file: set token or token_file, not both$/,
    /^c\.yaml:17:3: outputs\.kafka: unknown key/,
    /^c\.yaml:19:5: outputs\.redis\.maxlen: /,
  ];
  for (const re of expect) assert.ok(lines.some((l) => re.test(l)), `${re} in:\n${lines.join('\n')}`);
});

test("Falco's program_output and http_output turn on the program and webhook outputs", () => {
  const { config, warnings } = parseConfig([
    'json_output: true',
    'program_output:',
    '  enabled: true',
    '  keep_alive: true',
    '  program: "jq \'{text: .output}\' | curl -d @- -X POST https://hooks.slack.com/services/XXX"',
    'http_output:',
    '  enabled: true',
    '  url: http://falcosidekick:2801/',
    '  user_agent: falcosecurity/falco',
    '  insecure: false',
    '  ca_cert: ""',
    '  ca_bundle: ""',
    '  ca_path: /etc/ssl/certs',
    '  mtls: false',
    '  client_cert: /etc/ssl/certs/client.crt',
    '  client_key: /etc/ssl/certs/client.key',
    '  echo: false',
    '  compress_uploads: true',
    '  keep_alive: false',
    '',
  ].join('\n'), 'falco.yaml');
  assert.equal(config.outputs.program.enabled, true);
  assert.equal(config.outputs.program.keep_alive, true);
  assert.equal(config.outputs.program.format, 'json');
  assert.match(config.outputs.program.program!, /^jq/);
  assert.equal(config.outputs.webhook.enabled, true);
  assert.equal(config.outputs.webhook.url, 'http://falcosidekick:2801/');
  assert.equal(config.outputs.webhook.user_agent, 'falcosecurity/falco');
  assert.equal(config.outputs.webhook.cert_file, undefined, 'client_cert only counts with mtls: true');
  assert.deepEqual(warnings.map((w) => `${w.line}: ${w.path}`), ['18: http_output.compress_uploads']);

  // falco.yaml's own defaults (disabled, url: "") load without a word.
  const quietly = parseConfig('http_output:\n  enabled: false\n  url: ""\n  echo: false\nprogram_output:\n  enabled: false\n  keep_alive: false\n  program: "mail -s alert root"\n', 'falco.yaml');
  assert.equal(quietly.config.outputs.webhook.enabled, false);
  assert.equal(quietly.config.outputs.program.format, 'text', "without json_output, Falco's program gets text lines");
  assert.deepEqual(quietly.warnings, []);

  // A whole falco.yaml as people write it: Falco's `outputs:` rate limiter is a warning, not an error.
  const falcoYaml = parseConfig([
    'json_output: true',
    'outputs:',
    '  rate: 1',
    '  max_burst: 1000',
    'stdout_output:',
    '  enabled: true',
    'file_output:',
    '  enabled: true',
    '  keep_alive: false',
    '  filename: /var/log/falco/events.log',
    'http_output:',
    '  enabled: true',
    '  url: http://falco-falcosidekick:2801/',
    '  insecure: true',
    '',
  ].join('\n'), 'falco.yaml');
  assert.equal(falcoYaml.config.outputs.file.path, '/var/log/falco/events.log');
  assert.equal(falcoYaml.config.outputs.webhook.insecure, true);
  assert.deepEqual(falcoYaml.warnings.map((w) => `${w.line}: ${w.path}`), ['3: outputs.rate', '4: outputs.max_burst']);

  // A problem in a Falco key points at the Falco key.
  const lines = problems('http_output:\n  enabled: true\n  url: not a url\n');
  assert.ok(lines.some((l) => /^c\.yaml:3:3: outputs\.webhook\.url: not a http\/https URL/.test(l)), lines.join('\n'));
});

test('createOutputs: one output per enabled kind, named by kind or by name; a clash or an unreadable file is refused', () => {
  const { config } = parseConfig([
    'outputs:',
    '  stdout: { enabled: false }',
    '  webhook: { enabled: true, url: "http://127.0.0.1:9/x", name: hooks }',
    '  falcosidekick: { enabled: true, url: "http://127.0.0.1:9" }',
    '  nats: { enabled: true }',
    '  redis: { enabled: true }',
    '  mqtt: { enabled: true, minimum_priority: error }',
    '  program: { enabled: true, program: "cat" }',
    '',
  ].join('\n'), 'c.yaml');
  const outs = createOutputs(config.outputs, quiet);
  assert.deepEqual(outs.map((o) => `${o.constructor.name}:${o.name}`), [
    'ProgramOutput:program', 'WebhookOutput:hooks', 'FalcosidekickOutput:falcosidekick', 'NatsOutput:nats', 'RedisOutput:redis', 'MqttOutput:mqtt',
  ]);

  const clash = parseConfig('outputs:\n  webhook: { enabled: true, url: "http://a/", name: x }\n  slack: { enabled: true, webhook_url: "https://b/", name: x }\n', 'c.yaml');
  assert.throws(() => createOutputs(clash.config.outputs, quiet), /outputs\.slack\.name: 'x' is already the name of outputs\.webhook/);

  const badCa = parseConfig('outputs:\n  webhook: { enabled: true, url: "https://a/", ca_file: /nonexistent/ca.pem }\n', 'c.yaml');
  assert.throws(() => createOutputs(badCa.config.outputs, quiet), /outputs\.webhook\.ca_file: cannot read \/nonexistent\/ca\.pem: ENOENT/);

  for (const [yaml, re] of [
    ['nats: { subject: "alerts.*" }', /outputs\.nats\.subject: a subject to publish on has no spaces and no wildcards/],
    ['mqtt: { topic: "alerts/#" }', /outputs\.mqtt\.topic: a topic to publish on has no wildcards/],
  ] as const) assert.ok(problems(`outputs:\n  ${yaml}\n`).some((l) => re.test(l)), yaml);

  const badSubject = parseConfig('outputs:\n  nats: { enabled: true, subject: "{rule}.alerts" }\n', 'c.yaml');
  assert.throws(() => createOutputs(badSubject.config.outputs, quiet), /outputs\.nats\.stream_subjects: the subject template '\{rule\}\.alerts' starts with a placeholder/);
});
