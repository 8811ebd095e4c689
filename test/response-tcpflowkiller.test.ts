/**
 * tcpflowkiller: the verdicts on hand-built `connect` events (banned lists from files and globs,
 * reloaded when a file changes; scans of more than 15 distinct destinations in the window; exempt
 * ranges), then for real as root: processes in a network namespace the test makes connect to a
 * listener at 198.51.100.7 in another one, and are killed by SIGKILL through the KillAction — one
 * for a banned address, one for a scan of 16 destinations (with 198.51.100.0/24 taken off
 * `exempt_cidrs`, since it is a documentation range and exempt by default).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseIp } from '../src/platform/ip.js';
import { readStartTs } from '../src/platform/procfs.js';
import type { SyscallEvent } from '../src/events.js';
import { KillAction } from '../src/response/kill.js';
import { Safety } from '../src/response/safety.js';
import { DEFAULT_EXEMPT_CIDRS, expandGlob, globBaseDir, parseBanList, TcpFlowKiller } from '../src/detectors/tcpflowkiller/index.js';
import type { ActionResult } from '../src/response/types.js';
import { haveCommand, isRoot, killAll, sleep } from './helpers/live.js';
import { makeNetnsPair, type NetnsPair, removeNetnsPair, spawnIn, startListener } from './helpers/netns.js';

const tmp = mkdtempSync(join(tmpdir(), 'mw-flowkiller-'));
const killers: TcpFlowKiller[] = [];
after(() => {
  killers.forEach((k) => k.close());
  rmSync(tmp, { recursive: true, force: true });
});

const T0 = 1_700_000_000_000_000_000n;
const SEC = 1_000_000_000n;

/** A connect event as the connections source makes them. */
function connect(pid: number, sip: string, sport: number, opts: { ts?: bigint; start?: bigint; proto?: 'tcp' | 'udp'; server?: boolean } = {}): SyscallEvent {
  return {
    source: 'syscall',
    type: 'connect',
    ts: opts.ts ?? T0,
    res: 0,
    proc: { pid, name: 'xmrig', exepath: '/tmp/xmrig', args: ['-o', `${sip}:${sport}`], start_ts: opts.start ?? 1_699_999_000_000_000_000n },
    fd: { type: 'ipv4', l4proto: opts.proto ?? 'tcp', cip: '10.1.2.3', cport: 40000, sip, sport, is_server: opts.server ?? false, connected: true },
    container: { id: 'abcdefabcdef', image: 'docker.io/library/alpine:3' },
  };
}

const noDocRange = DEFAULT_EXEMPT_CIDRS.filter((c) => c !== '198.51.100.0/24');

function killer(opts: ConstructorParameters<typeof TcpFlowKiller>[0] = {}): TcpFlowKiller {
  const k = new TcpFlowKiller(opts);
  killers.push(k);
  return k;
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(20);
  }
}

// ---- unit: files ------------------------------------------------------------------------------------

describe('tcpflowkiller: ban files', () => {
  test('one address per line, # comments, CIDRs, junk counted and skipped', () => {
    const r = parseBanList('# pools\n203.0.113.50\n  198.51.100.99   # a pool\n\nnot-an-ip\n192.0.2.0/28\n2001:db8::66\n300.1.1.1\n');
    assert.equal(r.addrs.length, 3);
    assert.equal(r.nets.length, 1);
    assert.deepEqual(r.invalid, ['not-an-ip', '300.1.1.1']);
  });

  test('globs: files only, hidden entries skipped (a ConfigMap mount\'s ..data), sorted', () => {
    const d = join(tmp, 'globs');
    mkdirSync(join(d, 'sub'), { recursive: true });
    mkdirSync(join(d, '..data'), { recursive: true });
    for (const f of ['b.txt', 'a.txt', 'c.conf', '.hidden.txt', 'sub/d.txt', '..data/e.txt']) writeFileSync(join(d, f), '203.0.113.1\n');
    assert.deepEqual(expandGlob(join(d, '*.txt')), [join(d, 'a.txt'), join(d, 'b.txt')]);
    assert.deepEqual(expandGlob(join(d, '*/*.txt')), [join(d, 'sub/d.txt')]);
    assert.deepEqual(expandGlob(join(d, 'a.txt')), [join(d, 'a.txt')]);
    assert.deepEqual(expandGlob(join(d, 'nope', '*.txt')), []);
    assert.equal(globBaseDir('/ban-config/*.txt'), '/ban-config');
    assert.equal(globBaseDir('/etc/mw/*/x.txt'), '/etc/mw');
    assert.equal(globBaseDir('/etc/mw/banned.txt'), '/etc/mw');
  });
});

