/**
 * ConnectionsSource: address and table parsing, the classification and attribution logic over a
 * fake /proc (deterministic: the test drives each poll), and live connections on this machine —
 * loopback TCP, UDP, IPv6 and v4-mapped, and (as root, with iproute2) connections into and out of
 * network namespaces the test creates with documentation-range addresses.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import type { Event, SyscallEvent } from '../src/events.js';
import {
  ConnectionsSource, parseActiveOpens, parseSockTable, TcpState,
  IDLE_AFTER_POLLS,
} from '../src/sources/connections.js';
import { PollLoop } from '../src/sources/poll-loop.js';
import { readSeqFile } from '../src/sources/netns-files.js';
import { formatIpv6, parseHexIp } from '../src/platform/ip.js';
import {
  haveCommand, hostContainer, isRoot, killAll, nodeChild, procLookup, sleep, waitForEvent,
} from './helpers/live.js';
import { type HostNetns, makeHostNetns, removeHostNetns, startListener } from './helpers/netns.js';
import { NetnsIndex } from '../src/sources/netns.js';

// ---- parsing -----------------------------------------------------------------------------------

describe('connections: address parsing', () => {
  test('IPv4 is little-endian per word on a little-endian host', () => {
    assert.deepEqual(parseHexIp('0100007F', true), { ip: '127.0.0.1', v6: false });
    assert.deepEqual(parseHexIp('0764A8C6', true), { ip: '198.168.100.7', v6: false });
    assert.deepEqual(parseHexIp('C6336407', false), { ip: '198.51.100.7', v6: false });
    assert.deepEqual(parseHexIp('00000000', true), { ip: '0.0.0.0', v6: false });
  });

  test('IPv6 as four little-endian 32-bit words, printed in RFC 5952 form', () => {
    // ::1
    assert.deepEqual(parseHexIp('00000000000000000000000001000000', true), { ip: '::1', v6: true });
    // 2001:db8::1:5 → words 20010db8 00000000 00000000 00010005, each byte-reversed
    assert.deepEqual(parseHexIp('B80D0120000000000000000005000100', true), { ip: '2001:db8::1:5', v6: true });
    assert.deepEqual(parseHexIp('20010DB8000000000000000000010005', false), { ip: '2001:db8::1:5', v6: true });
    // fe80::a:0:0:1 — the longest zero run wins, a single zero group is not compressed
    assert.equal(formatIpv6([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0, 1]), 'fe80::a:0:0:1');
    assert.equal(formatIpv6([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1]), '2001:db8:1:0:1:1:1:1');
    assert.equal(formatIpv6(new Array<number>(16).fill(0)), '::');
  });

  test('v4-mapped IPv6 becomes plain IPv4', () => {
    // ::ffff:127.0.0.1
    assert.deepEqual(parseHexIp('0000000000000000FFFF00000100007F', true), { ip: '127.0.0.1', v6: false });
    // ::ffff:203.0.113.9
    assert.deepEqual(parseHexIp('0000000000000000FFFF0000097100CB', true), { ip: '203.0.113.9', v6: false });
  });

  test('table lines: ports, state, inode', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5000 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 5002 1 0000000000000000 20 4 30 10 -1',
      'garbage',
      '',
    ].join('\n');
    const rows = parseSockTable(text, 'tcp');
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[1], {
      proto: 'tcp', localHex: '0100007F', localPort: 40000, remoteHex: '0100007F', remotePort: 8080,
      state: TcpState.ESTABLISHED, inode: 5002,
    });
  });
});

describe('connections: procfs reading', () => {
  test('Tcp ActiveOpens from /proc/net/snmp', () => {
    const snmp = [
      'Ip: Forwarding DefaultTTL InReceives',
      'Ip: 2 64 2970',
      'Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails',
      'Tcp: 1 200 120000 -1 88 4 0',
      'Udp: InDatagrams NoPorts',
      'Udp: 1 2',
      '',
    ].join('\n');
    assert.equal(parseActiveOpens(snmp), 88);
    assert.equal(parseActiveOpens('Ip: a\nIp: 1\n'), undefined);
    // The real file of this process's namespace has it.
    assert.equal(typeof parseActiveOpens(readSeqFile('/proc/self/net/snmp')), 'number');
  });

  test('readSeqFile reads a real table whole, as readFileSync does', async () => {
    // Enough sockets that /proc/net/tcp takes several reads (a page each).
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p = (server.address() as { port: number }).port;
    const socks: Socket[] = [];
    for (let i = 0; i < 40; i++) socks.push(connect(p, '127.0.0.1'));
    await Promise.all(socks.map((s) => new Promise((r) => s.once('connect', r))));
    try {
      const a = readSeqFile('/proc/self/net/tcp');
      assert.ok(a.length > 8192, `table of ${a.length} bytes spans pages`);
      const ports = new Set(parseSockTable(a, 'tcp').map((e) => e.localPort));
      for (const s of socks) assert.ok(ports.has(s.localPort!), `socket ${s.localPort} in the table`);
    } finally {
      socks.forEach((s) => s.destroy());
      server.close();
    }
  });
});

// ---- fake /proc --------------------------------------------------------------------------------

/** The hex form /proc/net/tcp uses on a little-endian host. */
function hex4(ip: string): string {
  return ip.split('.').reverse().map((b) => Number(b).toString(16).padStart(2, '0')).join('').toUpperCase();
}
function hex6(groups: number[]): string {
  const bytes: number[] = [];
  for (const g of groups) bytes.push(g >> 8, g & 0xff);
  let out = '';
  for (let w = 0; w < 4; w++) {
    for (let i = 3; i >= 0; i--) out += bytes[w * 4 + i]!.toString(16).padStart(2, '0');
  }
  return out.toUpperCase();
}
const port = (p: number): string => p.toString(16).toUpperCase().padStart(4, '0');
const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
function row(local: string, lport: number, rem: string, rport: number, st: number, inode: number): string {
  return `   0: ${local}:${port(lport)} ${rem}:${port(rport)} ${st.toString(16).toUpperCase().padStart(2, '0')} 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 20 4 30 10 -1`;
}

