/**
 * The one IP → name table behind fd.sip.name, fd.cip.name, fd.lip.name and fd.rip.name.
 *
 * Two kinds of names, kept apart:
 * - static: the hosts file and names given in the config; host-wide, trusted, never expire.
 * - learned: DNS answers the eBPF driver saw a process receive for a query its own socket sent
 *   (dns-learner.ts). An answer can be forged by whoever controls the resolver or the namespace, so
 *   these are kept per network namespace (a name learned in a container names nothing outside
 *   it), expire with their TTL, and each namespace has a quota of addresses (its oldest go first,
 *   and the whole table's oldest once it is full): no one can fill the table for everyone, or
 *   freeze it. An event named only by a learned name carries fd.sip_name_dns, and the responses
 *   stay dry runs on it (ResponseDispatcher).
 *
 * It never queries a resolver: enrichment runs on the event path, and a lookup there would stall
 * it and would let a watched host steer our traffic. Addresses are stored in canonical form, so
 * "2001:DB8:0::1", "2001:db8::1" and "[2001:db8::1]" are one key, and an IPv4-mapped IPv6 address
 * is the IPv4 address it maps.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Event, SyscallEvent } from '../events.js';
import { NetnsTable } from './netns-table.js';

/** Canonical text of an IP address, or undefined when `text` is not one. */
export function canonicalIp(text: string): string | undefined {
  let ip = text.trim();
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  // A zone (fe80::1%eth0) names an interface, not a different address.
  const zone = ip.indexOf('%');
  if (zone >= 0) ip = ip.slice(0, zone);
  const version = isIP(ip);
  if (version === 4) return ip;
  if (version !== 6) return undefined;
  // The WHATWG URL parser prints IPv6 in its compressed, lower-case form (RFC 5952).
  const host = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return host;
}

/** One line of a hosts file: an address and the names given for it. */
export interface HostsEntry {
  ip: string;
  names: string[];
}

/**
 * Parse hosts-file text: "address name [alias…]" per line, '#' to end of line is a comment,
 * any whitespace separates fields. Lines without a valid address or without a name are skipped.
 */
export function parseHosts(text: string): HostsEntry[] {
  const out: HostsEntry[] = [];
  for (const line of text.split(/\r?\n|\r/)) {
    const hash = line.indexOf('#');
    const fields = (hash >= 0 ? line.slice(0, hash) : line).trim().split(/\s+/);
    if (fields.length < 2) continue;
    const ip = canonicalIp(fields[0]!);
    if (!ip) continue;
    out.push({ ip, names: fields.slice(1) });
  }
  return out;
}

/** Bounds of the learned table (see DnsCache). */
export interface DnsLearnLimits {
  /** Addresses over all network namespaces (default 200,000); past it the oldest go. */
  max?: number;
  /** Addresses per network namespace (default 20,000); past it that namespace's oldest go. */
  perNetns?: number;
  /** Longest a learned name is kept, whatever its TTL says (default 86,400 s). */
  maxTtlS?: number;
  /**
   * Shortest, s (default 1): a TTL of 0 still names the address for the connection the lookup
   * was made for, which follows within microseconds.
   */
  minTtlS?: number;
}

interface Learned {
  /** Most recent first. */
  names: string[];
  /** ns since the epoch (the answer's time + its TTL). */
  expires: bigint;
}

const NAMES_PER_ADDRESS = 8;

export class DnsCache {
  /** Canonical address → names, in the order they became known; the first is the one shown. */
  private readonly byIp = new Map<string, string[]>();
  /** Network namespace → address → learned names, with quotas and eviction (netns-table.ts). */
  private readonly learned: NetnsTable<Learned>;
  private readonly limits: Required<DnsLearnLimits>;

  constructor(limits: DnsLearnLimits = {}) {
    this.limits = { max: limits.max ?? 200_000, perNetns: limits.perNetns ?? 20_000, maxTtlS: limits.maxTtlS ?? 86_400, minTtlS: limits.minTtlS ?? 1 };
    this.learned = new NetnsTable(this.limits.perNetns, this.limits.max);
  }

  /** Learned entries dropped to make room (tests, metrics). */
  get evicted(): number {
    return this.learned.evicted;
  }

  /**
   * Add every name of a hosts file. A missing file adds nothing (minimal containers have none);
   * other read errors are thrown. Returns how many names were new.
   */
  loadHostsFile(path = '/etc/hosts'): number {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    return this.loadHostsText(text);
  }

  /** Same as loadHostsFile, from text already read. */
  loadHostsText(text: string): number {
    let added = 0;
    for (const { ip, names } of parseHosts(text)) for (const n of names) if (this.addName(ip, n)) added++;
    return added;
  }

  /** Give `name` to each of `ips` (e.g. from the config's sources.dns.static). Rejects a bad address. */
  addStatic(name: string, ips: string[]): void {
    const trimmed = name.trim();
    if (!trimmed || /\s/.test(trimmed)) throw new TypeError(`dns: invalid host name ${JSON.stringify(name)}`);
    for (const raw of ips) {
      const ip = canonicalIp(raw);
      if (!ip) throw new TypeError(`dns: ${JSON.stringify(raw)} (for ${trimmed}) is not an IP address`);
      this.addName(ip, trimmed);
    }
  }

