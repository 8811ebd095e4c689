/**
 * The github source's fields, named and valued as Falco's github plugin does, so its rules file
 * (github.yaml) runs unchanged. Events are PluginEvents: `type` is the X-GitHub-Event header and
 * `payload` the webhook JSON, plus what minewatch derives on arrival, under the plugin's own keys
 * so a payload looks the same to either:
 *   webhook_type                 the X-GitHub-Event name
 *   files[]                      push: {name, matches: [{line, type, desc, platform}]} secrets found in the diff
 *   workflow_miner_detections    workflow_run: {name, matches: [{type, line, file, detail}]} the miner check's findings
 *   mw_github.fetch_error        why a fetch did not happen (the derived fields are then <NA>)
 *
 * As in the plugin, every field is text: booleans are "true"/"false", lists are comma-separated.
 * Fields read straight from the webhook JSON are "" when the payload lacks them (the plugin's
 * values); the derived fields are <NA> when nothing was derived, so a failed fetch never reads as
 * "no miners".
 */
import type { Event, PluginEvent } from '../events.js';
import { syscallFields } from './syscall.js';
import type { Extracted, FieldDef } from './types.js';

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

function payloadOf(ev: Event): Json | undefined {
  return obj((ev as PluginEvent).payload);
}

/** A string at a path of the payload, "" when absent (the plugin's value for a missing key). */
function str(ev: Event, ...path: string[]): string {
  let cur: unknown = payloadOf(ev);
  for (const k of path) cur = obj(cur)?.[k];
  return typeof cur === 'string' ? cur : typeof cur === 'number' || typeof cur === 'boolean' ? String(cur) : '';
}

interface SecretMatch {
  line?: number;
  desc?: string;
}
interface DiffFile {
  name?: string;
  matches?: SecretMatch[];
}

function diffFiles(ev: Event): DiffFile[] | undefined {
  const files = payloadOf(ev)?.files;
  return Array.isArray(files) ? (files as DiffFile[]) : undefined;
}

/** One value per committed secret, across files, comma-separated; <NA> when the diff was not scanned. */
function perSecret(ev: Event, get: (file: DiffFile, m: SecretMatch) => string): Extracted {
  const files = diffFiles(ev);
  if (!files) return undefined;
  const out: string[] = [];
  for (const f of files) for (const m of f.matches ?? []) out.push(get(f, m));
  return out.join(',');
}

function minerMatches(ev: Event): Array<{ type?: string }> | undefined {
  const m = obj(payloadOf(ev)?.workflow_miner_detections)?.matches;
  return Array.isArray(m) ? m : undefined;
}

function commitFiles(ev: Event, key: 'added' | 'modified' | 'removed'): string {
  const commits = payloadOf(ev)?.commits;
  if (!Array.isArray(commits)) return '';
  const out: string[] = [];
  for (const c of commits) {
    const list = obj(c)?.[key];
    if (Array.isArray(list)) for (const f of list) if (typeof f === 'string') out.push(f);
  }
  return out.join(',');
}

function field(name: string, desc: string, get: (ev: Event) => Extracted): FieldDef {
  return { name, type: 'charbuf', desc, arg: 'none', bind: () => get };
}

/** Event fields Falco gives every plugin source (times, number, host, source name). */
const PLUGIN_EVT_FIELDS = new Set([
  'evt.num', 'evt.time', 'evt.time.s', 'evt.time.iso8601', 'evt.datetime', 'evt.datetime.s', 'evt.rawtime',
  'evt.rawtime.s', 'evt.rawtime.ns', 'evt.hostname', 'evt.source',
]);

