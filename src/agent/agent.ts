/**
 * The agent: live sources → process table and DNS enrichment → bounded queue → engine → alerts.
 * Sources never wait for the engine; what does not fit in the queue is dropped and counted.
 */
import type { Config } from '../config/sections.js';
import { DnsCache } from '../enrich/dns.js';
import { UserDb } from '../enrich/users.js';
import { ContainerResolver, DockerClient } from '../enrich/containers.js';
import { ProcessTable } from '../enrich/process-table.js';
import { type Priority, parsePriority, resolveRulesPaths } from '../engine/index.js';
import type { Event, ProcessInfo, SyscallEvent } from '../events.js';
import { ConnectionsSource } from '../sources/connections.js';
import { CpuSampler } from '../sources/cpu-sampler.js';
import { ProcConnectorSource } from '../sources/proc-connector.js';
import { ProcfsPollerSource } from '../sources/procfs-poller.js';
import { AuditLogFollower } from '../sources/k8s-audit-log.js';
import type { K8sConfig } from '../k8s/config.js';
import { EbpfSource, applyKernelExec } from '../sources/ebpf/index.js';
import type { ProcNoticeSource, Source } from '../sources/types.js';
import type { Logger } from './logger.js';
import { PairCounter } from '../web/metrics.js';
import { BoundedQueue } from './queue.js';
import { RulesManager } from './rules-manager.js';
import { rulesReadField } from './rules-read.js';
import { type ExecRecovery, startRecovery } from './recovery-hook.js';
import type { Match } from '../engine/types.js';
import { BlockDestinationAction } from '../response/block-destination.js';
import { BlockProtect, outputDestinations } from '../response/block-protect.js';
import { ResponseDispatcher } from '../response/dispatcher.js';
import { KillContainerAction } from '../response/kill-container.js';
import { KillAction } from '../response/kill.js';
import { AllowList, Safety } from '../response/safety.js';
import { targetOf } from '../response/dispatcher.js';
import { execMatcherFromConfig } from '../response/execwhacker/index.js';
import type { ExecMatcher, MatchResult } from '../response/execwhacker/matcher.js';
import { spareReader } from '../response/execwhacker/readers.js';
import { TcpFlowKiller } from '../response/tcpflowkiller.js';
import type { DetectorsConfig } from '../config/detectors.js';
import { readStartTs } from '../enrich/procfs.js';
import { readFileSync, readdirSync } from 'node:fs';
import { type AgentK8s, agentK8s } from '../k8s/agent-k8s.js';
import { MoneroKiller, RANDOMX_EVENT, RANDOMX_RULE, randomxState } from './randomx.js';
import type { ActionName, ActionRequest, ResponseAction, Target } from '../response/types.js';

/**
 * For the eBPF driver's events: the table's entry replaces the kernel's view of the process only
 * once the table has taken in the same exec (same comm), not while it still holds the forked image;
 * and a command line the table could not read (the process exited first) stays the kernel's.
 */
function preferKernelImage(was: ProcessInfo, now: ProcessInfo): ProcessInfo {
  if (was.name !== now.name) return was;
  if (was.exepath !== undefined && now.exepath === undefined) return { ...now, exe: was.exe, args: was.args, exepath: was.exepath };
  return now;
}

/** Events evaluated per turn of the event loop before yielding to I/O (sources keep reading). */
const BATCH = 512;
/** How often drop counters are checked and, when they moved, reported. */
const DROP_REPORT_MS = 10_000;
/** Longest a connection or CPU event waits for its process's pending notices (enqueueSettled). */
const SETTLE_WAIT_MS = 2_000;

export interface AgentStats {
  driver: string;
  queued: number;
  processed: number;
  alerts: number;
  /** Events refused by the full queue. */
  queueDrops: number;
  /** Notices lost before they reached us (kernel buffer, addon queue). */
  sourceDrops: number;
  /** Events of the agent's own processes, left out. */
  own: number;
  /** Exec events dropped: the process exec'd again through every re-read of its /proc files. */
  unsettledExecs: number;
  /** Exec events emitted for processes found in /proc after drops (mw.exec.recovered). */
  recoveredExecs: number;
  ruleLoads: number;
  ruleReloadsRefused: number;
}

