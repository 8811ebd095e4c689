/**
 * SIGHUP: read the whole config file again, put the command-line flags over it again, and apply
 * what can change while running. A file that does not parse or validate changes nothing (the
 * error names the file and line). Sections that need a restart (the driver and the other sources,
 * the web server's listen address and inputs, the cluster and GitHub settings, the alert store
 * and outputs) are compared with the running ones and a changed one is named in a warning.
 */
import type { Logger } from '../platform/logger.js';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/sections.js';
import type { Detector } from '../detectors/types.js';
import { resolveRulesPaths } from '../engine/index.js';
import type { AgentApp } from './agent-app.js';
import { engineOptionsOf } from './compose.js';

/** Applied live on reload. */
export const LIVE_SECTIONS = ['rules_files', 'engine', 'detectors', 'response'] as const;
/** Read at start only: a change is logged as needing a restart. */
export const RESTART_SECTIONS = ['sources', 'web', 'alerts', 'outputs', 'k8s', 'github'] as const;

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * Apply a new config to the running app. Returns the sections that changed but need a restart, or
 * undefined when the new config was refused (nothing changed). The detectors are built first (a
 * banned-list file that cannot be read throws before anything changes), then the rules load; when
 * they fail, the detectors go back to the running config's.
 */
export function applyConfig(app: AgentApp, running: Config, next: Config, log: Logger): string[] | undefined {
  const { core } = app;
  let detectors: Detector[];
  try {
    detectors = core.prepareDetectors(next.detectors);
  } catch (e) {
    log.error({ err: (e as Error).message }, 'config refused on reload: its detectors section cannot be built; nothing changed');
    return undefined;
  }
  const rulesChanged = !same(running.rules_files, next.rules_files) || !same(running.engine, next.engine);
  const ok = rulesChanged
    ? core.rules.retarget(resolveRulesPaths(next.rules_files), engineOptionsOf(next), 'SIGHUP')
    : core.rules.reload('SIGHUP');
  if (!ok) {
    // The new detectors were never installed: the running ones go on.
    for (const d of detectors) d.close?.();
    log.error({}, 'config refused on reload: its rules do not load; nothing changed');
    return undefined;
  }
  core.detectors.replace(detectors);
  // Execs judged harmless under the old detectors are judged again.
  core.host.quiet?.forgetQuiet();
  core.response.setConfig(next.response);
  return RESTART_SECTIONS.filter((k) => !same((running as unknown as Record<string, unknown>)[k], (next as unknown as Record<string, unknown>)[k]));
}

export function reloadOnSighup(app: AgentApp, path: string | undefined, log: Logger, flags: (c: Config) => void): void {
  let running = app.core.config;
  process.on('SIGHUP', () => {
    if (!path) {
      // No config file: the rules files are all there is to read again.
      app.core.rules.reload('SIGHUP');
      return;
    }
    let next: Config;
    try {
      next = loadConfigFile(path).config;
      // The flags given at start override the file again (ARCHITECTURE.md, "One config file").
      flags(next);
    } catch (e) {
      const where = e instanceof ConfigError ? e.message : `${path}: ${(e as Error).message}`;
      log.error({ config: path, err: where }, 'config refused on reload: nothing changed; fix the file and send SIGHUP again');
      return;
    }
    let restart: string[] | undefined;
    try {
      restart = applyConfig(app, running, next, log);
    } catch (e) {
      // A reload never takes the daemon down: what ran before goes on.
      log.error({ config: path, err: (e as Error).message }, 'config reload failed');
      return;
    }
    if (restart === undefined) return;
    log.info({ config: path, live: LIVE_SECTIONS }, 'config reloaded');
    log.info({ config: path }, 'detectors reloaded');
    if (restart.length) log.warn({ config: path, sections: restart }, `these sections changed but are read at start only: restart the agent to apply them (${restart.join(', ')})`);
    running = next;
  });
}
