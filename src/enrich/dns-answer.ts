/**
 * Reads the addresses out of a DNS answer (RFC 1035 wire format) the host received, so the one
 * DNS cache learns every name the host resolved without a lookup of our own. Tolerant and bounded:
 * a truncated or hostile message gives what was readable, never an exception or a loop.
 */

export interface DnsAnswer {
  /** The question's name, lowercased, without the trailing dot. */
  query: string;
  /** IPv4 and IPv6 addresses of the A and AAAA records. */
  addrs: string[];
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

function ipv6(b: Buffer, at: number): string {
  const g: string[] = [];
  for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(at + i * 2).toString(16));
  return g.join(':');
}

/** The answer's question and addresses; undefined when it is not a response with a question. */
export function parseDnsAnswer(b: Buffer): DnsAnswer | undefined {
  if (b.length < 12) return undefined;
  const flags = b.readUInt16BE(2);
  if ((flags & 0x8000) === 0) return undefined; // a query, not a response
  const qd = b.readUInt16BE(4);
  const an = b.readUInt16BE(6);
  if (qd < 1) return undefined;
  let o = 12;
  const q = readName(b, o);
  if (!q || q.name === '') return undefined;
  o = q.next + 4;
  for (let i = 1; i < qd; i++) {
    const n = readName(b, o);
    if (!n) return { query: q.name, addrs: [] };
    o = n.next + 4;
  }
  const addrs: string[] = [];
  for (let i = 0; i < an && i < 64; i++) {
    const n = readName(b, o);
    if (!n || n.next + 10 > b.length) break;
    const type = b.readUInt16BE(n.next);
    const rdlen = b.readUInt16BE(n.next + 8);
    const rd = n.next + 10;
    if (rd + rdlen > b.length) break;
    if (type === 1 && rdlen === 4) addrs.push(`${b[rd]}.${b[rd + 1]}.${b[rd + 2]}.${b[rd + 3]}`);
    else if (type === 28 && rdlen === 16) addrs.push(ipv6(b, rd));
    o = rd + rdlen;
  }
  return { query: q.name, addrs };
}
