/**
 * `block_destination`: stop this host (and the containers it forwards for) from reaching an
 * address, for a while: the mining pool a process connected to, on hosts without Kubernetes.
 *
 * minewatch owns one nftables table and touches nothing else:
 *
 *   table inet minewatch {
 *     set blocked4 { type ipv4_addr; flags timeout; }      # each element has its own TTL
 *     set blocked6 { type ipv6_addr; flags timeout; }
 *     chain output  { type filter hook output  priority filter; policy accept;
 *                     ip daddr @blocked4 counter drop; ip6 daddr @blocked6 counter drop }
 *     chain forward { … the same, for containers behind a bridge … }
 *   }
 *
 * The table is created idempotently, in one nft transaction (sets kept, the chains' rules
 * rewritten), the first time an address is blocked and again whenever the table has vanished
 * (a `nft flush ruleset` elsewhere). Blocking an address that is already blocked restarts its TTL.
 * Elements expire in the kernel: nothing to clean up when minewatch is not running.
 *
 * Everything goes through the `nft` command (`nft -f -` for changes, `nft -j list set` to read),
 * optionally inside a network namespace (`ip netns exec NS nft …`): nftables tables are per network
 * namespace, which is how the tests stay off the host's firewall.
 */
import { spawn } from 'node:child_process';
import { formatIpv6Bigint, netContains, parseIp, parseNet, type IpNet } from '../platform/ip.js';
import { BlockProtect } from './block-protect.js';
import { Safety } from './safety.js';
import type { ActionOutcome, ActionRequest, ActionResult, ResponseAction } from './types.js';

export const DEFAULT_BLOCK_TTL_S = 3600;
export const NFT_TABLE = 'minewatch';

/** Never blocked, whatever asks: this host, "any", link-local (cloud metadata, neighbours), multicast, broadcast. */
export const NEVER_BLOCK_CIDRS: readonly string[] = [
  '0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32',
  '::/128', '::1/128', 'fe80::/10', 'ff00::/8',
];
const NEVER_BLOCK_NETS: ReadonlyArray<{ cidr: string; net: IpNet }> = NEVER_BLOCK_CIDRS.map((cidr) => ({ cidr, net: parseNet(cidr)! }));

export interface BlockDestinationOptions {
  /** How long an address stays blocked (default 3600 s: the `response.block_ttl_s` setting). */
  ttlSeconds?: number;
  /** The nft command (default ['nft']). */
  nft?: readonly string[];
  /** Run nft inside this network namespace (`ip netns exec NS nft …`). */
  netns?: string;
  /** The table's name in the inet family (default 'minewatch'). */
  table?: string;
  /**
   * What else is never blocked, computed from the host (resolvers, gateways, the node's addresses,
   * the Kubernetes API, the alert outputs, response.block_protect): default, the host's (or the
   * `netns` namespace's) without config. `false`: none (tests that block documentation addresses
   * only).
   */
  protectList?: BlockProtect | false;
  /** Safety checks on the process that asked (allow-list, the agent): default no allow-list. */
  safety?: Safety;
  /** Kill an nft command that takes longer than this (default 10000 ms). */
  commandTimeoutMs?: number;
}

export interface BlockedEntry {
  ip: string;
  family: 'ipv4' | 'ipv6';
  /** The TTL it was added with, s. */
  timeoutS?: number;
  /** Seconds left. */
  expiresS?: number;
}

/** An nft command that failed: its stderr, and whether it said the object does not exist. */
export class NftError extends Error {
  constructor(message: string, readonly stderr: string, readonly notFound: boolean, readonly missingCommand = false) {
    super(message);
    this.name = 'NftError';
  }
}

/** The address in nft's canonical text form, with its family; undefined when it is not an address. */
export function normalizeAddress(ip: string): { ip: string; v6: boolean } | undefined {
  const p = parseIp(ip.trim());
  if (!p) return undefined;
  if (!p.v6) return { ip: [24, 16, 8, 0].map((s) => (p.n4 >>> s) & 255).join('.'), v6: false };
  return { ip: formatIpv6Bigint(p.n), v6: true };
}

export class BlockDestinationAction implements ResponseAction {
  readonly name = 'block_destination' as const;
  readonly ttlSeconds: number;
  readonly table: string;
  private readonly cmd: string[];
  private readonly safety: Safety;
  private readonly timeoutMs: number;
  private readonly protect: BlockProtect | undefined;
  private ensured = false;

