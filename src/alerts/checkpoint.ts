/**
 * When the alert store's WAL is copied back into the database (a checkpoint): after the lines of
 * the commit that filled it, not inside that commit, before them.
 *
 * SQLite's own checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages: the pages
 * copied back and two fsyncs, 6–15 ms on the main thread here (180 ms seen on a busy disk), before
 * the line of the alert being committed could be written. A new alert writes ~28 pages (its row,
 * its event's overflow pages, ten indexes, the text index, the rollups, its delivery), so at 100
 * alerts a second one alert in 30 waited for a checkpoint: most of the exec → alert p99 (issue 16).
 *
 * Here the commit that takes the WAL past the same size (4 MiB) is committed and its lines written
 * first; the checkpoint runs in the next turn of the event loop. The pages are as durable as
 * before: a checkpoint only moves committed pages from the WAL into the database file, and a crash
 * before it leaves them in the WAL, where SQLite finds them at the next open.
 *
 * That turn still holds the main thread for the whole checkpoint (~11 ms at 4 MiB, two thirds of
 * it the two fsyncs), and an exec that comes meanwhile waits for it: at 100 alerts a second a
 * checkpoint comes ~3 times a second, and the few alerts that meet one are the exec → alert p99.
 * Checkpointing more often, smaller (1 MiB: 2.8 ms each on a quiet disk), was tried and made the
 * p99 worse on a busy one, where each fsync costs about the same whatever its size (issue 16).
 * So was syncing the WAL off the main thread first (fdatasync on libuv's pool, so SQLite's own sync
 * in the checkpoint found little): alone, the checkpoint then held the main thread 3.5–8 ms instead
 * of 11–17, but with the agent writing the WAL while the sync ran the exec → alert p99 was 97–222
 * ms in 4 of 4 rounds against 12–101 without it (same runs, load 8–18).
 */
import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { Logger } from '../platform/logger.js';

/** The WAL size that calls for a checkpoint: SQLite's own, 1,000 pages of 4 KiB. */
export const CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024;

export interface CheckpointOptions {
  walBytes?: number;
  log?: Logger;
}

export class WalCheckpointer {
  private readonly walPath: string;
  private readonly limit: number;
  private soon: NodeJS.Immediate | undefined;
  /** WAL size a checkpoint could not shrink (another connection reading): the next waits until it grew by `limit` again. */
  private floor = 0;
  private stopped = false;
  /** Checkpoints run (tests). */
  count = 0;

  constructor(private readonly db: Database.Database, path: string, private readonly opts: CheckpointOptions = {}) {
    this.walPath = `${path}-wal`;
    this.limit = opts.walBytes ?? CHECKPOINT_WAL_BYTES;
    // No checkpoint inside a COMMIT; and a WAL that was checkpointed starts again at size 0, so
    // its file's size says how much waits to be checkpointed.
    db.pragma('wal_autocheckpoint = 0');
    db.pragma('journal_size_limit = 0');
  }

  /** Bytes in the WAL now (0 when there is none). */
  walBytes(): number {
    return statSync(this.walPath, { throwIfNoEntry: false })?.size ?? 0;
  }

  /** A write was committed; its lines are written in this turn of the event loop. */
  committed(): void {
    if (this.stopped || this.soon || this.walBytes() < this.floor + this.limit) return;
    this.soon = setImmediate(() => {
      this.soon = undefined;
      this.checkpoint();
    });
  }

  /** Checkpoint now (PASSIVE: never waits for a reader of another connection). */
  checkpoint(): void {
    if (this.stopped || !this.db.open) return;
    try {
      const r = this.db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      this.count++;
      const done = r[0] !== undefined && r[0].checkpointed >= r[0].log;
      // Not all of it (a reader elsewhere holds old pages): the WAL cannot start again yet.
      this.floor = done ? 0 : this.walBytes();
    } catch (err) {
      this.opts.log?.warn({ err: String(err) }, 'alert store checkpoint failed; tried again after a later write');
    }
  }

  /** Stop; SQLite's own checkpoint comes back for whatever uses the connection after. */
  stop(): void {
    this.stopped = true;
    if (this.soon) clearImmediate(this.soon);
    this.soon = undefined;
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
  }
}
