/**
 * Glue for `minewatch k8s scan` without --manifests: find the cluster the way kubectl does
 * (--kubeconfig, else $KUBECONFIG, else the in-cluster service account, else ~/.kube/config), list
 * it read-only, and hand the scanner `{ object, origin }` items plus the problems to print.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { K8sClientOptions } from '../k8s-api/client.js';
import type { ListOptions, ListProblem, NamespaceSummary } from './workloads.js';

export interface ClusterScanInput {
  items: Array<{ object: unknown; origin: string }>;
  namespaces: NamespaceSummary[];
  problems: ListProblem[];
  server: string;
}

/** Where the scan finds the cluster; throws a message naming what to pass when there is none. */
export function scanClientOptions(kubeconfig: string | undefined, env: NodeJS.ProcessEnv = process.env): K8sClientOptions {
  if (kubeconfig) return { kubeconfig };
  const fromEnv = env.KUBECONFIG?.split(delimiter).find((p) => p && existsSync(p));
  if (fromEnv) return { kubeconfig: fromEnv };
  if (env.KUBERNETES_SERVICE_HOST) return { inCluster: true };
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return { kubeconfig: home };
  throw new Error('no cluster to scan: give --kubeconfig PATH (or set KUBECONFIG), run inside a pod, or scan files offline with --manifests PATH|-');
}

export async function clusterScanInput(client: K8sClientOptions, opts: ListOptions = {}): Promise<ClusterScanInput> {
  // Loaded here: the client takes a second or two to load and offline scans never need it.
  const [{ K8sClient }, { listClusterWorkloads }] = await Promise.all([import('../k8s-api/client.js'), import('./workloads.js')]);
  const c = new K8sClient(client);
  const listing = await listClusterWorkloads(c, opts);
  return {
    items: listing.objects.map((object) => ({ object, origin: 'cluster' })),
    namespaces: listing.namespaces,
    problems: listing.problems,
    server: c.server,
  };
}

/** One line per problem, for standard error. */
export function problemLines(problems: ListProblem[]): string[] {
  return problems.map((p) => `k8s scan: ${p.message}`);
}
