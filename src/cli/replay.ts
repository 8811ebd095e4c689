/** `minewatch replay FILE`: feed recorded events through the rules and print the alerts. */
import type { Command } from 'commander';
import { createLogger } from '../platform/logger.js';
import { composeCore } from '../app/compose.js';
import type { Match } from '../engine/types.js';
import { Engine, parsePriority } from '../engine/index.js';
import { escapeControl } from '../engine/escape.js';
import { FALCO_DEFAULT_APPEND_OUTPUT, falcoJsonLine, formatText } from '../engine/output.js';
import type { PluginEvent } from '../events.js';
import { GithubApi } from '../github/api.js';
import { GithubEnricher } from '../github/enrich.js';
import { ReplayLineError, readEventsFile } from '../sources/replay.js';
import { readAuditFile } from '../sources/k8s-audit-log.js';
import { collect, loadConfigWithFlags, printLoadError, resolveRulesPaths } from './common.js';

interface ReplayOpts {
  rules?: string[];
  json?: boolean;
  allMatches?: boolean;
  source?: string;
  minPriority?: string;
  hosts?: string[];
  dns?: string[];
  iso8601?: boolean;
  githubApi?: string;
  config?: string;
}


export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('replay a JSON-lines events file through the rules and print the alerts it produces')
    .argument('<file>', 'events file, one JSON event per line ("-" for standard input); with --source k8s_audit, a Kubernetes audit log (one audit Event per line)')
    .option('-r, --rules <file>', 'rules file or folder (repeatable, in order; "default" = minewatch\'s own)', collect)
    .option('--json', 'print alerts as Falco JSON, one per line')
    .option('--all-matches', 'report every rule an event matches (Falco\'s rule_matching: all), not only the first')
    .option('-s, --source <source>', 'only events of this source (syscall, k8s_audit, github)')
    .option('--min-priority <priority>', 'leave out rules less severe than this (e.g. warning)')
    .option('--hosts <file>', 'hosts file for fd.*.name lookups (repeatable)', collect)
    .option('--dns <name=ip[,ip]>', 'static DNS entry for fd.*.name lookups (repeatable)', collect)
    .option('--iso8601', 'ISO 8601 times in text alerts')
    .option('-c, --config <file>', 'the config file whose detectors and response actions run too (actions only record what they would do: nothing is run)')
    .option('--github-api <url>', 'for github events not yet enriched: fetch workflow files and push diffs from this GitHub API (https://api.github.com, or https://HOST/api/v3); token from GITHUB_TOKEN')
    .action(async (file: string, opts: ReplayOpts) => {
      process.exitCode = await replay(file, opts);
    });
}

