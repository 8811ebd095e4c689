/**
 * What redacting the environment costs each stored alert (src/alerts/redact.ts), in the same
 * process and rounds as its baseline:
 *   - the event as stored: encodeRedactedEvent against encodeEvent (the plain JSON it replaced), on
 *     a process with 40 environment variables and three parents with 40 each;
 *   - the output: redactOutput on a typical alert's fields (no environment field: the common
 *     case) and on one whose output shows %proc.env, against JSON.stringify of the same output and
 *     fields (what storing them costs anyway).
 * Ratios > 1 are slower than the baseline; the spread is the min–max ratio over the rounds.
 */
import { encodeRedactedEvent, redactOutput } from '../src/alerts/redact.js';
import { encodeEvent, type SyscallEvent } from '../src/events.js';
import { fmt, median } from './lib.js';

const ROUNDS = 7;
const N = 20_000;

function env(tag: string): string[] {
  return Array.from({ length: 40 }, (_, i) => `VAR_${tag}_${i}=/usr/local/lib/${tag}/value-${i}:/opt/${i}`);
}

function event(): SyscallEvent {
  const proc = (pid: number, parent?: object) => ({ pid, name: `p${pid}`, exepath: `/usr/bin/p${pid}`, args: ['-o', 'pool.example:3333'], env: env(String(pid)), uid: 1000, user: 'u', start_ts: 1_795_600_000_000_000_000n, parent });
  return { source: 'syscall', type: 'execve', ts: 1_795_600_000_000_000_000n, proc: proc(4, proc(3, proc(2, proc(1)))) } as unknown as SyscallEvent;
}

function time(fn: () => void): number {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) fn();
  return performance.now() - t0;
}

function compare(what: string, base: () => void, subject: () => void): void {
  for (let i = 0; i < 200; i++) {
    base();
    subject();
  }
  const ratios: number[] = [];
  const subjectUs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const b = time(base);
    const s = time(subject);
    ratios.push(s / b);
    subjectUs.push((s / N) * 1000);
  }
  console.log(`${what}: ${fmt(median(subjectUs), 2)} µs each, ${fmt(median(ratios), 2)}× the baseline (rounds ${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)}×)`);
}

export function redactBench(): void {
  const ev = event();
  let sink = 0;
  compare('stored event, redacted vs plain JSON (160 env vars over 4 processes)', () => (sink += encodeEvent(ev).length), () => (sink += encodeRedactedEvent(ev).length));
  const fields = { 'proc.name': 'xmrig', 'proc.pid': 4242, 'fd.name': '10.0.0.1:41000->198.51.100.7:3333', 'container.id': 'abcdef012345', 'proc.cmdline': 'xmrig -o pool.example:3333' };
  const output = 'Outbound connection to a mining pool (proc.name=xmrig proc.pid=4242 fd.name=10.0.0.1:41000->198.51.100.7:3333 container.id=abcdef012345)';
  compare('output without environment, redactOutput vs storing it (JSON)', () => (sink += JSON.stringify({ output, fields }).length), () => (sink += Object.keys(redactOutput(output, fields).fields).length));
  const envText = env('x').join(' ');
  const withEnv = { ...fields, 'proc.env': envText };
  const outputEnv = `${output} env=${envText}`;
  compare('output with %proc.env (40 vars), redactOutput vs storing it (JSON)', () => (sink += JSON.stringify({ output: outputEnv, fields: withEnv }).length), () => (sink += Object.keys(redactOutput(outputEnv, withEnv).fields).length));
  if (sink === 0) console.log('(nothing measured)');
}
