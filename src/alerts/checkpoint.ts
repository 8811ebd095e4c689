/**
 * When the alert store's WAL is copied back into the database (a checkpoint), kept off the path
 * between an event and its alert line.
 *
 * SQLite's own checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages: the pages
 * copied back and two fsyncs, 6–15 ms on the main thread here (180 ms seen on a busy disk), before
 * the line of the alert being committed could be written. A new alert writes ~28 pages (its row,
 * its event's overflow pages, ten indexes, the text index, the rollups, its delivery), so at 100
 * alerts a second one alert in 30 waited for a checkpoint: most of the exec → alert p99 (issue 16).
 *
 * Here the store checkpoints once alert writes pause (QUIET_MS without a commit) and the WAL holds
 * at least QUIET_MIN_BYTES, after the lines of the last commit went out. Only while alerts keep
 * coming without a pause does it grow to MAX_WAL_BYTES; then one checkpoint runs right after that
 * commit's lines (one alert in ~115 waits for it, at 100 alerts a second). What is committed is as
 * durable as before: a checkpoint only moves committed pages from the WAL into the database file.
 */
import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { Logger } from '../platform/logger.js';

/** A pause in alert writes this long is when a checkpoint runs. */
export const QUIET_MS = 50;
/** What a pause checkpoints at least (SQLite's own threshold: 1,000 pages of 4 KiB). */
export const QUIET_MIN_BYTES = 4 * 1024 * 1024;
/** Past this, the WAL is checkpointed even while alerts keep coming. */
export const MAX_WAL_BYTES = 16 * 1024 * 1024;

export interface CheckpointOptions {
  quietMs?: number;
  quietMinBytes?: number;
  maxWalBytes?: number;
  log?: Logger;
}

export class WalCheckpointer {
  private readonly walPath: string;
  private readonly quietMs: number;
  private readonly quietMinBytes: number;
  private readonly maxWalBytes: number;
  private quietTimer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;
  /** WAL size a checkpoint could not shrink (another connection reading): forced again only past it. */
  private floor = 0;
  private stopped = false;
  /** Checkpoints run (tests, logs). */
  count = 0;

  constructor(private readonly db: Database.Database, path: string, private readonly opts: CheckpointOptions = {}) {
    this.walPath = `${path}-wal`;
    this.quietMs = opts.quietMs ?? QUIET_MS;
    this.quietMinBytes = opts.quietMinBytes ?? QUIET_MIN_BYTES;
    this.maxWalBytes = opts.maxWalBytes ?? MAX_WAL_BYTES;
    // No checkpoint inside a COMMIT; and a WAL that was checkpointed starts again at size 0, so
    // its file's size says how much waits to be checkpointed.
    db.pragma('wal_autocheckpoint = 0');
    db.pragma('journal_size_limit = 0');
  }

  /** Bytes in the WAL now (0 when there is none). */
  walBytes(): number {
    return statSync(this.walPath, { throwIfNoEntry: false })?.size ?? 0;
  }

  /** A write was committed (its lines are being written in this turn). */
  committed(): void {
    if (this.stopped) return;
    const size = this.walBytes();
    if (size >= this.floor + this.maxWalBytes) {
      // After this turn: the outputs write the lines of this commit first.
      this.soon ??= setImmediate(() => {
        this.soon = undefined;
        this.checkpoint();
      });
      return;
    }
    if (size < this.quietMinBytes) return;
    if (this.quietTimer) this.quietTimer.refresh();
    else {
      this.quietTimer = setTimeout(() => {
        this.quietTimer = undefined;
        this.checkpoint();
      }, this.quietMs);
      this.quietTimer.unref();
    }
  }

  /** Checkpoint now (PASSIVE: never waits for a reader of another connection). */
  checkpoint(): void {
    if (this.stopped || !this.db.open) return;
    clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    try {
      const r = this.db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      this.count++;
      const done = r[0] !== undefined && r[0].checkpointed >= r[0].log;
      // Not all of it (a reader elsewhere holds old pages): the WAL cannot start again yet, so
      // the next forced checkpoint waits until it grew by another MAX_WAL_BYTES.
      this.floor = done ? 0 : this.walBytes();
    } catch (err) {
      this.opts.log?.warn({ err: String(err) }, 'alert store checkpoint failed; retried after the next write');
    }
  }

  /** Stop the timers; SQLite's own checkpoint comes back for whatever uses the connection after. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.quietTimer);
    if (this.soon) clearImmediate(this.soon);
    this.quietTimer = undefined;
    this.soon = undefined;
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
  }
}
