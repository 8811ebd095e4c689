/**
 * The detectors (src/detectors/): the registry builds what the config turns on, and each Detector
 * answers events and matches with action requests and reports, never acting itself. Real
 * matchers, real ban files, the real default rules, cryptnono's example config.json as it is.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError } from '../src/config/load.js';
import { type DetectorsConfig, detectorsInput, detectorsWithDefaults } from '../src/detectors/config.js';
import { loadDetectorsFiles } from '../src/detectors/cryptnono-files.js';
import { ExecwhackerDetector } from '../src/detectors/execwhacker/index.js';
import type { DetectorContext } from '../src/detectors/module.js';
import { MoneroDetector, RANDOMX_RULE } from '../src/detectors/monero/index.js';
import { buildDetectors } from '../src/detectors/registry.js';
import { TcpFlowKillerDetector } from '../src/detectors/tcpflowkiller/index.js';
import type { Detector, DetectorAnswer } from '../src/detectors/types.js';
import { Engine, DEFAULT_RULES_FILES } from '../src/engine/index.js';
import { readStartTs } from '../src/platform/procfs.js';
import type { SyscallEvent } from '../src/events.js';
import type { ActionRequest, ActionResult } from '../src/response/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'mw-p14det-detectors-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** cryptnono's example/config.json, exactly. */
const EXAMPLE_CONFIG = `{
  "bannedCommandStrings": [
    "cryptnono.banned.string1"
  ],
  "allowedCommandPatterns": [
    ".*allowed\\\\s+cryptnono\\\\.banned\\\\.string1"
  ]
}
`;

function ctx(over: Partial<DetectorContext> = {}): DetectorContext {
  const quiet = (): void => undefined;
  return { isSelf: () => false, lookup: () => undefined, containerOf: () => undefined, log: { info: quiet, warn: quiet, debug: quiet }, ...over };
}

/** The section with defaults, from a config written as a user would. */
function section(input: unknown): DetectorsConfig {
  return detectorsWithDefaults(detectorsInput.parse(input));
}

const exec = (pid: number, argv: string[], start = 1000n): SyscallEvent => ({
  source: 'syscall', type: 'execve', ts: 1n, res: 0, proc: { pid, name: argv[0]!.split('/').pop()!, exe: argv[0], args: argv.slice(1), exepath: argv[0], start_ts: start },
});

const requests = (a: DetectorAnswer[] | undefined): ActionRequest[] => (a ?? []).flatMap((x) => ('request' in x ? [x.request] : []));
const reports = (a: DetectorAnswer[] | undefined): ActionResult[] => (a ?? []).flatMap((x) => ('report' in x ? [x.report] : []));

