/**
 * The composition root: the one place that builds the event pipeline and everything it runs —
 * rules, process table, DNS, response dispatcher with its actions, detectors, alert sink — for
 * `run`, `server` and `replay` alike. The alert sink is given first, so nothing is bound late.
 */
import { quietGc } from '../platform/quiet-gc.js';
import type { AgentCore } from '../agent/agent.js';
import type { Logger } from '../platform/logger.js';
import { RulesManager } from '../agent/rules-manager.js';
import { configNamesField, LOGINUID_FIELDS, rulesReadField, STATUS_FIELDS } from '../agent/rules-read.js';
import type { Config } from '../config/sections.js';
import { type Engine, type EngineOptions, type Priority, parsePriority, resolveRulesPaths } from '../engine/index.js';
import type { Match } from '../engine/types.js';
import { ContainerResolver, DockerClient } from '../enrich/containers.js';
import { DnsCache } from '../enrich/dns.js';
import { ProcessTable } from '../enrich/process-table.js';
import { FdTable } from '../enrich/fd-table.js';
import { UserDb } from '../enrich/users.js';
import type { Event, SyscallEvent } from '../events.js';
import type { Detector } from '../detectors/types.js';
import type { DetectorsConfig } from '../detectors/config.js';
import type { DetectorContext } from '../detectors/module.js';
import { buildDetectors } from '../detectors/registry.js';
import { CountingSink } from '../pipeline/alert-sink.js';
import { DetectorSet } from '../pipeline/detector-set.js';
import { SyscallEnricher } from '../pipeline/enrich.js';
import { EventPipeline } from '../pipeline/event-pipeline.js';
import { BlockDestinationAction } from '../response/block-destination.js';
import { BlockProtect, outputDestinations } from '../response/block-protect.js';
import { ResponseDispatcher } from '../response/dispatcher.js';
import { KillContainerAction } from '../response/kill-container.js';
import { KillAction } from '../response/kill.js';
import { recordOnlyActions } from '../response/record-only.js';
import { AllowList, Safety } from '../response/safety.js';
import type { ActionName, ResponseAction } from '../response/types.js';

/** What the host's agent fills in as it starts (the cluster client and actions, the eBPF driver). */
export type HostState = AgentCore['host'];

/**
 * What composeCore builds: the agent's core (AgentCore, declared where it is used), with the
 * rules as any engine holder (replay brings a fixed engine), the config, and the detector builder.
 */
export interface Core extends Omit<AgentCore, 'rules'> {
  readonly config: Config;
  readonly rules: { readonly engine: Engine };
  /**
   * Build, without installing, the detectors a `detectors` section turns on (start and SIGHUP),
   * keeping what the running ones remember. Throws when one cannot be built (a banned-list file
   * that cannot be read): nothing has changed then. `detectors.replace()` installs them.
   */
  readonly prepareDetectors: (d: DetectorsConfig) => Detector[];
}

export interface ComposeOptions {
  /** Where every match goes at the end: the alert pipeline (run, server), standard output (replay). */
  sink: (m: Match) => void;
  /** The rules: a RulesManager on config.rules_files and config.engine (rulesFromConfig: reloads on SIGHUP), or replay's fixed engine. */
  rules: { readonly engine: Engine };
  /** `replay`: every action only records what it would do, whatever response.mode says; no rescans of this host. */
  replay?: boolean;
  /** Every enriched event (`run --record`). */
  record?: (ev: Event) => void;
}

/** The rules the config names, with its engine options. Throws LoadError naming the file and line at fault. */
export function rulesFromConfig(config: Config, log: Logger): RulesManager {
  return new RulesManager(resolveRulesPaths(config.rules_files), engineOptionsOf(config), log);
}

/** The engine's options from the config's engine section. */
export function engineOptionsOf(config: Config): EngineOptions {
  const e = config.engine;
  const minPriority: Priority | undefined = parsePriority(e.priority);
  return {
    ruleMatching: e.rule_matching,
    minPriority,
    enabledTags: e.enabled_tags,
    disabledTags: e.disabled_tags,
    disabledRules: e.disabled_rules,
    appendOutput: e.append_output,
  };
}

/** The DNS names the config gives (hosts files, static entries) for fd.*.name. */
export function dnsFromConfig(config: Config, log: Logger): DnsCache {
  const dns = new DnsCache();
  for (const h of config.sources.dns.hosts_files) {
    try {
      dns.loadHostsFile(h);
    } catch (err) {
      log.warn({ path: h, err: (err as Error).message }, 'cannot read hosts file for fd.*.name');
    }
  }
  for (const [name, ips] of Object.entries(config.sources.dns.static)) dns.addStatic(name, Array.isArray(ips) ? ips : [ips]);
  return dns;
}

/**
 * Whether anything reads these fields, so that the proc connector's reads take the file behind
 * them: always for a recording (it keeps every field of every process) and for alerts grouped by
 * one; otherwise while the rules (or append_output) read one.
 */
