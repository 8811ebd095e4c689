/** package.json `main` names a built file, and what it exports runs rules over events of one's own. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import type * as Entry from '../src/index.js';
import { ROOT } from './helpers/paths.js';

test('main is the engine API: rules text in, matches out', async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string };
  const main = join(ROOT, pkg.main);
  assert.ok(existsSync(main), `package.json main ${pkg.main} is not built`);
  const lib = (await import(pathToFileURL(main).href)) as typeof Entry;
  const rules = '- rule: Miner started\n  desc: d\n  condition: evt.type = execve and proc.name = xmrig\n  output: miner %proc.name\n  priority: CRITICAL\n';
  const engine = new lib.Engine([{ path: 'miner.yaml', text: rules }]);
  const ev: Parameters<typeof engine.process>[0] = { source: 'syscall', type: 'execve', ts: 1n, proc: { pid: 7, name: 'xmrig' } };
  assert.deepEqual(engine.process(ev).map((m) => [m.rule, m.priority]), [['Miner started', 'CRITICAL']]);
  assert.deepEqual(engine.process({ ...ev, proc: { pid: 8, name: 'nginx' } }), []);
  assert.ok(lib.DEFAULT_RULES_FILES.every((f) => existsSync(f)), 'the shipped rules are where the entry says');
  assert.throws(() => new lib.Engine([{ path: 'bad.yaml', text: '- rule: x\n  condition: proc.name = \n' }]), lib.RulesLoadError);
});