export interface AgentHooks {
  /** Every match (rule matches after the response stage, and response outcomes): the alert pipeline takes them here. */
  onMatch?: (m: Match) => void;
  /**
   * false: no sources of this host (process notices, connections, CPU): `minewatch server` runs
   * the engine only for what its webhooks and log files feed it (k8s_audit, github).
   */
  hostSources?: boolean;
}

/**
 * The execwhacker's kill request for a match: asked for, or reported as spared or missed. `extra`
 * adds to the details (why it was spared, that a rescan found it).
 */
function whackRequest(r: MatchResult, target: Target, extra: Record<string, string | boolean> = {}, event?: Event): ActionRequest {
  return { action: 'kill', target, trigger: 'execwhacker', mode: 'enforce', ...(event ? { event } : {}), details: { config: r.config ?? '', banned: r.banned ?? '', ...extra } };
}

export class Agent {
  readonly rules: RulesManager;
  readonly table: ProcessTable;
  readonly response: ResponseDispatcher;
  /** Pod context and cluster responses (set by start()); empty outside Kubernetes. */
  k8s: AgentK8s = { actions: {} };
  private readonly allow: AllowList;
  /** The dispatcher's actions; the cluster ones join at start(). */
  private readonly actions: Partial<Record<ActionName, ResponseAction>>;
  /** cryptnono's execwhacker: undefined while it is off. Swapped whole on reload. */
  private whacker: ExecMatcher | undefined;
  /** detectors.execwhacker.spare_readers: spare system readers whose banned strings are operands. */
  private spareReaders = false;
  private flowKiller: TcpFlowKiller | undefined;
  /** cryptnono's monero detector: kills what the RandomX rule names; undefined while it is off. */
  private moneroKiller: MoneroKiller | undefined;
  /** The eBPF driver, while it runs (the RandomX detector's events are judged through it). */
  private ebpf: EbpfSource | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private readonly rescanAsked = new Set<string>();
  readonly detectorStats = { checked: 0, kills: 0, spared: { allowed: 0, word_boundary: 0, no_match: 0, reader: 0 } as Record<string, number>, rescans: 0 };
  private readonly queue: BoundedQueue<Event>;
  private readonly dns = new DnsCache();
  /** Host user names for processes only the kernel saw (the eBPF driver's short-lived ones). */
  private readonly users = new UserDb();
  private notices: ProcNoticeSource | undefined;
  private readonly sources: Source[] = [];
  private driver = 'none';
  private draining = false;
  /**
   * False until start() has the cluster actions: webhook routes take events before that (the web
   * server listens first), and a match evaluated earlier would find quarantine_workload missing.
   * Events wait in the queue meanwhile.
   */
  private actionsReady = false;
  private stopped = false;
  private dropTimer: NodeJS.Timeout | undefined;
  private lastDrops = 0;
  private readonly counters = { processed: 0, alerts: 0, own: 0 };
  /** Events evaluated, by source and type (for /metrics). */
  readonly eventCounts = new PairCounter();
  /** Re-reads /proc for the execs a flood hid (recovery.ts); undefined while off. */
  private recovery: ExecRecovery | undefined;
  /** Per pid, the last process notice still being applied to the table (see enqueueSettled). */
  private readonly applying = new Map<number, Promise<void>>();

