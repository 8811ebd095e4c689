/**
 * Outbound TCP and UDP connections, attributed to their process, from /proc.
 *
 * A poller, not a syscall hook: every `intervalMs` it reads the socket tables of every network
 * namespace on the node (/proc/<one pid of the namespace>/net/{tcp,tcp6,udp,udp6}), picks the
 * sockets that are new and outbound, finds the process that holds each one (the /proc/PID/fd
 * link "socket:[inode]") and emits one `connect` event per socket, in Falco's shape, so the pool
 * rules (fd.sip, fd.sport, fd.sip.name) work on it unchanged.
 *
 * Outbound means:
 *  - TCP: a socket whose local port is not a listening port of its namespace (an accepted socket
 *    shares the listener's port), in SYN_SENT or ESTABLISHED, or in a closing state that still
 *    has an owner (FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING): a short connection that is
 *    already being torn down when the poll looks is still reported, as long as some process holds
 *    its fd. A connection opened and closed entirely between two polls is missed: once its fd is
 *    closed the kernel keeps it (TIME_WAIT) without an inode, so no process can be named. That is
 *    the limit of any poller; a miner holds its pool connection for hours.
 *  - UDP: a connected socket (connect(2) on a datagram socket), i.e. one with a remote address.
 *    Unconnected sendto(2) traffic has no remote address in the table and is not seen.
 * A socket is classified when first seen: an accepted socket stays "server" even if its listener
 * closes later. Sockets that existed before the source started are reported on the first poll
 * (a miner connected before the agent started is still a miner).
 *
 * Each socket is reported once, keyed on (namespace, inode), until it disappears from the table.
 *
 * Cost control:
 *  - Walking a namespace's TCP tables visits every bucket of the node-wide established hash
 *    (~2.2 ms per file with the 262144 buckets of a 23 GB machine; it grows with RAM) whatever the number of sockets. So the TCP
 *    tables of a namespace are walked only when its Tcp ActiveOpens counter (/proc/PID/net/snmp,
 *    a few µs) has moved since the last walk — every connect(2) moves it — while one of its
 *    sockets still awaits an owner, and every `tcpFullReadMs` as a safety net. UDP tables are
 *    small and read every poll. Reads skip the seq_file's extra end-of-file walk (readSeqFd).
 *  - Each namespace's files (snmp, tcp, tcp6, udp, udp6) are held open and re-read from offset 0
 *    (netns-files.ts): opening a /proc/PID/net file anew costs as much as reading it, and the
 *    held file needs no check that its pid is still in the namespace. They are reopened every
 *    `tcpFullReadMs`, and closed once the namespace has no live pid left.
 *  - Finding a socket's owner means reading fd links. Owners are cached (inode → pid, fd) and
 *    checked with one readlink before use; a namespace's pids are scanned only for inodes not
 *    seen before, new pids first, then pids known to own sockets, then the least recently
 *    scanned; at most `maxFdLinksPerPoll` links are read per poll (the rest continue on the next
 *    poll). An inode still unattributed after `giveUpPolls` is counted in `stats.unattributed`
 *    and dropped (e.g. a socket passed to a process in another namespace).
 */
import { PollLoop } from './poll-loop.js';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { ContainerInfo, Event, FdInfo, ProcessInfo, SyscallEvent } from '../events.js';
import { NetnsIndex } from './netns.js';
import { NetnsFiles } from './netns-files.js';
import { parseHexIp } from '../platform/ip.js';
import type { Source } from './types.js';

// ---- address parsing ---------------------------------------------------------------------------

const isLoopback = (ip: string): boolean => ip.startsWith('127.') || ip === '::1';

// ---- socket tables -----------------------------------------------------------------------------

