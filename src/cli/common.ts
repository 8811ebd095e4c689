/** Helpers the CLI commands share: resolving --rules, printing load problems with context. */
import { readFileSync } from 'node:fs';
import { ConfigError, defaultConfig, formatConfigProblem, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/sections.js';
import { type RuleProblem, RulesLoadError, formatProblem } from '../engine/index.js';

export { resolveRulesPaths } from '../engine/index.js';

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

const fileCache = new Map<string, string[] | null>();

function sourceLine(file: string, line: number): string | undefined {
  if (!fileCache.has(file)) {
    try {
      fileCache.set(file, readFileSync(file, 'utf8').split('\n'));
    } catch {
      fileCache.set(file, null);
    }
  }
  return fileCache.get(file)?.[line - 1];
}

/** A problem as a compiler prints one: the message, then the line with a caret under the column. */
export function describeProblem(p: RuleProblem, kind: 'error' | 'warning'): string {
  const head = formatProblem(p, kind);
  const src = p.pos.line > 0 ? sourceLine(p.pos.file, p.pos.line) : undefined;
  if (src === undefined) return head;
  const caret = ' '.repeat(Math.max(0, p.pos.col - 1)) + '^';
  return `${head}\n    ${src}\n    ${caret}`;
}

export function printLoadError(e: unknown): number {
  if (e instanceof RulesLoadError) {
    for (const w of e.warnings) process.stderr.write(describeProblem(w, 'warning') + '\n');
    for (const err of e.errors) process.stderr.write(describeProblem(err, 'error') + '\n');
    process.stderr.write(`${e.errors.length} error(s): the rules were not loaded. Fix the lines above and run again.\n`);
    return 1;
  }
  throw e;
}

/** Run until SIGINT or SIGTERM, then `stop` (logged with the signal); resolves once it is done. */
export function untilSignal(log: { info: (o: object, m: string) => void }, stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (signal: string) => {
      log.info({ signal }, 'shutting down');
      // A failed stop still ends the wait; its error is logged, never an unhandled rejection.
      stop().then(resolve, (err: unknown) => {
        log.info({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGINT', () => done('SIGINT'));
    process.once('SIGTERM', () => done('SIGTERM'));
  });
}

/**
 * The config file (or the defaults) with the flags both `run` and `server` take applied over it
 * (ARCHITECTURE.md, "One config file"); `adjust` applies a command's own flags. A config error is
 * printed with its file:line and comes back as exit code 1.
 */
/** --listen and --json over a config (at start, and again on every SIGHUP reload). */
export function applyCommonFlags(config: Config, flags: { listen?: string; json?: boolean }): void {
  if (flags.listen) config.web.listen = flags.listen;
  if (flags.json) config.outputs.stdout.format = 'json';
}

export function loadConfigWithFlags(path: string | undefined, flags: { listen?: string; json?: boolean }, adjust: (c: Config) => void = () => undefined): Config | number {
  try {
    let config: Config;
    if (path) {
      const { config: c, warnings } = loadConfigFile(path);
      for (const w of warnings) process.stderr.write(`warning: ${formatConfigProblem(w)}\n`);
      config = c;
    } else config = defaultConfig();
    applyCommonFlags(config, flags);
    adjust(config);
    return config;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\nThe config was not loaded; fix the keys above.\n`);
      return 1;
    }
    throw e;
  }
}
