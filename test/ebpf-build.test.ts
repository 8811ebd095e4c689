/**
 * The eBPF driver's build never fails an install: on a host without clang, bpftool or libbpf-dev
 * (users installing from npm) scripts/build-ebpf.cjs says what is missing and exits 0, and the
 * agent then names the missing part when it falls back.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/paths.js';

test('without clang, bpftool and libbpf-dev the build says so and exits 0, building nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-ebpf-build-'));
  try {
    mkdirSync(join(dir, 'scripts'));
    mkdirSync(join(dir, 'native', 'ebpf'), { recursive: true });
    copyFileSync(join(ROOT, 'scripts/build-ebpf.cjs'), join(dir, 'scripts/build-ebpf.cjs'));
    for (const f of ['minewatch.bpf.c', 'minewatch.h', 'addon.c', 'binding.gyp']) copyFileSync(join(ROOT, 'native/ebpf', f), join(dir, 'native/ebpf', f));
    // Only node's own folder on PATH: no sh, clang, bpftool or node-gyp to be found.
    const r = spawnSync(process.execPath, [join(dir, 'scripts/build-ebpf.cjs')], {
      encoding: 'utf8',
      env: { PATH: dirname(process.execPath) === '/usr/bin' ? '/nonexistent' : dirname(process.execPath), MINEWATCH_LIBBPF_H: join(dir, 'no-libbpf.h') },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /eBPF object not built: clang is missing \(apt-get install clang\)/);
    assert.match(r.stderr, /eBPF loader not built: libbpf-dev is missing/);
    assert.match(r.stderr, /the agent will use the proc connector/);
    assert.equal(existsSync(join(dir, 'native/ebpf/out/minewatch.bpf.o')), false);
    assert.equal(existsSync(join(dir, 'native/ebpf/build')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
