/**
 * Waiting in tests, in one place. None of these measures time: a wait ends when its condition
 * holds, and the test's own timeout (or `ms`, for waitFor) bounds it.
 */

/** Wait until `cond` holds, looking again every `pauseMs`. */
export async function until(cond: () => boolean | Promise<boolean>, pauseMs = 10): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, pauseMs));
}

/** Call `fn` until it resolves (as the queue retries a failed delivery); the last error if it never does. */
export async function eventually<T>(fn: () => Promise<T>, tries = 60, pauseMs = 250): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      return await fn();
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
  throw last;
}

/** True once `pred` holds, false if it still does not after `ms` (for a test that asserts either way). */
export function waitFor(pred: () => boolean, ms: number, pauseMs = 5): Promise<boolean> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const tick = (): void => {
      if (pred()) return resolve(true);
      if (Date.now() - t0 > ms) return resolve(false);
      setTimeout(tick, pauseMs);
    };
    tick();
  });
}
