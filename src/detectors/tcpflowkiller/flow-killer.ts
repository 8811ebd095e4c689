/**
 * tcpflowkiller, as cryptnono has it: kill a process that
 *  - opens an outbound TCP connection to an address in the banned lists (files of one address per
 *    line, `#` comments, found through `banned_ipv4_file_globs`, reloaded when they change), or
 *  - connects to more than `unique_destinations_threshold` distinct (address, port) pairs within
 *    `lookback_duration_seconds`: a scan (miners' botnets spread that way; a pool client does not
 *    do it).
 *
 * It reads `connect` events (the connections source's, or any source's: fd.sip/fd.sport,
 * proc.pid/proc.start_ts) and turns a verdict into an ActionRequest for `kill`. The kill itself
 * (pidfd, start-time check, safety, dryrun) is the KillAction's; `decide` only decides.
 *
 * Like cryptnono:
 *  - a banned address kills whatever range it is in (cryptnono checks the ban list before its
 *    private-address filter); the scan count skips private and special-purpose destinations, by
 *    default the ranges Python's ipaddress calls private (cryptnono's `is_private`) plus CGNAT and
 *    multicast, through `exempt_cidrs`, which the user (and a test) can change;
 *  - connection attempts count, whether or not they succeed (cryptnono hooks tcp_v4_connect's
 *    return, which is before the handshake);
 *  - a process it has acted on is not counted again.
 * Unlike cryptnono, the scan window is `lookback_duration_seconds` (cryptnono's per-destination
 * cache has a fixed 60 s TTL), state is keyed by pid and start time (a reused pid starts afresh),
 * ban-list lines may also be CIDRs and IPv6 addresses, and the files are re-read when they change
 * rather than only at start.
 */
import { type FSWatcher, readFileSync, readdirSync, statSync, watch } from 'node:fs';
import { dirname, isAbsolute, join, resolve as resolvePath, sep } from 'node:path';
import { globToRegExp } from '../../platform/glob.js';
import { type IpNet, netContains, parseIp, parseNet, type ParsedIp } from '../../platform/ip.js';
import type { Event, SyscallEvent } from '../../events.js';
import type { ActionRequest, ActionResult, ResponseAction } from '../../response/types.js';
import { targetOf } from '../../response/target.js';
import { DEFAULT_EXEMPT_CIDRS, type FlowKillerSettings } from './config.js';


/**
 * cryptnono's FlowKiller settings (config.ts, the same names, all optional here: the defaults are
 * cryptnono's) and ours.
 */
export interface TcpFlowKillerOptions extends Partial<Omit<FlowKillerSettings, 'banned_ipv4_file_globs' | 'debug'>> {
  banned_ipv4_file_globs?: readonly string[];
  /** Destinations the scan count skips (default DEFAULT_EXEMPT_CIDRS). Banned addresses are killed in any range. */
  exempt_cidrs?: readonly string[];
  /** dryrun (default): say what would be killed; enforce: kill. */
  mode?: 'dryrun' | 'enforce';
  /** The kill action `handle` runs requests through (decide() alone needs none). */
  kill?: ResponseAction;
  /** Where results of `handle` go (the dispatcher turns them into alerts). */
  onResult?: (r: ActionResult) => void;
  /** Transport protocols looked at (default tcp only, as cryptnono; an event without l4proto counts). */
  protocols?: ReadonlyArray<'tcp' | 'udp'>;
  /** Watch the ban files' folders and reload on change (default true). */
  watch?: boolean;
  /** Wait this long after the last change before reloading (default 200 ms). */
  reloadDebounceMs?: number;
  /** Also re-read the files on this interval, in case a change was not seen (default 60000; 0 turns it off). */
  reloadIntervalMs?: number;
  /** Log lines (default: none). */
  log?: (level: 'info' | 'warn' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
  /** At most this many processes tracked for scans (default 65536; the oldest are dropped first). */
  maxTrackedProcesses?: number;
}

export interface TcpFlowKillerStats {
  connectsChecked: number;
  /** Kill requests, by cryptnono's reason labels. */
  requested: { 'banned-ip': number; scan: number };
  /** Connects skipped by the scan count because their destination is exempt. */
  exempt: number;
  /** Results of `handle`, by outcome. */
  outcomes: Record<string, number>;
  bannedAddresses: number;
  bannedFiles: number;
  /** Lines in the ban files that are neither addresses nor CIDRs. */
  invalidLines: number;
  reloads: number;
  trackedProcesses: number;
}

interface Tracked {
  /** "ip:port" → last seen, ns. */
  dests: Map<string, bigint>;
  last: bigint;
}

const isWild = (s: string): boolean => /[*?[]/.test(s);

/**
 * Expand a file glob (`*`, `?`, `[…]` within one path component; a component starting with '.' is
 * matched only by a pattern that does too, as shells and Python's glob do — so `*` skips the
 * `..data` entries of a Kubernetes ConfigMap mount). Sorted; directories are not returned.
 */
export function expandGlob(pattern: string): string[] {
  const abs = isAbsolute(pattern) ? pattern : resolvePath(pattern);
  const parts = abs.split(sep).filter((p) => p !== '');
  let bases: string[] = [sep];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const next: string[] = [];
    if (!isWild(part)) {
      for (const b of bases) next.push(join(b, part));
    } else {
      const re = globToRegExp(part);
      for (const b of bases) {
        let names: string[];
        try {
          names = readdirSync(b);
        } catch {
          continue;
        }
        for (const n of names) {
          if (n.startsWith('.') && !part.startsWith('.')) continue;
          if (re.test(n)) next.push(join(b, n));
        }
      }
    }
    bases = next;
  }
  return bases
    .filter((p) => {
      try {
        return statSync(p).isFile();
      } catch {
        return false;
      }
    })
    .sort();
}

/** The deepest folder of a glob that has no wildcard: the one to watch for new files. */
export function globBaseDir(pattern: string): string {
  const abs = isAbsolute(pattern) ? pattern : resolvePath(pattern);
  const parts = abs.split(sep);
  const i = parts.findIndex((p) => isWild(p));
  if (i < 0) return dirname(abs);
  return parts.slice(0, i).join(sep) || sep;
}

/** Parse one ban file: addresses (and CIDRs), `#` starting a comment anywhere on a line. */
export function parseBanList(text: string): { addrs: ParsedIp[]; nets: IpNet[]; invalid: string[] } {
  const addrs: ParsedIp[] = [];
  const nets: IpNet[] = [];
  const invalid: string[] = [];
  for (const raw of text.split('\n')) {
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line === '') continue;
    if (line.includes('/')) {
      const n = parseNet(line);
      if (n) nets.push(n);
      else invalid.push(line);
    } else {
      const p = parseIp(line);
      if (p) addrs.push(p);
      else invalid.push(line);
    }
  }
  return { addrs, nets, invalid };
}

