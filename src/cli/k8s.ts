/** `minewatch k8s …`: Kubernetes commands. `k8s scan --manifests PATH|-` judges YAML manifests offline. */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { escapeControl } from '../engine/escape.js';
import type { Engine } from '../engine/index.js';
import { type Finding, ManifestError, type ScanObject, parseManifests, scanEngine, scanItems } from '../k8s/scan.js';
import { clusterScanInput, problemLines, scanClientOptions } from '../k8s/cluster-scan.js';
import { collect, printLoadError } from './common.js';

interface ScanOpts {
  manifests?: string;
  kubeconfig?: string;
  rules?: string[];
  json?: boolean;
}

export function registerK8s(program: Command): void {
  const k8s = program.command('k8s').description('Kubernetes: scan workloads and manifests for cryptomining');
  k8s
    .command('scan')
    .description('find workloads that match the mining rules (images, commands, requests without limits) and namespaces without a ResourceQuota or LimitRange; changes nothing. Exit 1 when something is found')
    .option('-m, --manifests <path>', 'YAML manifests to scan offline: a file, a folder (its .yaml/.yml/.json files) or "-" for standard input (helm template … | minewatch k8s scan --manifests -)')
    .option('--kubeconfig <path>', 'the cluster to scan without --manifests (default: $KUBECONFIG, the pod\'s service account, ~/.kube/config); needs list on workloads, namespaces, resourcequotas, limitranges')
    .option('-r, --rules <file>', 'rules file or folder (repeatable, in order; "default" = minewatch\'s own)', collect)
    .option('--json', 'print findings as JSON')
    .action(async (opts: ScanOpts) => {
      process.exitCode = await scan(opts);
    });
}

function manifestFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .map((f) => `${path.replace(/\/$/, '')}/${f}`);
}

function readManifests(path: string): ScanObject[] {
  if (path === '-') return parseManifests(readFileSync(0, 'utf8'), '<stdin>');
  return manifestFiles(path).flatMap((f) => parseManifests(readFileSync(f, 'utf8'), f));
}

function table(findings: Finding[]): string {
  // Manifests under review are the pushers' text: escaped, a name cannot add a row of its own.
  const rows = findings.map((f) => [f.priority, f.kind, f.namespace ? `${f.namespace}/${f.name}` : f.name, f.rule, f.origin ?? ''].map(escapeControl));
  const head = ['PRIORITY', 'KIND', 'NAME', 'RULE', 'WHERE'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** The cluster's workloads, read-only; findings about kinds that could not be listed are left out. */
async function scanCluster(opts: ScanOpts, engine: Engine): Promise<number> {
  let input;
  try {
    input = await clusterScanInput(scanClientOptions(opts.kubeconfig));
  } catch (e) {
    process.stderr.write(`k8s scan: ${(e as Error).message}\n`);
    return 2;
  }
  for (const l of problemLines(input.problems)) process.stderr.write(l + '\n');
  const unknownQuota = input.namespaces.some((n) => n.resourceQuota === undefined);
  const unknownLimits = input.namespaces.some((n) => n.limitRange === undefined);
  const findings = scanItems(input.items, engine).filter(
    (f) => !(unknownQuota && f.rule === 'Namespace Without ResourceQuota') && !(unknownLimits && f.rule === 'Namespace Without LimitRange'),
  );
  report(opts, findings, input.items.length, ` in ${input.server}`);
  return findings.length ? 1 : input.problems.length ? 2 : 0;
}

function report(opts: ScanOpts, findings: Finding[], objects: number, where = ''): void {
  if (opts.json) process.stdout.write(JSON.stringify({ objects, findings }, null, 2) + '\n');
  else if (findings.length) process.stdout.write(table(findings) + '\n');
  else process.stdout.write(`no findings in ${objects} object(s)${where}\n`);
}

async function scan(opts: ScanOpts): Promise<number> {
  let engine: Engine;
  try {
    engine = scanEngine(opts.rules);
  } catch (e) {
    return printLoadError(e);
  }
  if (!opts.manifests) return scanCluster(opts, engine);
  let objects: ScanObject[];
  try {
    objects = readManifests(opts.manifests);
  } catch (e) {
    if (e instanceof ManifestError) process.stderr.write(`k8s scan: ${e.message}\n`);
    else process.stderr.write(`k8s scan: cannot read ${opts.manifests}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the path\n`);
    return 2;
  }
  const findings = scanItems(objects, engine);
  report(opts, findings, objects.length);
  return findings.length ? 1 : 0;
}
