/**
 * Falco's own rules files, exactly as published, load in minewatch: counts per file, which rules
 * are enabled, plugin requirements, and rules from the corpus firing on events.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine, RulesLoadError } from '../src/engine/index.js';
import type { SyscallEvent } from '../src/events.js';
import { FALCO_CORPUS } from './helpers/paths.js';

const FILES = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'].map((f) => FALCO_CORPUS + f);

// Counted independently of minewatch (a plain YAML reader over the published files).
const EXPECTED = [
  { file: 'falco_rules.yaml', rules: 25, macros: 87, lists: 49, disabled: [] as string[] },
  { file: 'falco-incubating_rules.yaml', rules: 31, macros: 82, lists: 54, disabled: [] as string[] },
  {
    file: 'falco-sandbox_rules.yaml', rules: 37, macros: 183, lists: 60,
    disabled: [
      'Unexpected inbound connection source', 'Read Shell Configuration File', 'Interpreted procs inbound network activity',
      'Interpreted procs outbound network activity', 'Unexpected K8s NodePort Connection', 'Create Hidden Files or Directories',
      'Detect outbound connections to common miner pool ports', 'Container Drift Detected (chmod)',
      'Container Drift Detected (open+create)', 'Container Run as Root User', 'Java Process Class File Download',
      'Modify Container Entrypoint',
    ],
  },
];

test('the three syscall rules files load together with zero errors, counted per file', () => {
  const engine = Engine.fromFiles(FILES);
  const rs = engine.ruleset;
  assert.deepEqual(
    rs.files.map((f) => ({ file: f.path.split('/').pop(), rules: f.rules, macros: f.macros, lists: f.lists })),
    EXPECTED.map(({ file, rules, macros, lists }) => ({ file, rules, macros, lists })),
  );
  assert.equal(rs.rules.length, 25 + 31 + 37);
  for (const exp of EXPECTED) {
    const inFile = rs.rules.filter((r) => r.pos.file.endsWith('/' + exp.file));
    assert.equal(inFile.length, exp.rules, exp.file);
    assert.deepEqual(inFile.filter((r) => !r.enabled).map((r) => r.name), exp.disabled, `disabled rules of ${exp.file}`);
  }
  // Every enabled rule compiled and is indexed by its event types (none falls back to "any type").
  assert.equal(engine.active.length, 93 - 12);
  assert.ok(engine.active.every((r) => r.evttypes && r.evttypes.size > 0));
  assert.ok(engine.rulesFor('syscall', 'execve').length > 30);
  assert.equal(engine.rulesFor('syscall', 'read').length, 0);
  assert.equal(engine.rulesFor('syscall', 'futex').length, 0);
});

test('each file also loads alone, with the engine and plugin versions it asks for', () => {
  for (const f of FILES) {
    const rs = Engine.fromFiles([f]).ruleset;
    assert.equal(rs.files[0]!.requiredEngineVersion, '0.57.0');
  }
});

test('every corpus rules file loads with its plugins built in (k8s_audit: k8s-audit-corpus.test.ts; github: github-fields.test.ts)', () => {
  for (const file of ['k8s_audit_rules.yaml', 'github.yaml']) {
    const engine = Engine.fromFiles([FALCO_CORPUS + file]);
    assert.ok(engine.active.length > 0, file);
  }
});

function exec(over: Partial<SyscallEvent['proc']>, extra: Partial<SyscallEvent> = {}): SyscallEvent {
  return {
    source: 'syscall', type: 'execve', ts: 1_764_100_000_000_000_000n, res: 0,
    proc: {
      pid: 4242, name: 'sh', exe: 'sh', exepath: '/bin/sh', args: [], cwd: '/', tty: 0, uid: 0, user: 'root',
      loginuid: -1, parent: { pid: 4000, name: 'containerd-shim', exepath: '/usr/bin/containerd-shim', args: [] }, ...over,
    },
    container: { id: 'deadbeef0001', name: 'web', image_repository: 'docker.io/library/nginx', image_tag: 'latest' },
    ...extra,
  } as SyscallEvent;
}

test('corpus rules fire on real-looking events', () => {
  const engine = Engine.fromFiles(FILES, { ruleMatching: 'all' });
  const miner = engine.process(exec({
    name: 'xmrig', exe: './xmrig', exepath: '/tmp/xmrig',
    args: ['-o', 'stratum+tcp://pool.supportxmr.com:3333', '-u', 'wallet', '-p', 'x'],
  }));
  assert.ok(miner.some((m) => m.rule === 'Detect crypto miners using the Stratum protocol'), miner.map((m) => m.rule).join());
  const stratum = miner.find((m) => m.rule === 'Detect crypto miners using the Stratum protocol')!;
  assert.equal(stratum.priority, 'CRITICAL');
  assert.match(stratum.output, /^Possible miner running \| evt_type=execve user=root .* process=xmrig proc_exepath=\/tmp\/xmrig parent=containerd-shim command=xmrig -o stratum\+tcp:\/\/pool\.supportxmr\.com:3333 -u wallet -p x /);

  const ordinary = engine.process(exec({ name: 'nginx', exe: 'nginx', exepath: '/usr/sbin/nginx', args: ['-g', 'daemon off;'] }));
  assert.ok(!ordinary.some((m) => m.rule === 'Detect crypto miners using the Stratum protocol'));
});

test('Launch Sensitive Mount Container: fires for a /proc mount, not for an ordinary container', () => {
  const engine = Engine.fromFiles(FILES, { ruleMatching: 'all' });
  const rule = 'Launch Sensitive Mount Container';
  const start = (mounts: { source: string; dest: string }[]) =>
    engine.process(exec({ name: 'nginx', exepath: '/usr/sbin/nginx', vpid: 1 }, {
      container: { id: 'deadbeef0002', name: 'web', image_repository: 'docker.io/library/nginx', mounts },
    })).map((m) => m.rule);
  assert.ok(!start([{ source: '/data/www', dest: '/usr/share/nginx/html' }]).includes(rule));
  assert.ok(!start([]).includes(rule));
  assert.ok(start([{ source: '/proc', dest: '/host/proc' }]).includes(rule));
});
