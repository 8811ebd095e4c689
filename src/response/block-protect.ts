/**
 * What block_destination must never block, whatever a miner talks to: a process can send a stratum
 * login to any address, and a block of the resolver, the gateway or the API server would take the
 * node (or the cluster's control of it) down with the miner. Computed, not configured, so it holds
 * on a fresh install:
 *
 *   resolvers       the `nameserver`s of /etc/resolv.conf (and systemd-resolved's upstreams); for a
 *                   block in a named network namespace, /etc/netns/NS/resolv.conf when it exists
 *   gateways        every default route's next hop (/proc/net/route, /proc/net/ipv6_route)
 *   node addresses  every address of every interface
 *   Kubernetes API  KUBERNETES_SERVICE_HOST, the kubeconfig's server, the `kubernetes` endpoints
 *   outputs         the hosts of the configured alert outputs (webhook, slack, falcosidekick, nats,
 *                   redis, mqtt): blocking them would silence the alerts about the block
 *   block_protect   the user's own CIDR list (`response.block_protect`)
 *
 * The list is read again after `refreshMs` (addresses and routes change: DHCP, a new pod IP). Names
 * (an output's host, a kubeconfig server) are resolved when the list is read, never on the event
 * path. A source that cannot be read protects nothing and is logged by the caller, it never fails
 * a block on its own: the fixed ranges (loopback, link-local, …) stay in BlockDestinationAction.
 */
import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { canonicalIp } from '../enrich/dns.js';
import { hostResolvFiles, readResolvers } from '../enrich/resolvers.js';
import { type IpNet, netContains, parseIp, parseNet } from '../platform/ip.js';
import { parseHexIp } from '../platform/ip.js';

export interface ProtectedNet {
  cidr: string;
  net: IpNet;
  /** Why it is protected, as the refusal says it: "a DNS resolver (/etc/resolv.conf)". */
  why: string;
}

export interface BlockProtectOptions {
  /** The blocks go to this network namespace (`ip netns exec NS`): its resolvers, routes, addresses. */
  netns?: string;
  /** `response.block_protect`: CIDRs or single addresses. */
  cidrs?: readonly string[];
  /** Where alerts are sent (outputDestinations of the outputs config). */
  outputs?: ReadonlyArray<{ output: string; url: string }>;
  /** The API server's URL from the k8s client's kubeconfig, when there is a client. */
  kubeApiServer?: () => string | undefined;
  /** The addresses of the `kubernetes` endpoints, when there is a client (may reject: then none). */
  kubeEndpoints?: () => Promise<string[]>;
  env?: NodeJS.ProcessEnv;
  /** The host's resolv.conf files (default hostResolvFiles(): the agent's and the host init's). */
  resolvFiles?: readonly string[];
  /** Where /proc/net is (tests). */
  procNet?: string;
  /** How long a computed list is used, ms (default 30,000). */
  refreshMs?: number;
  /** Name resolution for hosts that are not addresses (default: the system's, getaddrinfo). */
  resolveName?: (host: string) => Promise<string[]>;
  /** A source that could not be read (default: ignored). */
  onError?: (what: string, err: string) => void;
}

/** What is wrong with one `response.block_protect` entry (the config schema says it too). */
export function notACidr(entry: string): string {
  return `${JSON.stringify(entry)} is not a CIDR or an IP address (e.g. 10.96.0.0/12, 2001:db8::/32, 192.0.2.10)`;
}

/** The CIDRs of `response.block_protect`, checked: throws naming the entry at fault. */
export function parseProtectCidrs(cidrs: readonly string[], where = 'response.block_protect'): ProtectedNet[] {
  return cidrs.map((c, i) => {
    const text = c.trim();
    const net = parseNet(text); // a bare address is its /32 or /128
    if (!net) throw new Error(`${where}[${i}]: ${notACidr(c)}`);
    return { cidr: text, net, why: `in ${where}` };
  });
}

/**
 * IPv4 default gateways of /proc/net/route text. The kernel prints each address as /proc/net/tcp
 * does (%08X of the in-memory word: byte-reversed on a little-endian host).
 */
export function parseProcNetRoute(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[1] !== '00000000' || f[7] !== '00000000') continue;
    if (!/^[0-9A-Fa-f]{8}$/.test(f[2]!) || f[2] === '00000000') continue;
    out.push(parseHexIp(f[2]!).ip);
  }
  return out;
}

/**
 * IPv6 default gateways of /proc/net/ipv6_route text (destination ::/0, a next hop). Addresses
 * there are in network byte order (%pi6), never word-swapped.
 */
export function parseProcNetIpv6Route(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^0{32}$/.test(f[0]!) || f[1] !== '00' || !/^[0-9A-Fa-f]{32}$/.test(f[4]!) || /^0{32}$/.test(f[4]!)) continue;
    out.push(parseHexIp(f[4]!, false).ip);
  }
  return out;
}

/** The URLs of the enabled outputs that send somewhere (not an icon's), by output name. */
export function outputDestinations(outputs: Record<string, unknown> | undefined): Array<{ output: string; url: string }> {
  const out: Array<{ output: string; url: string }> = [];
  for (const [name, o] of Object.entries(outputs ?? {})) {
    if (!o || typeof o !== 'object' || (o as { enabled?: unknown }).enabled !== true) continue;
    for (const [k, v] of Object.entries(o)) if ((k === 'url' || k === 'webhook_url') && typeof v === 'string') out.push({ output: name, url: v });
  }
  return out;
}

