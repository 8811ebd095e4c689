/** Mining-pool URLs in free text (a command line, a CI script): the stratum family's schemes and their host and port. */

export interface StratumUrl {
  url: string;
  /** Lowercased, e.g. "stratum+tcp". */
  scheme: string;
  host: string;
  port?: number;
}

/**
 * Schemes of the stratum family as miners spell them: stratum with a transport (+tcp, +ssl, +tls,
 * +tls12, +tcps, +udp), the numbered flavours (stratum1 = eth-proxy, stratum2 = NiceHash, also
 * Stratum V2), the autodetect forms (stratum, stratums, stratumss), and the eth pool dialects
 * (ethproxy, ethnh, ethstratum). Recognition is broad on purpose; the rules decide which schemes
 * count through the overridable list mw_stratum_schemes.
 */
const STRATUM_URL_RE = /\b((?:stratum|ethstratum|ethproxy|ethnh)[a-z0-9]*(?:\+[a-z0-9]+)?):\/\/([^\s"'<>`]*)/i;

export function parseStratumUrl(text: string): StratumUrl | undefined {
  // Every URL has "://": a plain substring search rejects most text before the regex runs.
  if (!text.includes('://')) return undefined;
  const m = STRATUM_URL_RE.exec(text);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  // authority = up to the first path, query or fragment; userinfo (ethminer: wallet.worker:pass@)
  // ends at its last '@'.
  let authority = rest.split(/[/?#]/, 1)[0]!;
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  let host = authority;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    host = close > 0 ? authority.slice(1, close) : authority.slice(1);
    if (close > 0 && authority[close + 1] === ':') portText = authority.slice(close + 2);
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon >= 0) {
      host = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    }
  }
  const port = portText !== undefined && /^\d{1,5}$/.test(portText) ? Number(portText) : undefined;
  return { url: m[0], scheme, host: host.toLowerCase(), port: port !== undefined && port > 0 && port < 65536 ? port : undefined };
}