function wantsFields(config: Config, o: ComposeOptions, engine: () => Engine, fields: readonly string[]): () => boolean {
  if (o.record || configNamesField(config.alerts, fields)) return () => true;
  return rulesReadField(engine, fields);
}

/**
 * What block_destination never blocks (block-protect.ts): the host's resolvers, gateways and
 * addresses, the Kubernetes API (once the client is up), where the alerts go, and
 * response.block_protect.
 */
function blockProtect(config: Config, log: Logger, host: HostState): BlockProtect {
  const warned = new Set<string>();
  return new BlockProtect({
    cidrs: config.response.block_protect ?? [],
    outputs: outputDestinations(config.outputs as unknown as Record<string, unknown>),
    kubeApiServer: () => host.k8s.client?.server,
    kubeEndpoints: async () => {
      const c = host.k8s.client;
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

export function composeCore(config: Config, log: Logger, o: ComposeOptions): Core {
  const rules = o.rules;
  const c = config.sources.containers;
  const table = new ProcessTable({
    containers: new ContainerResolver({ clients: [new DockerClient({ socketPath: c.docker_socket })] }),
    containerWaitMs: c.lookup_timeout_ms,
    // proc.cwd costs a /proc read per exec: only when a loaded rule reads it.
    wantCwd: rulesReadField(() => rules.engine, 'proc.cwd'),
  });
  const dns = dnsFromConfig(config, log);
  // Host user and group names: the eBPF driver's short-lived processes and the uid/gid arguments.
  const users = new UserDb();
  const host: HostState = { k8s: { actions: {} }, ebpf: undefined };
  // Response actions never touch the agent, its children, the host's init, kernel threads or
  // the allow-list; each outcome is written as an alert of its own.
  const allow = new AllowList(config.response.allow);
  const safety = new Safety({ allow, isSelf: (pid) => table.isSelf(pid) });
  const actions: Partial<Record<ActionName, ResponseAction>> = o.replay ? recordOnlyActions() : {
    kill: new KillAction({ safety }),
    kill_container: new KillContainerAction({ safety }),
    block_destination: new BlockDestinationAction({ safety, ttlSeconds: config.response.block_ttl_s, protectList: blockProtect(config, log, host) }),
  };
  const sink = new CountingSink(o.sink);
  const response = new ResponseDispatcher(config.response, actions, sink.accept, undefined, { stillMatches: (rule, ev) => rules.engine.recheck(rule, ev) });
  const detectorCtx: DetectorContext = {
    isSelf: (pid) => table.isSelf(pid),
    lookup: (pid) => table.get(pid),
    containerOf: (pid) => table.containerOf(pid),
    log,
    // The RandomX rule judged a process's FPU figures: fewer events of it from now on.
    fpuJudged: (pid, startTs) => host.ebpf?.fpuJudged(pid, startTs),
  };
  const detectors = new DetectorSet(response, { rescans: !o.replay });
  const prepare = (d: DetectorsConfig): Detector[] => {
    const next = buildDetectors(d, detectorCtx, detectors.current());
    if (d.monero.enabled && host.ebpf && host.ebpf.fpuStatus !== 'on') {
      log.warn({}, 'detectors.monero.enabled: the RandomX tracepoint was not attached at start; restart the agent to attach it');
    }
    return next;
  };
  detectors.replace(prepare(config.detectors));
  const pipeline = new EventPipeline({
    queueSize: config.sources.queue_size,
    engine: () => rules.engine,
    enrich: new SyscallEnricher(dns, () => host.k8s.pods, { fds: new FdTable(), users, table }),
    detectors: detectors.current,
    response,
    sink,
    isSelf: o.replay ? undefined : (pid) => table.isSelf(pid),
    record: o.record,
    onError: (err, ev) => log.error({ err: String(err), type: ev.type }, 'event could not be evaluated; skipped'),
    // An alert's process read without /proc/PID/status (the proc connector, while no rule reads
    // what it gives): its stored event still shows its capabilities.
    beforeMatches: o.replay ? undefined : (ev) => table.completeStatus((ev as SyscallEvent).proc),
    // Execs nothing came of: the driver stops waking the agent at once for ones like them (quiet-execs.ts).
    onQuietExec: o.replay ? undefined : (sig) => host.quiet?.execQuiet(sig),
    // V8's mark-compact in the quiet after a burst, not inside the next one (not for a replay's short life).
    afterDrain: o.replay ? undefined : quietGc(),
  });
  const wantLoginuid = wantsFields(config, o, () => rules.engine, LOGINUID_FIELDS);
  const wantStatus = wantsFields(config, o, () => rules.engine, STATUS_FIELDS);
  return { config, rules, table, dns, users, allow, actions, response, detectors, prepareDetectors: prepare, sink, pipeline, host, wantLoginuid, wantStatus };
}

/** The host agent's core (`run`, `server`): the rules from the config, reloadable. */
export function composeHostCore(config: Config, log: Logger, o: Omit<ComposeOptions, 'rules' | 'replay'> & { rules: RulesManager }): Core & { rules: RulesManager } {
  return { ...composeCore(config, log, o), rules: o.rules };
}