describe('registry', () => {
  test('defaults: only the monero detector runs (it tells the eBPF driver what the RandomX rule judged), and it does not kill', () => {
    const ds = buildDetectors(section({}), ctx());
    assert.deepEqual(ds.map((d) => d.name), ['monero']);
    assert.equal((ds[0] as MoneroDetector).killer, undefined);
  });

  test('every detector turned on is built, in the registry\'s order, each under its section\'s name', () => {
    const ds = buildDetectors(section({ execwhacker: { enabled: true }, monero: { enabled: true }, tcpflowkiller: { enabled: true } }), ctx());
    try {
      assert.deepEqual(ds.map((d) => d.name), ['execwhacker', 'monero', 'tcpflowkiller']);
      assert.ok(ds[0] instanceof ExecwhackerDetector);
      assert.ok(ds[2] instanceof TcpFlowKillerDetector);
      assert.equal(ds[0]!.rescanIntervalMs, 10_000, 'rescan_interval_s: 10 by default');
      assert.deepEqual(Object.keys(ds[0]!.stats()), ['checked', 'kills', 'spared', 'rescans']);
    } finally {
      for (const d of ds) d.close?.();
    }
  });

  test('a reload keeps whom the monero detector asked about: the same miner is not asked about twice', () => {
    const engine = Engine.fromFiles(DEFAULT_RULES_FILES);
    const ev: SyscallEvent = {
      source: 'syscall', type: 'mw_fpu_rounding', ts: 1n, res: 0, proc: { pid: 4242, name: 'nginx-worker', start_ts: 9n },
      fpu: { rounding_count: 1040, rounding_changes: 746, rounding_rate: 104, rounding_percent: 69, rounding_rarest: 345, seconds: 10, busy_percent: 100 },
    };
    const [m] = engine.process(ev);
    assert.equal(m?.rule, RANDOMX_RULE);
    const cfg = section({ monero: { enabled: true } });
    const first = buildDetectors(cfg, ctx());
    assert.equal(requests(first[0]!.onMatch!(m!, ev)).length, 1);
    const second = buildDetectors(cfg, ctx(), first);
    assert.equal(second[0]!.onMatch!(m!, ev), undefined, 'asked before the reload');
    const fresh = buildDetectors(cfg, ctx());
    assert.equal(requests(fresh[0]!.onMatch!(m!, ev)).length, 1, 'without the previous ones, asked again');
  });

  test('a detector that cannot be built throws its own message (the agent then keeps the running ones)', () => {
    const cfg = section({ execwhacker: { enabled: true }, tcpflowkiller: { enabled: true } });
    cfg.tcpflowkiller.exempt_cidrs = ['not-a-cidr'];
    assert.throws(() => buildDetectors(cfg, ctx()), /exempt_cidrs: not a CIDR: not-a-cidr/);
  });

  test('the section knows exactly the registered detectors', () => {
    const r = detectorsInput.safeParse({ execwhacker: {}, cpu: {} });
    assert.equal(r.success, false);
    assert.deepEqual(r.error!.issues.map((i) => i.code), ['unrecognized_keys']);
    const d = section({ execwhacker: { resources: {} }, monero: { image: 'x' }, tcpflowkiller: { config: { FlowKiller: { metrics_port: 1 } } } });
    assert.deepEqual(d.notes.map((n) => n.path), ['execwhacker.resources', 'monero.image', 'tcpflowkiller.config.FlowKiller.metrics_port']);
  });
});

