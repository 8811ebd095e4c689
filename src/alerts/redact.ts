/**
 * What of a process's environment an alert may keep. A process's environment is readable only by
 * its own user and root, and holds that user's secrets (GITHUB_TOKEN, PGPASSWORD, cloud keys): once
 * in an alert it would be readable by whoever reads the store, the API or an output. So alerts keep
 * only what a rule can have matched on:
 * - a variable whose value holds a valid wallet address (mw.wallet.*): the name and the addresses,
 *   nothing else of the value;
 * - a variable the rule's output names itself (`%proc.env[NAME]`), unless its name says it is a
 *   credential (…TOKEN, …PASSWORD, …SECRET, …KEY, …) — then `[redacted]`;
 * and in what is kept, any known secret (src/github/secrets.ts: GitHub, AWS, Slack, … tokens) is
 * replaced by its kind, as the GitHub secrets check reports a committed secret: never the secret.
 * Everything else is left out and counted. Applied to every alert as it is stored (local matches
 * and alerts received on the inputs) and again when the API shows one (stores written before).
 */
import { SECRET_KINDS } from '../knowledge/secrets.js';
import type { OutputValue } from '../engine/output.js';
import { findWallets, mayHoldWallet } from '../knowledge/wallets.js';
import { capsAsChild, expandAncestorCaps, withoutCaps } from './ancestor-caps.js';

/** Variable names that say their value is a credential. */
const SECRET_NAME = /(?:TOKEN|SECRET|PASSW|PASSPHRASE|PWD|_KEY|^KEY|APIKEY|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|SIGNATURE|DSN)/i;

const SECRET_RES = SECRET_KINDS.map((k) => ({ desc: k.desc, re: new RegExp(k.re.source, k.re.flags.includes('g') ? k.re.flags : k.re.flags + 'g') }));

/** `text` with every known secret replaced by `[redacted <kind>]`. */
export function scrubSecrets(text: string): string {
  if (text.length < 16) return text;
  let out = text;
  // A global replace starts from 0 and returns the same string when nothing matches: one scan each.
  for (const s of SECRET_RES) out = out.replace(s.re, `[redacted ${s.desc}]`);
  return out;
}

/** One `NAME=value` entry as kept, or undefined when it is left out. */
function keptEntry(entry: string): string | undefined {
  if (typeof entry !== 'string' || !mayHoldWallet(entry)) return undefined;
  const eq = entry.indexOf('=');
  const name = eq < 0 ? '' : entry.slice(0, eq);
  const value = eq < 0 ? entry : entry.slice(eq + 1);
  const wallets = findWallets(value).map((w) => w.address);
  if (wallets.length === 0) return undefined;
  const only = wallets.join(' ');
  return `${name}=${only}${value.trim() === only ? '' : ' [rest of the value not stored]'}`;
}

/** The entries of an environment an alert keeps, and how many were left out. */
function redactEnv(env: readonly string[]): { kept: string[]; dropped: number } {
  const kept: string[] = [];
  for (const e of env) {
    const k = keptEntry(e);
    if (k !== undefined) kept.push(k);
  }
  return { kept, dropped: env.length - kept.length };
}

/** "K=v K=v" (proc.env's text, as Falco renders it) → its entries. A value with spaces stays whole. */
function splitEnvText(text: string): string[] {
  return text.split(/ (?=[A-Za-z_][A-Za-z0-9_]*=)/).filter((s) => s !== '');
}

/** proc.env's text as an alert keeps it. */
export function redactEnvText(text: string): string {
  // Already redacted (a stored row shown again): the count it says is carried over. Stripping the
  // marker is safe whoever wrote it: it is exactly this literal text and a number.
  let earlier = 0;
  const marker = /(?:^| )\[\+(\d{1,9}) variables? not stored\]$|^\[environment not stored: (\d{1,9}) variables?\]$/.exec(text);
  if (marker) {
    earlier = Number(marker[1] ?? marker[2]);
    text = text.slice(0, marker.index);
  }
  const env = redactEnv(splitEnvText(text));
  const kept = env.kept;
  const dropped = env.dropped + earlier;
  if (kept.length === 0) return dropped ? `[environment not stored: ${dropped} variable${dropped === 1 ? '' : 's'}]` : '';
  return kept.join(' ') + (dropped ? ` [+${dropped} variable${dropped === 1 ? '' : 's'} not stored]` : '');
}

/** The value of an output field that names one variable (`proc.env[NAME]`), as kept. */
function redactEnvVar(name: string, value: string): string {
  if (value === '') return value;
  if (SECRET_NAME.test(name)) return '[redacted]';
  return scrubSecrets(value);
}