  constructor(opts: BlockDestinationOptions = {}) {
    this.ttlSeconds = opts.ttlSeconds ?? DEFAULT_BLOCK_TTL_S;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds <= 0) throw new Error(`block_destination: ttlSeconds must be a positive integer, not ${this.ttlSeconds}`);
    this.table = opts.table ?? NFT_TABLE;
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(this.table)) throw new Error(`block_destination: not a table name: ${this.table}`);
    const nft = [...(opts.nft ?? ['nft'])];
    this.cmd = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...nft] : nft;
    this.safety = opts.safety ?? new Safety();
    this.timeoutMs = opts.commandTimeoutMs ?? 10_000;
    this.protect = opts.protectList === false ? undefined : (opts.protectList ?? new BlockProtect({ netns: opts.netns }));
  }

  /** Run nft with args, feeding stdin; resolves with stdout. */
  private nft(args: string[], input?: string): Promise<string> {
    const [bin, ...pre] = this.cmd;
    return new Promise((resolve, reject) => {
      const child = spawn(bin!, [...pre, ...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout: this.timeoutMs });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', (e: NodeJS.ErrnoException) => {
        const missing = e.code === 'ENOENT';
        reject(new NftError(missing ? `${bin}: command not found (install nftables)` : `${bin}: ${e.message}`, '', false, missing));
      });
      child.on('close', (code, signal) => {
        if (code === 0) return resolve(out);
        const text = err.trim();
        // nft's own complaints say "Error: …" (after "/dev/stdin:L:C:" for -f); `ip netns exec`
        // says "exec of "nft" failed" when there is no nft to run.
        const notFound = /Error:.*(No such file or directory|does not exist)/.test(text);
        const missing = code === 127 || /exec of .* failed: No such file/.test(text);
        const what = missing ? `${bin === 'ip' ? pre[pre.length - 1] : bin}: command not found (install nftables)` : [bin, ...pre, ...args].join(' ');
        reject(new NftError(`${what}: ${signal ? `killed by ${signal}` : `exit ${code}`}${text ? `: ${text.split('\n').join(' | ')}` : ''}`, text, notFound, missing));
      });
      child.stdin.on('error', () => undefined); // nft gone before reading: its exit says why
      child.stdin.end(input ?? '');
    });
  }

  /** The table, its two sets and two chains, created or repaired in one transaction. */
  async ensure(): Promise<void> {
    const t = `inet ${this.table}`;
    const script = [
      `add table ${t}`,
      `add set ${t} blocked4 { type ipv4_addr; flags timeout; }`,
      `add set ${t} blocked6 { type ipv6_addr; flags timeout; }`,
      `add chain ${t} output { type filter hook output priority filter; policy accept; }`,
      `add chain ${t} forward { type filter hook forward priority filter; policy accept; }`,
      `flush chain ${t} output`,
      `flush chain ${t} forward`,
      `add rule ${t} output ip daddr @blocked4 counter drop`,
      `add rule ${t} output ip6 daddr @blocked6 counter drop`,
      `add rule ${t} forward ip daddr @blocked4 counter drop`,
      `add rule ${t} forward ip6 daddr @blocked6 counter drop`,
      '',
    ].join('\n');
    await this.nft(['-f', '-'], script);
    this.ensured = true;
  }

  /** Why an address must not be blocked, if it must not. */
  refusal(ip: string): string | undefined {
    const p = parseIp(ip);
    if (!p) return `not an IP address: ${ip}`;
    const hit = NEVER_BLOCK_NETS.find((n) => netContains(n.net, p));
    return hit ? `${ip} is in a range never blocked (${hit.cidr})` : undefined;
  }

  /**
   * Why an address must not be blocked, the computed list included (a resolver, a gateway, …), if
   * it must not.
   */
  async protectedReason(ip: string): Promise<string | undefined> {
    return this.refusal(ip) ?? (await this.protect?.refusal(ip));
  }

  /** Block an address for ttlSeconds (restarting its TTL when it is already blocked). */
  async block(ip: string, ttlSeconds = this.ttlSeconds): Promise<{ ip: string; set: string; ttlSeconds: number }> {
    const a = normalizeAddress(ip);
    if (!a) throw new Error(`not an IP address: ${ip}`);
    const why = await this.protectedReason(a.ip);
    if (why) throw new Error(`not blocked: ${why}`);
    if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new Error(`the TTL must be a positive number of seconds, not ${ttlSeconds}`);
    const set = a.v6 ? 'blocked6' : 'blocked4';
    const el = `inet ${this.table} ${set} { ${a.ip} timeout ${ttlSeconds}s }`;
    // add (so the delete cannot fail), delete, add with the new TTL: one transaction, no gap.
    const script = `add element ${el}\ndelete element inet ${this.table} ${set} { ${a.ip} }\nadd element ${el}\n`;
    if (!this.ensured) await this.ensure();
    try {
      await this.nft(['-f', '-'], script);
    } catch (e) {
      if (!(e instanceof NftError) || !e.notFound) throw e;
      // The table went away under us (a ruleset flush): make it again, once.
      await this.ensure();
      await this.nft(['-f', '-'], script);
    }
    return { ip: a.ip, set, ttlSeconds };
  }

  /** Remove an address; false when it was not blocked. */
  async unblock(ip: string): Promise<boolean> {
    const a = normalizeAddress(ip);
    if (!a) throw new Error(`not an IP address: ${ip}`);
    const set = a.v6 ? 'blocked6' : 'blocked4';
    try {
      await this.nft(['-f', '-'], `delete element inet ${this.table} ${set} { ${a.ip} }\n`);
      return true;
    } catch (e) {
      if (e instanceof NftError && e.notFound) return false;
      throw e;
    }
  }

  /** Every blocked address with its TTL and time left; [] when the table does not exist. */
  async list(): Promise<BlockedEntry[]> {
    const out: BlockedEntry[] = [];
    for (const [set, family] of [['blocked4', 'ipv4'], ['blocked6', 'ipv6']] as const) {
      let text: string;
      try {
        text = await this.nft(['-j', 'list', 'set', 'inet', this.table, set]);
      } catch (e) {
        if (e instanceof NftError && e.notFound) continue;
        throw e;
      }
      out.push(...parseNftSetJson(text, family));
    }
    return out;
  }

  /** Delete minewatch's table and everything in it (`minewatch response blocked --flush`, tests). */
  async removeTable(): Promise<boolean> {
    this.ensured = false;
    try {
      await this.nft(['delete', 'table', 'inet', this.table]);
      return true;
    } catch (e) {
      if (e instanceof NftError && e.notFound) return false;
      throw e;
    }
  }

  async run(req: ActionRequest): Promise<ActionResult> {
    const result = (outcome: ActionOutcome, reason: string): ActionResult => ({ request: req, outcome, reason });
    const remote = req.target.remote;
    if (!remote?.ip) return result('failed', 'no destination address in the request');
    const a = normalizeAddress(remote.ip);
    if (!a) return result('failed', `not an IP address: ${remote.ip}`);
    const never = await this.protectedReason(a.ip);
    if (never) return result('spared', never);
    // The process may be long gone (it only had to connect): what applies to it is checked if it
    // is still there, the request's own facts (allow-listed image, namespace, exe) either way.
    const { reason } = this.safety.check(req.target);
    if (reason) return result('spared', reason);
    const set = a.v6 ? 'blocked6' : 'blocked4';
    const what = `${a.ip} to nftables set inet ${this.table} ${set} for ${this.ttlSeconds} s`;
    if (req.mode !== 'enforce') return result('dryrun', `would add ${what}`);
    try {
      await this.block(a.ip);
      return result('done', `added ${what}`);
    } catch (e) {
      return result('failed', e instanceof Error ? e.message : String(e));
    }
  }
}

/** The elements of `nft -j list set` output. */
export function parseNftSetJson(text: string, family: 'ipv4' | 'ipv6'): BlockedEntry[] {
  const out: BlockedEntry[] = [];
  let doc: { nftables?: Array<Record<string, unknown>> };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return out;
  }
  for (const item of doc.nftables ?? []) {
    const set = item.set as { elem?: unknown[] } | undefined;
    for (const e of set?.elem ?? []) {
      if (typeof e === 'string') out.push({ ip: e, family });
      else if (e && typeof e === 'object' && 'elem' in e) {
        const x = (e as { elem: { val?: unknown; timeout?: unknown; expires?: unknown } }).elem;
        if (typeof x.val !== 'string') continue;
        const entry: BlockedEntry = { ip: x.val, family };
        if (typeof x.timeout === 'number') entry.timeoutS = x.timeout;
        if (typeof x.expires === 'number') entry.expiresS = x.expires;
        out.push(entry);
      }
    }
  }
  return out;
}
