/**
 * Helpers for tests that watch this machine's real processes: child processes that report what
 * they did on stdout, waiting for events with a generous deadline, network namespaces with
 * documentation-range addresses, and the lookup functions the process table would provide.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ContainerInfo, Event, ProcessInfo, SyscallEvent } from '../../src/events.js';

export const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

export function haveCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** proc.name and args from /proc, as the process table would give them. */
export function procLookup(pid: number): ProcessInfo | undefined {
  try {
    const name = readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, '');
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (argv[argv.length - 1] === '') argv.pop();
    return { pid, name, exe: argv[0], args: argv.slice(1) };
  } catch {
    return undefined;
  }
}

export const hostContainer = (_pid: number): ContainerInfo | undefined => ({ id: 'host' });

/** A child that prints one JSON line when it is ready, then keeps running until killed. */
export interface Reporter {
  child: ChildProcess;
  /** The child's first stdout line, parsed. */
  ready: Promise<Record<string, unknown>>;
}

/** Run `node -e script`, optionally inside a network namespace (`ip netns exec NS`). */
export function nodeChild(script: string, netns?: string): Reporter {
  const child = netns
    ? spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        try {
          resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
        } catch (e) {
          reject(e);
        }
      }
    });
    child.on('exit', (code, sig) => reject(new Error(`child exited (${code ?? sig}) before it was ready: ${err}`)));
    child.on('error', reject);
  });
  // A rejected ready that nobody awaits (the test failed earlier) must not crash the runner.
  ready.catch(() => {});
  return { child, ready };
}

export function killAll(children: Iterable<ChildProcess>): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

/** Wait until pred holds for some collected event (polling), or fail after timeoutMs. */
export async function waitForEvent(
  events: Event[],
  pred: (ev: SyscallEvent) => boolean,
  timeoutMs: number,
  what: string,
): Promise<SyscallEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (events as SyscallEvent[]).find(pred);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no event within ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Run a command, throwing with its stderr when it fails. */
export function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}

/** Run a command, ignoring failure (cleanup of what may not exist). */
export function tryRun(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    /* nothing to clean */
  }
}