const ipKey = (p: ParsedIp): string => (p.v6 ? `6:${p.n.toString(16)}` : `4:${p.n4}`);

export class TcpFlowKiller {
  readonly stats: TcpFlowKillerStats = {
    connectsChecked: 0,
    requested: { 'banned-ip': 0, scan: 0 },
    exempt: 0,
    outcomes: {},
    bannedAddresses: 0,
    bannedFiles: 0,
    invalidLines: 0,
    reloads: 0,
    trackedProcesses: 0,
  };
  readonly lookbackNs: bigint;
  readonly threshold: number;
  private readonly globs: string[];
  private readonly exempt: IpNet[];
  private readonly protocols: Set<string>;
  private readonly opts: TcpFlowKillerOptions;
  private banned = new Set<string>();
  private bannedNets: IpNet[] = [];
  private readonly tracked = new Map<string, Tracked>();
  /** pid:start of processes already acted on → when (ms); they are not counted again for an hour. */
  private readonly acted = new Map<string, number>();
  private watchers = new Map<string, FSWatcher>();
  private debounce: NodeJS.Timeout | undefined;
  private interval: NodeJS.Timeout | undefined;
  private signature = '';
  private closed = false;
  private started = false;
  private reloadWaiters: Array<() => void> = [];

  constructor(opts: TcpFlowKillerOptions = {}) {
    this.opts = opts;
    const lookback = opts.lookback_duration_seconds ?? 30;
    const threshold = opts.unique_destinations_threshold ?? 15;
    if (!(lookback > 0)) throw new Error(`tcpflowkiller: lookback_duration_seconds must be positive, not ${lookback}`);
    if (!Number.isInteger(threshold) || threshold < 0) throw new Error(`tcpflowkiller: unique_destinations_threshold must be a whole number, not ${threshold}`);
    this.lookbackNs = BigInt(Math.round(lookback * 1e9));
    this.threshold = threshold;
    this.globs = [...(opts.banned_ipv4_file_globs ?? [])];
    this.exempt = (opts.exempt_cidrs ?? DEFAULT_EXEMPT_CIDRS).map((c) => {
      const n = parseNet(c);
      if (!n) throw new Error(`tcpflowkiller: exempt_cidrs: not a CIDR: ${c}`);
      return n;
    });
    this.protocols = new Set(opts.protocols ?? ['tcp']);
    this.reload();
  }

  /** Number of banned addresses and networks loaded. */
  get bannedCount(): number {
    return this.banned.size + this.bannedNets.length;
  }

