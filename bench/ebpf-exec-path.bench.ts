/**
 * The eBPF driver's user-space cost per exec, without a kernel: ring buffer batches as the BPF
 * programs lay them out (a fork, an exec and an exit per short-lived command, as an exec storm
 * brings them) go through the driver's decoder and source, the process table (the agent's
 * applyNow-else-onNotice path), the fd table and argument names, and the default rules.
 *
 * Figure: CPU per exec (process.cpuUsage: the JS thread and V8's GC helpers), rounds alternating,
 * beside a baseline in the same process: the checkout at MW_BENCH_BASE (its dist/, built) when
 * given, else the decoder alone on the same batches (the floor of the path).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fmt, median } from './lib.js';
import { execRecord, recordHeader } from '../test/helpers/ebpf-records.js';

const EXECS = Number(process.env.MW_BENCH_EXECS ?? 20_000);
const ROUNDS = Number(process.env.MW_BENCH_ROUNDS ?? 3) || 3;
/** Commands per ring buffer batch: ~1,000 execs/s gathered for 4 ms. */
const PER_BATCH = 4;
const FIRST_PID = 5_000_000; // above any pid_max: never a live process's /proc

interface Modules {
  ProcessTable: new (opts: object) => {
    seed(): number;
    get(pid: number): unknown;
    containerOf(pid: number): unknown;
    applyNow(n: unknown): unknown;
    onNotice(n: unknown): Promise<unknown>;
    close(): void;
  };
  EbpfSource: new (opts: object) => { start(notify: (n: unknown) => void): Promise<void>; stop(): Promise<void> };
  RecordDecoder: new (clock: object) => { forEach?(b: Buffer, fn: (r: unknown) => void): void; records(b: Buffer): Iterable<unknown> };
  FdTable: new () => unknown;
  SyscallEnricher: new (dns: unknown, pods: () => undefined, args: object) => { enrich(ev: unknown): void };
  DnsCache: new () => unknown;
  UserDb: new () => unknown;
  Engine: { fromFiles(paths: string[]): { process(ev: unknown): Iterable<unknown> } };
  DEFAULT_RULES_FILES: string[];
  PairCounter: new () => { inc(a: string, b: string): void };
}

async function modulesOf(root: string): Promise<Modules> {
  const m = async (p: string) => (await import(pathToFileURL(join(root, 'dist', p)).href)) as Record<string, unknown>;
  const [pt, src, dec, fd, en, dns, users, eng, pc] = await Promise.all([
    m('src/enrich/process-table.js'), m('src/sources/ebpf/index.js'), m('src/sources/ebpf/decode.js'), m('src/enrich/fd-table.js'),
    m('src/pipeline/enrich.js'), m('src/enrich/dns.js'), m('src/enrich/users.js'), m('src/engine/index.js'), m('src/platform/pair-counter.js'),
  ]);
  return {
    ProcessTable: pt.ProcessTable, EbpfSource: src.EbpfSource, RecordDecoder: dec.RecordDecoder, FdTable: fd.FdTable,
    SyscallEnricher: en.SyscallEnricher, DnsCache: dns.DnsCache, UserDb: users.UserDb, Engine: eng.Engine,
    DEFAULT_RULES_FILES: eng.DEFAULT_RULES_FILES, PairCounter: pc.PairCounter,
  } as unknown as Modules;
}

/** fork (by `ppid`), exec of /bin/true and exit of `pid`, as minewatch.h lays them out. */
function command(pid: number, ppid: number, startNs: bigint, env: Buffer): Buffer {
  const head = (tsNs: bigint, comm: string) => ({ pid, tid: pid, uid: 0, tsNs, startNs, comm });
  const fork = Buffer.alloc(56);
  recordHeader(fork, 2, 56, head(startNs, 'bash'));
  fork.writeUInt32LE(ppid, 48);
  fork.writeInt32LE(pid, 52);
  const exec = execRecord(head(startNs + 300_000n, 'true'), {
    ppid,
    nr: 59,
    envSize: env.length,
    argv: Buffer.from('/bin/true\0'),
    fname: Buffer.from('/bin/true\0'),
    path: Buffer.from('true\0bin\0usr\0'),
    cgroup: Buffer.from('session-1.scope\0user-0.slice\0user.slice\0'),
    env,
    flags: 32, // facts read
    ids: [0, 0, 0, 0, 0xffffffff, pid, 0, (8 << 20) | 1],
    ino: 1234567n,
    mtimeNs: 1_700_000_000_000_000_001n,
    ctimeNs: 1_700_000_000_000_000_002n,
    size: 35_000n,
    mode: 0o100755,
    cgroupId: 4242n,
    capEff: 0x1ffffffffffn,
    capPrm: 0x1ffffffffffn,
  });
  const exit = Buffer.alloc(56);
  recordHeader(exit, 3, 56, head(startNs + 900_000n, 'true'));
  exit.writeUInt32LE(ppid, 48);
  return Buffer.concat([fork, exec, exit]);
}

/** The storm's batches: EXECS commands of this process, PER_BATCH to a batch, pids never reused. */
function storm(round: number): Buffer[] {
  const uptimeNs = BigInt(Math.round(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1e9));
  const env = Buffer.from(Object.entries(process.env).slice(0, 20).map(([k, v]) => `${k}=${v}\0`).join(''), 'latin1');
  const batches: Buffer[] = [];
  for (let i = 0; i < EXECS; i += PER_BATCH) {
    const parts: Buffer[] = [];
    for (let j = i; j < Math.min(EXECS, i + PER_BATCH); j++) parts.push(command(FIRST_PID + round * EXECS + j, process.pid, uptimeNs + BigInt(j) * 1_000_000n, env));
    batches.push(Buffer.concat(parts));
  }
  return batches;
}

