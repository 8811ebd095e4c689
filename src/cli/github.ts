/** `minewatch github scan PATH`: the CI miner check on a checkout, as a pre-merge gate. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { escapeControl } from '../engine/escape.js';
import { findCiFiles } from '../github/ci-files.js';
import { type MinerFinding, scanCiText } from '../github/miners.js';

interface ScanOpts {
  json?: boolean;
}

export function registerGithub(program: Command): void {
  const gh = program.command('github').description('GitHub and CI pipelines: check workflow definitions for crypto miners');
  gh.command('scan')
    .description('check the CI definitions of a checkout for miners (.github/workflows, composite actions, .gitlab-ci.yml, Jenkinsfile, .circleci/config.yml, azure-pipelines.yml); exit 1 when any is found')
    .argument('<path>', 'a checkout folder, or one CI file')
    .option('--json', 'print one JSON document: files scanned, findings with file and line, problems')
    .action((path: string, opts: ScanOpts) => {
      process.exitCode = scan(path, opts);
    });
}

function scan(path: string, opts: ScanOpts): number {
  let files;
  try {
    files = findCiFiles(path);
  } catch (e) {
    process.stderr.write(`minewatch github scan: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give a checkout folder or a CI file\n`);
    return 2;
  }
  const findings: MinerFinding[] = [];
  const problems: { file: string; message: string }[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f.path, 'utf8');
    } catch (e) {
      problems.push({ file: f.rel, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
      continue;
    }
    const r = scanCiText(text, f.rel, f.kind);
    if (r.parseError) problems.push({ file: f.rel, message: `not valid YAML (${r.parseError}); read line by line instead` });
    findings.push(...r.findings);
  }
  if (opts.json) {
    process.stdout.write(JSON.stringify({ path, files_scanned: files.map((f) => f.rel), findings, problems }, null, 2) + '\n');
  } else {
    for (const p of problems) process.stderr.write(`${p.file}: warning: ${p.message}\n`);
    // A checkout's file names and contents are the pushers': escaped, one finding stays one line.
    for (const f of findings) process.stdout.write(escapeControl(`${f.file}:${f.line}: ${f.type}: ${f.detail}`) + '\n');
    const withFindings = new Set(findings.map((f) => f.file)).size;
    process.stderr.write(`scanned ${files.length} CI file(s) under ${path}: ${findings.length ? `${findings.length} miner finding(s) in ${withFindings} file(s)` : 'no miners found'}\n`);
  }
  return findings.length > 0 ? 1 : 0;
}
