/**
 * Alerts POSTed as Falco's JSON (the AlertMessage, `minewatch` group data beside Falco's keys) to
 * any HTTP endpoint, with custom headers and an optional bearer token. Also the base of the
 * falcosidekick output, which is the same request at `url` + "/".
 */
import type { AlertMessage } from '../types.js';
import { FilteredOutput, type OutputOptions } from './base.js';
import { BearerToken, HttpTarget } from './http.js';
import { packageVersion } from '../../platform/version.js';
import { toJsonText } from '../../engine/json.js';

export interface WebhookOptions extends OutputOptions {
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
  token?: string;
  tokenFile?: string;
  userAgent?: string;
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  insecure?: boolean;
}

export class WebhookOutput extends FilteredOutput {
  protected readonly target: HttpTarget;
  private readonly token: BearerToken;

  constructor(opts: WebhookOptions) {
    super(opts);
    this.target = new HttpTarget({
      url: opts.url,
      // The user's headers win over ours, but not over the token (set apart, below).
      headers: { 'user-agent': opts.userAgent ?? `minewatch/${packageVersion()}`, ...lowerCaseKeys(opts.headers) },
      timeoutMs: opts.timeoutMs,
      where: this.where,
      ca_file: opts.ca_file,
      cert_file: opts.cert_file,
      key_file: opts.key_file,
      insecure: opts.insecure,
    });
    this.token = new BearerToken(opts.token, opts.tokenFile, this.where);
  }

  protected async deliver(msg: AlertMessage): Promise<void> {
    await this.target.post(toJsonText(msg), { ...idempotencyHeader(msg), ...(await this.token.header()) });
  }

  async close(): Promise<void> {
    this.target.close();
  }
}

/**
 * Delivery is at least once (a send that timed out is sent again, a replica that died mid-send is
 * taken over): the group's uuid and message kind, the same key the NATS output gives JetStream,
 * let a receiver drop a repeat. It is also in the body, under `minewatch`.
 */
export function idempotencyHeader(msg: AlertMessage): Record<string, string> {
  const mw = msg.minewatch;
  return mw?.uuid ? { 'idempotency-key': `${mw.uuid}:${mw.kind}` } : {};
}

function lowerCaseKeys(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

/** falcosidekick's input (and a central `minewatch server`'s) is `POST /` with Falco's JSON. */
export function sidekickUrl(url: string): string {
  return url.replace(/\/+$/, '') + '/';
}
