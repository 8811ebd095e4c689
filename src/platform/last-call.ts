/**
 * `fn` with its last argument and answer kept: called again with the same argument (=== : the same
 * string, number or bigint, the same array or object) it answers without calling `fn`.
 *
 * For pure functions on the hot path whose input repeats run after run: an exec storm repeats one
 * command line, one args array, one path, the same three capability masks. One entry, no map, no
 * hashing: nothing is kept but the last, so a cache miss costs one compare. An answer that is an
 * object or array is shared between callers: they must not change it.
 */
export function lastCall<A, R>(fn: (arg: A) => R): (arg: A) => R {
  let has = false;
  let lastArg: A;
  let lastAnswer: R;
  return (arg: A): R => {
    if (!has || arg !== lastArg) {
      // The answer first: if fn throws, the previous pair stays as it was.
      lastAnswer = fn(arg);
      lastArg = arg;
      has = true;
    }
    return lastAnswer;
  };
}
