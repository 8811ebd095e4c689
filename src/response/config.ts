/**
 * The `response` section: which rules lead to which actions, in which mode, and what is never
 * touched. Rule-driven actions are dry runs until `mode: enforce`.
 */
import { z } from 'zod';
import { parsePriority } from '../engine/types.js';
import { notACidr } from './block-protect.js';
import { parseNet } from '../platform/ip.js';

const actionName = z.enum(['kill', 'kill_container', 'block_destination', 'delete_pod', 'isolate_pod', 'quarantine_workload', 'suggest_revoke']);

export const responseSection = z.strictObject({
  /** dryrun: log and record what would be done; enforce: do it. */
  mode: z.enum(['dryrun', 'enforce']).default('dryrun'),
  /** Rules → actions. A rule matches an entry when it names the rule, carries one of its tags, or is at least as severe as its priority. */
  actions: z.array(z.strictObject({
    rules: z.array(z.string()).default([]),
    tags: z.array(z.string()).default([]),
    priority: z.string().refine((s) => parsePriority(s) !== undefined, { message: 'not a priority (emergency … debug)' }).optional(),
    do: z.array(actionName).min(1),
  })).default([]),
  /** Never acted on, whatever matched. */
  allow: z.strictObject({
    exe_paths: z.array(z.string()).default([]),
    images: z.array(z.string()).default([]),
    namespaces: z.array(z.string()).default([]),
  }).default({ exe_paths: [], images: [], namespaces: [] }),
  /** How long block_destination keeps an address blocked. */
  block_ttl_s: z.number().int().positive().default(3600),
  /**
   * CIDRs (or addresses) block_destination never blocks, on top of what it finds itself (the
   * resolvers, default gateways, the node's addresses, the Kubernetes API, the alert outputs).
   */
  block_protect: z.array(z.string()).optional().superRefine((list, ctx) => {
    (list ?? []).forEach((c, i) => {
      if (!parseNet(c.trim())) ctx.addIssue({ code: 'custom', path: [i], message: notACidr(c) });
    });
  }),
});

export type ResponseConfig = z.infer<typeof responseSection>;
