/**
 * Reading a child's output as lines of JSON: the agent's logs and alerts, and the small helper
 * processes (listeners, pools) that report on stdout.
 */

/** One line parsed as JSON when it looks like an object, else undefined. */
export function parseJson(l: string): unknown {
  if (!l.startsWith('{')) return undefined;
  try {
    return JSON.parse(l);
  } catch {
    return undefined;
  }
}

/** Call onLine for each non-empty line of a stream, and for the last unterminated one at its end. */
export function lines(stream: NodeJS.ReadableStream, onLine: (l: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (l.trim() !== '') onLine(l);
    }
  });
  stream.on('end', () => {
    if (buf.trim() !== '') onLine(buf);
    buf = '';
  });
}
