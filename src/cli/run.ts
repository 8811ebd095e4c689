/** `minewatch run`: the agent on this host. */
import type { Command } from 'commander';
import { Agent } from '../agent/agent.js';
import { createLogger, type Logger } from '../platform/logger.js';
import { privateUmask } from '../platform/state.js';
import type { Config } from '../config/sections.js';
import { loadConfigFile } from '../config/load.js';
import { ebpfPrecheck } from '../sources/driver-check.js';
import type { Match } from '../engine/types.js';
import { type Alerting, startAlerting } from './alerting.js';
import { collect, loadConfigWithFlags, printLoadError, untilSignal } from './common.js';
import { enabledWebhooks, type Webhooks, webhooks } from './webhooks.js';

interface RunOpts {
  config?: string;
  listen?: string;
  rules?: string[];
  driver?: 'auto' | 'ebpf' | 'proc' | 'procfs';
  json?: boolean;
  source?: string[];
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
    .action(async (opts: RunOpts) => {
      process.exitCode = await run(opts);
    });
}

/**
 * The webhook inputs the config turns on, when web.inputs.enabled allows inputs at all; those it
 * does not allow are named in the log with the key that would.
 */
function agentInputs(config: Config, log: Logger, hooks: () => Webhooks): Webhooks {
  if (config.web.inputs.enabled === true) return hooks();
  const wanted = enabledWebhooks(config);
  if (wanted.length) log.warn({ inputs: wanted }, 'these inputs are enabled but web.inputs.enabled is false, so the agent does not mount them: set web.inputs.enabled: true (the agent then takes input from whoever holds a token)');
  return { routes: [], listeners: [] };
}

async function run(opts: RunOpts): Promise<number> {
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
  const config = loadConfigWithFlags(opts.config, opts, (c) => {
    if (opts.rules?.length) c.rules_files = opts.rules;
    if (opts.driver) c.sources.driver = opts.driver;
  });
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
  // The agent and the alert pipeline meet through onMatch; the pipeline exists first, so not even
  // the first match is lost, and the agent is built (rules loaded) before anything listens.
  let onMatch: (m: Match) => void = () => undefined;
  let agent: Agent;
  try {
    agent = new Agent(config, log, { onMatch: (m) => onMatch(m) });
  } catch (e) {
    return printLoadError(e);
  }
  let alerting: Alerting;
  try {
    alerting = await startAlerting(config, log, {
      webRequired: false,
      inputs: config.web.inputs.enabled === true,
      ...agentInputs(config, log, () => webhooks(config, agent, (m) => onMatch(m), log)),
      metrics: {
        events: () => agent.eventCounts.entries(),
        drops: () => {
          const s = agent.stats();
          return [['queue', s.queueDrops], ['source', s.sourceDrops], ['exec_image_unsettled', s.unsettledExecs]];
        },
        rulesLoaded: () => agent.rules.engine.active.length,
      },
    });
  } catch (e) {
    log.error({ err: (e as Error).message }, 'cannot start the alert pipeline');
    process.stderr.write(`minewatch run: ${(e as Error).message}\n`);
    return 1;
  }
  onMatch = (m) => alerting.pipeline.accept(m);
  try {
    await agent.start();
  } catch (e) {
    log.error({ err: (e as Error).message }, 'cannot start');
    await agent.stop();
    await alerting.stop();
    return 1;
  }
  process.on('SIGHUP', () => {
    agent.rules.reload('SIGHUP');
    // The detectors' config lives in the config file: re-read it; a bad file leaves them as they are.
    if (!opts.config) return;
    try {
      agent.setDetectors(loadConfigFile(opts.config).config.detectors);
      log.info({ config: opts.config }, 'detectors reloaded');
    } catch (e) {
      log.error({ err: (e as Error).message }, 'config refused on reload; the running detectors stay');
    }
  });
  agent.rules.watchFiles();
  // The agent first: the events it still holds become alerts, stored before the pipeline stops.
  await untilSignal(log, () => agent.stop().then(() => alerting.stop()));
  return 0;
}
