/**
 * A package loaded on first use instead of at startup. The broker and database clients (mqtt,
 * nats, redis, pg) are each several MB of heap and code that the default `minewatch run` never
 * touches (issue 16: RSS ≤ 100 MB); a static import would load them all into every agent.
 * The packages named here are CommonJS, so a synchronous require keeps the callers' code as it was.
 */
import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);

/** `lazy<typeof import('mqtt')>('mqtt')()` loads mqtt the first time it is called. */
export function lazyRequire<T>(id: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= requireHere(id) as T);
}