class FakeProc {
  readonly root = mkdtempSync(join(tmpdir(), 'mw-fakeproc-'));
  addPid(pid: number, ns: string, comm: string): void {
    const d = join(this.root, String(pid));
    mkdirSync(join(d, 'ns'), { recursive: true });
    mkdirSync(join(d, 'net'), { recursive: true });
    mkdirSync(join(d, 'fd'), { recursive: true });
    symlinkSync(`net:[${ns}]`, join(d, 'ns', 'net'));
    writeFileSync(join(d, 'comm'), `${comm}\n`);
    for (const t of ['tcp', 'tcp6', 'udp', 'udp6']) writeFileSync(join(d, 'net', t), HEADER + '\n');
  }
  fd(pid: number, fd: number, target: string): void {
    symlinkSync(target, join(this.root, String(pid), 'fd', String(fd)));
  }
  /** /proc/PID/net/snmp with the given Tcp ActiveOpens. */
  snmp(pid: number, activeOpens: number): void {
    writeFileSync(join(this.root, String(pid), 'net', 'snmp'),
      `Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens\nTcp: 1 200 120000 -1 ${activeOpens} 0\n`);
  }
  table(pid: number, file: 'tcp' | 'tcp6' | 'udp' | 'udp6', rows: string[]): void {
    writeFileSync(join(this.root, String(pid), 'net', file), [HEADER, ...rows, ''].join('\n'));
  }
  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

function fakeSource(fp: FakeProc, opts: ConstructorParameters<typeof ConnectionsSource>[2] = {}) {
  const events: SyscallEvent[] = [];
  const src = new ConnectionsSource(
    () => undefined,
    (pid) => ({ id: pid >= 200 ? 'c0ffee000001' : 'host' }),
    { procRoot: fp.root, intervalMs: 1_000_000, ...opts },
  );
  return { src, events, start: () => src.start((ev) => events.push(ev as SyscallEvent)) };
}

test('PollLoop: a new interval applies from the next wait; hurry() cuts a long wait short', async () => {
  let runs = 0;
  const loop = new PollLoop(() => void runs++, 3_600_000);
  loop.start();
  assert.equal(runs, 1, 'the first run at once');
  loop.hurry(5);
  await waitUntil(() => runs === 2);
  loop.setIntervalMs(5);
  loop.hurry(3_600_000);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(runs, 2, 'the wait begun at an hour keeps its end (hurry never lengthens it)');
  loop.hurry(1);
  await waitUntil(() => runs >= 4);
  loop.stop();
  const after = runs;
  loop.hurry(1);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(runs, after, 'stopped: hurry does nothing');
});

/** Resolves once `ok()` holds (the test's own timeout bounds it). */
async function waitUntil(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((r) => setTimeout(r, 2));
}

describe('connections: classification and attribution over a fake /proc', () => {
  const fps: FakeProc[] = [];
  after(() => fps.forEach((f) => f.remove()));

  test('idle pace: after polls that find nothing new the poller slows; a new socket, a connect counted, or an exec brings it back', async () => {
    const fp = new FakeProc();
    fps.push(fp);
    fp.addPid(300, '3333', 'app');
    fp.snmp(300, 10);
    fp.fd(300, 4, 'socket:[7001]');
    // An unconnected UDP socket (a resolver's, a DHCP client's) is looked at every poll, and is nothing new.
    fp.table(300, 'udp', [row(hex4('0.0.0.0'), 68, hex4('0.0.0.0'), 0, TcpState.CLOSE, 7000)]);
    const { src, events, start } = fakeSource(fp, { intervalMs: 1_000_000, idleIntervalMs: 2_000_000 });
    await start();
    try {
      // The start's poll found nothing new either.
      for (let i = 2; i < IDLE_AFTER_POLLS; i++) src.poll();
      assert.equal(src.idle, false, `${IDLE_AFTER_POLLS - 1} quiet polls: not yet`);
      src.poll();
      assert.equal(src.idle, true);
      src.poll();
      assert.equal(src.stats.idlePolls, 1);
      // A connection: found at the next poll, and the pace is back.
      fp.table(300, 'tcp', [row(hex4('10.0.0.2'), 40000, hex4('198.51.100.7'), 3333, TcpState.ESTABLISHED, 7001)]);
      fp.snmp(300, 11);
      src.poll();
      assert.equal(events.length, 1, 'the connection is reported');
      assert.equal(src.idle, false);
      for (let i = 0; i < IDLE_AFTER_POLLS; i++) src.poll();
      assert.equal(src.idle, true, 'a reported socket is not new again');
      fp.snmp(300, 12);
      src.poll();
      assert.equal(src.idle, false, 'a connect counted (ActiveOpens moved) is activity too');
      for (let i = 0; i < IDLE_AFTER_POLLS; i++) src.poll();
      assert.equal(src.idle, true);
      src.activity();
      assert.equal(src.idle, false, 'an exec on the host');
    } finally {
      await src.stop();
    }
    const never = fakeSource(fp, { intervalMs: 1_000_000, idleIntervalMs: 10 });
    await never.start();
    for (let i = 0; i < 2 * IDLE_AFTER_POLLS; i++) never.src.poll();
    assert.equal(never.src.idle, false, 'an idle interval not above the interval: never idle');
    await never.src.stop();
  });

  test('outbound TCP/UDP reported once, per namespace; accepted sockets and listeners never', async () => {
    const fp = new FakeProc();
    fps.push(fp);
    // Namespace 1111: pid 100 listens on :8080 and accepted a loopback connection from pid 101.
    fp.addPid(100, '1111', 'server');
    fp.addPid(101, '1111', 'client');
    fp.fd(100, 0, '/dev/null');
    fp.fd(100, 3, 'socket:[5000]');
    fp.fd(100, 4, 'socket:[5001]');
    fp.fd(101, 5, 'pipe:[77]');
    fp.fd(101, 7, 'socket:[5002]');
    fp.fd(101, 8, 'socket:[5003]');
    const lo = hex4('127.0.0.1');
    const ns1Tcp = [
      row(hex4('0.0.0.0'), 8080, hex4('0.0.0.0'), 0, TcpState.LISTEN, 5000),
      row(lo, 8080, lo, 40000, TcpState.ESTABLISHED, 5001),
      row(lo, 40000, lo, 8080, TcpState.ESTABLISHED, 5002),
      // Closed by both ends, no owner: never attributable.
      row(lo, 40001, lo, 8080, TcpState.TIME_WAIT, 0),
    ];
    fp.table(100, 'tcp', ns1Tcp);
    fp.table(101, 'tcp', ns1Tcp);
    // An unconnected UDP socket: not outbound (yet).
    const ns1Udp = [row(hex4('0.0.0.0'), 5353, hex4('0.0.0.0'), 0, TcpState.CLOSE, 5003)];
    fp.table(100, 'udp', ns1Udp);
    fp.table(101, 'udp', ns1Udp);

    // Namespace 2222 (a pod): pid 200 connecting out over IPv6 and, v4-mapped, to a pool.
    fp.addPid(200, '2222', 'xmrig');
    fp.fd(200, 9, 'socket:[6001]');
    fp.fd(200, 10, 'socket:[6002]');
    fp.table(200, 'tcp6', [
      row(hex6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 5]), 51000, hex6([0x2001, 0xdb8, 0, 0, 0, 0, 1, 1]), 443, TcpState.SYN_SENT, 6001),
      row(hex6([0, 0, 0, 0, 0, 0xffff, 0x0a01, 0x0203]), 52000, hex6([0, 0, 0, 0, 0, 0xffff, 0xcb00, 0x7109]), 3333, TcpState.ESTABLISHED, 6002),
    ]);

    const { src, events, start } = fakeSource(fp);
    await start();
    try {
      // Which socket an event is about: its owner and fd number (the fake links above).
      const at = (pid: number, fd: number): SyscallEvent => {
        const found = events.filter((e) => e.proc.pid === pid && e.fd?.num === fd);
        assert.equal(found.length, 1, `one event for pid ${pid} fd ${fd}`);
        return found[0]!;
      };
      assert.equal(events.length, 3, JSON.stringify(events, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));

      const c = at(101, 7);
      assert.equal(c.type, 'connect');
      assert.equal(c.source, 'syscall');
      assert.equal(c.res, 0);
      assert.deepEqual(c.proc, { pid: 101, name: 'client' }, 'falls back to comm when lookup knows nothing');
      assert.deepEqual(c.container, { id: 'host' });
      assert.deepEqual(c.fd, {
        num: 7, type: 'ipv4', sockfamily: 'ip', l4proto: 'tcp', cip: '127.0.0.1', cport: 40000,
        sip: '127.0.0.1', sport: 8080, is_server: false, connected: true,
      });
      assert.deepEqual(c.args, { fd: 7, tuple: '127.0.0.1:40000->127.0.0.1:8080' });
      assert.equal(typeof c.ts, 'bigint');

      const v6 = at(200, 9);
      assert.equal(v6.fd!.type, 'ipv6');
      assert.equal(v6.fd!.sip, '2001:db8::1:1');
      assert.equal(v6.fd!.cip, '2001:db8::5');
      assert.deepEqual(v6.container, { id: 'c0ffee000001' });
      const mapped = at(200, 10);
      assert.equal(mapped.fd!.type, 'ipv4');
      assert.equal(mapped.fd!.sip, '203.0.113.9');
      assert.equal(mapped.fd!.sport, 3333);
      assert.equal(mapped.fd!.cip, '10.1.2.3');

      // The UDP socket connects: reported now, once.
      const ns1UdpConnected = [row(hex4('10.0.0.5'), 5353, hex4('198.51.100.53'), 53, TcpState.ESTABLISHED, 5003)];
      fp.table(100, 'udp', ns1UdpConnected);
      fp.table(101, 'udp', ns1UdpConnected);
      src.poll();
      src.poll();
      assert.equal(events.length, 4);
      const u = at(101, 8);
      assert.equal(u.fd!.l4proto, 'udp');
      assert.equal(u.fd!.sip, '198.51.100.53');
      assert.equal(u.fd!.sport, 53);

      // The listener closes; its accepted socket, classified when first seen, stays a server socket.
      const noListener = ns1Tcp.slice(1);
      fp.table(100, 'tcp', noListener);
      fp.table(101, 'tcp', noListener);
      src.poll();
      assert.equal(events.length, 4, 'accepted socket not reported after its listener closed');
      assert.equal(src.stats.netns, 2);
    } finally {
      await src.stop();
    }
  });

