/**
 * When the alert store's WAL is copied back into the database (a checkpoint): in a pause between
 * commits, never inside a commit, never before the lines of the commit that filled the WAL.
 *
 * SQLite's own checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages: the pages
 * copied back and two fsyncs, 6–15 ms on the main thread here (180 ms seen on a busy disk), before
 * the line of the alert being committed could be written. A new alert writes ~30 pages (its row,
 * its event's overflow pages, ten indexes, the text index, the rollups, its delivery), so at 100
 * alerts a second a 4 MiB WAL fills ~3 times a second, and the alerts that met a checkpoint were
 * the exec → alert p99 (issue 16): 8.3 ms median against 2.9 for the rest.
 *
 * So once the WAL is past `walBytes` (4 MiB) the checkpoint waits for a pause: `quietMs` (250 ms)
 * with no commit. Alerts come in bursts (a storm, a flood of one rule); in the gap after one the
 * checkpoint holds the main thread while nothing waits for it. A stream that never pauses still
 * gets one when the WAL passes `hardWalBytes` (64 MiB: ~5 s of 100 alerts a second), in the turn
 * after the commit that passed it. The pages are as durable as before: a checkpoint only moves
 * committed pages from the WAL into the database file, and a crash before it leaves them in the
 * WAL, where SQLite finds them at the next open. A bigger WAL costs disk (truncated to nothing
 * after the checkpoint) and a little more work per read; readers are the dashboard and the CLI.
 *
 * Tried and worse (issue 16, same runs, busy disk): checkpointing more often and smaller (1 MiB:
 * 2.8 ms each on a quiet disk) made the p99 worse, as each fsync costs about the same whatever its
 * size; syncing the WAL off the main thread first (fdatasync on libuv's pool) cut the checkpoint's
 * own hold to 3.5–8 ms but, with the agent writing the WAL meanwhile, the p99 was 97–222 ms in 4 of
 * 4 rounds against 12–101 without it. A checkpoint in a worker thread would cost ~16 MB of RSS (a
 * second SQLite and isolate), against the ≤ 100 MB target.
 */
import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { Logger } from '../platform/logger.js';
import { PauseTimer } from '../platform/pause-timer.js';

/** The WAL size that calls for a checkpoint at the next pause: SQLite's own, 1,000 pages of 4 KiB. */
export const CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024;
/** No commit for this long is a pause. */
export const CHECKPOINT_QUIET_MS = 250;
/** The WAL size that calls for a checkpoint in the next turn, pause or not. */
export const CHECKPOINT_HARD_WAL_BYTES = 64 * 1024 * 1024;

export interface CheckpointOptions {
  walBytes?: number;
  quietMs?: number;
  hardWalBytes?: number;
  log?: Logger;
}

export class WalCheckpointer {
  private readonly walPath: string;
  private readonly limit: number;
  private readonly hard: number;
  private soon: NodeJS.Immediate | undefined;
  /** Armed while a checkpoint waits for a pause. */
  private readonly pause: PauseTimer;
  /** WAL size a checkpoint could not shrink (another connection reading): the next waits until it grew by `limit` again. */
  private floor = 0;
  private stopped = false;
  /** Checkpoints run (tests). */
  count = 0;

  constructor(private readonly db: Database.Database, path: string, private readonly opts: CheckpointOptions = {}) {
    this.walPath = `${path}-wal`;
    this.limit = opts.walBytes ?? CHECKPOINT_WAL_BYTES;
    this.hard = Math.max(this.limit, opts.hardWalBytes ?? CHECKPOINT_HARD_WAL_BYTES);
    this.pause = new PauseTimer({ quietMs: opts.quietMs ?? CHECKPOINT_QUIET_MS }, () => {
      // Done already (the hard size's checkpoint came first).
      if (!this.soon && this.walBytes() >= this.floor + this.limit) this.checkpoint();
    });
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
    this.pause.commit();
    if (this.stopped || this.soon) return;
    const wal = this.walBytes();
    if (wal < this.floor + this.limit) return;
    if (wal >= this.floor + this.hard) {
      this.soon = setImmediate(() => {
        this.soon = undefined;
        this.checkpoint();
      });
      return;
    }
    // A store closed with a WAL still waiting is checkpointed by SQLite at close.
    this.pause.arm();
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
    this.pause.stop();
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
  }
}
