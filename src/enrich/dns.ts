/**
 * The one IP → name table behind fd.sip.name, fd.cip.name, fd.lip.name and fd.rip.name.
 *
 * It is filled only from static sources (the hosts file, names given in the config) and never
 * queries a resolver: enrichment runs on the event path, and a lookup there would stall it and
 * would let a watched host steer our traffic. Addresses are stored in canonical form, so
 * "2001:DB8:0::1", "2001:db8::1" and "[2001:db8::1]" are one key, and an IPv4-mapped IPv6 address
 * is the IPv4 address it maps.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Event, SyscallEvent } from '../events.js';

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

export class DnsCache {
  /** Canonical address → names, in the order they became known; the first is the one shown. */
  private readonly byIp = new Map<string, string[]>();

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
   * A name the host itself resolved (an answer the eBPF driver saw). Unlike addStatic it never
   * throws: the answer came off the wire. Answers stop being learned past `max` addresses, so a
   * host resolving endless names cannot grow the table without bound. Returns true when new.
   */
  learn(name: string, ip: string, max = 200_000): boolean {
    const key = canonicalIp(ip);
    const n = name.trim();
    if (!key || !n || /\s/.test(n)) return false;
    if (!this.byIp.has(key) && this.byIp.size >= max) return false;
    return this.addName(key, n);
  }

  /** Every name known for the address, first-known first; [] when none (or not an address). */
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
   * source already set. Other events pass through untouched.
   */
  enrich<E extends Event>(ev: E): E {
    if (ev.source !== 'syscall') return ev;
    const fd = (ev as unknown as SyscallEvent).fd;
    if (!fd) return ev;
    if (fd.sip !== undefined && fd.sip_name === undefined) {
      const n = this.firstName(fd.sip);
      if (n !== undefined) fd.sip_name = n;
    }
    if (fd.cip !== undefined && fd.cip_name === undefined) {
      const n = this.firstName(fd.cip);
      if (n !== undefined) fd.cip_name = n;
    }
    return ev;
  }

  private firstName(ip: string): string | undefined {
    const key = canonicalIp(ip);
    return key ? this.byIp.get(key)?.[0] : undefined;
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
