/** `minewatch rules validate` and `minewatch rules list`. */
import type { Command } from 'commander';
import { defaultRegistry } from '../fields/index.js';
import { Engine, priorityLabel, readRulesFiles, RulesLoadError } from '../engine/index.js';
import { type FalcoLoadResult, loadResultJson } from '../engine/load/falco-json.js';
import { RulesLoader } from '../engine/loader.js';
import { BUILTIN_PLUGINS } from '../engine/version.js';
import { collect, describeProblem, printLoadError, resolveRulesPaths } from './common.js';

export function registerRules(program: Command): void {
  const rules = program.command('rules').description('check and list rules files');

  rules
    .command('validate')
    .description('load rules files in order, as the agent would, and report every error with file:line:col (exit 1 on error)')
    .argument('<files...>', 'rules files or folders, loaded in the order given (the word "default" is minewatch\'s own rules)')
    .option('--json', "print the result as Falco's `falco -V … -o json_output=true` does: {\"falco_load_results\": [one per file]}")
    .option('-q, --quiet', 'do not print warnings')
    .action((files: string[], opts: { json?: boolean; quiet?: boolean }) => {
      const paths = resolveRulesPaths(files);
      if (opts.json) {
        const results = validateJson(paths);
        process.stdout.write(JSON.stringify({ falco_load_results: results }) + '\n');
        process.exitCode = results.every((r) => r.successful) ? 0 : 1;
        return;
      }
      try {
        const engine = Engine.fromFiles(paths);
        const rs = engine.ruleset;
        if (!opts.quiet) for (const w of rs.warnings) process.stderr.write(describeProblem(w, 'warning') + '\n');
        for (const f of rs.files) process.stdout.write(`${f.path}: Ok (${f.rules} rules, ${f.macros} macros, ${f.lists} lists)\n`);
        process.exitCode = 0;
      } catch (e) {
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

/**
 * One load result per file, each file loaded on top of the ones before it and compiled with them,
 * as `falco -V a.yaml -V b.yaml` does (every compile's warnings are in its file's result). A file
 * that cannot be read is LOAD_ERR_FILE_READ, and the files after it are still read.
 */
function validateJson(paths: string[]): FalcoLoadResult[] {
  const registry = defaultRegistry();
  const loader = new RulesLoader({ registry, sources: new Set(registry.sources()), plugins: BUILTIN_PLUGINS });
  const results: FalcoLoadResult[] = [];
  for (const p of paths) {
    let files;
    try {
      files = readRulesFiles([p]);
    } catch (e) {
      if (!(e instanceof RulesLoadError)) throw e;
      const errors = e.errors.map((x) => ({ ...x, code: 'LOAD_ERR_FILE_READ' }));
      results.push(loadResultJson({ path: p, successful: false, errors, warnings: [] }, new Map()));
      continue;
    }
    // Nothing runs the rules here: no compile needs to build predicates.
    for (const f of files) results.push(loadResultJson(loader.addFile(f, false), new Map([[f.path, f.text]])));
  }
  return results;
}
