/**
 * `minewatch run --record FILE`: the events the pipeline saw, enriched, as JSON lines in the replay
 * format (sources/replay.ts reads them back). The file is created 0600 (never chmod'ed after: no
 * moment where another user could open it) and holds no environment: processes' `env` is left out,
 * since it carries tokens and passwords, and so is an exec's `execSig`, a hash of it among the rest
 * (the eBPF driver's quiet records: of no use to a replay).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Event } from '../events.js';

/** Bigints as decimal strings (as encodeEvent does); a process's env dropped at any depth, and an exec's signature. */
function replacer(this: unknown, key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (key === 'execSig') return undefined;
  if (key === 'env' && Array.isArray(value) && this !== null && typeof this === 'object' && typeof (this as { pid?: unknown }).pid === 'number') return undefined;
  return value;
}

export function recordLine(ev: Event): string {
  return JSON.stringify(ev, replacer);
}

export class EventRecorder {
  private fd: number | undefined;
  /** Events written, since start. */
  written = 0;

  /** Throws (ENOENT, EACCES, EEXIST…) naming the file when it cannot be created. */
  constructor(readonly path: string) {
    try {
      // O_EXCL: the file is new, so it has the mode given here, and a link planted at the path is refused.
      this.fd = openSync(path, 'wx', 0o600);
    } catch (e) {
      throw new Error(`--record ${path}: cannot create the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); an existing file is never overwritten: remove it or choose another name; else check the folder exists and is writable`);
    }
  }

  /** Write one event (synchronously: the file then holds every event evaluated, even on a crash). */
  readonly record = (ev: Event): void => {
    if (this.fd === undefined) return;
    writeSync(this.fd, recordLine(ev) + '\n');
    this.written++;
  };

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
