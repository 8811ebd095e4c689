/** lastCall (src/platform/last-call.ts): the last argument's answer again, a new one for any other. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lastCall } from '../src/platform/last-call.js';

test('lastCall answers the same argument from its last call, and calls fn for any other', () => {
  const seen: unknown[] = [];
  const upper = lastCall((s: string) => (seen.push(s), s.toUpperCase()));
  assert.equal(upper('a'), 'A');
  assert.equal(upper('a'), 'A');
  assert.equal(upper('b'), 'B');
  assert.equal(upper('a'), 'A');
  assert.deepEqual(seen, ['a', 'b', 'a'], 'only the last argument is kept');
  // Arrays by identity: an equal but other array is asked again.
  let asked = 0;
  const len = lastCall((xs: readonly string[]) => (asked++, xs.length));
  const one = ['x'];
  len(one);
  len(one);
  len(['x']);
  assert.equal(asked, 2);
  // A first argument that equals nothing yet (undefined) is still asked.
  const isUndef = lastCall((v: string | undefined) => v === undefined);
  assert.equal(isUndef(undefined), true);
});

test('lastCall keeps its previous pair when fn throws', () => {
  const half = lastCall((n: number) => {
    if (n % 2) throw new Error(`odd ${n}`);
    return n / 2;
  });
  assert.equal(half(4), 2);
  assert.throws(() => half(3), /odd 3/);
  assert.equal(half(4), 2);
});
