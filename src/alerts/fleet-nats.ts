/**
 * What an agent and a server share about fleet mode's NATS side: how a hostname becomes one
 * subject token and back (the server takes the host from the subject, which NATS permissions tie
 * to the agent's user), the connection options from `alerts.forward` / `alerts.consume`, and the
 * message id JetStream de-duplicates on.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'nats';
import { lazyRequire } from '../platform/lazy-require.js';
import type { NatsConnectionConfig } from './fleet-config.js';
import type { AlertMessage } from './types.js';

/** The nats client package, loaded by the first NATS connection (an agent that forwards nothing never loads it). */
export const nats = lazyRequire<typeof import('nats')>('nats');

/**
 * A hostname as one subject token, reversibly: letters, digits and "-" stay, "." becomes "_", any
 * other byte "~" and two hex digits. So node-1.example.com is node-1_example_com, and no two
 * hostnames share a token (a user allowed one subject speaks for exactly one host).
 */
export function hostToken(hostname: string): string {
  let out = '';
  for (const b of Buffer.from(hostname, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9-]/.test(c)) out += c;
    else if (c === '.') out += '_';
    else out += '~' + b.toString(16).padStart(2, '0');
  }
  return out || '~';
}

/** The hostname a token names, or undefined when it is not one hostToken makes. */
export function tokenHost(token: string): string | undefined {
  if (token === '~') return '';
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const c = token[i]!;
    if (/[A-Za-z0-9-]/.test(c)) bytes.push(c.charCodeAt(0));
    else if (c === '_') bytes.push(0x2e);
    else if (c === '~' && /^[0-9a-f]{2}$/.test(token.slice(i + 1, i + 3))) {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else return undefined;
  }
  const host = Buffer.from(bytes).toString('utf8');
  return hostToken(host) === token ? host : undefined;
}

/** The subject one host publishes on. */
export function hostSubject(prefix: string, hostname: string): string {
  return `${prefix}.${hostToken(hostname)}`;
}

/** The inbox prefix of one host's connection: its PubAcks come back there, and only it may read them. */
export function hostInboxPrefix(hostname: string): string {
  return `_INBOX_${hostToken(hostname)}`;
}

/**
 * The JetStream message id: the group's uuid and its sequence (the first message, then the
 * summary that closes the group). A resend of either after a lost PubAck is dropped by the
 * stream's duplicate window; the server's store drops what comes back later than that.
 */
export function fleetMsgId(msg: AlertMessage): string | undefined {
  const uuid = msg.minewatch?.uuid;
  if (!uuid) return undefined;
  const seq = msg.minewatch.kind === 'summary' ? 1 : 0;
  return `${uuid}:${seq}`;
}

function readSecret(file: string, where: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new Error(`${where}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; mount the secret there or fix the path`);
  }
}

/** ConnectionOptions for the configured credentials and TLS; files are read now (errors name the key). */
export function natsConnectionOptions(c: NatsConnectionConfig, where: string): Partial<ConnectionOptions> {
  const o: Partial<ConnectionOptions> = {};
  if (c.user) o.user = c.user;
  if (c.password !== undefined) o.pass = c.password;
  if (c.password_file) o.pass = readSecret(c.password_file, `${where}.password_file`);
  if (c.token) o.token = c.token;
  if (c.token_file) o.token = readSecret(c.token_file, `${where}.token_file`);
  if (c.nkey_seed_file) {
    const seed = readSecret(c.nkey_seed_file, `${where}.nkey_seed_file`);
    if (!/^SU[A-Z2-7]{50,}$/.test(seed)) throw new Error(`${where}.nkey_seed_file: ${c.nkey_seed_file} does not hold a user nkey seed (SU…); make one with \`nk -gen user\``);
    o.authenticator = nats().nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (c.creds_file) {
    const creds = readSecret(c.creds_file, `${where}.creds_file`);
    if (!creds.includes('BEGIN NATS USER JWT')) throw new Error(`${where}.creds_file: ${c.creds_file} is not a NATS .creds file (no user JWT in it); make one with \`nsc generate creds\``);
    o.authenticator = nats().credsAuthenticator(new TextEncoder().encode(creds));
  }
  if (c.tls) {
    for (const k of ['ca_file', 'cert_file', 'key_file'] as const) {
      const f = c.tls[k];
      if (f) readSecret(f, `${where}.tls.${k}`);
    }
    if (!!c.tls.cert_file !== !!c.tls.key_file) throw new Error(`${where}.tls: set cert_file and key_file together (a client certificate needs its key)`);
    o.tls = {
      ...(c.tls.ca_file ? { caFile: c.tls.ca_file } : {}),
      ...(c.tls.cert_file ? { certFile: c.tls.cert_file, keyFile: c.tls.key_file } : {}),
    };
  }
  return o;
}