/** TCP states as /proc/net/tcp numbers them (include/net/tcp_states.h). */
export const TcpState = {
  ESTABLISHED: 0x01, SYN_SENT: 0x02, SYN_RECV: 0x03, FIN_WAIT1: 0x04, FIN_WAIT2: 0x05,
  TIME_WAIT: 0x06, CLOSE: 0x07, CLOSE_WAIT: 0x08, LAST_ACK: 0x09, LISTEN: 0x0a, CLOSING: 0x0b,
  NEW_SYN_RECV: 0x0c,
} as const;

/** States of a connecting or connected client socket that may still have an owner. */
const CLIENT_STATES = new Set<number>([
  TcpState.ESTABLISHED, TcpState.SYN_SENT, TcpState.FIN_WAIT1, TcpState.FIN_WAIT2,
  TcpState.CLOSE_WAIT, TcpState.LAST_ACK, TcpState.CLOSING,
]);

export interface SockEntry {
  proto: 'tcp' | 'udp';
  /** Addresses as the table prints them (hex); decoded only for sockets that get reported. */
  localHex: string;
  localPort: number;
  remoteHex: string;
  remotePort: number;
  state: number;
  /** Socket inode; 0 for sockets no process holds (TIME_WAIT, orphans, request socks). */
  inode: number;
}

/** Parse one /proc/net/{tcp,tcp6,udp,udp6} file. Malformed lines are skipped. */
export function parseSockTable(text: string, proto: 'tcp' | 'udp'): SockEntry[] {
  const out: SockEntry[] = [];
  const lines = text.split('\n');
  // Line 0 is the header ("sl local_address rem_address st ...").
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = f[1]!;
    const remote = f[2]!;
    const lc = local.indexOf(':');
    const rc = remote.indexOf(':');
    if (lc < 0 || rc < 0) continue;
    const inode = Number(f[9]);
    const state = parseInt(f[3]!, 16);
    if (!Number.isFinite(inode) || Number.isNaN(state)) continue;
    out.push({
      proto,
      localHex: local.slice(0, lc),
      localPort: parseInt(local.slice(lc + 1), 16),
      remoteHex: remote.slice(0, rc),
      remotePort: parseInt(remote.slice(rc + 1), 16),
      state,
      inode,
    });
  }
  return out;
}

/**
 * Tcp ActiveOpens from /proc/PID/net/snmp: the namespace's count of connect(2) calls on TCP
 * sockets (IPv4 and IPv6 alike). It only grows, so an unchanged value means no new outbound TCP
 * socket since it was last read, and the expensive TCP tables need not be walked again.
 */
export function parseActiveOpens(text: string): number | undefined {
  // A newline in front, so the "Tcp:" lines are found even when first in the text.
  const snmp = '\n' + text;
  const first = snmp.indexOf('\nTcp: ');
  if (first < 0) return undefined;
  const second = snmp.indexOf('\nTcp: ', first + 1);
  if (second < 0) return undefined;
  const names = snmp.slice(first + 6, snmp.indexOf('\n', first + 1)).split(' ');
  const end = snmp.indexOf('\n', second + 1);
  const values = snmp.slice(second + 6, end < 0 ? undefined : end).split(' ');
  const i = names.indexOf('ActiveOpens');
  const v = i >= 0 ? Number(values[i]) : NaN;
  return Number.isFinite(v) ? v : undefined;
}

// ---- the source --------------------------------------------------------------------------------

