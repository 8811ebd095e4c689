/**
 * Kubernetes audit events from files: a kube-apiserver --audit-log-path file (one JSON Event per
 * line) followed as it grows and across rotation, and recorded files read once for replay. A line
 * may also hold an EventList, or an event already in minewatch's model (source k8s_audit).
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import { type Event, decodeEvent } from '../events.js';
import { AuditDecodeError, auditEvent, auditEventsOf } from '../k8s-api/audit-event.js';
import { isObj } from '../k8s-api/workload.js';
import { PollLoop } from './poll-loop.js';
import type { Source } from './types.js';

export class AuditLineError extends Error {
  constructor(readonly file: string, readonly line: number, readonly reason: string) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'AuditLineError';
  }
}

/** The events of one line; throws AuditDecodeError (or a JSON error) saying what is wrong with it. */
export function auditEventsOfLine(line: string): Event[] {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new AuditDecodeError(`not valid JSON (${(e as Error).message})`);
  }
  if (isObj(v) && v.source === 'k8s_audit' && 'payload' in v) return [decodeEvent(line)];
  return auditEventsOf(v).map((item) => auditEvent(item));
}

/** Read a recorded audit file ('-' for standard input) once. Bad lines go to onError and are skipped. */
export async function* readAuditFile(path: string, onError: (err: AuditLineError) => void): AsyncGenerator<Event> {
  const input = path === '-' ? process.stdin : createReadStream(path, { encoding: 'utf8' });
  const rl = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const raw of rl) {
      n++;
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      let evs: Event[];
      try {
        evs = auditEventsOfLine(line);
      } catch (e) {
        onError(new AuditLineError(path, n, (e as Error).message));
        continue;
      }
      for (const ev of evs) {
        ev.num ??= n;
        yield ev;
      }
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw new AuditLineError(path, 0, `cannot read audit file: ${(e as NodeJS.ErrnoException).code}; check the path`);
    throw e;
  } finally {
    rl.close();
  }
}

export interface AuditLogFollowerOptions {
  /** How often to look for new lines and for rotation. */
  intervalMs?: number;
  /** Read the lines already in the file at start (default: only what is written from now on, as tail -F). */
  fromStart?: boolean;
  onError?: (err: AuditLineError) => void;
}

const CHUNK = 1 << 20;

/**
 * Follows an audit log as `tail -F` does. The API server rotates by renaming the file and opening a
 * new one (--audit-log-maxsize), or a log rotator truncates it: a new inode or a size below what we
 * read means the old file is finished (its last lines are read first) and the new one is read from
 * its beginning. A missing file is waited for. (Like tail -F, a file truncated and refilled past
 * the old length between two looks cannot be told from one that grew.)
 */
export class AuditLogFollower implements Source {
  readonly name = 'k8s-audit-log';
  private fd: number | undefined;
  private ino = -1;
  private offset = 0;
  private partial = '';
  /** Keeps a character split between two reads whole. */
  private decoder = new StringDecoder('utf8');
  private lineNo = 0;
  private loop: PollLoop | undefined;
  private emit: ((ev: Event) => void) | undefined;
  /** Lines that were not audit events, since start. */
  badLines = 0;
  events = 0;
  rotations = 0;

  constructor(readonly path: string, private readonly opts: AuditLogFollowerOptions = {}) {}

  async start(emit: (ev: Event) => void): Promise<void> {
    this.emit = emit;
    this.open(!this.opts.fromStart);
    this.loop = new PollLoop(() => this.poll(), this.opts.intervalMs ?? 250);
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.loop?.stop();
    this.poll();
    this.close();
  }

  /** Open the file at `path`, at its end or its start. False when it is not there (yet). */
  private open(atEnd: boolean): boolean {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return false;
    }
    const st = fstatSync(fd);
    this.fd = fd;
    this.ino = st.ino;
    this.offset = atEnd ? st.size : 0;
    this.partial = '';
    this.decoder = new StringDecoder('utf8');
    this.lineNo = 0;
    return true;
  }

  private close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** One look: new lines of the open file, then rotation. Never throws: a source must not stop the agent. */
  poll(): void {
    try {
      if (this.fd === undefined) {
        if (!this.open(false)) return;
      }
      const size = fstatSync(this.fd!).size;
      if (size < this.offset) {
        // Truncated in place (copytruncate): start again from the beginning.
        this.offset = 0;
        this.partial = '';
        this.decoder = new StringDecoder('utf8');
        this.lineNo = 0;
        this.rotations++;
      }
      this.readNew();
      let cur: number | undefined;
      try {
        cur = statSync(this.path).ino;
      } catch {
        cur = undefined;
      }
      if (cur !== this.ino && cur !== undefined) {
        // Renamed away and replaced: what is left of the old file was read above.
        this.flushPartial();
        this.close();
        this.rotations++;
        if (this.open(false)) this.readNew();
      }
    } catch (e) {
      this.opts.onError?.(new AuditLineError(this.path, 0, `cannot read audit log: ${(e as Error).message}`));
    }
  }

  private readNew(): void {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = readSync(this.fd!, buf, 0, CHUNK, this.offset);
      if (n <= 0) return;
      this.offset += n;
      const text = this.partial + this.decoder.write(buf.subarray(0, n));
      const lines = text.split('\n');
      this.partial = lines.pop()!;
      for (const line of lines) this.line(line);
    }
  }

  /** A last line without its newline, when its file is finished. */
  private flushPartial(): void {
    if (this.partial.trim() !== '') this.line(this.partial);
    this.partial = '';
  }

  private line(raw: string): void {
    this.lineNo++;
    const line = raw.trim();
    if (line === '') return;
    let evs: Event[];
    try {
      evs = auditEventsOfLine(line);
    } catch (e) {
      this.badLines++;
      this.opts.onError?.(new AuditLineError(this.path, this.lineNo, (e as Error).message));
      return;
    }
    for (const ev of evs) {
      this.events++;
      this.emit?.(ev);
    }
  }
}
