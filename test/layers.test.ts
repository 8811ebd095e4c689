/**
 * The layer rules (.dependency-cruiser.cjs) catch what they are for: a tree of stand-in modules
 * with one planted upward import, one cycle, one forbidden peer arrow and the allowed arrows,
 * cruised with the project's own config. `npm test` cruises the real src/ with it before the tests.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from './helpers/paths.js';

const run = promisify(execFile);

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

/** Writes `files` (path → imported paths) under a fresh folder and cruises its src/ with the project's config. */
async function cruise(files: Record<string, string[]>): Promise<Violation[]> {
  const dir = mkdtempSync(join(tmpdir(), 'mw-layers-'));
  try {
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }));
    for (const [file, imports] of Object.entries(files)) {
      const path = join(dir, file);
      mkdirSync(dirname(path), { recursive: true });
      const lines = imports.map((to, i) => {
        let rel = join(...file.split('/').slice(1, -1).map(() => '..'), ...to.replace(/^src\//, '').split('/')).replace(/\.ts$/, '.js');
        if (!rel.startsWith('.')) rel = `./${rel}`;
        return `import * as m${i} from '${rel}';\nexport const v${i} = m${i};`;
      });
      writeFileSync(path, `${lines.join('\n')}\nexport const here = 1;\n`);
    }
    const bin = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
    let out: string;
    try {
      out = (await run(process.execPath, [bin, 'src', '--config', join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'json'], { cwd: dir, maxBuffer: 1 << 24 })).stdout;
    } catch (e) {
      // Exit status 1..n: that many errors; the JSON is on stdout all the same.
      out = (e as { stdout?: string }).stdout ?? '';
      if (!out) throw e;
    }
    const result = JSON.parse(out) as { summary: { violations: Violation[] } };
    return result.summary.violations;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const arrows = (vs: Violation[]): string[] => vs.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();

test('arrows with the flow pass: down the layers and the listed peer arrows', async () => {
  const vs = await cruise({
    'src/platform/ip.ts': [],
    'src/events.ts': [],
    'src/k8s-api/audit-event.ts': ['src/events.ts'],
    'src/fields/mw.ts': ['src/platform/ip.ts', 'src/k8s-api/audit-event.ts'],
    'src/engine/engine.ts': ['src/fields/mw.ts'],
    'src/enrich/dns.ts': ['src/platform/ip.ts'],
    'src/sources/ebpf.ts': ['src/enrich/dns.ts'],
    'src/response/types.ts': ['src/engine/engine.ts'],
    'src/detectors/types.ts': ['src/response/types.ts'],
    'src/pipeline/pipeline.ts': ['src/detectors/types.ts', 'src/sources/ebpf.ts'],
    'src/web/types.ts': [],
    'src/k8s/routes.ts': ['src/web/types.ts'],
    'src/agent/agent.ts': ['src/pipeline/pipeline.ts', 'src/k8s/routes.ts'],
    'src/cli/run.ts': ['src/agent/agent.ts', 'src/web/types.ts'],
  });
  assert.deepEqual(arrows(vs), []);
});

test('an upward import, a cycle and an unlisted peer arrow each fail', async () => {
  const vs = await cruise({
    'src/platform/log.ts': ['src/agent/agent.ts'], // the bottom importing the top
    'src/fields/a.ts': ['src/engine/b.ts'], // fields → engine: upward, and a cycle with the next
    'src/engine/b.ts': ['src/fields/a.ts'],
    'src/enrich/pods.ts': ['src/sources/s.ts'], // a peer arrow only the other way is listed
    'src/sources/s.ts': [],
    'src/agent/agent.ts': ['src/web/metrics.ts'], // agent and web are peers; agent → web is not listed
    'src/web/metrics.ts': [],
  });
  const got = arrows(vs);
  assert.ok(got.includes('layer-platform: src/platform/log.ts → src/agent/agent.ts'), got.join('\n'));
  assert.ok(got.includes('layer-fields: src/fields/a.ts → src/engine/b.ts'), got.join('\n'));
  assert.ok(got.some((a) => a.startsWith('no-circular: ')), got.join('\n'));
  assert.ok(got.includes('layer-enrich: src/enrich/pods.ts → src/sources/s.ts'), got.join('\n'));
  assert.ok(got.includes('layer-agent: src/agent/agent.ts → src/web/metrics.ts'), got.join('\n'));
  // Nothing else: the engine → fields half of the cycle is with the flow.
  assert.equal(got.filter((a) => !a.startsWith('no-circular: ')).length, 4, got.join('\n'));
});
