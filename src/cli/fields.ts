/** `minewatch fields`: the field catalog, with types and descriptions. */
import type { Command } from 'commander';
import { defaultRegistry } from '../fields/index.js';

export function registerFields(program: Command): void {
  program
    .command('fields')
    .description('print the fields rules can use, by source, with types and descriptions')
    .option('-s, --source <source>', 'only this event source (syscall, k8s_audit, github)')
    .option('--json', 'print JSON')
    .action((opts: { source?: string; json?: boolean }) => {
      const reg = defaultRegistry();
      if (opts.source && !reg.hasSource(opts.source)) {
        process.stderr.write(`unknown source '${opts.source}'; known: ${reg.sources().join(', ')}\n`);
        process.exitCode = 1;
        return;
      }
      const fields = reg.list(opts.source).map((f) => ({
        name: f.name, type: f.type, list: !!f.isList,
        arg: f.arg && f.arg !== 'none' ? (f.argOptional ? `optional ${f.arg}` : f.arg) : null,
        desc: f.desc,
      }));
      if (opts.json) {
        process.stdout.write(JSON.stringify(fields, null, 2) + '\n');
        return;
      }
      for (const f of fields) {
        const arg = f.arg ? (f.arg.includes('index') ? '[N]' : '[KEY]') : '';
        process.stdout.write(`${(f.name + arg).padEnd(36)} ${f.type.padEnd(8)} ${f.desc}\n`);
      }
    });
}
