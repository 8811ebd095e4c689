/** src/enrich/users.ts: names from passwd/group, per container, reloaded on change. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserDb, parseGroup, parsePasswd } from '../src/enrich/users.js';

function tree(): { root: string; host: string; ctr: string; distroless: string } {
  const root = mkdtempSync(join(tmpdir(), 'mw-users-'));
  const host = join(root, 'host');
  const ctr = join(root, 'ctr');
  const distroless = join(root, 'distroless');
  for (const d of [host, ctr, distroless]) mkdirSync(join(d, 'etc'), { recursive: true });
  writeFileSync(join(host, 'etc/passwd'), [
    'root:x:0:0:root:/root:/bin/bash',
    'systemd-resolve:x:101:103:systemd Resolver,,,:/run/systemd:/usr/sbin/nologin',
    'alice:x:1000:1000:Alice,,,:/home/alice:/bin/zsh',
    '# a comment',
    'broken line',
    'dup:x:1000:1000::/nowhere:/bin/false',
    '',
  ].join('\n'));
  writeFileSync(join(host, 'etc/group'), 'root:x:0:\nsystemd-resolve:x:103:\nalice:x:1000:\nbad\n');
  writeFileSync(join(ctr, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/ash\nnginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\n');
  writeFileSync(join(ctr, 'etc/group'), 'root:x:0:\nnginx:x:101:nginx\n');
  return { root, host, ctr, distroless };
}

test('passwd and group parsing', () => {
  const pw = parsePasswd('root:x:0:0:root:/root:/bin/bash\nbad\nnouid:x:abc:0::/:/bin/sh\nbob:x:7:7::/home/bob:/bin/sh\r\n');
  assert.deepEqual(pw.get(0), { name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/bash' });
  assert.equal(pw.get(7)?.shell, '/bin/sh');
  assert.equal(pw.size, 2);
  const gr = parseGroup('root:x:0:\nwheel:x:10:alice,bob\nx:y\n');
  assert.equal(gr.get(10), 'wheel');
  assert.equal(gr.size, 2);
});

test('host names; the first entry for a uid wins', () => {
  const t = tree();
  try {
    const db = new UserDb({ hostRoot: t.host });
    assert.deepEqual(db.user(1000), { name: 'alice', uid: 1000, gid: 1000, home: '/home/alice', shell: '/bin/zsh' });
    assert.equal(db.user(101)?.name, 'systemd-resolve');
    assert.equal(db.group(103), 'systemd-resolve');
    assert.equal(db.user(4242), undefined);
    assert.equal(db.user(-1), undefined);
    assert.equal(db.user(undefined), undefined);
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("a container's own files name its users; the host's answer when the container has none", () => {
  const t = tree();
  try {
    const db = new UserDb({ hostRoot: t.host });
    const scope = { key: 'abc', root: t.ctr };
    assert.equal(db.user(101, scope)?.name, 'nginx');
    assert.equal(db.user(0, scope)?.shell, '/bin/ash');
    assert.equal(db.group(101, scope), 'nginx');
    assert.equal(db.user(1000, scope), undefined, "the host's alice is not this container's uid 1000");
    const bare = { key: 'def', root: t.distroless };
    assert.equal(db.user(101, bare)?.name, 'systemd-resolve', 'no /etc/passwd in the image: host names');
    assert.equal(db.group(0, bare), 'root');
    const gone = { key: 'ghi', root: join(t.root, 'vanished-process-root') };
    assert.equal(db.user(0, gone)?.shell, '/bin/bash');
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test('files are re-read when they change', () => {
  const t = tree();
  try {
    let now = 1_000_000;
    const db = new UserDb({ hostRoot: t.host, checkIntervalMs: 1000, now: () => now });
    assert.equal(db.user(2000), undefined);
    writeFileSync(join(t.host, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nminer:x:2000:2000::/tmp:/bin/sh\n');
    // Make the change visible even on filesystems with coarse timestamps.
    utimesSync(join(t.host, 'etc/passwd'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    assert.equal(db.user(2000), undefined, 'not re-checked within the interval');
    now += 1000;
    assert.equal(db.user(2000)?.name, 'miner');
    assert.equal(db.user(1000), undefined, 'alice is gone from the new file');
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("a container's files are read once for all its processes, and again when they change", () => {
  const t = tree();
  try {
    let now = 1_000_000;
    const db = new UserDb({ hostRoot: t.host, checkIntervalMs: 1000, now: () => now });
    // Two processes of one container: two ways (/proc/PID/root) to one file. The second way's copy
    // differs here only to tell a re-read from the cached answer.
    const other = join(t.root, 'other-pid-root');
    mkdirSync(join(other, 'etc'), { recursive: true });
    writeFileSync(join(other, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/ash\nworker:x:101:101::/:/sbin/nologin\n');
    writeFileSync(join(other, 'etc/group'), 'root:x:0:\nworkers:x:101:\n');
    assert.equal(db.user(101, { key: 'abc', root: t.ctr })?.name, 'nginx');
    assert.equal(db.group(101, { key: 'abc', root: t.ctr }), 'nginx');
    assert.equal(db.user(101, { key: 'abc', root: other })?.name, 'nginx', "the container's file as read: no read for the next process");
    assert.equal(db.group(101, { key: 'abc', root: other }), 'nginx');
    // Checked again after the interval: through a process that has exited meanwhile, nothing is
    // known of the file (still the names read); through a live one, the file changed: read again.
    now += 1000;
    assert.equal(db.user(101, { key: 'abc', root: join(t.root, 'exited-pid-root') })?.name, 'nginx');
    assert.equal(db.user(101, { key: 'abc', root: other })?.name, 'worker');
    assert.equal(db.group(101, { key: 'abc', root: other }), 'workers');
    // Another container: its own files.
    assert.equal(db.user(101, { key: 'def', root: t.distroless })?.name, 'systemd-resolve');
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test("names(): a process's five names at once, as user() and group() give them, kept while the ids and files stay", () => {
  const t = tree();
  try {
    let now = 1_000_000;
    const db = new UserDb({ hostRoot: t.host, checkIntervalMs: 1000, now: () => now });
    const alice = db.names(1000, 1000, 1000);
    assert.deepEqual({ ...alice }, { user: 'alice', homedir: '/home/alice', shell: '/bin/zsh', group: 'alice', loginname: 'alice' });
    assert.equal(db.names(1000, 1000, 1000), alice, 'the same ids again: the same answer');
    assert.deepEqual({ ...db.names(0, 103, -1) }, { user: 'root', homedir: '/root', shell: '/bin/bash', group: 'systemd-resolve', loginname: undefined }, 'no login uid: no login name');
    assert.deepEqual({ ...db.names(4242, 4242, 101) }, { user: undefined, homedir: undefined, shell: undefined, group: undefined, loginname: 'systemd-resolve' }, 'unknown ids, a known login uid');
    assert.deepEqual({ ...db.names(undefined, undefined, undefined) }, { user: undefined, homedir: undefined, shell: undefined, group: undefined, loginname: undefined });
    // In a container: its own files, the host's where it has none (as user()/group()).
    const scope = { key: 'abc', root: t.ctr };
    assert.deepEqual({ ...db.names(101, 101, 0, scope) }, { user: 'nginx', homedir: '/var/cache/nginx', shell: '/sbin/nologin', group: 'nginx', loginname: 'root' });
    assert.equal(db.names(1000, 0, -1, scope).user, undefined, "the host's alice is not this container's uid 1000");
    assert.equal(db.names(101, 0, -1, { key: 'def', root: t.distroless }).user, 'systemd-resolve', 'no /etc/passwd in the image');
    // The same ids on the host again after the files changed: the new names, not the kept answer.
    assert.equal(db.names(1000, 1000, 1000), db.names(1000, 1000, 1000));
    writeFileSync(join(t.host, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/sh\n');
    writeFileSync(join(t.host, 'etc/group'), 'root:x:0:\nbobs:x:1000:\n');
    utimesSync(join(t.host, 'etc/passwd'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    utimesSync(join(t.host, 'etc/group'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    assert.equal(db.names(1000, 1000, 1000).user, 'alice', 'not re-checked within the interval');
    now += 1000;
    assert.deepEqual({ ...db.names(1000, 1000, 1000) }, { user: 'bob', homedir: '/home/bob', shell: '/bin/sh', group: 'bobs', loginname: 'bob' });
    assert.equal(db.user(1000)?.name, 'bob');
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});