  /**
   * A name a process in network namespace `netns` resolved: an answer to its own query (see
   * dns-learner.ts), received at `ts` (ns since the epoch) with `ttlS`. Unlike addStatic it never
   * throws: the answer came off the wire. The newest name of an address is the one shown.
   * Returns true when the address was new in that namespace.
   */
  learn(netns: number, name: string, ip: string, ttlS: number, ts: bigint = BigInt(Date.now()) * 1_000_000n): boolean {
    const key = canonicalIp(ip);
    const n = name.trim();
    if (!key || !n || /\s/.test(n) || !Number.isInteger(netns) || netns <= 0) return false;
    const ttl = Math.min(this.limits.maxTtlS, Math.max(this.limits.minTtlS, Number.isFinite(ttlS) ? ttlS : 0));
    const expires = ts + BigInt(Math.round(ttl * 1000)) * 1_000_000n;
    const old = this.learned.get(netns, key);
    if (!old) return this.learned.set(netns, key, { names: [n], expires });
    // Learned again: newest name first, and the youngest entry again.
    const lower = n.toLowerCase();
    const names = [n, ...old.names.filter((x) => x.toLowerCase() !== lower)].slice(0, NAMES_PER_ADDRESS);
    this.learned.set(netns, key, { names, expires: expires > old.expires ? expires : old.expires });
    return false;
  }

  /**
   * Names learned from DNS for an address in a network namespace, newest first, still valid at
   * `ts` (ns since the epoch); [] when none.
   */
  learnedNamesFor(netns: number, ip: string, ts: bigint = BigInt(Date.now()) * 1_000_000n): string[] {
    const key = canonicalIp(ip);
    const e = key === undefined ? undefined : this.learnedAt(netns, key, ts);
    return e ? [...e.names] : [];
  }

  /** Learned addresses held, over all namespaces (expired ones until they are pushed out). */
  get learnedSize(): number {
    return this.learned.size;
  }

  /** Learned addresses held for one network namespace. */
  learnedIn(netns: number): number {
    return this.learned.sizeIn(netns);
  }

  /** Every static name known for the address, first-known first; [] when none (or not an address). */
  namesFor(ip: string): string[] {
    const key = canonicalIp(ip);
    return key ? [...(this.byIp.get(key) ?? [])] : [];
  }

  /** Number of addresses that have at least one name. */
  get size(): number {
    return this.byIp.size;
  }

  /**
   * Fill fd.sip_name and fd.cip_name of a socket event from the table, leaving any name the
   * source already set: a static name first; else, for a socket whose network namespace the
   * source knows (fd.netns), a name learned there that has not expired at the event's time, marked
   * fd.sip_name_dns / fd.cip_name_dns. Other events pass through untouched.
   */
  enrich<E extends Event>(ev: E): E {
    if (ev.source !== 'syscall') return ev;
    const fd = (ev as unknown as SyscallEvent).fd;
    if (!fd) return ev;
    if (fd.sip !== undefined && fd.sip_name === undefined) {
      const n = this.nameOf(fd.sip, fd.netns, ev.ts);
      if (n !== undefined) {
        fd.sip_name = n.name;
        if (n.learned) fd.sip_name_dns = true;
      }
    }
    if (fd.cip !== undefined && fd.cip_name === undefined) {
      const n = this.nameOf(fd.cip, fd.netns, ev.ts);
      if (n !== undefined) {
        fd.cip_name = n.name;
        if (n.learned) fd.cip_name_dns = true;
      }
    }
    return ev;
  }

  /** The name an address shows: its first static name; else, in `netns`, its newest learned name valid at `ts`. */
  private nameOf(ip: string, netns: number | undefined, ts: bigint | undefined): { name: string; learned: boolean } | undefined {
    const key = canonicalIp(ip);
    if (key === undefined) return undefined;
    const first = this.byIp.get(key)?.[0];
    if (first !== undefined) return { name: first, learned: false };
    if (netns === undefined || this.learned.size === 0) return undefined;
    const e = this.learnedAt(netns, key, typeof ts === 'bigint' ? ts : BigInt(Date.now()) * 1_000_000n);
    return e ? { name: e.names[0]!, learned: true } : undefined;
  }

  /** The learned entry of a canonical address in `netns`, when it has not expired at `ts`. */
  private learnedAt(netns: number, key: string, ts: bigint): Learned | undefined {
    const e = this.learned.get(netns, key);
    return e && e.expires >= ts ? e : undefined;
  }

  /** Names compare case-insensitively (DNS does); the first spelling seen is kept. */
  private addName(ip: string, name: string): boolean {
    let names = this.byIp.get(ip);
    if (!names) this.byIp.set(ip, (names = []));
    const lower = name.toLowerCase();
    if (names.some((n) => n.toLowerCase() === lower)) return false;
    names.push(name);
    return true;
  }
}