export interface ConnectionsOptions {
  /** Poll interval in ms (default 250: a connection is reported well within a second). */
  intervalMs?: number;
  /**
   * The interval once IDLE_AFTER_POLLS polls in a row found nothing new (no socket first seen, no
   * connect counted, no socket awaiting its owner), ms (default 1000; at most intervalMs: never
   * idle). A poll that finds something, or a process notice (activity(): an exec, which is how
   * most connections begin), brings back intervalMs. At idle the poller was most of the proc
   * connector's cost (issue 16: some 0.25% of a core of its 0.55%).
   */
  idleIntervalMs?: number;
  /** Where procfs is mounted (default /proc). */
  procRoot?: string;
  /** Leave out connections whose both ends are loopback (default false: report all; rules decide). */
  skipLoopback?: boolean;
  /** Read the UDP tables too (default true). */
  udp?: boolean;
  /** At most this many fd links (readdir entries + readlinks) read per poll to find owners (default 5000). */
  maxFdLinksPerPoll?: number;
  /** Polls after which an inode whose owner was not found is given up (default 20, 5 s at 250 ms). */
  giveUpPolls?: number;
  /**
   * A namespace's TCP tables are walked when its Tcp ActiveOpens counter moved, while one of its
   * sockets awaits an owner, and at least this often regardless, ms (default 30000: a safety net
   * should the counter not be readable or not tell). The namespace's held files are reopened as
   * often.
   */
  tcpFullReadMs?: number;
  /** Every pid's network namespace is read again within this long, a share at each poll, ms (default 300000; new and reused pids are read at once). */
  netnsRevalidateMs?: number;
  /**
   * List /proc at most this often while no socket awaits its owner, ms (default 1000). A socket
   * that does get the listing at its next poll; a network namespace new since the last listing
   * is found up to this much later.
   */
  listMinMs?: number;
  /** Called with unexpected errors; the source keeps polling. */
  onError?: (err: unknown) => void;
}

export interface ConnectionsStats {
  polls: number;
  events: number;
  /** Outbound sockets given up because no owner was found in time. */
  unattributed: number;
  /** Network namespaces read in the last poll. */
  netns: number;
  /** Polls at the idle interval (idleIntervalMs). */
  idlePolls: number;
  /** TCP table walks (tcp + tcp6 of one namespace) done, and skipped because ActiveOpens had not moved. */
  tcpReads: number;
  tcpSkips: number;
  /** fd links read since start, and in the last poll. */
  fdLinks: number;
  lastPollFdLinks: number;
  /** Duration of the last poll and of the slowest poll, ms. */
  lastPollMs: number;
  maxPollMs: number;
}

type SockStatus =
  | 'reported'
  /** Listener or accepted socket: never reported. */
  | 'server'
  /** Loopback-to-loopback while skipLoopback is set. */
  | 'skipped'
  /** Outbound, owner not found in time. */
  | 'lost';

interface Decided {
  status: SockStatus;
  proto: 'tcp' | 'udp';
}

interface Pending {
  entry: SockEntry;
  firstPoll: number;
}

interface NsState {
  /** The pid whose /proc/PID/net was opened last time; tried first. */
  rep?: number;
  /** The namespace's tables, held open (netns-files.ts). */
  files?: NetnsFiles;
  /** Final decisions per inode; sockets in no final state are re-examined each poll. */
  decided: Map<number, Decided>;
  pending: Map<number, Pending>;
  /** pid → poll number of its last fd scan. */
  scannedAt: Map<number, number>;
  /** Tcp ActiveOpens as read just before the last TCP walk, and when (ms). */
  activeOpens?: number;
  lastTcpRead: number;
}

interface Tables {
  entries: SockEntry[];
  tcp: boolean;
  udp: boolean;
}

interface Owner {
  pid: number;
  fd: number;
  ns: string;
  proto: 'tcp' | 'udp';
}

function epochNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

function readComm(procRoot: string, pid: number): string {
  try {
    return readFileSync(`${procRoot}/${pid}/comm`, 'latin1').replace(/\n$/, '');
  } catch {
    return '';
  }
}

/** Polls in a row that find nothing new before the poller slows to idleIntervalMs (2 s at 250 ms). */
export const IDLE_AFTER_POLLS = 8;

