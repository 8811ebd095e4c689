/**
 * DNS poisoning against the eBPF driver, live (issue 13, item 1), as root on a kernel with BTF:
 *
 *   `nobody`, in a user and network namespace of its own (`unshare -rn`), runs a fake resolver on
 *   the host resolver's address inside that namespace, sends itself a forged answer from port 53
 *   that names 198.51.100.10 pool.supportxmr.com, and also asks its fake resolver properly (a
 *   query, then the matching answer). Then a root process in another namespace connects to
 *   198.51.100.10 (a listener in a namespace the test made). Before the fix the agent named the
 *   address from the forged answer, host-wide, and the root process got "Outbound Connection to a
 *   Mining Pool", a kill and a block. Now: nothing for the root process; `nobody`'s own connection
 *   in its own namespace is named (it asked), and the responses stay dry runs that say why.
 *
 * And the answer length: a 1,030-byte answer read by recvfrom is captured as its first 1,024 bytes
 * (it was masked to 6 before being clamped, which hid every record).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SyscallEvent } from '../src/events.js';
import { parseDnsAnswer } from '../src/platform/dns-answer.js';
import { parseResolvConf } from '../src/enrich/resolvers.js';
import { EbpfSource } from '../src/sources/ebpf/index.js';
import { loadEbpfAddon } from '../src/sources/ebpf/addon.js';
import { DNS_ONLY_DRYRUN } from '../src/response/dispatcher.js';
import { type Alert, AgentRun, compileC, Marker, markerRules, writeConfig } from './helpers/agent-run.js';
import { makeNetnsPair, type NetnsPair, spawnIn, startListener } from './helpers/netns.js';
import { haveCommand, isRoot, killAll, tryRun } from './helpers/live.js';
import { FIXTURES, ROOT } from './helpers/paths.js';

const POISONED = '198.51.100.10';
const POOL_NAME = 'pool.supportxmr.com';
const PORT = 3333;
const DEADLINE = 15_000;
const POOL_RULE = 'Outbound Connection to a Mining Pool';
const DNS_SERVER = '198.51.100.9';
const REAL_POOL_NAME = 'xmr-eu1.nanopool.org';

const addon = loadEbpfAddon();
const HOST_RESOLVER = existsSync('/etc/resolv.conf') ? parseResolvConf(readFileSync('/etc/resolv.conf', 'utf8')).find((ip) => !ip.includes(':')) : undefined;

function userNetnsWorks(): boolean {
  try {
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'unshare', '-rn', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const SKIP_LIVE = !isRoot()
  ? 'SKIPPED: needs root (loading BPF programs, network namespaces)'
  : 'error' in addon
    ? `SKIPPED: the eBPF driver is not built here: ${addon.error}`
    : !existsSync('/sys/kernel/btf/vmlinux')
      ? 'SKIPPED: this kernel has no BTF (/sys/kernel/btf/vmlinux)'
      : ['cc', 'ip', 'nsenter', 'setpriv', 'unshare', 'nft', 'getent'].filter((c) => !haveCommand(c)).map((c) => `SKIPPED: needs ${c}`)[0] ?? false;
const SKIP = SKIP_LIVE ||
  (!HOST_RESOLVER ? 'SKIPPED: /etc/resolv.conf names no IPv4 resolver to impersonate' : undefined) ||
  (!userNetnsWorks() ? 'SKIPPED: unprivileged user namespaces are off here (`unshare -rn` as nobody fails)' : false);

let WORK = '';

before(() => {
  WORK = mkdtempSync(join(tmpdir(), 'mw-dns-poison-'));
  chmodSync(WORK, 0o755);
});

after(() => {
  if (WORK) rmSync(WORK, { recursive: true, force: true });
});

/** A DNS answer (A record, TTL 300) to `q`'s question naming `addr`, as source text for node -e. */
const ANSWER_FN = `
function answerTo(q, addr) {
  let o = 12; while (q[o] !== 0) o += q[o] + 1; o += 5;
  const h = Buffer.from(q.subarray(0, 12)); h[2] = 0x81; h[3] = 0x80; h.writeUInt16BE(1, 6);
  const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, ...addr.split('.').map(Number)]);
  return Buffer.concat([h, q.subarray(12, o), rr]);
}
function queryFor(txid, name) {
  return Buffer.concat([Buffer.from([txid >> 8, txid & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
}`;