  constructor(private readonly config: Config, private readonly log: Logger, private readonly hooks: AgentHooks = {}) {
    const e = config.engine;
    const minPriority: Priority | undefined = parsePriority(e.priority);
    this.rules = new RulesManager(resolveRulesPaths(config.rules_files), {
      ruleMatching: e.rule_matching,
      minPriority,
      enabledTags: e.enabled_tags,
      disabledTags: e.disabled_tags,
      disabledRules: e.disabled_rules,
      appendOutput: e.append_output,
    }, log);
    this.queue = new BoundedQueue<Event>(config.sources.queue_size);
    const c = config.sources.containers;
    this.table = new ProcessTable({
      containers: new ContainerResolver({ clients: [new DockerClient({ socketPath: c.docker_socket })] }),
      containerWaitMs: c.lookup_timeout_ms,
      wantCwd: rulesReadField(() => this.rules.engine, 'proc.cwd'),
    });
    for (const h of config.sources.dns.hosts_files) {
      try {
        this.dns.loadHostsFile(h);
      } catch (err) {
        log.warn({ path: h, err: (err as Error).message }, 'cannot read hosts file for fd.*.name');
      }
    }
    for (const [name, ips] of Object.entries(config.sources.dns.static)) this.dns.addStatic(name, Array.isArray(ips) ? ips : [ips]);
    // Response actions never touch the agent, its children, the host's init, kernel threads or
    // the allow-list; each outcome is written as an alert of its own.
    this.allow = new AllowList(config.response.allow);
    const safety = new Safety({ allow: this.allow, isSelf: (pid) => this.table.isSelf(pid) });
    this.actions = {
      kill: new KillAction({ safety }),
      kill_container: new KillContainerAction({ safety }),
      block_destination: new BlockDestinationAction({ safety, ttlSeconds: config.response.block_ttl_s, protectList: this.blockProtect(config, log) }),
    };
    this.response = new ResponseDispatcher(config.response, this.actions, (m) => {
      this.counters.alerts++;
      this.hooks.onMatch?.(m);
    }, undefined, { stillMatches: (rule, ev) => this.rules.engine.recheck(rule, ev) });
    this.setDetectors(config.detectors);
  }

  /**
   * (Re)build the detectors from their config section. The new matcher is built before it replaces
   * the old one, so there is no moment without one. Detectors, once enabled, act (as cryptnono's do);
   * their safety rules are the response stage's.
   */
  setDetectors(d: DetectorsConfig): void {
    this.whacker = d.execwhacker.enabled ? execMatcherFromConfig(d) : undefined;
    this.spareReaders = d.execwhacker.spare_readers;
    // Keeps whom it has asked about across reloads: a miner already killed is not asked about again.
    this.moneroKiller = d.monero.enabled ? (this.moneroKiller ?? new MoneroKiller()) : undefined;
    if (d.monero.enabled && this.ebpf && this.ebpf.fpuStatus !== 'on') {
      this.log.warn({}, 'detectors.monero.enabled: the RandomX tracepoint was not attached at start; restart the agent to attach it');
    }
    this.flowKiller?.close();
    this.flowKiller = undefined;
    if (d.tcpflowkiller.enabled) {
      const fk = d.tcpflowkiller.config.FlowKiller;
      this.flowKiller = new TcpFlowKiller({
        banned_ipv4_file_globs: fk.banned_ipv4_file_globs,
        lookback_duration_seconds: fk.lookback_duration_seconds,
        unique_destinations_threshold: fk.unique_destinations_threshold,
        log_connects: fk.log_connects,
        log_container_info: fk.log_container_info,
        exempt_cidrs: d.tcpflowkiller.exempt_cidrs,
        mode: 'enforce',
        log: (level, msg, fields) => this.log[level](fields ?? {}, msg),
      });
      this.flowKiller.start();
    }
    clearInterval(this.rescanTimer);
    this.rescanTimer = undefined;
    if (this.whacker && d.execwhacker.rescan_interval_s > 0) {
      // A process can rewrite its argv after exec: look at every running one again.
      this.rescanTimer = setInterval(() => this.rescan(), d.execwhacker.rescan_interval_s * 1000);
      this.rescanTimer.unref();
    }
  }

