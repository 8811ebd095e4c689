/**
 * The eBPF driver live, in the real agent (`minewatch run --driver ebpf`), as root on a kernel with
 * BTF: each thing the proc connector cannot see gives its alert from the default rules —
 *   - chmod u+s on a file (the kernel's fchmodat, its mode rendered S_ISUID);
 *   - a new binary written (open for writing under a miner's name) and then run;
 *   - a process that is gone in well under a millisecond, with a banned string in its argv (the
 *     kernel's copy of argv: /proc has nothing left to read by then);
 *   - a connect to a listener in network namespaces the test makes, named through a DNS answer the
 *     driver read off the wire (no static name for it) and through the static table;
 *   - an XMRig login sent to a listener on a port no pool list has.
 * (The RandomX detector, which rides on this driver, has its own: randomx-e2e.test.ts.)
 * And where the driver cannot run (no privileges, no BTF) the agent says why and falls back to the
 * proc connector (or the /proc poller), or, with --driver ebpf, stops with the reason: no crash.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Alert, AgentRun, compileC, Marker, markerRules, randomToken, writeConfig } from './helpers/agent-run.js';
import { makeNetnsPair, type NetnsPair, removeNetnsPair, spawnIn, startListener } from './helpers/netns.js';
import { haveCommand, isRoot, killAll } from './helpers/live.js';
import { FIXTURES, ROOT } from './helpers/paths.js';
import { EbpfError, EbpfSource } from '../src/sources/ebpf/index.js';
import { loadEbpfAddon } from '../src/sources/ebpf/addon.js';
import { WALLET } from './helpers/miner.js';

const NOBODY = { uid: 65534, gid: 65534 };
const DEADLINE = 15_000;
const POOL_ADDR = '198.51.100.7';
const DNS_POOL_ADDR = '198.51.100.8';
const DNS_SERVER = '198.51.100.9';
const STATIC_POOL = 'pool.minexmr.com';
const DNS_POOL = 'xmr-eu1.nanopool.org';

// ---- what this machine allows -------------------------------------------------------------------

const addon = loadEbpfAddon();
const NO_EBPF = 'error' in addon ? `the eBPF driver is not built here: ${addon.error}` : undefined;
const NO_BTF = existsSync('/sys/kernel/btf/vmlinux') ? undefined : 'this kernel has no BTF (/sys/kernel/btf/vmlinux)';
const NO_ROOT = isRoot() ? undefined : 'needs root (loading BPF programs, network namespaces)';
const NO_TOOLS = ['cc', 'ip', 'nsenter', 'setpriv'].filter((c) => !haveCommand(c)).map((c) => `needs ${c}`)[0];
const SKIP = NO_ROOT ?? NO_EBPF ?? NO_BTF ?? NO_TOOLS;

let WORK = '';
let MINER = '';

before(() => {
  WORK = mkdtempSync(join(tmpdir(), 'mw-ebpf-e2e-'));
  chmodSync(WORK, 0o755);
  if (SKIP) return;
  MINER = join(WORK, 'fake-miner');
  compileC(join(FIXTURES, 'agent/fake-miner.c'), MINER);
  // Every default rule's output also names the pid (Falco's output append), so each alert can be
  // tied to the process the test started.
  const rules = [...readFileSync(join(ROOT, 'rules/minewatch_rules.yaml'), 'utf8').matchAll(/^- rule: (.+)$/gm)].map((m) => m[1]!.trim());
  writeFileSync(join(WORK, 'marker.yaml'), markerRules(rules.map((r) => `\n- rule: ${r}\n  output: pid=%proc.pid\n  override:\n    output: append\n`).join('')));
  chmodSync(join(WORK, 'marker.yaml'), 0o644);
});

after(() => {
  if (WORK) rmSync(WORK, { recursive: true, force: true });
});

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

const byPid = (rule: string, pid: number) => (a: Alert): boolean => a.rule === rule && a.output_fields['proc.pid'] === pid;

/**
 * A DNS server (UDP 53 on `bind`: its answers must come from the address asked) that answers every
 * A question with `addr`, as node -e in a namespace.
 */
function dnsServerScript(bind: string, addr: string): string {
  return `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (q, r) => {
  let o = 12; while (q[o] !== 0) o += q[o] + 1; o += 5;
  const h = Buffer.from(q.subarray(0, 12)); h[2] = 0x81; h[3] = 0x80; h.writeUInt16BE(1, 6);
  const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ${addr.split('.').join(', ')}]);
  s.send(Buffer.concat([h, q.subarray(12, o), rr]), r.port, r.address);
});
s.bind(53, ${JSON.stringify(bind)}, () => console.log(JSON.stringify({ listening: true })));`;
}

