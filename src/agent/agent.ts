/**
 * The agent: the host's sources (the kernel driver's process notices, connections, CPU use, the
 * k8s audit log) feeding the event pipeline the composition root built (src/app/compose.ts), and
 * the cluster context joining it at start. It keeps start, stop and stats.
 */
import type { Config } from '../config/sections.js';
import type { UserDb } from '../enrich/users.js';
import { logRuleCoverage } from './rule-coverage.js';
import { type ExecRecovery, startRecovery } from './recovery-hook.js';
import type { ReadFilter } from '../sources/ebpf/read-filter.js';
import { ConnectionsSource } from '../sources/connections.js';
import { CpuSampler } from '../sources/cpu-sampler.js';
import { ProcConnectorSource } from '../sources/proc-connector.js';
import { ProcfsPollerSource } from '../sources/procfs-poller.js';
import { AuditLogFollower } from '../sources/k8s-audit-log.js';
import { EbpfSource, applyKernelExec } from '../sources/ebpf/index.js';
import { chooseDriver } from '../sources/choose-driver.js';
import type { ProcNotice, ProcNoticeSource, Source } from '../sources/types.js';
import type { Logger } from '../platform/logger.js';
import { agentK8s } from '../k8s/agent-k8s.js';
import { RANDOMX_EVENT, randomxState } from './randomx.js';
import type { DnsCache } from '../enrich/dns.js';
import type { ProcessTable } from '../enrich/process-table.js';
import type { AgentK8s } from '../k8s/agent-k8s.js';
import type { CountingSink } from '../pipeline/alert-sink.js';
import type { DetectorSet } from '../pipeline/detector-set.js';
import type { EventPipeline } from '../pipeline/event-pipeline.js';
import type { ResponseDispatcher } from '../response/dispatcher.js';
import type { AllowList } from '../response/safety.js';
import type { ActionName, ResponseAction } from '../response/types.js';
import { NoticeSettler, preferKernelImage } from '../pipeline/settle.js';
import type { RulesManager } from './rules-manager.js';
import type { QuietExecs } from '../sources/quiet-execs.js';

/** How often drop counters are checked and, when they moved, reported. */
const DROP_REPORT_MS = 10_000;
/**
 * How long the eBPF driver's exited leaves stay resolvable (process-table.ts setLeafGrace): under
 * an exec storm V8 scavenges every 1.5–3 s, and an entry that outlives two is promoted. An event
 * still waiting for its container's runtime answer past this (SETTLE_WAIT_MS bounds it at 2 s)
 * goes on with the container as its source saw it.
 */
const EBPF_LEAF_GRACE_MS = 1000;

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
  /** Exec signatures the driver was told are quiet (quiet-execs.ts): they stop waking the agent at once. */
  quietExecs: number;
  ruleLoads: number;
  ruleReloadsRefused: number;
}

export interface AgentHooks {
  /**
   * false: no sources of this host (process notices, connections, CPU): `minewatch server` runs
   * the engine only for what its webhooks and log files feed it (k8s_audit, github).
   */
  hostSources?: boolean;
}

/** What the composition root (src/app/compose.ts) built for the agent to run. */
export interface AgentCore {
  readonly rules: RulesManager;
  readonly table: ProcessTable;
  readonly dns: DnsCache;
  /** Host user names for processes only the kernel saw (the eBPF driver's short-lived ones). */
  readonly users: UserDb;
  readonly allow: AllowList;
  /** The dispatcher's actions: the cluster ones join at start(). */
  readonly actions: Partial<Record<ActionName, ResponseAction>>;
  readonly response: ResponseDispatcher;
  readonly detectors: DetectorSet;
  readonly sink: CountingSink;
  readonly pipeline: EventPipeline;
  /**
   * Filled in at start(): the cluster client and actions, the eBPF driver while it runs, and the
   * driver whose execs can be quiet (the eBPF driver or the proc connector: quiet-execs.ts).
   */
  readonly host: { k8s: AgentK8s; ebpf: EbpfSource | undefined; quiet?: QuietExecs };
  /**
   * Whether anything reads a process's loginuid (a loaded rule naming user.loginuid or
   * user.loginname, `run --record`): the proc connector reads it with each exec only then.
   */
  readonly wantLoginuid: () => boolean;
  /**
   * Whether anything reads what only /proc/PID/status gives (the vpid, the capability sets:
   * rules-read.ts STATUS_FIELDS): the proc connector reads that file with each exec only then.
   */
  readonly wantStatus: () => boolean;
}

