/**
 * What the guarded DNS learning costs (issue 13, item 1), each figure beside a baseline from the
 * same process, median of 7 rounds with the spread (min–max):
 *  - enrich: naming a connect event from a full learned table (200,000 addresses over 20 network
 *    namespaces) against the same 200,000 names in the one host-wide table (the static table,
 *    which is what learned names cost before they were kept per namespace);
 *  - learning: a query then its matching answer through DnsLearner (parse both, match, learn per
 *    netns with eviction) against what the old path did: parse the answer, add it host-wide;
 *  - a flood: one namespace learning 1,000,000 addresses (its quota makes it evict all along)
 *    against a namespace learning well within its quota.
 */
import { DnsCache } from '../src/enrich/dns.js';
import { parseDnsAnswer } from '../src/platform/dns-answer.js';
import { DnsLearner } from '../src/enrich/dns-learner.js';
import type { SyscallEvent } from '../src/events.js';
import { fmt, median } from './lib.js';

const ROUNDS = 7;

function qname(name: string): Buffer {
  return Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
}
const query = (txid: number, name: string): Buffer => Buffer.concat([Buffer.from([txid >> 8, txid & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), qname(name), Buffer.from([0, 1, 0, 1])]);
function answer(txid: number, name: string, a: number): Buffer {
  const h = Buffer.from([txid >> 8, txid & 255, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
  const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 198, 51, (a >> 8) & 255, a & 255]);
  return Buffer.concat([h, qname(name), Buffer.from([0, 1, 0, 1]), rr]);
}
const ip = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

/** ns per op of `fn(i)` over `n` ops, per round. */
function rounds(n: number, fn: (i: number) => void): number[] {
  const out: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    out.push(Number(process.hrtime.bigint() - t) / n);
  }
  return out;
}

function report(what: string, x: number[], base: number[], baseWhat: string): void {
  const m = median(x);
  const b = median(base);
  console.log(`${what}: ${fmt(m, 0)} ns/op (${fmt(Math.min(...x), 0)}–${fmt(Math.max(...x), 0)}); baseline ${baseWhat}: ${fmt(b, 0)} ns/op (${fmt(Math.min(...base), 0)}–${fmt(Math.max(...base), 0)}); ratio ${fmt(m / b, 2)}×`);
}

export function dnsEnrichBench(): void {
  const full = new DnsCache();
  for (let i = 0; i < 200_000; i++) full.learn(1 + (i % 20), `host${i}.example`, ip(i), 3600);
  const empty = new DnsCache();
  for (let i = 0; i < 200_000; i++) empty.addStatic(`host${i}.example`, [ip(i)]);
  const events: SyscallEvent[] = [];
  for (let i = 0; i < 10_000; i++) {
    const k = (i * 7919) % 200_000;
    events.push({ source: 'syscall', type: 'connect', ts: BigInt(Date.now()) * 1_000_000n, res: 0, proc: { pid: 1, name: 'x' }, fd: { type: 'ipv4', l4proto: 'tcp', cip: '10.255.0.1', cport: 40000, sip: ip(k), sport: 443, netns: 1 + (k % 20) } });
  }
  const fresh = (e: SyscallEvent): SyscallEvent => ({ ...e, fd: { ...e.fd! } });
  const base = rounds(events.length, (i) => empty.enrich(fresh(events[i]!)));
  const x = rounds(events.length, (i) => full.enrich(fresh(events[i]!)));
  if (full.enrich(fresh(events[0]!)).fd!.sip_name === undefined) throw new Error('the learned name was not found');
  report('enrich, 200,000 learned addresses in 20 namespaces', x, base, 'the same names in one host-wide table');
}

export function dnsLearnBench(): void {
  const N = 20_000;
  const qs = Array.from({ length: N }, (_, i) => query(i & 0xffff, `h${i}.example`));
  const as = Array.from({ length: N }, (_, i) => answer(i & 0xffff, `h${i}.example`, i));
  const resolvers = new Set(['10.255.255.53']);
  let old = new DnsCache();
  const base = rounds(N, (i) => {
    if (i === 0) old = new DnsCache();
    const a = parseDnsAnswer(as[i]!)!;
    for (const r of a.records) old.addStatic(a.query, [r.addr]);
  });
  let learner = new DnsLearner({ dns: new DnsCache(), resolvers: () => resolvers });
  const x = rounds(N, (i) => {
    if (i === 0) learner = new DnsLearner({ dns: new DnsCache(), resolvers: () => resolvers });
    const p = { pid: 1, ts: 1_000n, netns: 5, sock: i + 1, lport: 40000, peer: '10.255.255.53', peerPort: 53 };
    learner.onQuery({ ...p, payload: qs[i]! });
    learner.onAnswer({ ...p, ts: 2_000n, payload: as[i]! });
  });
  if (learner.counts.learned !== N) throw new Error(`learned ${learner.counts.learned} of ${N}`);
  report('query + matching answer, learned', x, base, 'the answer parsed and added host-wide (the old path)');
}

export function dnsFloodBench(): void {
  const N = 1_000_000;
  const within = (): number[] => {
    let dns = new DnsCache();
    return rounds(10_000, (i) => {
      if (i === 0) dns = new DnsCache();
      dns.learn(2, 'n.example', ip(i), 60, 1n);
    });
  };
  const base = within();
  let dns = new DnsCache();
  const x = rounds(N, (i) => {
    if (i === 0) {
      dns = new DnsCache();
      dns.learn(1, 'kept.example', '192.0.2.9', 3600, 1n);
    }
    dns.learn(2, 'flood.example', ip(i), 60, 1n);
  });
  if (dns.learnedNamesFor(1, '192.0.2.9', 1n)[0] !== 'kept.example') throw new Error('the other namespace lost its name');
  report(`one namespace learning ${fmt(N)} addresses (quota 20,000: evicting)`, x, base, '10,000 within its quota');
  console.log(`held: ${fmt(dns.learnedIn(2))} in the flooding namespace, ${dns.learnedIn(1)} in the other (kept)`);
}