  /** The detectors read events directly, before the rules. */
  private detect(ev: SyscallEvent): void {
    if (this.whacker && (ev.type === 'execve' || ev.type === 'execveat')) {
      this.detectorStats.checked++;
      const r = this.whacker.matchProcess(ev.proc);
      if (r.kill) {
        const target = targetOf(ev);
        if (this.readerSpared(this.whacker, ev.proc.pid, ev.proc.exepath, [ev.proc.exe ?? ev.proc.exepath ?? '', ...(ev.proc.args ?? [])], r, target, ev)) {
          // Spared and reported once: the rescan does not report it again.
          if (ev.proc.start_ts !== undefined) this.rememberAsked(`reader:${ev.proc.pid}:${ev.proc.start_ts}`);
        } else {
          this.detectorStats.kills++;
          // Asked once: the rescan does not ask again about the same process (same start time).
          if (ev.proc.start_ts !== undefined) this.rememberAsked(`${ev.proc.pid}:${ev.proc.start_ts}`);
          this.response.request(whackRequest(r, target, {}, ev));
        }
      } else if (r.spared) {
        this.detectorStats.spared[r.spared] = (this.detectorStats.spared[r.spared] ?? 0) + 1;
        // A banned string matched and an allowed pattern spared the process: that is a decision
        // the user wants to see (issue: every case shows up as an alert). Word-boundary and
        // no-match spares are not: nothing banned was there.
        if (r.spared === 'allowed') {
          this.response.report({
            request: whackRequest(r, targetOf(ev), { allowed_by: r.allowedBy ?? '', allowed_config: r.allowedConfig ?? '' }, ev),
            outcome: 'spared',
            reason: `allowed pattern ${JSON.stringify(r.allowedBy ?? '')} of config ${r.allowedConfig ?? '?'}`,
          });
        }
      }
    }
    if (this.flowKiller && ev.type === 'connect') {
      const req = this.flowKiller.decide(ev);
      if (req) this.response.request(req);
    }
  }

  /**
   * spare_readers: a system reader (grep, less, git log…) whose banned strings are only operands
   * is spared, and the spare is reported as an outcome like an allowed pattern's.
   */
  private readerSpared(m: ExecMatcher, pid: number, exepath: string | undefined, argv: string[], r: MatchResult, target: Target, event?: Event): boolean {
    if (!this.spareReaders) return false;
    const d = spareReader({ pid, exepath, argv }, (a, e) => m.bannedIn(a, e));
    if (!d.spared) return false;
    this.detectorStats.spared.reader = (this.detectorStats.spared.reader ?? 0) + 1;
    this.response.report({
      request: whackRequest(r, target, { spared_reader: d.tool }, event),
      outcome: 'spared',
      reason: `spare_readers: ${d.tool} is the system's own and the banned string ${JSON.stringify(r.banned ?? '')} is only in what it reads or searches for`,
    });
    return true;
  }

  /** Remember a process (pid:start) the execwhacker has asked about, so it is asked about once. */
  private rememberAsked(key: string): void {
    if (this.rescanAsked.size > 10_000) this.rescanAsked.clear();
    this.rescanAsked.add(key);
  }

