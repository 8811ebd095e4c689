/**
 * The stratum detector's parser: is the first payload a connection sent a mining protocol message?
 * Stratum v1 (Bitcoin and its forks: mining.subscribe, mining.authorize, mining.notify, …), XMRig's
 * JSON-RPC dialect (a `login` request carrying an `agent`), and eth-proxy's eth_submitLogin.
 *
 * What the eBPF driver captures is a prefix (the first KiB), so a message may be cut anywhere: each
 * line is parsed as JSON when it is whole and scanned with patterns when it is not, and a cut
 * message still yields its method, agent and login. Anything that does not open with a JSON object
 * (TLS records, HTTP, LSP's Content-Length header) is not looked into at all; JSON-RPC whose method
 * is not a mining one (Ethereum node calls, LSP bodies) is not stratum.
 */

export interface StratumMessage {
  /** The mining method: mining.subscribe, mining.authorize, login, eth_submitLogin, … */
  method: string;
  /** The miner's user agent (XMRig's params.agent, stratum v1's mining.subscribe params[0]). */
  agent?: string;
  /** The account (wallet, or wallet.worker) the miner logs in as. */
  login?: string;
}

/** Methods only pool protocols use. mining.* is checked by prefix. */
const MINING_METHODS = new Set(['eth_submitLogin', 'eth_submitHashrate']);
/** XMRig's dialect: these count only with an agent or a login in their params. */
const XMRIG_METHODS = new Set(['login', 'submit', 'keepalived', 'getjob']);

const MAX_LINES = 8;

/** A JSON string's text from its opening quote's content on, up to its closing quote or the cut. */
function grabString(text: string, re: RegExp): string | undefined {
  const m = re.exec(text);
  if (!m) return undefined;
  let out = '';
  for (let i = m.index + m[0].length; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') return out;
    if (c === '\\' && i + 1 < text.length) {
      const n = text[++i]!;
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'u' ? '' : n;
      if (n === 'u') i += 4;
      continue;
    }
    out += c;
    if (out.length > 512) break;
  }
  return out;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function classify(method: string | undefined, agent: string | undefined, login: string | undefined): StratumMessage | undefined {
  if (!method) return undefined;
  const mining = method.startsWith('mining.') || MINING_METHODS.has(method) || (XMRIG_METHODS.has(method) && (agent !== undefined || login !== undefined));
  if (!mining) return undefined;
  const out: StratumMessage = { method };
  if (agent !== undefined) out.agent = agent;
  if (login !== undefined) out.login = login;
  return out;
}

/** One line: whole JSON, or a cut-off prefix scanned for its keys. */
function parseLine(line: string): StratumMessage | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    obj = undefined;
  }
  if (obj !== null && typeof obj === 'object' && !Array.isArray(obj)) {
    const o = obj as Record<string, unknown>;
    const method = str(o.method);
    const params = o.params;
    let agent: string | undefined;
    let login: string | undefined;
    if (Array.isArray(params)) {
      if (method === 'mining.subscribe') agent = str(params[0]);
      else if (method === 'mining.authorize' || method === 'eth_submitLogin') login = str(params[0]);
    } else if (params !== null && typeof params === 'object') {
      const p = params as Record<string, unknown>;
      agent = str(p.agent);
      login = str(p.login) ?? str(p.user);
    }
    return classify(method, agent, login);
  }
  if (obj !== undefined) return undefined; // whole JSON, but not an object
  // Cut short: the keys that made it.
  const method = grabString(line, /"method"\s*:\s*"/);
  let agent = grabString(line, /"agent"\s*:\s*"/);
  let login = grabString(line, /"login"\s*:\s*"/);
  const first = grabString(line, /"params"\s*:\s*\[\s*"/);
  if (method === 'mining.subscribe' && agent === undefined) agent = first;
  if ((method === 'mining.authorize' || method === 'eth_submitLogin') && login === undefined) login = first;
  return classify(method, agent, login);
}

/**
 * The first mining message in a payload, with the agent and login found in it or in the messages
 * sent with it (a client often sends subscribe and authorize together); undefined when the payload
 * is not stratum.
 */
export function parseStratumPayload(payload: string | undefined): StratumMessage | undefined {
  if (!payload) return undefined;
  let i = 0;
  while (i < payload.length && (payload[i] === ' ' || payload[i] === '\n' || payload[i] === '\r' || payload[i] === '\t')) i++;
  if (payload[i] !== '{') return undefined;
  let found: StratumMessage | undefined;
  let n = 0;
  for (const raw of payload.slice(i).split('\n')) {
    if (++n > MAX_LINES) break;
    const line = raw.trim();
    if (!line.startsWith('{')) continue;
    const m = parseLine(line);
    if (!m) continue;
    if (!found) found = m;
    if (found.agent === undefined && m.agent !== undefined) found.agent = m.agent;
    if (found.login === undefined && m.login !== undefined) found.login = m.login;
  }
  return found;
}