// ---- unit: verdicts ---------------------------------------------------------------------------------

describe('tcpflowkiller: verdicts on connect events', () => {
  test('a banned address: kill, whatever range it is in; others pass', () => {
    const d = join(tmp, 'banned1');
    mkdirSync(d);
    writeFileSync(join(d, 'pools.txt'), '# miner pools\n203.0.113.50\n10.9.9.9\n');
    writeFileSync(join(d, 'more.txt'), '198.51.100.128/25\n');
    const k = killer({ banned_ipv4_file_globs: [join(d, '*.txt')], watch: false, mode: 'enforce' });
    assert.equal(k.bannedCount, 3);
    assert.equal(k.stats.bannedFiles, 2);
    const r = k.decide(connect(100, '203.0.113.50', 3333));
    assert.ok(r, 'banned: a request');
    assert.equal(r.action, 'kill');
    assert.equal(r.mode, 'enforce');
    assert.equal(r.trigger, 'tcpflowkiller');
    assert.equal(r.target.pid, 100);
    assert.equal(r.target.startTs, 1_699_999_000_000_000_000n);
    assert.deepEqual(r.target.remote, { ip: '203.0.113.50', port: 3333 });
    assert.equal(r.details?.reason, 'banned-ip');
    assert.equal(r.details?.['banned-ip'], '203.0.113.50');
    // A private address in the list is banned too (the list is checked before the exemptions).
    assert.ok(k.decide(connect(101, '10.9.9.9', 443)));
    assert.ok(k.decide(connect(102, '198.51.100.200', 80)), 'inside a banned CIDR');
    assert.equal(k.decide(connect(103, '203.0.113.51', 3333)), undefined);
    assert.equal(k.decide(connect(104, '198.51.100.1', 80)), undefined);
    // IPv4-mapped IPv6 is the IPv4 address.
    assert.ok(k.decide(connect(105, '::ffff:203.0.113.50', 3333)));
    // Only once per process.
    assert.equal(k.decide(connect(100, '203.0.113.50', 3333)), undefined);
    assert.deepEqual(k.stats.requested, { 'banned-ip': 4, scan: 0 });
    // Accepted sockets and (by default) UDP are not outbound TCP connections.
    assert.equal(k.decide(connect(106, '203.0.113.50', 3333, { server: true })), undefined);
    assert.equal(k.decide(connect(107, '203.0.113.50', 3333, { proto: 'udp' })), undefined);
    assert.ok(killer({ banned_ipv4_file_globs: [join(d, '*.txt')], watch: false, protocols: ['tcp', 'udp'] }).decide(connect(107, '203.0.113.50', 3333, { proto: 'udp' })));
    // dryrun is the default mode.
    assert.equal(killer({ banned_ipv4_file_globs: [join(d, '*.txt')], watch: false }).decide(connect(108, '203.0.113.50', 1))?.mode, 'dryrun');
  });

  test('a changed file is reloaded (watching its folder, debounced), a new file in the glob too', async () => {
    const d = join(tmp, 'banned2');
    mkdirSync(d);
    writeFileSync(join(d, 'a.txt'), '203.0.113.60\n');
    const k = killer({ banned_ipv4_file_globs: [join(d, '*.txt')], reloadDebounceMs: 50, reloadIntervalMs: 0 });
    k.start();
    assert.ok(k.decide(connect(200, '203.0.113.60', 1)));
    assert.equal(k.decide(connect(201, '203.0.113.61', 1)), undefined);

    writeFileSync(join(d, 'a.txt'), '203.0.113.61\n');
    await until(() => k.isBanned(parseIp('203.0.113.61')!), 5000, 'the edit is seen');
    assert.ok(k.decide(connect(202, '203.0.113.61', 1)), 'now banned');
    assert.equal(k.decide(connect(203, '203.0.113.60', 1)), undefined, 'no longer banned');

    // A new file, written elsewhere and renamed in (as editors and ConfigMaps do).
    writeFileSync(join(tmp, 'b.tmp'), '203.0.113.62\n');
    renameSync(join(tmp, 'b.tmp'), join(d, 'b.txt'));
    await until(() => k.bannedCount === 2, 5000, 'the new file is seen');
    assert.ok(k.decide(connect(204, '203.0.113.62', 1)));

    // A folder that does not exist yet: its parent is watched, so the file is found once it appears.
    const later = join(tmp, 'later');
    const k2 = killer({ banned_ipv4_file_globs: [join(later, '*.txt')], reloadDebounceMs: 50, reloadIntervalMs: 0 });
    k2.start();
    assert.equal(k2.bannedCount, 0);
    mkdirSync(later);
    writeFileSync(join(later, 'x.txt'), '203.0.113.63\n');
    await until(() => k2.bannedCount === 1, 5000, 'the late file');
  });

  test('a scan: more than 15 distinct (address, port) destinations in 30 s', () => {
    const k = killer({ exempt_cidrs: noDocRange, watch: false, mode: 'enforce' });
    for (let i = 1; i <= 15; i++) assert.equal(k.decide(connect(300, `198.51.100.${i}`, 80, { ts: T0 + BigInt(i) * SEC })), undefined, `destination ${i}`);
    // The same destinations again do not count twice.
    for (let i = 1; i <= 15; i++) assert.equal(k.decide(connect(300, `198.51.100.${i}`, 80, { ts: T0 + 16n * SEC })), undefined);
    const r = k.decide(connect(300, '198.51.100.7', 8080, { ts: T0 + 17n * SEC }));
    assert.ok(r, 'the 16th distinct pair is a scan');
    assert.equal(r.details?.reason, 'scan');
    assert.equal(r.details?.destinations, 16);
    assert.match(String(r.details?.addresses), /198\.51\.100\.7:8080/);
    assert.equal(k.stats.requested.scan, 1);
    // Ports count: one address, 16 ports.
    const k2 = killer({ exempt_cidrs: noDocRange, watch: false });
    let got;
    for (let p = 1; p <= 16; p++) got = k2.decide(connect(301, '198.51.100.7', p));
    assert.equal(got?.details?.reason, 'scan');
  });

  test('the window: 16 destinations spread over more than 30 s are no scan', () => {
    const k = killer({ exempt_cidrs: noDocRange, watch: false });
    for (let i = 0; i < 40; i++) assert.equal(k.decide(connect(400, `198.51.100.${i + 1}`, 80, { ts: T0 + BigInt(i) * 3n * SEC })), undefined, `connect ${i}`);
    // …and the window and threshold are settable.
    const k2 = killer({ exempt_cidrs: noDocRange, watch: false, lookback_duration_seconds: 200, unique_destinations_threshold: 3 });
    const verdicts = [1, 2, 3, 4].map((i) => k2.decide(connect(401, `198.51.100.${i}`, 80, { ts: T0 + BigInt(i) * 40n * SEC })));
    assert.deepEqual(verdicts.map((v) => v?.details?.reason), [undefined, undefined, undefined, 'scan']);
  });

  test('exempt ranges are not counted: private, loopback, CGNAT, and by default the documentation ranges', () => {
    const k = killer({ watch: false });
    for (const [i, ip] of ['10.0.0.', '192.168.1.', '172.16.5.', '100.64.0.', '127.0.0.', '169.254.0.', '198.51.100.', '203.0.113.'].entries()) {
      for (let j = 1; j <= 20; j++) assert.equal(k.decide(connect(500 + i, `${ip}${j}`, 80)), undefined, `${ip}${j}`);
    }
    assert.equal(k.stats.exempt, 160);
    assert.equal(k.stats.requested.scan, 0);
    // IPv6: ULA and link-local are exempt; documentation too by default.
    for (let j = 1; j <= 20; j++) assert.equal(k.decide(connect(510, `fd00::${j}`, 80)), undefined);
    // A public-looking range is counted.
    const k2 = killer({ watch: false, exempt_cidrs: [] });
    let got;
    for (let j = 1; j <= 16; j++) got = k2.decide(connect(511, `10.0.0.${j}`, 80));
    assert.equal(got?.details?.reason, 'scan', 'with no exemptions, private addresses count');
    assert.throws(() => new TcpFlowKiller({ exempt_cidrs: ['10.0.0.0/33'] }), /not a CIDR/);
  });

  test('state is per process identity: the same pid with another start time starts afresh', () => {
    const k = killer({ exempt_cidrs: noDocRange, watch: false });
    for (let i = 1; i <= 10; i++) k.decide(connect(600, `198.51.100.${i}`, 80, { start: 1n }));
    for (let i = 11; i <= 16; i++) assert.equal(k.decide(connect(600, `198.51.100.${i}`, 80, { start: 2n })), undefined);
    assert.equal(k.stats.trackedProcesses, 2);
    k.sweep(T0 + 60n * SEC);
    assert.equal(k.stats.trackedProcesses, 0, 'swept once idle past the window');
  });
});

