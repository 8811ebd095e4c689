/**
 * IP addresses: parsing text into bigints and CIDR networks (for typed ipaddr/ipnet comparisons)
 * and printing addresses the kernel gives as bytes or hex, the one RFC 5952 formatter for IPv6.
 */
import { endianness } from 'node:os';

export interface IpNet {
  v6: boolean;
  base: bigint;
  bits: number;
  /** For IPv4: the network and its mask as unsigned 32-bit numbers. */
  base4: number;
  mask4: number;
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = (n << 8n) | BigInt(v);
  }
  return n;
}

function parseV6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return undefined;
  // An embedded IPv4 tail (::ffff:1.2.3.4) is rewritten as its two 16-bit groups.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseV4(tail);
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const toGroups = (h: string): bigint[] | undefined => {
    if (h === '') return [];
    const out: bigint[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt('0x' + g));
    }
    return out;
  };
  const left = toGroups(halves[0]!);
  const right = halves.length === 2 ? toGroups(halves[1]!) : [];
  if (!left || !right) return undefined;
  const fill = 8 - left.length - right.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const groups = [...left, ...new Array<bigint>(fill).fill(0n), ...right];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/**
 * A dotted-quad IPv4 address ("10.0.3.7") as an unsigned 32-bit number, or -1 when `s` is not
 * one by parseV4's rules (four parts of one to three ASCII digits, each at most 255). No
 * allocation, no cache: the common case of an address test, before parseIp.
 */
export function parseV4Number(s: string): number {
  const len = s.length;
  if (len < 7 || len > 15) return -1;
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return -1;
      part = part * 10 + (c - 48);
    } else if (c === 46) {
      if (digits === 0 || part > 255 || ++dots > 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else return -1;
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return n * 256 + part;
}

/** Is the IPv4 address `n4` (from parseV4Number) inside `net`? */
export function netContains4(net: IpNet, n4: number): boolean {
  return !net.v6 && ((n4 & net.mask4) >>> 0) === net.base4;
}

/** Parse an address; IPv4-mapped IPv6 (::ffff:a.b.c.d) is taken as the IPv4 address it maps. */
export interface ParsedIp {
  v6: boolean;
  n: bigint;
  /** IPv4 as an unsigned 32-bit number: network tests on it need no BigInt arithmetic. */
  n4: number;
}

/** Addresses repeat endlessly on a busy host (a connect per request): each is parsed once. */
const parsedCache = new Map<string, ParsedIp | null>();

export function parseIp(s: string): ParsedIp | undefined {
  let p = parsedCache.get(s);
  if (p === undefined) {
    if (parsedCache.size >= 8192) parsedCache.clear();
    parsedCache.set(s, (p = parseIpUncached(s) ?? null));
  }
  return p ?? undefined;
}

function parseIpUncached(s: string): ParsedIp | undefined {
  const v4 = parseV4(s);
  if (v4 !== undefined) return { v6: false, n: v4, n4: Number(v4) };
  const v6 = parseV6(s);
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn) {
    const n = v6 & 0xffffffffn;
    return { v6: false, n, n4: Number(n) };
  }
  return { v6: true, n: v6, n4: 0 };
}

/** Parse "10.0.0.0/8", "fd00::/8" or a bare address (a /32 or /128 network). */
export function parseNet(s: string): IpNet | undefined {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const ip = parseIp(addr);
  if (!ip) return undefined;
  const max = ip.v6 ? 128 : 32;
  let bits = max;
  if (slash >= 0) {
    const b = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b)) return undefined;
    bits = Number(b);
    // A v4-mapped network written in IPv6 (::ffff:0:0/96, ::ffff:10.0.0.0/104) counts its prefix
    // over 128 bits; as the IPv4 network it maps, it has 96 bits fewer.
    if (!ip.v6 && addr.includes(':')) {
      if (bits < 96 || bits > 128) return undefined;
      bits -= 96;
    }
    if (bits > max) return undefined;
  }
  const shift = BigInt(max - bits);
  const base = (ip.n >> shift) << shift;
  const mask4 = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { v6: ip.v6, base, bits, base4: ip.v6 ? 0 : Number(base), mask4 };
}

export function netContains(net: IpNet, ip: ParsedIp): boolean {
  if (net.v6 !== ip.v6) return false;
  if (!net.v6) return ((ip.n4 & net.mask4) >>> 0) === net.base4;
  const shift = BigInt(128 - net.bits);
  return (ip.n >> shift) << shift === net.base;
}

/**
 * The kernel prints each 32-bit word of an address with %08X of its in-memory value, so on a
 * little-endian host the bytes of each word come out reversed (127.0.0.1 is "0100007F").
 */
const LITTLE_ENDIAN = endianness() === 'LE';

function wordBytes(hex: string, off: number, out: number[], littleEndian: boolean): void {
  const v = parseInt(hex.slice(off, off + 8), 16) >>> 0;
  if (littleEndian) out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  else out.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (≥ 2) of zero groups as "::". */
export function formatIpv6(bytes: ArrayLike<number>): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** An IPv6 address held as a 128-bit bigint (ParsedIp.n), in RFC 5952 text. */
export function formatIpv6Bigint(n: bigint): string {
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((n >> BigInt(i * 8)) & 0xffn));
  return formatIpv6(bytes);
}

/**
 * An address from /proc/net/{tcp,udp}{,6}: 8 hex digits (IPv4) or 32 (IPv6, four words).
 * IPv4-mapped IPv6 (::ffff:a.b.c.d, what a dual-stack socket shows for IPv4 peers) becomes the
 * plain IPv4 address, as Falco reports it.
 */
export function parseHexIp(hex: string, littleEndian = LITTLE_ENDIAN): { ip: string; v6: boolean } {
  const b: number[] = [];
  if (hex.length === 8) {
    wordBytes(hex, 0, b, littleEndian);
    return { ip: b.join('.'), v6: false };
  }
  if (hex.length !== 32) throw new Error(`bad socket address ${JSON.stringify(hex)}`);
  for (let off = 0; off < 32; off += 8) wordBytes(hex, off, b, littleEndian);
  let mapped = b[10] === 0xff && b[11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) if (b[i] !== 0) mapped = false;
  if (mapped) return { ip: `${b[12]}.${b[13]}.${b[14]}.${b[15]}`, v6: false };
  return { ip: formatIpv6(b), v6: true };
}
