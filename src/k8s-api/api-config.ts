/**
 * The Kubernetes API part of the `k8s` config section (`k8s.api`): where the API server is, this
 * node's name, and pod enrichment. The section itself (with `audit` and `admission`) is assembled
 * elsewhere; this module exports its `api` schema and what turns it into a client and a watcher.
 *
 *   k8s:
 *     api:
 *       kubeconfig: ""            # empty: the in-cluster service account
 *       node_name: ""             # empty: the NODE_NAME env (fieldRef spec.nodeName)
 *       enrich:
 *         enabled: auto           # auto: on when running in a pod or a kubeconfig is set
 *         resync_interval_s: 300
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { K8sClientOptions } from './client.js';

export const k8sEnrichSchema = z.strictObject({
  /** true, false, or auto (on when an API server is reachable by config: in a pod, or a kubeconfig). */
  enabled: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  /** Full relist of this node's pods, on top of the watch. */
  resync_interval_s: z.number().int().min(10).default(300),
});

export const k8sApiSchema = z.strictObject({
  /** A kubeconfig file; empty: the in-cluster service account. */
  kubeconfig: z.string().default(''),
  /** An API server URL to use instead (with token_file); for tests and out-of-cluster agents. */
  server: z.string().url().optional(),
  /** File with the bearer token sent to `server`. */
  token_file: z.string().min(1).optional(),
  /** This node's name; empty: the NODE_NAME env. */
  node_name: z.string().default(''),
  enrich: k8sEnrichSchema.default({ enabled: 'auto', resync_interval_s: 300 }),
}).refine((a) => !(a.server && a.kubeconfig), { message: 'set server or kubeconfig, not both' });

export type K8sApiConfig = z.infer<typeof k8sApiSchema>;

export const K8S_API_DEFAULT: K8sApiConfig = { kubeconfig: '', node_name: '', enrich: { enabled: 'auto', resync_interval_s: 300 } };

/** The key and schema to add to the `k8s` section's shape. */
export const K8S_API_SHAPE = { api: k8sApiSchema.default(K8S_API_DEFAULT) };

/** Client options from the config; throws naming the key when a file cannot be read. */
export function clientOptions(cfg: K8sApiConfig): K8sClientOptions {
  if (cfg.server) {
    let token: string | undefined;
    if (cfg.token_file) {
      try {
        token = readFileSync(cfg.token_file, 'utf8').trim();
      } catch (e) {
        throw new Error(`k8s.api.token_file: cannot read ${cfg.token_file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the path and its permissions`);
      }
    }
    return { server: cfg.server, token };
  }
  if (cfg.kubeconfig) return { kubeconfig: cfg.kubeconfig };
  return { inCluster: true };
}

/** This node's name from the config or the NODE_NAME env. */
export function nodeName(cfg: K8sApiConfig, env: NodeJS.ProcessEnv = process.env): string {
  return cfg.node_name || env.NODE_NAME || '';
}

/** Whether pod enrichment runs: always when on, never when off, and for auto when an API server is configured or we run in a pod. */
export function enrichEnabled(cfg: K8sApiConfig, env: NodeJS.ProcessEnv = process.env): boolean {
  const e = cfg.enrich.enabled;
  if (e !== 'auto') return e;
  return Boolean(cfg.server || cfg.kubeconfig || env.KUBERNETES_SERVICE_HOST);
}
