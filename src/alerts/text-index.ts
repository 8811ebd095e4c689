/**
 * The alert store's text index (FTS5 trigram over `output`), written after the alert rather than
 * with it (issue 16: exec → alert latency).
 *
 * Indexed by a trigger inside the alert's own transaction, every alert paid for a new FTS5
 * segment on the exec → alert path: the output's trigrams, a segment leaf, the segment index,
 * the structure record and the doc size, about 6 of the ~28 WAL pages an alert wrote, and the
 * merges those one-row segments call for later. Now the alert's transaction only adds its id to
 * `alerts_text_todo` (one row of a rowid table), and the rows listed there are indexed in
 * batches once alerts pause (no commit for `quietMs`), or `maxDelayMs` after the oldest waited,
 * whichever comes first: one segment per batch instead of one per alert.
 *
 * Nothing is lost and nothing waits to be searchable: the todo row is committed with the alert
 * (a crash before the batch leaves it listed, and the next open indexes it); a batch indexes
 * its rows and takes them off the list in one transaction; and a text search reads the index
 * plus the rows still listed (AlertStore.where), so a new alert is found the moment it is stored.
 * A group deleted before its turn (retention) is taken off the list, not out of the index, where
 * it never was.
 */
import type Database from 'better-sqlite3';
import type { Logger } from '../platform/logger.js';
import { PauseTimer } from '../platform/pause-timer.js';

/** The todo list, its triggers, and the delete trigger that knows which rows are in the index. */
export const TEXT_INDEX_SCHEMA = `
CREATE TABLE IF NOT EXISTS alerts_text_todo (id INTEGER PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS alerts_text_todo_ins AFTER INSERT ON alerts BEGIN
  INSERT INTO alerts_text_todo(id) VALUES (new.id);
END;
CREATE TRIGGER IF NOT EXISTS alerts_text_todo_del AFTER DELETE ON alerts BEGIN
  INSERT INTO alerts_text(alerts_text, rowid, output) SELECT 'delete', old.id, old.output WHERE NOT EXISTS (SELECT 1 FROM alerts_text_todo WHERE id = old.id);
  DELETE FROM alerts_text_todo WHERE id = old.id;
END;
`;

/**
 * Stores whose index was written by the alert's own trigger (every row indexed): those triggers
 * go, in the same transaction as the new ones come, so no row is indexed twice or missed.
 */
export function migrateToDeferredTextIndex(db: Database.Database): void {
  const old = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'alerts_text_ins'").get() !== undefined;
  db.transaction(() => {
    if (old) db.exec('DROP TRIGGER IF EXISTS alerts_text_ins; DROP TRIGGER IF EXISTS alerts_text_del;');
    db.exec(TEXT_INDEX_SCHEMA);
  })();
}

/** A pause in alerts this long lets the waiting rows be indexed. */
export const TEXT_INDEX_QUIET_MS = 250;
/**
 * No row waits longer than this for the index, pause or not. Long: a search finds waiting rows
 * anyway (10 s of 100 alerts a second is a 1,000-row scan), and an exec storm that never pauses
 * is better not interrupted.
 */
export const TEXT_INDEX_MAX_DELAY_MS = 10_000;
/** Rows indexed per transaction: ~0.7 ms of the main thread (200 took 1.5–2.6 ms), then the event loop turns. */
export const TEXT_INDEX_BATCH = 64;

export interface TextIndexOptions {
  quietMs?: number;
  maxDelayMs?: number;
  batch?: number;
  log?: Logger;
}

export class DeferredTextIndex {
  private readonly batch: number;
  private readonly st: { next: Database.Statement; index: Database.Statement; done: Database.Statement; waiting: Database.Statement };
  /** Armed from the first row waiting: a batch at the next pause, or maxDelayMs after that row. */
  private readonly pause: PauseTimer;
  private readonly log: Logger | undefined;
  /** Batches written (tests). */
  batches = 0;

  constructor(private readonly db: Database.Database, opts: TextIndexOptions = {}) {
    this.batch = Math.max(1, opts.batch ?? TEXT_INDEX_BATCH);
    this.log = opts.log;
    // A store closed with rows waiting keeps them listed; the next open indexes them. (PauseTimer
    // holds maxDelayMs to at least quietMs.)
    const quietMs = opts.quietMs ?? TEXT_INDEX_QUIET_MS;
    this.pause = new PauseTimer({ quietMs, maxDelayMs: opts.maxDelayMs ?? TEXT_INDEX_MAX_DELAY_MS }, () => this.due());
    this.st = {
      // The batch's last id: its rows are the todo's first `batch`.
      next: db.prepare('SELECT MAX(id) AS upto FROM (SELECT id FROM alerts_text_todo ORDER BY id LIMIT ?)'),
      index: db.prepare('INSERT INTO alerts_text(rowid, output) SELECT a.id, a.output FROM alerts_text_todo t JOIN alerts a ON a.id = t.id WHERE t.id <= ?'),
      done: db.prepare('DELETE FROM alerts_text_todo WHERE id <= ?'),
      waiting: db.prepare('SELECT COUNT(*) AS n FROM alerts_text_todo'),
    };
  }

  /** Rows stored and not yet in the index. */
  waiting(): number {
    return (this.st.waiting.get() as { n: number }).n;
  }

  /** At open: rows a previous run left waiting are indexed at the first pause. */
  start(): void {
    if (this.waiting() > 0) this.committed();
  }

  /** Alerts were committed (their todo rows with them). */
  committed(): void {
    // A stopped index's timer arms no more (PauseTimer.stop).
    this.pause.commit();
    this.pause.arm();
  }

  /** A pause, or the oldest row waited long enough: one batch now, the next in a later turn. */
  private due(): void {
    if (!this.db.open) return;
    // Inside someone's transaction (the pipeline's group commit is a microtask, so not normally).
    if (this.db.inTransaction) return this.pause.arm();
    let more: boolean;
    try {
      more = this.indexBatch();
    } catch (err) {
      // The rows stay listed (still found by a search); tried again after the next commit.
      this.log?.warn({ err: String(err) }, 'alert text index: cannot index new alerts now; they stay searchable and are indexed later');
      return;
    }
    // The rest: a later turn, so alerts in between are not held behind the whole backlog.
    if (more) this.pause.again();
  }

  /** Index up to one batch of waiting rows in one transaction; true when more are waiting. */
  indexBatch(): boolean {
    const upto = (this.st.next.get(this.batch) as { upto: number | null }).upto;
    if (upto === null) return false;
    this.db.transaction(() => {
      this.st.index.run(upto);
      this.st.done.run(upto);
    })();
    this.batches++;
    return (this.st.next.get(1) as { upto: number | null }).upto !== null;
  }

  /** Index every waiting row now (tests; tools that want the index complete). */
  flush(): void {
    while (this.indexBatch());
  }

  stop(): void {
    this.pause.stop();
  }
}
