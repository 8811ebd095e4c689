/**
 * One alert of each source, byte for byte, in Falco 0.42's two shapes: the text line and the JSON
 * alert (falco_formats::format_event over libs' sinsp_evt_formatter). The syscall rule is written
 * here to use the format modifiers; the k8s_audit and github rules are Falco's own files, as
 * published (../shared/corpus/falco/).
 *
 * What is checked, with where Falco decides it:
 * - The text line opens with %evt.time in local time (sinsp_utils::ts_to_string), or with
 *   %evt.time.iso8601 ("…+0000", ts_to_iso_8601) under time_format_iso_8601.
 * - Outputs are trimmed (rule_loader_reader: trim(v.output)); a `>` scalar's newline is gone.
 * - append_output's default suggested_output adds `container_id=%container.id …` (the container
 *   plugin's suggested fields) to syscall outputs; not to plugin sources; a field the output
 *   already prints is not printed twice (minewatch: Falco would print it again).
 * - JSON: keys sorted (nlohmann::json), evt.time in output_fields as integer ns, list fields as
 *   arrays, a transformed field under its plain name with its plain value, tags sorted and once.
 */
process.env.TZ = 'Asia/Kolkata'; // +05:30 all year: local time differs from UTC in the text line

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine, type Match } from '../src/engine/index.js';
import { FALCO_DEFAULT_APPEND_OUTPUT, falcoJsonLine, formatText } from '../src/engine/output.js';
import type { PluginEvent, SyscallEvent } from '../src/events.js';
import { FALCO_CORPUS } from './helpers/paths.js';

const TS = 1_764_000_000_123_456_789n; // 2025-11-24T16:00:00.123456789Z = 21:30:00.123456789 in Kolkata

function one(engine: Engine, ev: SyscallEvent | PluginEvent, rule?: string): Match {
  const ms = engine.process(ev).filter((m) => !rule || m.rule === rule);
  assert.equal(ms.length, 1, `one match expected, got ${ms.map((m) => m.rule).join(', ') || 'none'}`);
  return ms[0]!;
}

const SYSCALL_RULES = [
  '- rule: Miner started',
  '  desc: d',
  '  condition: evt.type = execve and proc.name = xmrig',
  '  output: >',
  '    *Miner %toupper(proc.name) pid=%8proc.pid| cmdline=%proc.cmdline',
  '    user=%user.name container_id=%container.id gp=%proc.aname[2] %container.info',
  '  priority: CRITICAL',
  '  tags: [T1496, mitre_impact, T1496, container]',
  '',
].join('\n');

const miner: SyscallEvent = {
  source: 'syscall', type: 'execve', ts: TS,
  proc: {
    pid: 4242, name: 'xmrig', exepath: '/tmp/xmrig', args: ['-o', 'stratum+tcp://pool.example:3333'], user: 'www-data', uid: 33,
    parent: { pid: 4000, name: 'sh', parent: { pid: 1, name: 'nginx' } },
  },
  container: { id: '3ad2e1f0c9b8', name: 'web', image: 'nginx:1.27', image_repository: 'nginx', image_tag: '1.27' },
  k8s: { ns_name: 'shop', pod_name: 'web-7d4b9c8f5-x2x9q' },
};

test('syscall: format modifiers, %container.info, suggested output without repeats, local time', () => {
  const engine = new Engine([{ path: 'miner.yaml', text: SYSCALL_RULES }], { hostname: 'node-1', appendOutput: FALCO_DEFAULT_APPEND_OUTPUT });
  assert.deepEqual(engine.warnings.map((w) => `${w.pos.file}:${w.pos.line} ${w.message.split(' (')[0]}`), [
    'miner.yaml:4 %container.info is deprecated and expands to nothing',
  ]);
  const m = one(engine, miner);
  // Two spaces before container_name, as in Falco: the suggested fields are appended after a
  // space, then %container.info is replaced by nothing (rule_loader_compiler.cpp).
  const output =
    'Miner XMRIG pid=4242    | cmdline=xmrig -o stratum+tcp://pool.example:3333 user=www-data container_id=3ad2e1f0c9b8 gp=nginx  ' +
    'container_name=web container_image_repository=nginx container_image_tag=1.27 k8s_pod_name=web-7d4b9c8f5-x2x9q k8s_ns_name=shop';
  assert.equal(formatText(m), `21:30:00.123456789: Critical ${output}`);
  assert.equal(formatText(m, { iso8601: true }), `2025-11-24T16:00:00.123456789+0000: Critical ${output}`);
  assert.equal(falcoJsonLine(m), '{' +
    '"hostname":"node-1",' +
    `"output":"21:30:00.123456789: Critical ${output}",` +
    '"output_fields":{"container.id":"3ad2e1f0c9b8","container.image.repository":"nginx","container.image.tag":"1.27","container.name":"web",' +
    '"evt.time":1764000000123456789,"k8s.ns.name":"shop","k8s.pod.name":"web-7d4b9c8f5-x2x9q","proc.aname[2]":"nginx",' +
    '"proc.cmdline":"xmrig -o stratum+tcp://pool.example:3333","proc.name":"xmrig","proc.pid":4242,"user.name":"www-data"},' +
    '"priority":"Critical","rule":"Miner started","source":"syscall",' +
    '"tags":["T1496","container","mitre_impact"],' +
    '"time":"2025-11-24T16:00:00.123456789Z"}');
  // Under time_format_iso_8601 the prefix's field is evt.time.iso8601, still the time in ns.
  assert.match(falcoJsonLine(m, { iso8601: true }), /"evt.time.iso8601":1764000000123456789,/);
});

