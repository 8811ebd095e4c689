/**
 * The flood of issue 13 item 6 against POST /admission: `clients` clients, each from its own
 * loopback address (127.0.1.N, so a per-address cap sees them apart), each posting reviews
 * `concurrency` at a time, over and over until stopped. Five kinds, by client number: 10 MB with
 * no token and a Content-Length; 10 MB with no token, chunked (no length to judge by); 10 MB with
 * the token and a Content-Length; 10 MB with the token, chunked; and 3 MB (under the limit) with
 * the token, trickled slowly, holding its requests open (what the per-client cap is for). It runs in a worker thread, so its own work does
 * not sit on the event loop of the server it floods (the test's and the bench's).
 *
 * Also the normal review the API server sends, posted alone, with its latency.
 */
import { request } from 'node:http';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface FloodOptions {
  /** The server's base URL (http://127.0.0.1:PORT). */
  url: string;
  token: string;
  clients: number;
  /** Requests each client keeps in flight. */
  concurrency: number;
  bodyBytes: number;
}

export interface FloodStats {
  /** Answers by HTTP status. */
  statuses: Record<number, number>;
  /** Requests that ended without an answer (the server closed on a refused body). */
  resets: number;
}

/** A 10 MB AdmissionReview (padded): valid JSON, of the size the attack used. */
function floodBody(bytes: number): Buffer {
  const head = '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"flood","operation":"CREATE","resource":{"group":"","version":"v1","resource":"pods"},"namespace":"x","userInfo":{"username":"x"},"object":{"kind":"Pod","spec":{"containers":[{"name":"a","image":"alpine"}]}}},"pad":"';
  const tail = '"}';
  return Buffer.concat([Buffer.from(head), Buffer.alloc(Math.max(0, bytes - head.length - tail.length), 'x'), Buffer.from(tail)]);
}

/** The flood's kinds of client, by client number modulo 5. */
const KINDS = ['no token, Content-Length', 'no token, chunked', 'token, Content-Length', 'token, chunked', 'token, slow'] as const;

/** Under the 3 MiB limit: the slow kind's declared length. */
const SLOW_BYTES = 3_000_000;

/**
 * One POST; resolves with the status, or 0 when the connection ended first. The slow kind holds
 * its request open, trickling 64 KiB every 20 ms of a body under the size limit (what the per-client
 * cap is for): its body is not JSON, so one that gets through is a 400.
 */
function postOnce(o: FloodOptions, body: Buffer, client: number, stopped: () => boolean): Promise<number> {
  const u = new URL('/admission', o.url);
  const kind = KINDS[client % KINDS.length]!;
  const withToken = kind.startsWith('token');
  const chunked = kind.endsWith('chunked');
  const slow = kind === 'token, slow';
  const length = slow ? SLOW_BYTES : body.length;
  return new Promise((resolve) => {
    const req = request({
      host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, localAddress: `127.0.1.${(client % 250) + 1}`,
      headers: { 'content-type': 'application/json', ...(withToken ? { authorization: `Bearer ${o.token}` } : {}), ...(chunked ? {} : { 'content-length': String(length) }) },
    });
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (status: number): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(status);
    };
    req.on('response', (res) => {
      res.resume();
      finish(res.statusCode ?? 0);
    });
    req.on('error', () => finish(0));
    req.on('close', () => finish(0));
    if (slow) {
      let sent = 0;
      const step = (): void => {
        if (done) return;
        if (stopped()) return finish(0);
        const n = Math.min(64 * 1024, length - sent);
        req.write(Buffer.alloc(n, 'x'));
        sent += n;
        if (sent >= length) req.end();
        else timer = setTimeout(step, 20);
      };
      step();
    } else if (!chunked) req.end(body);
    else {
      // In 1 MiB chunks, as a streaming client would: the server cannot judge by a length.
      for (let off = 0; off < body.length; off += 1 << 20) req.write(body.subarray(off, off + (1 << 20)));
      req.end();
    }
  });
}

async function runFlood(o: FloodOptions, stopped: () => boolean, stats: FloodStats): Promise<void> {
  const body = floodBody(o.bodyBytes);
  const loops: Promise<void>[] = [];
  for (let c = 0; c < o.clients; c++) {
    for (let k = 0; k < o.concurrency; k++) {
      loops.push((async () => {
        while (!stopped()) {
          const status = await postOnce(o, body, c, stopped);
          if (status === 0) stats.resets++;
          else stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
        }
      })());
    }
  }
  await Promise.all(loops);
}

if (!isMainThread && (workerData as { admissionFlood?: FloodOptions } | null)?.admissionFlood) {
  const stats: FloodStats = { statuses: {}, resets: 0 };
  let stop = false;
  parentPort!.on('message', (m) => {
    if (m === 'stop') stop = true;
  });
  void runFlood((workerData as { admissionFlood: FloodOptions }).admissionFlood, () => stop, stats).then(() => parentPort!.postMessage(stats));
  // Progress for the parent, so it can wait until the flood is really under way.
  const timer = setInterval(() => parentPort!.postMessage({ progress: Object.values(stats.statuses).reduce((a, b) => a + b, 0) + stats.resets }), 100);
  timer.unref();
}

export interface Flood {
  /** Resolves once the flood has had `n` answers (it is under way). */
  started(n?: number): Promise<void>;
  stop(): Promise<FloodStats>;
}

export function startFlood(o: FloodOptions): Flood {
  const worker = new Worker(new URL(import.meta.url), { workerData: { admissionFlood: o } });
  let answered = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const result = new Promise<FloodStats>((resolve, reject) => {
    worker.on('message', (m: FloodStats | { progress: number }) => {
      if ('progress' in m) {
        answered = m.progress;
        for (const w of waiters.splice(0)) (answered >= w.n ? w.resolve() : waiters.push(w));
        return;
      }
      resolve(m);
    });
    worker.on('error', reject);
  });
  return {
    started: (n = 1) => new Promise<void>((resolve) => (answered >= n ? resolve() : waiters.push({ n, resolve }))),
    async stop() {
      worker.postMessage('stop');
      const stats = await result;
      await worker.terminate();
      return stats;
    },
  };
}

/** POST one review from the main thread; resolves with the status, the parsed answer and the milliseconds it took. */
export function postReview(url: string, body: string, token: string, localAddress = '127.0.0.1'): Promise<{ status: number; json: { response?: { uid?: string; allowed?: boolean } }; ms: number }> {
  const u = new URL('/admission', url);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', localAddress, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let json = {};
        try {
          json = JSON.parse(text) as object;
        } catch {
          json = {};
        }
        resolve({ status: res.statusCode ?? 0, json, ms: performance.now() - t0 });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
