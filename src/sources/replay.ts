/**
 * JSON-lines replay: events in the model of src/events.ts, one per line, for tests, benchmarks
 * and forensics. A bad line is reported with its file:line and skipped; it never ends the replay
 * unless the caller asks for that.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { type Event, EventDecodeError, decodeEvent } from '../events.js';
import type { Source } from './types.js';

export class ReplayLineError extends Error {
  constructor(readonly file: string, readonly line: number, readonly reason: string) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'ReplayLineError';
  }
}

export interface ReplayOptions {
  /** Called for each bad line; without it the first bad line throws ReplayLineError. */
  onError?: (err: ReplayLineError) => void;
  /** Only events of this source (syscall, k8s_audit, github). */
  source?: string;
}

/** Read events from a JSON-lines file ('-' reads standard input). Blank lines and '#' comments are skipped. */
export async function* readEventsFile(path: string, opts: ReplayOptions = {}): AsyncGenerator<Event> {
  const input = path === '-' ? process.stdin : createReadStream(path, { encoding: 'utf8' });
  const rl = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const raw of rl) {
      n++;
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      let ev: Event;
      try {
        ev = decodeEvent(line);
      } catch (e) {
        const err = new ReplayLineError(path, n, e instanceof EventDecodeError ? e.message : String(e));
        if (opts.onError) {
          opts.onError(err);
          continue;
        }
        throw err;
      }
      if (ev.num === undefined) ev.num = n;
      if (opts.source && ev.source !== opts.source) continue;
      yield ev;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) {
      throw new ReplayLineError(path, 0, `cannot read events file: ${(e as NodeJS.ErrnoException).code}; check the path`);
    }
    throw e;
  } finally {
    rl.close();
  }
}

/** Replay as a Source: emits every event of the file, then resolves. */
export class ReplaySource implements Source {
  readonly name = 'replay';
  private stopped = false;

  constructor(private readonly path: string, private readonly opts: ReplayOptions = {}) {}

  async start(emit: (ev: Event) => void): Promise<void> {
    for await (const ev of readEventsFile(this.path, this.opts)) {
      if (this.stopped) break;
      emit(ev);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }
}
