/**
 * Which files of a checkout define CI: GitHub workflows and composite actions, GitLab CI,
 * Jenkinsfiles, CircleCI and Azure Pipelines. The miner check runs on each (`minewatch github scan`).
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { CiFileKind } from './miners.js';

export interface CiFile {
  /** Path as given (PATH joined with the file's place under it). */
  path: string;
  /** Path relative to the scanned folder, with / separators. */
  rel: string;
  kind: CiFileKind;
}

/** Folders never holding a pipeline of the repository itself. */
const SKIP_DIRS = new Set(['.git', 'node_modules', 'vendor', 'dist', 'build', 'target', '.venv', 'venv', '__pycache__']);
const MAX_DEPTH = 12;

/** The kind of CI file `rel` is, or undefined when it is none. */
export function ciKindOf(rel: string): CiFileKind | undefined {
  const parts = rel.split('/');
  const name = parts.at(-1)!;
  const dir = parts.slice(0, -1).join('/');
  if (/^Jenkinsfile(?:[.-][\w.-]+)?$/.test(name) || name.endsWith('.jenkinsfile')) return 'jenkins';
  if (!/\.ya?ml$/.test(name)) return undefined;
  if (/(?:^|\/)\.github\/workflows$/.test(dir)) return 'yaml';
  if (name === 'action.yml' || name === 'action.yaml') return 'yaml';
  if (name === '.gitlab-ci.yml' || name.endsWith('.gitlab-ci.yml') || /(?:^|\/)\.gitlab\/ci$/.test(dir)) return 'yaml';
  if (/(?:^|\/)\.circleci$/.test(dir) && /^config\.ya?ml$/.test(name)) return 'yaml';
  if (/^\.?azure-pipelines(?:[.-][\w.-]+)?\.ya?ml$/.test(name) || /(?:^|\/)\.?azure-pipelines$/.test(dir)) return 'yaml';
  return undefined;
}

/** A file named on the command line: a Jenkinsfile (any spelling) or Groovy is Groovy, the rest YAML. */
export function singleFileKind(name: string): CiFileKind {
  return /jenkinsfile|\.groovy$/i.test(name) ? 'jenkins' : 'yaml';
}

/** The CI files under `root` (a folder), or `root` itself when it is a file. Sorted by path. */
export function findCiFiles(root: string): CiFile[] {
  const st = statSync(root);
  if (st.isFile()) {
    const name = root.split(sep).pop()!;
    return [{ path: root, rel: name, kind: singleFileKind(name) }];
  }
  const out: CiFile[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > MAX_DEPTH) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // unreadable folder: nothing of ours to scan there
    }
    for (const e of entries) {
      const full = join(dir, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) walk(full, depth + 1);
      } else if (e.isFile()) {
        const rel = relative(root, full).split(sep).join('/');
        const kind = ciKindOf(rel);
        if (kind) out.push({ path: full, rel, kind });
      }
    }
  };
  walk(root, 0);
  return out.sort((a, b) => a.rel.localeCompare(b.rel));
}
