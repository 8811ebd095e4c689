/**
 * The CI miner check: µs per pipeline file over the fixture set (test/fixtures/github: 28
 * workflows, composite actions, GitLab, CircleCI, Azure, Jenkinsfiles), beside the baseline of
 * Falco's github plugin's per-line substring check on the same files in the same run. The parsed
 * check costs more per file; a workflow is checked once per blob (cached), so what matters is
 * that it stays far below the GitHub API call that fetches the file (tens of ms).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { singleFileKind } from '../src/github/ci-files.js';
import { scanCiText } from '../src/github/miners.js';
import { pluginSubstringCheck } from '../test/helpers/plugin-miner-check.js';
import { fmt, median } from './lib.js';

const DIR = fileURLToPath(new URL('../../test/fixtures/github/', import.meta.url));

function files(): Array<{ name: string; text: string }> {
  return ['miner', 'clean'].flatMap((k) => readdirSync(DIR + k).sort().map((name) => ({ name, text: readFileSync(`${DIR}${k}/${name}`, 'utf8') })));
}

function timePerFile(set: Array<{ name: string; text: string }>, fn: (f: { name: string; text: string }) => unknown, rounds: number): number {
  const runs: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    for (let i = 0; i < rounds; i++) for (const f of set) fn(f);
    runs.push(((performance.now() - t0) * 1000) / (rounds * set.length));
  }
  return median(runs);
}

export function githubScanBench(): void {
  const set = files();
  // Warm both paths (JIT, the IOC lists read once from the rules file).
  for (const f of set) (scanCiText(f.text, f.name, singleFileKind(f.name)), pluginSubstringCheck(f.text));
  const ours = timePerFile(set, (f) => scanCiText(f.text, f.name, singleFileKind(f.name)), 20);
  const base = timePerFile(set, (f) => pluginSubstringCheck(f.text), 200);
  const bytes = set.reduce((n, f) => n + f.text.length, 0) / set.length;
  console.log(`files: ${set.length}, mean size ${fmt(bytes)} bytes`);
  console.log(`plugin substring check (baseline): ${fmt(base, 2)} µs/file`);
  console.log(`minewatch parsed check:            ${fmt(ours, 1)} µs/file  (${fmt(ours / base, 0)}× the baseline)`);
}
