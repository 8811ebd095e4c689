/** The `minewatch` command run as a user runs it (a real process), and files for it to read. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './paths.js';

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

/** Run `minewatch ARGS` to the end, `input` on its stdin, `env` added to this process's environment. */
export function runCli(args: string[], input?: string, env: NodeJS.ProcessEnv = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input, env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A fresh temporary folder, and `file` to write one file in it (its path is returned). */
export function scratchDir(prefix: string): { dir: string; file: (name: string, text: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    file(name, text) {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    },
  };
}
