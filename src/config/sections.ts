/** The sections this build of minewatch understands, each owned by the module it configures. */
import { alertsSection, type AlertsConfig } from '../alerts/config.js';
import { z } from 'zod';
import { FALCO_DEFAULT_APPEND_OUTPUT } from '../engine/output.js';
import { parsePriority } from '../engine/types.js';
import { ConfigRegistry } from './registry.js';
import { type ResponseConfig, responseSection } from '../response/config.js';
import { type DetectorsConfig, detectorsSection } from '../detectors/config.js';
import { type OutputsConfig, outputsSection } from '../alerts/outputs/config.js';

export { type OutputsConfig, outputsSection };
import { type WebConfig, webSection } from './web.js';
import { type K8sConfig, k8sSection } from './k8s.js';
import { type GithubConfig, githubSection } from './github.js';

const priority = z.string().refine((s) => parsePriority(s) !== undefined, {
  message: 'not a priority: use emergency, alert, critical, error, warning, notice, informational or debug',
});

export const engineSection = z.strictObject({
  /** Falco's rule_matching: first (Falco's default) or all. */
  rule_matching: z.enum(['first', 'all']).default('first'),
  /** Rules less severe than this are not loaded (Falco's `priority`). */
  priority: priority.default('debug'),
  enabled_tags: z.array(z.string()).default([]),
  disabled_tags: z.array(z.string()).default([]),
  disabled_rules: z.array(z.string()).default([]),
  /**
   * Falco's append_output (also read at the top level, as in falco.yaml): per entry, rules it
   * applies to (match: source, tags, rule), text appended to their outputs (extra_output), fields
   * added to output_fields (extra_fields), the source's suggested fields (suggested_output).
   * Default: Falco's, the suggested fields for every source (container and pod fields on syscalls).
   */
  append_output: z.array(z.strictObject({
    match: z.strictObject({ source: z.string().optional(), tags: z.array(z.string()).optional(), rule: z.string().optional() }).optional(),
    extra_output: z.string().optional(),
    extra_fields: z.array(z.union([z.string().min(1), z.record(z.string(), z.string())])).optional(),
    suggested_output: z.boolean().optional(),
  })).default(() => FALCO_DEFAULT_APPEND_OUTPUT.map((e) => ({ ...e }))),
});

export const rulesFilesSection = z.array(z.string().min(1)).min(1).default(['default']);

