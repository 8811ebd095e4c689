// Talking to the server: the bearer token (kept in this tab's sessionStorage), JSON GETs, and the
// live stream read with fetch() — EventSource cannot send an Authorization header.

const TOKEN_KEY = 'minewatch.token';

export class AuthError extends Error {}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const t = getToken();
  return t ? { ...extra, authorization: `Bearer ${t}` } : extra;
}

/** GET a JSON resource; params: { name: value | [values] }, empty values left out. */
export async function getJSON(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) {
    for (const x of Array.isArray(v) ? v : [v]) if (x !== undefined && x !== null && x !== '') url.searchParams.append(k, String(x));
  }
  const res = await fetch(url, { headers: headers({ accept: 'application/json' }), cache: 'no-store' });
  if (res.status === 401) throw new AuthError('this server needs a token');
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Follow /api/stream: onEvent({ change, alert }) per stored change; onState('live' | 'reconnecting'
 * | 'unauthorized'). Reconnects after a break. Returns a function that stops it.
 */
export function followStream(onEvent, onState) {
  let stopped = false;
  let ctrl = null;
  (async () => {
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const res = await fetch('/api/stream', { headers: headers({ accept: 'text/event-stream' }), signal: ctrl.signal, cache: 'no-store' });
        if (res.status === 401) {
          onState('unauthorized');
          return;
        }
        if (!res.ok || !res.body) throw new Error(`stream: ${res.status}`);
        onState('live');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            dispatch(block, onEvent);
          }
        }
      } catch {
        if (stopped) return;
      }
      if (stopped) return;
      onState('reconnecting');
      await sleep(3000);
    }
  })();
  return () => {
    stopped = true;
    ctrl?.abort();
  };
}

/** One SSE block: `event:` and `data:` lines (comments start with ':'). */
function dispatch(block, onEvent) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (event !== 'alert' || data.length === 0) return;
  try {
    onEvent(JSON.parse(data.join('\n')));
  } catch {
    // a malformed message is skipped; the next reload shows the truth
  }
}