export class Agent {
  readonly rules: RulesManager;
  private readonly settler: NoticeSettler;
  private notices: ProcNoticeSource | undefined;
  /** The socket poller (not with the eBPF driver), told of execs so it leaves its idle pace. */
  private connections: ConnectionsSource | undefined;
  /** Re-reads /proc for the execs a flood hid (enrich/recovery.ts); undefined while off. */
  private recovery: ExecRecovery | undefined;
  private readonly sources: Source[] = [];
  private driver = 'none';
  private stopped = false;
  private dropTimer: NodeJS.Timeout | undefined;
  private lastDrops = 0;

  constructor(private readonly config: Config, private readonly log: Logger, readonly core: AgentCore, private readonly hooks: AgentHooks = {}) {
    this.rules = core.rules;
    this.settler = new NoticeSettler(core.table, core.pipeline.accept);
  }

  /** Start every source; resolves once they listen. Throws when the configured driver cannot run. */
  async start(): Promise<void> {
    const host = this.hooks.hostSources !== false;
    const core = this.core;
    // The rules as they run at action time (a reload replaces the engine).
    core.host.k8s = await agentK8s(this.config, this.log, core.allow, process.env, { podContext: host, recheck: (rule, ev) => this.rules.engine.recheck(rule, ev) });
    Object.assign(core.actions, core.host.k8s.actions);
    core.pipeline.start();
    core.host.k8s.pods?.start();
    if (host) await this.startHostSources();
    const auditLog = this.config.k8s.audit.log_path;
    if (auditLog) {
      this.sources.push(new AuditLogFollower(auditLog, { onError: (err) => this.log.warn({ err: err.message }, 'k8s audit log: line skipped') }));
    }
    for (const src of this.sources) await src.start((ev) => this.settler.settled(ev));
    this.dropTimer = setInterval(() => this.reportDrops(), DROP_REPORT_MS);
    this.dropTimer.unref();
    if (host) this.logRandomx();
    this.log.info({ driver: this.driver, sources: this.sources.map((x) => x.name) }, 'agent started');
  }

  /** One line at start: is the RandomX detector attached (if not, why), and does it kill. */
  private logRandomx(): void {
    const rules = this.rules.engine.rulesFor('syscall', RANDOMX_EVENT);
    const kills = rules.filter((r) => this.core.response.actionsFor({ rule: r.def.name, tags: r.def.tags, priority: r.def.priority }).includes('kill'));
    const responseKill = kills.length > 0 ? this.config.response.mode : undefined;
    const st = randomxState({
      driver: this.driver,
      tracepoint: this.core.host.ebpf?.fpuStatus,
      moneroEnabled: this.config.detectors.monero.enabled,
      responseKill,
    });
    const fields = { attached: st.attached, kill: st.kill, ...(st.why ? { why: st.why } : {}) };
    if (st.attached) this.log.info(fields, 'RandomX detector attached');
    else this.log.warn(fields, 'RandomX detector not attached');
  }

  /** The process table, the kernel's process notices, connections and CPU use of this host. */
  private async startHostSources(): Promise<void> {
    const table = this.core.table;
    const seeded = table.seed();
    this.log.info({ processes: seeded }, 'process table seeded from /proc');
    this.notices = await this.startNotices();
    const readFilter = this.logCoverage();
    this.core.host.ebpf?.setReadFilter(readFilter);
    if (!this.core.host.ebpf) {
      this.rules.onReload = () => {
        this.core.host.quiet?.forgetQuiet();
        this.syncExecReads();
        this.logCoverage();
      };
    }
    const s = this.config.sources;
    if (s.recovery.enabled) {
      const pipeline = this.core.pipeline;
      const recovery = startRecovery(table, s.recovery.check_ms, () => pipeline.queueDrops + (this.notices?.drops ?? 0), (ev) => pipeline.accept(ev), this.log);
      this.recovery = recovery;
      pipeline.onDrop = (ev) => recovery.missed(ev);
      this.settler.fillUnknownWith((ev) => recovery.fill(ev));
    }
    // The eBPF driver sees every connect as it happens: polling the socket tables would repeat it.
    if (s.connections.enabled && this.driver !== 'ebpf') {
      this.connections = new ConnectionsSource((pid) => table.get(pid), (pid) => table.containerOf(pid), {
        intervalMs: s.connections.interval_ms,
        idleIntervalMs: s.connections.idle_interval_ms,
        onError: (err) => this.log.warn({ err: String(err) }, 'connections source error'),
      });
      this.sources.push(this.connections);
    }
    if (s.cpu.enabled) {
      this.sources.push(new CpuSampler((pid) => table.get(pid), (pid) => table.containerOf(pid), {
        intervalMs: s.cpu.interval_ms,
        threshold: s.cpu.threshold,
        durationMs: s.cpu.duration_s * 1000,
        onError: (err) => this.log.warn({ err: String(err) }, 'cpu sampler error'),
      }));
    }
  }

