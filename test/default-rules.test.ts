/**
 * minewatch's default rules file (rules/minewatch_rules.yaml) against the fixtures: exactly which
 * rules fire for which pid on miner activity, nothing on a busy benign host, the shipped sample's
 * story, loading alone and after Falco's three files, covering Falco's own mining detections, and
 * staying overridable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Event, SyscallEvent } from '../src/events.js';
import { DEFAULT_RULES_FILES, Engine, RulesLoadError, readRulesFiles } from '../src/engine/index.js';
import type { Match, RulesFileInput } from '../src/engine/index.js';
import { readEventsFile } from '../src/sources/replay.js';
import { FALCO_CORPUS } from './helpers/paths.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../test/fixtures/${name}`, import.meta.url));
const SAMPLE = fileURLToPath(new URL('../../samples/miner-activity.jsonl', import.meta.url));
const FALCO_FILES = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'].map((f) => FALCO_CORPUS + f);

const R = {
  poolUrl: 'Mining Pool URL in Command Line',
  minerProgram: 'Known Miner Program Launched',
  minerOptions: 'Miner Options in Command Line',
  wallet: 'Wallet Address in Command Line or Environment',
  malware: 'Known Cryptojacking Malware Launched',
  minerImage: 'Process in a Known Miner Image',
  poolConnection: 'Outbound Connection to a Mining Pool',
  miningPort: 'Outbound Connection to a Common Mining Port',
  minerWritten: 'Miner or Cryptojacking Malware Written to Disk',
  setuid: 'Setuid or Setgid Bit Set by Chmod',
  drift: 'Container Drift New Executable Run',
  cpu: 'Sustained High CPU Use',
  stratumWire: 'Stratum Mining Protocol on the Wire',
  randomx: 'RandomX Floating-Point Rounding Pattern',
  poolLookup: 'Mining Pool Domain Resolved',
} as const;

/** Load files, failing the test with every problem listed when the load fails. */
function load(files: RulesFileInput[]): Engine {
  try {
    return new Engine(files, { ruleMatching: 'all' });
  } catch (e) {
    if (e instanceof RulesLoadError) assert.fail(`rules failed to load:\n${e.message}`);
    throw e;
  }
}

const inline = (path: string, text: string): RulesFileInput => ({ path, text });

async function events(path: string): Promise<Event[]> {
  const out: Event[] = [];
  for await (const ev of readEventsFile(path)) out.push(ev);
  return out;
}

const pidOf = (ev: Event): number => (ev as SyscallEvent).proc.pid;

/** pid → sorted names of the rules that fired for that pid's events. */
async function firedByPid(engine: Engine, path: string, only?: (m: Match) => boolean): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const ev of await events(path)) {
    for (const m of engine.process(ev)) {
      if (only && !only(m)) continue;
      const pid = pidOf(m.event);
      out.set(pid, [...(out.get(pid) ?? []), m.rule].sort());
    }
  }
  return out;
}

const sorted = (o: Record<number, string[]>): Map<number, string[]> =>
  new Map(Object.entries(o).map(([k, v]) => [Number(k), [...v].sort()]));

test('the default rules file loads alone, without errors or warnings', () => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES, { ruleMatching: 'all' });
  assert.deepEqual(engine.warnings.map((w) => w.message), []);
});