/**
 * The attacker, as nobody in its own user + network namespace: a forged answer nobody asked for,
 * then a real exchange with a fake resolver on the host resolver's address, then a connection to
 * the poisoned address inside its namespace. Prints {"done":true} and stays.
 */
function attackerScript(resolver: string): string {
  return `${ANSWER_FN}
const dgram = require('node:dgram'), net = require('node:net');
const step = (f) => new Promise((r) => f(r));
(async () => {
  const server = dgram.createSocket('udp4');
  server.on('message', (q, r) => server.send(answerTo(q, '${POISONED}'), r.port, r.address));
  await step((r) => server.bind(53, '${resolver}', r));
  const pool = net.createServer((c) => c.end());
  await step((r) => pool.listen(${PORT}, '${POISONED}', r));
  // 1. Unsolicited: from port 53 (127.0.0.1:53) to a socket that asked nothing.
  const forger = dgram.createSocket('udp4');
  await step((r) => forger.bind(53, '127.0.0.1', r));
  const victim = dgram.createSocket('udp4');
  await step((r) => victim.bind(0, '127.0.0.1', r));
  const got = step((r) => victim.once('message', r));
  forger.send(answerTo(queryFor(0x5151, '${POOL_NAME}'), '${POISONED}'), victim.address().port, '127.0.0.1');
  await got;
  // 2. Asked properly, of "the resolver" (this namespace's fake one on the same address).
  const client = dgram.createSocket('udp4');
  await step((r) => client.connect(53, '${resolver}', r));
  const answered = step((r) => client.once('message', r));
  client.send(queryFor(0x4242, '${POOL_NAME}'));
  await answered;
  // 3. A connection to the address it named, in its own namespace.
  await step((r) => { const c = net.connect(${PORT}, '${POISONED}', () => { c.end(); r(); }); });
  console.log(JSON.stringify({ done: true, pid: process.pid }));
  setInterval(() => {}, 1000);
})().catch((e) => { console.error(e.stack); process.exit(2); });`;
}

function firstLine(child: ChildProcess, what: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    // 'close', not 'exit': a child that prints and exits at once may exit before its stdout is read.
    child.on('close', (code) => reject(new Error(`${what} exited (${code}): ${err}`)));
  });
}

