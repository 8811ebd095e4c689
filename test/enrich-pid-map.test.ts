/** src/enrich/pid-map.ts: answers exactly as a Map, whatever the order of sets, deletes and lookups. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PidMap } from '../src/enrich/pid-map.js';

test('PidMap answers as a Map through sets, deletes and lookups of pids that share cache slots', () => {
  const m = new PidMap<{ pid: number; n: number }>();
  const ref = new Map<number, { pid: number; n: number }>();
  // A fixed pseudo-random sequence (the test is the same every run); pids drawn from a few that
  // share the cache's slots (equal low bits) and a wide range, plus pid 0.
  let x = 0x2545f491;
  const rnd = (n: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const colliding = [7, 7 + 256, 7 + 512, 7 + 4096 * 256, 4_194_303, 4_194_303 - 256];
  const pidOf = (): number => (rnd(3) === 0 ? colliding[rnd(colliding.length)]! : rnd(4) === 0 ? 0 : 1 + rnd(5000));
  for (let i = 0; i < 200_000; i++) {
    const pid = pidOf();
    switch (rnd(4)) {
      case 0: {
        const v = { pid, n: i };
        m.set(pid, v);
        ref.set(pid, v);
        break;
      }
      case 1:
        assert.equal(m.delete(pid), ref.delete(pid), `delete ${pid} at step ${i}`);
        break;
      default:
        assert.equal(m.get(pid), ref.get(pid), `get ${pid} at step ${i}`);
        assert.equal(m.has(pid), ref.has(pid));
    }
    assert.equal(m.size, ref.size);
  }
  assert.deepEqual([...m.keys()], [...ref.keys()], 'the insertion order a Map keeps (eviction reads it)');
  assert.deepEqual([...m.values()], [...ref.values()]);
  for (const pid of [...colliding, 0, 1, 4999, 5000, -1, NaN]) assert.equal(m.get(pid), ref.get(pid), `get ${pid} at the end`);
});

test('PidMap: a pid deleted, or replaced by a pid sharing its slot, is not answered from the cache', () => {
  const m = new PidMap<string>();
  m.set(300, 'a');
  assert.equal(m.get(300), 'a');
  m.delete(300);
  assert.equal(m.get(300), undefined);
  m.set(300, 'b');
  m.set(300 + 256, 'c'); // the same slot
  assert.equal(m.get(300), 'b', 'from the map');
  assert.equal(m.get(300 + 256), 'c');
  m.delete(300);
  assert.equal(m.get(300 + 256), 'c');
  assert.equal(m.get(300), undefined);
  m.set(300, 'd');
  assert.equal(m.get(300), 'd', 'a new value under the pid');
  assert.deepEqual([...m.keys()], [556, 300]);
});