export class ConnectionsSource implements Source {
  readonly name = 'connections';
  private readonly intervalMs: number;
  private readonly idleIntervalMs: number;
  /** Polls in a row that found nothing new; past IDLE_AFTER_POLLS the loop runs at idleIntervalMs. */
  private quietPolls = 0;
  /** Sockets first seen, and connects counted (ActiveOpens moved), in the poll under way. */
  private fresh = 0;
  private readonly procRoot: string;
  private readonly skipLoopback: boolean;
  private readonly udp: boolean;
  private readonly maxFdLinks: number;
  private readonly giveUpPolls: number;
  private readonly tcpFullReadMs: number;
  private readonly onError: (err: unknown) => void;
  private readonly index: NetnsIndex;
  private readonly ns = new Map<string, NsState>();
  /** Socket inode → who holds it; inodes are unique across namespaces (one sockfs). */
  private readonly owners = new Map<number, Owner>();
  private emit?: (ev: Event) => void;
  private loop: PollLoop | undefined;
  private seq = 0;
  private pollNo = 0;
  private budget = 0;
  readonly stats: ConnectionsStats = {
    polls: 0, events: 0, unattributed: 0, netns: 0, idlePolls: 0, tcpReads: 0, tcpSkips: 0, fdLinks: 0, lastPollFdLinks: 0,
    lastPollMs: 0, maxPollMs: 0,
  };

  constructor(
    private readonly lookup: (pid: number) => ProcessInfo | undefined,
    private readonly containerOf: (pid: number) => ContainerInfo | undefined,
    opts: ConnectionsOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 250;
    this.idleIntervalMs = Math.max(this.intervalMs, opts.idleIntervalMs ?? 1000);
    this.procRoot = opts.procRoot ?? '/proc';
    this.skipLoopback = opts.skipLoopback ?? false;
    this.udp = opts.udp ?? true;
    this.maxFdLinks = opts.maxFdLinksPerPoll ?? 5000;
    this.giveUpPolls = opts.giveUpPolls ?? 20;
    this.tcpFullReadMs = opts.tcpFullReadMs ?? 30_000;
    this.onError = opts.onError ?? (() => {});
    this.index = new NetnsIndex({ procRoot: this.procRoot, revalidateMs: opts.netnsRevalidateMs, listMinMs: opts.listMinMs });
  }

  /** Polls once at once (existing connections are reported), then every intervalMs. */
  async start(emit: (ev: Event) => void): Promise<void> {
    if (this.loop?.running) return;
    this.emit = emit;
    this.loop = new PollLoop(() => this.poll(), this.intervalMs);
    this.loop.start();
    if (this.stats.netns === 0) {
      await this.stop();
      throw new Error(`connections: no socket table readable under ${this.procRoot}/PID/net; is procfs mounted there?`);
    }
  }

  async stop(): Promise<void> {
    this.loop?.stop();
    for (const st of this.ns.values()) {
      st.files?.close();
      st.files = undefined;
    }
  }

  /** Something happened on the host (an exec): back to the short interval, the next poll within it. */
  activity(): void {
    if (!this.idle) return;
    this.quietPolls = 0;
    this.loop?.setIntervalMs(this.intervalMs);
    this.loop?.hurry(this.intervalMs);
  }

  /** Polling at idleIntervalMs. */
  get idle(): boolean {
    return this.quietPolls >= IDLE_AFTER_POLLS && this.idleIntervalMs > this.intervalMs;
  }

  /** After a poll: idle after IDLE_AFTER_POLLS quiet ones, busy again after any other. */
  private pace(busy: boolean): void {
    if (this.idle) this.stats.idlePolls++;
    this.quietPolls = busy ? 0 : this.quietPolls + 1;
    this.loop?.setIntervalMs(this.idle ? this.idleIntervalMs : this.intervalMs);
  }

  /** Whether an outbound socket still awaits its owner in some namespace. */
  private awaitingOwner(): boolean {
    for (const st of this.ns.values()) if (st.pending.size > 0) return true;
    return false;
  }

