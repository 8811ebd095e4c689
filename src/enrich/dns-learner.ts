/**
 * Decides which DNS answers the eBPF driver saw may name addresses (DnsCache.learn): only an
 * answer to a query the same socket sent — same network namespace and socket (its inode), same
 * local port, same transaction id, same question — coming from the address and port the query was
 * sent to, within `timeoutMs`, and, in the host's network namespace, only where that address is
 * one of the host's resolvers (ResolverSets). Anything else (an answer nobody asked for, one from
 * another address, a query to a resolver of the process's own choosing in the host's namespace)
 * teaches nothing.
 *
 * Pending queries are bounded per network namespace and in all (oldest dropped first: a namespace
 * that floods queries pushes out only its own), and each is answered once.
 */
import { canonicalIp, type DnsCache } from './dns.js';
import { type DnsAnswer, parseDnsAnswer, parseDnsQueries } from '../platform/dns-answer.js';
import { NetnsTable } from './netns-table.js';

/** A UDP send to port 53 or a receive from it, as the driver reports it. */
export interface DnsPacket {
  pid: number;
  /** ns since the epoch. */
  ts: bigint;
  netns: number;
  /** The socket's inode. */
  sock: number;
  /** Local address and port. */
  lport: number;
  /** The peer: the resolver the query went to, or the answer came from. */
  peer: string;
  peerPort: number;
  payload: Buffer;
}

interface Pending {
  name: string;
  peer: string;
  peerPort: number;
  ts: bigint;
}

export interface DnsLearnerOptions {
  dns: DnsCache;
  /** The resolvers a namespace may learn from; undefined: the one each query went to (ResolverSets.forNetns). */
  resolvers: (netns: number) => ReadonlySet<string> | undefined;
  /** How long a query waits for its answer, ms (default 10,000: glibc's 5 s timeout, twice). */
  timeoutMs?: number;
  /** Pending queries kept (default 16,384), and per network namespace (default 1,024). */
  maxPending?: number;
  maxPendingPerNetns?: number;
}

export type AnswerVerdict = 'learned' | 'unsolicited' | 'not-an-answer';

export class DnsLearner {
  private readonly pending: NetnsTable<Pending>;
  private readonly timeoutNs: bigint;
  /** Why queries and answers were turned away (tests, metrics). */
  readonly counts = { queries: 0, queriesToOtherResolvers: 0, answers: 0, learned: 0, unsolicited: 0 };

  constructor(private readonly opts: DnsLearnerOptions) {
    this.timeoutNs = BigInt(opts.timeoutMs ?? 10_000) * 1_000_000n;
    this.pending = new NetnsTable(opts.maxPendingPerNetns ?? 1_024, opts.maxPending ?? 16_384);
  }

  /** A query sent: remembered when it went to one of the namespace's resolvers. */
  onQuery(p: DnsPacket): void {
    if (!p.netns || !p.sock) return;
    const peer = canonicalIp(p.peer);
    if (!peer) return;
    const queries = parseDnsQueries(p.payload);
    if (queries.length === 0) return;
    this.counts.queries += queries.length;
    const allowed = this.opts.resolvers(p.netns);
    if (allowed && !allowed.has(peer)) {
      this.counts.queriesToOtherResolvers += queries.length;
      return;
    }
    for (const q of queries) this.pending.set(p.netns, key(p, q.txid), { name: q.name, peer, peerPort: p.peerPort, ts: p.ts });
  }

  /**
   * An answer received: learned when it answers a pending query of this socket. Returns the
   * parsed answer with the verdict (undefined: not a DNS answer at all).
   */
  onAnswer(p: DnsPacket): { answer: DnsAnswer; verdict: AnswerVerdict } | undefined {
    const answer = parseDnsAnswer(p.payload);
    if (!answer) return undefined;
    this.counts.answers++;
    const k = key(p, answer.txid);
    const q = this.pending.get(p.netns, k);
    const peer = canonicalIp(p.peer);
    const ok = q !== undefined && q.name === answer.query && q.peer === peer && q.peerPort === p.peerPort && p.ts >= q.ts && p.ts - q.ts <= this.timeoutNs;
    if (!ok) {
      this.counts.unsolicited++;
      return { answer, verdict: 'unsolicited' };
    }
    this.pending.delete(p.netns, k);
    this.counts.learned++;
    for (const r of answer.records) this.opts.dns.learn(p.netns, answer.query, r.addr, r.ttl, p.ts);
    return { answer, verdict: 'learned' };
  }

  get pendingCount(): number {
    return this.pending.size;
  }
}

/** A query's key within its namespace: the socket, its local port, the transaction id. */
function key(p: DnsPacket, txid: number): string {
  return `${p.sock}:${p.lport}:${txid}`;
}