  test('an outbound socket with no owner in its namespace is given up and counted', async () => {
    const fp = new FakeProc();
    fps.push(fp);
    fp.addPid(300, '3333', 'sh');
    fp.fd(300, 1, 'pipe:[1]');
    fp.table(300, 'tcp', [row(hex4('10.0.0.2'), 41000, hex4('203.0.113.5'), 443, TcpState.ESTABLISHED, 9001)]);
    const { src, events, start } = fakeSource(fp, { giveUpPolls: 3 });
    await start();
    try {
      for (let i = 0; i < 5; i++) src.poll();
      assert.equal(events.length, 0);
      assert.equal(src.stats.unattributed, 1);
    } finally {
      await src.stop();
    }
  });

  test('fd scanning keeps within maxFdLinksPerPoll and resumes on the next poll', async () => {
    const fp = new FakeProc();
    fps.push(fp);
    // Six processes of three fds each; the owner is the lowest pid, scanned last (new pids go
    // highest first, on the guess that a new connection often comes from a new process).
    for (let pid = 400; pid < 406; pid++) {
      fp.addPid(pid, '4444', `p${pid}`);
      fp.fd(pid, 0, '/dev/null');
      fp.fd(pid, 1, '/dev/null');
      fp.fd(pid, 2, pid === 400 ? 'socket:[9100]' : '/dev/null');
    }
    const tcp = [row(hex4('10.0.0.2'), 41000, hex4('203.0.113.5'), 443, TcpState.ESTABLISHED, 9100)];
    for (let pid = 400; pid < 406; pid++) fp.table(pid, 'tcp', tcp);
    const { src, events, start } = fakeSource(fp, { maxFdLinksPerPoll: 2 });
    await start();
    try {
      assert.equal(events.length, 0, 'not found in the first poll: budget');
      assert.ok(src.stats.lastPollFdLinks <= 4, `one pid per poll at most (${src.stats.lastPollFdLinks} links)`);
      for (let i = 0; i < 6 && events.length === 0; i++) src.poll();
      assert.equal(events.length, 1);
      assert.equal(events[0]!.proc.pid, 400);
      assert.equal(events[0]!.fd!.num, 2);
    } finally {
      await src.stop();
    }
  });