test('every list and macro of ours is named mw_…, and every rule is tagged and has an output', () => {
  const text = readFileSync(DEFAULT_RULES_FILES[0]!, 'utf8');
  const names = [...text.matchAll(/^- (list|macro): (\S+)/gm)].map((m) => m[2]!);
  assert.ok(names.length > 10);
  for (const n of names) assert.match(n, /^mw_/, n);
  const rules = [...text.matchAll(/^- rule: (.+)$/gm)].map((m) => m[1]!);
  assert.deepEqual(new Set(rules), new Set(Object.values(R)));
  assert.equal(text.match(/^ {2}tags: \[minewatch, mining, /gm)?.length, rules.length);
  assert.match(text, /^- required_engine_version: 0\.57\.0$/m);
});

test('miner activity: exactly these rules fire, per pid', async () => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES, { ruleMatching: 'all' });
  const fired = await firedByPid(engine, fixture('miner-activity.jsonl'));
  assert.deepEqual(fired, sorted({
    1001: [R.poolUrl, R.minerProgram], // xmrig with a stratum URL
    1002: [R.poolUrl, R.minerOptions, R.wallet], // minerd2 -a cryptonight -o stratum+tcp://… -u <xmr> in a container
    1003: [R.minerProgram, R.minerOptions, R.wallet, R.minerImage], // XMRig in metal3d/xmrig
    1004: [R.poolConnection], // connect to pool.supportxmr.com:3333
    1005: [R.poolConnection], // connect to pool.minexmr.com:443
    1006: [R.setuid], // chmod u+s
    1007: [R.drift], // executable on the upper layer in a container
    1008: [R.wallet], // an Ethereum address in a command line
    1009: [R.malware, R.drift], // kdevtmpfsi dropped into a container
    1010: [R.malware], // kinsing on the host
    1011: [R.minerWritten], // curl saving /tmp/xmrig
    1012: [R.drift], // fileless (memfd) run in a container
  }));
});

test('miner activity: priorities and outputs carry what responders need', async () => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES, { ruleMatching: 'all' });
  for (const ev of await events(fixture('miner-activity.jsonl'))) {
    for (const m of engine.process(ev)) {
      assert.ok(m.tags.includes('minewatch') && m.tags.includes('mining'), m.rule);
      const critical = [R.poolUrl, R.minerProgram, R.minerOptions, R.malware, R.minerImage, R.poolConnection].includes(m.rule as never);
      assert.equal(m.priority, critical ? 'CRITICAL' : m.rule === R.setuid ? 'NOTICE' : 'WARNING', m.rule);
      for (const f of ['proc.cmdline', 'container.id', 'container.image.repository', 'k8s.ns.name', 'k8s.pod.name', 'proc.exepath', 'user.name']) {
        assert.ok(f in m.outputFields, `${m.rule} outputs ${f}`);
      }
      if (pidOf(ev) === 1002) {
        assert.equal(m.outputFields['container.id'], '3ad2e1f0c9b8');
        assert.match(m.output, /minerd2 -a cryptonight -o stratum\+tcp:\/\/monero\.crypto-pool\.fr:3333/);
      }
      if (m.rule === R.poolConnection) {
        assert.ok(['pool.supportxmr.com', 'pool.minexmr.com'].includes(String(m.outputFields['fd.sip.name'])));
        assert.ok('fd.name' in m.outputFields);
      }
    }
  }
});

test('benign activity on a busy host: no match at all', async () => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES, { ruleMatching: 'all' });
  const fired = await firedByPid(engine, fixture('benign-activity.jsonl'));
  assert.deepEqual(fired, new Map());
});

test('the shipped sample tells the story: download, write, run, connect', async () => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES, { ruleMatching: 'all' });
  const seen: string[] = [];
  for (const ev of await events(SAMPLE)) for (const m of engine.process(ev)) seen.push(`${ev.type}:${pidOf(ev)}:${m.rule}`);
  assert.deepEqual(seen, [
    `openat:4202:${R.minerWritten}`,
    `execve:4204:${R.poolUrl}`,
    `execve:4204:${R.minerProgram}`,
    `execve:4204:${R.minerOptions}`,
    `execve:4204:${R.wallet}`,
    `execve:4204:${R.drift}`,
    `connect:4204:${R.poolConnection}`,
  ]);
});

test("our file loads after Falco's three files, with no errors and nothing to warn about in ours", () => {
  const engine = load(readRulesFiles([...FALCO_FILES, ...DEFAULT_RULES_FILES]));
  const ours = engine.warnings.filter((w) => w.pos.file.endsWith('minewatch_rules.yaml'));
  assert.deepEqual(ours.map((w) => w.message), []);
});

