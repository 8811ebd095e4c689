/**
 * An alert's stored event names each ancestor's capability sets once (src/alerts/ancestor-caps.ts):
 * a parent whose sets are its child's is stored with a marker instead, and shown (the API's view,
 * which the dashboard and `minewatch alerts show` print) with every set written out again. A
 * parent whose sets differ, or that has none, is stored and shown as it is.
 */
import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { encodeRedactedEvent, redactStoredEvent } from '../src/alerts/redact.js';
import { alertView } from '../src/web/api.js';
import type { Match } from '../src/engine/types.js';
import type { SyscallEvent } from '../src/events.js';
import { newAlertService } from './helpers/web.js';

const ROOT = 'CAP_CHOWN CAP_DAC_OVERRIDE CAP_KILL CAP_SETUID CAP_NET_ADMIN CAP_SYS_ADMIN CAP_BPF';
const NARROW = 'CAP_NET_BIND_SERVICE';

type Proc = NonNullable<SyscallEvent['proc']>;

function proc(pid: number, caps: string | undefined, parent?: Proc): Proc {
  return {
    pid, name: `p${pid}`, exe: `/bin/p${pid}`, args: ['-x'], cwd: '/', uid: 0, user: 'root',
    env: ['HOME=/root', 'GITHUB_TOKEN=ghp_notkept'],
    ...(caps === undefined ? {} : { cap_permitted: caps, cap_effective: caps, cap_inheritable: '' }),
    ...(parent ? { parent } : {}),
  } as Proc;
}

/** miner (root sets) ← shell (the same) ← sudo (narrow) ← login (the same) ← init (read without sets). */
function chain(): SyscallEvent {
  const init = proc(1, undefined);
  const login = proc(10, NARROW, init);
  const sudo = proc(20, NARROW, login);
  const shell = proc(30, ROOT, sudo);
  const miner = proc(40, ROOT, shell);
  // A child whose sets differ from its parent's in one set only: the parent keeps all three.
  miner.parent!.cap_inheritable = 'CAP_KILL';
  return { source: 'syscall', type: 'execve', ts: 1_764_000_000_000_000_000n, proc: miner, container: { id: 'host', name: 'host' } };
}

type Shown = { cap_permitted?: string; cap_effective?: string; cap_inheritable?: string; caps_as_child?: boolean; env: string[]; env_not_stored?: number; parent?: Shown };

function ancestry(p: Shown | undefined): Shown[] {
  const out: Shown[] = [];
  for (; p; p = p.parent) out.push(p);
  return out;
}

/** What the event looks like shown: each process's own sets, the environment redacted. */
function expectedChain(): { caps: (string | undefined)[]; inh: (string | undefined)[] } {
  return { caps: [ROOT, ROOT, NARROW, NARROW, undefined], inh: ['', 'CAP_KILL', '', '', undefined] };
}

describe('stored event: ancestors\' capability sets once', () => {
  it('a parent with its child\'s three sets keeps a marker; one that differs, or has none, is stored as it is', () => {
    const text = encodeRedactedEvent(chain());
    const stored = ancestry((JSON.parse(text) as { proc: Shown }).proc);
    assert.equal(stored.length, 5);
    // miner: its own; shell: inheritable differs → its own; sudo: differs → its own; login: as sudo; init: none.
    assert.deepEqual(stored.map((p) => p.caps_as_child === true), [false, false, false, true, false]);
    assert.equal(stored[3]!.cap_permitted, undefined);
    assert.equal(stored[4]!.cap_permitted, undefined, 'a process read without sets gets none');
    assert.equal(stored[1]!.cap_inheritable, 'CAP_KILL');
    // The root set is stored twice (miner, and shell that differs in another set), the narrow once.
    assert.equal(text.split(NARROW).length - 1, 2, 'the narrow set once (permitted and effective)');
    assert.ok(!text.includes('ghp_notkept'), 'the environment is still redacted');
  });

  it('shown again with every set written out, from the stored text or from a row stored before the marker', () => {
    const full = chain();
    for (const stored of [JSON.parse(encodeRedactedEvent(full)), JSON.parse(JSON.stringify(full, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))]) {
      const shown = ancestry((redactStoredEvent(stored) as { proc: Shown }).proc);
      const want = expectedChain();
      assert.deepEqual(shown.map((p) => p.cap_permitted), want.caps);
      assert.deepEqual(shown.map((p) => p.cap_effective), want.caps);
      assert.deepEqual(shown.map((p) => p.cap_inheritable), want.inh);
      assert.ok(shown.every((p) => p.caps_as_child === undefined), 'no marker is shown');
      assert.ok(shown.every((p) => p.env.length === 0 && p.env_not_stored === 2), 'the environment is redacted the same');
    }
  });

  describe('through the store', () => {
    const p = newAlertService();
    after(() => p.close());

    it('an alert stored and read back (the API\'s view) has every ancestor\'s sets; the row holds each set once', () => {
      const event = chain();
      // The usual tree: one set all the way up.
      for (let q: Proc | undefined = event.proc!; q; q = q.parent) if (q.cap_permitted !== undefined) Object.assign(q, { cap_permitted: ROOT, cap_effective: ROOT, cap_inheritable: '' });
      const m: Match = { rule: 'Stored Event Caps', priority: 'WARNING', source: 'syscall', tags: [], output: 'caps', outputFields: {}, time: event.ts, hostname: 'node-1', event };
      const rec = p.accept(m)!;
      p.commit();
      const row = p.store.db.prepare('SELECT event FROM alerts WHERE id = ?').get(rec.id) as { event: string };
      assert.equal(row.event.split(ROOT).length - 1, 2, 'the root set stored once (permitted and effective)');
      const view = alertView(p.get(rec.id)!, true) as { event: { proc: Shown } };
      assert.deepEqual(ancestry(view.event.proc).map((x) => x.cap_effective), [ROOT, ROOT, ROOT, ROOT, undefined]);
    });
  });
});