  test('a vanished representative pid: the namespace is read through another', async () => {
    const fp = new FakeProc();
    fps.push(fp);
    fp.addPid(500, '5555', 'a');
    fp.addPid(501, '5555', 'b');
    fp.fd(501, 3, 'socket:[9200]');
    const tcp = [row(hex4('10.0.0.2'), 41000, hex4('203.0.113.5'), 443, TcpState.ESTABLISHED, 9200)];
    fp.table(500, 'tcp', []);
    fp.table(501, 'tcp', tcp);
    // pid 500 "exits" between listing and reading: its net/ directory is gone.
    rmSync(join(fp.root, '500', 'net'), { recursive: true });
    const { src, events, start } = fakeSource(fp);
    await start();
    try {
      assert.equal(events.length, 1);
      assert.equal(events[0]!.proc.pid, 501);
    } finally {
      await src.stop();
    }
  });
});

describe('connections: /proc listed only when something needs new pids', () => {
  const fps: FakeProc[] = [];
  after(() => fps.forEach((f) => f.remove()));

  test('refresh(false) lists at most every listMinMs; refresh(true) and the full re-read list at once', () => {
    const fp = new FakeProc();
    fps.push(fp);
    fp.addPid(600, '6666', 'a');
    let now = 0;
    const idx = new NetnsIndex({ procRoot: fp.root, nowMs: () => now, listMinMs: 1000, revalidateMs: 10_000 });
    assert.deepEqual([...idx.refresh(false)], [['6666', [600]]]);
    fp.addPid(601, '7777', 'b');
    now = 500;
    assert.equal(idx.refresh(false).has('7777'), false, 'within listMinMs: the last grouping');
    assert.deepEqual(idx.refresh(true).get('7777'), [601], 'fresh: listed at once');
    fp.addPid(602, '8888', 'c');
    now = 1400;
    assert.equal(idx.refresh(false).has('8888'), false, 'listed at 500: not again before 1500');
    now = 1500;
    assert.deepEqual(idx.refresh(false).get('8888'), [602]);
    fp.addPid(603, '9999', 'd');
    now = 10_000;
    assert.deepEqual(idx.refresh(false).get('9999'), [603], 'the full re-read is never put off');
  });

  test('a socket of a process newer than the last listing is reported at the next poll, which lists /proc', async () => {
    const fp = new FakeProc();
    fps.push(fp);
    fp.addPid(700, '7070', 'shell');
    fp.table(700, 'tcp', []);
    const { src, events, start } = fakeSource(fp, { listMinMs: 60_000 });
    await start();
    try {
      assert.equal(events.length, 0);
      // A new process connects out; the namespace's table (read through pid 700) shows the socket.
      fp.addPid(701, '7070', 'xmrig');
      fp.fd(701, 5, 'socket:[9700]');
      const tcp = [row(hex4('10.0.0.2'), 42000, hex4('203.0.113.7'), 3333, TcpState.ESTABLISHED, 9700)];
      fp.table(700, 'tcp', tcp);
      fp.table(701, 'tcp', tcp);
      src.poll();
      assert.equal(events.length, 0, 'pid 701 is not in the last listing: its owner is not found yet');
      src.poll();
      assert.equal(events.length, 1, 'a socket awaits its owner: /proc is listed again at once');
      assert.equal(events[0]!.proc.pid, 701);
      assert.equal(events[0]!.fd?.sport, 3333);
    } finally {
      await src.stop();
    }
  });
});

