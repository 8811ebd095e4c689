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
/** Set when Node refuses to compile code from text (--disallow-code-generation-from-strings). */
let refused = false;

/**
 * `body` compiled as a function of `names`, called with `values`: returns what `body` returns.
 * Where Node compiles no code from text, `fallback()`: the same function as a shared closure.
 */
export function specialize<T>(names: readonly string[], values: readonly unknown[], body: string, fallback: () => T): T {
  if (refused) return fallback();
  let make: (...a: unknown[]) => T;
  try {
    // Compiling generated code is this module's job (see above); the text is ours, never input.
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    make = new Function(...names, `'use strict'; /* site ${++serial} */ ${body}`) as (...a: unknown[]) => T;
  } catch (e) {
    if (!(e instanceof EvalError)) throw e; // a SyntaxError is a bug here: let it show
    refused = true;
    return fallback();
  }
  return make(...values);
}

/** Turn generated functions off (as where Node refuses them) or back on: for tests comparing the two. */
export function generateCode(on: boolean): void {
  refused = !on;
}

/**
 * Specialized versions made on demand: a test is built as a closure (cheap, at load) and gets its
 * function of its own only when a plan that runs it is built (on the first event of a type), so
 * rules files load as fast as before and tests no event reaches cost no compiling.
 */
const later = new WeakMap<object, { make: () => unknown; made?: unknown }>();

/** `closure`, with `make` to build its specialized version when ownFunction() asks for it. */
export function specializeLater<T extends object>(closure: T, make: () => T): T {
  later.set(closure, { make });
  return closure;
}

/** The specialized version of `f` registered with specializeLater (built once), or `f` itself. */
export function ownFunction<T extends object>(f: T): T {
  const l = later.get(f);
  if (!l) return f;
  return (l.made ??= l.make()) as T;
}
