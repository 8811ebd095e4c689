/**
 * `minewatch server`: the central store, dashboard, API and inputs, with no sources of its own.
 * Agents on many nodes forward to it (their falcosidekick output pointed at its POST /), and so can
 * Falco itself (http_output), so a cluster has one alert history and one dashboard.
 */
import type { Command } from 'commander';
import { createLogger } from '../agent/logger.js';
import { privateUmask } from '../agent/state.js';
import { Agent } from '../agent/agent.js';
import type { Match } from '../engine/types.js';
import { type Alerting, startAlerting } from './alerting.js';
import { loadConfigWithFlags, printLoadError, untilSignal } from './common.js';
import { webhooks } from './webhooks.js';
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
  let onMatch: (m: Match) => void = () => undefined;
  let agent: Agent;
  try {
    agent = new Agent(config, log, { onMatch: (m) => onMatch(m), hostSources: false });
  } catch (e) {
    return printLoadError(e);
  }
  let alerting: Alerting | undefined;
  let consumer: FleetConsumer | undefined;
  // /readyz: filled in as each part comes up (the store first, then the fleet consumer).
  const checks: ReadinessCheck[] = [];
  try {
    const hooks = webhooks(config, agent, (m) => onMatch(m), log);
    alerting = await startAlerting(config, log, {
      webRequired: true,
      inputs: true,
      sharedStore: true,
      ...hooks,
      routes: [...hooks.routes, readinessRoute(() => checks)],
      metrics: { events: () => agent.eventCounts.entries(), rulesLoaded: () => agent.rules.engine.active.length },
    });
    const pipeline = alerting.pipeline;
    onMatch = (m) => pipeline.accept(m);
    checks.push({ name: 'store', check: () => ({ ready: true, detail: 'open, migrations applied' }) });
    if (config.alerts.consume) {
      consumer = new FleetConsumer(config.alerts.consume, fleetSink(pipeline, log), log.child({ component: 'fleet' }));
      await consumer.start();
      const c = consumer;
      checks.push({ name: 'fleet_consumer', check: () => c.readiness() });
    }
    await agent.start();
  } catch (e) {
    log.error({ err: (e as Error).message }, 'cannot start');
    process.stderr.write(`minewatch server: ${(e as Error).message}\n`);
    await agent.stop();
    await consumer?.stop();
    await alerting?.stop();
    return 1;
  }
  const running = alerting;
  agent.rules.watchFiles();
  process.on('SIGHUP', () => agent.rules.reload('SIGHUP'));
  log.info({ url: running.url }, 'server started');
  // The consumer first: what it took is committed and acked, or left to another replica.
  await untilSignal(log, () => (consumer?.stop() ?? Promise.resolve()).then(() => agent.stop()).then(() => running.stop()));
  return 0;
}