  /** One poll: every namespace's tables, new outbound sockets, owners, events. Public for tests and tools. */
  poll(): void {
    const t0 = performance.now();
    this.pollNo++;
    this.fresh = 0;
    const eventsBefore = this.stats.events;
    this.budget = this.maxFdLinks;
    const linksBefore = this.stats.fdLinks;
    const awaiting = this.awaitingOwner();
    try {
      // Fresh pids only when a socket awaits its owner (a new process may hold it).
      const groups = this.index.refresh(awaiting);
      /** Per namespace, which tables were read, and the inet inodes they hold. */
      const read = new Map<string, { tcp: boolean; udp: boolean; inodes: Set<number> }>();
      for (const [ns, pids] of groups) {
        let st = this.ns.get(ns);
        if (!st) this.ns.set(ns, (st = { decided: new Map(), pending: new Map(), scannedAt: new Map(), lastTcpRead: -Infinity }));
        const tables = this.readTables(ns, st, pids, t0);
        if (!tables) continue;
        const inodes = new Set<number>();
        read.set(ns, { tcp: tables.tcp, udp: tables.udp, inodes });
        try {
          this.processNs(ns, st, pids, tables, inodes);
        } catch (e) {
          this.onError(e);
        }
      }
      // A namespace with no live pid left: its files are all that keeps it alive.
      for (const [ns, st] of this.ns) {
        if (groups.has(ns)) continue;
        st.files?.close();
        this.ns.delete(ns);
      }
      for (const [inode, o] of this.owners) {
        // Forget owners of sockets gone from a table read this poll, and of namespaces that are gone.
        const r = read.get(o.ns);
        if (!groups.has(o.ns) || (r && r[o.proto] && !r.inodes.has(inode))) this.owners.delete(inode);
      }
      this.stats.netns = read.size;
    } catch (e) {
      this.onError(e);
    }
    this.stats.polls++;
    this.pace(awaiting || this.awaitingOwner() || this.fresh > 0 || this.stats.events > eventsBefore);
    this.stats.lastPollFdLinks = this.stats.fdLinks - linksBefore;
    const ms = performance.now() - t0;
    this.stats.lastPollMs = ms;
    if (ms > this.stats.maxPollMs) this.stats.maxPollMs = ms;
  }

  /**
   * Read the namespace's tables through its held files (netns-files.ts): UDP always (its hash is
   * small), TCP only when ActiveOpens says there may be something new (see tcpFullReadMs).
   */
  private readTables(ns: string, st: NsState, pids: number[], nowMs: number): Tables | undefined {
    const files = this.filesOf(ns, st, pids, nowMs);
    if (!files) return undefined;
    try {
      let opens: number | undefined;
      try {
        opens = parseActiveOpens(files.read('snmp'));
      } catch {
        opens = undefined;
      }
      let pendingTcp = false;
      for (const p of st.pending.values()) if (p.entry.proto === 'tcp') pendingTcp = true;
      // A connect counted since the last walk (not the first reading): something is going on.
      if (opens !== undefined && st.activeOpens !== undefined && opens !== st.activeOpens) this.fresh++;
      const needTcp = opens === undefined || st.activeOpens === undefined || opens !== st.activeOpens || pendingTcp ||
        nowMs - st.lastTcpRead >= this.tcpFullReadMs;
      const entries: SockEntry[] = [];
      if (needTcp) {
        // tcp6/udp6 are absent when IPv6 is disabled: read as empty.
        const tcp = files.read('tcp');
        const tcp6 = files.read('tcp6');
        st.activeOpens = opens;
        st.lastTcpRead = nowMs;
        this.stats.tcpReads++;
        for (const e of parseSockTable(tcp, 'tcp')) entries.push(e);
        for (const e of parseSockTable(tcp6, 'tcp')) entries.push(e);
      } else {
        this.stats.tcpSkips++;
      }
      if (this.udp) {
        for (const e of parseSockTable(files.read('udp'), 'udp')) entries.push(e);
        for (const e of parseSockTable(files.read('udp6'), 'udp')) entries.push(e);
      }
      return { entries, tcp: needTcp, udp: this.udp };
    } catch (e) {
      // A held file that fails to read: opened afresh at the next poll.
      files.close();
      st.files = undefined;
      this.onError(e);
      return undefined;
    }
  }

