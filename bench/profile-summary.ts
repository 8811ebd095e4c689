/**
 * Sum self time per function in a V8 .cpuprofile (from `node --cpu-prof dist/bench/run.js`) and
 * print the top entries with their file and share of the total.
 *
 *   node dist/bench/profile-summary.js PROFILE.cpuprofile [TOP=40] [--by-file]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, ...rest] = process.argv.slice(2);
if (!file) {
  console.error('usage: node dist/bench/profile-summary.js PROFILE.cpuprofile [TOP] [--by-file]');
  process.exit(2);
}
const top = Number(topArg ?? 40) || 40;
const byFile = rest.includes('--by-file') || topArg === '--by-file';
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i]!;
  self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
}
const short = (url: string): string => url.replace(/^file:\/\//, '').replace(/^.*\/dist\//, 'dist/');
const sums = new Map<string, number>();
let total = 0;
for (const [id, us] of self) {
  const cf = byId.get(id)!.callFrame;
  const key = byFile
    ? short(cf.url) || `(${cf.functionName || 'native'})`
    : `${cf.functionName || '(anonymous)'}  ${short(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  sums.set(key, (sums.get(key) ?? 0) + us);
  total += us;
}
console.log(`total sampled ${(total / 1000).toFixed(0)} ms`);
for (const [k, us] of [...sums].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
}