export const sourcesSection = z.strictObject({
  /** auto: the eBPF driver when it can run here, else the proc connector, else the /proc poller. */
  driver: z.enum(['auto', 'ebpf', 'proc', 'procfs']).default('auto'),
  /** Events waiting for the engine; past this they are dropped and counted. */
  queue_size: z.number().int().min(16).default(10_000),
  procfs: z.strictObject({ interval_ms: z.number().int().min(10).default(100) }).default({ interval_ms: 100 }),
  ebpf: z.strictObject({
    /** A BTF file for kernels that do not expose /sys/kernel/btf/vmlinux (e.g. one from BTFHub). */
    btf: z.string().min(1).optional(),
    /**
     * Opens for reading only: auto (those the loaded rules can match, filtered in the kernel by the
     * path prefixes and process names their conditions name), true (every one: many), false (none).
     * Opens that may write or create always come when a rule names the open family.
     */
    open_read: z.union([z.boolean(), z.literal('auto')]).default('auto'),
    /**
     * The kernel-to-agent ring buffer, KiB: a power of two, at least one page (4). Past it records
     * are dropped and counted (and lost execs recovered from /proc). It is mapped twice into the
     * agent, so it counts double in its RSS: 1 MiB holds some 200 exec records. The agent reads it
     * on its event loop (no reader thread, issue 16), so it has to span the agent's longest busy
     * stretch at the exec rate, not only a gather; 4 MiB cost 6 MB more RSS than 1 MiB.
     */
    ring_buffer_kb: z.number().int().min(4).max(1 << 20).refine((n) => (n & (n - 1)) === 0, { message: 'must be a power of two (4, 8, …, 4096, …)' }).default(1024),
    /**
     * How long records gather after the reader wakes, ms (libuv rounds it up to whole ms): the most
     * batching adds to an alert's latency, against one wake-up of the agent per this long under
     * load (at 1,000 execs/s a warm agent took the same CPU per exec at 2 ms as at 4, and about
     * twice as much at 1 ms in 2 of 3 rounds, reading on the event loop; issue 16).
     */
    gather_ms: z.number().min(0).max(100).default(2),
    /**
     * How long quiet records may wait, ms: forks, exits, and execs like ones the agent evaluated
     * before with nothing coming of them (same binary, command line, environment, user, cgroup and
     * parent) do not wake the agent; a timer of this length takes them, and any other record wakes
     * it as before. An exec storm of one command then costs some 50 wake-ups a second instead of
     * 500 (issue 16: ~30 µs of CPU each on a VM). The longest a rule that would judge such an exec
     * differently after all (a count, a container's metadata come since) waits. 0: every record
     * wakes the agent.
     */
    quiet_ms: z.number().min(0).max(1000).default(20),
  }).default({ open_read: 'auto', ring_buffer_kb: 1024, gather_ms: 2, quiet_ms: 20 }),
  /**
   * The proc connector: batches of notices waiting for the agent before new ones are dropped and
   * counted, and the kernel's socket buffer (KiB) that holds notices while the agent is not reading.
   */
  proc: z
    .strictObject({
      queue_size: z.number().int().min(1).default(256),
      socket_buffer_kb: z.number().int().min(64).max(1 << 20).default(8192),
      /**
       * How long quiet notices may wait, ms, as the eBPF driver's quiet_ms: forks, exits, and execs
       * like ones the agent evaluated twice with nothing coming of them (same binary, command line,
       * environment, ids, cgroup and parent pid) are handed to the agent by a timer of this length,
       * not within 2 ms. A storm of one command then wakes the agent a few dozen times a second
       * instead of hundreds (issue 16). The /proc read of each exec is made as it arrives all the
       * same. 0: every notice goes within 2 ms. 50, not the eBPF driver's 20: each wake-up of the
       * agent here also walks a batch through the process table, and 50 cut the agent's CPU per
       * exec by about 9% against 20 (the median of 6 paired storms' differences, 5 of them lower).
       */
      quiet_ms: z.number().min(0).max(1000).default(50),
    })
    .default({ queue_size: 256, socket_buffer_kb: 8192, quiet_ms: 50 }),
  /**
   * After notices or events are lost, read /proc for live processes the agent has not seen and
   * emit the exec events they missed (mw.exec.recovered); check_ms: how often the drop counters are looked at.
   */
  recovery: z.strictObject({
    enabled: z.boolean().default(true),
    check_ms: z.number().int().min(50).default(500),
  }).default({ enabled: true, check_ms: 500 }),
  connections: z.strictObject({
    enabled: z.boolean().default(true),
    interval_ms: z.number().int().min(20).default(250),
    /**
     * The poll interval once 8 polls in a row found nothing new (no socket, no connect), ms; any
     * finding, or an exec on the host, brings back interval_ms. Not above interval_ms: never idle.
     */
    idle_interval_ms: z.number().int().min(20).default(1000),
  }).default({ enabled: true, interval_ms: 250, idle_interval_ms: 1000 }),
  cpu: z.strictObject({
    enabled: z.boolean().default(true),
    interval_ms: z.number().int().min(50).default(5000),
    /** Fraction of one core (or of the container's CPU limit). */
    threshold: z.number().positive().default(0.9),
    duration_s: z.number().positive().default(300),
  }).default({ enabled: true, interval_ms: 5000, threshold: 0.9, duration_s: 300 }),
  containers: z.strictObject({
    docker_socket: z.string().default('/var/run/docker.sock'),
    lookup_timeout_ms: z.number().int().min(0).default(50),
  }).default({ docker_socket: '/var/run/docker.sock', lookup_timeout_ms: 50 }),
  dns: z.strictObject({
    hosts_files: z.array(z.string()).default(['/etc/hosts']),
    /** name → address(es): the static table behind fd.sip.name and friends. */
    static: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}),
  }).default({ hosts_files: ['/etc/hosts'], static: {} }),
});

export type EngineConfig = z.infer<typeof engineSection>;
export type SourcesConfig = z.infer<typeof sourcesSection>;

export interface Config {
  alerts: AlertsConfig;
  rules_files: string[];
  engine: EngineConfig;
  sources: SourcesConfig;
  outputs: OutputsConfig;
  response: ResponseConfig;
  detectors: DetectorsConfig;
  web: WebConfig;
  k8s: K8sConfig;
  github: GithubConfig;
  [section: string]: unknown;
}

export function defaultSections(): ConfigRegistry {
  return new ConfigRegistry()
    .register({ name: 'rules_files', describe: 'rules files and folders, loaded in order ("default" = minewatch\'s own)', schema: rulesFilesSection })
    .register({ name: 'engine', empty: {}, describe: 'rule matching, minimum priority, tag and name filters', schema: engineSection })
    .register({ name: 'sources', empty: {}, describe: 'kernel driver, polling intervals, queues, containers, DNS', schema: sourcesSection })
    .register({ name: 'outputs', empty: {}, describe: 'where alerts go', schema: outputsSection })
    .register({ name: 'alerts', empty: {}, describe: 'throttling and grouping, the alert store, retention, delivery retries', schema: alertsSection })
    .register({ name: 'response', empty: {}, describe: 'actions on rule matches (kill, kill_container, block_destination), mode, allow-list', schema: responseSection })
    .register({ name: 'detectors', empty: {}, describe: "cryptnono's detectors, its chart values as they are: execwhacker, monero, tcpflowkiller", schema: detectorsSection })
    .register({ name: 'web', empty: {}, describe: 'the HTTP server: listen address, tokens, TLS, request size limit', schema: webSection })
    .register({ name: 'k8s', empty: {}, describe: 'Kubernetes: audit webhook and log file, admission webhook', schema: k8sSection })
    .register({ name: 'github', empty: {}, describe: 'GitHub webhook source (POST /github): secret, API URL and token for workflow and diff fetches, limits', schema: githubSection });
}
