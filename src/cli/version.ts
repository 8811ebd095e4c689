/** `minewatch version`: the package, the rules-language engine version and the built-in plugins. */
import type { Command } from 'commander';
import { BUILTIN_PLUGINS, ENGINE_VERSION } from '../engine/version.js';
import { packageVersion } from '../platform/version.js';

export function registerVersion(program: Command): void {
  program
    .command('version')
    .description('print minewatch\'s version, the Falco engine version its rules language matches, and its built-in plugins')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const info = { version: packageVersion(), engine_version: ENGINE_VERSION, plugins: BUILTIN_PLUGINS };
      if (opts.json) {
        process.stdout.write(JSON.stringify(info, null, 2) + '\n');
        return;
      }
      process.stdout.write(`minewatch ${info.version}\nengine version ${info.engine_version}\nplugins:\n`);
      for (const p of info.plugins) process.stdout.write(`  ${p.name} ${p.version}  (${p.provides})\n`);
    });
}
