/**
 * Where the agent writes alerts until the alerts pipeline (throttling, storage, forwarding) takes
 * over: standard output and a file, in Falco's text or JSON format.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { OutputsConfig } from '../config/sections.js';
import { formatText, toFalcoJson } from '../engine/output.js';
import type { Match } from '../engine/types.js';
import type { Logger } from './logger.js';

export class AlertWriter {
  private fileBroken = false;

  constructor(private readonly cfg: OutputsConfig, private readonly log: Logger) {
    if (cfg.file.enabled) {
      try {
        mkdirSync(dirname(cfg.file.path), { recursive: true });
      } catch (e) {
        log.error({ err: (e as Error).message, path: cfg.file.path }, 'cannot create the alerts file folder; file output is off');
        this.fileBroken = true;
      }
    }
  }

  private render(m: Match, format: 'text' | 'json'): string {
    return format === 'json' ? JSON.stringify(toFalcoJson(m)) : formatText(m);
  }

  write(m: Match): void {
    if (this.cfg.stdout.enabled) process.stdout.write(this.render(m, this.cfg.stdout.format) + '\n');
    if (this.cfg.file.enabled && !this.fileBroken) {
      try {
        appendFileSync(this.cfg.file.path, this.render(m, this.cfg.file.format) + '\n');
      } catch (e) {
        this.log.error({ err: (e as Error).message, path: this.cfg.file.path }, 'cannot write the alerts file');
      }
    }
  }
}