/** The agent's path for one checkout's modules; returns a function that feeds it a storm. */
interface Path {
  run: (batches: Buffer[]) => void;
  stop: () => Promise<void>;
  evaluated: () => number;
}

async function pathOf(m: Modules): Promise<Path> {
  const table = new m.ProcessTable({ containerWaitMs: 50 });
  table.seed();
  const users = new m.UserDb();
  const fds = new m.FdTable();
  const enrich = new m.SyscallEnricher(new m.DnsCache(), () => undefined, { fds, users, table });
  const engine = m.Engine.fromFiles(m.DEFAULT_RULES_FILES);
  const counts = new m.PairCounter();
  let evaluated = 0;
  const evaluate = (ev: { source: string; type: string }) => {
    evaluated++;
    counts.inc(ev.source, ev.type);
    enrich.enrich(ev);
    for (const _ of engine.process(ev)) void _;
  };
  let deliver: ((batch: Buffer, offset: bigint) => void) | undefined;
  const addon = {
    open: (_o: string, _opts: unknown, cb: (batch: Buffer, offset: bigint) => void) => ((deliver = cb), {}),
    close: () => undefined,
    stats: () => ({ events: 0, drops: 0, queueDrops: 0, fpu: 'off' }),
    setSysFlags: () => undefined,
  };
  const src = new m.EbpfSource({ addon: { addon, objectPath: 'none', parts: 'built here' }, lookup: (pid: number) => table.get(pid), containerOf: (pid: number) => table.containerOf(pid), wanted: () => false });
  await src.start((n) => {
    const now = table.applyNow(n);
    if (now !== undefined) {
      if (now) evaluate(now as { source: string; type: string });
      return;
    }
    void table.onNotice(n).then((ev) => ev && evaluate(ev as { source: string; type: string }));
  });
  const offset = BigInt(Date.now()) * 1_000_000n - BigInt(Math.round(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1e9));
  return {
    run: (batches) => {
      for (const b of batches) deliver!(b, offset);
    },
    stop: async () => {
      await src.stop();
      table.close();
    },
    evaluated: () => evaluated,
  };
}

/** CPU µs per exec of one storm, with the promises it left settled and the immediates it set run. */
async function measure(run: (batches: Buffer[]) => void, batches: Buffer[]): Promise<number> {
  const t0 = process.cpuUsage();
  run(batches);
  await new Promise((r) => setImmediate(r));
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / EXECS;
}

export async function ebpfExecPathBench(): Promise<void> {
  if (process.platform !== 'linux') {
    console.log('ebpf_exec_path  skipped: the process table reads /proc (Linux only)');
    return;
  }
  const base = process.env.MW_BENCH_BASE;
  if (base && !existsSync(join(base, 'dist/src/enrich/process-table.js'))) {
    console.log(`ebpf_exec_path  MW_BENCH_BASE=${base}: no dist/ there; build that checkout first (npx tsc -p tsconfig.json there)`);
    return;
  }
  const here = resolve(new URL('../..', import.meta.url).pathname);
  const mine = await pathOf(await modulesOf(here));
  const floorDecoder = new (await modulesOf(here)).RecordDecoder({ offset: 0n, btimeNs: 0n, clkTck: 100 });
  const baseline: Path = base
    ? await pathOf(await modulesOf(base))
    : { run: (bs: Buffer[]) => bs.forEach((b) => [...floorDecoder.records(b)]), stop: async () => undefined, evaluated: () => NaN };
  const label = base ? `base ${base}` : 'decoder alone';
  const ours: number[] = [];
  const theirs: number[] = [];
  // A warm-up storm each (JIT), then rounds alternating which goes first.
  await measure(mine.run, storm(0));
  await measure(baseline.run, storm(1));
  for (let r = 0; r < ROUNDS; r++) {
    const a = storm(2 + 2 * r);
    const b = storm(3 + 2 * r);
    if (r % 2 === 0) {
      ours.push(await measure(mine.run, a));
      theirs.push(await measure(baseline.run, b));
    } else {
      theirs.push(await measure(baseline.run, b));
      ours.push(await measure(mine.run, a));
    }
  }
  // Both must have evaluated every exec (the storms' and the warm-up's): else the figures compare different work.
  const storms = ROUNDS + 1;
  console.log(`  exec events evaluated per exec: this ${(mine.evaluated() / (storms * EXECS)).toFixed(2)}, baseline ${(baseline.evaluated() / (storms * EXECS)).toFixed(2)}`);
  await mine.stop();
  await baseline.stop();
  const range = (xs: number[]) => `${fmt(Math.min(...xs), 1)}–${fmt(Math.max(...xs), 1)}`;
  console.log(`ebpf_exec_path  ${fmt(EXECS)} short-lived commands (fork, exec, exit), ${PER_BATCH} per batch, ${ROUNDS} rounds`);
  console.log(`  this checkout: ${fmt(median(ours), 1)} µs CPU per exec (${range(ours)})`);
  console.log(`  ${label}: ${fmt(median(theirs), 1)} µs CPU per exec (${range(theirs)})`);
  console.log(`  ratio this/baseline: ${(median(ours) / median(theirs)).toFixed(2)}`);
}