test('k8s_audit: Falco\'s Create Privileged Pod, list fields as arrays, a missing one null', () => {
  const engine = Engine.fromFiles([`${FALCO_CORPUS}k8s_audit_rules.yaml`], { hostname: 'node-1', appendOutput: FALCO_DEFAULT_APPEND_OUTPUT, ruleMatching: 'all' });
  const ev: PluginEvent = {
    source: 'k8s_audit', type: 'Event', ts: TS,
    payload: {
      kind: 'Event', apiVersion: 'audit.k8s.io/v1', stage: 'ResponseComplete', verb: 'create',
      user: { username: 'mallory' },
      objectRef: { resource: 'pods', namespace: 'shop', apiVersion: 'v1' },
      responseStatus: { code: 201 },
      requestObject: {
        kind: 'Pod', apiVersion: 'v1', metadata: { name: 'miner' },
        spec: { containers: [{ name: 'a', image: 'xmrig/xmrig:6', securityContext: { privileged: true } }, { name: 'b', image: 'busybox' }] },
      },
      responseObject: { kind: 'Pod', metadata: { name: 'miner', namespace: 'shop' } },
    },
  };
  const m = one(engine, ev, 'Create Privileged Pod');
  const output = 'Pod started with privileged container (user=mallory pod=miner resource=pods ns=shop images=(xmrig/xmrig:6,busybox) init_images=<NA> ephemeral_images=<NA>)';
  assert.equal(formatText(m), `21:30:00.123456789: Warning ${output}`);
  assert.equal(falcoJsonLine(m), '{' +
    '"hostname":"node-1",' +
    `"output":"21:30:00.123456789: Warning ${output}",` +
    '"output_fields":{"evt.time":1764000000123456789,"ka.req.pod.containers.image":["xmrig/xmrig:6","busybox"],' +
    '"ka.req.pod.ephemeralContainers.image":null,"ka.req.pod.initContainers.image":null,"ka.resp.name":"miner",' +
    '"ka.target.namespace":"shop","ka.target.resource":"pods","ka.user.name":"mallory"},' +
    '"priority":"Warning","rule":"Create Privileged Pod","source":"k8s_audit","tags":["k8s"],' +
    '"time":"2025-11-24T16:00:00.123456789Z"}');
});

test('github: Falco\'s Private Repository Becoming Public, its trailing space trimmed', () => {
  const engine = Engine.fromFiles([`${FALCO_CORPUS}github.yaml`], { hostname: 'node-1', appendOutput: FALCO_DEFAULT_APPEND_OUTPUT });
  const ev: PluginEvent = {
    source: 'github', type: 'repository', ts: TS,
    payload: {
      action: 'publicized',
      repository: { full_name: 'acme/secret', html_url: 'https://github.com/acme/secret', private: false, owner: { login: 'acme' } },
      organization: { login: 'acme' },
      sender: { login: 'octocat' },
    },
  };
  const m = one(engine, ev);
  const output = 'A repository went from private to public (repository_name=acme/secret repository_url=https://github.com/acme/secret repo_owner=acme org=acme user=octocat)';
  assert.equal(m.output, output);
  assert.equal(falcoJsonLine(m), '{' +
    '"hostname":"node-1",' +
    `"output":"21:30:00.123456789: Critical ${output}",` +
    '"output_fields":{"evt.time":1764000000123456789,"github.org":"acme","github.owner":"acme","github.repo.name":"acme/secret",' +
    '"github.repo.url":"https://github.com/acme/secret","github.user":"octocat"},' +
    '"priority":"Critical","rule":"Private Repository Becoming Public","source":"github","tags":["github"],' +
    '"time":"2025-11-24T16:00:00.123456789Z"}');
});

test('append_output: match by source, tags and rule; extra_output; extra_fields formatted and raw; bad fields refused', () => {
  const rules = [
    '- rule: A', '  desc: d', '  condition: evt.type = execve and proc.name = xmrig', '  output: a %proc.name', '  priority: INFO', '  tags: [x, y]',
    '- rule: B', '  desc: d', '  condition: evt.type = execve and proc.name = xmrig', '  output: b %proc.name on %container.name', '  priority: INFO', '  tags: [x]',
    '',
  ].join('\n');
  const engine = new Engine([{ path: 'r.yaml', text: rules }], {
    hostname: 'h', ruleMatching: 'all',
    appendOutput: [
      { match: { tags: ['x', 'y'] }, extra_output: 'uid=%user.uid' },
      { match: { rule: 'B' }, extra_output: 'ctr=%container.name', extra_fields: [{ home: 'cwd %proc.cwd' }, 'proc.pid'] },
      { match: { source: 'k8s_audit' }, extra_output: 'never here' },
      { match: { source: 'syscall', rule: 'A' }, suggested_output: true },
    ],
  });
  const [a, b] = engine.process({ ...miner, proc: { ...miner.proc, uid: 33, cwd: '/srv' } });
  assert.equal(a!.output, 'a xmrig uid=33 container_id=3ad2e1f0c9b8 container_name=web container_image_repository=nginx container_image_tag=1.27 k8s_pod_name=web-7d4b9c8f5-x2x9q k8s_ns_name=shop');
  // B already prints container.name: its extra output is left out; the extra fields are JSON only.
  assert.equal(b!.output, 'b xmrig on web');
  assert.deepEqual(b!.outputFields, { 'proc.name': 'xmrig', 'container.name': 'web', home: 'cwd /srv', 'proc.pid': 4242 });
  assert.throws(
    () => new Engine([{ path: 'r.yaml', text: rules }], { appendOutput: [{ extra_output: 'x=%proc.nope' }] }),
    (e: unknown) => e instanceof Error && /r\.yaml:4:.*append_output: output: unknown field 'proc\.nope'/.test(e.message),
  );
});
