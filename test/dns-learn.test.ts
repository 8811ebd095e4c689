/**
 * What the eBPF driver's DNS answers may teach the name table (issue 13, item 1), without the
 * kernel: the table per network namespace with TTLs, quotas and eviction; the learner that takes
 * only answers to the socket's own queries to its namespace's resolvers; the resolvers as the
 * process's resolv.conf names them; and the response stage, which acts on a learned name alone
 * only as a dry run.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { SyscallEvent } from '../src/events.js';
import { DnsCache } from '../src/enrich/dns.js';
import { parseDnsQueries } from '../src/platform/dns-answer.js';
import { type DnsPacket, DnsLearner } from '../src/enrich/dns-learner.js';
import { ResolverSets, hostResolvFiles, parseResolvConf } from '../src/enrich/resolvers.js';
import type { Match } from '../src/engine/types.js';
import { DEFAULT_RULES_FILES, Engine } from '../src/engine/index.js';
import { DNS_ONLY_DRYRUN, ResponseDispatcher } from '../src/response/dispatcher.js';
import type { ActionRequest, ActionResult, ResponseAction } from '../src/response/types.js';
import { responseSection } from '../src/response/config.js';

const S = 1_000_000_000n;
const T0 = 1_700_000_000n * S;

// ---- DNS messages -----------------------------------------------------------------------------------

function qname(name: string): Buffer {
  return Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
}

function query(txid: number, name: string, type = 1): Buffer {
  const h = Buffer.from([txid >> 8, txid & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([h, qname(name), Buffer.from([0, type, 0, 1])]);
}

function answer(txid: number, name: string, addr: string, ttl = 60): Buffer {
  const h = Buffer.from([txid >> 8, txid & 255, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0);
  rr.writeUInt16BE(1, 2);
  rr.writeUInt16BE(1, 4);
  rr.writeUInt32BE(ttl, 6);
  rr.writeUInt16BE(4, 10);
  addr.split('.').forEach((b, i) => (rr[12 + i] = Number(b)));
  return Buffer.concat([h, qname(name), Buffer.from([0, 1, 0, 1]), rr]);
}

// ---- the table ----------------------------------------------------------------------------------------

describe('DnsCache: learned names', () => {
  test('kept per network namespace, valid until their TTL (at the event\'s time), newest name first', () => {
    const dns = new DnsCache();
    assert.equal(dns.learn(101, 'pool.supportxmr.com', '198.51.100.10', 60, T0), true);
    assert.deepEqual(dns.learnedNamesFor(101, '198.51.100.10', T0 + 59n * S), ['pool.supportxmr.com']);
    assert.deepEqual(dns.learnedNamesFor(101, '198.51.100.10', T0 + 61n * S), [], 'past its TTL');
    assert.deepEqual(dns.learnedNamesFor(202, '198.51.100.10', T0), [], 'another namespace learned nothing');
    assert.deepEqual(dns.namesFor('198.51.100.10'), [], 'not a static name');
    // Learned again under another name: that one is shown, the TTL runs from the new answer.
    assert.equal(dns.learn(101, 'cdn.example.org', '198.51.100.10', 300, T0 + 30n * S), false);
    assert.deepEqual(dns.learnedNamesFor(101, '198.51.100.10', T0 + 200n * S), ['cdn.example.org', 'pool.supportxmr.com']);
    // TTL 0 names the address for a second (the connection the lookup was for); a huge TTL is cut to a day.
    dns.learn(101, 'zero.example', '198.51.100.11', 0, T0);
    assert.deepEqual(dns.learnedNamesFor(101, '198.51.100.11', T0 + S / 2n), ['zero.example']);
    assert.deepEqual(dns.learnedNamesFor(101, '198.51.100.11', T0 + 2n * S), []);
    dns.learn(101, 'long.example', '198.51.100.12', 0x7fffffff, T0);
    assert.deepEqual(dns.learnedNamesFor(101, '198.51.100.12', T0 + 86_401n * S), []);
    // Not learned: no namespace, not an address, not a name.
    assert.equal(dns.learn(0, 'x.example', '198.51.100.13', 60, T0), false);
    assert.equal(dns.learn(101, 'x.example', 'nope', 60, T0), false);
    assert.equal(dns.learn(101, 'two words', '198.51.100.13', 60, T0), false);
  });

  test('enrich: a static name wins and is trusted; a learned one only in its namespace, flagged', () => {
    const dns = new DnsCache();
    dns.addStatic('static.example', ['198.51.100.20']);
    dns.learn(101, 'pool.supportxmr.com', '198.51.100.10', 60, T0);
    dns.learn(101, 'learned.example', '198.51.100.20', 60, T0);
    const ev = (sip: string, netns?: number): SyscallEvent => ({
      source: 'syscall', type: 'connect', ts: T0 + S, res: 0, proc: { pid: 9, name: 'curl' },
      fd: { type: 'ipv4', l4proto: 'tcp', cip: '10.0.0.2', cport: 40000, sip, sport: 443, ...(netns ? { netns } : {}) },
    });
    const a = dns.enrich(ev('198.51.100.10', 101));
    assert.equal(a.fd!.sip_name, 'pool.supportxmr.com');
    assert.equal(a.fd!.sip_name_dns, true);
    const b = dns.enrich(ev('198.51.100.10', 202));
    assert.equal(b.fd!.sip_name, undefined, 'another namespace: no name');
    const c = dns.enrich(ev('198.51.100.10'));
    assert.equal(c.fd!.sip_name, undefined, 'a source that does not know the namespace: static names only');
    const d = dns.enrich(ev('198.51.100.20', 101));
    assert.equal(d.fd!.sip_name, 'static.example');
    assert.equal(d.fd!.sip_name_dns, undefined);
  });

  test('a namespace past its quota loses its own oldest addresses, never another\'s', () => {
    const dns = new DnsCache({ perNetns: 100, max: 1000 });
    dns.learn(1, 'victim.example', '203.0.113.1', 3600, T0);
    for (let i = 0; i < 5000; i++) dns.learn(2, `flood${i}.example`, `198.51.${100 + (i >> 8)}.${i & 255}`, 3600, T0);
    assert.equal(dns.learnedIn(2), 100, 'the flooding namespace holds its quota');
    assert.deepEqual(dns.learnedNamesFor(1, '203.0.113.1', T0), ['victim.example'], 'the other namespace keeps its name');
    assert.deepEqual(dns.learnedNamesFor(2, '198.51.119.135', T0), ['flood4999.example'], 'the newest is learned: the table never freezes');
    assert.deepEqual(dns.learnedNamesFor(2, '198.51.100.0', T0), [], 'its oldest went');
    assert.equal(dns.evicted, 4900);
  });

  test('the whole table past its bound drops its oldest entries, and keeps learning', () => {
    const dns = new DnsCache({ perNetns: 1000, max: 250 });
    for (let ns = 1; ns <= 5; ns++) for (let i = 0; i < 100; i++) dns.learn(ns, `n${ns}-${i}.example`, `198.51.100.${i}`, 3600, T0);
    assert.equal(dns.learnedSize, 250);
    assert.deepEqual(dns.learnedNamesFor(1, '198.51.100.5', T0), [], 'the oldest namespace\'s entries went first');
    assert.deepEqual(dns.learnedNamesFor(5, '198.51.100.99', T0), ['n5-99.example']);
    // Learning an address again makes it young: it outlives the ones learned after it.
    dns.learn(3, 'again.example', '198.51.100.60', 3600, T0);
    for (let i = 0; i < 249; i++) dns.learn(9, `late${i}.example`, `203.0.113.${i}`, 3600, T0);
    assert.deepEqual(dns.learnedNamesFor(3, '198.51.100.60', T0), ['again.example', 'n3-60.example']);
    assert.deepEqual(dns.learnedNamesFor(5, '198.51.100.99', T0), []);
  });
});

// ---- queries and answers --------------------------------------------------------------------------------

describe('DnsLearner: only answers to the socket\'s own queries, from its resolver', () => {
  const RESOLVER = '10.255.255.53';
  const mk = () => {
    const dns = new DnsCache();
    const learner = new DnsLearner({ dns, resolvers: (netns) => new Set(netns === 101 ? [RESOLVER] : []) });
    return { dns, learner };
  };
  const pkt = (payload: Buffer, over: Partial<DnsPacket> = {}): DnsPacket => ({
    pid: 50, ts: T0, netns: 101, sock: 7777, lport: 40001, peer: RESOLVER, peerPort: 53, payload, ...over,
  });

  test('a query, then its answer: learned', () => {
    const { dns, learner } = mk();
    learner.onQuery(pkt(query(0x4242, 'Pool.SupportXMR.com')));
    assert.equal(learner.onAnswer(pkt(answer(0x4242, 'pool.supportxmr.com', '198.51.100.10'), { ts: T0 + S }))?.verdict, 'learned');
    assert.deepEqual(dns.learnedNamesFor(101, '198.51.100.10', T0 + S), ['pool.supportxmr.com']);
    // Answered once: the same answer again teaches nothing.
    assert.equal(learner.onAnswer(pkt(answer(0x4242, 'pool.supportxmr.com', '198.51.100.99'), { ts: T0 + S }))?.verdict, 'unsolicited');
    assert.deepEqual(dns.learnedNamesFor(101, '198.51.100.99', T0 + S), []);
  });

  test('forged answers teach nothing: no query, another txid, name, socket, port, sender, namespace, or too late', () => {
    const forged: Array<[string, Partial<DnsPacket>, Buffer?]> = [
      ['another transaction id', {}, answer(0x4243, 'pool.supportxmr.com', '198.51.100.10')],
      ['another question', {}, answer(0x4242, 'other.example', '198.51.100.10')],
      ['another socket', { sock: 7778 }],
      ['another local port', { lport: 40002 }],
      ['from another address', { peer: '198.51.100.53' }],
      ['from another port', { peerPort: 5353 }],
      ['another namespace', { netns: 202 }],
      ['after the timeout', { ts: T0 + 11n * S }],
      ['before the query', { ts: T0 - S }],
    ];
    for (const [why, over, payload] of forged) {
      const { dns, learner } = mk();
      learner.onQuery(pkt(query(0x4242, 'pool.supportxmr.com')));
      const r = learner.onAnswer(pkt(payload ?? answer(0x4242, 'pool.supportxmr.com', '198.51.100.10'), over));
      assert.equal(r?.verdict, 'unsolicited', why);
      assert.equal(dns.learnedSize, 0, why);
    }
    const { dns, learner } = mk();
    assert.equal(learner.onAnswer(pkt(answer(0x4242, 'pool.supportxmr.com', '198.51.100.10')))?.verdict, 'unsolicited', 'no query at all');
    assert.equal(learner.onAnswer(pkt(query(1, 'a.example'))), undefined, 'a query is not an answer');
    assert.equal(dns.learnedSize, 0);
  });

  test('a query to a resolver the namespace does not use is not followed', () => {
    const { dns, learner } = mk();
    learner.onQuery(pkt(query(0x4242, 'pool.supportxmr.com'), { peer: '198.51.100.53' }));
    learner.onAnswer(pkt(answer(0x4242, 'pool.supportxmr.com', '198.51.100.10'), { peer: '198.51.100.53' }));
    assert.equal(dns.learnedSize, 0);
    assert.equal(learner.counts.queriesToOtherResolvers, 1);
  });

  test('sendmmsg: the A and AAAA questions back to back are both followed', () => {
    const two = Buffer.concat([query(0x1111, 'a.example', 1), query(0x2222, 'a.example', 28)]);
    assert.deepEqual(parseDnsQueries(two).map((q) => [q.txid, q.name, q.length]), [[0x1111, 'a.example', 27], [0x2222, 'a.example', 27]]);
    const { dns, learner } = mk();
    learner.onQuery(pkt(two));
    assert.equal(learner.onAnswer(pkt(answer(0x2222, 'a.example', '198.51.100.30')))?.verdict, 'learned');
    assert.equal(learner.onAnswer(pkt(answer(0x1111, 'a.example', '198.51.100.31')))?.verdict, 'learned');
    assert.equal(dns.learnedSize, 2);
    // Junk after a good message is not a query.
    assert.equal(parseDnsQueries(Buffer.concat([query(1, 'b.example'), Buffer.from([1, 2, 3])])).length, 1);
    assert.deepEqual(parseDnsQueries(answer(1, 'b.example', '198.51.100.1')), [], 'an answer is not a query');
  });

  test('a namespace flooding queries pushes out only its own pending ones', () => {
    const dns = new DnsCache();
    const learner = new DnsLearner({ dns, resolvers: () => undefined, maxPendingPerNetns: 100, maxPending: 1000 });
    learner.onQuery(pkt(query(7, 'victim.example'), { netns: 1 }));
    for (let i = 0; i < 5000; i++) learner.onQuery(pkt(query(i & 0xffff, `f${i}.example`), { netns: 2, sock: 1 + (i >> 16) }));
    assert.equal(learner.pendingCount, 101);
    assert.equal(learner.onAnswer(pkt(answer(7, 'victim.example', '198.51.100.7'), { netns: 1 }))?.verdict, 'learned');
    assert.equal(learner.onAnswer(pkt(answer(4999, 'f4999.example', '198.51.100.8'), { netns: 2, sock: 1 }))?.verdict, 'learned');
    assert.equal(learner.onAnswer(pkt(answer(0, 'f0.example', '198.51.100.9'), { netns: 2, sock: 1 }))?.verdict, 'unsolicited', 'its oldest went');
  });

  test('pending queries are bounded', () => {
    const dns = new DnsCache();
    const learner = new DnsLearner({ dns, resolvers: () => new Set([RESOLVER]), maxPending: 10, maxPendingPerNetns: 10 });
    for (let i = 0; i < 50; i++) learner.onQuery(pkt(query(i, `q${i}.example`)));
    assert.equal(learner.pendingCount, 10);
    assert.equal(learner.onAnswer(pkt(answer(0, 'q0.example', '198.51.100.1')))?.verdict, 'unsolicited', 'the oldest went');
    assert.equal(learner.onAnswer(pkt(answer(49, 'q49.example', '198.51.100.1')))?.verdict, 'learned');
  });
});

// ---- resolvers ----------------------------------------------------------------------------------------

describe('resolvers: the resolv.conf a namespace uses', () => {
  test('nameserver lines, canonical, once each', () => {
    assert.deepEqual(parseResolvConf('# x\nnameserver 10.0.0.2\n  nameserver\t2001:DB8::53 # c\nsearch a.example\nnameserver 10.0.0.2\nnameserver bogus\noptions ndots:5\n'), ['10.0.0.2', '2001:db8::53']);
  });

  test('the host namespace: the host\'s files and the host init\'s (an absolute symlink followed in its root); another namespace: any', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-resolv-'));
    try {
      writeFileSync(join(dir, 'host.conf'), 'nameserver 10.255.255.53\n');
      // /proc/1/root/etc/resolv.conf -> /run/resolv (absolute: inside that root), as on a node
      // seen from a hostPID pod.
      mkdirSync(join(dir, 'proc/1/root/etc'), { recursive: true });
      mkdirSync(join(dir, 'proc/1/root/run'), { recursive: true });
      writeFileSync(join(dir, 'proc/1/root/run/resolv'), 'nameserver 10.0.0.2\n');
      symlinkSync('/run/resolv', join(dir, 'proc/1/root/etc/resolv.conf'));
      const files = hostResolvFiles(join(dir, 'proc'));
      const sets = new ResolverSets({ hostNetns: 1, hostFiles: [join(dir, 'host.conf'), join(dir, 'absent'), ...files.slice(2)] });
      assert.deepEqual([...sets.forNetns(1)!], ['10.255.255.53', '10.0.0.2']);
      assert.equal(sets.forNetns(7), undefined, 'another namespace: the resolver each query went to');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('in a namespace without a resolver list, the answer must still come from where the query went', () => {
    const dns = new DnsCache();
    const learner = new DnsLearner({ dns, resolvers: () => undefined });
    const p = { pid: 50, ts: T0, netns: 7, sock: 1, lport: 40001, peer: '198.51.100.53', peerPort: 53 };
    learner.onQuery({ ...p, payload: query(9, 'a.example') });
    assert.equal(learner.onAnswer({ ...p, peer: '198.51.100.54', payload: answer(9, 'a.example', '198.51.100.1') })?.verdict, 'unsolicited');
    assert.equal(learner.onAnswer({ ...p, payload: answer(9, 'a.example', '198.51.100.1') })?.verdict, 'learned');
    assert.deepEqual(dns.learnedNamesFor(7, '198.51.100.1', T0), ['a.example']);
  });
});

// ---- responses ------------------------------------------------------------------------------------------

describe('responses on a name learned from DNS: dry run, saying so', () => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES);
  const connect = (named: 'dns' | 'static', extra: Partial<SyscallEvent> = {}): SyscallEvent => ({
    source: 'syscall', type: 'connect', ts: T0, res: 0, proc: { pid: 0x3ffffff0, name: 'curl', args: [], start_ts: 1n },
    fd: { num: 3, type: 'ipv4', l4proto: 'tcp', cip: '10.0.0.2', cport: 40000, sip: '198.51.100.10', sport: 3333, connected: true, sip_name: 'pool.supportxmr.com', ...(named === 'dns' ? { sip_name_dns: true } : {}) },
    ...extra,
  });
  const run = async (ev: SyscallEvent, stillMatches = true): Promise<ActionResult[]> => {
    const results: ActionResult[] = [];
    const seen: Match[] = [];
    const action: ResponseAction = { name: 'kill', run: async (req: ActionRequest) => ({ request: req, outcome: req.mode === 'enforce' ? 'done' : 'dryrun', reason: req.mode === 'enforce' ? 'killed' : 'would kill' }) };
    const cfg = responseSection.parse({ mode: 'enforce', actions: [{ tags: ['mining'], do: ['kill'] }] });
    const d = new ResponseDispatcher(cfg, { kill: action }, (m) => seen.push(m), 'host', stillMatches ? { stillMatches: (rule, e) => engine.recheck(rule, e) } : {});
    const matches = engine.process(ev);
    assert.ok(matches.some((m) => m.rule === 'Outbound Connection to a Mining Pool'), 'the pool rule matches');
    for (const m of matches) d.onMatch(m);
    await new Promise((r) => setTimeout(r, 10));
    for (const m of seen) results.push({ request: { action: 'kill', target: { pid: 0 }, trigger: String(m.outputFields['mw.response.trigger']), mode: m.outputFields['mw.response.mode'] as 'enforce' }, outcome: m.outputFields['mw.response.outcome'] as 'done', reason: String(m.outputFields['mw.response.reason']) });
    return results.filter((r) => r.request.trigger === 'Outbound Connection to a Mining Pool');
  };

  test('named only by a DNS answer: enforce becomes a dry run, and the alert says why', async () => {
    const [r] = await run(connect('dns'));
    assert.equal(r?.outcome, 'dryrun');
    assert.equal(r?.request.mode, 'dryrun');
    assert.match(r!.reason!, new RegExp(`^${DNS_ONLY_DRYRUN}; would kill`));
  });

  test('the same name from the static table: enforced', async () => {
    const [r] = await run(connect('static'));
    assert.equal(r?.outcome, 'done');
  });

  test('without a way to check the rule again, any learned name means a dry run', async () => {
    const [r] = await run(connect('dns'), false);
    assert.equal(r?.outcome, 'dryrun');
  });

  test('the engine re-checks a rule against a changed event', () => {
    const ev = connect('static');
    // What the dispatcher acts on: a re-check that is not true (no match, or no such rule) is no match.
    const matches = (rule: string, e: SyscallEvent): boolean => engine.recheck(rule, e) === true;
    assert.equal(matches('Outbound Connection to a Mining Pool', ev), true);
    assert.equal(matches('Outbound Connection to a Mining Pool', { ...ev, fd: { ...ev.fd!, sip_name: undefined } }), false);
    assert.equal(matches('No Such Rule', ev), false);
  });
});
