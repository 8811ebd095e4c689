/**
 * A config problem and the error that carries them: a leaf module, so that modules the config's
 * sections import (a detector's default list) can report file and line without importing the
 * loader, which imports the sections (that would be a cycle).
 */
export interface ConfigProblem {
  /** Dotted path of the key at fault, e.g. "sources.cpu.threshold". */
  path: string;
  message: string;
  file: string;
  line: number;
  col: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatConfigProblem).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatConfigProblem(p: ConfigProblem): string {
  const at = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file;
  return `${at}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}
