/**
 * Holds the running rules and replaces them on SIGHUP or when a rules file changes. A file that
 * fails to load is refused with its errors and the rules already running stay in force.
 */
import { type FSWatcher, statSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Engine, type EngineOptions, RulesLoadError, formatProblem } from '../engine/index.js';
import type { Logger } from '../platform/logger.js';

export class RulesManager {
  engine: Engine;
  /** Successful loads since start (the first one included). */
  loads = 1;
  /** Reloads refused because the new rules had errors. */
  refused = 0;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;

  /** Throws RulesLoadError when the first load fails: the agent cannot start without rules. */
  constructor(private paths: string[], private opts: EngineOptions, private readonly log: Logger) {
    this.engine = Engine.fromFiles(paths, opts);
    this.logLoaded('loaded');
  }

  private logLoaded(what: string): void {
    const rs = this.engine.ruleset;
    for (const w of rs.warnings) this.log.warn({ warning: formatProblem(w, 'warning') }, 'rules warning');
    this.log.info({ files: rs.files.map((f) => f.path), rules: rs.rules.length, enabled: this.engine.active.length }, `rules ${what}`);
  }

  /** Called after new rules took over (the eBPF driver re-filters in the kernel). */
  onReload: (() => void) | undefined;

  /** Try the files again; keep the running rules when they fail. Returns whether the new rules took over. */
  reload(reason: string): boolean {
    try {
      const next = Engine.fromFiles(this.paths, this.opts);
      this.engine = next;
      this.loads++;
      this.logLoaded(`reloaded (${reason})`);
      this.onReload?.();
      return true;
    } catch (e) {
      if (!(e instanceof RulesLoadError)) throw e;
      this.refused++;
      for (const err of e.errors) this.log.error({ error: formatProblem(err) }, 'rules error');
      this.log.error({ reason, errors: e.errors.length }, 'new rules refused; the running rules stay in force');
      return false;
    }
  }

  /**
   * Load other files or options (a config reload changed rules_files or engine): they take over
   * only when they load; else the running rules and their files stay.
   */
  retarget(paths: string[], opts: EngineOptions, reason: string): boolean {
    const was = { paths: this.paths, opts: this.opts };
    this.paths = paths;
    this.opts = opts;
    if (this.reload(reason)) return true;
    this.paths = was.paths;
    this.opts = was.opts;
    return false;
  }

  /**
   * Reload when any rules file or folder changes (debounced: editors write in several steps).
   * A file is watched through its folder, because editors replace files by renaming new ones in.
   */
  watchFiles(): void {
    for (const p of this.paths) {
      try {
        const isDir = statSync(p).isDirectory();
        const dir = isDir ? p : dirname(p);
        const name = basename(p);
        const w = watch(dir, { persistent: false }, (_event, file) => {
          if (!isDir && file !== null && file !== name) return;
          clearTimeout(this.timer);
          this.timer = setTimeout(() => this.reload(`${p} changed`), 200);
        });
        w.on('error', (e) => this.log.warn({ path: p, err: e.message }, 'cannot watch rules file'));
        this.watchers.push(w);
      } catch (e) {
        this.log.warn({ path: p, err: (e as Error).message }, 'cannot watch rules file; reload with SIGHUP');
      }
    }
  }

  close(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }
}