describe('connections: start', () => {
  test('refuses to start, with the reason, when no socket table is readable', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'mw-noproc-'));
    try {
      const src = new ConnectionsSource(() => undefined, () => undefined, { procRoot: empty });
      await assert.rejects(src.start(() => {}), /no socket table readable under .*mw-noproc-/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('connections: TCP tables walked only when ActiveOpens moves', () => {
  test('unchanged counter: no walk; moved counter or the full-read interval: walk', async () => {
    const fp = new FakeProc();
    try {
      fp.addPid(600, '6666', 'curl');
      fp.fd(600, 3, 'socket:[9300]');
      fp.fd(600, 4, 'socket:[9301]');
      fp.snmp(600, 10);
      const { src, events, start } = fakeSource(fp, { tcpFullReadMs: 1e9 });
      await start();
      assert.equal(src.stats.tcpReads, 1, 'the first poll walks');
      // A socket appears but the counter has not moved (as if read mid-connect): not walked yet.
      fp.table(600, 'tcp', [row(hex4('10.0.0.2'), 41000, hex4('203.0.113.5'), 443, TcpState.ESTABLISHED, 9300)]);
      src.poll();
      assert.equal(src.stats.tcpSkips, 1);
      assert.equal(events.length, 0);
      fp.snmp(600, 11);
      src.poll();
      assert.equal(events.length, 1);
      assert.equal(src.stats.tcpReads, 2);
      src.poll();
      assert.equal(src.stats.tcpSkips, 2, 'quiet again');
      // UDP is read every poll regardless.
      fp.table(600, 'udp', [row(hex4('10.0.0.2'), 5000, hex4('198.51.100.53'), 53, TcpState.ESTABLISHED, 9301)]);
      src.poll();
      assert.equal(events.length, 2);
      assert.equal(events[1]!.fd!.l4proto, 'udp');
      await src.stop();

      // With a zero full-read interval every poll walks.
      const again = fakeSource(fp, { tcpFullReadMs: 0 });
      await again.start();
      again.src.poll();
      again.src.poll();
      assert.equal(again.src.stats.tcpReads, 3);
      assert.equal(again.src.stats.tcpSkips, 0);
      await again.src.stop();
    } finally {
      fp.remove();
    }
  });
});

// ---- live: loopback ----------------------------------------------------------------------------

const HOLD = 'setInterval(() => {}, 1e6);';

function tcpClient(host: string, p: number, family?: 4 | 6): string {
  return `const net = require('net');
const s = net.connect({ host: ${JSON.stringify(host)}, port: ${p}${family ? `, family: ${family}` : ''} }, () => {
  console.log(JSON.stringify({ pid: process.pid, port: s.localPort, addr: s.localAddress }));
});
s.on('error', (e) => { console.error(e.message); process.exit(2); });
${HOLD}`;
}

function listen(server: Server, p: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, host, () => resolve((server.address() as { port: number }).port));
  });
}