  /** The process notices into the table, and the events the table makes of them into the pipeline. */
  private async startNotices(): Promise<ProcNoticeSource> {
    const onNotice = (n: ProcNotice): void => {
      // Most connections begin with an exec: the socket poller, slowed at idle, picks up again.
      if (n.kind === 'exec') this.connections?.activity();
      // Most notices apply at once (nothing of their pid pending, no /proc read): no promise. An
      // exec applied so was built from the kernel's record alone: nothing to lay over it.
      const now = this.core.table.applyNow(n);
      if (now !== undefined) {
        if (now) this.core.pipeline.accept(now);
        return;
      }
      const done = this.core.table.onNotice(n).then(
        (ev) => {
          if (ev) this.core.pipeline.accept(n.exec ? applyKernelExec(ev, n.exec) : ev);
        },
        (err: unknown) => this.log.warn({ err: String(err), pid: n.pid }, 'process event lost'),
      );
      if (n.kind !== 'exit') this.settler.track(n.pid, done);
    };
    const chosen = await chooseDriver(this.config.sources.driver, onNotice, {
      ebpf: () => this.newEbpfSource(),
      proc: () => {
        const p = this.config.sources.proc;
        return new ProcConnectorSource({
          queueSize: p.queue_size,
          socketBufferKb: p.socket_buffer_kb,
          quietUs: p.quiet_ms * 1000,
          readLoginuid: this.core.wantLoginuid(),
          readStatus: this.core.wantStatus(),
          onError: (m) => this.log.error({ err: m }, 'proc connector stopped'),
        });
      },
      procfs: () => new ProcfsPollerSource({
        intervalMs: this.config.sources.procfs.interval_ms,
        onError: (m) => this.log.warn({ err: m }, 'procfs poller error'),
      }),
    }, this.log, (driver, src) => {
      if (driver === 'proc') this.core.host.quiet = (src as ProcConnectorSource).quiet;
      if (driver !== 'ebpf') return {};
      // One ordered stream: no poller looks up an exited pid seconds later (process-table.ts setLeafGrace).
      this.core.table.setLeafGrace(EBPF_LEAF_GRACE_MS);
      this.watchEbpfRules(src as EbpfSource);
      return { randomx: (src as EbpfSource).fpuStatus };
    });
    this.driver = chosen.driver;
    return chosen.source;
  }

  /**
   * New rules may start or stop reading loginuid, or the fields of status: the proc connector's
   * reads follow, and when one starts, the processes entered meanwhile (with their parent's
   * loginuid, with no capabilities) are read again.
   */
  private syncExecReads(): void {
    const src = this.notices instanceof ProcConnectorSource ? this.notices : undefined;
    if (!src) return;
    const table = this.core.table;
    const want = this.core.wantLoginuid();
    if (src.readsLoginuid !== want && src.setReadLoginuid(want) && want) {
      this.log.info({ processes: table.refreshLoginuids() }, 'the rules read loginuid: it is read with each exec from now on');
    }
    const wantStatus = this.core.wantStatus();
    if (src.readsStatus !== wantStatus && src.setReadStatus(wantStatus) && wantStatus) {
      this.log.info({ processes: table.refreshStatus() }, 'the rules read a vpid or capabilities: /proc/PID/status is read with each exec from now on');
    }
  }

