/** `minewatch rules validate` and `minewatch rules list`. */
import type { Command } from 'commander';
import { Engine, RulesLoadError, priorityLabel } from '../engine/index.js';
import { collect, describeProblem, printLoadError, problemJson, resolveRulesPaths } from './common.js';

export function registerRules(program: Command): void {
  const rules = program.command('rules').description('check and list rules files');

  rules
    .command('validate')
    .description('load rules files in order, as the agent would, and report every error with file:line:col (exit 1 on error)')
    .argument('<files...>', 'rules files or folders, loaded in the order given (the word "default" is minewatch\'s own rules)')
    .option('--json', 'print the result as JSON')
    .option('-q, --quiet', 'do not print warnings')
    .action((files: string[], opts: { json?: boolean; quiet?: boolean }) => {
      const paths = resolveRulesPaths(files);
      try {
        const engine = Engine.fromFiles(paths);
        const rs = engine.ruleset;
        if (opts.json) {
          process.stdout.write(JSON.stringify({ valid: true, errors: [], warnings: rs.warnings.map(problemJson), files: rs.files }, null, 2) + '\n');
        } else {
          if (!opts.quiet) for (const w of rs.warnings) process.stderr.write(describeProblem(w, 'warning') + '\n');
          for (const f of rs.files) process.stdout.write(`${f.path}: Ok (${f.rules} rules, ${f.macros} macros, ${f.lists} lists)\n`);
        }
        process.exitCode = 0;
      } catch (e) {
        if (opts.json && e instanceof RulesLoadError) {
          process.stdout.write(JSON.stringify({ valid: false, errors: e.errors.map(problemJson), warnings: e.warnings.map(problemJson) }, null, 2) + '\n');
          process.exitCode = 1;
          return;
        }
        process.exitCode = printLoadError(e);
      }
    });

  rules
    .command('list')
    .description('list the rules that load: name, source, priority, enabled, tags')
    .option('-r, --rules <file>', 'rules file or folder (repeatable, in order; "default" = minewatch\'s own)', collect)
    .option('--json', 'print JSON')
    .action((opts: { rules?: string[]; json?: boolean }) => {
      let engine: Engine;
      try {
        engine = Engine.fromFiles(resolveRulesPaths(opts.rules));
      } catch (e) {
        process.exitCode = printLoadError(e);
        return;
      }
      const rows = engine.ruleset.rules.map((r) => ({
        name: r.name, source: r.source, priority: r.priority, enabled: r.enabled, tags: r.tags,
      }));
      if (opts.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      for (const r of rows) {
        process.stdout.write(`${r.enabled ? 'on ' : 'off'}  ${priorityLabel(r.priority).padEnd(13)} ${r.source.padEnd(9)} ${r.name}${r.tags.length ? `  [${r.tags.join(', ')}]` : ''}\n`);
      }
      process.stdout.write(`${rows.length} rules, ${rows.filter((r) => r.enabled).length} enabled\n`);
    });
}