describe('DNS poisoning cannot steer alerts, kills or blocks (root, BTF, user namespaces)', { skip: SKIP }, () => {
  let agent: AgentRun;
  let marker: Marker;
  let nets: NetnsPair | undefined;
  const children: ChildProcess[] = [];

  before(async () => {
    const miner = join(WORK, 'fake-miner');
    compileC(join(FIXTURES, 'agent/fake-miner.c'), miner);
    // The pool rule's output names the pid too (Falco's output append): each alert is tied to a process.
    writeFileSync(join(WORK, 'marker.yaml'), markerRules(`\n- rule: ${POOL_RULE}\n  output: pid=%proc.pid\n  override:\n    output: append\n`));
    chmodSync(join(WORK, 'marker.yaml'), 0o644);
    marker = new Marker(WORK, miner);
    nets = makeNetnsPair('dp', '198.51.100.1', [POISONED, DNS_SERVER]);
    const listener = startListener(nets.b, [PORT]);
    children.push(listener.child);
    await listener.ready;
    // A resolver for the last test: every question gets POISONED.
    const dns = spawnIn(nets.b, process.execPath, ['-e', `${ANSWER_FN}
const s = require('node:dgram').createSocket('udp4');
s.on('message', (q, r) => s.send(answerTo(q, '${POISONED}'), r.port, r.address));
s.bind(53, '${DNS_SERVER}', () => console.log(JSON.stringify({ listening: true })));`]);
    children.push(dns);
    await firstLine(dns, 'the DNS server');
    agent = new AgentRun(writeConfig(join(WORK, 'agent.yaml'), {
      rules_files: ['default', join(WORK, 'marker.yaml')],
      engine: { rule_matching: 'all' },
      sources: { cpu: { enabled: false }, dns: { hosts_files: [], static: {} } },
      // Enforce: were the poisoned name trusted, the kill and the block would run for real.
      response: { mode: 'enforce', actions: [{ rules: [POOL_RULE], do: ['kill', 'block_destination'] }] },
    }), { args: ['--driver', 'ebpf'] });
    const started = await agent.started();
    assert.equal(started.driver, 'ebpf');
  });

  after(async () => {
    killAll(children);
    await agent?.stop();
    if (nets) {
      tryRun('ip', ['netns', 'del', nets.a]);
      tryRun('ip', ['netns', 'del', nets.b]);
    }
    // Only if the test failed would the host's table hold the address: take exactly that out.
    tryRun('nft', ['delete', 'element', 'inet', 'minewatch', 'blocked4', `{ ${POISONED} }`]);
  });

  test('nobody poisons its own namespace; a root process elsewhere connecting to that address gets no pool alert, kill or block', async () => {
    const attacker = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'unshare', '-rn', 'sh', '-c',
      `ip link set lo up && ip addr add ${HOST_RESOLVER}/32 dev lo && ip addr add ${POISONED}/32 dev lo && exec "$0" -e "$1"`,
      process.execPath, attackerScript(HOST_RESOLVER!)], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(attacker);
    const { pid } = await firstLine(attacker, 'the attacker');

    // Its own connection, in its own namespace, after it asked: named, alerted, but only a dry run.
    const own = await agent.waitAlert((a) => a.rule === POOL_RULE && a.output_fields['proc.pid'] === pid, DEADLINE, "the attacker's own pool alert");
    assert.equal(own.output_fields['fd.sip.name'], POOL_NAME);
    const responses = await Promise.all(['kill', 'block_destination'].map((action) =>
      agent.waitAlert((a) => a.rule === `minewatch response: ${action}` && a.output_fields['proc.pid'] === pid, DEADLINE, `the ${action} outcome`)));
    for (const r of responses) {
      assert.equal(r.output_fields['mw.response.outcome'], 'dryrun', r.output);
      assert.match(String(r.output_fields['mw.response.reason']), new RegExp(`^${DNS_ONLY_DRYRUN}`));
      assert.match(r.output, /dry run: destination named only by a DNS answer/);
    }
    assert.equal(attacker.exitCode, null, 'not killed');

    // A root process in another namespace connects to the same address.
    const victim = spawnIn(nets!.a, process.execPath, ['-e', `const c = require('node:net').connect(${PORT}, '${POISONED}', () => { console.log(JSON.stringify({ ok: true })); setTimeout(() => c.end(), 300); }); c.on('error', (e) => { console.error(e.message); process.exit(3); });`]);
    children.push(victim);
    assert.deepEqual(await firstLine(victim, 'the victim'), { ok: true });
    // The queue is FIFO: once the marker's alert is out, the victim's connect was evaluated.
    await marker.fire(agent, 'after the victim connected');
    const about = (a: Alert): boolean => a.output_fields['proc.pid'] === victim.pid;
    assert.deepEqual(agent.alerts.filter((a) => about(a) && a.rule === POOL_RULE).map((a) => a.output), [], 'no pool alert for the root process');
    assert.deepEqual(agent.alerts.filter((a) => about(a) && a.rule.startsWith('minewatch response')).map((a) => a.output), [], 'no response for it');
    assert.deepEqual(agent.alerts.filter((a) => a.rule.startsWith('minewatch response') && a.output_fields['mw.response.outcome'] === 'done').map((a) => a.output), [], 'nothing done for real');
    let hostSet = '';
    try {
      hostSet = execFileSync('nft', ['list', 'set', 'inet', 'minewatch', 'blocked4'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      /* no table: nothing blocked */
    }
    assert.equal(hostSet.includes(POISONED), false, 'the address is not blocked on the host');
  });

  test('a real lookup through glibc (getent: A and AAAA in one sendmmsg) to the namespace\'s resolver names the address; the kill stays a dry run', async () => {
    const resolv = join(WORK, 'resolv.conf');
    writeFileSync(resolv, `nameserver ${DNS_SERVER}\noptions attempts:1 timeout:2\n`);
    chmodSync(resolv, 0o644);
    // glibc asks what /etc/resolv.conf names: a mount namespace of its own with that file; then a
    // connection to what the lookup gave.
    const script = `const c = require('node:net').connect(${PORT}, '${POISONED}', () => { console.log(JSON.stringify({ ok: true })); setInterval(() => {}, 1000); }); c.on('error', (e) => { console.error(e.message); process.exit(3); });`;
    const r = spawnIn(nets!.a, 'unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && getent ahosts "$1" >/dev/null && exec "$2" -e "$3"', resolv, REAL_POOL_NAME, process.execPath, script]);
    children.push(r);
    assert.deepEqual(await firstLine(r, 'getent, then connect'), { ok: true });
    const a = await agent.waitAlert((x) => x.rule === POOL_RULE && x.output_fields['proc.pid'] === r.pid, DEADLINE, 'the pool alert named through glibc\'s lookup');
    assert.equal(a.output_fields['fd.sip.name'], REAL_POOL_NAME);
    const kill = await agent.waitAlert((x) => x.rule === 'minewatch response: kill' && x.output_fields['proc.pid'] === r.pid, DEADLINE, 'the kill outcome');
    assert.equal(kill.output_fields['mw.response.outcome'], 'dryrun');
    assert.match(String(kill.output_fields['mw.response.reason']), new RegExp(`^${DNS_ONLY_DRYRUN}`));
    assert.equal(r.exitCode, null, 'not killed');
  });
});

