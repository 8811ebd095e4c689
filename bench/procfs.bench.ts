/**
 * The /proc read of one process on the exec path, with the image marks that keep two images of
 * one pid apart (issue 13, item 11: the executable's inode, comm and memory layout read before and
 * after the other files), against a baseline measured in the same run on the same processes: the
 * same files read once, without marks (the reader as it was). Prints µs per read for both, the
 * ratio, and the spread over rounds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readlink, readFile } from 'node:fs/promises';
import { readProcess } from '../src/platform/procfs.js';
import { fmt, median } from './lib.js';

/** The files the reader takes, read once in parallel after stat: the baseline. */
async function plainRead(pid: number): Promise<unknown> {
  const dir = `/proc/${pid}`;
  const q = (p: string) => readFile(`${dir}/${p}`).catch(() => undefined);
  const l = (p: string) => readlink(`${dir}/${p}`).catch(() => undefined);
  const stat = await q('stat');
  if (stat === undefined) return undefined;
  return Promise.all([q('status'), q('cmdline'), q('comm'), l('exe'), l('cwd'), l('root'), q('loginuid'), q('cgroup'), l('ns/mnt')]);
}

export async function procfsReadBench(): Promise<void> {
  const kids: ChildProcess[] = Array.from({ length: 20 }, () => spawn('sleep', ['60'], { stdio: 'ignore' }));
  try {
    await new Promise((r) => setTimeout(r, 200));
    const pids = kids.map((k) => k.pid!);
    const READS = 1000;
    const rounds: { marked: number; plain: number }[] = [];
    for (let round = 0; round < 7; round++) {
      const time = async (f: (pid: number) => Promise<unknown>): Promise<number> => {
        const t0 = performance.now();
        for (let i = 0; i < READS; i++) await f(pids[i % pids.length]!);
        return ((performance.now() - t0) * 1000) / READS;
      };
      // Alternate which goes first, so warm-up and drift do not favour one.
      if (round % 2) rounds.push({ plain: await time(plainRead), marked: await time((p) => readProcess(p)) });
      else rounds.push({ marked: await time((p) => readProcess(p)), plain: await time(plainRead) });
    }
    const used = rounds.slice(1);
    const ratios = used.map((r) => r.marked / r.plain);
    console.log(`one process read from /proc, ${READS} reads × ${used.length} rounds (first round dropped as warm-up):`);
    console.log(`  with image marks (now):   ${fmt(median(used.map((r) => r.marked)), 1)} µs per read`);
    console.log(`  baseline, one plain read: ${fmt(median(used.map((r) => r.plain)), 1)} µs per read`);
    console.log(`  ratio marked / plain: ${fmt(median(ratios), 2)} (spread ${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)})`);
  } finally {
    for (const k of kids) k.kill('SIGKILL');
  }
}