/** Resolve `name` through the DNS server at `server` (a connected UDP socket), then connect to the answer. */
function resolveAndConnectScript(server: string, name: string, port: number): string {
  return `
const dgram = require('node:dgram'), net = require('node:net');
const q = Buffer.concat([Buffer.from([0x42, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
  ...${JSON.stringify(name)}.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
const s = dgram.createSocket('udp4');
s.connect(53, ${JSON.stringify(server)}, () => s.send(q));
s.on('message', (a) => {
  const ip = [...a.subarray(a.length - 4)].join('.');
  s.close();
  const c = net.connect(${port}, ip, () => { console.log(JSON.stringify({ ip })); c.end(); });
  c.on('error', (e) => { console.error(e.message); process.exit(3); });
});
setTimeout(() => process.exit(4), 5000).unref();`;
}

describe('eBPF driver end to end (root, BTF)', { skip: SKIP }, () => {
  let agent: AgentRun;
  let marker: Marker;
  let nets: NetnsPair | undefined;
  const children: ChildProcess[] = [];
  const token = randomToken();

  before(async () => {
    nets = makeNetnsPair('eb', '198.51.100.1', [POOL_ADDR, DNS_POOL_ADDR, DNS_SERVER]);
    const listener = startListener(nets.b, [4444, 8443]);
    children.push(listener.child);
    const dns = spawnIn(nets.b, process.execPath, ['-e', dnsServerScript(DNS_SERVER, DNS_POOL_ADDR)]);
    children.push(dns);
    marker = new Marker(WORK, MINER);
    agent = new AgentRun(writeConfig(join(WORK, 'agent.yaml'), {
      rules_files: ['default', join(WORK, 'marker.yaml')],
      engine: { rule_matching: 'all' },
      sources: { cpu: { enabled: false }, dns: { hosts_files: [], static: { [STATIC_POOL]: POOL_ADDR } } },
      // The banned string is this run's own token: nothing else on the machine carries it.
      detectors: { execwhacker: { enabled: true, default_list: false, rescan_interval_s: 0, configs: { test: { bannedCommandStrings: [token] } } } },
    }), { args: ['--driver', 'ebpf'] });
    const started = await agent.started();
    assert.equal(started.driver, 'ebpf');
    await listener.ready;
    await new Promise<void>((resolve, reject) => {
      dns.stdout!.once('data', () => resolve());
      dns.once('exit', (code) => reject(new Error(`DNS server exited ${code}`)));
    });
    const chosen = await agent.waitLog((l) => l.msg === 'driver chosen', DEADLINE, 'driver chosen');
    assert.equal(chosen.randomx, 'on', 'the x86_fpu_regs_deactivated tracepoint is there on this kernel');
  });

  after(async () => {
    killAll(children);
    await agent?.stop();
    if (nets) removeNetnsPair(nets);
  });

  test('chmod u+s: Setuid or Setgid Bit Set by Chmod, with the file and the mode', async () => {
    // Not named with the banned token: execwhacker could stop chmod before its call.
    const file = join(WORK, 'suid-file');
    writeFileSync(file, '#!/bin/sh\n');
    const c = spawn('chmod', ['u+s', file], { stdio: 'ignore' });
    const a = await agent.waitAlert(byPid('Setuid or Setgid Bit Set by Chmod', c.pid!), DEADLINE, 'the chmod alert');
    assert.equal(a.output_fields['evt.arg.filename'], file);
    assert.match(String(a.output_fields['evt.arg.mode']), /S_ISUID/);
    assert.equal(a.output_fields['proc.name'], 'chmod');
  });

  test('a new binary written under a miner\'s name and run: written-to-disk, then launched', async () => {
    // Not named with the banned token: execwhacker would stop cp (and the miner) before they are done.
    const dir = join(WORK, 'drop');
    mkdirSync(dir);
    const path = join(dir, 'xmrig');
    const cp = spawn('cp', ['/bin/true', path], { stdio: 'ignore' });
    const w = await agent.waitAlert(byPid('Miner or Cryptojacking Malware Written to Disk', cp.pid!), DEADLINE, 'the written-to-disk alert');
    assert.equal(w.output_fields['fd.name'], path);
    assert.equal(await exitOf(cp), 0);
    const r = spawn(path, [], { stdio: 'ignore' });
    const l = await agent.waitAlert(byPid('Known Miner Program Launched', r.pid!), DEADLINE, 'the launch alert');
    assert.equal(l.output_fields['proc.exepath'], path);
  });

  test('a process gone in under a millisecond still has its argv: the banned string is found and the rules see its options', async () => {
    // /bin/true exits at once; by the time anything reads /proc/PID it is gone.
    const t = spawn('/bin/true', ['--donate-level', '1', `--tag=${token}`], { stdio: 'ignore' });
    const pid = t.pid!;
    const opts = await agent.waitAlert(byPid('Miner Options in Command Line', pid), DEADLINE, 'the miner-options alert');
    assert.equal(opts.output_fields['proc.cmdline'], `true --donate-level 1 --tag=${token}`);
    const whack = await agent.waitAlert((a) => a.rule === 'minewatch response: kill' && a.output_fields['proc.pid'] === pid, DEADLINE, 'the execwhacker request');
    assert.equal(whack.output_fields['mw.response.trigger'], 'execwhacker');
    assert.equal(whack.output_fields['mw.response.banned'], token);
  });

  test('a connect to the test\'s listener: named from the static table, and from a DNS answer read off the wire', async () => {
    const c = spawnIn(nets!.a, process.execPath, ['-e', `const c = require('node:net').connect(4444, '${POOL_ADDR}', () => c.end()); c.on('error', () => process.exit(3));`]);
    children.push(c);
    const a = await agent.waitAlert(byPid('Outbound Connection to a Mining Pool', c.pid!), DEADLINE, 'the pool connection (static name)');
    assert.equal(a.output_fields['fd.sip.name'], STATIC_POOL);
    assert.equal(a.output_fields['fd.sport'], 4444);
    assert.equal(a.output_fields['evt.type'], 'connect');

    const r = spawnIn(nets!.a, process.execPath, ['-e', resolveAndConnectScript(DNS_SERVER, DNS_POOL, 8443)]);
    children.push(r);
    let out = '';
    r.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    r.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    r.on('exit', (code) => (out += ` [exit ${code}]`));
    const explain = setTimeout(() => process.stderr.write(`resolver: ${out}; its alerts: ${JSON.stringify(agent.alerts.filter((x) => x.output_fields['proc.pid'] === r.pid).map((x) => x.output))}\n`), DEADLINE - 500);
    const d = await agent.waitAlert((x) => byPid('Outbound Connection to a Mining Pool', r.pid!)(x) && x.output_fields['fd.sport'] === 8443, DEADLINE, 'the pool connection (name from DNS)');
    clearTimeout(explain);
    assert.equal(d.output_fields['fd.sip.name'], DNS_POOL);
    const lookup = await agent.waitAlert(byPid('Mining Pool Domain Resolved', r.pid!), DEADLINE, 'the pool lookup');
    assert.equal(lookup.output_fields['mw.dns.query'], DNS_POOL);
    assert.match(String(d.output_fields['fd.name']), new RegExp(`->${DNS_POOL_ADDR.replace(/\./g, '\\.')}:8443$`));
    assert.equal(await exitOf(r), 0);
  });

  test('an XMRig login to a port no pool list has: Stratum Mining Protocol on the Wire, with agent and wallet', async () => {
    const login = JSON.stringify({ id: 1, method: 'login', params: { login: WALLET, agent: 'XMRig/6.21.0' } }) + '\n';
    const c = spawnIn(nets!.a, process.execPath, ['-e', `const c = require('node:net').connect(8443, '${POOL_ADDR}', () => { c.write(${JSON.stringify(login)}); c.end(); }); c.on('error', () => process.exit(3));`]);
    children.push(c);
    const a = await agent.waitAlert(byPid('Stratum Mining Protocol on the Wire', c.pid!), DEADLINE, 'the stratum alert');
    assert.equal(a.priority, 'Critical');
    assert.equal(a.output_fields['mw.stratum.method'], 'login');
    assert.equal(a.output_fields['mw.stratum.agent'], 'XMRig/6.21.0');
    assert.equal(a.output_fields['mw.stratum.login'], WALLET);
    assert.equal(a.output_fields['fd.sport'], 8443);
  });
});