describe('execwhacker detector', () => {
  const file = join(tmp, 'execwhacker-example.json');
  writeFileSync(file, EXAMPLE_CONFIG);
  const cfg = (over: Record<string, unknown> = {}): DetectorsConfig => {
    const d = loadDetectorsFiles([file]).detectors;
    Object.assign(d.execwhacker, { enabled: true, default_list: false }, over);
    return d;
  };
  const build = (c: DetectorsConfig, x = ctx(), prev: Detector[] = []): Detector => buildDetectors(c, x, prev).find((d) => d.name === 'execwhacker')!;

  test("cryptnono's example config: a banned command line is a kill request, an allowed one a spared report", () => {
    const d = build(cfg());
    const kill = d.onEvent(exec(501, ['/usr/bin/sleep', '1000', 'cryptnono.BANNED.string1']));
    // The config is named after its file (execwhacker-<name>.json in cryptnono's chart).
    assert.deepEqual(requests(kill).map((r) => [r.action, r.trigger, r.mode, r.target.pid, r.target.startTs, r.details]), [
      ['kill', 'execwhacker', 'enforce', 501, 1000n, { config: 'example', banned: 'cryptnono.banned.string1' }],
    ]);
    const spared = reports(d.onEvent(exec(502, ['/usr/bin/sleep', '1000', 'allowed', 'cryptnono.BANNED.string1'])));
    assert.equal(spared.length, 1);
    assert.equal(spared[0]!.outcome, 'spared');
    assert.equal(spared[0]!.request.details?.allowed_config, 'example');
    assert.match(spared[0]!.reason ?? '', /allowed pattern/);
    assert.equal(d.onEvent(exec(503, ['/usr/bin/sleep', '1000', 'notcryptnono.banned.string1x'])), undefined, 'word boundary: no answer');
    assert.equal(d.onEvent({ ...exec(504, ['/usr/bin/sleep', 'cryptnono.banned.string1']), type: 'connect' }), undefined, 'only execs');
    assert.deepEqual(d.stats(), { checked: 3, kills: 1, spared: { allowed: 1, word_boundary: 1, no_match: 0, reader: 0 }, rescans: 0 });
  });

  test('off: nothing is built, so no exec is looked at', () => {
    assert.equal(build(cfg({ enabled: false })), undefined);
  });

  describe('rescan of the running processes', () => {
    const marker = `mw-p14det-banned-${process.pid}`;
    let child: ChildProcess | undefined;
    after(() => child?.kill('SIGKILL'));

    test('a process whose command line holds a banned string is asked about once, across rescans and reloads; the agent\'s own are skipped', () => {
      child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)', marker], { stdio: 'ignore' });
      const pid = child.pid!;
      const c = cfg();
      c.execwhacker.configs.p14det = { bannedCommandStrings: [marker], allowedCommandPatterns: [] };
      const d = build(c);
      const asked = requests(d.rescan!()).filter((r) => r.details?.banned === marker);
      assert.deepEqual(asked.map((r) => [r.target.pid, r.target.startTs, r.details?.rescan, r.details?.config]), [[pid, readStartTs(pid), true, 'p14det']]);
      assert.equal(requests(d.rescan!()).filter((r) => r.details?.banned === marker).length, 0, 'asked once');
      const reloaded = build(c, ctx(), [d]);
      assert.equal(requests(reloaded.rescan!()).filter((r) => r.details?.banned === marker).length, 0, 'still once after a reload');
      const self = build(c, ctx({ isSelf: (p) => p === pid }));
      assert.equal(requests(self.rescan!()).filter((r) => r.details?.banned === marker).length, 0, 'isSelf: skipped');
      const stats = d.stats();
      assert.equal(stats.rescans, 2);
      assert.ok((stats.kills as number) >= 1);
    });

    test('the exec event arriving after a rescan already answered for the process (same pid, start, image) adds no second request or spare; another image is judged afresh', () => {
      const tail = '/usr/bin/tail';
      const log = join(tmp, `${marker}-log`);
      writeFileSync(log, 'x\n');
      const reader = spawn(tail, ['-f', log], { stdio: 'ignore' });
      const miner = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)', `${marker}-m`], { stdio: 'ignore' });
      try {
        const c = cfg({ spare_readers: true });
        c.execwhacker.configs.p14det = { bannedCommandStrings: [marker], allowedCommandPatterns: [] };
        const d = build(c);
        const first = d.rescan!();
        const mine = (a: DetectorAnswer[] | undefined, pid: number) => (a ?? []).filter((x) => ('request' in x ? x.request : x.report.request).target.pid === pid);
        assert.equal(mine(first, reader.pid!).length, 1, 'the reader: one spare report');
        assert.equal(reports(mine(first, reader.pid!))[0]!.outcome, 'spared');
        assert.equal(requests(mine(first, miner.pid!)).length, 1, 'the other: one kill request');
        const late = (pid: number, argv: string[], exepath: string): SyscallEvent => {
          const e = exec(pid, argv, readStartTs(pid));
          e.proc.exepath = exepath;
          return e;
        };
        assert.equal(d.onEvent(late(reader.pid!, [tail, '-f', log], tail)), undefined, 'spare reported once');
        assert.equal(d.onEvent(late(miner.pid!, [process.execPath, '-e', '…', `${marker}-m`], process.execPath)), undefined, 'asked once');
        // The same pid and start time under another executable: it exec'd something else.
        assert.equal(requests(d.onEvent(late(miner.pid!, ['/tmp/xm', `${marker}-m`], '/tmp/xm'))).length, 1);
      } finally {
        reader.kill('SIGKILL');
        miner.kill('SIGKILL');
      }
    });
  });
});