  /**
   * The namespace's held files, opened through one of its pids (the last one used first) when
   * there are none yet, or when they are older than tcpFullReadMs (a pid that moved between
   * namespaces while they were opened is then caught; see netns-files.ts).
   */
  private filesOf(ns: string, st: NsState, pids: number[], nowMs: number): NetnsFiles | undefined {
    if (st.files && nowMs - st.files.openedAt < this.tcpFullReadMs) return st.files;
    st.files?.close();
    st.files = undefined;
    const rep = st.rep;
    const order = rep !== undefined && pids.includes(rep) ? [rep, ...pids.filter((p) => p !== rep)] : pids;
    let tries = 0;
    for (const pid of order) {
      if (++tries > 8) break;
      const files = NetnsFiles.open(this.procRoot, pid, ns, nowMs);
      if (!files) continue;
      st.rep = pid;
      st.files = files;
      return files;
    }
    return undefined;
  }

  private processNs(ns: string, st: NsState, pids: number[], tables: Tables, seen: Set<number>): void {
    const listening = new Set<number>();
    for (const e of tables.entries) if (e.proto === 'tcp' && e.state === TcpState.LISTEN) listening.add(e.localPort);

    for (const e of tables.entries) {
      if (e.inode === 0) continue;
      seen.add(e.inode);
      if (st.decided.has(e.inode)) continue;
      let outbound = false;
      if (e.proto === 'tcp') {
        if (e.state === TcpState.LISTEN || (CLIENT_STATES.has(e.state) && listening.has(e.localPort))) {
          if (!st.pending.delete(e.inode)) this.fresh++;
          st.decided.set(e.inode, { status: 'server', proto: 'tcp' });
          continue;
        }
        outbound = CLIENT_STATES.has(e.state) && e.remotePort !== 0;
      } else {
        outbound = e.state === TcpState.ESTABLISHED && e.remotePort !== 0;
      }
      // Not connected yet (a bound TCP socket, an unconnected UDP socket): looked at again next poll.
      if (!outbound) continue;
      const p = st.pending.get(e.inode);
      if (p) p.entry = e;
      else {
        st.pending.set(e.inode, { entry: e, firstPoll: this.pollNo });
        this.fresh++;
      }
    }
    // Forget sockets gone from the tables read this poll (a table not read says nothing).
    for (const [inode, d] of st.decided) if (tables[d.proto] && !seen.has(inode)) st.decided.delete(inode);
    for (const [inode, p] of st.pending) if (tables[p.entry.proto] && !seen.has(inode)) st.pending.delete(inode);
    if (st.scannedAt.size > 0) {
      const live = new Set(pids);
      for (const pid of st.scannedAt.keys()) if (!live.has(pid)) st.scannedAt.delete(pid);
    }

    if (st.pending.size === 0) return;
    const protoOf = new Map<number, 'tcp' | 'udp'>();
    for (const e of tables.entries) if (e.inode !== 0) protoOf.set(e.inode, e.proto);
    this.resolveOwners(ns, st, pids, protoOf);
    for (const [inode, p] of st.pending) {
      const owner = this.owners.get(inode);
      if (owner) {
        st.pending.delete(inode);
        this.report(st, p.entry, owner);
      } else if (this.pollNo - p.firstPoll >= this.giveUpPolls) {
        st.pending.delete(inode);
        st.decided.set(inode, { status: 'lost', proto: p.entry.proto });
        this.stats.unattributed++;
      }
    }
  }