  /** New rules may name syscalls the kernel was told to keep: tell it again. */
  private watchEbpfRules(ebpf: EbpfSource): void {
    this.rules.onReload = () => {
      ebpf.quiet.forgetQuiet();
      ebpf.setWanted(this.wantedBy());
      ebpf.setReadFilter(this.logCoverage());
      if (ebpf.fpuStatus === 'off' && this.wantedBy()(RANDOMX_EVENT)) {
        this.log.warn({}, `the new rules read ${RANDOMX_EVENT} events, but the RandomX tracepoint was not attached at start; restart the agent to attach it`);
      }
    };
    this.core.host.ebpf = ebpf;
    this.core.host.quiet = ebpf.quiet;
  }

  /** Names the rules this driver cannot feed; the read filter for the eBPF driver (rule-coverage.ts). */
  private logCoverage(): ReadFilter {
    const s = this.config.sources;
    const driver = this.driver === 'ebpf' || this.driver === 'proc' ? this.driver : 'procfs';
    return logRuleCoverage(this.rules.engine, { driver, side: { connections: s.connections.enabled && driver !== 'ebpf', cpu: s.cpu.enabled }, openRead: s.ebpf.open_read }, this.log);
  }

  /** Whether the current rules can use an event type. */
  private wantedBy(): (type: string) => boolean {
    const engine = this.rules.engine;
    return (type) => engine.rulesFor('syscall', type).length > 0;
  }

  /** The eBPF driver, its syscall events into the pipeline like the other sources' (see settle.ts). */
  private newEbpfSource(): EbpfSource {
    const table = this.core.table;
    const src = new EbpfSource({
      lookup: (pid) => table.get(pid),
      containerOf: (pid) => table.containerOf(pid),
      userName: (uid) => this.core.users.user(uid)?.name,
      dns: this.core.dns,
      // The RandomX alert is on wherever a rule reads its events; killing is detectors.monero.enabled's.
      fpu: this.config.detectors.monero.enabled || this.wantedBy()(RANDOMX_EVENT),
      openRead: this.config.sources.ebpf.open_read,
      ringBytes: this.config.sources.ebpf.ring_buffer_kb * 1024,
      gatherUs: Math.round(this.config.sources.ebpf.gather_ms * 1000),
      quietUs: Math.round(this.config.sources.ebpf.quiet_ms * 1000),
      ...(this.config.sources.ebpf.btf ? { btfPath: this.config.sources.ebpf.btf } : {}),
      // Syscalls no loaded rule can use stay in the kernel (those the agent itself needs always come).
      wanted: this.wantedBy(),
      onError: (m) => this.log.error({ err: m }, 'eBPF driver stopped'),
    });
    src.onEvents((ev) => this.settler.settled(ev, preferKernelImage, true));
    return src;
  }

  private reportDrops(): void {
    const queueDrops = this.core.pipeline.queueDrops;
    const total = queueDrops + (this.notices?.drops ?? 0);
    if (total > this.lastDrops) {
      this.log.warn({ queueDrops, sourceDrops: this.notices?.drops ?? 0, sinceLast: total - this.lastDrops }, 'events dropped: the agent could not keep up');
      this.lastDrops = total;
    }
  }

  stats(): AgentStats {
    const p = this.core.pipeline.counts();
    return {
      driver: this.driver,
      queued: p.queued,
      processed: p.processed,
      alerts: this.core.sink.count,
      queueDrops: p.queueDrops,
      sourceDrops: this.notices?.drops ?? 0,
      own: p.own,
      unsettledExecs: this.core.table.stats.unsettled,
      recoveredExecs: this.recovery?.stats.recovered ?? 0,
      quietExecs: this.core.host.quiet?.marked ?? 0,
      ruleLoads: this.rules.loads,
      ruleReloadsRefused: this.rules.refused,
    };
  }

  /** Stop the sources, evaluate what is queued, and release everything. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await this.notices?.stop().catch(() => undefined);
    await this.core.host.k8s.pods?.stop();
    for (const s of this.sources) await s.stop().catch(() => undefined);
    // Events already accepted are still evaluated: nothing the kernel told us is lost on shutdown.
    this.core.pipeline.close();
    this.stopped = true;
    clearInterval(this.dropTimer);
    this.settler.fillUnknownWith(undefined);
    this.recovery?.stop();
    this.core.detectors.close();
    this.rules.close();
    this.core.table.close();
    this.log.info(this.stats(), 'agent stopped');
  }
}