export const githubFields: FieldDef[] = [
  ...syscallFields.filter((f) => PLUGIN_EVT_FIELDS.has(f.name)),
  field('github.type', "Message type (the X-GitHub-Event header), e.g. 'push', 'workflow_run' or 'repository'.",
    (ev) => str(ev, 'webhook_type') || ev.type),
  field('github.action', "The webhook's action, which qualifies github.type: a 'repository' message can be 'created', 'deleted', 'publicized', …",
    (ev) => str(ev, 'action')),
  field('github.user', 'Login of the user that triggered the event (sender.login).', (ev) => str(ev, 'sender', 'login')),
  field('github.repo', '(deprecated, as in Falco) URL of the repository where the event occurred; use github.repo.url.',
    (ev) => str(ev, 'repository', 'html_url')),
  field('github.repo.url', 'URL of the repository where the event occurred (repository.html_url).', (ev) => str(ev, 'repository', 'html_url')),
  field('github.repo.name', 'Name of the repository as owner/name.', (ev) =>
    str(ev, 'repository', 'full_name') || str(ev, 'repository', 'html_url').replace(/^https:\/\/github\.com\//, '')),
  field('github.repo.description', 'Description of the repository.', (ev) => str(ev, 'repository', 'description')),
  field('github.org', 'Login of the organization the repository belongs to.', (ev) => str(ev, 'organization', 'login')),
  field('github.owner', "Login of the repository's owner.", (ev) => str(ev, 'repository', 'owner', 'login')),
  field('github.repo.public', "'true' if the repository is public, 'false' if it is private.", (ev) =>
    obj(payloadOf(ev)?.repository)?.private === true ? 'false' : 'true'),
  field('github.collaborator.name', 'For member messages, the login of the collaborator added or removed.', (ev) => str(ev, 'member', 'login')),
  field('github.collaborator.role', "For member messages, the collaborator's new permission (changes.permission.to).",
    (ev) => str(ev, 'changes', 'permission', 'to')),
  field('github.webhook.id', "For ping and meta messages, the webhook's id ('0' when the message has none, as in Falco).", (ev) => {
    const id = obj(payloadOf(ev)?.hook)?.id;
    return typeof id === 'number' || typeof id === 'string' ? String(id) : '0';
  }),
  field('github.webhook.type', "For ping and meta messages, the webhook's type, e.g. 'Repository' or 'Organization'.", (ev) => str(ev, 'hook', 'type')),
  field('github.commit.added', 'For push messages, the files the commits added, comma-separated.', (ev) => commitFiles(ev, 'added')),
  field('github.commit.modified', 'For push messages, the files the commits modified, comma-separated.', (ev) => commitFiles(ev, 'modified')),
  field('github.commit.removed', 'For push messages, the files the commits removed, comma-separated.', (ev) => commitFiles(ev, 'removed')),
  field('github.diff.has_secrets', "For push messages, 'true' if the diff of the pushed commits adds a secret (AWS keys, GitHub tokens, Slack webhooks, private keys, …); <NA> when the diff could not be fetched.",
    (ev) => {
      const files = diffFiles(ev);
      return files ? String(files.some((f) => (f.matches?.length ?? 0) > 0)) : undefined;
    }),
  field('github.diff.committed_secrets.desc', 'For push messages, the kind of each committed secret (e.g. aws_access_key), comma-separated.',
    (ev) => perSecret(ev, (_f, m) => m.desc ?? '')),
  field('github.diff.committed_secrets.files', 'For push messages, the file of each committed secret, comma-separated.',
    (ev) => perSecret(ev, (f) => f.name ?? '')),
  field('github.diff.committed_secrets.lines', 'For push messages, the line of each committed secret in its file, comma-separated.',
    (ev) => perSecret(ev, (_f, m) => String(m.line ?? 0))),
  field('github.diff.committed_secrets.links', 'For push messages, a link to the line of each committed secret, comma-separated.',
    (ev) => {
      const repo = str(ev, 'repository', 'html_url');
      const sha = str(ev, 'head_commit', 'id') || str(ev, 'after');
      return perSecret(ev, (f, m) => `${repo}/blob/${sha}/${f.name ?? ''}#L${m.line ?? 0}`);
    }),
  field('github.workflow.has_miners', "For workflow_run messages, 'true' if the workflow file runs a crypto miner (minewatch's parsed check, not a substring search); <NA> when the file could not be fetched.",
    (ev) => {
      const m = minerMatches(ev);
      return m ? String(m.length > 0) : undefined;
    }),
  field('github.workflow.miners.type', 'For workflow_run messages, what the miner check found, each kind once, comma-separated (xmrig, stratum, pool, wallet, miner_flags, …).',
    (ev) => {
      const m = minerMatches(ev);
      return m ? [...new Set(m.map((x) => String(x.type ?? '')))].join(',') : undefined;
    }),
  field('github.workflow.filename', 'For workflow_run messages, the path of the workflow file (workflow.path).', (ev) =>
    str(ev, 'workflow', 'path') || str(ev, 'workflow_run', 'path')),
  // minewatch's own, under mw. as everywhere: where the miner check looked and what stopped it.
  field('mw.github.workflow.findings', "For workflow_run messages, each miner finding as FILE:LINE:TYPE, comma-separated (the workflow and the local actions it uses); <NA> when the file could not be fetched",
    (ev) => {
      const m = minerMatches(ev) as Array<{ type?: string; file?: string; line?: number }> | undefined;
      return m ? m.map((x) => `${x.file ?? ''}:${x.line ?? 0}:${x.type ?? ''}`).join(',') : undefined;
    }),
  field('mw.github.fetch_error', 'Why the workflow file or push diff could not be fetched (rate limit, timeout, HTTP status, …); <NA> when nothing failed',
    (ev) => {
      const e = obj(payloadOf(ev)?.mw_github)?.fetch_error;
      return typeof e === 'string' ? e : undefined;
    }),
];