/** A C program: a 1,030-byte DNS answer from 127.0.0.1:53 read with recvfrom (the path the clamp guards). */
const BIG_ANSWER_C = String.raw`
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
  unsigned char a[1030];
  memset(a, 0, sizeof a);
  /* header: id 0x7777, response, 1 question, 1 answer; question "big.example" A IN */
  unsigned char h[] = {0x77, 0x77, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 3, 'b', 'i', 'g', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1};
  memcpy(a, h, sizeof h);
  int o = sizeof h;
  /* one TXT-like record (type 16) of padding, then the A record well inside the first 1,024 bytes */
  unsigned char pad_rr[] = {0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60};
  memcpy(a + o, pad_rr, sizeof pad_rr); o += sizeof pad_rr;
  int padlen = 900;
  a[o++] = padlen >> 8; a[o++] = padlen & 255; o += padlen;
  unsigned char arr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 77};
  memcpy(a + o, arr, sizeof arr);
  a[7] = 2; /* two answers */
  int s = socket(AF_INET, SOCK_DGRAM, 0), c = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)}, ca = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = ca.sin_addr.s_addr = htonl(0x7f000001);
  if (bind(s, (void *)&sa, sizeof sa) || bind(c, (void *)&ca, sizeof ca)) { perror("bind"); return 1; }
  socklen_t l = sizeof ca;
  getsockname(c, (void *)&ca, &l);
  sendto(s, a, sizeof a, 0, (void *)&ca, sizeof ca);
  unsigned char buf[2048];
  struct sockaddr_in from;
  l = sizeof from;
  long n = recvfrom(c, buf, sizeof buf, 0, (void *)&from, &l);
  printf("{\"received\":%ld}\n", n);
  return 0;
}`;

describe('DNS answers longer than a KiB are read in part, not as a few bytes (root, BTF)', { skip: SKIP_LIVE }, () => {
  const children: ChildProcess[] = [];
  after(() => killAll(children));
  test('a 1,030-byte answer: its first 1,024 bytes, with the A record they hold', async () => {
    const src = join(WORK, 'big-answer.c');
    writeFileSync(src, BIG_ANSWER_C);
    const bin = join(WORK, 'big-answer');
    compileC(src, bin);
    const seen: SyscallEvent[] = [];
    // No DnsCache: the driver's events as they are (answers are not matched to queries here).
    const ebpf = new EbpfSource({ lookup: () => undefined, containerOf: () => undefined });
    ebpf.onEvents((ev) => seen.push(ev as SyscallEvent));
    await ebpf.start(() => {});
    try {
      // Its own network namespace: port 53 on its loopback is free whatever the host runs.
      const c = spawn('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0"', bin], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(c);
      assert.deepEqual(await firstLine(c, 'big-answer'), { received: 1030 });
      const deadline = Date.now() + DEADLINE;
      let ev: SyscallEvent | undefined;
      while (!(ev = seen.find((e) => e.type === 'recvfrom' && e.proc.pid === c.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(ev, 'the recvfrom event arrived');
      assert.equal(ev.buffer?.length, 1024);
      assert.deepEqual(parseDnsAnswer(Buffer.from(ev.buffer!, 'latin1'))?.addrs, ['198.51.100.77']);
    } finally {
      await ebpf.stop();
    }
  });
});
