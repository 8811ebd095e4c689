/**
 * What every output shares: its name, its `minimum_priority` filter, and a deadline on each
 * delivery so a dead target fails the send (and the queue retries later) instead of hanging it.
 */
import type { Logger } from '../../platform/logger.js';
import { parsePriority, priorityRank } from '../../engine/types.js';
import type { AlertMessage, Output } from '../types.js';

export interface OutputOptions {
  name: string;
  /** Alerts less severe than this are skipped (send resolves at once, nothing is delivered). */
  /** A priority name as the config gave it (any case, Falco's aliases): parsed by parsePriority. */
  minimumPriority?: string;
  log?: Logger;
  /** Where this output is configured, for error messages: "outputs.webhook" by default from the name. */
  configPath?: string;
}

export abstract class FilteredOutput implements Output {
  readonly name: string;
  /** Rank of the least severe priority delivered (0 = emergency … 7 = debug). */
  private readonly maxRank: number;
  protected readonly log: Logger | undefined;
  /** "outputs.webhook": errors name the setting at fault under it. */
  protected readonly where: string;

  constructor(opts: OutputOptions) {
    this.name = opts.name;
    this.where = opts.configPath ?? `outputs.${opts.name}`;
    const p = opts.minimumPriority === undefined ? undefined : parsePriority(opts.minimumPriority);
    if (opts.minimumPriority !== undefined && p === undefined) throw new Error(`${this.where}.minimum_priority: not a priority: '${opts.minimumPriority}'`);
    this.maxRank = p === undefined ? Number.POSITIVE_INFINITY : priorityRank(p);
    this.log = opts.log;
  }

  /**
   * Whether this output takes `msg` at all. The delivery queue may ask first and not enqueue what
   * an output does not want; `send` skips such messages itself too.
   */
  wants(msg: AlertMessage): boolean {
    if (this.maxRank === Number.POSITIVE_INFINITY) return true;
    const p = parsePriority(msg.priority);
    // An alert with a priority we cannot read is delivered: better noise than a lost alert.
    return p === undefined || priorityRank(p) <= this.maxRank;
  }

  send(msg: AlertMessage): Promise<void> {
    if (!this.wants(msg)) return Promise.resolve();
    return this.deliver(msg);
  }

  /** Deliver one message; resolve once the target accepted it. */
  protected abstract deliver(msg: AlertMessage): Promise<void>;

  abstract close(): Promise<void>;
}

/** A failed delivery that may succeed later (the target is down, slow, or busy). */
export class RetryableDeliveryError extends Error {
  override name = 'RetryableDeliveryError';
}

/**
 * `p`, or a rejection naming `what` once `ms` have passed. `onTimeout` lets the caller drop what the
 * late operation holds (a stuck process, a half-sent request).
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new RetryableDeliveryError(`${what}: no answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** The message of an error and of its causes, for a delivery failure a user can act on. */
export function describeError(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 4; depth++) {
    const err = cur as { message?: string; code?: string; cause?: unknown };
    const text = err.message || err.code || String(cur);
    if (!parts.some((p) => p.includes(text))) parts.push(text);
    cur = err.cause;
  }
  return parts.join(': ');
}

/**
 * The URL without its password, for messages and logs. One that does not parse is shown as
 * `unparsed` (itself by default; a caller whose URL may hide a password in any shape names it).
 */
export function redactUrl(url: string, unparsed = url): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return unparsed;
  }
}
