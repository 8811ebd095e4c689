/** `minewatch k8s …`: Kubernetes commands. `k8s scan --manifests PATH|-` judges YAML manifests offline. */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import type { Engine } from '../engine/index.js';
import { type Finding, ManifestError, type ScanObject, parseManifests, scanEngine, scanItems } from '../k8s/scan.js';
import { collect, printLoadError } from './common.js';

interface ScanOpts {
  manifests?: string;
  rules?: string[];
  json?: boolean;
}

export function registerK8s(program: Command): void {
  const k8s = program.command('k8s').description('Kubernetes: scan workloads and manifests for cryptomining');
  k8s
    .command('scan')
    .description('find workloads that match the mining rules (images, commands, requests without limits) and namespaces without a ResourceQuota or LimitRange; changes nothing. Exit 1 when something is found')
    .option('-m, --manifests <path>', 'YAML manifests to scan offline: a file, a folder (its .yaml/.yml/.json files) or "-" for standard input (helm template … | minewatch k8s scan --manifests -)')
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
  const rows = findings.map((f) => [f.priority, f.kind, f.namespace ? `${f.namespace}/${f.name}` : f.name, f.rule, f.origin ?? '']);
  const head = ['PRIORITY', 'KIND', 'NAME', 'RULE', 'WHERE'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

async function scan(opts: ScanOpts): Promise<number> {
  if (!opts.manifests) {
    process.stderr.write('k8s scan: give --manifests PATH|- (a cluster-wide scan needs the Kubernetes API client, which this build does not have)\n');
    return 2;
  }
  let engine: Engine;
  try {
    engine = scanEngine(opts.rules);
  } catch (e) {
    return printLoadError(e);
  }
  let objects: ScanObject[];
  try {
    objects = readManifests(opts.manifests);
  } catch (e) {
    if (e instanceof ManifestError) process.stderr.write(`k8s scan: ${e.message}\n`);
    else process.stderr.write(`k8s scan: cannot read ${opts.manifests}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the path\n`);
    return 2;
  }
  const findings = scanItems(objects, engine);
  if (opts.json) process.stdout.write(JSON.stringify({ objects: objects.length, findings }, null, 2) + '\n');
  else if (findings.length) process.stdout.write(table(findings) + '\n');
  else process.stdout.write(`no findings in ${objects.length} object(s)\n`);
  return findings.length ? 1 : 0;
}
