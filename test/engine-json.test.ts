/** JSON text with exact 64-bit integers (src/engine/json.ts): Falco's ns times survive a write and a read. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromJsonText, toJsonText } from '../src/engine/json.js';

test('bigints are written as JSON integers; everything else as JSON.stringify writes it', () => {
  const v = { t: 1764000000123456789n, small: 5n, n: -9007199254740993n, s: 'x "1764000000123456789"', a: [1, 2n, 'z'], u: undefined, b: true };
  assert.equal(toJsonText(v), '{"t":1764000000123456789,"small":5,"n":-9007199254740993,"s":"x \\"1764000000123456789\\"","a":[1,2,"z"],"b":true}');
  assert.equal(toJsonText({ a: 1 }), JSON.stringify({ a: 1 }));
});

test('integers past 2^53 are read back exact, as bigints; others as numbers; strings untouched', () => {
  const text = '{"t":1764000000123456789,"f":1.5e300,"g":12345678901234567.5,"n":-9007199254740993,"safe":9007199254740991,"s":"1764000000123456789","e":"a\\"b 99999999999999999999"}';
  assert.deepEqual(fromJsonText(text), { t: 1764000000123456789n, f: 1.5e300, g: 12345678901234567.5, n: -9007199254740993n, safe: 9007199254740991, s: '1764000000123456789', e: 'a"b 99999999999999999999' });
  assert.deepEqual(fromJsonText(toJsonText({ x: [1764000000123456789n] })), { x: [1764000000123456789n] });
});

test('a string that looks like the internal marker stays a string', () => {
  const forged = '\u0000abc:123';
  assert.deepEqual(fromJsonText(JSON.stringify({ s: forged })), { s: forged });
  assert.deepEqual(fromJsonText(toJsonText({ s: forged, t: 2n ** 63n })), { s: forged, t: 2n ** 63n });
});
