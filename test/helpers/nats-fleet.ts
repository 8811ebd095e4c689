/**
 * A nats-server of the test's own, with JetStream and a config file (fleet mode's per-agent users
 * need an authorization block, which the shared CI broker has not): on a free loopback port, its
 * store in a temp dir kept across restart(), so a restarted server keeps its streams.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokerBinary, freePort, stopProcess, waitForPort } from './brokers.js';

export interface NatsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Why no nats-server can be started here, or undefined. */
export function natsServerUnavailable(): string | undefined {
  return brokerBinary('nats') ? undefined : 'nats-server is not installed: apt-get install nats-server (.ci/run installs it)';
}

/** `extraConfig` is appended to the config (an authorization block). */
export async function startNatsServer(extraConfig = ''): Promise<NatsServer> {
  const bin = brokerBinary('nats');
  if (!bin) throw new Error(natsServerUnavailable());
  const dir = mkdtempSync(join(tmpdir(), 'mw-p18-nats-'));
  const port = await freePort();
  const conf = join(dir, 'nats.conf');
  writeFileSync(conf, `listen: 127.0.0.1:${port}\njetstream { store_dir: ${JSON.stringify(join(dir, 'js'))} }\n${extraConfig}`);
  let child: ChildProcess | undefined;
  let output = '';
  const start = async (): Promise<void> => {
    if (child) return;
    output = '';
    const c = spawn(bin, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
    c.stdout!.on('data', keep);
    c.stderr!.on('data', keep);
    let exited: string | undefined;
    c.once('exit', (code, sig) => {
      exited = `nats-server exited (${sig ?? code}): ${output.trim().split('\n').slice(-5).join(' | ')}`;
      if (child === c) child = undefined;
    });
    await waitForPort('127.0.0.1', port, 15_000, () => exited);
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    await stopProcess(c);
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    start,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
