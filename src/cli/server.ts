/**
 * `minewatch server`: the central store, dashboard, API and inputs, with no sources of its own.
 * Agents on many nodes forward to it (their falcosidekick output pointed at its POST /), and so can
 * Falco itself (http_output), so a cluster has one alert history and one dashboard.
 */
import type { Command } from 'commander';
import { createLogger } from '../platform/logger.js';
import { privateUmask } from '../platform/state.js';
import type { RulesManager } from '../agent/rules-manager.js';
import { type AgentApp, startAgentApp } from '../app/agent-app.js';
import { rulesFromConfig } from '../app/compose.js';
import { reloadOnSighup } from '../app/reload.js';
import { applyCommonFlags, loadConfigWithFlags, printLoadError, untilSignal } from './common.js';
import { FleetConsumer } from '../fleet/consumer.js';
import { fleetSink } from '../fleet/server-sink.js';
import { type ReadinessCheck, readinessRoute } from '../fleet/readiness.js';
import { registerServerMigrate } from './server-migrate.js';

interface ServerOpts {
  config?: string;
  listen?: string;
  json?: boolean;
}

export function registerServer(program: Command): void {
  const server = program
    .command('server')
    .description('the central alert store, dashboard, API and inputs (POST / and /falco take Falco JSON alerts from agents and Falco); no sources')
    .option('-c, --config <file>', 'the config file (alerts, outputs, web, k8s sections)')
    .option('--listen <host:port>', 'the web server\'s address (overrides web.listen; default 127.0.0.1:8788)')
    .option('--json', 'the stdout output, if on, prints Falco JSON')
    .action(async (opts: ServerOpts) => {
      process.exitCode = await serve(opts);
    });
  registerServerMigrate(server);
}

async function serve(opts: ServerOpts): Promise<number> {
  privateUmask();
  const config = loadConfigWithFlags(opts.config, opts);
  if (typeof config === 'number') return config;
  const log = createLogger();
  if (!config.web.enabled) {
    process.stderr.write('web.enabled is false: a server without its web server takes no alerts; set web.enabled: true\n');
    return 2;
  }
  if (config.web.inputs.enabled === false) {
    process.stderr.write('web.inputs.enabled is false: a server takes alerts only through its inputs; remove the key or set it to true\n');
    return 2;
  }
  // The engine runs here only for what the webhooks and log files feed it (k8s_audit, github).
  let rules: RulesManager;
  try {
    rules = rulesFromConfig(config, log);
  } catch (e) {
    return printLoadError(e);
  }
  // /readyz: filled in as each part comes up (the store first, then the fleet consumer).
  const checks: ReadinessCheck[] = [];
  let app: AgentApp;
  try {
    app = await startAgentApp(config, log, { server: true, rules, routes: [readinessRoute(() => checks)] });
  } catch (e) {
    log.error({ err: (e as Error).message }, 'cannot start');
    process.stderr.write(`minewatch server: ${(e as Error).message}\n`);
    return 1;
  }
  checks.push({ name: 'store', check: () => ({ ready: true, detail: 'open, migrations applied' }) });
  let consumer: FleetConsumer | undefined;
  if (config.alerts.consume) {
    try {
      consumer = new FleetConsumer(config.alerts.consume, fleetSink(app.alerting.pipeline, log), log.child({ component: 'fleet' }));
      await consumer.start();
    } catch (e) {
      log.error({ err: (e as Error).message }, 'cannot start');
      process.stderr.write(`minewatch server: ${(e as Error).message}\n`);
      await consumer?.stop();
      await app.stop();
      return 1;
    }
    const c = consumer;
    checks.push({ name: 'fleet_consumer', check: () => c.readiness() });
  }
  rules.watchFiles();
  reloadOnSighup(app, opts.config, log, (c) => {
    applyCommonFlags(c, opts);
  });
  log.info({ url: app.alerting.url }, 'server started');
  // The consumer first: what it took is committed and acked, or left to another replica.
  await untilSignal(log, () => (consumer?.stop() ?? Promise.resolve()).then(() => app.stop()));
  return 0;
}
