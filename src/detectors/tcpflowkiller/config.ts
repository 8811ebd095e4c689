/**
 * `detectors.tcpflowkiller`: cryptnono's chart values for its flow killer (its traitlets config,
 * same names and defaults), plus `exempt_cidrs` of ours.
 *
 *   tcpflowkiller:
 *     enabled: false
 *     config:
 *       FlowKiller:
 *         banned_ipv4_file_globs: []
 *         lookback_duration_seconds: 30
 *         unique_destinations_threshold: 15
 *         log_connects: false
 *         log_container_info: true
 *     exempt_cidrs: [10.0.0.0/8, …]   # ours: never counted as scan destinations
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { DEPLOYMENT_HINT, deploymentNotes, deploymentShape, type SectionNotes } from '../chart-keys.js';

/**
 * Not counted towards a scan: RFC 1918, loopback, link-local, CGNAT, multicast, "this network",
 * IETF protocol assignments, the documentation and benchmarking ranges, reserved and broadcast;
 * for IPv6 the unspecified and loopback addresses, ULA, link-local, multicast, documentation,
 * discard-only, ORCHID and benchmarking ranges. (Python's `ipaddress` `is_private`, which
 * cryptnono skips, plus 100.64.0.0/10 and multicast.)
 */
export const DEFAULT_EXEMPT_CIDRS: readonly string[] = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
  '192.0.0.0/24', '192.0.2.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24',
  '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4', '255.255.255.255/32',
  '::/128', '::1/128', '100::/64', '2001::/23', '2001:db8::/32', '2001:10::/28', 'fc00::/7',
  'fe80::/10', 'ff00::/8',
];

/** FlowKiller traitlets that only matter to cryptnono's process (its metrics port, its config file path). */
const FLOWKILLER_DEPLOYMENT_KEYS = ['metrics_port', 'config_file'] as const;

function isCidr(s: string): boolean {
  const [addr, bits, extra] = s.split('/');
  if (extra !== undefined || !addr) return false;
  const v = isIP(addr);
  if (v === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (v === 4 ? 32 : 128);
}

const flowKillerInput = z.strictObject({
  banned_ipv4_file_globs: z.array(z.string().min(1)).optional(),
  lookback_duration_seconds: z.number().int().positive().optional(),
  unique_destinations_threshold: z.number().int().min(0).optional(),
  log_connects: z.boolean().optional(),
  log_container_info: z.boolean().optional(),
  debug: z.boolean().optional(),
  metrics_port: z.unknown().optional(),
  config_file: z.unknown().optional(),
});

export const tcpflowkillerInput = z.strictObject({
  enabled: z.boolean().optional(),
  debug: z.boolean().optional(),
  config: z.strictObject({ FlowKiller: flowKillerInput.optional() }).optional(),
  exempt_cidrs: z.array(z.string().refine(isCidr, { message: 'not a CIDR: write address/prefix, e.g. 10.0.0.0/8 or fd00::/8' })).optional(),
  ...deploymentShape,
});
export type TcpflowkillerInput = z.infer<typeof tcpflowkillerInput>;

/** cryptnono's FlowKiller traitlets: what the flow killer reads (flow-killer.ts takes them as they are). */
export interface FlowKillerSettings {
  /** Globs of files of banned addresses, one per line ("/ban-config/*.txt"). */
  banned_ipv4_file_globs: string[];
  /** The scan window, s (default 30). */
  lookback_duration_seconds: number;
  /** More distinct (address, port) destinations than this in the window is a scan (default 15). */
  unique_destinations_threshold: number;
  /** Log every connect, not only kills. */
  log_connects: boolean;
  /** Include the container in log lines (default true). */
  log_container_info: boolean;
  debug: boolean;
}

export interface TcpflowkillerSettings {
  enabled: boolean;
  debug: boolean;
  config: { FlowKiller: FlowKillerSettings };
  /** Destinations the scan count skips. Banned addresses are killed in any range. */
  exempt_cidrs: string[];
}

export function tcpflowkillerWithDefaults(input: TcpflowkillerInput | undefined, notes: SectionNotes): TcpflowkillerSettings {
  deploymentNotes(input, 'tcpflowkiller', notes);
  const fk = input?.config?.FlowKiller ?? {};
  deploymentNotes(fk, 'tcpflowkiller.config.FlowKiller', notes, FLOWKILLER_DEPLOYMENT_KEYS);
  return {
    enabled: input?.enabled ?? false,
    debug: input?.debug ?? false,
    config: {
      FlowKiller: {
        banned_ipv4_file_globs: [...(fk.banned_ipv4_file_globs ?? [])],
        lookback_duration_seconds: fk.lookback_duration_seconds ?? 30,
        unique_destinations_threshold: fk.unique_destinations_threshold ?? 15,
        log_connects: fk.log_connects ?? false,
        log_container_info: fk.log_container_info ?? true,
        debug: fk.debug ?? false,
      },
    },
    exempt_cidrs: [...(input?.exempt_cidrs ?? DEFAULT_EXEMPT_CIDRS)],
  };
}

/** The ban-file globs of several files add up (cryptnono's traitlets lists, merged as Helm merges them). */
export const tcpflowkillerConcatenates = (path: readonly string[]): boolean => path.join('.') === 'config.FlowKiller.banned_ipv4_file_globs';

export function tcpflowkillerKnownKeys(path: readonly string[]): string[] | undefined {
  const key = path.join('.');
  if (key === '') return ['enabled', 'debug', 'config', 'exempt_cidrs', DEPLOYMENT_HINT];
  if (key === 'config') return ['FlowKiller'];
  if (key === 'config.FlowKiller') return ['banned_ipv4_file_globs', 'lookback_duration_seconds', 'unique_destinations_threshold', 'log_connects', 'log_container_info', 'debug'];
  return undefined;
}
