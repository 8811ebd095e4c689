/** `minewatch doctor`: which drivers and detectors can run on this host, why not, and the fix. */
import type { Command } from 'commander';
import { admissionAuthStatus } from '../k8s/webhook-auth.js';
import { Engine, parsePriority, resolveRulesPaths } from '../engine/index.js';
import { type DriverName, doctor } from '../sources/driver-check.js';
import { type RuleCoverage, deliveredTypes, ruleCoverage } from '../sources/coverage.js';
import { deriveReadFilter, type ReadFilter } from '../sources/ebpf/read-filter.js';
import { collect, loadConfigWithFlags, printLoadError } from './common.js';

interface DoctorOpts {
  config?: string;
  driver?: string;
  rules?: string[];
  json?: boolean;
  trial: boolean;
}

/** The loaded rules against the driver run would choose: per rule, the event types it would not get. */
interface RulesCoverage {
  driver: DriverName;
  files: string[];
  rules: RuleCoverage[];
  /** Opens for reading (eBPF driver): which the kernel ships, from the rules' conditions. */
  openRead?: Pick<ReadFilter, 'mode' | 'prefixes' | 'comms' | 'unbounded'>;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('list each driver and detector: whether it can run on this host, why not, and the fix; exit 1 if the agent could not start')
    .option('-c, --config <file>', 'the config file the agent would run with')
    .option('--driver <driver>', 'the driver the agent would be asked for: auto, ebpf, proc, procfs')
    .option('-r, --rules <file>', 'rules file or folder (repeatable, in order; replaces the config\'s rules_files; "default" = minewatch\'s own): list each rule\'s coverage by the driver', collect)
    .option('--no-trial', 'only check files and privileges; do not load the drivers for a moment')
    .option('--json', 'the report as JSON')
    .action(async (opts: DoctorOpts) => {
      process.exitCode = await runDoctor(opts);
    });
}

async function runDoctor(opts: DoctorOpts): Promise<number> {
  if (opts.driver && !['auto', 'ebpf', 'proc', 'procfs'].includes(opts.driver)) {
    process.stderr.write(`--driver: '${opts.driver}' is not one of auto, ebpf, proc, procfs\n`);
    return 2;
  }
  const config = loadConfigWithFlags(opts.config, {}, (c) => {
    if (opts.driver) c.sources.driver = opts.driver as DriverName | 'auto';
    if (opts.rules?.length) c.rules_files = opts.rules;
  });
  if (typeof config === 'number') return config;
  const d = config.detectors;
  const report = await doctor({
    driver: config.sources.driver,
    trial: opts.trial,
    ...(config.sources.ebpf.btf ? { btfPath: config.sources.ebpf.btf } : {}),
    execwhacker: d.execwhacker.enabled,
    tcpflowkiller: d.tcpflowkiller.enabled,
    moneroKill: d.monero.enabled,
    responseMode: config.response.mode,
    admission: admissionAuthStatus(config),
  });
  const files = resolveRulesPaths(config.rules_files);
  let engine: Engine;
  try {
    const e = config.engine;
    engine = Engine.fromFiles(files, { minPriority: parsePriority(e.priority), enabledTags: e.enabled_tags, disabledTags: e.disabled_tags, disabledRules: e.disabled_rules });
  } catch (err) {
    return printLoadError(err);
  }
  const driver = report.chosen ?? 'procfs';
  const s = config.sources;
  const coverage: RulesCoverage = {
    driver,
    files,
    rules: ruleCoverage(engine.active, deliveredTypes(driver, { connections: s.connections.enabled && driver !== 'ebpf', cpu: s.cpu.enabled })),
  };
  if (driver === 'ebpf') {
    const f = deriveReadFilter((t) => engine.rulesFor('syscall', t));
    const mode = s.ebpf.open_read === true ? 'all' : s.ebpf.open_read === false ? 'none' : f.mode;
    coverage.openRead = { mode, prefixes: mode === 'prefix' ? f.prefixes : [], comms: mode === 'prefix' ? f.comms : [], unbounded: f.unbounded };
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ ...report, coverage }, null, 2)}\n`);
  } else {
    const w = Math.max(...report.checks.map((c) => c.name.length));
    for (const c of report.checks) {
      process.stdout.write(`${c.ok ? 'ok  ' : 'no  '} ${c.kind.padEnd(11)} ${c.name.padEnd(w)}  ${c.detail}\n`);
      if (!c.ok && c.fix) process.stdout.write(`${' '.repeat(18 + w)}fix: ${c.fix}\n`);
    }
    printCoverage(coverage);
    const asked = report.asked === 'auto' ? 'auto' : `--driver ${report.asked}`;
    process.stdout.write(report.chosen
      ? `\nminewatch run (${asked}) would use the ${report.chosen} driver${report.trial ? '' : ' (checked without loading it)'}\n`
      : `\nminewatch run (${asked}) could not start: the ${report.asked} driver cannot run here\n`);
  }
  return report.chosen ? 0 : 1;
}

function printCoverage(c: RulesCoverage): void {
  const short = { full: 'all ', partial: 'part', none: 'none' } as const;
  const missing = c.rules.filter((r) => r.status !== 'full').length;
  process.stdout.write(`\nrules: ${c.rules.length} syscall rules from ${c.files.length} files; with the ${c.driver} driver ${c.rules.length - missing} get all their event types, ${missing} do not\n`);
  for (const r of c.rules) {
    const types = r.types ? r.types.join(',') : 'any type';
    process.stdout.write(`${short[r.status]}  ${r.rule}  (${types}${r.missing.length ? `; not delivered: ${r.missing.join(',')}` : ''})\n`);
  }
  const o = c.openRead;
  if (!o) return;
  const how = o.mode === 'prefix' ? `those under ${o.prefixes.length} path prefixes or by ${o.comms.length} process names the rules name` : o.mode === 'all' ? 'every one' : 'none';
  process.stdout.write(`opens for reading shipped by the kernel: ${how}\n`);
  for (const u of o.unbounded) process.stdout.write(`      ${u.rule}: ships them all (${u.why})\n`);
}
