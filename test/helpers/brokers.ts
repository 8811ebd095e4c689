/**
 * Real message brokers for tests and benchmarks: Debian's nats-server (JetStream on, its store in
 * a temp dir), redis-server and mosquitto, each started as a child process on a free loopback port
 * with its own temp dir and config, waited for until it accepts connections, and stopped.
 *
 * When MINEWATCH_TEST_NATS_URL / MINEWATCH_TEST_REDIS_URL / MINEWATCH_TEST_MQTT_URL is set (CI
 * starts one of each, see .ci/run), that broker is used instead. An outage of a broker we did not
 * start is made by cutting a loopback TCP relay placed in front of it: the client sees its
 * connection drop and its reconnects refused, exactly as with a stopped broker.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type BrokerKind = 'nats' | 'redis' | 'mqtt';

export interface Broker {
  kind: BrokerKind;
  /** Where clients connect (nats://…, redis://…, mqtt://…), on 127.0.0.1. */
  url: string;
  /** True when the broker came from MINEWATCH_TEST_*_URL (an outage is then a cut relay). */
  external: boolean;
  /** Make the broker unreachable: stop its process, or cut the relay in front of it. */
  stop(): Promise<void>;
  /** Bring it back on the same address (a stopped nats-server keeps its JetStream store). */
  start(): Promise<void>;
  /** Stop for good and remove temp dirs. */
  close(): Promise<void>;
}

const ENV: Record<BrokerKind, string> = {
  nats: 'MINEWATCH_TEST_NATS_URL',
  redis: 'MINEWATCH_TEST_REDIS_URL',
  mqtt: 'MINEWATCH_TEST_MQTT_URL',
};

const BINARY: Record<BrokerKind, string> = { nats: 'nats-server', redis: 'redis-server', mqtt: 'mosquitto' };
const SCHEME: Record<BrokerKind, string> = { nats: 'nats', redis: 'redis', mqtt: 'mqtt' };
const PACKAGE: Record<BrokerKind, string> = { nats: 'nats-server', redis: 'redis-server', mqtt: 'mosquitto' };

/** The broker's binary: on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH). */
export function brokerBinary(kind: BrokerKind): string | undefined {
  const name = BINARY[kind];
  for (const dir of [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin']) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Why this broker cannot be had here (for t.skip), or undefined when it can. */
export function brokerUnavailable(kind: BrokerKind): string | undefined {
  if (process.env[ENV[kind]]) return undefined;
  if (brokerBinary(kind)) return undefined;
  return `${BINARY[kind]} is not installed and ${ENV[kind]} is not set: apt-get install ${PACKAGE[kind]} (or run .ci/run, which starts one)`;
}

/** A port nobody listens on right now, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on host:port; rejects after `ms`. */
export async function waitForPort(host: string, port: number, ms: number, alive: () => string | undefined = () => undefined): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const dead = alive();
    if (dead) throw new Error(dead);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({ host, port });
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing accepts connections on ${host}:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Stop a server process: SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
export async function stopProcess(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

/** Start one broker (or wrap the one the environment names). */
export async function startBroker(kind: BrokerKind): Promise<Broker> {
  const env = process.env[ENV[kind]];
  if (env) return relayedBroker(kind, env);
  const why = brokerUnavailable(kind);
  if (why) throw new Error(why);
  return ownBroker(kind);
}

// ---- a broker process of our own -----------------------------------------------------------

function commandLine(kind: BrokerKind, port: number, dir: string): string[] {
  switch (kind) {
    case 'nats':
      return ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'jetstream')];
    case 'redis':
      return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--logfile', ''];
    case 'mqtt': {
      const conf = join(dir, 'mosquitto.conf');
      writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n`);
      return ['-c', conf];
    }
  }
}

/**
 * A server process on a loopback port that can be stopped and started again (same command, same
 * port): start() waits for the port, or fails with the process's last lines if it exits first.
 */
export function restartableServer(name: string, bin: string, args: string[], port: number): { start(): Promise<void>; stop(): Promise<void> } {
  let child: ChildProcess | undefined;
  let output = '';
  const start = async (): Promise<void> => {
    if (child) return;
    output = '';
    const c = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-4000);
    };
    c.stdout!.on('data', keep);
    c.stderr!.on('data', keep);
    let exited: string | undefined;
    c.once('exit', (code, sig) => {
      exited = `${name} exited (${sig ?? code}) on port ${port}: ${output.trim().split('\n').slice(-5).join(' | ')}`;
      if (child === c) child = undefined;
    });
    c.once('error', (e) => (exited = `${name}: ${e.message}`));
    await waitForPort('127.0.0.1', port, 15_000, () => exited);
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    await stopProcess(c);
  };
  return { start, stop };
}

async function ownBroker(kind: BrokerKind): Promise<Broker> {
  const bin = brokerBinary(kind)!;
  const dir = mkdtempSync(join(tmpdir(), `mw-${kind}-`));
  const port = await freePort();
  const { start, stop } = restartableServer(BINARY[kind], bin, commandLine(kind, port, dir), port);
  await start();
  return {
    kind,
    url: `${SCHEME[kind]}://127.0.0.1:${port}`,
    external: false,
    start,
    stop,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- a broker from the environment, behind a relay we can cut ------------------------------

async function relayedBroker(kind: BrokerKind, envUrl: string): Promise<Broker> {
  const target = new URL(envUrl);
  const host = target.hostname;
  const targetPort = Number(target.port) || { nats: 4222, redis: 6379, mqtt: 1883 }[kind];
  await waitForPort(host, targetPort, 15_000);
  const relay = new TcpRelay(host, targetPort);
  const port = await relay.listen(0);
  const url = new URL(envUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    kind,
    url: url.toString().replace(/\/$/, ''),
    external: true,
    start: async () => {
      await relay.listen(port);
    },
    stop: () => relay.cut(),
    close: () => relay.cut(),
  };
}

/** Forwards loopback TCP connections to host:port until cut. */
export class TcpRelay {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly host: string, private readonly port: number) {}

  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.server) return resolve((this.server.address() as net.AddressInfo).port);
      const server = net.createServer((inbound) => {
        const outbound = net.connect({ host: this.host, port: this.port });
        for (const s of [inbound, outbound]) {
          this.sockets.add(s);
          s.once('close', () => this.sockets.delete(s));
          s.on('error', () => {
            inbound.destroy();
            outbound.destroy();
          });
        }
        inbound.pipe(outbound).pipe(inbound);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        this.server = server;
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
