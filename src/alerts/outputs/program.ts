/**
 * Alerts piped to a command's standard input, one a line, as Falco's program_output does: `sh -c
 * PROGRAM`, one process per alert, or with `keep_alive` one long-running process for all of them.
 *
 * When is an alert accepted? One process per alert: when the process exits 0 (a failing command,
 * say a curl that could not connect, fails the delivery and the queue retries it). Kept alive: when
 * the line is in the pipe. A kept process that dies is restarted on the next alert; a freshly
 * started one must survive a short grace period, so a command that cannot run at all (a typo,
 * a missing binary) fails deliveries instead of swallowing them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AlertMessage } from '../types.js';
import { FilteredOutput, type OutputOptions, RetryableDeliveryError, withDeadline } from './base.js';
import { type LineFormat, renderLine } from './render.js';

/** How long a newly started kept-alive program must live before its first alert counts as taken. */
const START_GRACE_MS = 200;
/** How much of a failing program's standard error is quoted in the delivery error. */
const STDERR_TAIL = 400;

export interface ProgramOutputOptions extends OutputOptions {
  program: string;
  keepAlive: boolean;
  format: LineFormat;
  timeoutMs: number;
}

interface Running {
  child: ChildProcess;
  startedAt: number;
  stderr: string;
  /** Settles when the process has exited: its exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export class ProgramOutput extends FilteredOutput {
  private readonly opts: ProgramOutputOptions;
  private kept: Running | undefined;

  constructor(opts: ProgramOutputOptions) {
    super(opts);
    this.opts = opts;
  }

  /** The kept-alive process's pid, when one is running. */
  get pid(): number | undefined {
    return this.kept?.child.pid;
  }

  private start(): Running {
    // Its own process group, so a timeout ends the whole pipeline `sh -c` started.
    const child = spawn('sh', ['-c', this.opts.program], { stdio: ['pipe', 'ignore', 'pipe'], detached: true });
    const run: Running = {
      child,
      startedAt: Date.now(),
      stderr: '',
      exited: new Promise((resolve) => {
        child.once('error', () => resolve({ code: null, signal: null }));
        child.once('close', (code, signal) => resolve({ code, signal }));
      }),
    };
    child.stderr!.on('data', (d: Buffer) => (run.stderr = (run.stderr + d.toString()).slice(-STDERR_TAIL)));
    // EPIPE when the program exits without reading: its exit status tells what happened.
    child.stdin!.on('error', () => undefined);
    return run;
  }

  private failure(run: Running, how: { code: number | null; signal: NodeJS.Signals | null }): RetryableDeliveryError {
    const end = how.signal ? `was killed by ${how.signal}` : how.code === null ? 'could not be started' : `exited with code ${how.code}`;
    const err = run.stderr.trim();
    return new RetryableDeliveryError(`${this.where}.program: '${this.opts.program}' ${end}${err ? `: ${err}` : ''}`);
  }

  private kill(run: Running): void {
    try {
      if (run.child.pid) process.kill(-run.child.pid, 'SIGKILL');
    } catch {
      run.child.kill('SIGKILL');
    }
  }

  protected deliver(msg: AlertMessage): Promise<void> {
    const line = renderLine(msg, this.opts.format) + '\n';
    return this.opts.keepAlive ? this.deliverKept(line) : this.deliverOnce(line);
  }

  private async deliverOnce(line: string): Promise<void> {
    const run = this.start();
    run.child.stdin!.end(line);
    const how = await withDeadline(run.exited, this.opts.timeoutMs, `${this.where}: '${this.opts.program}'`, () => this.kill(run));
    if (how.code !== 0) throw this.failure(run, how);
  }

  private async deliverKept(line: string): Promise<void> {
    let run = this.kept;
    if (!run || run.child.exitCode !== null || run.child.signalCode !== null) {
      run = this.kept = this.start();
      const started = run;
      void run.exited.then((how) => {
        if (this.kept === started) this.kept = undefined;
        if (how.code !== 0) this.log?.warn({ output: this.name, program: this.opts.program, code: how.code, signal: how.signal, stderr: started.stderr.trim() }, 'kept-alive alert program ended; it is restarted with the next alert');
      });
    }
    const current = run;
    const written = new Promise<void>((resolve, reject) => {
      current.child.stdin!.write(line, (err) => {
        if (!err) return resolve();
        // The pipe broke because the program ended: its exit status and stderr say why.
        const pause = sleep(1000, undefined, { ref: false });
        void Promise.race([current.exited, pause]).then((how) => {
          reject(how ? this.failure(current, how) : new RetryableDeliveryError(`${this.where}: cannot write to '${this.opts.program}': ${err.message}`));
        });
      });
    });
    await withDeadline(written, this.opts.timeoutMs, `${this.where}: '${this.opts.program}' does not read its input`, () => {
      // A program that stopped reading is as good as dead: the next alert starts a new one.
      this.kill(current);
      if (this.kept === current) this.kept = undefined;
    });
    const young = START_GRACE_MS - (Date.now() - current.startedAt);
    if (young > 0) {
      const early = await Promise.race([current.exited, sleep(young, undefined, { ref: false })]);
      if (early && early.code !== 0) throw this.failure(current, early);
    }
  }

  async close(): Promise<void> {
    const run = this.kept;
    this.kept = undefined;
    if (!run) return;
    run.child.stdin!.end();
    await withDeadline(run.exited, this.opts.timeoutMs, 'closing').catch(() => this.kill(run));
  }
}