async function replay(file: string, opts: ReplayOpts): Promise<number> {
  let minPriority;
  if (opts.minPriority) {
    minPriority = parsePriority(opts.minPriority);
    if (!minPriority) {
      process.stderr.write(`--min-priority: unknown priority '${opts.minPriority}' (emergency … debug)\n`);
      return 2;
    }
  }
  let engine: Engine;
  try {
    engine = Engine.fromFiles(resolveRulesPaths(opts.rules), {
      ruleMatching: opts.allMatches ? 'all' : 'first', minPriority, appendOutput: FALCO_DEFAULT_APPEND_OUTPUT,
    });
  } catch (e) {
    return printLoadError(e);
  }
  // The config's detectors and response run as live (responses record only, see compose.ts).
  const config = loadConfigWithFlags(opts.config, {});
  if (typeof config === 'number') return config;
  if (!opts.config) {
    // Without a config file, names come from --hosts and --dns only (not this machine's /etc/hosts).
    config.sources.dns.hosts_files = [];
    config.sources.dns.static = {};
  }
  const byRule = new Map<string, number>();
  let alerts = 0;
  // Every match prints, ungrouped and unstored: no throttle, no store.
  const print = (m: Match): void => {
    alerts++;
    byRule.set(m.rule, (byRule.get(m.rule) ?? 0) + 1);
    process.stdout.write((opts.json ? falcoJsonLine(m, { iso8601: opts.iso8601 }) : escapeControl(formatText(m, { iso8601: opts.iso8601 }))) + '\n');
  };
  // The detectors' warnings only, on standard error (standard output is the alerts').
  const core = composeCore(config, createLogger(process.env.MINEWATCH_LOG_LEVEL ?? 'warn'), { sink: print, rules: { engine }, replay: true });
  const dns = core.dns;
  for (const h of opts.hosts ?? []) dns.loadHostsFile(h);
  for (const entry of opts.dns ?? []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      process.stderr.write(`--dns: expected NAME=IP[,IP], got '${entry}'\n`);
      return 2;
    }
    dns.addStatic(entry.slice(0, eq), entry.slice(eq + 1).split(','));
  }
  const github = opts.githubApi ? githubEnricher(opts.githubApi) : undefined;
  /** Events read from the file, and of those the ones of the --source asked for. */
  let readable = 0;
  let events = 0;
  let bad = 0;
  const progress = process.stderr.isTTY;
  try {
    const onError = (err: Error): void => {
      bad++;
      process.stderr.write(`${err.message} (line skipped)\n`);
    };
    // k8s_audit files are audit logs as the API server writes them (one Event per line).
    const stream = opts.source === 'k8s_audit' ? readAuditFile(file, onError) : readEventsFile(file, { onError });
    for await (const ev of stream) {
      readable++;
      if (opts.source && ev.source !== opts.source) continue;
      events++;
      if (ev.source === 'github' && github) await enrichGithub(github, ev as PluginEvent);
      // One event at a time, to the end: a replay drops nothing and keeps the file's order.
      core.pipeline.accept(ev);
      core.pipeline.flush();
      if (progress && events % 100_000 === 0) process.stderr.write(`\r${events.toLocaleString('en-US')} events, ${alerts} alerts`);
    }
  } catch (e) {
    if (e instanceof ReplayLineError) {
      process.stderr.write(`${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    // The response outcomes (recorded only) arrive as alerts once their promises settle.
    await new Promise((r) => setImmediate(r));
    core.detectors.close();
    core.table.close();
  }
  if (progress && events >= 100_000) process.stderr.write('\n');
  if (readable === 0) {
    // Nothing to replay is a mistake (a wrong file, a wrong --source format), not an empty success.
    const why = bad ? `none of its ${bad} line(s) is an event (see the lines above)` : 'it holds no event (it is empty, or only blank lines and # comments)';
    const hint = opts.source === 'k8s_audit' ? 'a Kubernetes audit log, one audit Event per line' : 'JSON lines, one event each (see README, "Events")';
    process.stderr.write(`${file}: nothing replayed: ${why}. Expected ${hint}.\n`);
    return 1;
  }
  const rules = [...byRule].map(([r, n]) => `${n} × ${r}`).join('; ');
  process.stderr.write(`replayed ${events} events from ${file}: ${alerts} alert(s)${rules ? ` (${rules})` : ''}${bad ? `, ${bad} bad line(s) skipped` : ''}\n`);
  return 0;
}

function githubEnricher(baseUrl: string): GithubEnricher {
  const log = { warn: (o: object, msg: string) => process.stderr.write(`${msg}: ${JSON.stringify(o)}\n`) };
  return new GithubEnricher(new GithubApi({ baseUrl, token: process.env.GITHUB_TOKEN || undefined }), { log });
}

/** A recorded webhook payload gets what the live source would have added (fetches that fail leave <NA>). */
async function enrichGithub(enricher: GithubEnricher, ev: PluginEvent): Promise<void> {
  const p = ev.payload;
  if (p !== null && typeof p === 'object' && !Array.isArray(p)) await enricher.enrich(ev.type, p as Record<string, unknown>);
}