  /** Re-read the ban files now. Returns true when what they say changed. */
  reload(): boolean {
    const files = [...new Set(this.globs.flatMap((g) => expandGlob(g)))];
    const banned = new Set<string>();
    const nets: IpNet[] = [];
    let invalid = 0;
    const sig: string[] = [];
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch (e) {
        this.opts.log?.('warn', 'tcpflowkiller: cannot read a banned addresses file', { file: f, error: (e as Error).message });
        continue;
      }
      sig.push(f, text);
      const parsed = parseBanList(text);
      for (const a of parsed.addrs) banned.add(ipKey(a));
      nets.push(...parsed.nets);
      invalid += parsed.invalid.length;
      if (parsed.invalid.length) this.opts.log?.('warn', 'tcpflowkiller: lines that are not addresses were skipped', { file: f, lines: parsed.invalid.slice(0, 5) });
    }
    const signature = sig.join('\0');
    const changed = signature !== this.signature;
    this.signature = signature;
    this.banned = banned;
    this.bannedNets = nets;
    Object.assign(this.stats, { bannedAddresses: banned.size + nets.length, bannedFiles: files.length, invalidLines: invalid });
    this.stats.reloads++;
    if (changed) this.opts.log?.('info', `tcpflowkiller: banning ${banned.size + nets.length} addresses`, { files });
    if (this.opts.watch !== false && !this.closed && this.started) this.rewatch(files);
    for (const w of this.reloadWaiters.splice(0)) w();
    return changed;
  }

  /** Start watching the ban files' folders (and the interval re-read). */
  start(): void {
    if (this.closed || this.started) return;
    this.started = true;
    const every = this.opts.reloadIntervalMs ?? 60_000;
    if (every > 0) {
      this.interval = setInterval(() => this.reload(), every);
      this.interval.unref();
    }
    if (this.opts.watch !== false) this.rewatch(this.globs.flatMap((g) => expandGlob(g)));
  }

  /** Stop watching. */
  close(): void {
    this.closed = true;
    if (this.interval) clearInterval(this.interval);
    if (this.debounce) clearTimeout(this.debounce);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** Resolves after the next reload (for tests and the CLI). */
  nextReload(): Promise<void> {
    return new Promise((r) => this.reloadWaiters.push(r));
  }

  private scheduleReload(): void {
    if (this.closed) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.reload();
    }, this.opts.reloadDebounceMs ?? 200);
    this.debounce.unref();
  }

  /** Watch the glob base folders and every folder holding a matched file (nearest existing ancestor when missing). */
  private rewatch(files: string[]): void {
    const dirs = new Set<string>();
    for (const g of this.globs) dirs.add(nearestExisting(globBaseDir(g)));
    for (const f of files) dirs.add(dirname(f));
    for (const [d, w] of this.watchers) {
      if (!dirs.has(d)) {
        w.close();
        this.watchers.delete(d);
      }
    }
    for (const d of dirs) {
      if (this.watchers.has(d)) continue;
      try {
        const w = watch(d, { persistent: false }, () => this.scheduleReload());
        w.on('error', () => {
          w.close();
          this.watchers.delete(d);
          this.scheduleReload();
        });
        this.watchers.set(d, w);
      } catch {
        // gone meanwhile: the interval re-read still covers it
      }
    }
  }

  isBanned(p: ParsedIp): boolean {
    if (this.banned.has(ipKey(p))) return true;
    for (const n of this.bannedNets) if (netContains(n, p)) return true;
    return false;
  }

  isExempt(p: ParsedIp): boolean {
    for (const n of this.exempt) if (netContains(n, p)) return true;
    return false;
  }

  /** The verdict on one event: a kill request, or undefined. Synchronous and cheap. */
  decide(event: Event): ActionRequest | undefined {
    if (event.type !== 'connect' || event.source !== 'syscall') return undefined;
    const ev = event as SyscallEvent;
    const fd = ev.fd;
    const proc = ev.proc;
    if (!fd || !proc || fd.is_server || fd.sip === undefined) return undefined;
    if (fd.l4proto !== undefined && !this.protocols.has(fd.l4proto)) return undefined;
    const ip = parseIp(fd.sip);
    if (!ip) return undefined;
    // Now and then forget processes that went quiet, so a long run does not accumulate them.
    if (++this.stats.connectsChecked % 4096 === 0) this.sweep(typeof ev.ts === 'bigint' ? ev.ts : undefined);
    const key = `${proc.pid}:${proc.start_ts ?? ''}`;
    const now = typeof ev.ts === 'bigint' ? ev.ts : BigInt(Date.now()) * 1_000_000n;
    if (this.opts.log_connects) this.opts.log?.('info', 'tcpflowkiller: connect', this.logFields(ev, { destination: `${fd.sip}:${fd.sport ?? ''}` }));
    if (this.acted.has(key)) return undefined;

    if (this.isBanned(ip)) {
      this.markActed(key);
      this.stats.requested['banned-ip']++;
      return this.request(ev, 'banned-ip', { 'banned-ip': fd.sip });
    }
    if (this.isExempt(ip)) {
      this.stats.exempt++;
      return undefined;
    }
    let t = this.tracked.get(key);
    if (!t) {
      t = { dests: new Map(), last: now };
      this.track(key, t);
    } else {
      // Most recent last, so the oldest process is the first one dropped when over the limit.
      this.tracked.delete(key);
      this.tracked.set(key, t);
    }
    t.last = now;
    const dest = `${fd.sip}:${fd.sport ?? 0}`;
    t.dests.delete(dest);
    t.dests.set(dest, now);
    if (t.dests.size > this.threshold) {
      const since = now - this.lookbackNs;
      // Oldest first: stop at the first one still inside the window.
      for (const [d, seen] of t.dests) {
        if (seen >= since) break;
        t.dests.delete(d);
      }
    }
    if (t.dests.size > this.threshold) {
      const dests = [...t.dests.keys()];
      this.tracked.delete(key);
      this.stats.trackedProcesses = this.tracked.size;
      this.markActed(key);
      this.stats.requested.scan++;
      return this.request(ev, 'scan', {
        destinations: dests.length,
        addresses: dests.slice(0, 32).join(' ') + (dests.length > 32 ? ' …' : ''),
        lookback_duration_seconds: Number(this.lookbackNs) / 1e9,
      });
    }
    return undefined;
  }

  /** decide(), then run the request through the kill action; resolves with its result (or undefined). */
  async handle(event: Event): Promise<ActionResult | undefined> {
    const req = this.decide(event);
    if (!req) return undefined;
    if (!this.opts.kill) throw new Error('tcpflowkiller: handle() needs the `kill` option (or use decide())');
    let r: ActionResult;
    try {
      r = await this.opts.kill.run(req);
    } catch (e) {
      r = { request: req, outcome: 'failed', reason: (e as Error).message ?? String(e) };
    }
    this.stats.outcomes[r.outcome] = (this.stats.outcomes[r.outcome] ?? 0) + 1;
    this.opts.log?.(r.outcome === 'done' ? 'info' : 'warn', `tcpflowkiller: ${r.outcome}`, this.logFields(req.event as SyscallEvent, { reason: req.details?.reason, result: r.reason }));
    this.opts.onResult?.(r);
    return r;
  }

  /** Forget processes with no connect inside the window (call now and then; decide() does it as it goes). */
  sweep(nowNs: bigint = BigInt(Date.now()) * 1_000_000n): void {
    const since = nowNs - this.lookbackNs;
    for (const [k, t] of this.tracked) if (t.last < since) this.tracked.delete(k);
    const hourAgo = Date.now() - 3_600_000;
    for (const [k, at] of this.acted) if (at < hourAgo) this.acted.delete(k);
    this.stats.trackedProcesses = this.tracked.size;
  }

  private track(key: string, t: Tracked): void {
    this.tracked.set(key, t);
    const max = this.opts.maxTrackedProcesses ?? 65536;
    if (this.tracked.size > max) {
      this.sweep(t.last);
      while (this.tracked.size > max) this.tracked.delete(this.tracked.keys().next().value as string);
    }
    this.stats.trackedProcesses = this.tracked.size;
  }

  private markActed(key: string): void {
    this.acted.set(key, Date.now());
    if (this.acted.size > 4096) this.acted.delete(this.acted.keys().next().value as string);
  }

  private request(ev: SyscallEvent, reason: 'banned-ip' | 'scan', details: Record<string, string | number>): ActionRequest {
    return {
      action: 'kill',
      target: targetOf(ev),
      trigger: 'tcpflowkiller',
      details: { detector: 'tcpflowkiller', reason, ...details },
      mode: this.opts.mode ?? 'dryrun',
      event: ev,
    };
  }

  private logFields(ev: SyscallEvent | undefined, extra: Record<string, unknown>): Record<string, unknown> {
    const f: Record<string, unknown> = { pid: ev?.proc?.pid, ...extra };
    if (this.opts.log_container_info !== false && ev?.container) f.container = { id: ev.container.id, name: ev.container.name, image: ev.container.image };
    return f;
  }
}

function nearestExisting(dir: string): string {
  let d = dir;
  for (;;) {
    try {
      if (statSync(d).isDirectory()) return d;
    } catch {
      // keep climbing
    }
    const up = dirname(d);
    if (up === d) return d;
    d = up;
  }
}