const ENV_FIELD = /^proc\.env(?:\[(.*)\])?$/;

/** Whether any output field is an environment field (most alerts have none: nothing to do). */
function hasEnvFields(fields: Record<string, OutputValue>): boolean {
  for (const k in fields) if (k.startsWith('proc.env')) return true;
  return false;
}

/**
 * Output fields and the output text with the environment redacted. The text is rendered from the
 * same values, so each redacted value is replaced in it where it appears.
 */
export function redactOutput(output: string, fields: Record<string, OutputValue>): { output: string; fields: Record<string, OutputValue> } {
  if (!hasEnvFields(fields)) return { output, fields };
  const out: Record<string, OutputValue> = {};
  let text = output;
  for (const [k, v] of Object.entries(fields)) {
    const m = ENV_FIELD.exec(k);
    if (!m || typeof v !== 'string' || v === '') {
      out[k] = v;
      continue;
    }
    const kept = m[1] === undefined ? redactEnvText(v) : redactEnvVar(m[1], v);
    out[k] = kept;
    if (kept !== v) text = replaceWhole(text, v, kept);
  }
  return { output: text, fields: out };
}

/** `text` with each occurrence of `value` that is not part of a longer word replaced. */
function replaceWhole(text: string, value: string, by: string): string {
  const escaped = value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`(?<![A-Za-z0-9_])${escaped}(?![A-Za-z0-9_])`, 'g'), () => by);
}

type Obj = Record<string, unknown>;

/**
 * What an environment array keeps, by array. The process table never edits an environment in
 * place (a new one replaces it, and one unchanged since the fork is the parent's array:
 * src/enrich/shared-env.ts), so an answer stays true for its array. An alert's ancestors, and most
 * of its processes, are the same from one alert to the next: each of their 30-odd entries was
 * checked for a wallet again per alert, half of its event's encoding (issue 16: exec → alert).
 */
const redactedEnvs = new WeakMap<readonly string[], { kept: string[]; dropped: number }>();

function redactEnvOnce(env: string[]): { kept: string[]; dropped: number } {
  let r = redactedEnvs.get(env);
  if (r === undefined) {
    r = redactEnv(env);
    redactedEnvs.set(env, r);
  }
  return r;
}

/** The process each copy the replacer made stands for (a copy's own capability sets may be gone). */
const originals = new WeakMap<object, Obj>();

/**
 * JSON.stringify replacer for an event: every process in it (the process, its parents) keeps only
 * the environment entries above, and says how many it left out; a parent whose capability sets are
 * its child's keeps a marker instead of them (src/alerts/ancestor-caps.ts). Bigints become decimal
 * strings, as the event model's JSON has them.
 */
function eventReplacer(this: unknown, k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Obj;
    let copy: Obj | undefined;
    if (Array.isArray(o.env)) {
      const { kept, dropped } = redactEnvOnce(o.env as string[]);
      copy = { ...o, env: kept };
      if (dropped) copy.env_not_stored = dropped + (typeof o.env_not_stored === 'number' ? (o.env_not_stored as number) : 0);
    }
    // `this` is the child as the replacer returned it: its sets are those of the process it copies.
    if (k === 'parent' && this !== null && typeof this === 'object' && capsAsChild(originals.get(this) ?? (this as Obj), o)) {
      copy = withoutCaps(copy ?? o);
    }
    if (copy === undefined) return v;
    originals.set(copy, o);
    return copy;
  }
  return v;
}

/** An event as JSON for the store, its environments redacted, its ancestors' capability sets once. */
export function encodeRedactedEvent(ev: unknown): string {
  return JSON.stringify(ev, eventReplacer);
}

/**
 * A stored event (parsed JSON) as it is shown: redacted again (for rows written before redaction
 * existed), its ancestors' capability sets written out.
 */
export function redactStoredEvent(ev: unknown): unknown {
  if (ev === null || typeof ev !== 'object') return ev;
  return expandAncestorCaps(JSON.parse(JSON.stringify(ev, eventReplacer)) as unknown);
}

/** The environment values an alert's group collected across its repeats, redacted. */
export function redactChanged(changed: Record<string, OutputValue[]>): Record<string, OutputValue[]> {
  if (!hasEnvFields(changed as unknown as Record<string, OutputValue>)) return changed;
  const out: Record<string, OutputValue[]> = {};
  for (const [k, vs] of Object.entries(changed)) {
    out[k] = k.startsWith('proc.env') ? vs.map((v) => (typeof v === 'string' ? redactOutput('', { [k]: v }).fields[k]! : v)) : vs;
  }
  return out;
}
