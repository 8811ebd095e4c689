/**
 * `minewatch alerts …` and `minewatch dashboard`: the stored alerts of a running agent or server,
 * through its API, with its token. The token is found as the agent finds it: web.token or
 * web.token_file of the config, else <state>/token (readable by the agent's user only: run these
 * as that user, e.g. with sudo for the system agent), or given with --token-file / MINEWATCH_TOKEN.
 */
import type { Command } from 'commander';
import { readPrivateToken, stateTokenPath } from '../platform/state.js';
import { parseListen, readSecretFile } from '../config/web.js';
import { loadConfigWithFlags } from './common.js';

interface ClientOpts {
  config?: string;
  url?: string;
  tokenFile?: string;
  json?: boolean;
}

class ClientError extends Error {}

/** The agent's base URL and token, from the flags, the environment and the config. */
function target(opts: ClientOpts): { url: string; token: string } {
  const config = loadConfigWithFlags(opts.config, {});
  if (typeof config === 'number') throw new ClientError('the config was not loaded (see above)');
  let url = opts.url;
  if (!url) {
    const addr = parseListen(config.web.listen);
    if (typeof addr === 'string') throw new ClientError(`web.listen: ${addr}`);
    // An agent listening on every address is reached on loopback from here.
    const host = addr.host === '0.0.0.0' ? '127.0.0.1' : addr.host === '::' ? '::1' : addr.host;
    url = `${config.web.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
  }
  url = url.replace(/\/+$/, '');
  let token: string | undefined;
  if (opts.tokenFile) token = readSecretFile(opts.tokenFile, 'token_file (--token-file)');
  else if (process.env.MINEWATCH_TOKEN) token = process.env.MINEWATCH_TOKEN;
  else if (config.web.token) token = config.web.token;
  else if (config.web.token_file) token = readSecretFile(config.web.token_file, 'token_file');
  else {
    const path = stateTokenPath();
    try {
      token = readPrivateToken(path);
    } catch (e) {
      throw new ClientError((e as Error).message);
    }
    if (token === undefined) throw new ClientError(`no token: ${path} does not exist (has the agent run as this user, with this MINEWATCH_STATE_DIR?); pass --token-file, set MINEWATCH_TOKEN, or use the config the agent runs with (-c)`);
  }
  return { url, token };
}

async function get(url: string, token: string, path: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url + path, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
  } catch (e) {
    throw new ClientError(`cannot reach ${url}: ${((e as Error).cause as Error | undefined)?.message ?? (e as Error).message}; is the agent running (minewatch run), and is --url right?`);
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (res.status === 401) throw new ClientError(`${url} refused the token (401): use the token the agent runs with (--token-file, MINEWATCH_TOKEN, or -c its config)`);
  if (!res.ok) throw new ClientError(`${url}${path}: HTTP ${res.status}${body.error ? `: ${body.error}` : ''}`);
  return body;
}

function fail(e: unknown): void {
  if (!(e instanceof ClientError) && !(e instanceof Error && /^web\./.test(e.message))) throw e;
  process.stderr.write(`minewatch: ${(e as Error).message}\n`);
  process.exitCode = 1;
}

const common = (c: Command): Command => c
  .option('-c, --config <file>', 'the config the agent or server runs with (for web.listen and its token)')
  .option('--url <url>', 'the agent\'s or server\'s base URL (default: from web.listen)')
  .option('--token-file <file>', 'a file holding the API token (default: web.token(_file), else <state>/token; or set MINEWATCH_TOKEN)');

interface AlertRow {
  id: number;
  rule: string;
  priority: string;
  hostname: string;
  count: number;
  last_seen: string;
  output: string;
}

export function registerAlerts(program: Command): void {
  const cmd = program.command('alerts').description('the alerts a running agent or server has stored (through its API, with its token)');

  common(cmd.command('list', { isDefault: true }).description('the newest alert groups'))
    .option('--rule <name>', 'only this rule')
    .option('--priority <p>', 'at least this priority (e.g. warning)')
    .option('--limit <n>', 'how many (default 20, at most 1000)', '20')
    .option('--json', 'print the API\'s JSON')
    .action(async (opts: ClientOpts & { rule?: string; priority?: string; limit: string }) => {
      try {
        const { url, token } = target(opts);
        const q = new URLSearchParams({ limit: opts.limit });
        if (opts.rule) q.set('rule', opts.rule);
        if (opts.priority) q.set('minPriority', opts.priority);
        const body = (await get(url, token, `/api/alerts?${q}`)) as { alerts: AlertRow[] };
        if (opts.json) {
          process.stdout.write(JSON.stringify(body, null, 2) + '\n');
          return;
        }
        if (body.alerts.length === 0) {
          process.stdout.write('no alerts\n');
          return;
        }
        for (const a of body.alerts) {
          process.stdout.write(`${String(a.id).padStart(6)}  ${a.last_seen.slice(0, 19)}Z  ${a.priority.padEnd(13)} ${String(a.count).padStart(5)}x  ${a.hostname}  ${a.rule}\n        ${a.output.slice(0, 200)}\n`);
        }
      } catch (e) {
        fail(e);
      }
    });

  common(cmd.command('show').description('one alert group in full (its first event included)').argument('<id>', 'the alert id (first column of `minewatch alerts`)'))
    .action(async (id: string, opts: ClientOpts) => {
      try {
        if (!/^\d{1,15}$/.test(id)) throw new ClientError(`'${id}' is not an alert id (a whole number)`);
        const { url, token } = target(opts);
        process.stdout.write(JSON.stringify(await get(url, token, `/api/alerts/${id}`), null, 2) + '\n');
      } catch (e) {
        fail(e);
      }
    });

  common(program.command('dashboard').description('print the dashboard\'s URL with the token, to open in a browser (the token is a secret: do not paste it where others read)'))
    .action(async (opts: ClientOpts) => {
      try {
        const { url, token } = target(opts);
        await get(url, token, '/api/stats?bucket=1h');
        process.stdout.write(`${url}/?token=${encodeURIComponent(token)}\n`);
      } catch (e) {
        fail(e);
      }
    });
}
