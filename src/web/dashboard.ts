/**
 * The dashboard's files (ui/: plain HTML, CSS and ES modules, no build step), served as they are.
 * They hold no data, so they are open: the page asks for the token and sends it with every API
 * call. Nothing is loaded from elsewhere, and the content security policy says so.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RoutePlugin } from './types.js';

/** ui/ in the package (three levels above dist/src/web/). */
export const UI_DIR = fileURLToPath(new URL('../../../ui/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

const HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export function dashboardRoutes(dir: string = UI_DIR): RoutePlugin {
  return async (app) => {
    // Only the files present at start, by exact name: no path is ever built from the request.
    const files = new Set(readdirSync(dir).filter((f) => TYPES[extname(f)] !== undefined));
    if (!files.has('index.html')) throw new Error(`dashboard: ${join(dir, 'index.html')} is missing; the package's ui/ folder is incomplete`);
    const send = (name: string) => ({ type: TYPES[extname(name)]!, body: readFileSync(join(dir, name)) });

    app.get('/', { config: { auth: 'open' } }, async (_req, reply) => {
      const f = send('index.html');
      return reply.headers(HEADERS).type(f.type).send(f.body);
    });
    app.get('/ui/:file', { config: { auth: 'open' } }, async (req, reply) => {
      const name = (req.params as { file: string }).file;
      if (!files.has(name)) return reply.code(404).send({ error: `no dashboard file '${name.slice(0, 60)}'` });
      const f = send(name);
      return reply.headers(HEADERS).type(f.type).send(f.body);
    });
  };
}