describe('eBPF driver: the kernel filter follows the rules', { skip: SKIP }, () => {
  test('chmod stays in the kernel while no rule names it, and comes once one does', async () => {
    const seen: Array<{ type: string; pid: number }> = [];
    const src = new EbpfSource({ lookup: () => undefined, containerOf: () => undefined, wanted: () => false });
    src.onEvents((ev) => seen.push({ type: ev.type, pid: (ev as { proc: { pid: number } }).proc.pid }));
    await src.start(() => {});
    try {
      const file = join(WORK, 'filtered');
      writeFileSync(file, '');
      const chmodOnce = async (): Promise<number> => {
        const c = spawn('chmod', ['600', file], { stdio: 'ignore' });
        assert.equal(await exitOf(c), 0);
        // The reader hands records over within a few milliseconds; a connect of our own after the
        // chmod is the proof that everything before it has arrived.
        const probe = spawn(process.execPath, ['-e', `require('node:net').connect(9, '127.0.0.1').on('error', () => {}); setTimeout(() => process.exit(0), 50)`], { stdio: 'ignore' });
        await exitOf(probe);
        const deadline = Date.now() + DEADLINE;
        while (!seen.some((e) => e.type === 'connect' && e.pid === probe.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.ok(seen.some((e) => e.type === 'connect' && e.pid === probe.pid), 'the probe connect arrived');
        return c.pid!;
      };
      const before = await chmodOnce();
      assert.deepEqual(seen.filter((e) => e.pid === before), [], 'no rule names chmod: nothing came up');
      src.setWanted((t) => t === 'fchmodat');
      const after = await chmodOnce();
      assert.deepEqual(seen.filter((e) => e.pid === after).map((e) => e.type), ['fchmodat']);
    } finally {
      await src.stop();
    }
  });
});

describe('eBPF driver unavailable: a clear reason, and the fallback', { skip: NO_EBPF ?? NO_TOOLS }, () => {
  test('without BTF the source refuses with ERR_NO_BTF, naming the file', async () => {
    const src = new EbpfSource({ lookup: () => undefined, containerOf: () => undefined, btfPath: join(WORK, 'no-such-vmlinux') });
    await assert.rejects(src.start(() => {}), (e: unknown) => {
      assert.ok(e instanceof EbpfError);
      assert.equal(e.code, 'ERR_NO_BTF');
      assert.match(e.message, /no-such-vmlinux/);
      assert.match(e.message, /BTF/);
      assert.match(e.message, /--driver proc/);
      return true;
    });
  });

  test('the agent without BTF falls back to the proc connector and says why', { skip: NO_ROOT }, async () => {
    const agent = new AgentRun(writeConfig(join(WORK, 'nobtf.yaml'), {
      rules_files: ['default'], sources: { cpu: { enabled: false }, ebpf: { btf: join(WORK, 'no-such-vmlinux') } },
    }));
    try {
      const started = await agent.started();
      assert.ok(['proc', 'procfs'].includes(String(started.driver)), String(started.driver));
      const why = agent.logs.find((l) => l.msg === 'eBPF driver unavailable; trying the proc connector');
      assert.match(String(why?.reason), /no BTF/);
      const chosen = agent.logs.find((l) => l.msg === 'driver chosen');
      assert.equal(chosen?.driver, started.driver);
    } finally {
      await agent.stop();
    }
  });

  test('as nobody: the default driver falls back with the reason; --driver ebpf stops with it, exit 1', async (t) => {
    if (!isRoot()) return t.skip('needs root to switch to nobody');
    const cfg = writeConfig(join(WORK, 'nobody.yaml'), { rules_files: ['default'], sources: { cpu: { enabled: false }, connections: { enabled: false } } });
    const auto = new AgentRun(cfg, { user: NOBODY });
    try {
      const started = await auto.started();
      assert.notEqual(started.driver, 'ebpf');
      const why = auto.logs.find((l) => l.msg === 'eBPF driver unavailable; trying the proc connector');
      assert.match(String(why?.reason), /needs root/);
    } finally {
      await auto.stop();
    }
    const forced = new AgentRun(cfg, { user: NOBODY, args: ['--driver', 'ebpf'] });
    const exit = await forced.exited;
    assert.equal(exit.code, 1, forced.tail());
    const err = forced.logs.find((l) => l.msg === 'cannot start');
    assert.match(String(err?.err), /eBPF driver needs root/);
    assert.deepEqual(forced.rawErr.filter((l) => /TypeError|ReferenceError|Segmentation|core dumped/.test(l)), []);
  });
});