  /** Fill `owners` for the pending inodes: cached owners first (checked), then fd scans within the budget. */
  private resolveOwners(ns: string, st: NsState, pids: number[], inNs: Map<number, 'tcp' | 'udp'>): void {
    const unresolved = new Set<number>();
    for (const inode of st.pending.keys()) {
      const o = this.owners.get(inode);
      if (o && this.holds(o.pid, o.fd, inode)) continue;
      this.owners.delete(inode);
      unresolved.add(inode);
    }
    if (unresolved.size === 0) return;

    // Scan order: pids never scanned (newest first: a new connection often comes from a new
    // process), then pids known to hold sockets here, then the least recently scanned.
    const ownerPids = new Set<number>();
    for (const o of this.owners.values()) if (o.ns === ns) ownerPids.add(o.pid);
    const rank = (pid: number): number => {
      const at = st.scannedAt.get(pid);
      if (at === undefined) return -2e9 - pid;
      if (at === this.pollNo) return 1e15;
      return (ownerPids.has(pid) ? -1e9 : 0) + at;
    };
    const order = pids.slice().sort((a, b) => rank(a) - rank(b));
    for (const pid of order) {
      if (unresolved.size === 0 || this.budget <= 0) break;
      if (st.scannedAt.get(pid) === this.pollNo) break;
      st.scannedAt.set(pid, this.pollNo);
      this.scanFds(pid, ns, inNs, unresolved);
    }
  }

  /** One readlink: does pid still hold inode at fd? */
  private holds(pid: number, fd: number, inode: number): boolean {
    this.stats.fdLinks++;
    this.budget--;
    try {
      return readlinkSync(`${this.procRoot}/${pid}/fd/${fd}`) === `socket:[${inode}]`;
    } catch {
      return false;
    }
  }

  /** Read a process's fd links; record every socket of this namespace's tables it holds. */
  private scanFds(pid: number, ns: string, inNs: Map<number, 'tcp' | 'udp'>, unresolved: Set<number>): void {
    const dir = `${this.procRoot}/${pid}/fd`;
    let fds: string[];
    try {
      fds = readdirSync(dir);
    } catch {
      return;
    }
    this.budget -= 1;
    this.stats.fdLinks += 1;
    for (const name of fds) {
      this.budget--;
      this.stats.fdLinks++;
      let link: string;
      try {
        link = readlinkSync(`${dir}/${name}`);
      } catch {
        continue;
      }
      if (!link.startsWith('socket:[')) continue;
      const inode = Number(link.slice(8, -1));
      const proto = inNs.get(inode);
      if (proto === undefined) continue;
      // The first holder found wins: after fork(), parent and child share it; either is right.
      if (!this.owners.has(inode)) this.owners.set(inode, { pid, fd: Number(name), ns, proto });
      unresolved.delete(inode);
    }
  }

  private report(st: NsState, e: SockEntry, owner: Owner): void {
    const local = parseHexIp(e.localHex);
    const remote = parseHexIp(e.remoteHex);
    if (this.skipLoopback && isLoopback(local.ip) && isLoopback(remote.ip)) {
      st.decided.set(e.inode, { status: 'skipped', proto: e.proto });
      return;
    }
    st.decided.set(e.inode, { status: 'reported', proto: e.proto });
    const fd: FdInfo = {
      num: owner.fd,
      type: local.v6 || remote.v6 ? 'ipv6' : 'ipv4',
      sockfamily: 'ip',
      l4proto: e.proto,
      cip: local.ip,
      cport: e.localPort,
      sip: remote.ip,
      sport: e.remotePort,
      is_server: false,
      connected: true,
    };
    let proc: ProcessInfo | undefined;
    let container: ContainerInfo | undefined;
    try {
      proc = this.lookup(owner.pid);
      container = this.containerOf(owner.pid);
    } catch (err) {
      this.onError(err);
    }
    const ev: SyscallEvent = {
      source: 'syscall',
      type: 'connect',
      ts: epochNs(),
      num: ++this.seq,
      res: 0,
      // Falco's connect exit arguments: the fd and the connection tuple.
      args: { fd: owner.fd, tuple: `${fd.cip}:${fd.cport}->${fd.sip}:${fd.sport}` },
      proc: proc ?? { pid: owner.pid, name: readComm(this.procRoot, owner.pid) },
      fd,
    };
    if (container) ev.container = container;
    this.stats.events++;
    try {
      this.emit?.(ev);
    } catch (err) {
      this.onError(err);
    }
  }
}
