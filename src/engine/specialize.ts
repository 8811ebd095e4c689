/**
 * Functions with call sites of their own. V8 keeps what it learns about a call site (which
 * function it calls) per piece of source code: a closure made by one helper for every rule shares
 * that knowledge with all the others, so its calls to "the test" or "the field's getter" see many
 * different functions, are megamorphic, and are never inlined. A function compiled from its own
 * source, made unique with a serial number (V8 caches compiled source by its text), learns only
 * its own callees. The source given here is our own fixed code and operators: never text from a
 * rules file or an event.
 */
let serial = 0;

/** `body` compiled as a function of `names`, called with `values`: returns what `body` returns. */
export function specialize<T>(names: readonly string[], values: readonly unknown[], body: string): T {
  const code = `'use strict'; /* site ${++serial} */ ${body}`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  return (new Function(...names, code) as (...a: unknown[]) => T)(...values);
}