  /** Every running process's current command line through the execwhacker. */
  private rescan(): void {
    const m = this.whacker;
    if (!m) return;
    this.detectorStats.rescans++;
    let pids: string[];
    try {
      pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
    } catch {
      return;
    }
    for (const name of pids) {
      const pid = Number(name);
      if (this.table.isSelf(pid)) continue;
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
      } catch {
        continue; // gone, or a kernel thread
      }
      if (argv.length && argv[argv.length - 1] === '') argv.pop();
      if (argv.length === 0) continue;
      const utf8 = argv.map((a) => Buffer.from(a, 'latin1').toString('utf8'));
      const exepath = this.table.get(pid)?.exepath;
      const r = m.matchProcess({ exe: utf8[0], exepath, args: utf8.slice(1) });
      if (!r.kill) continue;
      // Read once: the key of the reader spare and the kill request both carry it.
      const startTs = readStartTs(pid);
      const target = (): Target => ({ pid, ...(startTs === undefined ? {} : { startTs }), cmdline: argv.join(' '), container: this.table.containerOf(pid) });
      if (this.spareReaders) {
        const key = `reader:${pid}:${startTs ?? ''}`;
        if (this.rescanAsked.has(key)) continue;
        if (this.readerSpared(m, pid, exepath, utf8, r, target())) {
          this.rememberAsked(key);
          continue;
        }
      }
      // One request per process: one the safety rules spared is not asked about every rescan.
      if (startTs === undefined) {
        // Gone between the two reads: a lost race, not a process whose identity cannot be
        // checked (the kill would report that as "spared").
        this.response.report({
          request: whackRequest(r, target(), { rescan: true }),
          outcome: 'missed',
          reason: 'process gone before its start time could be read',
        });
        continue;
      }
      const key = `${pid}:${startTs}`;
      if (this.rescanAsked.has(key)) continue;
      this.rememberAsked(key);
      this.detectorStats.kills++;
      this.response.request(whackRequest(r, target(), { rescan: true }));
    }
  }

  /** Start every source; resolves once they listen. Throws when the configured driver cannot run. */
  async start(): Promise<void> {
    const host = this.hooks.hostSources !== false;
    // The rules as they run at action time (a reload replaces the engine).
    this.k8s = await agentK8s(this.config, this.log, this.allow, process.env, { podContext: host, recheck: (rule, ev) => this.rules.engine.recheck(rule, ev) });
    Object.assign(this.actions, this.k8s.actions);
    this.actionsReady = true;
    this.kick();
    this.k8s.pods?.start();
    if (host) await this.startHostSources();
    const auditLog = (this.config as { k8s?: K8sConfig }).k8s?.audit.log_path;
    if (auditLog) {
      this.sources.push(new AuditLogFollower(auditLog, { onError: (err) => this.log.warn({ err: err.message }, 'k8s audit log: line skipped') }));
    }
    for (const src of this.sources) await src.start((ev) => this.enqueueSettled(ev));
    this.dropTimer = setInterval(() => this.reportDrops(), DROP_REPORT_MS);
    this.dropTimer.unref();
    if (host) this.logRandomx();
    this.log.info({ driver: this.driver, sources: this.sources.map((x) => x.name) }, 'agent started');
  }

  /** One line at start: is the RandomX detector attached (if not, why), and does it kill. */
  private logRandomx(): void {
    const rules = this.rules.engine.rulesFor('syscall', RANDOMX_EVENT);
    const kills = rules.filter((r) => this.response.actionsFor({ rule: r.def.name, tags: r.def.tags, priority: r.def.priority }).includes('kill'));
    const responseKill = kills.length > 0 ? this.config.response.mode : undefined;
    const st = randomxState({
      driver: this.driver,
      tracepoint: this.ebpf?.fpuStatus,
      moneroEnabled: this.config.detectors.monero.enabled,
      responseKill,
    });
    const fields = { attached: st.attached, kill: st.kill, ...(st.why ? { why: st.why } : {}) };
    if (st.attached) this.log.info(fields, 'RandomX detector attached');
    else this.log.warn(fields, 'RandomX detector not attached');
  }

  /** The process table, the kernel's process notices, connections and CPU use of this host. */
  private async startHostSources(): Promise<void> {
    const seeded = this.table.seed();
    this.log.info({ processes: seeded }, 'process table seeded from /proc');
    this.notices = await this.startNotices();
    const s = this.config.sources;
    if (s.recovery.enabled) this.recovery = startRecovery(this.table, s.recovery.check_ms, () => this.queue.dropped + (this.notices?.drops ?? 0), (ev) => this.enqueue(ev), this.log);
    // The eBPF driver sees every connect as it happens: polling the socket tables would repeat it.
    if (s.connections.enabled && this.driver !== 'ebpf') {
      this.sources.push(new ConnectionsSource((pid) => this.table.get(pid), (pid) => this.table.containerOf(pid), {
        intervalMs: s.connections.interval_ms,
        onError: (err) => this.log.warn({ err: String(err) }, 'connections source error'),
      }));
    }
    if (s.cpu.enabled) {
      this.sources.push(new CpuSampler((pid) => this.table.get(pid), (pid) => this.table.containerOf(pid), {
        intervalMs: s.cpu.interval_ms,
        threshold: s.cpu.threshold,
        durationMs: s.cpu.duration_s * 1000,
        onError: (err) => this.log.warn({ err: String(err) }, 'cpu sampler error'),
      }));
    }
  }

  private async startNotices(): Promise<ProcNoticeSource> {
    const want = this.config.sources.driver;
    const onNotice = (n: Parameters<Parameters<ProcNoticeSource['start']>[0]>[0]): void => {
      const done = this.table.onNotice(n).then(
        (ev) => {
          if (ev) this.enqueue(n.exec ? applyKernelExec(ev, n.exec) : ev);
        },
        (err: unknown) => this.log.warn({ err: String(err), pid: n.pid }, 'process event lost'),
      );
      if (n.kind === 'exit') return;
      // The table applies one pid's notices in order, so the last one pending settles them all.
      const tracked: Promise<void> = done.finally(() => {
        if (this.applying.get(n.pid) === tracked) this.applying.delete(n.pid);
      });
      this.applying.set(n.pid, tracked);
    };
    if (want === 'auto' || want === 'ebpf') {
      const ebpf = this.newEbpfSource();
      try {
        await ebpf.start(onNotice);
        this.driver = 'ebpf';
        // New rules may name syscalls the kernel was told to keep: tell it again.
        this.rules.onReload = () => {
          ebpf.setWanted(this.wantedBy());
          if (ebpf.fpuStatus === 'off' && this.wantedBy()(RANDOMX_EVENT)) {
            this.log.warn({}, `the new rules read ${RANDOMX_EVENT} events, but the RandomX tracepoint was not attached at start; restart the agent to attach it`);
          }
        };
        this.ebpf = ebpf;
        this.log.info({ driver: 'ebpf', why: want === 'ebpf' ? 'asked for (--driver ebpf)' : 'the best driver this host offers', randomx: ebpf.fpuStatus }, 'driver chosen');
        return ebpf;
      } catch (err) {
        if (want === 'ebpf') throw err;
        this.log.warn({ reason: (err as Error).message, fix: (err as { fix?: string }).fix }, 'eBPF driver unavailable; trying the proc connector');
      }
    }
    if (want !== 'procfs') {
      const conn = new ProcConnectorSource({ queueSize: this.config.sources.proc.queue_size, onError: (m) => this.log.error({ err: m }, 'proc connector stopped') });
      try {
        await conn.start(onNotice);
        this.driver = 'proc';
        this.log.info({ driver: 'proc', why: want === 'proc' ? 'asked for (--driver proc)' : 'the eBPF driver is unavailable' }, 'driver chosen');
        return conn;
      } catch (err) {
        if (want === 'proc') throw err;
        this.log.warn({ reason: (err as Error).message }, 'proc connector unavailable; falling back to the /proc poller');
      }
    }
    const poller = new ProcfsPollerSource({
      intervalMs: this.config.sources.procfs.interval_ms,
      onError: (m) => this.log.warn({ err: m }, 'procfs poller error'),
    });
    await poller.start(onNotice);
    this.driver = 'procfs';
    this.log.info({ driver: 'procfs', why: want === 'procfs' ? 'asked for (--driver procfs)' : 'neither eBPF nor the proc connector is available' }, 'driver chosen');
    return poller;
  }

  /**
   * The EventSink of webhook sources (POST /k8s-audit): false when the queue is full, so the
   * route answers 503 and the sender retries.
   */
  readonly sink = (ev: Event): boolean => {
    if (this.stopped) return false;
    const before = this.queue.dropped;
    this.enqueue(ev);
    return this.queue.dropped === before;
  };

  /**
   * What block_destination never blocks (block-protect.ts): the host's resolvers, gateways and
   * addresses, the Kubernetes API (once the client is up), where the alerts go, and
   * response.block_protect.
   */
  private blockProtect(config: Config, log: Logger): BlockProtect {
    const warned = new Set<string>();
    return new BlockProtect({
      cidrs: config.response.block_protect ?? [],
      outputs: outputDestinations(config.outputs as unknown as Record<string, unknown>),
      kubeApiServer: () => this.k8s.client?.server,
      kubeEndpoints: async () => {
        const c = this.k8s.client;
        if (!c) return [];
        const ep = await c.core.readNamespacedEndpoints({ name: 'kubernetes', namespace: 'default' });
        return (ep.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip));
      },
      onError: (what, err) => {
        if (warned.has(what)) return;
        warned.add(what);
        log.warn({ err }, `block_destination: cannot read ${what}; it is not protected from blocks until it can be read`);
      },
    });
  }

  /** Whether the current rules can use an event type. */
  private wantedBy(): (type: string) => boolean {
    const engine = this.rules.engine;
    return (type) => engine.rulesFor('syscall', type).length > 0;
  }

  /** The eBPF driver, its syscall events into the queue like the other sources' (see enqueueSettled). */
  private newEbpfSource(): EbpfSource {
    const src = new EbpfSource({
      lookup: (pid) => this.table.get(pid),
      containerOf: (pid) => this.table.containerOf(pid),
      userName: (uid) => this.users.user(uid)?.name,
      dns: this.dns,
      // The RandomX alert is on wherever a rule reads its events; killing is detectors.monero.enabled's.
      fpu: this.config.detectors.monero.enabled || this.wantedBy()(RANDOMX_EVENT),
      openRead: this.config.sources.ebpf.open_read,
      ringBytes: this.config.sources.ebpf.ring_buffer_kb * 1024,
      ...(this.config.sources.ebpf.btf ? { btfPath: this.config.sources.ebpf.btf } : {}),
      // Syscalls no loaded rule can use stay in the kernel (those the agent itself needs always come).
      wanted: this.wantedBy(),
      onError: (m) => this.log.error({ err: m }, 'eBPF driver stopped'),
    });
    src.onEvents((ev) => this.enqueueSettled(ev, preferKernelImage, true));
    return src;
  }

  /** Take an event from a source: never blocks, never throws. */
  private enqueue(ev: Event): void {
    if (this.stopped) return;
    const pid = (ev as SyscallEvent).proc?.pid;
    if (pid !== undefined && this.table.isSelf(pid)) {
      this.counters.own++;
      return;
    }
    this.queue.push(ev);
    this.kick();
  }

  private kick(): void {
    if (!this.draining && this.actionsReady && this.queue.length > 0) {
      this.draining = true;
      setImmediate(() => this.drain());
    }
  }

  /**
   * Take an event that a source built from the process table (a connection, a CPU sample). It
   * names the process as the table knew it when the source looked; a process that has just
   * exec'd (a miner that starts and connects at once) may still be on its way through the table,
   * and the event would name the image it was forked from (seen: a container's miner connected
   * 8 ms after its exec, and the pool alert named `sh`). Such an event waits for its pid's
   * pending notices and then takes the process afresh. setImmediate first: it runs after the
   * event loop's poll phase, which delivers the proc connector's batches, so notices the kernel
   * sent before the source looked are pending by then. An exec notice that was dropped (a burst
   * past the connector's queue) is not recovered here: the event keeps the forked image.
   */
  private enqueueSettled(ev: Event, pick?: (was: ProcessInfo, now: ProcessInfo) => ProcessInfo, ordered = false): void {
    const pid = (ev as SyscallEvent).proc?.pid;
    if (pid === undefined) return this.enqueue(ev);
    // A source whose notices and events come in one ordered stream (eBPF) has delivered every
    // notice before the event already: nothing to wait for unless one is still being applied.
    if (ordered && !this.applying.has(pid)) return this.enqueueKnown(ev, pid);
    setImmediate(() => {
      const pending = this.applying.get(pid);
      if (!pending) return this.enqueueKnown(ev, pid);
      // The table's notices always settle; the timer only bounds the wait should one not.
      let timer: NodeJS.Timeout | undefined;
      const bounded = Promise.race([pending, new Promise<void>((r) => (timer = setTimeout(r, SETTLE_WAIT_MS)))]);
      void bounded.then(() => {
        clearTimeout(timer);
        const sev = ev as SyscallEvent;
        const now = this.table.get(pid);
        const was = sev.proc!;
        // Only the same process (same start time), never a new one under a reused pid.
        // `pick` lets a source that knows better keep (some of) what it saw.
        if (now && now !== was && (was.start_ts === undefined || now.start_ts === undefined || now.start_ts === was.start_ts)) {
          sev.proc = pick ? pick(was, now) : now;
          const c = this.table.containerOf(pid);
          if (c) sev.container = c;
        }
        this.enqueueKnown(ev, pid);
      });
    });
  }

  /** Enqueue an event whose process's notices have settled; a process the table still does not know (its exec was lost) is read from /proc first, not sent on bare. */
  private enqueueKnown(ev: Event, pid: number): void {
    const now = this.table.get(pid);
    const sev = ev as SyscallEvent;
    // The container as the table has it now: a source may have looked while the table still held
    // the forked image (the runtime's cgroup), and the exec that moved it in has landed since.
    if (now && ev.source === 'syscall' && (sev.proc === now || (now.start_ts !== undefined && sev.proc.start_ts === now.start_ts))) {
      const c = this.table.containerOf(pid);
      if (c) sev.container = c;
    }
    if (!this.recovery || ev.source !== 'syscall' || now) return this.enqueue(ev);
    void this.recovery.fill(ev as SyscallEvent).finally(() => this.enqueue(ev));
  }

  private drain(): void {
    const engine = this.rules.engine;
    for (let i = 0; i < BATCH; i++) {
      const ev = this.queue.shift();
      if (!ev) break;
      this.counters.processed++;
      this.eventCounts.inc(ev.source, ev.type);
      try {
        if (ev.source === 'syscall') {
          this.dns.enrich(ev as SyscallEvent);
          this.k8s.pods?.enrich(ev as SyscallEvent);
          this.detect(ev as SyscallEvent);
        }
        for (const m of engine.process(ev)) {
          // Response first, before anything else sees the match (ARCHITECTURE.md).
          this.response.onMatch(m);
          if (m.rule === RANDOMX_RULE) this.onRandomxMatch(m, ev as SyscallEvent);
          this.counters.alerts++;
          this.hooks.onMatch?.(m);
        }
      } catch (err) {
        this.log.error({ err: String(err), type: ev.type }, 'event could not be evaluated; skipped');
      }
    }
    if (this.queue.length > 0 && !this.stopped) setImmediate(() => this.drain());
    else this.draining = false;
  }

  /** The RandomX rule judged a process's FPU figures: fewer events of it from now on; and cryptnono's kill. */
  private onRandomxMatch(m: Match, ev: SyscallEvent): void {
    this.ebpf?.fpuJudged(ev.proc.pid, ev.proc.start_ts);
    const req = this.moneroKiller?.requestFor(m);
    if (req) this.response.request(req);
  }

  private reportDrops(): void {
    const total = this.queue.dropped + (this.notices?.drops ?? 0);
    if (total > this.lastDrops) {
      this.log.warn({ queueDrops: this.queue.dropped, sourceDrops: this.notices?.drops ?? 0, sinceLast: total - this.lastDrops }, 'events dropped: the agent could not keep up');
      this.lastDrops = total;
    }
  }

  stats(): AgentStats {
    return {
      driver: this.driver,
      queued: this.queue.length,
      processed: this.counters.processed,
      alerts: this.counters.alerts,
      queueDrops: this.queue.dropped,
      sourceDrops: this.notices?.drops ?? 0,
      own: this.counters.own,
      unsettledExecs: this.table.stats.unsettled,
      recoveredExecs: this.recovery?.stats.recovered ?? 0,
      ruleLoads: this.rules.loads,
      ruleReloadsRefused: this.rules.refused,
    };
  }

  /** Stop the sources, evaluate what is queued, and release everything. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await this.notices?.stop().catch(() => undefined);
    await this.k8s.pods?.stop();
    for (const s of this.sources) await s.stop().catch(() => undefined);
    // Events already accepted are still evaluated: nothing the kernel told us is lost on shutdown.
    while (this.queue.length > 0) this.drain();
    this.stopped = true;
    clearInterval(this.dropTimer);
    clearInterval(this.rescanTimer);
    this.recovery?.stop();
    this.flowKiller?.close();
    this.rules.close();
    this.table.close();
    this.log.info(this.stats(), 'agent stopped');
  }
}