describe('connections: live on this machine (loopback)', () => {
  const children: ChildProcess[] = [];
  const servers: Server[] = [];
  const accepted: Socket[] = [];
  const udps: UdpSocket[] = [];
  const events: Event[] = [];
  let src: ConnectionsSource;

  before(async () => {
    src = new ConnectionsSource(procLookup, hostContainer, { intervalMs: 250 });
    await src.start((ev) => events.push(ev));
  });
  after(async () => {
    await src.stop();
    killAll(children);
    accepted.forEach((s) => s.destroy());
    servers.forEach((s) => s.close());
    udps.forEach((u) => u.close());
  });

  const forPid = (pid: number) => (events as SyscallEvent[]).filter((e) => e.proc.pid === pid);

  test('TCP to a listener in this process: one event for the child, none for the accepted end', async () => {
    const server = createServer((s) => accepted.push(s));
    servers.push(server);
    const lport = await listen(server, 0, '127.0.0.1');
    const r = nodeChild(tcpClient('127.0.0.1', lport));
    children.push(r.child);
    const info = await r.ready;
    const ev = await waitForEvent(events, (e) => e.proc.pid === info.pid, 5000, `connect from child ${info.pid}`);
    assert.equal(ev.type, 'connect');
    assert.equal(ev.res, 0);
    assert.equal(ev.proc.name, 'node');
    assert.equal(ev.fd?.type, 'ipv4');
    assert.equal(ev.fd?.l4proto, 'tcp');
    assert.equal(ev.fd?.sip, '127.0.0.1');
    assert.equal(ev.fd?.sport, lport);
    assert.equal(ev.fd?.cip, '127.0.0.1');
    assert.equal(ev.fd?.cport, info.port);
    assert.equal(ev.fd?.is_server, false);
    assert.equal(typeof ev.fd?.num, 'number');
    assert.deepEqual(ev.container, { id: 'host' });
    // A few more polls: still exactly one, and the accepted socket (local port = listener's) never.
    const polls = src.stats.polls;
    while (src.stats.polls < polls + 4) await sleep(50);
    assert.equal(forPid(info.pid as number).length, 1);
    assert.equal((events as SyscallEvent[]).filter((e) => e.fd?.cport === lport && e.fd?.l4proto === 'tcp').length, 0);
  });

  test('connected UDP socket', async () => {
    const server = createSocket('udp4');
    udps.push(server);
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    const uport = server.address().port;
    const r = nodeChild(`const d = require('dgram').createSocket('udp4');
d.connect(${uport}, '127.0.0.1', () => console.log(JSON.stringify({ pid: process.pid, port: d.address().port })));
${HOLD}`);
    children.push(r.child);
    const info = await r.ready;
    const ev = await waitForEvent(events, (e) => e.proc.pid === info.pid, 5000, `UDP connect from child ${info.pid}`);
    assert.equal(ev.fd?.l4proto, 'udp');
    assert.equal(ev.fd?.sip, '127.0.0.1');
    assert.equal(ev.fd?.sport, uport);
    assert.equal(ev.fd?.cport, info.port);
  });

  test('IPv6 loopback, and IPv4 through a dual-stack socket (v4-mapped → plain IPv4)', async (t) => {
    const server6 = createServer((s) => accepted.push(s));
    servers.push(server6);
    let p6: number;
    try {
      // '::' accepts IPv6 and, dual-stack, IPv4 as ::ffff:a.b.c.d
      p6 = await listen(server6, 0, '::');
    } catch (e) {
      t.skip(`no IPv6 on this machine: ${(e as Error).message}`);
      return;
    }
    const a = nodeChild(tcpClient('::1', p6, 6));
    const b = nodeChild(tcpClient('::ffff:127.0.0.1', p6, 6));
    children.push(a.child, b.child);
    const ia = await a.ready;
    const ib = await b.ready;
    const ea = await waitForEvent(events, (e) => e.proc.pid === ia.pid, 5000, 'IPv6 connect');
    assert.equal(ea.fd?.type, 'ipv6');
    assert.equal(ea.fd?.sip, '::1');
    assert.equal(ea.fd?.sport, p6);
    const eb = await waitForEvent(events, (e) => e.proc.pid === ib.pid, 5000, 'v4-mapped connect');
    assert.equal(eb.fd?.type, 'ipv4');
    assert.equal(eb.fd?.sip, '127.0.0.1');
    assert.equal(eb.fd?.cip, '127.0.0.1');
    assert.equal(eb.fd?.sport, p6);
  });

  test('skipLoopback leaves loopback-to-loopback out', async () => {
    const quiet: Event[] = [];
    const s2 = new ConnectionsSource(procLookup, hostContainer, { intervalMs: 100, skipLoopback: true });
    const server = createServer((s) => accepted.push(s));
    servers.push(server);
    const lport = await listen(server, 0, '127.0.0.1');
    const r = nodeChild(tcpClient('127.0.0.1', lport));
    children.push(r.child);
    const info = await r.ready;
    await s2.start((ev) => quiet.push(ev));
    try {
      // The main source sees it; this one, after several polls, does not.
      await waitForEvent(events, (e) => e.proc.pid === info.pid, 5000, 'main source sees the connection');
      while (s2.stats.polls < 5) await sleep(50);
      assert.equal((quiet as SyscallEvent[]).filter((e) => e.proc.pid === info.pid).length, 0);
    } finally {
      await s2.stop();
    }
  });
});

