/** `minewatch run`: the agent on this host. */
import type { Command } from 'commander';
import { createLogger } from '../platform/logger.js';
import type { RulesManager } from '../agent/rules-manager.js';
import { privateUmask } from '../platform/state.js';
import { type AgentApp, AppStartError, startAgentApp } from '../app/agent-app.js';
import { rulesFromConfig } from '../app/compose.js';
import { reloadOnSighup } from '../app/reload.js';
import type { Config } from '../config/sections.js';
import { EventRecorder } from '../pipeline/recorder.js';
import { ebpfPrecheck } from '../sources/driver-check.js';
import { applyCommonFlags, collect, loadConfigWithFlags, printLoadError, untilSignal } from './common.js';
import { startBegins, startDone } from './heap-setup.js';
import { dropStartPagesSoon } from '../platform/start-pages.js';

interface RunOpts {
  config?: string;
  listen?: string;
  rules?: string[];
  driver?: 'auto' | 'ebpf' | 'proc' | 'procfs';
  json?: boolean;
  source?: string[];
  record?: string;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('watch this host: process execs, connections and CPU use, through the rules; alerts to standard output')
    .option('-c, --config <file>', 'the config file (YAML; Falco\'s falco.yaml keys are understood too)')
    .option('-r, --rules <file>', 'rules file or folder (repeatable, in order; replaces the config\'s rules_files; "default" = minewatch\'s own)', collect)
    .option('--driver <driver>', 'kernel source: auto (eBPF, else proc connector, else /proc poller), ebpf, proc, procfs')
    .option('--source <source>', 'event source to run (repeatable; only syscall is available in this build)', collect)
    .option('--json', 'alerts as Falco JSON, one per line')
    .option('--listen <host:port>', 'the web server\'s address (overrides web.listen; default 127.0.0.1:8788)')
    .option('--record <file>', 'write every event the pipeline evaluates, enriched, to this new file (JSON lines, mode 0600, no environment): `minewatch replay FILE` reads it')
    .action(async (opts: RunOpts) => {
      process.exitCode = await run(opts);
    });
}

/** The flags that override the config file (on start and again on every SIGHUP reload). */
function applyRunFlags(c: Config, opts: RunOpts): void {
  if (opts.rules?.length) c.rules_files = opts.rules;
  if (opts.driver) c.sources.driver = opts.driver;
}

async function run(opts: RunOpts): Promise<number> {
  // From here to the agent's start, one long stretch: the new space keeps its size (heap-setup.ts).
  startBegins();
  // Everything the agent writes (the store, the token, outputs' files) is its user's alone.
  privateUmask();
  if (opts.driver && !['auto', 'ebpf', 'proc', 'procfs'].includes(opts.driver)) {
    process.stderr.write(`--driver: '${opts.driver}' is not one of auto, ebpf, proc, procfs\n`);
    return 2;
  }
  const unknown = (opts.source ?? []).filter((s) => s !== 'syscall');
  if (unknown.length) {
    process.stderr.write(`--source: ${unknown.join(', ')} not available in this build (only syscall)\n`);
    return 2;
  }
  // Flags override the file (ARCHITECTURE.md, "One config file").
  const config = loadConfigWithFlags(opts.config, opts, (c) => applyRunFlags(c, opts));
  if (typeof config === 'number') return config;
  const log = createLogger();
  // Before anything else: when the eBPF driver will not be there, the first thing a newcomer reads
  // is what is missing and the one command that fixes it (the fallback itself is logged later).
  if (config.sources.driver === 'auto') {
    const missing = ebpfPrecheck(config.sources.ebpf.btf);
    if (missing) {
      log.warn({ missing: missing.why, fix: missing.fix }, `eBPF driver unavailable, falling back (no stratum-on-the-wire, DNS, RandomX or chmod events): ${missing.why}; fix: ${missing.fix}`);
    }
  }
  let rules: RulesManager;
  try {
    rules = rulesFromConfig(config, log);
  } catch (e) {
    return printLoadError(e);
  }
  let recorder: EventRecorder | undefined;
  if (opts.record) {
    try {
      recorder = new EventRecorder(opts.record);
    } catch (e) {
      rules.close();
      process.stderr.write(`${(e as Error).message}\n`);
      return 2;
    }
  }
  let app: AgentApp;
  try {
    app = await startAgentApp(config, log, { server: false, rules, record: recorder?.record });
  } catch (e) {
    startDone();
    recorder?.close();
    const err = e instanceof AppStartError ? e : new AppStartError('agent', e as Error);
    if (err.stage === 'alerting') {
      log.error({ err: err.message }, 'cannot start the alert pipeline');
      process.stderr.write(`minewatch run: ${err.message}\n`);
    } else log.error({ err: err.message }, 'cannot start');
    return 1;
  }
  startDone();
  dropStartPagesSoon((r) => {
    if (r.applied) log.debug({ mappings: r.mappings, mb: Math.round(r.bytes / 1e5) / 10 }, 'start-only program pages let go');
    else log.debug({ reason: r.reason }, 'start-only program pages kept');
  });
  if (recorder) log.info({ file: recorder.path }, 'recording the events the pipeline sees (JSON lines, the replay format)');
  reloadOnSighup(app, opts.config, log, (c) => {
    applyCommonFlags(c, opts);
    applyRunFlags(c, opts);
  });
  rules.watchFiles();
  // The agent first: the events it still holds become alerts, stored before the pipeline stops.
  await untilSignal(log, () => app.stop().then(() => recorder?.close()));
  return 0;
}