/** A URL's host without brackets; undefined when it has none. */
function urlHost(url: string): string | undefined {
  try {
    const h = new URL(url).hostname;
    return h ? h.replace(/^\[|\]$/g, '') : undefined;
  } catch {
    return undefined;
  }
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 5000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stdout)));
  });
}

const defaultResolve = async (host: string): Promise<string[]> => (await lookup(host, { all: true })).map((a) => a.address);

export class BlockProtect {
  private readonly fixed: ProtectedNet[];
  private cached: { at: number; list: ProtectedNet[] } | undefined;
  private pending: Promise<ProtectedNet[]> | undefined;
  private readonly refreshMs: number;

  constructor(private readonly opts: BlockProtectOptions = {}) {
    this.fixed = parseProtectCidrs(opts.cidrs ?? []);
    this.refreshMs = opts.refreshMs ?? 30_000;
  }

  /** Everything protected now (computed at most every refreshMs). */
  async list(): Promise<ProtectedNet[]> {
    if (this.cached && Date.now() - this.cached.at < this.refreshMs) return this.cached.list;
    this.pending ??= this.compute().then((list) => {
      this.cached = { at: Date.now(), list };
      this.pending = undefined;
      return list;
    });
    return this.pending;
  }

  /** Why `ip` must not be blocked ("10.0.0.2 is a DNS resolver (/etc/resolv.conf)"), if it must not. */
  async refusal(ip: string): Promise<string | undefined> {
    const p = parseIp(ip);
    if (!p) return undefined;
    const hit = (await this.list()).find((n) => netContains(n.net, p));
    return hit ? `${ip} is ${hit.why}: never blocked` : undefined;
  }

  private async compute(): Promise<ProtectedNet[]> {
    const out: ProtectedNet[] = [...this.fixed];
    const add = (ip: string, why: string): void => {
      const c = canonicalIp(ip);
      if (!c) return;
      const net = parseNet(c);
      if (net) out.push({ cidr: c, net, why });
    };
    const addHost = async (host: string, why: string): Promise<void> => {
      if (canonicalIp(host)) return add(host, why);
      try {
        for (const a of await (this.opts.resolveName ?? defaultResolve)(host)) add(a, `${why} (${host})`);
      } catch (e) {
        this.fail(`the address of ${host} (${why})`, e);
      }
    };
    const ns = this.opts.netns;

    // Resolvers.
    const hostFiles = this.opts.resolvFiles ?? hostResolvFiles();
    // `ip netns exec` gives a namespace without a file of its own the host's.
    const own = ns ? readResolvers([`/etc/netns/${ns}/resolv.conf`]) : [];
    if (own.length > 0) for (const r of own) add(r, `a DNS resolver (/etc/netns/${ns}/resolv.conf)`);
    else for (const f of hostFiles) for (const r of readResolvers([f])) add(r, `a DNS resolver (${f})`);

    // Gateways and the node's own addresses.
    try {
      if (ns) {
        for (const fam of ['-4', '-6']) {
          const routes = JSON.parse(await run('ip', ['-n', ns, '-j', fam, 'route', 'show', 'default'])) as Array<{ gateway?: string }>;
          for (const r of routes) if (r.gateway) add(r.gateway, 'a default gateway');
        }
        const links = JSON.parse(await run('ip', ['-n', ns, '-j', 'addr', 'show'])) as Array<{ addr_info?: Array<{ local?: string }> }>;
        for (const l of links) for (const a of l.addr_info ?? []) if (a.local) add(a.local, 'an address of this node');
      } else {
        const dir = this.opts.procNet ?? '/proc/net';
        for (const g of parseProcNetRoute(readQuiet(`${dir}/route`))) add(g, 'a default gateway');
        for (const g of parseProcNetIpv6Route(readQuiet(`${dir}/ipv6_route`))) add(g, 'a default gateway');
        for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) add(a.address, 'an address of this node');
      }
    } catch (e) {
      this.fail(`the routes and addresses${ns ? ` of network namespace ${ns}` : ''}`, e);
    }

    // The Kubernetes API.
    const env = this.opts.env ?? process.env;
    if (env.KUBERNETES_SERVICE_HOST) await addHost(env.KUBERNETES_SERVICE_HOST, 'the Kubernetes API (KUBERNETES_SERVICE_HOST)');
    const server = this.opts.kubeApiServer?.();
    const serverHost = server ? urlHost(server) : undefined;
    if (serverHost) await addHost(serverHost, "the Kubernetes API (the kubeconfig's server)");
    if (this.opts.kubeEndpoints) {
      try {
        for (const a of await this.opts.kubeEndpoints()) add(a, 'the Kubernetes API (the kubernetes endpoints)');
      } catch (e) {
        this.fail('the kubernetes endpoints', e);
      }
    }

    // Where the alerts go.
    // (Named by the output, never by its URL: a Slack webhook's path is its secret.)
    for (const { output, url } of this.opts.outputs ?? []) {
      const h = urlHost(url);
      if (h) await addHost(h, `where the ${output} output sends alerts`);
    }
    return out;
  }

  private fail(what: string, e: unknown): void {
    this.opts.onError?.(what, e instanceof Error ? e.message : String(e));
  }
}

function readQuiet(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