describe('tcpflowkiller detector', () => {
  const dir = join(tmp, 'ban');
  test('a connect to an address of a ban file is a kill request; other events and destinations are not', () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'pools.txt'), '# pools\n198.51.100.7\n');
    const cfg = section({ tcpflowkiller: { enabled: true, config: { FlowKiller: { banned_ipv4_file_globs: [join(dir, '*.txt')] } } } });
    const d = buildDetectors(cfg, ctx()).find((x) => x.name === 'tcpflowkiller')!;
    try {
      const connect = (pid: number, ip: string): SyscallEvent => ({
        source: 'syscall', type: 'connect', ts: 1n, res: 0, proc: { pid, name: 'miner', start_ts: 7n }, fd: { sip: ip, sport: 3333, l4proto: 'tcp', is_server: false } as SyscallEvent['fd'],
      });
      const r = requests(d.onEvent(connect(600, '198.51.100.7')));
      assert.deepEqual(r.map((q) => [q.action, q.trigger, q.mode, q.target.pid, q.target.remote?.ip, q.details?.reason]), [['kill', 'tcpflowkiller', 'enforce', 600, '198.51.100.7', 'banned-ip']]);
      assert.equal(d.onEvent(connect(601, '198.51.100.8')), undefined, 'not banned, one destination');
      assert.equal(d.onEvent(exec(602, ['/usr/bin/true'])), undefined, 'not a connect');
      const s = d.stats();
      assert.deepEqual([s.connectsChecked, s.requested, s.bannedAddresses], [2, { 'banned-ip': 1, scan: 0 }, 1]);
    } finally {
      d.close?.();
    }
  });
});

describe('monero detector', () => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES);
  const rx = (pid: number): SyscallEvent => ({
    source: 'syscall', type: 'mw_fpu_rounding', ts: 1n, res: 0, proc: { pid, name: 'nginx-worker', start_ts: 11n },
    fpu: { rounding_count: 16, rounding_changes: 8, rounding_rate: 1, rounding_percent: 70, rounding_rarest: 2, seconds: 11, busy_percent: 100 },
  });

  for (const enabled of [true, false]) {
    test(`RandomX rule match (enabled: ${enabled}): the eBPF driver hears the process is judged; ${enabled ? 'a kill request' : 'no kill'}`, () => {
      const judged: [number, bigint | undefined][] = [];
      const d = buildDetectors(section({ monero: { enabled } }), ctx({ fpuJudged: (pid, st) => judged.push([pid, st]) })).find((x) => x.name === 'monero')!;
      const ev = rx(700);
      const [m] = engine.process(ev);
      assert.equal(m?.rule, RANDOMX_RULE);
      assert.equal(d.onEvent(ev), undefined, 'it reads matches, not events');
      const r = requests(d.onMatch!(m!, ev));
      assert.deepEqual(judged, [[700, 11n]]);
      if (enabled) {
        assert.deepEqual(r.map((q) => [q.action, q.trigger, q.mode, q.target.pid, q.details]), [['kill', 'monero', 'enforce', 700, { rounding_count: 16, rounding_changes: 8, busy_percent: 100 }]]);
      } else assert.deepEqual(r, []);
      assert.deepEqual(d.stats(), { judged: 1, kills: enabled ? 1 : 0 });
    });
  }

  test('other rules\' matches are not its business', () => {
    const judged: number[] = [];
    const d = buildDetectors(section({ monero: { enabled: true } }), ctx({ fpuJudged: (pid) => judged.push(pid) })).find((x) => x.name === 'monero')!;
    const ev = exec(701, ['/tmp/xmrig', '-o', 'stratum+tcp://pool:3333']);
    const ms = engine.process(ev);
    assert.ok(ms.length > 0, 'the default rules match a miner launch');
    for (const m of ms) assert.equal(d.onMatch!(m, ev), undefined);
    assert.deepEqual(judged, []);
  });
});

test('cryptnono-files: a wrong value in a detectors file names its file, line and key', () => {
  const bad = join(tmp, 'bad.yaml');
  writeFileSync(bad, 'detectors:\n  execwhacker:\n    configs:\n      x:\n        bannedCommandStrings: 3\n');
  assert.throws(() => loadDetectorsFiles([bad]), (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.file === bad && p.line === 5 && /bannedCommandStrings/.test(p.path)));
});
