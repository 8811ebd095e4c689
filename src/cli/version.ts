/** `minewatch version`: the package, the rules-language engine version and the built-in plugins. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { BUILTIN_PLUGINS, ENGINE_VERSION } from '../engine/version.js';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

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
