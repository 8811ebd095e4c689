/** `minewatch doctor`: which drivers and detectors can run on this host, why not, and the fix. */
import type { Command } from 'commander';
import { admissionAuthStatus } from '../k8s/webhook-auth.js';
import { type DriverName, doctor } from '../sources/driver-check.js';
import { loadConfigWithFlags } from './common.js';

interface DoctorOpts {
  config?: string;
  driver?: string;
  json?: boolean;
  trial: boolean;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('list each driver and detector: whether it can run on this host, why not, and the fix; exit 1 if the agent could not start')
    .option('-c, --config <file>', 'the config file the agent would run with')
    .option('--driver <driver>', 'the driver the agent would be asked for: auto, ebpf, proc, procfs')
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
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const w = Math.max(...report.checks.map((c) => c.name.length));
    for (const c of report.checks) {
      process.stdout.write(`${c.ok ? 'ok  ' : 'no  '} ${c.kind.padEnd(11)} ${c.name.padEnd(w)}  ${c.detail}\n`);
      if (!c.ok && c.fix) process.stdout.write(`${' '.repeat(18 + w)}fix: ${c.fix}\n`);
    }
    const asked = report.asked === 'auto' ? 'auto' : `--driver ${report.asked}`;
    process.stdout.write(report.chosen
      ? `\nminewatch run (${asked}) would use the ${report.chosen} driver${report.trial ? '' : ' (checked without loading it)'}\n`
      : `\nminewatch run (${asked}) could not start: the ${report.asked} driver cannot run here\n`);
  }
  return report.chosen ? 0 : 1;
}
