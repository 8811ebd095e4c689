/**
 * @kubernetes/client-node 2.x depends on undici 8, which declares Node.js >= 22.19 and, on
 * Node.js 20 (our floor), fails while loading: it binds zlib.createZstdDecompress and calls
 * worker_threads.markAsUncloneable at import time, and calls Promise.withResolvers per request.
 * The first two are not used by what minewatch asks of it
 * (JSON over HTTP/1.1, identity or gzip encoded), so where they are missing they are given
 * stand-ins before the client is imported: zstd throws if a server ever sent it, and
 * markAsUncloneable (a structured-clone guard for web objects) does nothing, and
 * Promise.withResolvers gets its standard definition (ES2024).
 * Import this module before '@kubernetes/client-node'. Remove once Node.js 22 is the floor.
 */
import zlib from 'node:zlib';
import workerThreads from 'node:worker_threads';

const z = zlib as unknown as Record<string, unknown>;
if (typeof z.createZstdDecompress !== 'function') {
  z.createZstdDecompress = () => {
    throw new Error('zstd-encoded responses need Node.js 22: ask the API server for gzip or identity');
  };
}
const w = workerThreads as unknown as Record<string, unknown>;
if (typeof w.markAsUncloneable !== 'function') w.markAsUncloneable = () => undefined;

const P = Promise as unknown as { withResolvers?: unknown };
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
