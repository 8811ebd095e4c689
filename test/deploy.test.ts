/** What deploy/ ships is accepted by the tools that will read it. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ROOT } from './helpers/paths.js';

test('systemd-analyze verify accepts the unit file', (t) => {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    t.skip('systemd-analyze is not installed here (Debian package systemd)');
    return;
  }
  // Run from / so relative lookups cannot hide a problem; the unit names /usr/bin/env, which exists.
  const r = spawnSync('systemd-analyze', ['verify', `${ROOT}deploy/minewatch.service`], { encoding: 'utf8', cwd: '/' });
  assert.equal(r.status, 0, `systemd-analyze verify failed:\n${r.stdout}${r.stderr}`);
  assert.equal(r.stderr.trim(), '', r.stderr);
});