// ---- live ------------------------------------------------------------------------------------------

const skip = !isRoot()
  ? 'SKIPPED: the live tcpflowkiller tests need root (ip netns)'
  : !haveCommand('ip')
    ? 'SKIPPED: the live tcpflowkiller tests need iproute2 (`apt-get install iproute2`)'
    : false;

describe('tcpflowkiller: real processes connecting across network namespaces (root)', { skip }, () => {
  let srv = '';
  let cln = '';
  let net: NetnsPair | undefined;
  const children: ChildProcess[] = [];
  let port = 0;

  before(async () => {
    // Server in b (198.51.100.7), client in a (198.51.100.2), joined by a veth pair off the host.
    net = makeNetnsPair('tfk', '198.51.100.2', ['198.51.100.7']);
    ({ a: cln, b: srv } = net);
    const lsn = startListener(srv, [{ port: 0, addr: '198.51.100.7' }]);
    children.push(lsn.child);
    [port] = (await lsn.ready) as [number];
  });

  after(() => {
    killAll(children);
    if (net) removeNetnsPair(net);
  });

  /**
   * A process in the client namespace that connects to each destination in turn, prints one JSON
   * line per attempt, and then stays (as a miner holding its pool connection would).
   */
  function client(dests: Array<[string, number]>): { child: ChildProcess; lines: Array<{ ip: string; port: number; ok: boolean; lport?: number }> } {
    const script = `const net = require('net');
const dests = ${JSON.stringify(dests)};
const keep = [];
(async () => {
  for (const [ip, port] of dests) {
    await new Promise((done) => {
      const s = net.connect({ host: ip, port });
      keep.push(s);
      s.on('connect', () => { console.log(JSON.stringify({ ip, port, ok: true, lport: s.localPort })); done(); });
      s.on('error', () => { console.log(JSON.stringify({ ip, port, ok: false })); done(); });
    });
  }
  setInterval(() => {}, 1000);
})();`;
    const child = spawnIn(cln, process.execPath, ['-e', script]);
    child.stderr!.pipe(process.stderr);
    children.push(child);
    const lines: Array<{ ip: string; port: number; ok: boolean; lport?: number }> = [];
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buf.slice(0, nl)) as (typeof lines)[number]);
        buf = buf.slice(nl + 1);
      }
    });
    return { child, lines };
  }

  const exited = (c: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve({ code: c.exitCode, signal: c.signalCode })
      : new Promise((r) => c.once('exit', (code, signal) => r({ code, signal })));

  /** The connect event the connections source would make for one attempt of the real process. */
  function eventFor(pid: number, line: { ip: string; port: number; lport?: number }): SyscallEvent {
    return {
      source: 'syscall',
      type: 'connect',
      ts: BigInt(Date.now()) * 1_000_000n,
      res: 0,
      proc: { pid, name: 'node', exepath: process.execPath, start_ts: readStartTs(pid) },
      fd: { type: 'ipv4', l4proto: 'tcp', cip: '198.51.100.2', cport: line.lport, sip: line.ip, sport: line.port, is_server: false },
      container: { id: 'host' },
    };
  }

  const testSafety = new Safety({ isSelf: (pid) => pid === process.pid });

  test('a process connecting to a banned address is killed by SIGKILL', async () => {
    const d = join(tmp, 'live-banned');
    mkdirSync(d);
    writeFileSync(join(d, 'pools.txt'), '# the test pool\n198.51.100.7\n');
    const results: ActionResult[] = [];
    const k = killer({ banned_ipv4_file_globs: [join(d, '*.txt')], mode: 'enforce', kill: new KillAction({ safety: testSafety }), onResult: (r) => results.push(r), watch: false });
    const c = client([['198.51.100.7', port]]);
    await until(() => c.lines.length === 1, 10_000, 'the client connected');
    assert.equal(c.lines[0]!.ok, true, 'the connection was made');
    const r = await k.handle(eventFor(c.child.pid!, c.lines[0]!));
    assert.equal(r?.outcome, 'done', r?.reason);
    assert.equal(r?.request.details?.reason, 'banned-ip');
    assert.deepEqual(await exited(c.child), { code: null, signal: 'SIGKILL' });
    assert.equal(results.length, 1);
    assert.deepEqual(k.stats.outcomes, { done: 1 });
  });

  test('a process connecting to 16 destinations is killed as a scan (198.51.100.0/24 taken off exempt_cidrs)', async () => {
    // One listening port and 15 closed ones: a scan tries whatever answers.
    const dests: Array<[string, number]> = [['198.51.100.7', port]];
    for (let p = 1; dests.length < 16; p++) if (20000 + p !== port) dests.push(['198.51.100.7', 20000 + p]);
    const k = killer({ exempt_cidrs: noDocRange, mode: 'enforce', kill: new KillAction({ safety: testSafety }), watch: false });
    const c = client(dests);
    await until(() => c.lines.length === 16, 10_000, 'the client tried all 16');
    const results: Array<ActionResult | undefined> = [];
    for (const line of c.lines) results.push(await k.handle(eventFor(c.child.pid!, line)));
    assert.deepEqual(results.slice(0, 15), new Array(15).fill(undefined), 'nothing for the first 15');
    assert.equal(results[15]?.outcome, 'done', results[15]?.reason);
    assert.equal(results[15]?.request.details?.reason, 'scan');
    assert.equal(results[15]?.request.details?.destinations, 16);
    assert.deepEqual(await exited(c.child), { code: null, signal: 'SIGKILL' });
  });

  test('with the default exemptions the same 16 destinations are left alone (dry run would say nothing)', async () => {
    const dests: Array<[string, number]> = [];
    for (let p = 1; dests.length < 16; p++) if (21000 + p !== port) dests.push(['198.51.100.7', 21000 + p]);
    const k = killer({ mode: 'enforce', kill: new KillAction({ safety: testSafety }), watch: false });
    const c = client(dests);
    await until(() => c.lines.length === 16, 10_000, 'the client tried all 16');
    for (const line of c.lines) assert.equal(await k.handle(eventFor(c.child.pid!, line)), undefined);
    assert.equal(k.stats.exempt, 16);
    await sleep(50);
    assert.equal(c.child.exitCode, null);
    assert.equal(c.child.signalCode, null);
    c.child.kill('SIGKILL');
  });
});
