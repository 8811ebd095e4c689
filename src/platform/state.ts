/**
 * The state folder (alerts.db, its WAL, the API token) is readable by minewatch's user alone:
 * alerts hold other users' command lines and what their processes did, and the token opens the
 * API. The folder is 0700 and every file in it 0600, whatever the umask was; `minewatch run` and
 * `minewatch server` also set umask 077 so anything else they write starts private.
 *
 * Without `web.token`, the agent and the server make a random token in `<state>/token` and use it
 * (the API and inputs need a token even on loopback); the CLI reads it from there.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where minewatch keeps its state: $MINEWATCH_STATE_DIR, else /var/lib/minewatch as root (the
 * agent's normal case), else ~/.local/state/minewatch (a user trying it out).
 */
export function stateDir(): string {
  const env = process.env.MINEWATCH_STATE_DIR;
  if (env) return env;
  if (process.getuid?.() === 0) return '/var/lib/minewatch';
  return join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'minewatch');
}

/** The token file's name in the state folder. */
const TOKEN_FILE = 'token';
const MIN_TOKEN = 16;

/** Private from here on: files this process creates are 0600, folders 0700. */
export function privateUmask(): void {
  process.umask(0o077);
}

/** Create `dir` (0700) or take group and other access away from it; returns what it changed. */
function securePrivateDir(dir: string): 'created' | 'tightened' | 'ok' {
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw stateError(dir, e);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // mkdir's mode passes through the umask; say it again in case the umask was odd.
      chmodSync(dir, 0o700);
    } catch (err) {
      throw stateError(dir, err);
    }
    return 'created';
  }
  if (st.isSymbolicLink()) {
    // Follow it (a symlinked /var/lib is common) but check the target like any folder.
    st = statSync(dir);
  }
  if (!st.isDirectory()) throw new Error(`state folder ${dir} is not a folder; set MINEWATCH_STATE_DIR to a folder minewatch may own`);
  if ((st.mode & 0o077) === 0) return 'ok';
  try {
    chmodSync(dir, st.mode & 0o700);
  } catch (e) {
    throw new Error(`state folder ${dir} is readable by other users (mode ${(st.mode & 0o777).toString(8)}) and cannot be made private: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; run chmod 700 ${dir}, or set MINEWATCH_STATE_DIR to a folder minewatch owns`);
  }
  return 'tightened';
}

/** Make an existing file 0600 (or tighter); a missing file is fine. */
export function securePrivateFile(path: string): void {
  try {
    const st = lstatSync(path);
    if (st.isFile() && (st.mode & 0o077) !== 0) chmodSync(path, st.mode & 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function stateError(dir: string, e: unknown): Error {
  return new Error(`state folder ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; set MINEWATCH_STATE_DIR (or run as root for /var/lib/minewatch) to a folder minewatch can write`);
}

/** Where the token lives: `<state>/token`. */
export function stateTokenPath(dir: string = stateDir()): string {
  return join(dir, TOKEN_FILE);
}

/**
 * Read a token file that must be private: a regular file (not a link), not readable by others,
 * holding at least 16 characters. Undefined when it does not exist.
 */
export function readPrivateToken(path: string, opts: { ownedByMe?: boolean } = {}): string | undefined {
  let fd: number;
  try {
    // O_NOFOLLOW: a link planted in its place is refused, not followed.
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new Error(`${path} is a symbolic link; the token file must be a plain file: remove it and restart minewatch`);
    throw new Error(`cannot read ${path}: ${code ?? (e as Error).message}; the token is readable by minewatch's user only (run as that user, e.g. with sudo, or pass --token-file)`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} is not a plain file; remove it and restart minewatch`);
    // A token someone else put there (the folder was theirs to write once) is not ours to trust.
    if (opts.ownedByMe && process.getuid && st.uid !== process.getuid()) return undefined;
    const text = readFileSync(fd, 'utf8').trim();
    return text.length >= MIN_TOKEN ? text : undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * The token in `<state>/token`, made (random, 0600) when missing or unusable. `created` says
 * whether it is new. The folder is made private first.
 */
export function ensureStateToken(dir: string = stateDir()): { token: string; path: string; created: boolean } {
  securePrivateDir(dir);
  const path = stateTokenPath(dir);
  const existing = readPrivateToken(path, { ownedByMe: true });
  if (existing !== undefined) {
    securePrivateFile(path);
    return { token: existing, path, created: false };
  }
  const token = randomBytes(32).toString('base64url');
  // Written under a fresh name (O_EXCL, 0600) and renamed over: never a moment where another
  // process could open a half-written or world-readable token.
  const tmp = join(dir, `.${TOKEN_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, token + '\n');
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
    throw e;
  }
  return { token, path, created: true };
}