test("every Falco mining detection that fires is covered by one of ours", async () => {
  // Falco's sandbox file keeps its pool rule off (Falco would resolve names itself); switch it on
  // here so all three of Falco's mining rules take part.
  const enable = inline('enable-falco-pool-rule.yaml', [
    '- rule: Detect outbound connections to common miner pool ports',
    '  enabled: true',
    '  override:',
    '    enabled: replace',
  ].join('\n'));
  const engine = load([...readRulesFiles([...FALCO_FILES, ...DEFAULT_RULES_FILES]), enable]);
  const falcoMining = new Set([
    'Detect outbound connections to common miner pool ports',
    'Detect crypto miners using the Stratum protocol',
    'Known Cryptominer Process Executed',
  ]);
  const ours = new Set<string>(Object.values(R));
  const falcoFired = new Set<string>();
  for (const path of [fixture('miner-activity.jsonl'), SAMPLE]) {
    for (const ev of await events(path)) {
      const names = engine.process(ev).map((m) => m.rule);
      const falco = names.filter((n) => falcoMining.has(n));
      falco.forEach((n) => falcoFired.add(n));
      if (falco.length) assert.ok(names.some((n) => ours.has(n)), `pid ${pidOf(ev)}: Falco fired ${falco.join(', ')} and we did not`);
    }
  }
  // The comparison means something only if each of Falco's rules fired at least once.
  assert.deepEqual(falcoFired, falcoMining);
});

test('the mining-port rule is off by default and works when switched on', async () => {
  const enable = inline('enable-port-rule.yaml', [
    `- rule: ${R.miningPort}`,
    '  enabled: true',
    '  override:',
    '    enabled: replace',
  ].join('\n'));
  const engine = load([...readRulesFiles(DEFAULT_RULES_FILES), enable]);
  const fired = await firedByPid(engine, fixture('miner-activity.jsonl'), (m) => m.rule === R.miningPort);
  assert.deepEqual(fired, new Map([[1004, [R.miningPort]]])); // 3333 counts; 443 does not
  const benign = await firedByPid(engine, fixture('benign-activity.jsonl'));
  assert.deepEqual(benign, new Map()); // 3333 on a private address is not outbound
});

test('allow-lists are overridable: a sanctioned miner image goes quiet', async () => {
  const allow = inline('allow.yaml', [
    '- list: mw_allowed_miner_images',
    '  items: [metal3d/xmrig]',
    '  override:',
    '    items: append',
  ].join('\n'));
  const engine = load([...readRulesFiles(DEFAULT_RULES_FILES), allow]);
  const fired = await firedByPid(engine, fixture('miner-activity.jsonl'));
  assert.equal(fired.has(1003), false);
  assert.deepEqual(fired.get(1002), [R.poolUrl, R.minerOptions, R.wallet].sort());
});

test('sustained high CPU from the sampler fires; a tightened macro leaves lower use out', () => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES, { ruleMatching: 'all' });
  const tightened = load([...readRulesFiles(DEFAULT_RULES_FILES), {
    path: 'local.yaml',
    text: '- macro: mw_cpu_sustained_high\n  condition: (mw.cpu.percent >= 150)\n  override:\n    condition: replace\n',
  }]);
  const sample = (cpu: Record<string, number | string>): SyscallEvent => ({
    source: 'syscall', type: 'cpu_sustained', ts: 1764000000000000000n, num: 1,
    proc: { pid: 777, name: 'kswapd1', args: [] }, container: { id: '1234567890ab', image_repository: 'docker.io/library/php' }, cpu,
  });
  const rules = (cpu: Record<string, number | string>, e = engine) => e.process(sample(cpu)).map((m) => m.rule);
  // The sampler decides what is sustained (sources.cpu); the rule reports what it sends.
  assert.deepEqual(rules({ percent: 398, duration: 600_000_000_000, scope: 'container' }), [R.cpu]);
  assert.deepEqual(rules({ percent: 95, duration: 60_000_000_000, scope: 'process' }), [R.cpu]);
  assert.deepEqual(rules({ percent: 398, duration: 600_000_000_000, scope: 'container' }, tightened), [R.cpu]);
  assert.deepEqual(rules({ percent: 95, duration: 60_000_000_000, scope: 'process' }, tightened), []);
  // Other events never carry sampler figures.
  assert.deepEqual(engine.process({ ...sample({}), type: 'execve', cpu: undefined }).map((m) => m.rule), []);
});
