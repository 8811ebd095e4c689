/**
 * Reads the addresses out of a DNS answer (RFC 1035 wire format) the host received, so the one
 * DNS cache learns every name the host resolved without a lookup of our own. Tolerant and bounded:
 * a truncated or hostile message gives what was readable, never an exception or a loop.
 */
import { formatIpv6 } from './ip.js';

export interface DnsAnswer {
  /** The message's transaction id: an answer carries its query's. */
  txid: number;
  /** The question's name, lowercased, without the trailing dot. */
  query: string;
  /** IPv4 and IPv6 addresses of the A and AAAA records. */
  addrs: string[];
  /** The same addresses, each with its record's TTL (seconds). */
  records: Array<{ addr: string; ttl: number }>;
}

/** One DNS query message: its transaction id, its (first) question, and its length in bytes. */
export interface DnsQuery {
  txid: number;
  /** Lowercased, without the trailing dot. */
  name: string;
  /** Bytes the message takes (a sendmmsg capture holds several back to back). */
  length: number;
}

const MAX_JUMPS = 16;

/** A (possibly compressed) name at `off`: the name, and where the record continues after it. */
function readName(b: Buffer, off: number): { name: string; next: number } | undefined {
  const labels: string[] = [];
  let next = -1;
  let jumps = 0;
  for (let o = off; ; ) {
    if (o >= b.length) return undefined;
    const len = b[o]!;
    if (len === 0) {
      if (next < 0) next = o + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (o + 1 >= b.length || ++jumps > MAX_JUMPS) return undefined;
      if (next < 0) next = o + 2;
      o = ((len & 0x3f) << 8) | b[o + 1]!;
      continue;
    }
    if (len > 63 || o + 1 + len > b.length) return undefined;
    labels.push(b.toString('latin1', o + 1, o + 1 + len));
    o += 1 + len;
    if (labels.length > 127) return undefined;
  }
  return { name: labels.join('.').toLowerCase(), next };
}

/** The answer's question and addresses; undefined when it is not a response with a question. */
export function parseDnsAnswer(b: Buffer): DnsAnswer | undefined {
  if (b.length < 12) return undefined;
  const flags = b.readUInt16BE(2);
  if ((flags & 0x8000) === 0) return undefined; // a query, not a response
  const txid = b.readUInt16BE(0);
  const qd = b.readUInt16BE(4);
  const an = b.readUInt16BE(6);
  if (qd < 1) return undefined;
  let o = 12;
  const q = readName(b, o);
  if (!q || q.name === '') return undefined;
  o = q.next + 4;
  const records: DnsAnswer['records'] = [];
  const answer = (): DnsAnswer => ({ txid, query: q.name, addrs: records.map((r) => r.addr), records });
  for (let i = 1; i < qd; i++) {
    const n = readName(b, o);
    if (!n) return answer();
    o = n.next + 4;
  }
  for (let i = 0; i < an && i < 64; i++) {
    const n = readName(b, o);
    if (!n || n.next + 10 > b.length) break;
    const type = b.readUInt16BE(n.next);
    const ttl = b.readUInt32BE(n.next + 4);
    const rdlen = b.readUInt16BE(n.next + 8);
    const rd = n.next + 10;
    if (rd + rdlen > b.length) break;
    if (type === 1 && rdlen === 4) records.push({ addr: `${b[rd]}.${b[rd + 1]}.${b[rd + 2]}.${b[rd + 3]}`, ttl });
    else if (type === 28 && rdlen === 16) records.push({ addr: formatIpv6(b.subarray(rd, rd + 16)), ttl });
    o = rd + rdlen;
  }
  return answer();
}

/**
 * The query messages in a captured send, back to back (a sendmmsg gives several); stops at the
 * first one that does not parse. Each must be a query (QR clear) with a question.
 */
export function parseDnsQueries(b: Buffer): DnsQuery[] {
  const out: DnsQuery[] = [];
  for (let o = 0; o + 12 <= b.length && out.length < 8; ) {
    const m = b.subarray(o);
    if ((m.readUInt16BE(2) & 0x8000) !== 0) break;
    const counts = [m.readUInt16BE(4), m.readUInt16BE(6), m.readUInt16BE(8), m.readUInt16BE(10)];
    if (counts[0]! < 1) break;
    let p = 12;
    let name: string | undefined;
    let ok = true;
    for (let i = 0; i < counts[0]! && ok; i++) {
      const n = readName(m, p);
      if (!n || n.next + 4 > m.length) ok = false;
      else {
        if (i === 0) name = n.name;
        p = n.next + 4;
      }
    }
    // Answer, authority and additional records (EDNS's OPT): skipped to find the message's end.
    for (let i = 0; ok && i < counts[1]! + counts[2]! + counts[3]! && i < 64; i++) {
      const n = readName(m, p);
      if (!n || n.next + 10 > m.length) ok = false;
      else p = n.next + 10 + m.readUInt16BE(n.next + 8);
      if (p > m.length) ok = false;
    }
    if (!ok || !name) break;
    out.push({ txid: m.readUInt16BE(0), name, length: p });
    o += p;
  }
  return out;
}