// ---- live: network namespaces ------------------------------------------------------------------

const nsSkip = !isRoot()
  ? 'SKIPPED: network namespace tests need root (ip netns add)'
  : !haveCommand('ip')
    ? 'SKIPPED: network namespace tests need iproute2 (`apt-get install iproute2`)'
    : false;

describe('connections: network namespaces (root, iproute2)', { skip: nsSkip }, () => {
  const created: HostNetns[] = [];
  const children: ChildProcess[] = [];
  const servers: Server[] = [];
  const accepted: Socket[] = [];
  const events: Event[] = [];
  let src: ConnectionsSource | undefined;

  after(async () => {
    await src?.stop();
    killAll(children);
    accepted.forEach((s) => s.destroy());
    servers.forEach((s) => s.close());
    removeHostNetns(created);
  });

  test('into a namespace, and out of another one (its own socket table)', async () => {
    // ns A: 198.51.100.7, host end 198.51.100.1. A listener inside; a host process connects in.
    const a = makeHostNetns('a', '198.51.100.1', '198.51.100.7', created);
    // ns B: 203.0.113.7, host end 203.0.113.1. A listener on the host; a process inside B connects out.
    const b = makeHostNetns('b', '203.0.113.1', '203.0.113.7', created);

    src = new ConnectionsSource(procLookup, hostContainer, { intervalMs: 250 });
    await src.start((ev) => events.push(ev));

    const lsn = startListener(a.name, [{ port: 3333, addr: '198.51.100.7' }]);
    children.push(lsn.child);
    await lsn.ready;
    const lsnInfo = { pid: lsn.child.pid };

    const hostServer = createServer((s) => accepted.push(s));
    servers.push(hostServer);
    // Any free port: a parallel run of this suite may listen on 203.0.113.1 as well.
    const hostPort = await listen(hostServer, 0, '203.0.113.1');

    const into = nodeChild(tcpClient('198.51.100.7', 3333));
    const outOf = nodeChild(tcpClient('203.0.113.1', hostPort), b.name);
    children.push(into.child, outOf.child);
    const intoInfo = await into.ready;
    const outInfo = await outOf.ready;

    const e1 = await waitForEvent(events, (e) => e.proc.pid === intoInfo.pid, 5000, 'host process connecting into ns A');
    assert.equal(e1.fd?.sip, '198.51.100.7');
    assert.equal(e1.fd?.sport, 3333);
    assert.equal(e1.fd?.cip, '198.51.100.1');
    assert.equal(e1.fd?.cport, intoInfo.port);

    // This socket exists only in ns B's table: the host's /proc/net/tcp never shows it.
    const e2 = await waitForEvent(events, (e) => e.proc.pid === outInfo.pid, 5000, 'process inside ns B connecting out');
    assert.equal(e2.fd?.cip, '203.0.113.7');
    assert.equal(e2.fd?.cport, outInfo.port);
    assert.equal(e2.fd?.sip, '203.0.113.1');
    assert.equal(e2.fd?.sport, hostPort);
    assert.equal(e2.proc.name, 'node');

    // Neither listener's accepted end is reported (ns A's listener, the host's).
    const polls = src.stats.polls;
    while (src.stats.polls < polls + 4) await sleep(50);
    const evs = events as SyscallEvent[];
    assert.equal(evs.filter((e) => e.proc.pid === lsnInfo.pid).length, 0, 'listener in ns A has no outbound event');
    assert.equal(evs.filter((e) => e.proc.pid === process.pid && e.fd?.cport === hostPort).length, 0);
    assert.equal(evs.filter((e) => e.proc.pid === intoInfo.pid).length, 1);
    assert.equal(evs.filter((e) => e.proc.pid === outInfo.pid).length, 1);
    assert.ok(src.stats.netns >= 3, `host + 2 test namespaces read (${src.stats.netns})`);
  });
});
