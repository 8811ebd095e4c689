/**
 * Alerts as Slack incoming-webhook messages: a one-line text (what notifications show) and an
 * attachment coloured by priority with the rule, priority, host, source, time and output; a
 * summary adds its count and time span. Slack answers 200 "ok", or 4xx with a reason
 * (invalid_payload, no_service, channel_is_archived, …) that no retry fixes; 429 is retried.
 */
import { escapeControl } from '../../engine/escape.js';
import type { AlertMessage } from '../types.js';
import { FilteredOutput, type OutputOptions } from './base.js';
import { HttpTarget } from './http.js';

export interface SlackOptions extends OutputOptions {
  webhookUrl: string;
  channel?: string;
  username: string;
  iconUrl?: string;
  timeoutMs: number;
}

/** Slack attachment colours by Falco priority: the more severe, the redder. */
const COLOURS: Record<string, string> = {
  emergency: '#8b0000', alert: '#b22222', critical: '#dc143c', error: '#e8430e',
  warning: '#f2a900', notice: '#3aa3e3', informational: '#7fbf7f', debug: '#a0a0a0',
};

interface SlackField {
  title: string;
  value: string;
  short: boolean;
}

/** The incoming-webhook payload for one alert message. */
export function slackMessage(msg: AlertMessage, opts: Pick<SlackOptions, 'channel' | 'username' | 'iconUrl'> = { username: 'minewatch' }): Record<string, unknown> {
  const mw = msg.minewatch;
  const summary = mw?.kind === 'summary';
  const fields: SlackField[] = [
    { title: 'rule', value: msg.rule, short: true },
    { title: 'priority', value: msg.priority, short: true },
    { title: 'hostname', value: msg.hostname, short: true },
    { title: 'source', value: msg.source, short: true },
  ];
  if (summary) {
    fields.push({ title: 'count', value: String(mw.count), short: true });
    fields.push({ title: 'first seen', value: mw.first_seen, short: true });
    fields.push({ title: 'last seen', value: mw.last_seen, short: true });
  }
  if (msg.tags?.length) fields.push({ title: 'tags', value: msg.tags.join(', '), short: false });
  const text = summary ? `[${msg.priority}] ${msg.rule}: ${mw.count} matches on ${msg.hostname}` : `[${msg.priority}] ${msg.rule} on ${msg.hostname}`;
  return {
    text,
    username: opts.username,
    ...(opts.channel ? { channel: opts.channel } : {}),
    ...(opts.iconUrl ? { icon_url: opts.iconUrl } : {}),
    attachments: [{
      fallback: escapeControl(msg.output),
      color: COLOURS[msg.priority.toLowerCase()] ?? COLOURS.debug,
      // Escaped as in the text line: one alert must not show as several.
      text: escapeControl(msg.output),
      fields,
      footer: 'minewatch',
      ts: Math.floor(Date.parse(msg.time) / 1000) || undefined,
    }],
  };
}

export class SlackOutput extends FilteredOutput {
  private readonly target: HttpTarget;
  private readonly opts: SlackOptions;

  constructor(opts: SlackOptions) {
    super(opts);
    this.opts = opts;
    this.target = new HttpTarget({ url: opts.webhookUrl, timeoutMs: opts.timeoutMs, where: this.where, secretPath: true });
  }

  protected deliver(msg: AlertMessage): Promise<void> {
    return this.target.post(JSON.stringify(slackMessage(msg, this.opts)));
  }

  async close(): Promise<void> {
    this.target.close();
  }
}
